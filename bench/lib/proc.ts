// Child processes of a benchmark run: spawn in their own process group, wait
// until they answer, and always stop them, also on Ctrl-C or a crash. Only
// processes started here are ever signalled (by their process group id).
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';

type Cleanup = () => void;
const cleanups = new Map<number, Cleanup>();
let nextCleanupId = 1;
let exiting = false;

/** Registers a synchronous cleanup step; returns a function that removes it. */
export function onCleanup(fn: Cleanup): () => void {
  const id = nextCleanupId++;
  cleanups.set(id, fn);
  return () => void cleanups.delete(id);
}

/** Runs every pending cleanup, newest first. Safe to call more than once. */
export function runCleanups(): void {
  const steps = [...cleanups.entries()].reverse();
  cleanups.clear();
  for (const [, fn] of steps) {
    try {
      fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup failed: ${String(err)}\n`);
    }
  }
}

/** Installs exit/signal handlers once, so nothing outlives the harness. */
export function installExitHandlers(): void {
  process.on('exit', runCleanups);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      process.stderr.write(`\nbench: ${sig}, stopping child processes\n`);
      runCleanups();
      process.exit(130);
    });
  }
}

export interface Service {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves once the process has exited. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Spawns a long-running service as the leader of a new process group
 * (detached), with stdout/stderr appended to logFile.
 */
export function startService(opts: SpawnOptions): Service {
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${opts.name}: spawn failed`);
  const pid = child.pid;
  let alive = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      alive = false;
      resolve(code);
    });
  });
  // Last-resort cleanup is synchronous: SIGKILL the whole group.
  const removeCleanup = onCleanup(() => {
    if (alive) killGroup(pid, 'SIGKILL');
  });
  return {
    name: opts.name,
    child,
    pid,
    logFile: opts.logFile,
    exited,
    async stop() {
      removeCleanup();
      if (!alive) return;
      killGroup(pid, 'SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
      if ((await Promise.race([exited, timer])) === 'timeout') {
        killGroup(pid, 'SIGKILL');
        await exited;
      }
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls url until it answers with a 2xx, the service exits, or timeoutMs
 * passes (a bounded loop). Returns the milliseconds waited.
 */
export async function waitForHttp(url: string, timeoutMs: number, svc?: Service, intervalMs = 20): Promise<number> {
  const t0 = performance.now();
  let dead = false;
  void svc?.exited.then(() => (dead = true));
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxTries; i++) {
    if (dead) throw new Error(`${svc?.name} exited before ${url} answered (log: ${svc?.logFile})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    if (performance.now() - t0 > timeoutMs) break;
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms${svc ? ` (log: ${svc.logFile})` : ''}`);
}

/** Runs a command to completion; throws with its stderr tail on failure. */
export function runSync(command: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(command, args, {
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) {
    // tsc reports to stdout, glance-dev to stderr: show the end of both.
    const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (status ${r.status ?? r.signal}):\n${tail}`);
  }
  return r.stdout;
}

/** Resident set size of one process in bytes (VmRSS), or NaN if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Pids whose process group is pgid (from /proc/<pid>/stat). */
export function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Summed RSS of a process group (Glance: parent + forked workers). */
export function groupRssBytes(pgid: number): number {
  return groupPids(pgid).reduce((sum, pid) => sum + (rssBytes(pid) || 0), 0);
}

let clockTicks: number | undefined;
/** Kernel clock ticks per second (the unit of /proc CPU times). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** CPU seconds (user + system, all threads) a process has used so far, or NaN if it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine has spent busy (not idle, not waiting for I/O) so far. */
export function machineBusyCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal || 0)) / ticksPerSecond();
}

/** CPU seconds used so far by every process of a group (Glance: parent + workers). */
export function groupCpuSeconds(pgid: number): number {
  return groupPids(pgid).reduce((sum, pid) => sum + (processCpuSeconds(pid) || 0), 0);
}

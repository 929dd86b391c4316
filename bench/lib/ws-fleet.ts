// Parent side of the WebSocket load generator: forks the client processes
// (ws-fleet-child.ts), spreads the clients over them, and collects per-client
// arrival times. Every child is killed on cleanup (by its own pid).
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { onCleanup } from './proc';
import type { FleetCommand, FleetReply, Impl } from './ws-fleet-child';

type Reply<T extends FleetReply['type']> = Extract<FleetReply, { type: T }>;

interface Child {
  proc: ChildProcess;
  /** CPU time the child reported last (ms). */
  cpuMs: number;
  waiters: { match: (m: FleetReply) => boolean; resolve: (m: FleetReply) => void; reject: (e: Error) => void }[];
}

export interface ConnectSpec {
  group: string;
  url: string;
  count: number;
  protocol: 'graphql-ws' | 'none';
  impl: Impl;
  token?: string;
  query?: string;
  /** Connections being opened at once, per child (stay below the listen backlog). */
  parallel: number;
  timeoutMs: number;
}

export interface ConnectResult {
  ok: number;
  failed: number;
  firstError?: string;
  ms: number;
  /** Summed RSS of the client processes after connecting (bytes). */
  clientRss: number;
  clientCpuMs: number;
}

export interface EventResult {
  /** Arrival times (ms, hrtime clock) of every client; 0 = missing. */
  times: number[];
  missing: number;
  /** Size of one event message as received. */
  bytes: number;
  clientCpuMs: number;
}

export class Fleet {
  private readonly children: Child[] = [];
  private readonly removeCleanup: () => void;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const proc = fork(join(__dirname, 'ws-fleet-child.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const child: Child = { proc, waiters: [], cpuMs: 0 };
      proc.on('message', (m: FleetReply) => {
        if (m.type === 'fatal') {
          for (const w of child.waiters.splice(0)) w.reject(new Error(`ws client process: ${m.message}`));
          return;
        }
        if (m.type === 'done' || m.type === 'connected') child.cpuMs = m.cpuMs;
        const i = child.waiters.findIndex((w) => w.match(m));
        if (i >= 0) child.waiters.splice(i, 1)[0].resolve(m);
      });
      proc.on('exit', (code) => {
        for (const w of child.waiters.splice(0)) w.reject(new Error(`ws client process exited with ${code}`));
      });
      this.children.push(child);
    }
    this.removeCleanup = onCleanup(() => this.kill());
  }

  get size(): number {
    return this.children.length;
  }

  private ask<T extends FleetReply['type']>(child: Child, cmd: FleetCommand, type: T, match: (m: Reply<T>) => boolean = () => true): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      child.waiters.push({ match: (m) => m.type === type && match(m as Reply<T>), resolve: (m) => resolve(m as Reply<T>), reject });
      child.proc.send(cmd);
    });
  }

  /** Opens spec.count clients, spread evenly over the child processes. */
  async connect(spec: ConnectSpec): Promise<ConnectResult> {
    const n = this.children.length;
    const t0 = performance.now();
    const replies = await Promise.all(
      this.children.map((c, i) => {
        const count = Math.floor(spec.count / n) + (i < spec.count % n ? 1 : 0);
        return this.ask(c, { cmd: 'connect', ...spec, count }, 'connected', (m) => m.group === spec.group);
      }),
    );
    return {
      ok: replies.reduce((s, r) => s + r.ok, 0),
      failed: replies.reduce((s, r) => s + r.failed, 0),
      firstError: replies.find((r) => r.firstError)?.firstError,
      ms: performance.now() - t0,
      clientRss: replies.reduce((s, r) => s + r.rss, 0),
      clientCpuMs: replies.reduce((s, r) => s + r.cpuMs, 0),
    };
  }

  /**
   * Arms every child for `event`, runs `trigger`, and resolves with every
   * client's arrival time once all have arrived (or timeoutMs passed).
   */
  async event(group: string, event: number, timeoutMs: number, trigger: () => Promise<void>): Promise<EventResult> {
    const cpu0 = this.children.reduce((s, c) => s + c.cpuMs, 0);
    const done = this.children.map((c) => new Promise<Reply<'done'>>((resolve, reject) => {
      c.waiters.push({ match: (m) => m.type === 'done' && m.group === group && m.event === event, resolve: (m) => resolve(m as Reply<'done'>), reject });
    }));
    await Promise.all(this.children.map((c) => this.ask(c, { cmd: 'arm', group, event, timeoutMs }, 'armed', (m) => m.group === group && m.event === event)));
    await trigger();
    const replies = await Promise.all(done);
    return {
      times: replies.flatMap((r) => r.times),
      missing: replies.reduce((s, r) => s + r.missing, 0),
      bytes: replies.find((r) => r.bytes > 0)?.bytes ?? 0,
      clientCpuMs: this.children.reduce((s, c) => s + c.cpuMs, 0) - cpu0,
    };
  }

  async close(group: string): Promise<number> {
    const replies = await Promise.all(this.children.map((c) => this.ask(c, { cmd: 'close', group }, 'closed', (m) => m.group === group)));
    return replies.reduce((s, r) => s + r.unexpectedCloses, 0);
  }

  /** Asks the children to exit; kills any still running after 3 s. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              c.proc.kill('SIGKILL');
              resolve();
            }, 3000);
            c.proc.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            try {
              c.proc.send({ cmd: 'exit' } satisfies FleetCommand);
            } catch {
              c.proc.kill('SIGKILL');
            }
          }),
      ),
    );
    this.removeCleanup();
  }

  private kill(): void {
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
}

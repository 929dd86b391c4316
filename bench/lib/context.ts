// Shared state of one benchmark run: options, the lazily started targets
// (each started at most once, and only if a selected scenario needs it), and
// a cache of measurements so a baseline measured for one scenario is reused
// by the next instead of being measured twice.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadResult, LoadSpec, runLoad } from './load';
import { Summary, summarize } from './stats';
import type { GlanceTarget } from '../targets/glance';
import type { VitrineTarget } from '../targets/vitrine';
import type { CeilingTarget } from '../targets/ceiling';
import type { GlanceProxyTarget } from '../targets/glance-proxy';

export interface BenchOptions {
  quick: boolean;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  /** Images seeded into Glance and Vitrine before the read scenarios. */
  seedCount: number;
  seedParallel: number;
  glancePort: number;
  /** glance-api workers; Glance's own default is the number of CPUs. */
  glanceWorkers: number;
  vitrinePort: number;
  ceilingPort: number;
  /** Build dist/ before starting Vitrine (skip with --no-build). */
  build: boolean;
  repoRoot: string;
}

export interface Measurement {
  key: string;
  label: string;
  spec: Omit<LoadSpec, 'next'>;
  rps: Summary;
  p50: Summary;
  p99: Summary;
  /** Median response time per round with sub-millisecond resolution (ms). */
  medianMs: Summary;
  /** CPU milliseconds per answered request of each process named by `cpu`, per round. */
  cpuMsPerRequest?: Record<string, Summary>;
  bytesPerRequest: number;
  requests: number;
  non2xx: number;
  errors: number;
  rounds: LoadResult[];
}

export interface MeasureRequest {
  key: string;
  label: string;
  spec: () => Promise<LoadSpec>;
  /**
   * Processes whose CPU time per request is recorded, by name (e.g. the
   * Vitrine and the Glance serving this load): readers of CPU seconds used so
   * far. A machine-independent figure beside rates that depend on the load.
   */
  cpu?: () => Promise<Record<string, () => number>>;
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

export class BenchContext {
  readonly workDir = mkdtempSync(join(tmpdir(), 'vitrine-bench-'));
  readonly notes: string[] = [];
  /** Figures that are not rows (seeding rates, raw samples), kept in the JSON. */
  readonly extra: Record<string, unknown> = {};
  readonly measurements = new Map<string, Measurement>();
  private readonly started = new Map<string, Promise<unknown>>();

  constructor(readonly opts: BenchOptions) {}

  log = log;

  /** Starts a target once; later callers get the same promise. */
  once<T>(name: string, start: () => Promise<T>): Promise<T> {
    if (!this.started.has(name)) this.started.set(name, start());
    return this.started.get(name) as Promise<T>;
  }

  async glance(): Promise<GlanceTarget> {
    const { startGlance } = await import('../targets/glance');
    return this.once('glance', () => startGlance(this));
  }

  async vitrine(): Promise<VitrineTarget> {
    const { startVitrine } = await import('../targets/vitrine');
    return this.once('vitrine', () => startVitrine(this));
  }

  /** Vitrine whose only backend is the run's Glance (starts Glance first). */
  async glanceProxy(): Promise<GlanceProxyTarget> {
    const { startGlanceProxy } = await import('../targets/glance-proxy');
    return this.once('glance-proxy', () => startGlanceProxy(this));
  }

  async ceiling(): Promise<CeilingTarget> {
    const { startCeiling } = await import('../targets/ceiling');
    return this.once('ceiling', () => startCeiling(this));
  }

  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  /**
   * Measures every request not measured yet in this run. Rounds are
   * interleaved (round 1 of each, then round 2 of each in reverse order, ...)
   * so that a burst or a trend of load from elsewhere on the machine hits all
   * sides alike. Each side
   * gets one warm-up run first (JIT, connection pools, SQLite page cache).
   */
  async measure(requests: MeasureRequest[]): Promise<Map<string, Measurement>> {
    const todo = requests.filter((r) => !this.measurements.has(r.key));
    const specs = new Map<string, LoadSpec>();
    const cpuReaders = new Map<string, Record<string, () => number>>();
    const cpuRounds = new Map<string, Record<string, number[]>>();
    for (const r of todo) {
      specs.set(r.key, await r.spec());
      if (!r.cpu) continue;
      const readers = await r.cpu();
      cpuReaders.set(r.key, readers);
      cpuRounds.set(r.key, Object.fromEntries(Object.keys(readers).map((name) => [name, []])));
    }
    const rounds = new Map<string, LoadResult[]>(todo.map((r) => [r.key, []]));
    for (const r of todo) await runLoad(specs.get(r.key)!, this.opts.warmupSeconds);
    for (let i = 0; i < this.opts.rounds; i++) {
      // A, B, then B, A: a load that rises or falls through the run favours no side.
      for (const r of i % 2 === 0 ? todo : [...todo].reverse()) {
        const readers = Object.entries(cpuReaders.get(r.key) ?? {});
        const before = readers.map(([, read]) => read());
        const res = await runLoad(specs.get(r.key)!, this.opts.seconds);
        rounds.get(r.key)!.push(res);
        readers.forEach(([name, read], j) => cpuRounds.get(r.key)![name].push(((read() - before[j]) * 1000) / Math.max(1, res.requests)));
        log(`  ${r.label} round ${i + 1}/${this.opts.rounds}: ${res.rps.toFixed(1)} req/s, p50 ${res.latencyP50} ms (${res.latencyMedianMs.toFixed(2)}), p99 ${res.latencyP99} ms${res.non2xx || res.errors ? `, non-2xx ${res.non2xx}, errors ${res.errors}` : ''}`);
      }
    }
    for (const r of todo) {
      const rs = rounds.get(r.key)!;
      const { next: _next, ...spec } = specs.get(r.key)!;
      const requestsTotal = rs.reduce((s, x) => s + x.requests, 0);
      const m: Measurement = {
        key: r.key,
        label: r.label,
        spec,
        rps: summarize(rs.map((x) => x.rps)),
        p50: summarize(rs.map((x) => x.latencyP50)),
        p99: summarize(rs.map((x) => x.latencyP99)),
        medianMs: summarize(rs.map((x) => x.latencyMedianMs)),
        ...(cpuRounds.has(r.key) ? { cpuMsPerRequest: Object.fromEntries(Object.entries(cpuRounds.get(r.key)!).map(([k, v]) => [k, summarize(v)])) } : {}),
        bytesPerRequest: rs.reduce((s, x) => s + x.bytesPerRequest, 0) / rs.length,
        requests: requestsTotal,
        non2xx: rs.reduce((s, x) => s + x.non2xx, 0),
        errors: rs.reduce((s, x) => s + x.errors, 0),
        rounds: rs,
      };
      // A side that fails requests would look fast; refuse to report it.
      if (m.rps.median === 0 || m.non2xx + m.errors > Math.max(5, 0.01 * requestsTotal)) {
        throw new Error(`${r.label}: ${m.non2xx} non-2xx and ${m.errors} errors in ${requestsTotal} requests`);
      }
      this.measurements.set(r.key, m);
    }
    return new Map(requests.map((r) => [r.key, this.measurements.get(r.key)!]));
  }

  /** Stops every started target, newest first. */
  async close(): Promise<void> {
    const all = [...this.started.values()].reverse();
    for (const p of all) {
      try {
        const t = (await p) as { stop?: () => Promise<void> };
        await t.stop?.();
      } catch {
        /* a target that failed to start has nothing to stop */
      }
    }
  }
}

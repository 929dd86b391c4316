// Scale-out (issue 9): 1, 2 and 3 Vitrine processes on one shared PostgreSQL
// schema and Redis channel (bench/targets/vitrine-cluster.ts), serving the
// GraphQL list (100 of the seeded images, as graphql.list) and show (a random
// seeded image, as graphql.show). With n instances, autocannon loads each of
// the first n at once (its own connections per instance, as one instance gets
// alone) and the answers per second are summed. Rounds are interleaved
// (1, 2, 3 instances, then 3, 2, 1). On a machine with few cores the instances,
// PostgreSQL and the load generator share them, so the ratio to one instance is
// bounded by the cores, not by Vitrine; the rows say how many there were.
import { cpus } from 'node:os';
import { LIST_IMAGES, SHOW_IMAGE } from '../lib/fixtures';
import { runLoad, type LoadResult, type LoadSpec } from '../lib/load';
import { machineBusyCpuSeconds, processCpuSeconds } from '../lib/proc';
import type { Row } from '../lib/report';
import { ratio, summarize, sumRounds } from '../lib/stats';
import { startCluster, type VitrineCluster } from '../targets/vitrine-cluster';
import type { Scenario } from './types';

const INSTANCES = 3;
type Query = 'list' | 'show';
const QUERIES: Query[] = ['list', 'show'];

function spec(cluster: VitrineCluster, url: string, query: Query, connections: number): LoadSpec {
  const body = (operationName: string, q: string, variables?: Record<string, unknown>) => JSON.stringify({ operationName, query: q, variables });
  const pick = () => cluster.ids[Math.floor(Math.random() * cluster.ids.length)];
  return query === 'list'
    ? { url, method: 'POST', path: '/graphql', headers: cluster.headers, body: body('ListImages', LIST_IMAGES), connections, fresh: false }
    : { url, method: 'POST', path: '/graphql', headers: cluster.headers, body: body('ShowImage', SHOW_IMAGE, { id: cluster.ids[0] }), next: () => ({ body: body('ShowImage', SHOW_IMAGE, { id: pick() }) }), connections, fresh: false };
}

/** Cores kept busy while `work` ran: the Vitrine instances, this process (the load generator), the whole machine. */
interface CoresUsed {
  vitrine: number;
  generator: number;
  machine: number;
}

async function coresDuring<T>(pids: number[], work: () => Promise<T>): Promise<{ value: T; cores: CoresUsed }> {
  const vitrineCpu = () => pids.reduce((s, pid) => s + (processCpuSeconds(pid) || 0), 0);
  const [v0, g0, m0, t0] = [vitrineCpu(), process.cpuUsage(), machineBusyCpuSeconds(), performance.now()];
  const value = await work();
  const seconds = (performance.now() - t0) / 1000;
  const g = process.cpuUsage(g0);
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return {
    value,
    cores: { vitrine: round2((vitrineCpu() - v0) / seconds), generator: round2((g.user + g.system) / 1e6 / seconds), machine: round2((machineBusyCpuSeconds() - m0) / seconds) },
  };
}

function refuseFailures(label: string, results: LoadResult[]): void {
  for (const r of results) {
    if (r.rps === 0 || r.non2xx + r.errors > Math.max(5, 0.01 * r.requests)) throw new Error(`${label}: ${r.non2xx} non-2xx and ${r.errors} errors in ${r.requests} requests`);
  }
}

export const scaleoutListScenario: Scenario = {
  name: 'scaleout.list',
  description: 'GraphQL list and show on 1, 2 and 3 Vitrine processes sharing PostgreSQL and Redis, load on each at once, summed',
  async run(ctx) {
    const cpuCount = cpus().length;
    const { connections, rounds, seconds, warmupSeconds } = ctx.opts;
    const cluster = await startCluster(ctx, INSTANCES, ctx.opts.vitrinePort + 7);
    // per query and instance count: per round, each loaded instance's result
    const key = (q: Query, n: number) => `${q}.${n}`;
    const configs = QUERIES.flatMap((q) => Array.from({ length: INSTANCES }, (_, i) => key(q, i + 1)));
    const results = new Map<string, LoadResult[][]>(configs.map((k) => [k, []]));
    const cores = new Map<string, CoresUsed[]>(configs.map((k) => [k, []]));
    try {
      const loadFirst = (q: Query, n: number, s: number) => Promise.all(cluster.urls.slice(0, n).map((u) => runLoad(spec(cluster, u, q, connections), s)));
      // Three cold instances sharing two cores with PostgreSQL may finish no list in the first
      // second (their first requests compile and plan); the warm-up is not measured.
      const warmup = Math.max(warmupSeconds, 3);
      for (const q of QUERIES) refuseFailures(`scaleout ${q} warm-up`, await loadFirst(q, INSTANCES, warmup));
      for (let round = 0; round < rounds; round++) {
        for (const q of QUERIES) {
          // 1, 2, 3 instances, then 3, 2, 1: a trend in the machine's load favours none.
          const counts = Array.from({ length: INSTANCES }, (_, i) => i + 1);
          for (const n of round % 2 === 0 ? counts : counts.reverse()) {
            const { value: rs, cores: used } = await coresDuring(cluster.pids, () => loadFirst(q, n, seconds));
            refuseFailures(`scaleout ${q}, ${n} instance(s)`, rs);
            results.get(key(q, n))!.push(rs);
            cores.get(key(q, n))!.push(used);
            ctx.log(`  ${q}, ${n} instance(s), round ${round + 1}/${rounds}: ${rs.reduce((s, r) => s + r.rps, 0).toFixed(0)} req/s (${rs.map((r) => r.rps.toFixed(0)).join(' + ')}), median ${rs.map((r) => r.latencyMedianMs.toFixed(1)).join(' / ')} ms; cores busy: Vitrine ${used.vitrine}, load generator ${used.generator}, machine ${used.machine} of ${cpuCount}`);
          }
        }
      }
    } finally {
      await cluster.stop();
    }

    // Summed req/s per round for n instances.
    const total = (q: Query, n: number): number[] => sumRounds(Array.from({ length: n }, (_, i) => results.get(key(q, n))!.map((round) => round[i].rps)));
    ctx.extra.scaleout = {
      instances: INSTANCES,
      cores: cpuCount,
      connectionsPerInstance: connections,
      schema: cluster.schema,
      rounds: Object.fromEntries(configs.map((k) => [k, results.get(k)!.map((round, i) => ({
        instances: round.map((r) => ({ rps: Math.round(r.rps), medianMs: +r.latencyMedianMs.toFixed(2), p99: r.latencyP99 })),
        coresBusy: cores.get(k)![i],
      }))])),
    };
    const label = (n: number) => (n === 1 ? '1 instance' : `${n} instances, summed`);
    const rows: Row[] = [];
    for (const q of QUERIES) {
      const one = summarize(total(q, 1));
      for (let n = 2; n <= INSTANCES; n++) {
        const many = summarize(total(q, n));
        rows.push({
          scenario: this.name,
          metric: `GraphQL ${q}, ${n} instances vs 1 on PostgreSQL (${cpuCount} cores shared by all instances, PostgreSQL and the load generator: the ratio is bounded by the cores)`,
          unit: 'req/s',
          subject: { label: label(n), value: many },
          baseline: { label: label(1), value: one },
          ratio: ratio(many, one),
        });
      }
      // Whether more instances got more CPU at all: on a saturated machine they cannot.
      const vitrineCores = (n: number) => summarize(cores.get(key(q, n))!.map((c) => c.vitrine));
      const machineCores = (n: number) => summarize(cores.get(key(q, n))!.map((c) => c.machine)).median.toFixed(2);
      for (let n = 2; n <= INSTANCES; n++) {
        rows.push({
          scenario: this.name,
          metric: `GraphQL ${q}: CPU cores kept busy by the Vitrine processes, ${n} instances vs 1 (whole machine: ${machineCores(n)} vs ${machineCores(1)} of ${cpuCount} busy)`,
          unit: 'cores',
          subject: { label: label(n), value: vitrineCores(n) },
          baseline: { label: label(1), value: vitrineCores(1) },
          ratio: ratio(vitrineCores(n), vitrineCores(1)),
        });
      }
      // One instance on SQLite, when graphql.list / graphql.show measured it earlier in this run.
      const sqlite = ctx.measurements.get(`vitrine.${q}.ka`);
      if (sqlite) {
        rows.push({
          scenario: this.name,
          metric: `GraphQL ${q}, 1 instance on PostgreSQL vs 1 on SQLite (graphql.${q} earlier in this run, not interleaved)`,
          unit: 'req/s',
          subject: { label: label(1), value: one },
          baseline: { label: sqlite.label, value: sqlite.rps },
          ratio: ratio(one, sqlite.rps),
        });
      }
    }
    return rows;
  },
};

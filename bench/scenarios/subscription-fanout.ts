// Subscription fan-out: N idle graphql-ws subscribers of artifactEvents on one
// Vitrine process (its own instance, empty data dir), against a bare `ws`
// server (bench/servers/ws-broadcast-server.ts) holding the same number of
// sockets. Measures (a) Vitrine's RSS per idle subscription and (b) how long
// one event (a createImage mutation on Vitrine; one HTTP trigger on the bare
// server, which then sends a message of the same size) takes to reach all N
// clients: p50 and p99 over the clients of each event's arrival time, counted
// from the moment the mutation / trigger is sent. Rounds = events, interleaved
// (a Vitrine event, then a bare one). The clients live in 2 child processes
// (bench/lib/ws-fleet*.ts), raw `ws` sockets speaking graphql-transport-ws.
// All subscribers send the same document with the same operation id ("1"), so
// Vitrine serves them as one group (docs/subscriptions.md) and encodes one
// frame per event; the reference client (BENCH_WS_IMPL=graphql-ws) gives every
// subscription its own id, hence one frame per subscriber. The 1-minute load
// average before and after the events is logged and kept in the report.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';

import { rssBytes, sleep, startService, waitForHttp, type Service } from '../lib/proc';
import type { Row } from '../lib/report';
import { ratio, summarize, type Summary } from '../lib/stats';
import { Fleet } from '../lib/ws-fleet';
import type { Impl } from '../lib/ws-fleet-child';
import { spawnVitrine } from '../targets/vitrine';
import type { Scenario } from './types';

const KiB = 1024;
const CHILDREN = 2;
const RSS_TARGET_KIB = 20;
const LATENCY_TARGET = 2;

const SUBSCRIPTION = `subscription Fanout {
  artifactEvents(filter: { kinds: [CREATED] }) {
    cursor kind artifactId typeName revision at
    artifact { id name status visibility owner }
  }
}`;
const CREATE = 'mutation FanoutCreate($input: CreateImageInput!) { createImage(input: $input) { id } }';

/** Soft and hard RLIMIT_NOFILE as a spawned process inherits them. */
function fdLimits(): { soft: number; hard: number } {
  const r = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  const [soft, hard] = r.stdout.trim().split('\n').map((x) => (x === 'unlimited' ? Infinity : Number(x)));
  return { soft, hard };
}

function portRange(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return hi - lo + 1;
  } catch {
    return 28_232;
  }
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const hrMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** POST over one kept-alive connection; resolves to the status once the body is read. */
function post(agent: Agent, url: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface EventStats {
  p50: number;
  p99: number;
  max: number;
  missing: number;
  clientCpuMs: number;
}

interface SideResult {
  label: string;
  rssPerSubKiB: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  connectSeconds: number;
  clientRssMiB: number;
  events: EventStats[];
}

export const subscriptionFanoutScenario: Scenario = {
  name: 'subscription.fanout',
  description: 'N idle artifactEvents subscribers on one Vitrine: RSS per subscription, one event to all N vs a bare ws broadcast',
  async run(ctx) {
    const impl = (process.env.BENCH_WS_IMPL === 'graphql-ws' ? 'graphql-ws' : 'raw') satisfies Impl;
    const wanted = Number(process.env.BENCH_FANOUT_CLIENTS) || (ctx.opts.quick ? 2_000 : 10_000);
    const { soft, hard } = fdLimits();
    const ports = portRange();
    // Vitrine holds N sockets; each client process holds N/2 of each side (N in all); the
    // kernel needs 2N ephemeral ports on 127.0.0.1 while both sides are connected.
    const fit = Math.min(soft - 512, Math.floor((ports - 2_000) / 2));
    const n = Math.max(1, Math.min(wanted, fit));
    ctx.log(`  ulimit -n in spawned processes: soft ${soft}, hard ${hard}; ${ports} ephemeral ports; N = ${n}${n < wanted ? ` (wanted ${wanted}, does not fit)` : ''}; clients: ${impl}`);
    // The machine may be shared: the load before and after says how much the figures can be trusted.
    const loadBefore = loadavg()[0];
    if (n < wanted) ctx.note(`subscription.fanout ran with N = ${n} subscribers instead of ${wanted}: ulimit -n is ${soft} (hard ${hard}) and ${ports} ephemeral ports; each side needs N sockets in its server and N/${CHILDREN} per client process, 2N ports.`);
    const events = ctx.opts.quick ? 5 : 10;
    const timeoutMs = ctx.opts.quick ? 30_000 : 90_000;

    let vitrine: Service | undefined;
    let bare: Service | undefined;
    let fleet: Fleet | undefined;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const vPort = ctx.opts.vitrinePort + 4;
      const bPort = ctx.opts.ceilingPort + 4;
      const v = await spawnVitrine(ctx, 'vitrine-fanout', vPort);
      vitrine = v.svc;
      const tokenFile = join(v.dataDir, 'admin-token');
      for (let i = 0; i < 100 && !existsSync(tokenFile); i++) await sleep(50);
      const token = readFileSync(tokenFile, 'utf8').trim();
      const vUrl = `http://127.0.0.1:${vPort}`;
      const bUrl = `http://127.0.0.1:${bPort}`;
      bare = startService({
        name: 'ws-broadcast',
        command: process.execPath,
        args: ['--import', 'tsx', join(__dirname, '..', 'servers', 'ws-broadcast-server.ts'), String(bPort)],
        cwd: ctx.opts.repoRoot,
        env: { ...process.env, NODE_ENV: 'production' },
        logFile: join(ctx.workDir, 'ws-broadcast.log'),
      });
      await waitForHttp(`${bUrl}/healthz`, 20_000, bare);
      fleet = new Fleet(CHILDREN);
      const f = fleet;

      let created = 0;
      const vTrigger = async (): Promise<number> => {
        const body = JSON.stringify({ operationName: 'FanoutCreate', query: CREATE, variables: { input: { name: `fanout-${process.pid}-${++created}`, diskFormat: 'raw', containerFormat: 'bare' } } });
        const t0 = hrMs();
        const res = await post(agent, vUrl, '/graphql', { authorization: `Bearer ${token}` }, body);
        if (res.status !== 200 || res.text.includes('"errors"')) throw new Error(`createImage: HTTP ${res.status} ${res.text.slice(0, 300)}`);
        return t0;
      };
      let payloadBytes = 0;
      const bTrigger = async (): Promise<number> => {
        const t0 = hrMs();
        const res = await post(agent, bUrl, `/broadcast?bytes=${payloadBytes}`, {}, '');
        if (res.status !== 200) throw new Error(`broadcast: HTTP ${res.status}`);
        return t0;
      };
      const vConnect = (group: string, count: number) =>
        f.connect({ group, url: `ws://127.0.0.1:${vPort}/graphql`, count, protocol: 'graphql-ws', impl, token, query: SUBSCRIPTION, parallel: 100, timeoutMs: 60_000 });
      const bConnect = (group: string, count: number) => f.connect({ group, url: `ws://127.0.0.1:${bPort}/`, count, protocol: 'none', impl, parallel: 100, timeoutMs: 60_000 });
      const fire = async (group: string, trigger: () => Promise<number>, k: number, expect: number): Promise<EventStats & { bytes: number }> => {
        let t0 = 0;
        const r = await f.event(group, k, timeoutMs, async () => void (t0 = await trigger()));
        const lat = r.times.filter((t) => t > 0).map((t) => t - t0).sort((a, b) => a - b);
        if (r.missing > Math.max(0, 0.01 * expect) || lat.length === 0) throw new Error(`${group} event ${k}: ${r.missing} of ${expect} subscribers got nothing within ${timeoutMs} ms`);
        return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: lat[lat.length - 1], missing: r.missing, clientCpuMs: r.clientCpuMs, bytes: r.bytes };
      };
      const connected = (label: string, r: Awaited<ReturnType<typeof vConnect>>, count: number): void => {
        if (r.failed) throw new Error(`${label}: ${r.failed} of ${count} clients failed to connect (first: ${r.firstError})`);
        ctx.log(`  ${label}: ${r.ok} clients ready in ${(r.ms / 1000).toFixed(1)} s (client processes RSS ${(r.clientRss / 1048576).toFixed(0)} MiB)`);
      };

      // Warm-up: code paths, JIT, the first SQLite statements; also learns the event size.
      const WARM = 64;
      connected('Vitrine warm-up', await vConnect('v-warm', WARM), WARM);
      for (let k = 0; k < 2; k++) payloadBytes = (await fire('v-warm', vTrigger, k, WARM)).bytes;
      await f.close('v-warm');
      connected('bare ws warm-up', await bConnect('b-warm', WARM), WARM);
      for (let k = 0; k < 2; k++) await fire('b-warm', bTrigger, k, WARM);
      await f.close('b-warm');
      ctx.log(`  one Vitrine event message is ${payloadBytes} bytes; the bare server sends the same size`);
      await sleep(1500);

      const side = async (label: string, pid: number, connect: () => ReturnType<typeof vConnect>): Promise<SideResult> => {
        const before = rssBytes(pid);
        const r = await connect();
        connected(label, r, n);
        await sleep(2000);
        const after = rssBytes(pid);
        return {
          label,
          rssPerSubKiB: (after - before) / n / KiB,
          rssBeforeMiB: before / 1048576,
          rssAfterMiB: after / 1048576,
          connectSeconds: r.ms / 1000,
          clientRssMiB: r.clientRss / 1048576,
          events: [],
        };
      };
      const vs = await side(`Vitrine, ${n} subscribers`, vitrine.pid, () => vConnect('v', n));
      const bs = await side(`bare ws, ${n} sockets`, bare.pid, () => bConnect('b', n));
      ctx.log(`  RSS per idle connection: Vitrine ${vs.rssPerSubKiB.toFixed(1)} KiB (${vs.rssBeforeMiB.toFixed(0)} -> ${vs.rssAfterMiB.toFixed(0)} MiB), bare ws ${bs.rssPerSubKiB.toFixed(1)} KiB`);

      // One event per side before measuring (the first broadcast to N sockets grows buffers).
      await fire('v', vTrigger, 0, n);
      await fire('b', bTrigger, 0, n);
      for (let k = 1; k <= events; k++) {
        for (const [s, group, trigger] of [[vs, 'v', vTrigger], [bs, 'b', bTrigger]] as const) {
          await sleep(300);
          const e = await fire(group, trigger, k, n);
          s.events.push(e);
          ctx.log(`  event ${k}/${events} ${s.label}: p50 ${e.p50.toFixed(1)} ms, p99 ${e.p99.toFixed(1)} ms, last ${e.max.toFixed(1)} ms${e.missing ? `, ${e.missing} missing` : ''} (client CPU ${e.clientCpuMs.toFixed(0)} ms)`);
        }
      }
      const loadAfter = loadavg()[0];
      ctx.log(`  1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after the events`);
      const unexpected = (await f.close('v')) + (await f.close('b'));
      if (unexpected) ctx.note(`subscription.fanout: ${unexpected} client sockets were closed by a server during the run.`);

      const stat = (s: SideResult, k: keyof EventStats): Summary => summarize(s.events.map((e) => e[k]));
      ctx.extra.subscriptionFanout = {
        subscribers: n,
        wanted,
        clientImpl: impl,
        clientProcesses: CHILDREN,
        ulimitNofile: { soft, hard },
        eventBytes: payloadBytes,
        events,
        loadAverage: { before: +loadBefore.toFixed(2), after: +loadAfter.toFixed(2) },
        sides: [vs, bs].map((s) => ({ ...s, events: s.events.map((e) => ({ p50: +e.p50.toFixed(2), p99: +e.p99.toFixed(2), max: +e.max.toFixed(2), clientCpuMs: Math.round(e.clientCpuMs) })) })),
      };
      const rssRow: Row = {
        scenario: this.name,
        metric: `RSS per idle subscription, N = ${n} (lower is better)`,
        unit: 'KiB',
        subject: { label: 'Vitrine', value: summarize([vs.rssPerSubKiB]) },
        baseline: { label: 'bare ws, per socket', value: summarize([bs.rssPerSubKiB]) },
        ratio: ratio(summarize([vs.rssPerSubKiB]), summarize([bs.rssPerSubKiB])),
        target: { text: `< ${RSS_TARGET_KIB} KiB`, met: vs.rssPerSubKiB < RSS_TARGET_KIB },
      };
      const latRow = (k: 'p50' | 'p99'): Row => {
        const [sv, sb] = [stat(vs, k), stat(bs, k)];
        const r = ratio(sv, sb);
        return {
          scenario: this.name,
          metric: `one event to all ${n} subscribers, ${k} of arrivals from send (lower is better)`,
          unit: 'ms',
          subject: { label: 'Vitrine (createImage)', value: sv },
          baseline: { label: 'bare ws broadcast', value: sb },
          ratio: r,
          target: { text: `<= ${LATENCY_TARGET}x`, met: r.median <= LATENCY_TARGET },
        };
      };
      return [rssRow, latRow('p50'), latRow('p99')];
    } finally {
      await fleet?.stop();
      agent.destroy();
      await vitrine?.stop();
      await bare?.stop();
    }
  },
};

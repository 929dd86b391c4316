// Vitrine in front of Glance (its only backend) listing 100 images through its
// /v2 facade (GET /v2/images?limit=100), against the very same request sent to
// that Glance directly, in both connection modes with the same reuse on both
// sides, interleaved round by round: throughput with the run's connections,
// and the latency the hop adds with one connection (no queueing behind other
// requests). Glance stalls ~40 ms on reused connections for 16-64 KiB bodies;
// the client's connection mode is the same on both sides, but Vitrine always
// reaches Glance over its keep-alive pool (asking for 101 images, to know
// whether a next page exists). GraphQL `images(first: 100)` through the proxy
// is an informative row.
import { requestJson } from '../lib/http';
import type { BenchContext, MeasureRequest, Measurement } from '../lib/context';
import type { Row } from '../lib/report';
import { GLANCE_LIST_PATH, proxyDirectList, proxyGraphqlList, proxyList } from './requests';
import { addedLatencyRow, cpuRow, rpsRow, Scenario } from './types';

/** Issue 7: at least 0.9x of direct Glance's throughput, under 2 ms added p50 latency. */
export const PROXY_THROUGHPUT_TARGET = 0.9;
export const PROXY_ADDED_LATENCY_MS = 2;

type Pair = readonly [proxy: MeasureRequest, direct: MeasureRequest];

/**
 * The rows of a proxy comparison: per connection mode, throughput and CPU per
 * request with the run's connections, and the added latency with one.
 */
export async function proxyRows(ctx: BenchContext, scenario: string, modes: boolean[], build: (fresh: boolean, single: boolean) => Pair, extra: MeasureRequest[] = []): Promise<{ rows: Row[]; get: (r: MeasureRequest) => Measurement }> {
  const loaded = modes.map((fresh) => build(fresh, false));
  const single = modes.map((fresh) => build(fresh, true));
  const m = await ctx.measure([...loaded.flat(), ...extra, ...single.flat()]);
  const get = (r: MeasureRequest) => m.get(r.key)!;
  const rows: Row[] = [];
  modes.forEach((fresh, i) => {
    const mode = fresh ? 'new connection per request' : 'keep-alive';
    const [p, d] = loaded[i];
    const [p1, d1] = single[i];
    rows.push(
      rpsRow(scenario, `vs Glance direct, both ${mode}, ${ctx.opts.connections} connections`, get(p), get(d), PROXY_THROUGHPUT_TARGET),
      addedLatencyRow(scenario, `added median latency, both ${mode}, 1 connection`, get(p1), get(d1), PROXY_ADDED_LATENCY_MS),
      cpuRow(scenario, `CPU per request through the proxy vs direct, ${mode}`, get(p), get(d)),
    );
  });
  return { rows, get };
}

/** Refuses to compare unless both sides answer the same page (same ids, same order). */
async function samePage(ctx: BenchContext): Promise<void> {
  const p = await ctx.glanceProxy();
  const [proxied, direct] = await Promise.all([
    requestJson<{ images?: { id: string }[] }>(`${p.url}${GLANCE_LIST_PATH}`, { headers: p.facadeHeaders }),
    requestJson<{ images?: { id: string }[] }>(`${p.glance.url}${GLANCE_LIST_PATH}`, { headers: p.identity }),
  ]);
  const ids = (r: typeof proxied) => (r.body?.images ?? []).map((i) => i.id).join(',');
  if (proxied.status !== 200 || direct.status !== 200 || ids(proxied) !== ids(direct) || (direct.body?.images?.length ?? 0) !== 100) {
    throw new Error(`proxy.list: the proxy and Glance do not answer the same page (HTTP ${proxied.status}/${direct.status}, ${proxied.body?.images?.length ?? 0}/${direct.body?.images?.length ?? 0} images)`);
  }
}

export const proxyListScenario: Scenario = {
  name: 'proxy.list',
  description: 'GET /v2/images?limit=100 through Vitrine in front of Glance vs straight to Glance, both connection modes; GraphQL list through it',
  async run(ctx) {
    await samePage(ctx);
    const gql = proxyGraphqlList(ctx);
    const { rows, get } = await proxyRows(ctx, this.name, [false, true], (fresh, single) => [proxyList(ctx, fresh, single), proxyDirectList(ctx, fresh, single)], [gql]);
    const directKa = get(proxyDirectList(ctx, false));
    return [
      ...rows,
      rpsRow(this.name, `GraphQL images(first: 100) through the proxy vs Glance direct list, keep-alive, ${ctx.opts.connections} connections (informative)`, get(gql), directKa),
      cpuRow(this.name, 'CPU per request, GraphQL through the proxy vs the direct list, keep-alive', get(gql), directKa),
    ];
  },
};

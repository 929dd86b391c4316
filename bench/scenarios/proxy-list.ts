// Vitrine in front of Glance (its only backend) listing 100 images through its
// /v2 facade (GET /v2/images?limit=100), against the very same request sent to
// that Glance directly, in both connection modes with the same reuse on both
// sides, interleaved round by round. Glance stalls ~40 ms on reused
// connections for 16-64 KiB bodies; the client's connection mode is the same on
// both sides, but Vitrine always reaches Glance over its keep-alive pool (it
// asks for 101 images to know whether a next page exists), so a proxied list
// pays the stall in both modes. GraphQL `images(first: 100)` through the
// proxy is an informative row.
import { requestJson } from '../lib/http';
import type { BenchContext } from '../lib/context';
import { GLANCE_LIST_PATH, proxyDirectList, proxyGraphqlList, proxyList } from './requests';
import { addedLatencyRow, cpuRow, rpsRow, Scenario } from './types';

/** Issue 7: at least 0.9x of direct Glance's throughput, under 2 ms added p50 latency. */
export const PROXY_THROUGHPUT_TARGET = 0.9;
export const PROXY_ADDED_LATENCY_MS = 2;

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
  ctx.extra.proxyListBytes = { proxy: proxied.text.length, direct: direct.text.length };
}

export const proxyListScenario: Scenario = {
  name: 'proxy.list',
  description: 'GET /v2/images?limit=100 through Vitrine in front of Glance vs straight to Glance, both connection modes; GraphQL list through it',
  async run(ctx) {
    const [pKa, pFresh, dKa, dFresh, gql] = [proxyList(ctx, false), proxyList(ctx, true), proxyDirectList(ctx, false), proxyDirectList(ctx, true), proxyGraphqlList(ctx)];
    await samePage(ctx);
    const m = await ctx.measure([pKa, dKa, pFresh, dFresh, gql]);
    const get = (r: { key: string }) => m.get(r.key)!;
    return [
      rpsRow(this.name, 'vs Glance direct, both keep-alive', get(pKa), get(dKa), PROXY_THROUGHPUT_TARGET),
      rpsRow(this.name, 'vs Glance direct, both new connection per request', get(pFresh), get(dFresh), PROXY_THROUGHPUT_TARGET),
      addedLatencyRow(this.name, 'added median latency, both keep-alive', get(pKa), get(dKa), PROXY_ADDED_LATENCY_MS),
      addedLatencyRow(this.name, 'added median latency, both new connection per request', get(pFresh), get(dFresh), PROXY_ADDED_LATENCY_MS),
      cpuRow(this.name, 'CPU per request, through the proxy vs direct, keep-alive', get(pKa), get(dKa)),
      cpuRow(this.name, 'CPU per request, through the proxy vs direct, new connection per request', get(pFresh), get(dFresh)),
      rpsRow(this.name, 'GraphQL images(first: 100) through the proxy vs Glance direct list, keep-alive (informative)', get(gql), get(dKa)),
      cpuRow(this.name, 'CPU per request, GraphQL through the proxy vs the direct list, keep-alive', get(gql), get(dKa)),
    ];
  },
};

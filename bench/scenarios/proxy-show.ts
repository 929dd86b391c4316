// Vitrine in front of Glance (its only backend) showing one random seeded image
// through its /v2 facade (GET /v2/images/{id}), against the same request sent
// to that Glance directly, interleaved round by round: keep-alive on both
// sides, and (full runs only) a new connection per request on both sides.
// Answers are ~1 KiB, below Glance's keep-alive stall. Vitrine looks the image
// up with one list call by id (`GET /v2/images?id=in:…&limit=1`,
// docs/glance-backend.md), not with Glance's own show.
import type { Row } from '../lib/report';
import { proxyDirectShow, proxyShow } from './requests';
import { PROXY_ADDED_LATENCY_MS, PROXY_THROUGHPUT_TARGET } from './proxy-list';
import { addedLatencyRow, cpuRow, rpsRow, Scenario } from './types';

export const proxyShowScenario: Scenario = {
  name: 'proxy.show',
  description: 'GET /v2/images/{random id} through Vitrine in front of Glance vs straight to Glance, keep-alive (and new connections in full runs)',
  async run(ctx) {
    const modes = ctx.opts.quick ? [false] : [false, true];
    const pairs = modes.map((fresh) => [proxyShow(ctx, fresh), proxyDirectShow(ctx, fresh)] as const);
    const m = await ctx.measure(pairs.flat());
    const rows: Row[] = [];
    for (const [proxy, direct] of pairs) {
      const mode = proxy.key.endsWith('.fresh') ? 'both new connection per request' : 'both keep-alive';
      const [p, d] = [m.get(proxy.key)!, m.get(direct.key)!];
      rows.push(
        rpsRow(this.name, `vs Glance direct, ${mode}`, p, d, PROXY_THROUGHPUT_TARGET),
        addedLatencyRow(this.name, `added median latency, ${mode}`, p, d, PROXY_ADDED_LATENCY_MS),
        cpuRow(this.name, `CPU per request, through the proxy vs direct, ${mode.replace('both ', '')}`, p, d),
      );
    }
    return rows;
  },
};

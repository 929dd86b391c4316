// Vitrine in front of Glance (its only backend) showing one random seeded image
// through its /v2 facade (GET /v2/images/{id}), against the same request sent
// to that Glance directly, interleaved round by round: throughput with the
// run's connections and the added latency with one, keep-alive on both sides
// and (full runs only) a new connection per request on both sides. Answers are
// ~1 KiB, below Glance's keep-alive stall. Vitrine looks the image up with one
// list call by id (`GET /v2/images?id=in:…&limit=1`, docs/glance-backend.md),
// not with Glance's own show.
import { proxyDirectShow, proxyShow } from './requests';
import { proxyRows } from './proxy-list';
import type { Scenario } from './types';

export const proxyShowScenario: Scenario = {
  name: 'proxy.show',
  description: 'GET /v2/images/{random id} through Vitrine in front of Glance vs straight to Glance, keep-alive (and new connections in full runs)',
  async run(ctx) {
    const modes = ctx.opts.quick ? [false] : [false, true];
    const { rows } = await proxyRows(ctx, this.name, modes, (fresh, single) => [proxyShow(ctx, fresh, single), proxyDirectShow(ctx, fresh, single)]);
    return rows;
  },
};

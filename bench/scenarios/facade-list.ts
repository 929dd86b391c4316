// Vitrine's Glance v2 facade listing 100 of the seeded images
// (GET /v2/images?limit=100 with X-Auth-Token) against the very same request
// on Glance, in both connection modes (as glance.list), and against the
// Fastify ceiling serving the facade's own response bytes. Repeated lists are
// answered from rendered pages (images.listCache); the same list with
// Cache-Control: no-cache shows the cost of a fresh query and rendering.
import { ceilingLike, facadeList, facadeListUncached, glanceList } from './requests';
import { rpsRow, Scenario } from './types';

export const facadeListScenario: Scenario = {
  name: 'facade.list',
  description: 'GET /v2/images?limit=100 on Vitrine\'s /v2 facade vs the same on Glance and vs the ceiling',
  async run(ctx) {
    const [vKa, vFresh, gKa, gFresh] = [facadeList(ctx, false), facadeList(ctx, true), glanceList(ctx, false), glanceList(ctx, true)];
    const uncached = facadeListUncached(ctx);
    const c = ceilingLike(ctx, vKa);
    const m = await ctx.measure([vKa, vFresh, uncached, gKa, gFresh, c]);
    const get = (r: { key: string }) => m.get(r.key)!;
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', get(vKa), get(gKa), 20),
      rpsRow(this.name, 'vs Glance, both new connection per request', get(vFresh), get(gFresh), 20),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', get(vKa), get(c), 0.3),
      rpsRow(this.name, 'page cache bypassed (no-cache) vs Glance, keep-alive', get(uncached), get(gKa)),
      rpsRow(this.name, 'page cache bypassed (no-cache) vs Fastify ceiling, keep-alive', get(uncached), get(c)),
    ];
  },
};

// Vitrine's GraphQL list (first 100 of the seeded images, newest first, the
// fields Glance returns) against Glance's list, in both connection modes,
// and against the Fastify ceiling serving Vitrine's own response bytes.
// Repeated queries are answered from kept results (graphql.responseCache);
// the same query with Cache-Control: no-cache shows the cost of executing it.
import { ceilingLike, glanceList, vitrineList, vitrineListUncached } from './requests';
import { rpsRow, Scenario } from './types';

export const graphqlListScenario: Scenario = {
  name: 'graphql.list',
  description: 'images(first: 100) on Vitrine vs Glance GET /v2/images?limit=100 and vs the ceiling',
  async run(ctx) {
    const [vKa, vFresh, gKa, gFresh] = [vitrineList(ctx, false), vitrineList(ctx, true), glanceList(ctx, false), glanceList(ctx, true)];
    const uncached = vitrineListUncached(ctx);
    const c = ceilingLike(ctx, vKa);
    const m = await ctx.measure([vKa, vFresh, uncached, gKa, gFresh, c]);
    const get = (r: { key: string }) => m.get(r.key)!;
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', get(vKa), get(gKa), 20),
      rpsRow(this.name, 'vs Glance, both new connection per request', get(vFresh), get(gFresh), 20),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', get(vKa), get(c), 0.1),
      rpsRow(this.name, 'result cache bypassed (no-cache) vs Glance, keep-alive', get(uncached), get(gKa)),
      rpsRow(this.name, 'result cache bypassed (no-cache) vs Fastify ceiling, keep-alive', get(uncached), get(c)),
    ];
  },
};

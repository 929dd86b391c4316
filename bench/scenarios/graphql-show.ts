// Vitrine's GraphQL image(id) of a random seeded image vs Glance's show.
import { ceilingLike, glanceShow, vitrineShow } from './requests';
import { rpsRow, Scenario } from './types';

export const graphqlShowScenario: Scenario = {
  name: 'graphql.show',
  description: 'image(id) on Vitrine vs Glance GET /v2/images/{id} and vs the ceiling, keep-alive',
  async run(ctx) {
    const [v, g] = [vitrineShow(ctx), glanceShow(ctx)];
    const c = ceilingLike(ctx, v);
    const m = await ctx.measure([v, g, c]);
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', m.get(v.key)!, m.get(g.key)!, 10),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', m.get(v.key)!, m.get(c.key)!, 0.1),
    ];
  },
};

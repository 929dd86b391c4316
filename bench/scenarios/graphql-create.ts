// Vitrine's createImage mutation vs Glance's POST /v2/images.
import { ceilingLike, glanceCreate, vitrineCreate } from './requests';
import { rpsRow, Scenario } from './types';

export const graphqlCreateScenario: Scenario = {
  name: 'graphql.create',
  description: 'createImage on Vitrine vs Glance POST /v2/images and vs the ceiling, keep-alive',
  async run(ctx) {
    const [v, g] = [vitrineCreate(ctx), glanceCreate(ctx)];
    const c = ceilingLike(ctx, v);
    const m = await ctx.measure([v, g, c]);
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', m.get(v.key)!, m.get(g.key)!, 10),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', m.get(v.key)!, m.get(c.key)!, 0.1),
    ];
  },
};

// Vitrine's Glance v2 facade creating images (POST /v2/images, the same
// bodies as glance.create) against Glance and the Fastify ceiling serving
// the facade's 201 body. Runs with the other creates (it grows the tables).
import { ceilingLike, facadeCreate, glanceCreate } from './requests';
import { rpsRow, Scenario } from './types';

export const facadeCreateScenario: Scenario = {
  name: 'facade.create',
  description: 'POST /v2/images on Vitrine\'s /v2 facade vs Glance and vs the ceiling, keep-alive',
  async run(ctx) {
    const [v, g] = [facadeCreate(ctx), glanceCreate(ctx)];
    const c = ceilingLike(ctx, v);
    const m = await ctx.measure([v, g, c]);
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', m.get(v.key)!, m.get(g.key)!, 10),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', m.get(v.key)!, m.get(c.key)!, 0.3),
    ];
  },
};

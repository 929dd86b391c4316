// Vitrine's Glance v2 facade showing one random seeded image
// (GET /v2/images/{id}) against Glance's show and the Fastify ceiling
// serving the facade's bytes; keep-alive, as glance.show (~1 KiB answers).
import { ceilingLike, facadeShow, glanceShow } from './requests';
import { rpsRow, Scenario } from './types';

export const facadeShowScenario: Scenario = {
  name: 'facade.show',
  description: 'GET /v2/images/{random id} on Vitrine\'s /v2 facade vs Glance and vs the ceiling, keep-alive',
  async run(ctx) {
    const [v, g] = [facadeShow(ctx), glanceShow(ctx)];
    const c = ceilingLike(ctx, v);
    const m = await ctx.measure([v, g, c]);
    return [
      rpsRow(this.name, 'vs Glance, both keep-alive', m.get(v.key)!, m.get(g.key)!, 10),
      rpsRow(this.name, 'vs Fastify ceiling (same JSON), keep-alive', m.get(v.key)!, m.get(c.key)!, 0.3),
    ];
  },
};

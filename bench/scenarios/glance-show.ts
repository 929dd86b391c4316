// Baseline: Glance showing one random seeded image (~1 KiB, below the size
// where the keep-alive stall appears, so keep-alive is the fair mode).
import { ceilingLike, glanceShow } from './requests';
import { rpsRow, Scenario } from './types';

export const glanceShowScenario: Scenario = {
  name: 'glance.show',
  description: 'GET /v2/images/{random id} on Glance vs the Fastify ceiling, keep-alive',
  async run(ctx) {
    const g = glanceShow(ctx);
    const c = ceilingLike(ctx, g);
    const m = await ctx.measure([g, c]);
    return [rpsRow(this.name, 'show one image, keep-alive', m.get(g.key)!, m.get(c.key)!)];
  },
};

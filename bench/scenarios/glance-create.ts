// Baseline: Glance creating images (metadata only; SQLite-bound). Runs after
// the read scenarios because it grows the image table.
import { ceilingLike, glanceCreate } from './requests';
import { rpsRow, Scenario } from './types';

export const glanceCreateScenario: Scenario = {
  name: 'glance.create',
  description: 'POST /v2/images on Glance vs the Fastify ceiling, keep-alive',
  async run(ctx) {
    const g = glanceCreate(ctx);
    const c = ceilingLike(ctx, g);
    const m = await ctx.measure([g, c]);
    return [rpsRow(this.name, 'create image, keep-alive', m.get(g.key)!, m.get(c.key)!)];
  },
};

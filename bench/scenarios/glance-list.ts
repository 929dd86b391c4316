// Baseline: Glance listing 100 of the seeded images, with reused and with
// fresh connections (Glance stalls ~40 ms on reused connections for 16-64
// KiB bodies: eventlet's two send()s + no TCP_NODELAY + delayed ACK), next
// to the bare Fastify ceiling serving the same bytes.
import { ratio } from '../lib/stats';
import { ceilingLike, glanceList } from './requests';
import { rpsRow, Scenario } from './types';

export const glanceListScenario: Scenario = {
  name: 'glance.list',
  description: 'GET /v2/images?limit=100 on Glance vs the Fastify ceiling, keep-alive and new connections',
  async run(ctx) {
    const [ka, fresh] = [glanceList(ctx, false), glanceList(ctx, true)];
    const [cka, cfresh] = [ceilingLike(ctx, ka), ceilingLike(ctx, fresh)];
    const m = await ctx.measure([ka, fresh, cka, cfresh]);
    const [gKa, gFresh] = [m.get(ka.key)!, m.get(fresh.key)!];
    return [
      rpsRow(this.name, 'list 100, keep-alive', gKa, m.get(cka.key)!),
      rpsRow(this.name, 'list 100, new connection per request', gFresh, m.get(cfresh.key)!),
      {
        // > 1 means reused connections are slower: the delayed-ACK stall.
        scenario: this.name,
        metric: 'keep-alive stall: p50 latency keep-alive / new connection',
        unit: 'ms',
        subject: { label: gKa.label, value: gKa.p50 },
        baseline: { label: gFresh.label, value: gFresh.p50 },
        ratio: ratio(gKa.p50, gFresh.p50),
      },
    ];
  },
};

// Memory: resident set size (VmRSS) of Vitrine at rest (after seeding, 1 s
// idle) and its peak while serving the GraphQL list load, against Glance
// (all processes of its group: parent + workers) at rest and under its
// list load. Lower is better.
import { BenchContext } from '../lib/context';
import { runLoad } from '../lib/load';
import { groupRssBytes, rssBytes, sleep } from '../lib/proc';
import { ratio, summarize, Summary } from '../lib/stats';
import type { Row } from '../lib/report';
import { glanceList, vitrineList } from './requests';
import { Scenario } from './types';

const MiB = 1024 * 1024;

/** Peak RSS (MiB) sampled every 100 ms while `work` runs. */
async function peakDuring(read: () => number, work: Promise<unknown>): Promise<number> {
  let peak = read();
  let done = false;
  void work.finally(() => (done = true));
  for (let i = 0; i < 100_000 && !done; i++) {
    peak = Math.max(peak, read() || 0);
    await sleep(100);
  }
  await work;
  return peak / MiB;
}

async function sample(ctx: BenchContext, read: () => number, load: Parameters<typeof runLoad>[0]): Promise<{ rest: Summary; load: Summary }> {
  const rest: number[] = [];
  const peak: number[] = [];
  for (let i = 0; i < ctx.opts.rounds; i++) {
    await sleep(1000);
    rest.push(read() / MiB);
    const run = runLoad(load, ctx.opts.seconds);
    peak.push(await peakDuring(read, run));
    const res = await run;
    // RSS under a load that fails fast would flatter the subject.
    if (res.non2xx + res.errors > Math.max(5, 0.01 * res.requests)) {
      throw new Error(`memory: ${res.non2xx} non-2xx / ${res.errors} errors of ${res.requests} requests to ${load.url}${load.path}`);
    }
  }
  return { rest: summarize(rest), load: summarize(peak) };
}

function memRow(name: string, metric: string, v: Summary, g: Summary): Row {
  return {
    scenario: name,
    metric,
    unit: 'MiB',
    subject: { label: 'Vitrine', value: v },
    baseline: { label: 'Glance', value: g },
    ratio: ratio(v, g),
  };
}

export const memoryScenario: Scenario = {
  name: 'memory',
  description: 'RSS of Vitrine vs Glance (whole process group), at rest and under the list load',
  async run(ctx) {
    const [v, g] = [await ctx.vitrine(), await ctx.glance()];
    const vm = await sample(ctx, () => rssBytes(v.pid), await vitrineList(ctx, false).spec());
    const gm = await sample(ctx, () => groupRssBytes(g.pid), await glanceList(ctx, false).spec());
    return [
      memRow(this.name, 'RSS at rest, after seeding (lower is better)', vm.rest, gm.rest),
      memRow(this.name, 'peak RSS under list load (lower is better)', vm.load, gm.load),
    ];
  },
};

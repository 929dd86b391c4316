// Cold start: spawn to the first successful GET /healthz on an empty data
// directory (Vitrine creates its DB and admin token on the way). Glance's
// equivalent is `glance-dev up --fresh` on a new directory (config, DB
// migration, process start, first GET /versions); its process-only start
// (spawn -> /versions, DB already migrated) is reported as well.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchContext } from '../lib/context';
import { ratio, summarize } from '../lib/stats';
import { glanceUp } from '../targets/glance';
import { NotRunnable, resolveLaunch, spawnVitrine } from '../targets/vitrine';
import { Scenario } from './types';

const TARGET_S = 1.5;

async function vitrineStart(ctx: BenchContext, port: number): Promise<number> {
  const { svc, readyMs } = await spawnVitrine(ctx, 'vitrine-cold', port);
  await svc.stop();
  return readyMs / 1000;
}

function glanceStart(ctx: BenchContext, port: number, round: number): { whole: number; process: number } {
  const dir = join(ctx.workDir, `glance-cold-${round}`);
  const t0 = performance.now();
  const up = glanceUp(ctx, port, dir, ['--fresh', '--workers', String(ctx.opts.glanceWorkers)]);
  const whole = (performance.now() - t0) / 1000;
  const processOnly = Number(readFileSync(join(up.env.GLANCE_DIR, 'run', 'ready-seconds'), 'utf8'));
  up.stop();
  return { whole, process: processOnly };
}

export const coldStartScenario: Scenario = {
  name: 'cold_start',
  description: 'spawn -> first /healthz on an empty data dir (Vitrine) vs glance-dev up --fresh (Glance)',
  async run(ctx) {
    const vPort = ctx.opts.vitrinePort + 1;
    const gPort = ctx.opts.glancePort + 1;
    // Without a runnable Vitrine, Glance's start is still measured.
    let missing: string | undefined;
    try {
      await resolveLaunch(ctx);
    } catch (err) {
      if (!(err instanceof NotRunnable)) throw err;
      missing = `Vitrine not runnable: ${err.message}`;
    }
    const v: number[] = [];
    const gWhole: number[] = [];
    const gProc: number[] = [];
    for (let i = 0; i < ctx.opts.rounds; i++) {
      if (!missing) v.push(await vitrineStart(ctx, vPort));
      const g = glanceStart(ctx, gPort, i);
      gWhole.push(g.whole);
      gProc.push(g.process);
      ctx.log(`  cold start round ${i + 1}: Vitrine ${missing ? 'n/a' : v[i].toFixed(2)} s, Glance ${g.whole.toFixed(2)} s (process only ${g.process.toFixed(2)} s)`);
    }
    const [sv, sgw, sgp] = [summarize(v), summarize(gWhole), summarize(gProc)];
    if (missing) {
      return [
        { scenario: this.name, metric: 'spawn -> first /healthz, empty data dir', unit: 's', skipped: missing, baseline: { label: 'Glance, glance-dev up --fresh', value: sgw }, target: { text: `< ${TARGET_S} s`, met: false } },
        { scenario: this.name, metric: 'vs Glance process only', unit: 's', skipped: missing, baseline: { label: 'Glance spawn -> /versions', value: sgp } },
      ];
    }
    return [
      {
        scenario: this.name,
        metric: 'spawn -> first /healthz, empty data dir (lower is better)',
        unit: 's',
        subject: { label: 'Vitrine', value: sv },
        baseline: { label: 'Glance, glance-dev up --fresh', value: sgw },
        ratio: ratio(sv, sgw),
        target: { text: `< ${TARGET_S} s`, met: sv.median < TARGET_S },
      },
      {
        scenario: this.name,
        metric: 'vs Glance process only (DB already migrated; lower is better)',
        unit: 's',
        subject: { label: 'Vitrine', value: sv },
        baseline: { label: 'Glance spawn -> /versions', value: sgp },
        ratio: ratio(sv, sgp),
      },
    ];
  },
};

// Vitrine benchmark harness: `npm run bench [-- --quick] [-- --only a,b]`.
// Every figure is a ratio against a baseline measured in the same run on the
// same machine (real Glance, a bare Fastify ceiling). See docs/benchmarks.md.
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { BenchContext, BenchOptions } from './lib/context';
import { installExitHandlers, runCleanups } from './lib/proc';
import { consoleTable, machineInfo, Row, writeReport } from './lib/report';
import { scenarios } from './scenarios';
import { NotRunnable } from './targets/vitrine';

/**
 * What `--quick` runs unless `--only` names others: the hot paths against Glance and the
 * ceiling, and the data plane, so a developer sees the main ratios within about 3 minutes.
 * Fan-out, proxy, Swift and scale-out need their own minutes: `--quick --only <name>`.
 */
const QUICK_SCENARIOS = ['graphql.list', 'graphql.show', 'facade.list', 'facade.show', 'blob.upload'];

const USAGE = `usage: npm run bench -- [--quick] [--only name,...] [--rounds N] [--seconds S]
                       [--connections N] [--seed N] [--glance-workers N] [--no-build] [--list]
scenarios: ${scenarios.map((s) => s.name).join(', ')}`;

function parseArgs(argv: string[]): { opts: BenchOptions; only?: string[]; list: boolean } {
  const quick = argv.includes('--quick');
  const opts: BenchOptions = {
    quick,
    rounds: quick ? 3 : 5,
    seconds: quick ? 2 : 5,
    warmupSeconds: 1,
    connections: 8,
    seedCount: quick ? 1000 : 10_000,
    seedParallel: 12,
    glancePort: 19292,
    // Glance's own default for `workers` is the number of CPUs.
    glanceWorkers: cpus().length,
    vitrinePort: 19380,
    ceilingPort: 19390,
    build: true,
    repoRoot: resolve(__dirname, '..'),
  };
  let only: string[] | undefined;
  let list = false;
  const num = (v: string | undefined, name: string): number => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--quick': break;
      case '--only': only = (argv[++i] ?? '').split(',').filter(Boolean); break;
      case '--rounds': opts.rounds = Math.round(num(argv[++i], a)); break;
      case '--seconds': opts.seconds = num(argv[++i], a); break;
      case '--connections': opts.connections = Math.round(num(argv[++i], a)); break;
      case '--seed': opts.seedCount = Math.round(num(argv[++i], a)); break;
      case '--glance-workers': opts.glanceWorkers = Math.round(num(argv[++i], a)); break;
      case '--no-build': opts.build = false; break;
      case '--list': list = true; break;
      case '-h': case '--help': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (quick && !only) only = QUICK_SCENARIOS;
  const unknown = only?.filter((n) => !scenarios.some((s) => s.name === n)) ?? [];
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}\n${USAGE}`);
  return { opts, only, list };
}

function loadAverage1m(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}

async function main(): Promise<number> {
  const { opts, only, list } = parseArgs(process.argv.slice(2));
  if (list) {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(20)} ${s.description}\n`);
    return 0;
  }
  installExitHandlers();
  const machine = machineInfo();
  const ctx = new BenchContext(opts);
  const selected = scenarios.filter((s) => !only || only.includes(s.name));
  ctx.log(`${selected.length} scenario(s), ${opts.rounds} rounds x ${opts.seconds} s, ${opts.connections} connections; work dir ${ctx.workDir}`);
  if (opts.quick) ctx.note(`Quick mode: ${opts.seedCount} images seeded per side instead of 10,000; ${opts.rounds} rounds of ${opts.seconds} s.`);
  const rows: Row[] = [];
  const loadAverages: Record<string, { before: number; after: number }> = {};
  let failures = 0;
  const t0 = performance.now();
  try {
    for (const s of selected) {
      ctx.log(`--- ${s.name}: ${s.description}`);
      // The machine may be shared: the load around each scenario says how far to trust it.
      const before = loadAverage1m();
      try {
        rows.push(...(await s.run(ctx)));
      } catch (err) {
        const reason = err instanceof NotRunnable ? `Vitrine not runnable: ${err.message}` : `failed: ${(err as Error).message.split('\n')[0]}`;
        if (!(err instanceof NotRunnable)) {
          failures++;
          process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        }
        ctx.log(`${s.name}: ${reason}`);
        rows.push({ scenario: s.name, metric: s.description, unit: '', skipped: reason });
      } finally {
        const after = loadAverage1m();
        loadAverages[s.name] = { before, after };
        ctx.log(`${s.name}: 1-minute load average ${before} before, ${after} after`);
      }
    }
  } finally {
    await ctx.close();
    runCleanups();
  }
  machine.loadavgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const { repoRoot: _root, ...reportOpts } = opts;
  // Only a full run replaces latest.*, the figures docs/benchmarks.md quotes.
  const reportName = opts.quick ? 'quick' : only ? 'partial' : 'latest';
  const files = writeReport(join(opts.repoRoot, 'bench', 'results'), {
    machine,
    options: reportOpts,
    rows,
    measurements: [...ctx.measurements.values()],
    extra: { ...ctx.extra, loadAverage1m: loadAverages, totalSeconds: Math.round((performance.now() - t0) / 1000) },
    notes: ctx.notes,
  }, reportName);
  process.stdout.write(`\n${consoleTable(rows)}\n\nwritten: ${files.md}, ${files.json} (${Math.round((performance.now() - t0) / 1000)} s)\n`);
  // Keep the logs of a failed run for inspection; otherwise leave no trace.
  if (failures) process.stderr.write(`bench: logs kept in ${ctx.workDir}\n`);
  else rmSync(ctx.workDir, { recursive: true, force: true });
  return failures ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    runCleanups();
    process.exit(2);
  },
);

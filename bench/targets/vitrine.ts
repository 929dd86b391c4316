// The subject: Vitrine itself, built once and started from dist/ on an
// empty data directory, then seeded with the same images as Glance through
// the GraphQL createImage mutation.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BenchContext } from '../lib/context';
import { requestJson, runPool } from '../lib/http';
import { runSync, Service, sleep, startService, waitForHttp } from '../lib/proc';
import { CREATE_IMAGE, graphqlInput, seedImage } from '../lib/fixtures';

export interface VitrineTarget {
  url: string;
  pid: number;
  token: string;
  dataDir: string;
  ids: string[];
  seedSeconds: number;
  launch: string;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

export interface Launch {
  command: string;
  args: string[];
  /** How it was started, for the report. */
  how: string;
}

/** Thrown when Vitrine cannot be started at all; scenarios report it as skipped. */
export class NotRunnable extends Error {}

/** Builds dist/ once per run and says how to start Vitrine. */
export function resolveLaunch(ctx: BenchContext): Promise<Launch> {
  return ctx.once('vitrine-launch', async () => {
    const root = ctx.opts.repoRoot;
    // BENCH_VITRINE_ENTRY: benchmark another build (e.g. an older dist/main.js).
    const entry = process.env.BENCH_VITRINE_ENTRY;
    if (entry) return { command: process.execPath, args: [entry, 'serve'], how: `node ${entry} serve (BENCH_VITRINE_ENTRY)` };
    if (!existsSync(join(root, 'src', 'main.ts'))) throw new NotRunnable('src/main.ts does not exist yet');
    if (ctx.opts.build) {
      ctx.log('npm run build');
      try {
        runSync('npm', ['run', '--silent', 'build'], { cwd: root, timeoutMs: 300_000 });
      } catch (err) {
        // tsx does not type-check, so a type error elsewhere does not stop it.
        ctx.note(`npm run build failed, so Vitrine ran under tsx (slower start): ${String(err).split('\n').slice(0, 4).join(' ')}`);
        return { command: process.execPath, args: ['--import', 'tsx', join(root, 'src', 'main.ts'), 'serve'], how: 'node --import tsx src/main.ts serve (build failed)' };
      }
    }
    if (!existsSync(join(root, 'dist', 'main.js'))) throw new NotRunnable('dist/main.js missing after the build');
    return { command: process.execPath, args: [join(root, 'dist', 'main.js'), 'serve'], how: 'node dist/main.js serve' };
  });
}

/**
 * Vitrine's default GraphQL cost limit (graphql.maxCost 5000) rejects the
 * benchmark's list query: 100 images with the fields Glance returns cost
 * 8187.5. The harness raises the limit in a config file, the only place the
 * setting can be changed, and says so in the report.
 */
export const BENCH_MAX_COST = 20_000;

/**
 * Vitrine configuration keys a scenario sets on top of the harness's (backends,
 * database, events, auth). Top-level keys replace the harness's.
 */
export type VitrineConfig = Record<string, unknown>;

function writeBenchConfig(dataDir: string, extra: VitrineConfig): string {
  const file = join(dataDir, '..', `${basename(dataDir)}.config.json`);
  writeFileSync(file, `${JSON.stringify({ graphql: { maxCost: BENCH_MAX_COST }, ...extra }, null, 2)}\n`);
  return file;
}

export function vitrineEnv(port: number, dataDir: string, extra: VitrineConfig = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    VITRINE_CONFIG: writeBenchConfig(dataDir, extra),
    VITRINE_PORT: String(port),
    VITRINE_HOST: '127.0.0.1',
    VITRINE_DATA_DIR: dataDir,
    VITRINE_MODE: 'production',
    VITRINE_LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
  };
}

/**
 * Spawns Vitrine on an empty data dir, with `config` on top of the harness's
 * configuration file; resolves when /healthz answers.
 */
export async function spawnVitrine(ctx: BenchContext, name: string, port: number, config: VitrineConfig = {}): Promise<{ svc: Service; dataDir: string; readyMs: number }> {
  const launch = await resolveLaunch(ctx);
  const dataDir = mkdtempSync(join(ctx.workDir, `${name}-data-`));
  const t0 = performance.now();
  const svc = startService({
    name,
    command: launch.command,
    args: launch.args,
    env: vitrineEnv(port, dataDir, config),
    cwd: ctx.opts.repoRoot,
    logFile: join(ctx.workDir, `${name}.log`),
  });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, svc, 5);
  return { svc, dataDir, readyMs: performance.now() - t0 };
}

/** The admin token Vitrine generates into its data dir when no tokens are configured. */
export async function readToken(dataDir: string): Promise<string> {
  const file = join(dataDir, 'admin-token');
  for (let i = 0; i < 100; i++) {
    if (existsSync(file)) {
      const token = readFileSync(file, 'utf8').trim();
      if (token) return token;
    }
    await sleep(50);
  }
  throw new Error(`${file} was not written within 5 s`);
}

/** POSTs one GraphQL operation; throws on HTTP or GraphQL errors. */
export async function graphql<T>(url: string, headers: Record<string, string>, operationName: string, query: string, variables?: Record<string, unknown>): Promise<{ data: T; text: string }> {
  const res = await requestJson<{ data?: T; errors?: { message: string }[] }>(`${url}/graphql`, {
    method: 'POST',
    headers,
    body: { operationName, query, variables },
  });
  if (res.status !== 200 || !res.body?.data || res.body.errors?.length) {
    throw new Error(`GraphQL ${operationName}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  }
  return { data: res.body.data, text: res.text };
}

export async function startVitrine(ctx: BenchContext): Promise<VitrineTarget> {
  const { vitrinePort: port, seedCount, seedParallel } = ctx.opts;
  const launch = await resolveLaunch(ctx);
  ctx.log(`starting Vitrine on 127.0.0.1:${port} (${launch.how})`);
  ctx.note(`Vitrine ran with graphql.maxCost = ${BENCH_MAX_COST} (config file): its default of 5000 rejects images(first: 100) with the fields Glance returns (cost 8187.5, QUERY_TOO_COSTLY).`);
  const { svc, dataDir } = await spawnVitrine(ctx, 'vitrine', port);
  const url = `http://127.0.0.1:${port}`;
  try {
    const token = await readToken(dataDir);
    const headers = { authorization: `Bearer ${token}` };
    ctx.log(`seeding Vitrine with ${seedCount} images, ${seedParallel} parallel createImage mutations`);
    const t0 = performance.now();
    const ids = await runPool(
      seedCount,
      seedParallel,
      async (i) => (await graphql<{ createImage: { id: string } }>(url, headers, 'CreateImage', CREATE_IMAGE, { input: graphqlInput(seedImage(i)) })).data.createImage.id,
      (done) => ctx.log(`  Vitrine: ${done}/${seedCount} images`),
    );
    const seedSeconds = (performance.now() - t0) / 1000;
    ctx.extra.vitrineSeed = { images: seedCount, parallel: seedParallel, seconds: Math.round(seedSeconds * 10) / 10, imagesPerSecond: Math.round(seedCount / seedSeconds), launch: launch.how };
    ctx.log(`Vitrine seeded in ${seedSeconds.toFixed(1)} s (${(seedCount / seedSeconds).toFixed(0)} images/s)`);
    return { url, pid: svc.pid, token, dataDir, ids, seedSeconds, launch: launch.how, headers, stop: () => svc.stop() };
  } catch (err) {
    await svc.stop();
    throw err;
  }
}

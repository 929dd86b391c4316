// Baseline (a): a real Glance 25.1 started with the project's own
// scripts/glance-dev on a fresh directory, seeded through its REST API.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchContext } from '../lib/context';
import { requestJson, runPool } from '../lib/http';
import { onCleanup, runSync } from '../lib/proc';
import { glanceBody, seedImage } from '../lib/fixtures';

export interface GlanceTarget {
  url: string;
  /** glance-api parent pid, also its process group id. */
  pid: number;
  dir: string;
  workers: number;
  ids: string[];
  seedSeconds: number;
  stop(): Promise<void>;
}

export function glanceDevPath(ctx: BenchContext): string {
  return join(ctx.opts.repoRoot, 'scripts', 'glance-dev');
}

export function parseEnvLines(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/**
 * `glance-dev up --port PORT --dir DIR`; returns its KEY=VALUE output.
 * Registers `glance-dev down --dir DIR` as cleanup (down by DIR, so it stops
 * exactly this instance).
 */
export function glanceUp(ctx: BenchContext, port: number, dir: string, extra: string[]): { env: Record<string, string>; stop: () => void } {
  const script = glanceDevPath(ctx);
  const down = (): void => {
    try {
      runSync(script, ['down', '--dir', dir, '-q'], { timeoutMs: 60_000 });
    } catch (err) {
      process.stderr.write(`bench: glance-dev down --dir ${dir} failed: ${String(err)}\n`);
    }
  };
  const remove = onCleanup(down);
  const env = parseEnvLines(runSync(script, ['up', '--port', String(port), '--dir', dir, '--no-clients', ...extra], { timeoutMs: 900_000 }));
  return {
    env,
    stop: () => {
      remove();
      down();
    },
  };
}

export async function startGlance(ctx: BenchContext): Promise<GlanceTarget> {
  const { glancePort, glanceWorkers, seedCount, seedParallel } = ctx.opts;
  ctx.log(`starting Glance on 127.0.0.1:${glancePort} (--fresh, ${glanceWorkers} workers)`);
  // A fixed DIR (not the run's temp dir) so a leftover instance is easy to find and stop.
  const dir = join(tmpdir(), `vitrine-glance-${glancePort}`);
  const { env, stop } = glanceUp(ctx, glancePort, dir, ['--fresh', '--workers', String(glanceWorkers)]);
  const url = env.GLANCE_URL;
  ctx.log(`seeding Glance with ${seedCount} images, ${seedParallel} parallel POST /v2/images`);
  const t0 = performance.now();
  const ids = await runPool(
    seedCount,
    seedParallel,
    async (i) => {
      const res = await requestJson<{ id: string }>(`${url}/v2/images`, { method: 'POST', body: glanceBody(seedImage(i)) });
      if (res.status !== 201) throw new Error(`Glance seed ${i}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      return res.body.id;
    },
    (done) => ctx.log(`  Glance: ${done}/${seedCount} images`),
  );
  const seedSeconds = (performance.now() - t0) / 1000;
  ctx.extra.glanceSeed = { images: seedCount, parallel: seedParallel, seconds: Math.round(seedSeconds * 10) / 10, imagesPerSecond: Math.round(seedCount / seedSeconds) };
  ctx.log(`Glance seeded in ${seedSeconds.toFixed(1)} s (${(seedCount / seedSeconds).toFixed(0)} images/s)`);
  return {
    url,
    pid: Number(env.GLANCE_PID),
    dir: env.GLANCE_DIR,
    workers: glanceWorkers,
    ids,
    seedSeconds,
    stop: async () => stop(),
  };
}

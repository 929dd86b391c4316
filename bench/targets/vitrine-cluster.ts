// Several Vitrine processes as one service (issue 9): every instance runs
// `node dist/main.js serve` with the same configuration apart from its port and
// data dir: metadata in one shared PostgreSQL schema (fresh, dropped at the
// end), events on one shared Redis channel, one shared token. The first
// instance starts alone (it runs the migrations), the others then start
// together; the images are seeded through the first one.
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { BenchContext } from '../lib/context';
import { runPool } from '../lib/http';
import { onCleanup, runSync, type Service } from '../lib/proc';
import { CREATE_IMAGE, graphqlInput, seedImage } from '../lib/fixtures';
import { graphql, spawnVitrine } from './vitrine';

export interface VitrineCluster {
  urls: string[];
  pids: number[];
  /** GraphQL auth, valid on every instance. */
  headers: Record<string, string>;
  ids: string[];
  schema: string;
  seedSeconds: number;
  stop(): Promise<void>;
}

/** Where the shared services are: BENCH_* first, then the test suite's variables, then this machine's. */
export function sharedServices(): { postgres: string; redis: string } {
  return {
    postgres: process.env.BENCH_POSTGRES_URL ?? process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redis: process.env.BENCH_REDIS_URL ?? process.env.VITRINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

async function sql(url: string, text: string): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Starts `count` instances on ports firstPort, firstPort + 1, ... and seeds them. */
export async function startCluster(ctx: BenchContext, count: number, firstPort: number): Promise<VitrineCluster> {
  const { postgres, redis } = sharedServices();
  const suffix = randomBytes(5).toString('hex');
  const schema = `vitrine_bench_${suffix}`;
  const token = randomBytes(24).toString('hex');
  // A plain CREATE (no IF NOT EXISTS): the schema is new, or the run stops here.
  await sql(postgres, `CREATE SCHEMA ${schema}`);
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    await sql(postgres, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  };
  // On Ctrl-C cleanups run synchronously: psql instead of the pg client.
  const removeCleanup = onCleanup(() => void (dropped || runSync('psql', [postgres, '-q', '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE`], { timeoutMs: 30_000 })));
  const config = {
    database: { url: postgres, schema },
    events: { url: redis, channel: `vitrine.bench.${suffix}` },
    auth: { tokens: [{ token, projectId: 'bench', userId: 'bench', roles: ['admin', 'member', 'reader'] }] },
  };
  const services: Service[] = [];
  const stop = async (): Promise<void> => {
    for (const s of services.reverse()) await s.stop();
    await drop();
    removeCleanup();
  };
  try {
    ctx.log(`starting ${count} Vitrine instances on PostgreSQL schema ${schema} and Redis channel vitrine.bench.${suffix}`);
    services.push((await spawnVitrine(ctx, 'vitrine-scale-1', firstPort, config)).svc);
    const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => spawnVitrine(ctx, `vitrine-scale-${i + 2}`, firstPort + i + 1, config)));
    services.push(...rest.map((r) => r.svc));
    const urls = services.map((_, i) => `http://127.0.0.1:${firstPort + i}`);
    const headers = { authorization: `Bearer ${token}` };
    const { seedCount, seedParallel } = ctx.opts;
    ctx.log(`seeding the cluster with ${seedCount} images through instance 1, ${seedParallel} parallel createImage mutations`);
    const t0 = performance.now();
    const ids = await runPool(
      seedCount,
      seedParallel,
      async (i) => (await graphql<{ createImage: { id: string } }>(urls[0], headers, 'CreateImage', CREATE_IMAGE, { input: graphqlInput(seedImage(i)) })).data.createImage.id,
      (done) => ctx.log(`  cluster: ${done}/${seedCount} images`),
    );
    const seedSeconds = (performance.now() - t0) / 1000;
    // Every instance must see the same store: the last one counts what the first wrote.
    const seen = await graphql<{ images: { totalCount: number } }>(urls[urls.length - 1], headers, 'Count', 'query Count { images(first: 1) { totalCount } }');
    if (seen.data.images.totalCount !== seedCount) throw new Error(`instance ${count} sees ${seen.data.images.totalCount} images, instance 1 wrote ${seedCount}`);
    ctx.extra.clusterSeed = { images: seedCount, parallel: seedParallel, seconds: Math.round(seedSeconds * 10) / 10, imagesPerSecond: Math.round(seedCount / seedSeconds) };
    ctx.log(`cluster seeded in ${seedSeconds.toFixed(1)} s (${(seedCount / seedSeconds).toFixed(0)} images/s)`);
    return { urls, pids: services.map((s) => s.pid), headers, ids, schema, seedSeconds, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

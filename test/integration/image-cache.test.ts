import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { MemoryEventBus } from '../../src/events/memory';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The image cache through the Glance facade (Glance's cache API, v2.14) and GraphQL, on the
 * real app (SQLite, file stores): statuses and bodies, the prefetcher, hits, read-through
 * filling, least-recently-used eviction, invalidation on delete and on changed data, and
 * the crash-safety of the files (leftovers dropped at start, entries kept across restarts).
 */
jest.setTimeout(60_000);

const apps: TestApp[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(imageCache: Record<string, unknown> = { enabled: true }, dataDir?: string): Promise<TestApp> {
  const app = await startTestApp({ imageCache }, dataDir ? { dataDir } : {});
  apps.push(app);
  return app;
}

function auth(app: TestApp, who: keyof TestApp['tokens'] = 'admin'): Record<string, string> {
  return { 'x-auth-token': app.tokens[who], accept: 'application/json' };
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function createImage(app: TestApp, data?: Buffer, who: keyof TestApp['tokens'] = 'admin'): Promise<string> {
  const created = await app.http('POST', '/v2/images', { headers: auth(app, who), body: { name: 'cached', disk_format: 'raw', container_format: 'bare' } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  if (data) {
    const put = await request(`${app.baseUrl}/v2/images/${id}/file`, { method: 'PUT', headers: { ...auth(app, who), 'content-type': 'application/octet-stream' }, body: data });
    await put.body.dump();
    expect(put.statusCode).toBe(204);
  }
  return id;
}

async function download(app: TestApp, id: string, headers: Record<string, string> = {}): Promise<{ status: number; data: Buffer }> {
  const res = await request(`${app.baseUrl}/v2/images/${id}/file`, { headers: { ...auth(app), ...headers } });
  return { status: res.statusCode, data: Buffer.from(await res.body.arrayBuffer()) };
}

async function cacheState(app: TestApp): Promise<{ cached_images: { image_id: string; hits: number; last_accessed: number; last_modified: number; size: number }[]; queued_images: string[] }> {
  const res = await app.http('GET', '/v2/cache', { headers: auth(app) });
  expect(res.status).toBe(200);
  return res.body;
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const cachedEntry = (app: TestApp, id: string) => until(`image ${id} in the cache`, async () => (await cacheState(app)).cached_images.find((c) => c.image_id === id));

describe('cache API (Glance v2.14)', () => {
  it('is for admins only, and answers 404 when the cache is off', async () => {
    const off = await start({ enabled: false });
    expect((await off.http('GET', '/v2/cache', { headers: auth(off, 'memberA') })).status).toBe(403);
    const res = await off.http('GET', '/v2/cache', { headers: auth(off) });
    expect(res.status).toBe(404);
    expect(res.body.message).toContain('Caching via API is not supported at this site.');

    const on = await start();
    for (const [method, path] of [['GET', '/v2/cache'], ['DELETE', '/v2/cache'], ['PUT', `/v2/cache/${await createImage(on, bytes(10, 1))}`], ['DELETE', '/v2/cache/00000000-0000-4000-8000-000000000000']] as const) {
      expect({ method, path, status: (await on.http(method, path, { headers: auth(on, 'memberA') })).status }).toEqual({ method, path, status: 403 });
    }
    expect(await cacheState(on)).toEqual({ cached_images: [], queued_images: [] });

    // As Glance with image_cache_dir set: 2.16 current, 2.14 (the cache API) listed.
    const ids = (app: TestApp) => app.http('GET', '/versions').then((r) => r.body.versions.map((v: { id: string; status: string }) => `${v.id} ${v.status}`));
    expect((await ids(on)).slice(0, 4)).toEqual(['v2.16 CURRENT', 'v2.15 SUPPORTED', 'v2.14 SUPPORTED', 'v2.9 SUPPORTED']);
    expect((await ids(off))[0]).toBe('v2.15 CURRENT');
    expect(await ids(off)).not.toContain('v2.14 SUPPORTED');
  });

  it('queues only existing active images: 404 for unknown ids, 400 for a queued image', async () => {
    const app = await start();
    expect((await app.http('PUT', '/v2/cache/non-existing-image-id', { headers: auth(app) })).status).toBe(404);
    expect((await app.http('PUT', '/v2/cache/6a6b9e52-0a3f-4bd7-9d8e-2d1f5d0b7c11', { headers: auth(app) })).status).toBe(404);
    const queued = await createImage(app);
    const refused = await app.http('PUT', `/v2/cache/${queued}`, { headers: auth(app) });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toContain('Only images with status active can be targeted for queueing');
    expect((await app.http('DELETE', '/v2/cache/6a6b9e52-0a3f-4bd7-9d8e-2d1f5d0b7c11', { headers: auth(app) })).status).toBe(404);
  });

  it('prefetches a queued image shortly after, then serves downloads from the cache and counts hits', async () => {
    const app = await start();
    const data = bytes(300_000, 2);
    // A member's private image: admins queue it, the prefetcher reads it on their behalf.
    const id = await createImage(app, data, 'memberA');
    const queued = await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) });
    expect(queued.status).toBe(202);
    // Listed as queued until the prefetcher runs (prefetchDelayMs, 1 s by default), as Tempest checks.
    expect(await cacheState(app)).toEqual({ cached_images: [], queued_images: [id] });
    const entry = await cachedEntry(app, id);
    expect(entry).toEqual({ image_id: id, hits: 0, last_accessed: expect.any(Number), last_modified: expect.any(Number), size: data.length });
    expect(Math.abs(entry.last_modified * 1000 - Date.now())).toBeLessThan(60_000);
    expect((await cacheState(app)).queued_images).toEqual([]);
    // The cache keeps an exact copy.
    expect(md5(readFileSync(join(app.dataDir, 'image-cache', 'data', id)))).toBe(md5(data));

    const got = await download(app, id);
    expect(got.status).toBe(200);
    expect(got.data.equals(data)).toBe(true);
    const partial = await download(app, id, { range: 'bytes=100-199' });
    expect(partial.status).toBe(206);
    expect(partial.data.equals(data.subarray(100, 200))).toBe(true);
    const after = (await cacheState(app)).cached_images.find((c) => c.image_id === id)!;
    expect(after.hits).toBe(2);
    expect(after.last_accessed).toBeGreaterThanOrEqual(entry.last_accessed);

    // Queueing a cached image again changes nothing.
    expect((await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) })).status).toBe(202);
    expect((await cacheState(app)).queued_images).toEqual([]);
  });

  it('fills the cache from a whole download, not from a partial one', async () => {
    const app = await start();
    const data = bytes(200_000, 3);
    const id = await createImage(app, data);
    expect((await download(app, id, { range: 'bytes=0-99' })).status).toBe(206);
    await new Promise((r) => setTimeout(r, 200));
    expect((await cacheState(app)).cached_images).toEqual([]);
    const first = await download(app, id);
    expect(first.data.equals(data)).toBe(true);
    expect((await cachedEntry(app, id)).hits).toBe(0);
    expect((await download(app, id)).data.equals(data)).toBe(true);
    expect((await cachedEntry(app, id)).hits).toBe(1);
  });

  it('evicts the least recently used images beyond maxBytes, and never caches an image larger than the cache', async () => {
    const app = await start({ enabled: true, maxBytes: 25_000 });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const id = await createImage(app, bytes(10_000, 10 + i));
      ids.push(id);
      await download(app, id);
      await cachedEntry(app, id);
      // Distinct access times.
      await new Promise((r) => setTimeout(r, 20));
      if (i === 1) await download(app, ids[0]);
    }
    // 0 and 1 fit; 2 pushes out 1, the least recently used (0 was read after 1 was cached).
    const cached = (await cacheState(app)).cached_images.map((c) => c.image_id).sort();
    expect(cached).toEqual([ids[0], ids[2]].sort());
    expect(existsSync(join(app.dataDir, 'image-cache', 'data', ids[1]))).toBe(false);

    const big = await createImage(app, bytes(30_000, 20));
    expect((await app.http('PUT', `/v2/cache/${big}`, { headers: auth(app) })).status).toBe(202);
    await until('the queue to empty', async () => (await cacheState(app)).queued_images.length === 0);
    expect((await download(app, big)).data.length).toBe(30_000);
    await new Promise((r) => setTimeout(r, 200));
    expect((await cacheState(app)).cached_images.map((c) => c.image_id)).not.toContain(big);
  });

  it('drops an image from the cache when it is deleted', async () => {
    const app = await start();
    const id = await createImage(app, bytes(5_000, 4));
    await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) });
    await cachedEntry(app, id);
    expect((await app.http('DELETE', `/v2/images/${id}`, { headers: auth(app) })).status).toBe(204);
    expect((await cacheState(app)).cached_images).toEqual([]);
    expect(readdirSync(join(app.dataDir, 'image-cache', 'data'))).toEqual([]);
  });

  it('drops an image deleted through another instance that shares the event bus', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-cache-'));
    dirs.push(dataDir);
    // Two instances on one database and one bus, each with its own cache folder.
    const bus = new MemoryEventBus();
    const a = await startTestApp({ imageCache: { enabled: true, dir: join(dataDir, 'cache-a') } }, { dataDir, app: { bus } });
    apps.push(a);
    const b = await startTestApp({ imageCache: { enabled: true, dir: join(dataDir, 'cache-b') } }, { dataDir, app: { bus } });
    apps.push(b);
    const id = await createImage(a, bytes(3_000, 12));
    await download(b, id);
    await cachedEntry(b, id);
    expect((await cacheState(a)).cached_images).toEqual([]);
    expect((await a.http('DELETE', `/v2/images/${id}`, { headers: auth(a) })).status).toBe(204);
    // The entry leaves the index first, then its files (removal is asynchronous): wait for both.
    await until('the entry to go from the other instance', async () => (await cacheState(b)).cached_images.length === 0);
    await until('its bytes to go from the other instance', async () => !existsSync(join(dataDir, 'cache-b', 'data', id)));
  });

  it('serves cached bytes only while they match the image: stale entries are dropped, corrupt ones fail and are dropped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-cache-'));
    dirs.push(dataDir);
    const app = await start({ enabled: true }, dataDir);
    const data = bytes(50_000, 5);
    const id = await createImage(app, data);
    await download(app, id);
    await cachedEntry(app, id);
    const dir = join(app.dataDir, 'image-cache', 'data');

    // The image's data changed (here: the entry describes other bytes): never served, dropped.
    const described = JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8'));
    writeFileSync(join(dir, `${id}.json`), JSON.stringify({ ...described, md5: md5(Buffer.from('other')) }));
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    const again = await start({ enabled: true }, dataDir);
    expect((await cacheState(again)).cached_images.map((c) => c.image_id)).toEqual([id]);
    const fresh = await download(again, id);
    expect(fresh.data.equals(data)).toBe(true);
    // That download refilled the cache with the right bytes.
    const refilled = await until('the refilled entry', async () => {
      const e = (await cacheState(again)).cached_images.find((c) => c.image_id === id);
      return e && JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')).md5 === md5(data) ? e : undefined;
    });
    expect(refilled.hits).toBe(0);

    // Bytes rotted on disk (same size): the download fails rather than pass them on, and the entry goes.
    const rotten = Buffer.from(data);
    rotten[1000] ^= 0xff;
    writeFileSync(join(dir, id), rotten);
    const broken = await request(`${again.baseUrl}/v2/images/${id}/file`, { headers: auth(again) });
    // Small data fails before the answer starts (a 500), larger data mid-stream (a cut connection).
    const outcome = await broken.body.arrayBuffer().then(() => broken.statusCode, () => 'cut');
    expect([500, 'cut']).toContain(outcome);
    await until('the corrupt entry to go', async () => (await cacheState(again)).cached_images.length === 0);
    expect((await download(again, id)).data.equals(data)).toBe(true);
  });

  it('leaves nothing behind when a filling download stops half-way', async () => {
    const app = await start();
    const data = bytes(8 * 1024 * 1024, 9);
    const id = await createImage(app, data);
    const res = await request(`${app.baseUrl}/v2/images/${id}/file`, { headers: auth(app), highWaterMark: 64 * 1024 });
    let seen = 0;
    for await (const chunk of res.body) {
      seen += (chunk as Buffer).length;
      if (seen > 256 * 1024) break;
    }
    const cache = join(app.dataDir, 'image-cache');
    await until('the incomplete write to go', async () => readdirSync(join(cache, 'incomplete')).length === 0);
    expect((await cacheState(app)).cached_images).toEqual([]);
    expect(readdirSync(join(cache, 'data'))).toEqual([]);
    // The next whole download fills it.
    expect((await download(app, id)).data.equals(data)).toBe(true);
    expect((await cachedEntry(app, id)).size).toBe(data.length);
  });

  it('keeps whole entries across a restart and drops half-written leftovers', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-cache-'));
    dirs.push(dataDir);
    const app = await start({ enabled: true }, dataDir);
    const data = bytes(20_000, 6);
    const id = await createImage(app, data);
    await download(app, id);
    await cachedEntry(app, id);
    await download(app, id);
    await app.close();
    apps.splice(apps.indexOf(app), 1);

    // What a crash leaves: a write in progress, and bytes renamed without their description.
    const cache = join(dataDir, 'image-cache');
    writeFileSync(join(cache, 'incomplete', `${id}.abc123`), 'half');
    const orphan = '0b7f6c1e-58a4-4c1f-9f0e-2b3c4d5e6f70';
    writeFileSync(join(cache, 'data', orphan), 'no description');
    mkdirSync(join(cache, 'queue'), { recursive: true });

    const again = await start({ enabled: true }, dataDir);
    const state = await cacheState(again);
    expect(state.cached_images).toEqual([expect.objectContaining({ image_id: id, hits: 1, size: data.length })]);
    expect(readdirSync(join(cache, 'incomplete'))).toEqual([]);
    expect(existsSync(join(cache, 'data', orphan))).toBe(false);
    expect((await download(again, id)).data.equals(data)).toBe(true);
  });

  it('clears the cache, the queue or both, per x-image-cache-clear-target', async () => {
    const app = await start();
    const id = await createImage(app, bytes(1_000, 7));
    await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) });
    await cachedEntry(app, id);
    const invalid = await app.http('DELETE', '/v2/cache', { headers: { ...auth(app), 'x-image-cache-clear-target': 'invalid' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.message).toContain("'x-image-cache-clear-target' must be 'cache', 'queue' or empty string");
    expect((await app.http('DELETE', '/v2/cache', { headers: { ...auth(app), 'x-image-cache-clear-target': 'queue' } })).status).toBe(204);
    expect((await cacheState(app)).cached_images).toHaveLength(1);
    expect((await app.http('DELETE', '/v2/cache', { headers: { ...auth(app), 'x-image-cache-clear-target': 'cache' } })).status).toBe(204);
    expect(await cacheState(app)).toEqual({ cached_images: [], queued_images: [] });

    await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) });
    await cachedEntry(app, id);
    expect((await app.http('DELETE', `/v2/cache/${id}`, { headers: auth(app) })).status).toBe(204);
    expect((await cacheState(app)).cached_images).toEqual([]);
    await app.http('PUT', `/v2/cache/${id}`, { headers: auth(app) });
    await cachedEntry(app, id);
    expect((await app.http('DELETE', '/v2/cache', { headers: auth(app) })).status).toBe(204);
    expect(await cacheState(app)).toEqual({ cached_images: [], queued_images: [] });
  });
});

describe('image cache over GraphQL', () => {
  const STATE = 'cachedImages { imageId hits size lastAccessed lastModified } queuedImageIds';

  it('shows, queues, removes and clears for admins; FORBIDDEN for others, CACHE_DISABLED when off', async () => {
    const app = await start();
    const id = await createImage(app, bytes(4_000, 8));
    const queued = await app.gql(`mutation($id: ID!) { queueImageForCache(id: $id) { ${STATE} } }`, { id });
    expect(queued.body.errors).toBeUndefined();
    await cachedEntry(app, id);
    const state = await app.gql(`{ imageCache { ${STATE} } }`);
    expect(state.body.data.imageCache).toEqual({ cachedImages: [{ imageId: id, hits: 0, size: 4000, lastAccessed: expect.stringMatching(/^\d{4}-/), lastModified: expect.stringMatching(/^\d{4}-/) }], queuedImageIds: [] });

    const denied = await app.gql(`{ imageCache { ${STATE} } }`, {}, app.tokens.memberA);
    expect(denied.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');

    const removed = await app.gql(`mutation($id: ID!) { removeImageFromCache(id: $id) { ${STATE} } }`, { id });
    expect(removed.body.data.removeImageFromCache).toEqual({ cachedImages: [], queuedImageIds: [] });
    await download(app, id);
    await cachedEntry(app, id);
    const cleared = await app.gql('mutation { clearImageCache(target: CACHE) { cacheDeleted queueDeleted } }');
    expect(cleared.body.data.clearImageCache).toEqual({ cacheDeleted: 1, queueDeleted: 0 });

    const off = await start({ enabled: false });
    const disabled = await off.gql(`{ imageCache { ${STATE} } }`);
    expect(disabled.body.errors?.[0].extensions?.code).toBe('CACHE_DISABLED');
  });
});

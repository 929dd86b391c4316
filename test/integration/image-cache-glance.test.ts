import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startTestApp, type TestApp } from '../helpers/app';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * The image cache in front of a real Glance 25.1 (Vitrine's `glance` backend): a download
 * that misses fills the cache, later downloads are served from it (Glance is still asked
 * for the image, so policy and the checksum come from it), the prefetcher reads through the proxy, and deleting the image drops it.
 */
let glance: RealGlance;
let app: TestApp;
const DATA = randomBytes(1024 * 1024 + 5);
const MD5 = createHash('md5').update(DATA).digest('hex');

beforeAll(async () => {
  glance = await startGlance();
  app = await startTestApp({
    backends: [{ name: 'legacy', driver: 'glance', url: glance.url, identity: 'headers', timeouts: { connectMs: 1000, requestMs: 30_000, idleMs: 30_000 } }],
    imageCache: { enabled: true, prefetchDelayMs: 0 },
  });
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await app?.close();
  await glance?.stop();
});

jest.setTimeout(120_000);

const headers = (token = app.tokens.admin) => ({ 'x-auth-token': token, accept: 'application/json' });

async function cached(): Promise<{ image_id: string; hits: number; size: number }[]> {
  return (await app.http('GET', '/v2/cache', { headers: headers() })).body.cached_images;
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('timed out');
}

async function createInGlance(): Promise<string> {
  const created = await app.http('POST', '/v2/images', { headers: headers(app.tokens.memberA), body: { name: 'cached-from-glance', disk_format: 'raw', container_format: 'bare' } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const put = await request(`${app.baseUrl}/v2/images/${id}/file`, { method: 'PUT', headers: { ...headers(app.tokens.memberA), 'content-type': 'application/octet-stream' }, body: DATA });
  await put.body.dump();
  expect(put.statusCode).toBe(204);
  return id;
}

async function download(id: string): Promise<Buffer> {
  const res = await request(`${app.baseUrl}/v2/images/${id}/file`, { headers: headers(app.tokens.memberA) });
  expect(res.statusCode).toBe(200);
  return Buffer.from(await res.body.arrayBuffer());
}

test('a whole download fills the cache; the next ones are hits with the same bytes', async () => {
  const id = await createInGlance();
  expect(md5(await download(id))).toBe(MD5);
  const entry = await until(async () => (await cached()).find((c) => c.image_id === id));
  expect(entry).toMatchObject({ hits: 0, size: DATA.length });
  expect(md5(await download(id))).toBe(MD5);
  expect((await cached()).find((c) => c.image_id === id)?.hits).toBe(1);

  expect((await app.http('DELETE', `/v2/images/${id}`, { headers: headers(app.tokens.memberA) })).status).toBe(204);
  expect((await cached()).find((c) => c.image_id === id)).toBeUndefined();
});

test('the prefetcher reads a queued image through the proxy', async () => {
  const id = await createInGlance();
  expect((await app.http('PUT', `/v2/cache/${id}`, { headers: headers() })).status).toBe(202);
  const entry = await until(async () => (await cached()).find((c) => c.image_id === id));
  expect(entry.size).toBe(DATA.length);
  expect(md5(await download(id))).toBe(MD5);
});

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../helpers/glance';
import { startSwift, SWIFT_START_TIMEOUT_MS, type RealSwift } from '../helpers/swift';
import { startTestApp, TEST_TOKENS, type TestApp } from '../helpers/app';

/**
 * Several Vitrine instances as one deployment, on the real shared services: PostgreSQL
 * (metadata), Swift (blobs) and Redis or NATS (events). One instance runs as a separate process so
 * that it can be killed mid-upload; the survivors clean up after it.
 */
const POSTGRES_URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BROKERS = [
  ['Redis', process.env.VITRINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'],
  ['NATS', process.env.VITRINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'],
] as const;
const ROOT = resolve(__dirname, '../..');
const DATA = randomBytes(12 * 1024 * 1024 + 5);
const MD5 = createHash('md5').update(DATA).digest('hex');

let swift: RealSwift;
const schema = `vitrine_scale_${randomBytes(5).toString('hex')}`;
const container = `vitrine-scale-${randomBytes(5).toString('hex')}`;
const channel = `vitrine.scale.${randomBytes(5).toString('hex')}`;
const TEMP_URL_KEY = randomBytes(16).toString('hex');

async function admin(sql: string): Promise<void> {
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function sharedConfig(eventsUrl: string): Record<string, unknown> {
  return {
    database: { url: POSTGRES_URL, schema },
    events: { url: eventsUrl, channel },
    blobs: {
      // Small segments: the 12 MiB images are Static Large Objects, as big images are in production.
      stores: { swift: { driver: 'swift', auth: { url: swift.authUrl, user: swift.user, key: swift.key }, container, segmentBytes: 4 * 1024 * 1024, bufferBytes: 1024 * 1024, incompleteGraceMs: 4000, tempUrlKey: TEMP_URL_KEY, redirectDownloads: true } },
    },
    dataPlane: { uploadLeaseSeconds: 5, sweepIntervalSeconds: 1 },
  };
}

beforeAll(async () => {
  swift = await startSwift();
  await admin(`CREATE SCHEMA ${schema}`);
}, SWIFT_START_TIMEOUT_MS);

afterAll(async () => {
  await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await swift?.stop();
});

const auth = { 'x-auth-token': TEST_TOKENS.memberA };

async function createImage(app: TestApp): Promise<string> {
  const res = await app.http('POST', '/v2/images', { headers: auth, body: { name: 'shared', disk_format: 'raw', container_format: 'bare' } });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function upload(baseUrl: string, id: string): Promise<number> {
  const res = await request(`${baseUrl}/v2/images/${id}/file`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: DATA });
  await res.body.dump();
  return res.statusCode;
}

async function download(baseUrl: string, id: string): Promise<Buffer> {
  const res = await request(`${baseUrl}/v2/images/${id}/file`, { headers: auth });
  expect(res.statusCode).toBe(200);
  return Buffer.from(await res.body.arrayBuffer());
}

async function statusOf(app: TestApp, id: string): Promise<string> {
  return (await app.http('GET', `/v2/images/${id}`, { headers: auth })).body.status;
}

/** Vitrine in a process of its own (`vitrine serve --config`), the way production runs it. */
async function spawnInstance(config: Record<string, unknown>, dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ ...config, host: '127.0.0.1', port, dataDir: dir, logLevel: 'warn', auth: { tokens: [{ token: TEST_TOKENS.memberA, projectId: 'project-a', userId: 'member-a', roles: ['member', 'reader'] }] } }));
  // tsx as a loader in this very process (its CLI would fork a child that a kill would miss).
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts'), 'serve', '--config', file], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`vitrine exited with ${child.exitCode}: ${stderr}`);
    const ready = await request(`${url}/readyz`).then((r) => r.body.dump().then(() => r.statusCode), () => 0);
    if (ready === 200) return { url, child };
    if (i > 600) throw new Error(`vitrine did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(BROKERS)('several instances on PostgreSQL, Swift and %s', (_broker, eventsUrl) => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await startTestApp(sharedConfig(eventsUrl));
    b = await startTestApp(sharedConfig(eventsUrl));
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  test('an image uploaded through one instance is served by the other, from Swift', async () => {
    const id = await createImage(a);
    expect(await upload(a.baseUrl, id)).toBe(204);
    const shown = (await b.http('GET', `/v2/images/${id}`, { headers: auth })).body;
    expect(shown).toMatchObject({ status: 'active', checksum: MD5, size: DATA.length, stores: 'swift' });
    expect((await download(b.baseUrl, id)).equals(DATA)).toBe(true);
    // A byte range across a segment boundary.
    const res = await request(`${b.baseUrl}/v2/images/${id}/file`, { headers: { ...auth, range: 'bytes=4194300-4194310' } });
    expect(res.statusCode).toBe(206);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(DATA.subarray(4194300, 4194311))).toBe(true);
  });

  test('data-plane downloads redirect to a Swift temp URL that serves the bytes without a token; the facade still streams', async () => {
    const id = await createImage(a);
    expect(await upload(a.baseUrl, id)).toBe(204);
    const res = await request(`${b.baseUrl}/v1/artifacts/${id}/blobs/image`, { headers: { authorization: `Bearer ${TEST_TOKENS.memberA}` } });
    await res.body.dump();
    expect(res.statusCode).toBe(302);
    const location = String(res.headers.location);
    expect(location.startsWith(`${swift.storageUrl}/${container}/`)).toBe(true);
    expect(location).toContain('temp_url_sig=');
    const direct = await request(location);
    expect(direct.statusCode).toBe(200);
    expect(Buffer.from(await direct.body.arrayBuffer()).equals(DATA)).toBe(true);
    // A tampered signature is refused by Swift.
    const tampered = await request(location.replace(/temp_url_sig=([0-9a-f])/, (_m, c: string) => `temp_url_sig=${c === '0' ? '1' : '0'}`));
    await tampered.body.dump();
    expect(tampered.statusCode).toBe(401);
    expect((await download(b.baseUrl, id)).equals(DATA)).toBe(true);
  });

  test('a subscriber on one instance sees the changes made through the other, in order', async () => {
    const client = createClient({ url: `${a.baseUrl.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token: TEST_TOKENS.memberA }, retryAttempts: 0 });
    const seen: { kind: string; to: string | null }[] = [];
    let wake: () => void = () => undefined;
    try {
      const id = await createImage(b);
      const ready = new Promise<void>((resolve) => {
        client.on('connected', () => resolve());
      });
      client.subscribe(
        { query: 'subscription($ids: [ID!]) { artifactEvents(filter: { ids: $ids }) { kind to } }', variables: { ids: [id] } },
        { next: (v) => { seen.push((v.data as { artifactEvents: { kind: string; to: string | null } }).artifactEvents); wake(); }, error: () => wake(), complete: () => wake() },
      );
      await ready;
      // graphql-ws does not acknowledge a subscribe: change the image until an event arrives, so it is live.
      for (let i = 0; seen.length === 0; i++) {
        expect((await b.http('PATCH', `/v2/images/${id}`, { headers: { ...auth, 'content-type': 'application/openstack-images-v2.1-json-patch' }, body: JSON.stringify([{ op: 'add', path: '/probe', value: String(i) }]) })).status).toBe(200);
        await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
      }
      seen.length = 0;
      expect(await upload(b.baseUrl, id)).toBe(204);
      expect((await b.http('DELETE', `/v2/images/${id}`, { headers: auth })).status).toBe(204);
      while (!seen.some((e) => e.kind === 'DELETED')) await new Promise<void>((r) => { wake = r; setTimeout(r, 500); });
      // Late UPDATED events of the probes may still arrive; the status changes must all be there, in order.
      expect(seen.filter((e) => e.kind !== 'UPDATED')).toEqual([
        { kind: 'STATUS_CHANGED', to: 'SAVING' },
        { kind: 'STATUS_CHANGED', to: 'ACTIVE' },
        { kind: 'DELETED', to: 'DELETED' },
      ]);
    } finally {
      await client.dispose();
    }
  });

  test('an import started on one instance is run by whichever claims it, and each sees the outcome', async () => {
    const source = await createImage(a);
    expect(await upload(a.baseUrl, source)).toBe(204);
    const id = await createImage(b);
    const staged = await request(`${b.baseUrl}/v2/images/${id}/stage`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: DATA });
    await staged.body.dump();
    expect(staged.statusCode).toBe(204);
    const started = await a.http('POST', `/v2/images/${id}/import`, { headers: auth, body: { method: { name: 'glance-direct' } } });
    expect(started.status).toBe(202);
    while ((await statusOf(b, id)) !== 'active') await new Promise((r) => setTimeout(r, 100));
    expect((await download(a.baseUrl, id)).equals(DATA)).toBe(true);
    const [task] = (await b.http('GET', `/v2/images/${id}/tasks`, { headers: auth })).body.tasks;
    expect(task.status).toBe('success');
  });

  test('an instance killed mid-upload: the others put the image back to queued, remove its bytes, and take a new upload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-killed-'));
    const killed = await spawnInstance(sharedConfig(eventsUrl), dir);
    try {
      const id = await createImage(a);
      // Half the bytes (several segments), then silence until the process dies.
      const half = DATA.subarray(0, 9 * 1024 * 1024);
      const pending = request(`${killed.url}/v2/images/${id}/file`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(DATA.length) },
        body: Readable.from((async function* () {
          yield half;
          await new Promise(() => undefined);
        })()),
      }).catch(() => null);
      while ((await statusOf(a, id)) !== 'saving') await new Promise((r) => setTimeout(r, 50));
      // Let segments reach Swift before the kill.
      await new Promise((r) => setTimeout(r, 1000));
      killed.child.kill('SIGKILL');
      void pending;
      // The lease (5 s) passes and a survivor's sweep (every second) ends the dead upload.
      while ((await statusOf(b, id)) !== 'queued') await new Promise((r) => setTimeout(r, 200));
      expect(await upload(b.baseUrl, id)).toBe(204);
      expect((await a.http('GET', `/v2/images/${id}`, { headers: auth })).body).toMatchObject({ status: 'active', checksum: MD5 });
      // The dead writer's segments go once they are older than the grace period.
      for (;;) {
        const listing = await request(`${swift.storageUrl}/${container}?prefix=.segments/&format=json`, { headers: { 'x-auth-token': await tokenOf(swift) } });
        const segments = (await listing.body.json()) as { name: string }[];
        const live = new Set((await liveManifests()).map((m) => m.replace(/\.slo$/, '')));
        if (segments.every((s) => live.has(s.name.split('/')[1]))) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      killed.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function tokenOf(s: RealSwift): Promise<string> {
  const res = await request(s.authUrl, { headers: { 'x-auth-user': s.user, 'x-auth-key': s.key } });
  await res.body.dump();
  return String(res.headers['x-auth-token']);
}

/** Manifests of stored blobs (`<uuid>.slo`) in the container. */
async function liveManifests(): Promise<string[]> {
  const listing = await request(`${swift.storageUrl}/${container}?format=json`, { headers: { 'x-auth-token': await tokenOf(swift) } });
  return ((await listing.body.json()) as { name: string }[]).map((o) => o.name).filter((n) => n.endsWith('.slo'));
}

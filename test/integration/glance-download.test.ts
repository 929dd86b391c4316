import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startTestApp, type TestApp } from '../helpers/app';
import { KEYSTONE_START_TIMEOUT_MS, startKeystone, type RealKeystone } from '../helpers/keystone';

/**
 * glance-download (Glance's cross-region import) on the native backend, through the Glance
 * facade: from a second Vitrine named in `imports.glanceDownload.regions` (static auth, the
 * caller's token forwarded), and from the same Vitrine found through a real Keystone's
 * service catalog (keystone auth). Failures (a bad id, an unknown region or interface, a
 * missing remote image, an unreachable remote, a redirect off the remote's host) end the
 * task as `failure` with the image back to queued and its properties untouched. The only
 * fake is a remote that redirects elsewhere (a fault no real Glance produces on request).
 */
jest.setTimeout(60_000);

const METHODS = ['glance-direct', 'web-download', 'copy-image', 'glance-download'];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(overrides: Record<string, unknown> = {}, tokens?: Parameters<typeof startTestApp>[1]): Promise<TestApp> {
  const app = await startTestApp({ imports: { methods: METHODS, pollIntervalMs: 100 }, ...overrides }, tokens);
  cleanups.push(() => app.close());
  return app;
}

function headers(token: string): Record<string, string> {
  return { 'x-auth-token': token, accept: 'application/json' };
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 17 + seed + (i >> 10)) & 0xff;
  return b;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function createImage(app: TestApp, token: string, body: Record<string, unknown>, data?: Buffer): Promise<string> {
  const created = await app.http('POST', '/v2/images', { headers: headers(token), body });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  if (data) {
    const put = await request(`${app.baseUrl}/v2/images/${id}/file`, { method: 'PUT', headers: { ...headers(token), 'content-type': 'application/octet-stream' }, body: data });
    await put.body.dump();
    expect(put.statusCode).toBe(204);
  }
  return id;
}

function importGlance(app: TestApp, token: string, id: string, method: Record<string, unknown>) {
  return app.http('POST', `/v2/images/${id}/import`, { headers: headers(token), body: { method: { name: 'glance-download', ...method } } });
}

async function settledTask(app: TestApp, token: string, id: string): Promise<{ status: string; message: string; input: any }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: headers(token) })).body.tasks as { status: string; message: string; input: any }[];
    if (tasks.length > 0 && tasks.every((t) => t.status === 'success' || t.status === 'failure')) return tasks[0];
    if (Date.now() > deadline) throw new Error(`tasks of ${id} did not settle: ${JSON.stringify(tasks)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function show(app: TestApp, token: string, id: string): Promise<Record<string, any>> {
  const res = await app.http('GET', `/v2/images/${id}`, { headers: headers(token) });
  expect(res.status).toBe(200);
  return res.body;
}

const REMOTE_PROPERTIES = [
  { op: 'add', path: '/hw_cpu_cores', value: '5' },
  { op: 'add', path: '/trait:STORAGE_DISK_SSD', value: 'required' },
  { op: 'add', path: '/os_distro', value: 'rhel' },
  { op: 'add', path: '/speed', value: '88mph' },
];

async function patch(app: TestApp, token: string, id: string, ops: unknown[]): Promise<void> {
  const res = await app.http('PATCH', `/v2/images/${id}`, { headers: { ...headers(token), 'content-type': 'application/openstack-images-v2.1-json-patch' }, body: JSON.stringify(ops) });
  expect(res.status).toBe(200);
}

/** A queued local image with conflicting values, as Tempest prepares it. */
async function destination(app: TestApp, token: string): Promise<string> {
  const id = await createImage(app, token, { name: 'dst', disk_format: 'iso', container_format: 'ovf' });
  await patch(app, token, id, [{ op: 'add', path: '/hw_cpu_cores', value: '1' }, { op: 'add', path: '/os_distro', value: 'windows' }]);
  return id;
}

async function expectUntouched(app: TestApp, token: string, id: string): Promise<void> {
  const image = await show(app, token, id);
  expect({ status: image.status, hw: image.hw_cpu_cores, distro: image.os_distro, disk: image.disk_format, container: image.container_format, size: image.size }).toEqual({ status: 'queued', hw: '1', distro: 'windows', disk: 'iso', container: 'ovf', size: null });
  expect(image.os_glance_import_task).toBeUndefined();
}

describe('glance-download from another Vitrine (static auth, configured regions)', () => {
  let remote: TestApp;
  let local: TestApp;
  let token: string;

  beforeEach(async () => {
    remote = await start();
    local = await start({ imports: { methods: METHODS, pollIntervalMs: 100, glanceDownload: { regions: { RegionTwo: remote.baseUrl } } } });
    token = local.tokens.memberA;
  });

  it('copies the data, the formats and the configured properties, and the image becomes active', async () => {
    const data = bytes(700_000, 1);
    const src = await createImage(remote, token, { name: 'src', disk_format: 'raw', container_format: 'bare' }, data);
    await patch(remote, token, src, REMOTE_PROPERTIES);
    const dst = await destination(local, token);

    const started = await importGlance(local, token, dst, { glance_image_id: src, glance_region: 'regiontwo', glance_service_interface: 'public' });
    expect(started.status).toBe(202);
    const task = await settledTask(local, token, dst);
    expect(task).toMatchObject({ status: 'success', message: '' });
    expect(task.input.import_req.method).toEqual({ name: 'glance-download', glance_image_id: src, glance_region: 'regiontwo', glance_service_interface: 'public' });
    // No token anywhere in what the task keeps, nor in the database files.
    expect(JSON.stringify(task)).not.toContain(token);
    for (const file of readdirSync(local.dataDir).filter((f) => f.startsWith('vitrine.sqlite'))) {
      expect(readFileSync(join(local.dataDir, file)).includes(Buffer.from(token))).toBe(false);
    }

    const image = await show(local, token, dst);
    expect(image).toMatchObject({ status: 'active', disk_format: 'raw', container_format: 'bare', hw_cpu_cores: '5', 'trait:STORAGE_DISK_SSD': 'required', os_distro: 'rhel', size: data.length, checksum: md5(data) });
    expect(image).not.toHaveProperty('speed');
    const file = await request(`${local.baseUrl}/v2/images/${dst}/file`, { headers: headers(token) });
    expect(Buffer.from(await file.body.arrayBuffer()).equals(data)).toBe(true);
  });

  it('refuses an id that is not a UUID at once (400), as Glance', async () => {
    const dst = await destination(local, token);
    const res = await importGlance(local, token, dst, { glance_image_id: 'foo', glance_region: 'RegionTwo', glance_service_interface: 'public' });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('image id does not look like a UUID');
    const missing = await importGlance(local, token, dst, { glance_image_id: '36d4b546-64a2-4bb9-bdd0-ba676aa48f2c' });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain("'glance_region' needs to be set");
    await expectUntouched(local, token, dst);
  });

  it.each([
    ['an unknown region', { glance_region: 'not a region', glance_service_interface: 'public' }, /no Glance is configured for region/],
    ['an unknown interface', { glance_region: 'RegionTwo', glance_service_interface: 'not an interface' }, /interface must be public, internal or admin/],
    ['a missing remote image', { glance_region: 'RegionTwo' }, /remote Glance has no such image/],
  ])('fails the task on %s, leaving the image queued and its properties untouched', async (_what, method, message) => {
    const dst = await destination(local, token);
    expect((await importGlance(local, token, dst, { glance_image_id: '36d4b546-64a2-4bb9-bdd0-ba676aa48f2c', ...method })).status).toBe(202);
    const task = await settledTask(local, token, dst);
    expect(task.status).toBe('failure');
    expect(task.message).toMatch(message);
    await expectUntouched(local, token, dst);
  });

  it('fails on a remote image the caller may not see, and on a remote image that is not active', async () => {
    const hidden = await createImage(remote, remote.tokens.memberB, { name: 'b-only', visibility: 'private', disk_format: 'raw', container_format: 'bare' }, bytes(10, 2));
    const queued = await createImage(remote, token, { name: 'no data', disk_format: 'raw', container_format: 'bare' });
    for (const [src, message] of [[hidden, /no such image/], [queued, /remote image is queued/]] as const) {
      const dst = await destination(local, token);
      await importGlance(local, token, dst, { glance_image_id: src, glance_region: 'RegionTwo' });
      const task = await settledTask(local, token, dst);
      expect({ status: task.status, ok: message.test(task.message) }).toEqual({ status: 'failure', ok: true });
      await expectUntouched(local, token, dst);
    }
  });

  it('runs from GraphQL too (GLANCE_DOWNLOAD)', async () => {
    const data = bytes(1_000, 4);
    const src = await createImage(remote, token, { name: 'src', disk_format: 'raw', container_format: 'bare' }, data);
    const dst = await destination(local, token);
    const res = await local.gql('mutation($id: ID!, $input: ImportImageInput!) { importImage(id: $id, input: $input) { status input } }', { id: dst, input: { method: 'GLANCE_DOWNLOAD', glanceImageId: src, glanceRegion: 'RegionTwo' } }, token);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.importImage.input.import_req.method).toEqual({ name: 'glance-download', glance_image_id: src, glance_region: 'RegionTwo', glance_service_interface: 'public' });
    expect((await settledTask(local, token, dst)).status).toBe('success');
    const bad = await local.gql('mutation($id: ID!, $input: ImportImageInput!) { importImage(id: $id, input: $input) { status } }', { id: await destination(local, token), input: { method: 'GLANCE_DOWNLOAD', glanceImageId: 'foo', glanceRegion: 'RegionTwo' } }, token);
    expect(bad.body.errors?.[0]).toMatchObject({ message: expect.stringContaining('image id does not look like a UUID'), extensions: { code: 'BAD_INPUT' } });
  });

  it('is offered only when enabled', async () => {
    expect((await local.http('GET', '/v2/info/import', { headers: headers(token) })).body['import-methods'].value).toContain('glance-download');
    const plain = await startTestApp({});
    cleanups.push(() => plain.close());
    expect((await plain.http('GET', '/v2/info/import', { headers: headers(token) })).body['import-methods'].value).toEqual(['glance-direct', 'web-download', 'copy-image']);
    const dst = await destination(plain, token);
    const res = await importGlance(plain, token, dst, { glance_image_id: '36d4b546-64a2-4bb9-bdd0-ba676aa48f2c', glance_region: 'RegionTwo' });
    expect(res.status).toBe(400);
  });
});

describe('glance-download failures of the remote itself', () => {
  let server: Server;
  let hits: string[];

  beforeEach(async () => {
    hits = [];
    server = createServer((req, res) => {
      hits.push(`${req.url} ${req.headers['x-auth-token'] ? 'with token' : 'without token'}`);
      const port = (server.address() as AddressInfo).port;
      if (req.url?.endsWith('/file')) {
        // Off the remote's host: localhost is another host than 127.0.0.1 to the filter.
        res.writeHead(302, { location: `http://localhost:${port}/elsewhere` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: req.url?.split('/').pop(), status: 'active', disk_format: 'raw', container_format: 'bare', size: 4, checksum: md5(Buffer.from('abcd')) }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));
  });

  it('never follows a redirect off the remote host', async () => {
    const port = (server.address() as AddressInfo).port;
    const local = await start({ imports: { methods: METHODS, pollIntervalMs: 100, glanceDownload: { regions: { RegionTwo: `http://127.0.0.1:${port}` } } } });
    const token = local.tokens.memberA;
    const dst = await destination(local, token);
    await importGlance(local, token, dst, { glance_image_id: '36d4b546-64a2-4bb9-bdd0-ba676aa48f2c', glance_region: 'RegionTwo' });
    const task = await settledTask(local, token, dst);
    expect(task.status).toBe('failure');
    expect(task.message).toMatch(/redirected .* elsewhere than its own host/);
    expect(hits).toEqual(['/v2/images/36d4b546-64a2-4bb9-bdd0-ba676aa48f2c with token', '/v2/images/36d4b546-64a2-4bb9-bdd0-ba676aa48f2c/file with token']);
    await expectUntouched(local, token, dst);
  });

  it('fails when the remote cannot be reached', async () => {
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
    const local = await start({ imports: { methods: METHODS, pollIntervalMs: 100, glanceDownload: { regions: { RegionTwo: `http://127.0.0.1:${port}` } } } });
    const token = local.tokens.memberA;
    const dst = await destination(local, token);
    await importGlance(local, token, dst, { glance_image_id: '36d4b546-64a2-4bb9-bdd0-ba676aa48f2c', glance_region: 'RegionTwo' });
    const task = await settledTask(local, token, dst);
    expect(task.status).toBe('failure');
    expect(task.message).toMatch(/failed \(ECONNREFUSED\)/);
    await expectUntouched(local, token, dst);
  });
});

describe('glance-download through a real Keystone catalog (keystone auth)', () => {
  let keystone: RealKeystone;
  let app: TestApp;

  beforeAll(async () => {
    keystone = await startKeystone();
  }, KEYSTONE_START_TIMEOUT_MS);
  afterAll(() => keystone?.stop());

  it('finds the image endpoint of the region and interface in the caller\'s catalog and copies from it', async () => {
    app = await start({ auth: { mode: 'keystone', keystone: keystone.authConfig({ timeoutMs: 10_000 }) } });
    // Register this Vitrine as the `image` service of RegionOne (public only).
    const admin = await keystone.tokenFor('admin', 'admin');
    const ks = async (path: string, body: unknown) => {
      const res = await request(`${keystone.url}/v3${path}`, { method: 'POST', headers: { 'x-auth-token': admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await res.body.json()) as any;
      expect(res.statusCode).toBe(201);
      return json;
    };
    const service = await ks('/services', { service: { name: 'vitrine', type: 'image', enabled: true } });
    await ks('/endpoints', { endpoint: { service_id: service.service.id, interface: 'public', url: app.baseUrl, region_id: 'RegionOne', enabled: true } });

    const token = await keystone.tokenFor('member-a', 'project-a');
    const data = bytes(300_000, 3);
    const src = await createImage(app, token, { name: 'src', disk_format: 'qcow2', container_format: 'bare' }, data);
    await patch(app, token, src, REMOTE_PROPERTIES);
    const dst = await destination(app, token);
    expect((await importGlance(app, token, dst, { glance_image_id: src, glance_region: 'RegionOne', glance_service_interface: 'public' })).status).toBe(202);
    const task = await settledTask(app, token, dst);
    expect(task).toMatchObject({ status: 'success' });
    const image = await show(app, token, dst);
    expect(image).toMatchObject({ status: 'active', disk_format: 'qcow2', hw_cpu_cores: '5', os_distro: 'rhel', checksum: md5(data) });
    expect(image).not.toHaveProperty('speed');

    // The internal interface is not in the catalog: the task fails, the image stays as it was.
    const other = await destination(app, token);
    await importGlance(app, token, other, { glance_image_id: src, glance_region: 'RegionOne', glance_service_interface: 'internal' });
    const failed = await settledTask(app, token, other);
    expect(failed.status).toBe('failure');
    expect(failed.message).toMatch(/catalog has no internal image endpoint in region "RegionOne"/);
    await expectUntouched(app, token, other);
  });
});

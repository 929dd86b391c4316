import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { testGlanceOptions } from '../helpers/glance-backend';
import { GlanceBackend, type GlanceBackendOptions } from '../../src/backends/glance/backend';
import type { ArtifactView } from '../../src/backends/port';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { ProgressEvent } from '../../src/events/port';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';
import { HttpProxy } from '../helpers/http-proxy';

/**
 * Interoperable image import through the Glance backend, against a real multi-store Glance
 * 25.1 (scripts/glance-dev: stores `fast` (default) and `cheap`; glance-direct,
 * web-download and copy-image enabled; web-download allowed from 127.0.0.1): staging,
 * the three methods, Vitrine's URL pre-check (seen through a counting proxy: Glance never
 * gets the call), Glance's refusals as registry codes, and importProgress on the bus.
 */
jest.setTimeout(300_000);

let glance: RealGlance;
let proxy: HttpProxy;
let bus: MemoryEventBus;
let backend: GlanceBackend;
let admin: Principal;
const progress: ProgressEvent[] = [];
const opened: GlanceBackend[] = [];
const servers: Server[] = [];

function open(overrides: Partial<GlanceBackendOptions> = {}): GlanceBackend {
  const b = new GlanceBackend(testGlanceOptions(proxy.url, bus, { pollIntervalMs: 50, ...overrides }));
  opened.push(b);
  return b;
}

/** An HTTP server on loopback answering every GET with `body` (web-download's source). */
async function serve(body: Buffer): Promise<{ url: string; gets: () => number }> {
  let gets = 0;
  const server = createServer((req, res) => {
    gets++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/image.raw`, gets: () => gets };
}

const newImage = (b: GlanceBackend = backend) =>
  b.create(admin, { typeName: 'images', name: `imp-${randomUUID().slice(0, 8)}`, fields: { disk_format: 'raw', container_format: 'bare' } });

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** The final importProgress event of an image, waiting for it. */
async function finalProgress(id: string, timeoutMs = 150_000): Promise<ProgressEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = progress.find((e) => e.kind === 'importProgress' && e.artifactId === id && e.done);
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`no final importProgress event for ${id}; seen: ${JSON.stringify(progress.filter((e) => e.artifactId === id))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function reread(id: string): Promise<ArtifactView> {
  const [view] = await backend.getMany(admin, [id]);
  return view as ArtifactView;
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await promise.then(() => null, (e: unknown) => e as { code: string; message: string });
  if (!err) throw new Error('expected a refusal');
  return err;
}

beforeAll(async () => {
  glance = await startGlance();
  admin = { projectId: glance.projectId, userId: glance.env.GLANCE_USER_ID, roles: ['admin', 'member', 'reader'] };
  proxy = await HttpProxy.start(glance.url);
  bus = new MemoryEventBus();
  bus.subscribe((m) => {
    if (m.topic === 'progress') progress.push(m.event);
  });
  backend = open();
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  await proxy?.close();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await glance?.stop();
});

describe('glance-direct', () => {
  it('stages the bytes, imports them into both stores, and reports progress to the final status', async () => {
    const image = await newImage();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const staged = await backend.stageImage(admin, image.id, Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), { contentType: 'application/octet-stream', contentLength: data.length });
    expect(staged).toMatchObject({ id: image.id, status: 'uploading', fields: { size: data.length } });
    expect(proxy.count('PUT', `/v2/images/${image.id}/stage`)).toBe(1);
    const staging = progress.filter((e) => e.kind === 'uploadProgress' && e.artifactId === image.id);
    expect(staging.at(-1)).toMatchObject({ done: true, outcome: 'succeeded', bytes: data.length });

    // Glance adopts the facade's request id, so its task names the request the client saw.
    const requestId = `req-${randomUUID()}`;
    const task = await backend.importImage(admin, image.id, { method: 'glance-direct', stores: ['fast', 'cheap'] }, requestId);
    expect(task).toMatchObject({ type: 'api_image_import', imageId: image.id, requestId, input: { image_id: image.id, backend: ['fast', 'cheap'] } });
    expect(['pending', 'processing']).toContain(task.status);
    expect((await backend.tasksOf(admin, image.id)).map((t) => t.id)).toContain(task.id);

    const last = await finalProgress(image.id);
    expect(last).toMatchObject({ kind: 'importProgress', subject: 'glance-direct', owner: glance.projectId, done: true, outcome: 'succeeded', finalStatus: 'active', storesFailed: [], bytes: 2 * data.length, total: 2 * data.length });
    expect([...last.storesDone!].sort()).toEqual(['cheap', 'fast']);
    const events = progress.filter((e) => e.kind === 'importProgress' && e.artifactId === image.id);
    // Bytes never go backwards, and only the last event is final.
    expect(events.map((e) => e.bytes)).toEqual([...events.map((e) => e.bytes)].sort((a, b) => a - b));
    expect(events.filter((e) => e.done)).toHaveLength(1);

    const after = await reread(image.id);
    expect(after).toMatchObject({ status: 'active', fields: { size: data.length, checksum: md5(data), stores: ['cheap', 'fast'] } });
    const done = await backend.getTask(admin, task.id);
    expect(done.status).toBe('success');
  });

  it('refuses to stage into an image that is not queued, before Glance sees it', async () => {
    const image = await newImage();
    await backend.stageImage(admin, image.id, Readable.from([Buffer.from('staged once')]), { contentType: null });
    const before = proxy.count('PUT', `/v2/images/${image.id}/stage`);
    const err = await refusal(backend.stageImage(admin, image.id, Readable.from([Buffer.from('twice')]), { contentType: null }));
    expect(err.code).toBe('TRANSITION_FORBIDDEN');
    expect(proxy.count('PUT', `/v2/images/${image.id}/stage`)).toBe(before);
  });
});

describe('web-download', () => {
  it('imports from a real HTTP server on loopback when private URLs are allowed', async () => {
    const open_ = open({ allowPrivateUrls: true });
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const source = await serve(data);
    const image = await newImage(open_);
    const task = await open_.importImage(admin, image.id, { method: 'web-download', uri: source.url });
    expect(task.input).toMatchObject({ import_req: { method: { name: 'web-download', uri: source.url } } });

    const last = await finalProgress(image.id);
    expect(last).toMatchObject({ subject: 'web-download', outcome: 'succeeded', finalStatus: 'active', storesDone: ['fast'], storesFailed: [] });
    expect(source.gets()).toBe(1);
    expect(await reread(image.id)).toMatchObject({ status: 'active', fields: { size: data.length, checksum: md5(data), stores: ['fast'] } });
  });

  it('refuses private and loopback URLs itself: Glance never sees the import', async () => {
    const image = await newImage();
    const source = await serve(Buffer.from('never fetched'));
    const before = proxy.count('POST', `/v2/images/${image.id}/import`);
    for (const uri of [source.url, 'http://localhost:8080/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://2130706433/x', 'ftp://example.org/x']) {
      const err = await refusal(backend.importImage(admin, image.id, { method: 'web-download', uri }));
      expect({ uri, code: err.code }).toEqual({ uri, code: 'URL_FORBIDDEN' });
    }
    expect(proxy.count('POST', `/v2/images/${image.id}/import`)).toBe(before);
    expect(source.gets()).toBe(0);
    expect((await reread(image.id)).status).toBe('queued');
  });

  it('refuses requests Glance would refuse for their shape, before Glance sees them', async () => {
    const image = await newImage();
    const before = proxy.count('POST', `/v2/images/${image.id}/import`);
    expect((await refusal(backend.importImage(admin, image.id, { method: 'web-download' }))).code).toBe('BAD_INPUT');
    expect((await refusal(backend.importImage(admin, image.id, { method: 'copy-image', uri: 'http://example.org/x' }))).code).toBe('BAD_INPUT');
    expect((await refusal(backend.importImage(admin, image.id, { method: 'glance-download' }))).code).toBe('BAD_INPUT');
    expect((await refusal(backend.importImage(admin, image.id, { method: 'glance-download', glanceRegion: 'RegionOne', glanceImageId: 'foo' }))).message).toContain('image id does not look like a UUID');
    expect((await refusal(backend.importImage(admin, image.id, { method: 'copy-image', stores: ['cheap'], allStores: true }))).code).toBe('BAD_INPUT');
    expect(proxy.count('POST', `/v2/images/${image.id}/import`)).toBe(before);
  });
});

describe('copy-image', () => {
  it('copies an active image into another store', async () => {
    const image = await newImage();
    const data = randomBytes(1024 * 1024 + 3);
    await backend.uploadBlob(admin, { artifactId: image.id, field: 'image', key: '' }, Readable.from([data]), { contentType: 'application/octet-stream' });
    expect((await reread(image.id)).fields.stores).toEqual(['fast']);

    const task = await backend.importImage(admin, image.id, { method: 'copy-image', stores: ['cheap'] });
    expect(task.input).toMatchObject({ backend: ['cheap'] });
    const last = await finalProgress(image.id);
    expect(last).toMatchObject({ subject: 'copy-image', outcome: 'succeeded', finalStatus: 'active', storesDone: ['cheap'], storesFailed: [], total: data.length });
    expect(await reread(image.id)).toMatchObject({ status: 'active', fields: { stores: ['cheap', 'fast'], checksum: md5(data) } });
  });
});

describe("Glance's refusals", () => {
  it('maps illegal states, unknown stores and a held import lock to registry codes', async () => {
    const queued = await newImage();
    // glance-direct without staged data, copy-image of an image without data: Glance's 409s.
    const unstaged = await refusal(backend.importImage(admin, queued.id, { method: 'glance-direct' }));
    expect(unstaged).toMatchObject({ code: 'TRANSITION_FORBIDDEN', message: expect.stringMatching(/staged/) });
    expect((await refusal(backend.importImage(admin, queued.id, { method: 'copy-image', stores: ['cheap'] }))).code).toBe('TRANSITION_FORBIDDEN');
    expect(proxy.count('POST', `/v2/images/${queued.id}/import`)).toBe(2);

    const active = await newImage();
    const data = randomBytes(4 * 1024 * 1024);
    await backend.uploadBlob(admin, { artifactId: active.id, field: 'image', key: '' }, Readable.from([data]), { contentType: 'application/octet-stream' });
    const withUrl = open({ allowPrivateUrls: true });
    const source = await serve(data);
    expect((await refusal(withUrl.importImage(admin, active.id, { method: 'web-download', uri: source.url }))).code).toBe('TRANSITION_FORBIDDEN');
    expect((await refusal(backend.importImage(admin, active.id, { method: 'copy-image', stores: ['nowhere'] }))).code).toBe('STORE_UNKNOWN');
    expect((await refusal(backend.importImage(admin, active.id, { method: 'copy-image', stores: ['fast'] }))).code).toBe('BAD_INPUT');

    // A second import while the first holds the image's import lock.
    await backend.importImage(admin, active.id, { method: 'copy-image', stores: ['cheap'] });
    expect((await refusal(backend.importImage(admin, active.id, { method: 'copy-image', stores: ['cheap'] }))).code).toBe('IMPORT_BUSY');
    expect((await finalProgress(active.id)).outcome).toBe('succeeded');
    expect(source.gets()).toBe(0);
  });

  it('refuses imports into images that do not exist', async () => {
    expect((await refusal(backend.importImage(admin, randomUUID(), { method: 'copy-image', stores: ['cheap'] }))).code).toBe('NOT_FOUND');
    expect((await refusal(backend.stageImage(admin, randomUUID(), Readable.from([Buffer.from('x')]), { contentType: null }))).code).toBe('NOT_FOUND');
  });
});

describe('watchers', () => {
  it('stop on close: no progress is published for an import that ends afterwards', async () => {
    const b = open({ allowPrivateUrls: true });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // A source that sends half of the bytes, then waits.
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-length': 2048 });
      res.write(Buffer.alloc(1024, 1));
      void released.then(() => res.end(Buffer.alloc(1024, 2)));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const image = await newImage(b);
    await b.importImage(admin, image.id, { method: 'web-download', uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow` });
    await b.close();
    await b.importsIdle();
    const seen = progress.filter((e) => e.artifactId === image.id).length;
    release();
    const deadline = Date.now() + 90_000;
    while ((await reread(image.id)).status !== 'active' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await reread(image.id)).status).toBe('active');
    await new Promise((r) => setTimeout(r, 200));
    expect(progress.filter((e) => e.artifactId === image.id)).toHaveLength(seen);
    expect(progress.some((e) => e.artifactId === image.id && e.done)).toBe(false);
  });

  it('watch at most maxImportWatchers imports at once', async () => {
    const b = open({ maxImportWatchers: 1, pollIntervalMs: 20 });
    const [first, second] = [await newImage(b), await newImage(b)];
    for (const image of [first, second]) await b.stageImage(admin, image.id, Readable.from([randomBytes(2048)]), { contentType: null });
    await b.importImage(admin, first.id, { method: 'glance-direct' });
    await b.importImage(admin, second.id, { method: 'glance-direct' });
    expect((await finalProgress(first.id)).outcome).toBe('succeeded');
    await b.importsIdle();
    // The second import ran in Glance all the same, unwatched.
    const deadline = Date.now() + 90_000;
    while ((await reread(second.id)).status !== 'active' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await reread(second.id)).status).toBe('active');
    expect(progress.filter((e) => e.kind === 'importProgress' && e.artifactId === second.id)).toEqual([]);
  });
});

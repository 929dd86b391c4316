import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BusMessage, ProgressEvent } from '../../src/events/port';
import { MemoryEventBus } from '../../src/events/memory';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Native interoperable import through the Glance facade and GraphQL, with two filesystem
 * stores, a real HTTP server on loopback as the web-download source, and restarts.
 */
const DATA = randomBytes(3 * 1024 * 1024 + 17);
const MD5 = createHash('md5').update(DATA).digest('hex');

let source: Server;
let sourceUrl: string;
/** Paths the source server answers specially. */
const slow = { release: () => undefined as void, waiting: Promise.resolve() };
/** `/gated` sends 1 KiB, then the rest once `open()` is called. */
let openGate!: () => void;
const gate = { opened: new Promise<void>((resolve) => (openGate = resolve)) };

beforeAll(async () => {
  source = createServer((req, res) => serve(req.url ?? '/', res));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}`;
});

afterAll(async () => {
  slow.release();
  openGate();
  source.closeAllConnections();
  await new Promise((resolve) => source.close(resolve));
});

function serve(path: string, res: ServerResponse): void {
  if (path === '/image.raw') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
    res.end(DATA);
  } else if (path === '/missing') {
    res.writeHead(404).end('no such file');
  } else if (path === '/to-private') {
    res.writeHead(302, { location: `http://127.0.0.2:${new URL(sourceUrl).port}/image.raw` }).end();
  } else if (path === '/gated') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
    res.write(DATA.subarray(0, 1024));
    gate.opened.then(() => res.end(DATA.subarray(1024)), () => res.destroy());
  } else if (path === '/slow') {
    // Half the bytes, then nothing until released: an import in flight to interrupt.
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DATA.length });
    res.write(DATA.subarray(0, DATA.length >> 1));
    slow.waiting.then(() => res.end(DATA.subarray(DATA.length >> 1)), () => res.destroy());
  } else {
    res.writeHead(404).end();
  }
}

interface Stores {
  root: string;
  fast: string;
  cheap: string;
}

function makeStores(): Stores {
  const root = mkdtempSync(join(tmpdir(), 'vitrine-stores-'));
  return { root, fast: join(root, 'fast'), cheap: join(root, 'cheap') };
}

function configFor(stores: Stores, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    blobs: { stores: { fast: { path: stores.fast, description: 'Fast disks' }, cheap: { path: stores.cheap } }, defaultStore: 'fast' },
    imports: { pollIntervalMs: 100, webDownload: { allowedHosts: ['127.0.0.1'], allowedPorts: [], ...((extra.webDownload as object) ?? {}) } },
    dataPlane: { progressIntervalMs: 10 },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'webDownload')),
  };
}

/** Files under a store folder (the bytes of every copy it holds). */
function filesIn(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(full);
    }
  };
  walk(dir);
  return out;
}

const auth = (app: TestApp, who: keyof TestApp['tokens'] = 'memberA') => ({ 'x-auth-token': app.tokens[who] });

async function createImage(app: TestApp, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await app.http('POST', '/v2/images', { headers: auth(app), body: { name: 'imported', disk_format: 'raw', container_format: 'bare', ...extra } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function image(app: TestApp, id: string): Promise<Record<string, unknown>> {
  const res = await app.http('GET', `/v2/images/${id}`, { headers: auth(app) });
  expect(res.status).toBe(200);
  return res.body;
}

/** Polls until the image's status is one of `statuses` and no import task runs. */
async function settled(app: TestApp, id: string, statuses: string[]): Promise<Record<string, unknown>> {
  for (;;) {
    // Tasks first: a task that ended before the image is read leaves the image final.
    const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks as { status: string }[];
    const shown = await image(app, id);
    if (statuses.includes(String(shown.status)) && tasks.every((t) => t.status === 'success' || t.status === 'failure')) return shown;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stage(app: TestApp, id: string, body: Buffer = DATA): Promise<{ status: number }> {
  const res = await fetch(`${app.baseUrl}/v2/images/${id}/stage`, { method: 'PUT', headers: { ...auth(app), 'content-type': 'application/octet-stream' }, body });
  await res.arrayBuffer();
  return { status: res.status };
}

async function startImport(app: TestApp, id: string, body: Record<string, unknown>, caller?: Parameters<typeof auth>[1]) {
  return app.http('POST', `/v2/images/${id}/import`, { headers: auth(app, caller), body });
}

async function download(app: TestApp, id: string): Promise<Buffer> {
  const res = await fetch(`${app.baseUrl}/v2/images/${id}/file`, { headers: auth(app) });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('native image import with two stores', () => {
  let app: TestApp;
  let stores: Stores;
  let bus: MemoryEventBus;
  const progress: ProgressEvent[] = [];
  const lifecycle: { id: string; from?: string; to?: string }[] = [];

  beforeAll(async () => {
    stores = makeStores();
    bus = new MemoryEventBus();
    bus.subscribe((m: BusMessage) => {
      if (m.topic === 'progress' && m.event.kind === 'importProgress') progress.push(m.event);
      if (m.topic === 'artifact' && m.event.kind === 'statusChanged') lifecycle.push({ id: m.event.artifactId, from: m.event.from, to: m.event.to });
    });
    app = await startTestApp(configFor(stores), { app: { bus } });
  });

  afterAll(async () => {
    await app.close();
    rmSync(stores.root, { recursive: true, force: true });
  });

  test('discovery shows the stores, the import methods and the multistore versions', async () => {
    const info = await app.http('GET', '/v2/info/stores', { headers: auth(app) });
    expect(info.status).toBe(200);
    expect(info.body.stores).toEqual([{ id: 'cheap' }, { id: 'fast', description: 'Fast disks', default: 'true' }]);
    const methods = await app.http('GET', '/v2/info/import', { headers: auth(app) });
    expect(methods.body['import-methods'].value).toEqual(['glance-direct', 'web-download', 'copy-image']);
    const versions = await app.http('GET', '/versions');
    expect(versions.body.versions.map((v: { id: string }) => v.id)).toContain('v2.12');
    const gql = await app.gql('{ stores { id isDefault description } }');
    expect(gql.body.data.stores).toEqual([{ id: 'cheap', isDefault: false, description: null }, { id: 'fast', isDefault: true, description: 'Fast disks' }]);
  });

  test('glance-direct: stage, then import into both stores, with progress events and a task', async () => {
    const id = await createImage(app);
    expect((await stage(app, id)).status).toBe(204);
    const staged = await image(app, id);
    expect(staged.status).toBe('uploading');
    // Staged bytes are not the image's data yet.
    expect((await app.http('GET', `/v2/images/${id}/file`, { headers: auth(app) })).status).toBe(204);
    expect((await stage(app, id)).status).toBe(409);

    progress.length = 0;
    const accepted = await startImport(app, id, { method: { name: 'glance-direct' }, stores: ['fast', 'cheap'] });
    expect(accepted.status).toBe(202);
    const done = await settled(app, id, ['active', 'queued']);
    expect(done).toMatchObject({ status: 'active', checksum: MD5, size: DATA.length, stores: 'cheap,fast', os_glance_failed_import: '', os_glance_importing_to_stores: '' });
    expect(done.os_glance_import_task).toBeUndefined();
    expect((await download(app, id)).equals(DATA)).toBe(true);
    // Each store holds a full copy.
    expect(filesIn(stores.fast).map((f) => statSync(f).size)).toContain(DATA.length);
    expect(filesIn(stores.cheap).map((f) => statSync(f).size)).toContain(DATA.length);

    const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ type: 'api_image_import', status: 'success', image_id: id, result: { image_id: id }, user_id: 'member-a' });
    // The task names the request that started it (Tempest compares them).
    expect(tasks[0].request_id).toBe(accepted.headers['x-openstack-request-id']);
    expect(tasks[0].input).toMatchObject({ image_id: id, backend: ['fast', 'cheap'], import_req: { method: { name: 'glance-direct' } } });
    const one = await app.http('GET', `/v2/tasks/${tasks[0].id}`, { headers: auth(app) });
    expect(one.body).toMatchObject({ id: tasks[0].id, status: 'success' });
    expect((await app.http('GET', `/v2/tasks/${tasks[0].id}`, { headers: auth(app, 'memberB') })).status).toBe(404);

    const last = progress.filter((p) => p.artifactId === id).at(-1);
    expect(last).toMatchObject({ done: true, outcome: 'succeeded', finalStatus: 'active', subject: 'glance-direct', storesDone: ['cheap', 'fast'], storesFailed: [] });
    // One committed event per status change: Glance's glance-direct sequence.
    expect(lifecycle.filter((e) => e.id === id).map((e) => `${e.from}>${e.to}`)).toEqual(['queued>uploading', 'uploading>importing', 'importing>active']);
  });

  test('web-download through GraphQL, then copy-image and deleting from one store', async () => {
    const id = await createImage(app);
    progress.length = 0;
    const started = await app.gql('mutation($id: ID!, $uri: String!) { importImage(id: $id, input: { method: WEB_DOWNLOAD, uri: $uri }) { id status imageId } }', { id, uri: `${sourceUrl}/image.raw` }, app.tokens.memberA);
    expect(started.body.errors).toBeUndefined();
    expect(started.body.data.importImage).toMatchObject({ imageId: id, status: 'PENDING' });
    const done = await settled(app, id, ['active', 'queued']);
    expect(done).toMatchObject({ status: 'active', checksum: MD5, stores: 'fast' });
    expect((await download(app, id)).equals(DATA)).toBe(true);
    const events = progress.filter((p) => p.artifactId === id);
    expect(events.some((p) => !p.done && p.stage === 'download' && p.bytes > 0)).toBe(true);
    expect(events.at(-1)).toMatchObject({ done: true, outcome: 'succeeded', bytes: DATA.length });

    // all_stores: every store that does not hold the data yet (here: cheap).
    // copy-image is Glance's copy_image rule: admins by default, on any image they see.
    const copyQuery = 'mutation($id: ID!) { importImage(id: $id, input: { method: COPY_IMAGE, allStores: true }) { id } }';
    expect((await app.gql(copyQuery, { id }, app.tokens.memberA)).body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const copy = await app.gql(copyQuery, { id }, app.tokens.admin);
    expect(copy.body.errors).toBeUndefined();
    const copied = await settled(app, id, ['active']);
    expect(copied.stores).toBe('cheap,fast');
    const again = await startImport(app, id, { method: { name: 'copy-image' }, stores: ['cheap'] }, 'admin');
    expect(again.status).toBe(400);

    const removed = await app.gql('mutation($id: ID!) { deleteImageFromStore(id: $id, store: "fast") { stores } }', { id }, app.tokens.memberA);
    expect(removed.body.data.deleteImageFromStore.stores).toEqual(['cheap']);
    expect((await download(app, id)).equals(DATA)).toBe(true);
    const last = await app.http('DELETE', `/v2/stores/cheap/${id}`, { headers: auth(app) });
    expect(last.status).toBe(403);
    const absent = await app.http('DELETE', `/v2/stores/fast/${id}`, { headers: auth(app) });
    expect(absent.status).toBe(404);
  });

  test('glance-direct through the data plane and GraphQL, listed in imageTasks', async () => {
    const id = await createImage(app);
    const staged = await fetch(`${app.baseUrl}/v1/artifacts/${id}/stage`, { method: 'PUT', headers: { authorization: `Bearer ${app.tokens.memberA}`, 'content-type': 'application/octet-stream' }, body: DATA });
    expect(staged.status).toBe(200);
    expect(await staged.json()).toMatchObject({ artifact: { id, status: 'uploading', size: DATA.length, checksum: MD5 } });
    const started = await app.gql('mutation($id: ID!) { importImage(id: $id, input: { method: GLANCE_DIRECT, stores: ["cheap"] }) { id } }', { id }, app.tokens.memberA);
    expect(started.body.errors).toBeUndefined();
    const done = await settled(app, id, ['active', 'queued']);
    expect(done).toMatchObject({ status: 'active', stores: 'cheap', checksum: MD5 });
    const tasks = await app.gql('query($id: ID!) { imageTasks(imageId: $id) { id status imageId result message } }', { id }, app.tokens.memberA);
    expect(tasks.body.data.imageTasks).toEqual([{ id: started.body.data.importImage.id, status: 'SUCCESS', imageId: id, result: { image_id: id }, message: '' }]);
    const one = await app.gql('query($t: ID!) { importTask(id: $t) { id } }', { t: started.body.data.importImage.id }, app.tokens.memberB);
    expect(one.body.data.importTask).toBeNull();
    expect((await download(app, id)).equals(DATA)).toBe(true);
  });

  test('bad requests get clear errors before anything starts', async () => {
    const id = await createImage(app);
    expect((await startImport(app, id, { method: { name: 'glance-download' } })).status).toBe(400);
    expect((await startImport(app, id, {})).status).toBe(400);
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` }, stores: ['nowhere'] })).status).toBe(409);
    expect((await startImport(app, id, { method: { name: 'glance-direct' } })).status).toBe(409);
    expect((await startImport(app, id, { method: { name: 'copy-image' } }, 'admin')).status).toBe(409);
    const refused = await startImport(app, id, { method: { name: 'web-download', uri: 'http://10.1.2.3/image.raw' } });
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('does not pass filtering');
    const gql = await app.gql('mutation($id: ID!) { importImage(id: $id, input: { method: WEB_DOWNLOAD, uri: "http://localhost/x", stores: ["nowhere"] }) { id } }', { id }, app.tokens.memberA);
    expect(gql.body.errors?.[0].extensions?.code).toBe('STORE_UNKNOWN');
    const noFormats = await app.http('POST', '/v2/images', { headers: auth(app), body: { name: 'bare' } });
    expect((await startImport(app, noFormats.body.id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(409);
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(202);
    // A second import while one runs is refused (or, if the first already ended, the image is active).
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(409);
    await settled(app, id, ['active']);
    // Someone else's image.
    expect((await app.http('POST', `/v2/images/${id}/import`, { headers: auth(app, 'memberB'), body: { method: { name: 'copy-image' } } })).status).toBe(404);
    expect((await app.http('POST', `/v2/images/${id}/import`, { headers: auth(app, 'readerA'), body: { method: { name: 'copy-image' }, stores: ['cheap'] } })).status).toBe(403);
  });

  test.each([
    ['an answer other than 2xx', '/missing', '404'],
    ['a redirect into space the filter refuses', '/to-private', '127.0.0.2'],
  ])('a web-download that fails on %s returns the image to queued with a reason', async (_what, path, reason) => {
    const id = await createImage(app);
    const before = filesIn(stores.fast).length + filesIn(stores.cheap).length;
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}${path}` } })).status).toBe(202);
    const failed = await settled(app, id, ['queued']);
    expect(failed).toMatchObject({ status: 'queued', os_glance_failed_import: 'fast', size: null, checksum: null });
    const [task] = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
    expect(task.status).toBe('failure');
    expect(task.message).toContain(reason);
    expect(filesIn(stores.fast).length + filesIn(stores.cheap).length).toBe(before);
    // The user can retry from here.
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(202);
    expect(await settled(app, id, ['active'])).toMatchObject({ checksum: MD5 });
  });

  test('a failing store fails the import, or only itself when all_stores_must_succeed is false', async () => {
    const id = await createImage(app);
    expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(202);
    await settled(app, id, ['active']);
    // Break the cheap store: its folder becomes a file, so every write there fails.
    rmSync(stores.cheap, { recursive: true, force: true });
    writeFileSync(stores.cheap, 'not a folder');
    try {
      expect((await startImport(app, id, { method: { name: 'copy-image' }, stores: ['cheap'] }, 'admin')).status).toBe(202);
      const failed = await settled(app, id, ['active']);
      const [task] = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
      expect(task.status).toBe('failure');
      expect(failed).toMatchObject({ status: 'active', stores: 'fast', os_glance_failed_import: 'cheap' });

      const other = await createImage(app);
      const body = { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` }, stores: ['cheap', 'fast'], all_stores_must_succeed: false };
      expect((await startImport(app, other, body)).status).toBe(202);
      const partial = await settled(app, other, ['active', 'queued']);
      expect(partial).toMatchObject({ status: 'active', stores: 'fast', os_glance_failed_import: 'cheap', checksum: MD5 });
    } finally {
      rmSync(stores.cheap, { force: true });
    }
  });
});

describe('import limits', () => {
  let app: TestApp;
  let stores: Stores;

  beforeAll(async () => {
    stores = makeStores();
    app = await startTestApp({ ...configFor(stores), imports: { pollIntervalMs: 100, concurrency: 1, webDownload: { allowedHosts: ['127.0.0.1', 'does-not.exist.invalid'], allowedPorts: [] } } });
  });

  afterAll(async () => {
    await app.close();
    rmSync(stores.root, { recursive: true, force: true });
  });

  test('a malformed URL is refused at once; an unreachable one fails the import with the reason', async () => {
    const id = await createImage(app);
    const malformed = await startImport(app, id, { method: { name: 'web-download', uri: 'not a url' } });
    expect(malformed.status).toBe(400);
    expect(await image(app, id)).toMatchObject({ status: 'queued' });
    // Port 9 (discard) on loopback: nothing listens there.
    expect((await startImport(app, id, { method: { name: 'web-download', uri: 'http://127.0.0.1:9/image.raw' } })).status).toBe(202);
    expect(await settled(app, id, ['queued'])).toMatchObject({ os_glance_failed_import: 'fast' });
    const [task] = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
    expect(task).toMatchObject({ status: 'failure' });
    expect(task.message).toMatch(/127\.0\.0\.1:9/);

    // A name that does not resolve is accepted, as by Glance, and fails in the task
    // (.invalid never resolves: RFC 6761).
    const other = await createImage(app);
    expect((await startImport(app, other, { method: { name: 'web-download', uri: 'http://does-not.exist.invalid/no/way' } })).status).toBe(202);
    expect(await settled(app, other, ['queued'])).toMatchObject({ os_glance_failed_import: 'fast' });
    const [failed] = (await app.http('GET', `/v2/images/${other}/tasks`, { headers: auth(app) })).body.tasks;
    expect(failed.message).toContain('does-not.exist.invalid does not resolve');
  });

  test('runs at most `concurrency` imports at once; the others wait as pending tasks', async () => {
    const first = await createImage(app);
    const second = await createImage(app);
    expect((await startImport(app, first, { method: { name: 'web-download', uri: `${sourceUrl}/gated` } })).status).toBe(202);
    expect((await startImport(app, second, { method: { name: 'web-download', uri: `${sourceUrl}/gated` } })).status).toBe(202);
    const statuses = async () => Promise.all([first, second].map(async (id) => (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks[0].status));
    let seen = await statuses();
    while (!seen.includes('processing')) seen = await statuses();
    // Give the runner time to (wrongly) start the second one.
    await new Promise((r) => setTimeout(r, 500));
    expect((await statuses()).sort()).toEqual(['pending', 'processing']);
    openGate();
    expect(await settled(app, first, ['active', 'queued'])).toMatchObject({ status: 'active', checksum: MD5 });
    expect(await settled(app, second, ['active', 'queued'])).toMatchObject({ status: 'active', checksum: MD5 });
  });
});

describe('a download larger than the limit', () => {
  test('fails the import, returns the image to queued and leaves no bytes behind', async () => {
    const stores = makeStores();
    const app = await startTestApp({ ...configFor(stores), imports: { pollIntervalMs: 100, webDownload: { allowedHosts: ['127.0.0.1'], allowedPorts: [], maxBytes: 1024 * 1024 } } });
    try {
      const id = await createImage(app);
      expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/image.raw` } })).status).toBe(202);
      expect(await settled(app, id, ['queued', 'active'])).toMatchObject({ status: 'queued', os_glance_failed_import: 'fast', size: null });
      const [task] = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
      expect(task.status).toBe('failure');
      expect(task.message).toMatch(/1048576/);
      expect(filesIn(stores.fast)).toEqual([]);
    } finally {
      await app.close();
      rmSync(stores.root, { recursive: true, force: true });
    }
  });
});

describe('imports survive a restart', () => {
  test('an import interrupted by a stop resumes when Vitrine starts again', async () => {
    const stores = makeStores();
    const dataDir = mkdtempSync(join(tmpdir(), 'vitrine-import-restart-'));
    let release!: () => void;
    slow.waiting = new Promise<void>((resolve) => (release = resolve));
    slow.release = release;
    try {
      let app = await startTestApp(configFor(stores), { dataDir });
      const id = await createImage(app);
      expect((await startImport(app, id, { method: { name: 'web-download', uri: `${sourceUrl}/slow` } })).status).toBe(202);
      // Wait until the import is under way (the image is importing, the task processing).
      for (;;) {
        const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
        if (tasks[0]?.status === 'processing') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await app.close();
      release();
      app = await startTestApp(configFor(stores), { dataDir });
      try {
        const done = await settled(app, id, ['active', 'queued']);
        const [task] = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: auth(app) })).body.tasks;
        expect({ status: done.status, checksum: done.checksum, task: task.status, message: task.message }).toEqual({ status: 'active', checksum: MD5, task: 'success', message: '' });
        // Only the committed copy stays: the interrupted run's partial bytes are gone.
        expect(filesIn(stores.fast).map((f) => statSync(f).size)).toEqual([DATA.length]);
      } finally {
        await app.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(stores.root, { recursive: true, force: true });
    }
  });
});

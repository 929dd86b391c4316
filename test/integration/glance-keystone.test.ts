import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlanceBackend } from '../../src/backends/glance/backend';
import type { KeystoneAuthConfig } from '../../src/config/schema';
import { MemoryEventBus } from '../../src/events/memory';
import { createKeystoneIdentity } from '../../src/http/keystone';
import type { StoredEvent } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { startTestApp, type TestApp } from '../helpers/app';
import { testGlanceOptions } from '../helpers/glance-backend';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';
import { KEYSTONE_START_TIMEOUT_MS, startKeystone, type RealKeystone } from '../helpers/keystone';

/**
 * Vitrine in front of a Glance that sits behind Keystone, as in a real cloud: a real
 * Keystone 22 (scripts/keystone-dev), a real Glance 25.1 with keystonemiddleware's
 * auth_token (scripts/glance-dev --keystone), Vitrine in auth.mode keystone with a
 * `glance` backend that forwards the caller's token (identity: token). Glance applies its
 * own policy to the forwarded token; nothing here trusts identity headers.
 */
const RABBIT = process.env.VITRINE_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
let keystone: RealKeystone;
let glance: RealGlance;
let app: TestApp;

beforeAll(async () => {
  keystone = await startKeystone();
  glance = await startGlance({ keystone: keystone.url, notifications: RABBIT.replace(/^amqp:/, 'rabbit:') });
  app = await startTestApp({
    auth: { mode: 'keystone', keystone: keystone.authConfig({ timeoutMs: 30_000 }) },
    backends: [{ name: 'legacy', driver: 'glance', url: glance.url, identity: 'token', retries: 0 }],
  });
}, KEYSTONE_START_TIMEOUT_MS + GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await app?.close();
  await glance?.stop();
  await keystone?.stop();
}, 120_000);

const auth = (token: string) => ({ 'x-auth-token': token });

/** What Glance itself answers for this token (no Vitrine in between). */
async function glanceShow(id: string, token: string): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const res = await fetch(`${glance.url}/v2/images/${id}`, { headers: { ...auth(token), accept: 'application/json' } });
  return { status: res.status, body: res.ok ? ((await res.json()) as Record<string, unknown>) : null };
}

it('Glance refuses requests without a token: it really is behind Keystone', async () => {
  expect((await fetch(`${glance.url}/v2/images`)).status).toBe(401);
});

it('creates, uploads and reads through Vitrine with the caller\'s own token; Glance records the token\'s project', async () => {
  const memberA = await keystone.tokenFor('member-a', 'project-a');
  const created = await app.http('POST', '/v2/images', { headers: auth(memberA), body: { name: 'behind-keystone', disk_format: 'raw', container_format: 'bare', visibility: 'private' } });
  expect(created.status).toBe(201);
  expect(created.body.owner).toBe(keystone.projectIds['project-a']);
  const upstream = await glanceShow(created.body.id, memberA);
  expect(upstream.status).toBe(200);
  expect(upstream.body).toMatchObject({ name: 'behind-keystone', owner: keystone.projectIds['project-a'] });

  const data = randomBytes(64 * 1024);
  const put = await fetch(`${app.baseUrl}/v2/images/${created.body.id}/file`, { method: 'PUT', headers: { ...auth(memberA), 'content-type': 'application/octet-stream' }, body: data });
  expect(put.status).toBe(204);
  const got = await fetch(`${app.baseUrl}/v2/images/${created.body.id}/file`, { headers: auth(memberA) });
  expect(got.status).toBe(200);
  expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);

  const listed = await app.gql('{ images(first: 50) { edges { node { id owner } } } }', undefined, memberA);
  expect(listed.body.errors).toBeUndefined();
  expect(listed.body.data.images.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(created.body.id);
});

it('lets Glance\'s policy decide: another project sees nothing, only an admin may publicize, an admin sees all', async () => {
  const memberA = await keystone.tokenFor('member-a', 'project-a');
  const created = await app.http('POST', '/v2/images', { headers: auth(memberA), body: { name: 'private-to-a', visibility: 'private' } });
  expect(created.status).toBe(201);

  const memberB = await keystone.tokenFor('member-b', 'project-b');
  expect((await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(memberB) })).status).toBe(404);
  expect((await glanceShow(created.body.id, memberB)).status).toBe(404);

  const readerA = await keystone.tokenFor('reader-a', 'project-a');
  expect((await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(readerA) })).status).toBe(200);

  // Glance's rule (publicize_image: admin), applied by Glance to the forwarded token.
  const publicize = [{ op: 'replace', path: '/visibility', value: 'public' }];
  const patch = (token: string) => app.http('PATCH', `/v2/images/${created.body.id}`, { headers: { ...auth(token), 'content-type': 'application/openstack-images-v2.1-json-patch' }, body: publicize });
  expect((await patch(memberA)).status).toBe(403);
  const refused = await app.gql('mutation($id: ID!) { setVisibility(id: $id, visibility: PUBLIC) { id } }', { id: created.body.id }, memberA);
  expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  expect((await glanceShow(created.body.id, memberA)).body).toMatchObject({ visibility: 'private' });

  const admin = await keystone.tokenFor('admin', 'admin');
  const seen = await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(admin) });
  expect(seen.status).toBe(200);
  expect(seen.body.owner).toBe(keystone.projectIds['project-a']);
  expect((await patch(admin)).status).toBe(200);
  expect((await glanceShow(created.body.id, memberB)).body).toMatchObject({ visibility: 'public' });
});

/**
 * Glance's notifications leave out os_hidden, the os_hash_* fields and member changes; a
 * Glance backend reads the image to learn them. With forwarded tokens there is no caller to
 * read as: Vitrine reads with its own service token, which Glance lets read every image
 * only when the service user has the admin role (an operator's step, done here).
 */
describe('notifications with forwarded tokens', () => {
  let dir: string;
  let store: SqliteMetadataStore;
  let bus: MemoryEventBus;
  const opened: GlanceBackend[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-gk-events-'));
    store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
    await store.migrate();
    bus = new MemoryEventBus();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await store?.close();
    await bus?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A backend that forwards tokens and reads notified images with a fresh service token of its own. */
  async function watchingBackend(): Promise<GlanceBackend> {
    const identity = createKeystoneIdentity({ serviceDomain: 'Default', cacheSeconds: 300, cacheSize: 100, timeoutMs: 30_000, ...keystone.authConfig() } as KeystoneAuthConfig);
    const queue = `vitrine-test-${randomUUID()}`;
    const backend = new GlanceBackend(testGlanceOptions(glance.url, bus, {
      identity: 'token',
      serviceToken: () => identity.serviceToken(),
      events: { append: (e) => store.appendEvents(e) },
      notifications: { url: RABBIT, exchange: 'glance', topic: 'notifications', queue, queueExpiresMs: 120_000, reconnectMinMs: 50, reconnectMaxMs: 500 },
      inFlightPollMs: 0,
      log: () => undefined,
    }));
    opened.push(backend);
    const consumer = backend.notifications!;
    if (!consumer.consuming) await new Promise<void>((resolve) => consumer.onReady(resolve));
    return backend;
  }

  /** Glance called directly, with a Keystone token. */
  async function direct(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<any> {
    const res = await fetch(`${glance.url}${path}`, {
      method,
      headers: { ...auth(token), accept: 'application/json', ...(body !== undefined && { 'content-type': contentType }) },
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  async function eventsUntil(id: string, done: (events: StoredEvent[]) => boolean): Promise<StoredEvent[]> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const events = (await store.readEvents(0, 100_000)).filter((e) => e.artifactId === id);
      if (done(events)) return events;
      if (Date.now() > deadline) throw new Error(`events of ${id} never got there: ${JSON.stringify(events.map((e) => [e.kind, e.to]))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Uploads data and changes members of a shared image of project A, all in Glance directly. */
  async function changeInGlance(): Promise<{ id: string; data: Buffer }> {
    const [memberA, memberB] = [await keystone.tokenFor('member-a', 'project-a'), await keystone.tokenFor('member-b', 'project-b')];
    const projectB = keystone.projectIds['project-b'];
    const { id } = await direct(memberA, 'POST', '/v2/images', { name: `gk-${randomUUID().slice(0, 8)}`, disk_format: 'raw', container_format: 'bare', visibility: 'shared' });
    const data = randomBytes(7_777);
    await direct(memberA, 'PUT', `/v2/images/${id}/file`, data, 'application/octet-stream');
    await direct(memberA, 'POST', `/v2/images/${id}/members`, { member: projectB });
    await direct(memberB, 'PUT', `/v2/images/${id}/members/${projectB}`, { status: 'accepted' });
    await direct(memberA, 'DELETE', `/v2/images/${id}/members/${projectB}`);
    // A last rename marks the end: every notification before it has been handled once its event is in.
    await direct(memberA, 'PATCH', `/v2/images/${id}`, [{ op: 'replace', path: '/name', value: 'gk-done' }], 'application/openstack-images-v2.1-json-patch');
    return { id, data };
  }
  const summary = (events: StoredEvent[]) => events.map((e) => [e.kind, e.from ?? null, e.to ?? null]);
  const renamed = (events: StoredEvent[]) => events.some((e) => e.snapshot.name === 'gk-done');

  it('without a service user that may read every image, the fields stay unknown and member changes go unevented', async () => {
    await watchingBackend();
    const { id } = await changeInGlance();
    const events = await eventsUntil(id, renamed);
    expect(summary(events)).toEqual([['created', null, null], ['statusChanged', 'queued', 'saving'], ['statusChanged', 'saving', 'active'], ['updated', null, null]]);
    // Unknown, so left out of the snapshot (never a made-up default).
    expect(events[2].snapshot.fields).toMatchObject({ size: 7_777 });
    expect(events[2].snapshot.fields).not.toHaveProperty('os_hash_value');
  });

  it('with the admin role, reads as itself: hash fields of a direct upload, and one updated event per member change', async () => {
    const admin = await keystone.tokenFor('admin', 'admin');
    const roles = (await (await fetch(`${keystone.url}/v3/roles?name=admin`, { headers: auth(admin) })).json()) as { roles: { id: string }[] };
    const grant = await fetch(`${keystone.url}/v3/projects/${keystone.env.KEYSTONE_SERVICE_PROJECT_ID}/users/${keystone.env.KEYSTONE_SERVICE_USER_ID}/roles/${roles.roles[0].id}`, { method: 'PUT', headers: auth(admin) });
    expect(grant.status).toBe(204);
    await watchingBackend();
    const { id, data } = await changeInGlance();
    const events = await eventsUntil(id, renamed);
    expect(summary(events)).toEqual([
      ['created', null, null],
      ['statusChanged', 'queued', 'saving'],
      ['statusChanged', 'saving', 'active'],
      ['updated', null, null],
      ['updated', null, null],
      ['updated', null, null],
      ['updated', null, null],
    ]);
    expect(events[2].snapshot.fields).toMatchObject({ os_hash_algo: 'sha512', os_hash_value: createHash('sha512').update(data).digest('hex') });
    expect(events.every((e) => e.backend === 'legacy')).toBe(true);
  });
});

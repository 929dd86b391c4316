import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { testGlanceOptions } from '../helpers/glance-backend';
import { GlanceBackend, type GlanceBackendOptions } from '../../src/backends/glance/backend';
import type { NotificationSettings } from '../../src/backends/glance/notifications';
import type { ArtifactView } from '../../src/backends/port';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { ProgressEvent } from '../../src/events/port';
import type { StoredEvent } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { startTestApp, type TestApp } from '../helpers/app';
import { FaultProxy } from '../helpers/fault-proxy';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * Lifecycle events of a Glance backend against a real Glance 25.1 that sends real
 * oslo.messaging notifications to the real RabbitMQ on 127.0.0.1:5672
 * (`glance-dev --notifications rabbit://...`): writes through Vitrine log one event per
 * change; images changed in Glance directly reach the log, the bus and GraphQL
 * subscriptions through the notifications; without notifications, images in flight are
 * polled; a RabbitMQ outage (a TCP proxy cut) ends with consumption resumed.
 */
jest.setTimeout(300_000);

const RABBIT = process.env.VITRINE_TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

let glance: RealGlance;
let dir: string;
let store: SqliteMetadataStore;
let bus: MemoryEventBus;
let admin: Principal;
const published: StoredEvent[] = [];
const progress: ProgressEvent[] = [];
const opened: GlanceBackend[] = [];

/** A queue of its own per backend: the broker is shared with other tests. */
function notifications(url = RABBIT): NotificationSettings {
  return { url, exchange: 'glance', topic: 'notifications', queue: `vitrine-test-${randomUUID()}`, queueExpiresMs: 120_000, reconnectMinMs: 50, reconnectMaxMs: 500 };
}

function open(overrides: Partial<GlanceBackendOptions> = {}): GlanceBackend {
  const b = new GlanceBackend(testGlanceOptions(glance.url, bus, { pollIntervalMs: 50, events: { append: (e) => store.appendEvents(e) }, inFlightPollMs: 0, log: () => undefined, ...overrides }));
  opened.push(b);
  return b;
}

async function consuming(b: GlanceBackend): Promise<void> {
  const consumer = b.notifications!;
  if (consumer.consuming) return;
  await new Promise<void>((resolve) => {
    const sub = consumer.onReady(() => {
      sub.unsubscribe();
      resolve();
    });
  });
}

/** Glance's API called directly, as another client of that Glance would (project GLANCE_PROJECT_ID). */
async function direct(method: string, path: string, body?: unknown, contentType = 'application/json', headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(`${glance.url}${path}`, {
    method,
    headers: { accept: 'application/json', ...(body !== undefined && { 'content-type': contentType }), ...headers },
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

const createDirect = (name = `direct-${randomUUID().slice(0, 8)}`) => direct('POST', '/v2/images', { name, disk_format: 'raw', container_format: 'bare' }).then((i) => i.id as string);

const eventsOf = async (id: string) => (await store.readEvents(0, 100_000)).filter((e) => e.artifactId === id);
const summary = (events: StoredEvent[]) => events.map((e) => [e.kind, e.from ?? null, e.to ?? null]);

/** Waits until the image's logged events satisfy `done`, and returns them. */
async function until(id: string, done: (events: StoredEvent[]) => boolean, timeoutMs = 30_000): Promise<StoredEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await eventsOf(id);
    if (done(events)) return events;
    if (Date.now() > deadline) throw new Error(`events of ${id} never got there: ${JSON.stringify(summary(events))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Makes a change in Glance directly and waits for its event: every notification Glance
 * sent about the image before it has been handled by then.
 */
async function settle(id: string): Promise<StoredEvent[]> {
  const marker = `marker-${randomUUID().slice(0, 8)}`;
  await direct('PATCH', `/v2/images/${id}`, [{ op: 'add', path: '/marker', value: marker }], 'application/openstack-images-v2.1-json-patch');
  const events = await until(id, (e) => e.some((x) => x.snapshot.properties.marker === marker));
  return events.slice(0, events.findIndex((x) => x.snapshot.properties.marker === marker));
}

beforeAll(async () => {
  glance = await startGlance({ notifications: RABBIT.replace(/^amqp:/, 'rabbit:') });
  admin = { projectId: glance.projectId, userId: glance.env.GLANCE_USER_ID, roles: ['admin', 'member', 'reader'] };
  dir = mkdtempSync(join(tmpdir(), 'vitrine-gevents-'));
  store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
  await store.migrate();
  bus = new MemoryEventBus();
  bus.subscribe((m) => (m.topic === 'artifact' ? published.push(m.event) : progress.push(m.event)));
}, GLANCE_START_TIMEOUT_MS);

// A backend that stays open would go on logging notifications of later tests into the same log.
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await store?.close();
  await bus?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await glance?.stop();
});

describe('changes made through Vitrine, without notifications', () => {
  it('log one event per change, published on the bus with its seq', async () => {
    const b = open();
    const image = await b.create(admin, { typeName: 'images', name: 'through-vitrine', fields: { disk_format: 'raw', container_format: 'bare' } });
    await b.addMember(admin, image.id, 'c'.repeat(32));
    await b.update(admin, image.id, { name: 'renamed', setProperties: { os_distro: 'cirros' } });
    await b.update(admin, image.id, { name: 'renamed' }); // no change: no call, no event
    await b.removeMember(admin, image.id, 'c'.repeat(32));
    await b.setVisibility(admin, image.id, 'private');
    await b.uploadBlob(admin, { artifactId: image.id, field: 'image', key: '' }, Readable.from([randomBytes(4096)]), { contentType: 'application/octet-stream' });
    await b.changeStatus(admin, image.id, 'deactivate');
    await b.changeStatus(admin, image.id, 'reactivate');
    await b.delete(admin, image.id);

    const events = await eventsOf(image.id);
    expect(summary(events)).toEqual([
      ['created', null, null],
      ['updated', null, null],
      ['updated', null, null],
      ['updated', null, null],
      ['updated', null, null],
      ['statusChanged', 'queued', 'active'],
      ['statusChanged', 'active', 'deactivated'],
      ['statusChanged', 'deactivated', 'active'],
      ['deleted', 'active', 'deleted'],
    ]);
    expect(events.map((e) => e.snapshot.name)).toEqual(['through-vitrine', 'through-vitrine', 'renamed', 'renamed', 'renamed', 'renamed', 'renamed', 'renamed', 'renamed']);
    expect(events[4].visibility).toBe('private');
    expect(events.every((e) => e.owner === glance.projectId && e.typeName === 'images')).toBe(true);
    expect(published.filter((e) => e.artifactId === image.id)).toEqual(events);
  });

  it('a backend without a sink logs nothing', async () => {
    const before = (await store.readEvents(0, 100_000)).length;
    const b = open({ events: undefined });
    const image = await b.create(admin, { typeName: 'images', name: 'unlogged' });
    await b.delete(admin, image.id);
    expect(await store.readEvents(0, 100_000)).toHaveLength(before);
  });
});

describe('polling images in flight (no notifications)', () => {
  it('turns the status changes of an import run in Glance directly into events', async () => {
    const b = open({ inFlightPollMs: 100 });
    const image = await b.create(admin, { typeName: 'images', name: 'polled', fields: { disk_format: 'raw', container_format: 'bare' } });
    await b.stageImage(admin, image.id, Readable.from([randomBytes(64 * 1024)]), { contentType: null });
    // The import is started in Glance, not through Vitrine: only the polling sees it.
    await direct('POST', `/v2/images/${image.id}/import`, { method: { name: 'glance-direct' } });
    const events = await until(image.id, (e) => e.some((x) => x.to === 'active'));
    const statuses = summary(events).slice(1);
    expect(statuses[0]).toEqual(['statusChanged', 'queued', 'uploading']);
    expect(statuses.at(-1)).toEqual(['statusChanged', expect.stringMatching(/^(uploading|importing)$/), 'active']);
    // A chain of changes, each from where the previous one left.
    for (let i = 1; i < statuses.length; i++) expect(statuses[i][1]).toBe(statuses[i - 1][2]);
    const [view] = await b.getMany(admin, [image.id]);
    expect((view as ArtifactView).status).toBe('active');
  });

  it('follows images first seen in flight by a lookup', async () => {
    const b = open({ inFlightPollMs: 60_000 });
    const id = await createDirect();
    await direct('PUT', `/v2/images/${id}/stage`, randomBytes(1024), 'application/octet-stream');
    await b.getMany(admin, [id]); // seen uploading: followed from now on
    expect(await b.pollInFlight()).toBe(true); // seeds what was seen
    await direct('POST', `/v2/images/${id}/import`, { method: { name: 'glance-direct' } });
    const deadline = Date.now() + 30_000;
    while (!(await eventsOf(id)).some((e) => e.to === 'active') && Date.now() < deadline) {
      await b.pollInFlight();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(summary(await eventsOf(id)).at(-1)).toEqual(['statusChanged', expect.stringMatching(/^(uploading|importing)$/), 'active']);
  });
});

describe("Glance's notifications", () => {
  it('turn an image created and uploaded in Glance directly into created and status events', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const id = await createDirect();
    await direct('PUT', `/v2/images/${id}/file`, randomBytes(10_000), 'application/octet-stream');
    const events = await until(id, (e) => e.some((x) => x.to === 'active'));
    expect(summary(events)).toEqual([
      ['created', null, null],
      ['statusChanged', 'queued', 'saving'],
      ['statusChanged', 'saving', 'active'],
    ]);
    expect(events[2].snapshot).toMatchObject({ id, status: 'active', owner: glance.projectId, fields: { size: 10_000 } });
    expect(published.filter((e) => e.artifactId === id)).toEqual(events);

    await direct('DELETE', `/v2/images/${id}`);
    expect(summary(await until(id, (e) => e.some((x) => x.kind === 'deleted'))).at(-1)).toEqual(['deleted', 'active', 'deleted']);
  });

  it('add no duplicate of changes made through Vitrine', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const image = await b.create(admin, { typeName: 'images', name: 'once', fields: { disk_format: 'raw', container_format: 'bare' } });
    await b.update(admin, image.id, { setTags: ['one'], setProperties: { os_distro: 'cirros' } });
    await b.setVisibility(admin, image.id, 'community');
    await b.uploadBlob(admin, { artifactId: image.id, field: 'image', key: '' }, Readable.from([randomBytes(2048)]), { contentType: 'application/octet-stream' });
    await b.changeStatus(admin, image.id, 'deactivate');
    await b.changeStatus(admin, image.id, 'reactivate');
    const events = summary(await settle(image.id));
    expect(events.slice(0, 3)).toEqual([['created', null, null], ['updated', null, null], ['updated', null, null]]);
    // The upload: Glance's notification tells when the data started (saving), unless Vitrine's answer that it landed came first.
    expect([
      [['statusChanged', 'queued', 'saving'], ['statusChanged', 'saving', 'active']],
      [['statusChanged', 'queued', 'active']],
    ]).toContainEqual(events.slice(3, -2));
    expect(events.slice(-2)).toEqual([['statusChanged', 'active', 'deactivated'], ['statusChanged', 'deactivated', 'active']]);
    await b.delete(admin, image.id);
    await new Promise((r) => setTimeout(r, 500));
    await b.notifications!.drained();
    expect(summary(await eventsOf(image.id)).filter(([kind]) => kind === 'deleted')).toEqual([['deleted', 'active', 'deleted']]);
  });

  it('carry os_hidden, which the payload lacks, read from Glance for the notified state', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const { id } = await direct('POST', '/v2/images', { name: 'hidden', disk_format: 'raw', container_format: 'bare', os_hidden: true });
    const [created] = await until(id, (e) => e.length === 1);
    expect(created).toMatchObject({ kind: 'created', snapshot: { fields: { os_hidden: true, os_hash_algo: null, os_hash_value: null } } });
    // A change of os_hidden alone is a change a subscriber can see.
    await direct('PATCH', `/v2/images/${id}`, [{ op: 'replace', path: '/os_hidden', value: false }], 'application/openstack-images-v2.1-json-patch');
    const events = await until(id, (e) => e.length === 2);
    expect(summary(events)).toEqual([['created', null, null], ['updated', null, null]]);
    expect(events[1].snapshot.fields.os_hidden).toBe(false);
    await direct('PATCH', `/v2/images/${id}`, [{ op: 'replace', path: '/os_hidden', value: true }], 'application/openstack-images-v2.1-json-patch');
    expect((await until(id, (e) => e.length === 3))[2].snapshot.fields.os_hidden).toBe(true);
    // Deleted in Glance: the snapshot keeps what was known of the image before.
    await direct('DELETE', `/v2/images/${id}`);
    const deleted = (await until(id, (e) => e.some((x) => x.kind === 'deleted'))).at(-1)!;
    expect(deleted.snapshot.fields).toMatchObject({ os_hidden: true });
  });

  it('carry the os_hash_* of data uploaded in Glance directly', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const id = await createDirect();
    const data = randomBytes(12_345);
    await direct('PUT', `/v2/images/${id}/file`, data, 'application/octet-stream');
    const active = (await until(id, (e) => e.some((x) => x.to === 'active'))).find((x) => x.to === 'active')!;
    expect(active.snapshot.fields).toMatchObject({
      size: 12_345,
      checksum: createHash('md5').update(data).digest('hex'),
      os_hash_algo: 'sha512',
      os_hash_value: createHash('sha512').update(data).digest('hex'),
    });
  });

  it('turn member changes made in Glance directly into updated events of the image', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const other = randomUUID().replace(/-/g, '');
    const { id } = await direct('POST', '/v2/images', { name: 'shared', disk_format: 'raw', container_format: 'bare', visibility: 'shared' });
    await until(id, (e) => e.length === 1);
    await direct('POST', `/v2/images/${id}/members`, { member: other });
    await until(id, (e) => e.length === 2);
    // The member project accepts, with its own identity.
    await direct('PUT', `/v2/images/${id}/members/${other}`, { status: 'accepted' }, 'application/json', { 'x-project-id': other, 'x-user-id': 'u-other', 'x-roles': 'member,reader' });
    await until(id, (e) => e.length === 3);
    await direct('DELETE', `/v2/images/${id}/members/${other}`);
    const events = await until(id, (e) => e.length === 4);
    expect(summary(events)).toEqual([['created', null, null], ['updated', null, null], ['updated', null, null], ['updated', null, null]]);
    expect(events.slice(1).every((e) => e.snapshot.id === id && e.snapshot.visibility === 'shared' && e.owner === glance.projectId)).toBe(true);
    expect(published.filter((e) => e.artifactId === id)).toEqual(events);
    // Nothing more comes of them.
    expect(summary(await settle(id))).toHaveLength(4);
  });

  it('add no duplicate of member changes made through Vitrine', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const other = randomUUID().replace(/-/g, '');
    const image = await b.create(admin, { typeName: 'images', name: 'members-once', visibility: 'shared', fields: { disk_format: 'raw', container_format: 'bare' } });
    await b.addMember(admin, image.id, other);
    await b.updateMember({ projectId: other, userId: 'u-other', roles: ['member', 'reader'] }, image.id, other, 'accepted');
    await b.removeMember(admin, image.id, other);
    await b.addMember(admin, image.id, other);
    expect(summary(await settle(image.id))).toEqual([['created', null, null], ...Array(4).fill(['updated', null, null])]);
  });

  it('give imports run in Glance directly a final importProgress event', async () => {
    const b = open({ notifications: notifications() });
    await consuming(b);
    const id = await createDirect();
    await direct('PUT', `/v2/images/${id}/stage`, randomBytes(20_000), 'application/octet-stream');
    await direct('POST', `/v2/images/${id}/import`, { method: { name: 'glance-direct' }, stores: ['fast', 'cheap'] });
    const deadline = Date.now() + 60_000;
    while (!progress.some((e) => e.artifactId === id && e.done) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const events = progress.filter((e) => e.artifactId === id);
    expect(events.at(-1)).toMatchObject({ kind: 'importProgress', subject: 'glance-direct', owner: glance.projectId, done: true, outcome: 'succeeded', finalStatus: 'active', storesFailed: [] });
    expect([...events.at(-1)!.storesDone!].sort()).toEqual(['cheap', 'fast']);
    expect(events.filter((e) => e.done)).toHaveLength(1);
    const logged = summary(await until(id, (e) => e.some((x) => x.to === 'active')));
    expect(logged.find(([, , to]) => to === 'active')).toEqual(['statusChanged', 'importing', 'active']);
  });

  it('resume after RabbitMQ drops the connection', async () => {
    const [host, port] = ['127.0.0.1', Number(new URL(RABBIT).port || 5672)];
    const fault = await FaultProxy.start({ host, port });
    try {
      const b = open({ notifications: notifications(fault.urlFor(RABBIT)) });
      await consuming(b);
      const first = await createDirect();
      await until(first, (e) => e.length === 1);

      fault.cut();
      const deadline = Date.now() + 10_000;
      while (b.notifications!.consuming && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(b.notifications!.consuming).toBe(false);
      // Glance still notifies (to the real broker): the queue keeps it for the consumer.
      const during = await createDirect();
      await new Promise((r) => setTimeout(r, 300));
      expect(await eventsOf(during)).toEqual([]);

      const back = consuming(b);
      fault.restore();
      await back;
      expect(b.notifications!.connections).toBeGreaterThanOrEqual(2);
      expect(summary(await until(during, (e) => e.length === 1))).toEqual([['created', null, null]]);
      const after = await createDirect();
      expect(summary(await until(after, (e) => e.length === 1))).toEqual([['created', null, null]]);
    } finally {
      await fault.close();
    }
  });
});

/** Waits until RabbitMQ shows a consumer on the queue (the app's consumer is not reachable from here). */
async function consumingApp(queue: string): Promise<void> {
  const amqp = await import('amqplib');
  const connection = await amqp.connect(RABBIT);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined); // a queue not declared yet closes the channel
      const found = await channel.checkQueue(queue).then((q) => q.consumerCount, () => 0);
      await channel.close().catch(() => undefined);
      if (found > 0) return;
      if (Date.now() > deadline) throw new Error(`no consumer on ${queue}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await connection.close();
  }
}

describe('artifactEvents over GraphQL', () => {
  let app: TestApp | undefined;
  let client: Client | undefined;
  afterAll(async () => {
    await client?.dispose();
    await app?.close();
  });

  it('delivers events of an image created and uploaded in Glance directly', async () => {
    const queue = `vitrine-test-${randomUUID()}`;
    const name = `ws-${randomUUID().slice(0, 8)}`;
    // Created before Vitrine listens: its deletion is all Vitrine will hear of it.
    const unseen = await createDirect(name);
    app = await startTestApp({
      backends: [
        { name: 'native', driver: 'native' },
        { name: 'legacy', driver: 'glance', url: glance.url, identity: 'headers', inFlightPollMs: 0, notifications: { url: RABBIT, queue, queueExpiresMs: 120_000 } },
      ],
    });
    client = createClient({ url: `${app.baseUrl.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token: app.tokens.admin }, retryAttempts: 0, lazy: true });
    const received: any[] = [];
    const wakers: (() => void)[] = [];
    const subscribe = (query: string, variables?: Record<string, unknown>) => client!.subscribe({ query, variables }, {
      next: (value) => {
        if (query.startsWith('subscription')) received.push(value);
        wakers.splice(0).forEach((w) => w());
      },
      error: (err) => {
        received.push({ error: err });
        wakers.splice(0).forEach((w) => w());
      },
      complete: () => undefined,
    });
    subscribe('subscription($filter: ArtifactEventFilter) { artifactEvents(filter: $filter) { kind artifactId typeName from to artifact { id name backend ... on Image { size osHidden osHashValue } } } }', { filter: { names: [name] } });
    // A query over the same socket answers once the subscription before it is set up.
    await new Promise<void>((resolve) => {
      wakers.push(resolve);
      subscribe('{ viewer { projectId } }');
    });
    await consumingApp(queue);
    const id = await createDirect(name);
    await direct('PUT', `/v2/images/${id}/file`, randomBytes(5_000), 'application/octet-stream');
    const deadline = Date.now() + 60_000;
    while (!received.some((r) => r.error || r.data?.artifactEvents?.to === 'ACTIVE')) {
      if (Date.now() > deadline) throw new Error(`not all events arrived: ${JSON.stringify(received)}`);
      await new Promise<void>((resolve) => {
        wakers.push(resolve);
        setTimeout(resolve, 500);
      });
    }
    const events = received.map((r) => r.data?.artifactEvents ?? r);
    expect(events.map((e) => [e.kind, e.from, e.to])).toEqual([['CREATED', null, null], ['STATUS_CHANGED', 'QUEUED', 'SAVING'], ['STATUS_CHANGED', 'SAVING', 'ACTIVE']]);
    expect(events.every((e) => e.artifactId === id && e.typeName === 'images' && e.artifact.backend === 'legacy' && e.artifact.name === name)).toBe(true);
    // The artifact is the one readable at delivery, which may be any state since the event.
    expect(events[2].artifact.id).toBe(id);

    // Glance's image.delete does not carry os_hidden, and Vitrine never read this image: unknown, not false.
    await direct('DELETE', `/v2/images/${unseen}`);
    const until = Date.now() + 60_000;
    while (!received.some((r) => r.error || r.data?.artifactEvents?.kind === 'DELETED')) {
      if (Date.now() > until) throw new Error(`no DELETED event: ${JSON.stringify(received)}`);
      await new Promise<void>((resolve) => {
        wakers.push(resolve);
        setTimeout(resolve, 500);
      });
    }
    // (No status before is known either.)
    expect(received.at(-1)).toEqual({ data: { artifactEvents: { kind: 'DELETED', artifactId: unseen, typeName: 'images', from: null, to: 'DELETED', artifact: { id: unseen, name, backend: 'legacy', size: null, osHidden: null, osHashValue: null } } } });
  });
});

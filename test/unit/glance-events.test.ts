import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageEvents, reachable, type EventSink } from '../../src/backends/glance/events';
import { completeImage, imageFromPayload, parseNotification } from '../../src/backends/glance/notifications';
import { imageView } from '../../src/backends/glance/shapes';
import type { ArtifactView } from '../../src/backends/port';
import { MemoryEventBus } from '../../src/events/memory';
import type { StoredEvent } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * ImageEvents: one event per change of a Glance image, whichever source reports it
 * (Vitrine's writes, notifications, polling), logged in a real SQLite event log and
 * published on the in-process bus. And the shape of Glance's notifications.
 */
let dir: string;
let store: SqliteMetadataStore;
let bus: MemoryEventBus;
let published: StoredEvent[];
let events: ImageEvents;
const logged: string[] = [];

const sink = (): EventSink => ({ append: (e) => store.appendEvents(e) });
const ID = '6f1b4d3e-0000-4000-8000-000000000001';
const BACKEND = 'legacy';

/** Glance's API JSON of an image, as the backend reads it. */
function image(changes: Record<string, unknown> = {}, id = ID): ArtifactView {
  return imageView('legacy', {
    id, name: 'cirros', status: 'queued', visibility: 'shared', owner: 'p1', tags: [], disk_format: 'raw', container_format: 'bare',
    size: null, virtual_size: null, checksum: null, os_hash_algo: null, os_hash_value: null, min_disk: 0, min_ram: 0, protected: false, os_hidden: false,
    created_at: '2026-01-01T10:00:00Z', updated_at: '2026-01-01T10:00:00Z', self: `/v2/images/${id}`, file: `/v2/images/${id}/file`, schema: '/v2/schemas/image',
    ...changes,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-gevents-'));
  store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
  await store.migrate();
  bus = new MemoryEventBus();
  published = [];
  bus.subscribe((m) => m.topic === 'artifact' && published.push(m.event));
  events = new ImageEvents({ backend: BACKEND, sink: sink(), bus, log: (message) => logged.push(message) });
});

afterEach(async () => {
  await store.close();
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
});

const log = async () => (await store.readEvents(0, 100)).map((e) => [e.kind, e.from ?? null, e.to ?? null]);

describe('ImageEvents', () => {
  it('logs each change once, whoever reports it, and publishes what it logged', async () => {
    await events.report(image(), { kind: 'created' });
    await events.report(image(), { kind: 'created' }); // the notification of the same create
    await events.report(image(), { kind: 'changed' });
    const renamed = image({ name: 'debian', updated_at: '2026-01-01T10:00:01Z' });
    await events.report(renamed, { kind: 'changed', from: 'queued' });
    await events.report(renamed, { kind: 'changed' });
    const saving = image({ name: 'debian', status: 'saving', updated_at: '2026-01-01T10:00:02Z' });
    await events.report(saving, { kind: 'changed' });
    const active = image({ name: 'debian', status: 'active', size: 11, checksum: 'abc', updated_at: '2026-01-01T10:00:02Z' });
    await events.report(active, { kind: 'changed', from: 'queued' });
    await events.report(active, { kind: 'changed', statusChange: true });
    await events.report(active, { kind: 'deleted' });
    await events.report(active, { kind: 'deleted' });
    await events.report(active, { kind: 'changed' });

    expect(await log()).toEqual([
      ['created', null, null],
      ['updated', null, null],
      ['statusChanged', 'queued', 'saving'],
      // The status before is the one logged last, not what the writer saw.
      ['statusChanged', 'saving', 'active'],
      ['deleted', 'active', 'deleted'],
    ]);
    const stored = await store.readEvents(0, 100);
    expect(published).toEqual(stored);
    expect(stored[1]).toMatchObject({ artifactId: ID, typeName: 'images', owner: 'p1', visibility: 'shared', snapshot: { name: 'debian', status: 'queued' } });
    expect(stored[1].snapshot).not.toHaveProperty('backend');
    // Each event names the backend it came from, in the log and on the bus: a deleted image can no longer be asked.
    expect(stored.map((e) => e.backend)).toEqual(Array(5).fill(BACKEND));
    expect(stored[4].snapshot.status).toBe('active');
    expect(stored[4].revision).toBe(stored[3].revision + 1);
  });

  it('drops states older than the one logged: an earlier second, or the same second with a status that cannot follow', async () => {
    const active = image({ status: 'active', size: 3, updated_at: '2026-01-01T10:00:05Z' });
    await events.report(active, { kind: 'changed', from: 'queued' });
    // Late notifications of the upload that Vitrine already reported as done.
    await events.report(image({ status: 'saving', updated_at: '2026-01-01T10:00:05Z' }), { kind: 'changed' });
    await events.report(image({ status: 'queued', name: 'old', updated_at: '2026-01-01T10:00:04Z' }), { kind: 'changed' });
    // The same second, a status that can follow: a real change.
    await events.report(image({ status: 'deactivated', size: 3, updated_at: '2026-01-01T10:00:05Z' }), { kind: 'changed' });
    expect(await log()).toEqual([['statusChanged', 'queued', 'active'], ['statusChanged', 'active', 'deactivated']]);
    expect(reachable('active', 'saving')).toBe(false);
    expect(reachable('queued', 'active')).toBe(true);
    expect(reachable('importing', 'uploading')).toBe(true);
  });

  it('tells what it can of images it has not seen: a status change only when the report knows one', async () => {
    const other = (n: number) => `6f1b4d3e-0000-4000-8000-00000000010${n}`;
    await events.report(image({ status: 'deactivated' }, other(1)), { kind: 'changed', from: 'active' });
    await events.report(image({ status: 'active' }, other(2)), { kind: 'changed', statusChange: true });
    await events.report(image({ status: 'active' }, other(3)), { kind: 'changed' });
    await events.report(image({ status: 'saving' }, other(4)), { kind: 'polled' });
    await events.report(image({ status: 'saving', name: 'renamed' }, other(4)), { kind: 'polled' });
    await events.report(image({ status: 'active', updated_at: '2026-01-01T10:00:09Z' }, other(4)), { kind: 'polled' });
    expect(await log()).toEqual([
      ['statusChanged', 'active', 'deactivated'],
      ['statusChanged', null, 'active'],
      ['updated', null, null],
      // Polling: the first sighting seeds, a change that keeps the status is not polling's to tell.
      ['statusChanged', 'saving', 'active'],
    ]);
  });

  it("matches each of Vitrine's reports with Glance's report of the same change, even late or back to an earlier state", async () => {
    const at = '2026-01-01T10:00:03Z';
    const active = image({ status: 'active', size: 3, updated_at: at });
    const deactivated = image({ status: 'deactivated', size: 3, updated_at: at });
    // Within one second: upload, deactivate, reactivate through Vitrine (back to a state already logged).
    await events.report(active, { kind: 'changed', from: 'queued' });
    await events.report(deactivated, { kind: 'changed' });
    await events.report(active, { kind: 'changed' });
    // Glance's notifications of the three changes come afterwards: nothing new.
    for (const state of [active, deactivated, active]) await events.report(state, { kind: 'changed' }, 'glance');
    expect(await log()).toEqual([['statusChanged', 'queued', 'active'], ['statusChanged', 'active', 'deactivated'], ['statusChanged', 'deactivated', 'active']]);

    // The same three changes made in Glance by someone else: three events.
    const other = (changes: Record<string, unknown>) => image({ ...changes, size: 3, updated_at: at }, '6f1b4d3e-0000-4000-8000-000000000301');
    for (const status of ['active', 'deactivated', 'active']) await events.report(other({ status }), { kind: 'changed' }, 'glance');
    expect((await store.readEvents(0, 100)).filter((e) => e.artifactId.endsWith('301')).map((e) => e.to)).toEqual([undefined, 'deactivated', 'active']);
  });

  it("takes a notification that arrives first as the report of Vitrine's change", async () => {
    const renamed = image({ name: 'renamed', updated_at: '2026-01-01T10:00:01Z' });
    await events.report(image(), { kind: 'created' });
    await events.report(renamed, { kind: 'changed' }, 'glance');
    const tagged = image({ name: 'renamed', tags: ['t'], updated_at: '2026-01-01T10:00:01Z' });
    await events.report(tagged, { kind: 'changed' }, 'glance');
    // Vitrine's answer to the rename arrives after Glance's notification of a later change.
    await events.report(renamed, { kind: 'changed', from: 'queued' });
    await events.report(tagged, { kind: 'changed' });
    expect((await store.readEvents(0, 100)).map((e) => [e.kind, e.snapshot.name, e.snapshot.tags])).toEqual([['created', 'cirros', []], ['updated', 'renamed', []], ['updated', 'renamed', ['t']]]);
  });

  it('logs every member change, though the image shows none', async () => {
    await events.report(image(), { kind: 'created' });
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'pending' } });
    await events.report(image(), { kind: 'members', change: { member: 'p3', status: 'pending' } });
    await events.report(image(), { kind: 'changed' });
    expect(await log()).toEqual([['created', null, null], ['updated', null, null], ['updated', null, null]]);
  });

  it("logs a member change once whether Vitrine's answer or Glance's notification comes first, and a repeated change again", async () => {
    const add = { member: 'p2', status: 'pending' } as const;
    await events.report(image(), { kind: 'members', change: add });
    await events.report(image(), { kind: 'members', change: add }, 'glance');
    // Notified first, then Vitrine's answer.
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'accepted' } }, 'glance');
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'accepted' } });
    // Removed and added again through Vitrine: two more changes, each matched by its notification.
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'removed' } });
    await events.report(image(), { kind: 'members', change: add });
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'removed' } }, 'glance');
    await events.report(image(), { kind: 'members', change: add }, 'glance');
    // The same change made in Glance by someone else, not through Vitrine: news.
    await events.report(image(), { kind: 'members', change: { member: 'p2', status: 'removed' } }, 'glance');
    expect(await log()).toEqual(Array(5).fill(['updated', null, null]));
  });

  it('keeps the state logged last when a member event reads a newer image', async () => {
    await events.report(image(), { kind: 'created' });
    const renamed = image({ name: 'renamed', updated_at: '2026-01-01T10:00:01Z' });
    await events.report(renamed, { kind: 'members', change: { member: 'p2', status: 'pending' } }, 'glance');
    await events.report(renamed, { kind: 'changed' }, 'glance');
    expect((await store.readEvents(0, 100)).map((e) => [e.kind, e.snapshot.name])).toEqual([['created', 'cirros'], ['updated', 'renamed'], ['updated', 'renamed']]);
  });

  it('decides concurrent reports of one state once, and logs in the order it decided', async () => {
    const states = [image(), image({ name: 'a', updated_at: '2026-01-01T10:00:01Z' }), image({ name: 'b', updated_at: '2026-01-01T10:00:02Z' })];
    await Promise.all(states.flatMap((s, i) => [events.report(s, { kind: i === 0 ? 'created' : 'changed' }), events.report(s, { kind: 'changed' })]));
    const stored = await store.readEvents(0, 100);
    expect(stored.map((e) => [e.kind, e.snapshot.name])).toEqual([['created', 'cirros'], ['updated', 'a'], ['updated', 'b']]);
  });

  it('never fails the caller: a sink that fails loses its event, and the next one is logged', async () => {
    let broken = true;
    const flaky = new ImageEvents({ backend: BACKEND, sink: { append: (e) => (broken ? Promise.reject(new Error('database down')) : store.appendEvents(e)) }, bus, log: (message) => logged.push(message) });
    await expect(flaky.report(image(), { kind: 'created' })).resolves.toBeNull();
    expect(logged.at(-1)).toMatch(/created event of image .* was not logged/);
    broken = false;
    await flaky.report(image({ name: 'x', updated_at: '2026-01-01T10:00:01Z' }), { kind: 'changed' });
    expect(await log()).toEqual([['updated', null, null]]);
  });

  it('remembers a bounded number of images, the least recently reported dropped first', async () => {
    const small = new ImageEvents({ backend: BACKEND, sink: sink(), bus, maxImages: 2 });
    const ids = [1, 2, 3].map((n) => `6f1b4d3e-0000-4000-8000-00000000020${n}`);
    for (const id of ids) await small.report(image({}, id), { kind: 'created' });
    expect(small.statusOf(ids[0])).toBeUndefined();
    expect(small.statusOf(ids[2])).toBe('queued');
    await small.report(image({}, ids[0]), { kind: 'changed' });
    expect((await store.readEvents(0, 100)).map((e) => e.kind)).toEqual(['created', 'created', 'created', 'updated']);
  });
});

describe("Glance's notifications", () => {
  /** An envelope as Glance 25.1 sends it (captured from a real one, shortened). */
  const envelope = (eventType: string, payload: Record<string, unknown>) => Buffer.from(JSON.stringify({
    'oslo.version': '2.0',
    'oslo.message': JSON.stringify({ message_id: 'e5c8', publisher_id: 'image.localhost', event_type: eventType, priority: 'INFO', payload, timestamp: '2026-11-23 16:34:53.273496' }),
  }));
  const payload = {
    id: ID, name: 'probe', status: 'active', created_at: '2026-01-01T10:00:00Z', updated_at: '2026-01-01T10:00:07Z', min_disk: 0, min_ram: 0, protected: false,
    checksum: '5eb63bbbe01eeed093cb22bb8f5acdc3', owner: 'p1', disk_format: 'raw', container_format: 'bare', size: 11, virtual_size: 11, is_public: false,
    visibility: 'shared', properties: { os_distro: 'cirros', os_glance_import_task: 't1' }, tags: ['a'], deleted: false, deleted_at: null,
    os_glance_importing_to_stores: [], os_glance_failed_import: [],
  };

  it('opens the oslo envelope, and reads the payload as the API shows the image', () => {
    const n = parseNotification(envelope('image.upload', payload))!;
    expect(n).toMatchObject({ eventType: 'image.upload', timestamp: '2026-11-23 16:34:53.273496' });
    const fromPayload = imageFromPayload('legacy', n.payload)!;
    const fromApi = image({ name: 'probe', status: 'active', checksum: payload.checksum, size: 11, virtual_size: 11, updated_at: payload.updated_at, tags: ['a'], os_distro: 'cirros', os_glance_import_task: 't1', os_hash_algo: 'sha512', os_hash_value: 'ff', stores: 'fast' });
    expect(fromPayload).toMatchObject({ id: ID, name: 'probe', status: 'active', owner: 'p1', tags: ['a'], properties: { os_distro: 'cirros', os_glance_import_task: 't1' }, fields: { size: 11, checksum: payload.checksum } });
    expect(fromPayload.revision).toBe(fromApi.revision);
    expect(Object.keys(fromPayload.properties).sort()).toEqual(['os_distro', 'os_glance_import_task']);
    // Not in Glance's payload: unknown, not a default.
    expect(Object.keys(fromPayload.fields).sort()).toEqual(['checksum', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'protected', 'size', 'virtual_size']);
    // Without data there is no hash either.
    expect(imageFromPayload('legacy', { ...payload, status: 'queued', checksum: null, size: null })!.fields).toMatchObject({ os_hash_algo: null, os_hash_value: null });
    expect(imageFromPayload('legacy', { ...payload, status: 'queued', checksum: null, size: null })!.fields).not.toHaveProperty('os_hidden');
  });

  it('completes the payload from a read of the image: every field when it shows the same state, the hash when only the data is the same', () => {
    const notified = imageFromPayload('legacy', payload)!;
    const same = image({ name: 'probe', status: 'active', checksum: payload.checksum, size: 11, virtual_size: 11, updated_at: payload.updated_at, tags: ['a'], os_distro: 'cirros', os_glance_import_task: 't1', os_hidden: true, os_hash_algo: 'sha512', os_hash_value: 'ff', stores: 'fast,cheap' });
    expect(completeImage(notified, same).fields).toMatchObject({ os_hidden: true, os_hash_algo: 'sha512', os_hash_value: 'ff', stores: ['cheap', 'fast'] });
    // The image moved on (renamed since): its os_hidden and stores may not be the notified state's.
    const later = image({ ...Object.fromEntries(Object.entries(same.fields)), name: 'later', status: 'active', tags: ['a'], updated_at: '2026-01-01T10:00:09Z', os_hidden: true, stores: 'fast' });
    const completed = completeImage(notified, later);
    expect(completed.fields).toMatchObject({ os_hash_algo: 'sha512', os_hash_value: 'ff' });
    expect(completed.fields).not.toHaveProperty('os_hidden');
    expect(completed.fields).not.toHaveProperty('stores');
    expect(completed.name).toBe('probe');
    expect(completeImage(notified, null)).toBe(notified);
  });

  it('tells a change of only os_hidden from Glance when both states know it, and nothing when one does not', async () => {
    const created = image({ updated_at: '2026-01-01T10:00:01Z' });
    await events.report(created, { kind: 'created' });
    // Hidden in Glance within the same second: the notification read shows os_hidden true.
    const hidden = image({ os_hidden: true, updated_at: '2026-01-01T10:00:01Z' });
    await events.report(hidden, { kind: 'changed' }, 'glance');
    await events.report(hidden, { kind: 'changed' }, 'glance');
    // A later save that Glance notified and that could not be completed: nothing to tell.
    const { os_hidden: _unknown, ...fields } = hidden.fields;
    await events.report({ ...hidden, fields, updatedAt: '2026-01-01T10:00:02.000Z' }, { kind: 'changed' }, 'glance');
    expect((await store.readEvents(0, 100)).map((e) => [e.kind, e.snapshot.fields.os_hidden])).toEqual([['created', false], ['updated', true]]);
  });

  it("completes a deletion notified by Glance from the state logged last", async () => {
    const hidden = image({ os_hidden: true, status: 'active', size: 11, checksum: 'abc', os_hash_algo: 'sha512', os_hash_value: 'ff' });
    await events.report(hidden, { kind: 'changed' }, 'glance');
    const { os_hidden: _a, os_hash_algo: _b, os_hash_value: _c, stores: _d, ...fields } = hidden.fields;
    await events.report({ ...hidden, status: 'deleted', fields }, { kind: 'deleted' }, 'glance');
    const deleted = (await store.readEvents(0, 100)).at(-1)!;
    expect(deleted).toMatchObject({ kind: 'deleted', from: 'active', snapshot: { status: 'active', fields: { os_hidden: true, os_hash_value: 'ff', stores: [] } } });
    // Never seen before its deletion: unknown stays unknown.
    const other = '6f1b4d3e-0000-4000-8000-000000000401';
    await events.report({ ...image({ status: 'active' }, other), fields }, { kind: 'deleted' }, 'glance');
    expect((await store.readEvents(0, 100)).at(-1)!.snapshot.fields).not.toHaveProperty('os_hidden');
  });

  it('counts the API answer and the notification of one change as one event', async () => {
    const fromApi = image({ name: 'probe', status: 'active', checksum: payload.checksum, size: 11, virtual_size: 11, updated_at: payload.updated_at, tags: ['a'], os_distro: 'cirros', os_glance_import_task: 't1', os_hash_algo: 'sha512', os_hash_value: 'ff', stores: 'fast' });
    await events.report(fromApi, { kind: 'changed', from: 'saving' });
    await events.report(imageFromPayload('legacy', parseNotification(envelope('image.activate', payload))!.payload)!, { kind: 'changed', statusChange: true });
    expect(await log()).toEqual([['statusChanged', 'saving', 'active']]);
  });

  it('drops what is not a notification', () => {
    expect(parseNotification(Buffer.from('not json'))).toBeNull();
    expect(parseNotification(Buffer.from(JSON.stringify({ 'oslo.version': '2.0', 'oslo.message': '{"no": "event"}' })))).toBeNull();
    expect(parseNotification(Buffer.from(JSON.stringify({ event_type: 'image.create', payload: {} }))))
      .toEqual({ eventType: 'image.create', payload: {}, timestamp: null });
    expect(imageFromPayload('legacy', { id: 7 })).toBeNull();
  });
});

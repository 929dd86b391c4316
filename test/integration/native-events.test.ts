import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeBackend } from '../../src/backends/native/backend';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { BusMessage } from '../../src/events/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/** Each committed change emits exactly one event, in the durable log and on the bus alike. */
const admin: Principal = { projectId: 'p', userId: 'u', roles: ['admin', 'member', 'reader'] };
const member: Principal = { projectId: 'p', userId: 'u2', roles: ['member', 'reader'] };

describe('native backend events', () => {
  let dir: string;
  let store: SqliteMetadataStore;
  let backend: NativeBackend;
  let seen: BusMessage[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-events-'));
    store = new SqliteMetadataStore({ path: join(dir, 'meta.sqlite') });
    await store.migrate();
    const bus = new MemoryEventBus();
    seen = [];
    bus.subscribe((m) => seen.push(m));
    const types = new TypeRegistry([{ name: 'notes', fields: { body: { kind: 'string', mutable: true, requiredOnActivate: true } } }]);
    backend = new NativeBackend({ name: 'native', types, store, bus, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts' });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const kinds = () => seen.map((m) => (m.topic === 'artifact' ? `${m.event.kind}${m.event.to ? `:${m.event.from}->${m.event.to}` : ''}` : m.topic));

  it('emits one event per committed change and none for no-ops or failures', async () => {
    const a = await backend.create(member, { typeName: 'notes', name: 'n', fields: { body: 'x' } });
    await backend.update(member, a.id, { addTags: ['t'] });
    await backend.update(member, a.id, { addTags: ['t'] }); // no effective change
    await expect(backend.update(member, a.id, { fields: { body: 5 } })).rejects.toMatchObject({ code: 'FIELD_INVALID' });
    await expect(backend.update(member, a.id, { name: 'z' }, 1)).rejects.toMatchObject({ code: 'REVISION_CONFLICT' });
    await backend.changeStatus(member, a.id, 'activate');
    await backend.changeStatus(admin, a.id, 'deactivate');
    await backend.changeStatus(admin, a.id, 'deactivate'); // already deactivated: no-op
    await expect(backend.changeStatus(admin, a.id, 'activate')).rejects.toMatchObject({ code: 'TRANSITION_FORBIDDEN' });
    await backend.changeStatus(admin, a.id, 'reactivate');
    await backend.delete(admin, a.id);

    expect(kinds()).toEqual([
      'created',
      'updated',
      'statusChanged:drafted->active',
      'statusChanged:active->deactivated',
      'statusChanged:deactivated->active',
      'deleted:active->deleted',
    ]);
    const log = await store.readEvents(0, 100);
    expect(log.map((e) => e.seq)).toEqual(seen.map((m) => (m.topic === 'artifact' ? m.event.seq : -1)));
    expect(log.map((e) => e.revision)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(log.map((e) => e.seq)).size).toBe(log.length);
  });

  it('writes nothing, and emits nothing, when a create fails', async () => {
    await backend.create(member, { typeName: 'notes', name: 'dup', version: '1.0' });
    const before = await store.readEvents(0, 100);
    await expect(backend.create(member, { typeName: 'notes', name: 'dup', version: '1.0.0' })).rejects.toMatchObject({ code: 'DUPLICATE_VERSION' });
    await expect(backend.create(member, { typeName: 'notes', name: 'bad', fields: { body: 1 } })).rejects.toMatchObject({ code: 'FIELD_INVALID' });
    expect(await store.readEvents(0, 100)).toEqual(before);
    expect(seen).toHaveLength(1);
    const page = await backend.list(member, { typeName: 'notes' });
    expect(await page.totalCount()).toBe(1);
  });

  it('keeps a committed write successful when the bus cannot publish, and logs it', async () => {
    const failing = { publish: async () => { throw new Error('broker down'); }, subscribe: () => ({ unsubscribe() {} }), close: async () => {} };
    const logged: string[] = [];
    const types = new TypeRegistry([{ name: 'notes', fields: { body: { kind: 'string', mutable: true } } }]);
    const offline = new NativeBackend({ name: 'native', types, store, bus: failing, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts', log: (m) => logged.push(m) });
    const a = await offline.create(member, { typeName: 'notes', name: 'durable' });
    expect((await offline.update(member, a.id, { addTags: ['x'] })).revision).toBe(2);
    expect((await store.readEvents(0, 100)).map((e) => e.kind)).toEqual(['created', 'updated']);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatch(/committed but not published/);
  });
});

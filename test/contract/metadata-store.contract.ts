import { TASK_SORT_KEYS, type ArtifactRecord, type BlobCopy, type BlobLocation, type BlobRecord, type FieldValue, type LinkRecord, type MemberRecord, type Scalar, type TaskRecord } from '../../src/domain/artifact';
import { VitrineError, type ErrorCode } from '../../src/domain/errors';
import type { MetadefKind, MetadefRecord } from '../../src/domain/metadefs';
import { encodeVersion } from '../../src/domain/semver';
import type { ArtifactWrite, Condition, Keyset, MetadataStore, NewEvent, SortKey, SortTarget, StoredEvent, Target, TaskQuery, UploadRecord } from '../../src/storage/metadata/port';

/**
 * The behaviour every MetadataStore adapter must show. Each test gets a fresh, empty store
 * from `makeStore` (the suite calls `migrate()` itself) and closes it afterwards. `openPeer`
 * opens another instance on the same database (its own connections, as another process
 * would have); tests that race several instances close their peers themselves.
 */

export function metadataStoreContract(
  name: string,
  makeStore: () => Promise<MetadataStore>,
  cleanup: ((store: MetadataStore) => Promise<void> | void) | undefined,
  openPeer: (store: MetadataStore) => Promise<MetadataStore>,
): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let store: MetadataStore;

    beforeEach(async () => {
      store = await makeStore();
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
      await cleanup?.(store);
    });

    describe('schema', () => {
      it('migrates idempotently and answers pings', async () => {
        await store.migrate();
        await store.migrate();
        await expect(store.ping()).resolves.toBeUndefined();
        expect(await store.countArtifacts({ op: 'true' })).toBe(0);
      });
    });

    describe('metadefs', () => {
      const md = (namespace: string, kind: MetadefKind, name: string, n: number, extra: Partial<MetadefRecord> = {}): MetadefRecord => ({
        namespace, kind, name, owner: kind === 'namespace' ? 'p1' : null, visibility: kind === 'namespace' ? 'private' : null,
        protected: false, body: { n, 'ü': ['x', 1, true, null] }, createdAt: at(n), updatedAt: at(n), ...extra,
      });

      it('round-trips rows, ordered by namespace, creation and insertion, filtered by namespaces and names', async () => {
        await store.insertMetadefs([
          md('ns2', 'namespace', 'ns2', 1, { visibility: 'public', protected: true, body: { display_name: 'Two', nested: { a: [1, 2.5] } } }),
          md('ns1', 'namespace', 'ns1', 2),
          md('ns1', 'property', 'b', 3), md('ns1', 'property', 'a', 3), md('ns2', 'property', 'a', 0),
        ]);
        const namespaces = await store.listMetadefs({ kind: 'namespace' });
        expect(namespaces.map((r) => r.name)).toEqual(['ns1', 'ns2']);
        expect(namespaces[1]).toEqual({
          namespace: 'ns2', kind: 'namespace', name: 'ns2', owner: 'p1', visibility: 'public', protected: true,
          body: { display_name: 'Two', nested: { a: [1, 2.5] } }, createdAt: at(1), updatedAt: at(1),
        });
        expect((await store.listMetadefs({ kind: 'property' })).map((r) => `${r.namespace}/${r.name}`)).toEqual(['ns1/b', 'ns1/a', 'ns2/a']);
        // An update keeps a row's place among rows of the same creation time.
        await store.updateMetadef({ namespace: 'ns1', kind: 'property', name: 'b' }, md('ns1', 'property', 'c', 3, { updatedAt: at(9) }));
        expect((await store.listMetadefs({ kind: 'property', namespaces: ['ns1'] })).map((r) => r.name)).toEqual(['c', 'a']);
        expect((await store.listMetadefs({ kind: 'property', namespaces: ['ns2'] })).map((r) => r.name)).toEqual(['a']);
        expect((await store.listMetadefs({ kind: 'property', names: ['a'] })).map((r) => r.namespace)).toEqual(['ns1', 'ns2']);
        expect((await store.listMetadefs({ kind: 'property', names: ['c', 'a'], namespaces: ['ns1'] })).map((r) => r.name)).toEqual(['c', 'a']);
        expect(await store.listMetadefs({ kind: 'property', namespaces: [] })).toEqual([]);
        expect(await store.listMetadefs({ kind: 'tag' })).toEqual([]);
      });

      it('refuses a taken key with METADEF_EXISTS and writes nothing of that batch', async () => {
        await store.insertMetadefs([md('ns', 'namespace', 'ns', 1), md('ns', 'tag', 't1', 2)]);
        await expectCode(store.insertMetadefs([md('ns', 'tag', 't2', 3), md('ns', 'tag', 't1', 4)]), 'METADEF_EXISTS');
        await expectCode(store.insertMetadefs([md('ns', 'namespace', 'ns', 5)]), 'METADEF_EXISTS');
        expect((await store.listMetadefs({ kind: 'tag' })).map((r) => r.name)).toEqual(['t1']);
        // The same name under another kind or namespace is another key.
        await store.insertMetadefs([md('ns', 'object', 't1', 6), md('other', 'tag', 't1', 7)]);
      });

      it('ensures rows only where their key is free, and replaces a kind as a whole', async () => {
        await store.insertMetadefs([md('', 'resource_type', 'OS::Glance::Image', 1, { protected: true })]);
        await store.insertMetadefs([md('ns', 'namespace', 'ns', 2), md('ns', 'association', 'OS::Glance::Image', 3)], {
          ensure: [md('', 'resource_type', 'OS::Glance::Image', 9), md('', 'resource_type', 'OS::New', 9)],
        });
        const types = await store.listMetadefs({ kind: 'resource_type' });
        expect(types.map((r) => [r.name, r.protected, r.createdAt])).toEqual([['OS::Glance::Image', true, at(1)], ['OS::New', false, at(9)]]);
        await store.insertMetadefs([md('ns', 'tag', 'a', 3), md('ns', 'tag', 'b', 4), md('other', 'tag', 'a', 4)]);
        await store.insertMetadefs([md('ns', 'tag', 'b', 5), md('ns', 'tag', 'c', 6)], { replace: { namespace: 'ns', kind: 'tag' } });
        expect((await store.listMetadefs({ kind: 'tag' })).map((r) => `${r.namespace}/${r.name}@${r.createdAt}`)).toEqual([`ns/b@${at(5)}`, `ns/c@${at(6)}`, `other/a@${at(4)}`]);
        // A failed replacement keeps the old set.
        await expectCode(store.insertMetadefs([md('ns', 'tag', 'd', 7), md('ns', 'tag', 'd', 8)], { replace: { namespace: 'ns', kind: 'tag' } }), 'METADEF_EXISTS');
        expect((await store.listMetadefs({ kind: 'tag', namespaces: ['ns'] })).map((r) => r.name)).toEqual(['b', 'c']);
      });

      it('updates and renames rows; a renamed namespace takes its rows along', async () => {
        await store.insertMetadefs([md('ns', 'namespace', 'ns', 1), md('ns', 'object', 'o', 2), md('ns', 'object', 'p', 2), md('taken', 'namespace', 'taken', 3)]);
        await store.updateMetadef({ namespace: 'ns', kind: 'object', name: 'o' }, md('ns', 'object', 'o2', 2, { body: { description: 'd' }, updatedAt: at(5) }));
        await expectCode(store.updateMetadef({ namespace: 'ns', kind: 'object', name: 'o2' }, md('ns', 'object', 'p', 2)), 'METADEF_EXISTS');
        await expectCode(store.updateMetadef({ namespace: 'ns', kind: 'object', name: 'nope' }, md('ns', 'object', 'x', 2)), 'METADEF_NOT_FOUND');
        await expectCode(store.updateMetadef({ namespace: 'ns', kind: 'namespace', name: 'ns' }, md('taken', 'namespace', 'taken', 1)), 'METADEF_EXISTS');
        await store.updateMetadef({ namespace: 'ns', kind: 'namespace', name: 'ns' }, md('moved', 'namespace', 'moved', 1, { visibility: 'public', updatedAt: at(6) }));
        expect((await store.listMetadefs({ kind: 'namespace' })).map((r) => [r.name, r.visibility])).toEqual([['moved', 'public'], ['taken', 'private']]);
        const objects = await store.listMetadefs({ kind: 'object' });
        expect(objects.map((r) => `${r.namespace}/${r.name}`)).toEqual(['moved/o2', 'moved/p']);
        expect(objects[0].body).toEqual({ description: 'd' });
        expect(objects[0].updatedAt).toBe(at(5));
      });

      it('deletes one row, a kind, or a namespace with everything in it', async () => {
        await store.insertMetadefs([
          md('ns', 'namespace', 'ns', 1), md('ns', 'object', 'o', 2), md('ns', 'property', 'p', 2), md('ns', 'tag', 'a', 2), md('ns', 'tag', 'b', 2),
          md('ns', 'association', 'OS::X', 2), md('other', 'namespace', 'other', 3), md('other', 'tag', 'a', 3), md('', 'resource_type', 'OS::X', 1),
        ]);
        expect(await store.deleteMetadefs('ns', 'tag', 'a')).toBe(1);
        expect(await store.deleteMetadefs('ns', 'tag', 'a')).toBe(0);
        expect(await store.deleteMetadefs('ns', 'tag')).toBe(1);
        expect(await store.deleteMetadefs('nope', 'namespace', 'nope')).toBe(0);
        expect(await store.deleteMetadefs('ns', 'namespace', 'ns')).toBe(1);
        for (const kind of ['object', 'property', 'association'] as const) expect(await store.listMetadefs({ kind })).toEqual([]);
        expect((await store.listMetadefs({ kind: 'namespace' })).map((r) => r.name)).toEqual(['other']);
        expect((await store.listMetadefs({ kind: 'tag' })).map((r) => r.namespace)).toEqual(['other']);
        expect((await store.listMetadefs({ kind: 'resource_type' })).map((r) => r.name)).toEqual(['OS::X']);
      });

      it('applies a seed once, across instances, without overwriting rows that exist', async () => {
        await store.insertMetadefs([md('', 'resource_type', 'OS::A', 1, { protected: false })]);
        const seed = [md('', 'resource_type', 'OS::A', 5, { protected: true }), md('', 'resource_type', 'OS::B', 5), md('s', 'namespace', 's', 5)];
        const peer = await openPeer(store);
        try {
          const results = await Promise.all([store.seedMetadefs('default-v1', seed), peer.seedMetadefs('default-v1', seed)]);
          expect(results.filter(Boolean)).toHaveLength(1);
        } finally {
          await peer.close();
        }
        expect((await store.listMetadefs({ kind: 'resource_type' })).map((r) => [r.name, r.protected])).toEqual([['OS::A', false], ['OS::B', false]]);
        await store.deleteMetadefs('s', 'namespace', 's');
        expect(await store.seedMetadefs('default-v1', seed)).toBe(false);
        expect(await store.listMetadefs({ kind: 'namespace' })).toEqual([]);
        expect(await store.seedMetadefs('default-v2', seed)).toBe(true);
      });
    });

    describe('round trip', () => {
      it('returns every field of an inserted record exactly', async () => {
        const record = artifact(1, {
          name: 'ünïcødé name ✓',
          version: '1.2.3-rc.1+build.7',
          status: 'active',
          visibility: 'shared',
          tags: ['zeta', 'alpha', '日本', ''],
          properties: { 'owner_specified.openstack.md5': 'd41d8cd98f00b204e9800998ecf8427e', empty: '', emoji: '🚀', 'with space': 'x y' },
          fields: {
            size: 1234567890123,
            ratio: 0.125,
            negative: -7,
            flag: false,
            label: '',
            nothing: null,
            list: ['a', 'b', 'ü'],
            numbers: [1, 2.5, -3],
            dict: { 'key.with.dots': 'v', other: true, n: 0 },
            quoted: 'she said "hi" \\ \'there\'',
          },
          activatedAt: at(30),
          revision: 4,
        });
        const event = eventFor('created', record);
        const stored = await store.insertArtifact(record, event, { unique: true });

        expect(await store.getArtifacts([record.id])).toEqual([record]);
        expect(stored).toEqual({ ...event, seq: expect.any(Number) });
        const [listed] = await store.listArtifacts({ where: { op: 'true' }, sort: [], limit: 10 });
        expect(listed).toEqual(record);
      });

      it('keeps order and length in getArtifacts, with nulls for missing ids and repeated ids', async () => {
        const a = artifact(1);
        const b = artifact(2);
        await insert(a);
        await insert(b);
        expect(await store.getArtifacts([b.id, uuid(99), a.id, b.id])).toEqual([b, null, a, b]);
        expect(await store.getArtifacts([])).toEqual([]);
      });
    });

    describe('insertArtifact', () => {
      it('appends the created event with a monotonic seq', async () => {
        const first = await insert(artifact(1));
        const second = await insert(artifact(2));
        expect(second.seq).toBeGreaterThan(first.seq);
        expect(await store.readEvents(0, 10)).toEqual([first, second]);
      });

      it('refuses a duplicate id with DUPLICATE_ID and writes nothing', async () => {
        const original = artifact(1, { tags: ['keep'] });
        await insert(original);
        const before = await snapshot([original.id]);
        await expectCode(insert(artifact(1, { name: 'other', tags: ['new'], properties: { p: 'v' } })), 'DUPLICATE_ID');
        expect(await snapshot([original.id])).toEqual(before);
      });

      it('refuses a taken (type, owner, name, version) with DUPLICATE_VERSION when unique, writing nothing', async () => {
        await insert(artifact(1, { name: 'same', version: '1.0.0' }), { unique: true });
        const before = await snapshot([uuid(2)]);
        await expectCode(insert(artifact(2, { name: 'same', version: '1.0.0', tags: ['t'] }), { unique: true }), 'DUPLICATE_VERSION');
        expect(await snapshot([uuid(2)])).toEqual(before);
      });

      it('allows the same version for another owner, another type, other build metadata, or without unique', async () => {
        const same = { name: 'same' };
        await insert(artifact(1, { ...same, version: '1.0.0' }), { unique: true });
        await insert(artifact(2, { ...same, version: '1.0.0', owner: 'other-project' }), { unique: true });
        await insert(artifact(3, { ...same, version: '1.0.0', typeName: 'gadgets' }), { unique: true });
        await insert(artifact(4, { ...same, version: '1.0.0+build.2' }), { unique: true });
        await insert(artifact(5, { ...same, version: '1.0.0-rc.1' }), { unique: true });
        await insert(artifact(6, { ...same, version: '1.0.0' }), { unique: false });
        await insert(artifact(7, { version: '1.0.0', name: 'another-name' }), { unique: true });
        expect(await store.countArtifacts({ op: 'true' })).toBe(7);
      });

      it('does not let rows written without unique block a unique write', async () => {
        await insert(artifact(1, { name: 'same', version: '1.0.0' }), { unique: false });
        await insert(artifact(2, { name: 'same', version: '1.0.0' }), { unique: true });
        await expectCode(insert(artifact(3, { name: 'same', version: '1.0.0' }), { unique: true }), 'DUPLICATE_VERSION');
      });

      it('enforces maxTotal and maxOfType on the owner\'s live artifacts with QUOTA_EXCEEDED, writing nothing', async () => {
        await insert(artifact(1, { typeName: 'widgets' }));
        await insert(artifact(2, { typeName: 'widgets' }));
        await insert(artifact(3, { typeName: 'gadgets' }));
        await insert(artifact(4, { typeName: 'widgets', status: 'deleted' }));
        await insert(artifact(5, { typeName: 'widgets', owner: 'other-project' }));
        const before = await snapshot([uuid(10)]);

        await expectCode(insert(artifact(10, { typeName: 'widgets' }), { limit: { maxTotal: 3 } }), 'QUOTA_EXCEEDED');
        await expectCode(insert(artifact(10, { typeName: 'widgets' }), { limit: { maxOfType: 2 } }), 'QUOTA_EXCEEDED');
        await expectCode(insert(artifact(10, { typeName: 'widgets' }), { limit: { maxTotal: 10, maxOfType: 2 } }), 'QUOTA_EXCEEDED');
        await expectCode(insert(artifact(10, { typeName: 'gadgets' }), { limit: { maxTotal: 0 } }), 'QUOTA_EXCEEDED');
        expect(await snapshot([uuid(10)])).toEqual(before);

        await insert(artifact(10, { typeName: 'widgets' }), { limit: { maxTotal: 4, maxOfType: 3 } });
        await insert(artifact(11, { typeName: 'gadgets' }), { limit: { maxOfType: 2 } });
        await insert(artifact(12, { typeName: 'widgets', owner: 'fresh-project' }), { limit: { maxTotal: 1, maxOfType: 1 } });
        expect(await store.countArtifacts({ op: 'true' })).toBe(8);
      });
    });

    describe('atomicity', () => {
      it('writes nothing, row or revision, when the event cannot be stored', async () => {
        const record = artifact(1, { tags: ['t'], properties: { p: 'v' }, visibility: 'shared' });
        const unstorable = { ...record } as ArtifactRecord & { self?: unknown };
        unstorable.self = unstorable; // a cycle: no JSON encoding exists
        const empty = await snapshot([record.id]);
        await expect(store.insertArtifact(record, eventFor('created', record, { snapshot: unstorable }), { unique: true })).rejects.toBeInstanceOf(Error);
        expect(await snapshot([record.id])).toEqual(empty);

        await insert(record);
        const before = await snapshot([record.id]);
        const next = { ...record, name: 'renamed', tags: [], revision: 2 };
        await expect(store.replaceArtifact(next, 1, eventFor('updated', next, { snapshot: unstorable }), { unique: false })).rejects.toBeInstanceOf(Error);
        await expect(store.insertMember(member(record.id, 'p2', 1), eventFor('updated', record, { revision: 2, snapshot: unstorable }))).rejects.toBeInstanceOf(Error);
        await expect(store.deleteArtifact(record.id, 1, eventFor('deleted', record, { snapshot: unstorable }))).rejects.toBeInstanceOf(Error);
        expect(await snapshot([record.id])).toEqual(before);
      });
    });

    describe('replaceArtifact', () => {
      it('replaces the whole record, tags and properties included, and appends the event', async () => {
        const original = artifact(1, { tags: ['a', 'b'], properties: { x: '1', y: '2' }, fields: { size: 1 } });
        await insert(original);
        const next: ArtifactRecord = {
          ...original,
          name: 'renamed',
          version: '2.0.0',
          status: 'active',
          visibility: 'public',
          owner: original.owner,
          tags: ['c', 'a'],
          properties: { y: 'changed', z: '3' },
          fields: { size: 2, list: ['q'] },
          updatedAt: at(50),
          activatedAt: at(50),
          revision: 2,
        };
        const event = eventFor('statusChanged', next, { from: 'drafted', to: 'active' });
        const stored = await store.replaceArtifact(next, 1, event, { unique: true });

        expect(stored).toEqual({ ...event, seq: expect.any(Number) });
        expect(await store.getArtifacts([original.id])).toEqual([next]);
        expect(await names({ op: 'tagsAny', tags: ['b'] })).toEqual([]);
        expect(await names({ op: 'hasProperty', name: 'x' })).toEqual([]);
        expect((await store.readEvents(0, 10)).map((e) => e.kind)).toEqual(['created', 'statusChanged']);
      });

      it('fails with REVISION_CONFLICT when the revision is stale, changing nothing', async () => {
        const original = artifact(1, { tags: ['a'] });
        await insert(original);
        await store.replaceArtifact({ ...original, name: 'v2', revision: 2 }, 1, eventFor('updated', { ...original, revision: 2 }), { unique: false });
        const before = await snapshot([original.id]);
        const stale = { ...original, name: 'stale', tags: ['z'], revision: 2 };
        await expectCode(store.replaceArtifact(stale, 1, eventFor('updated', stale), { unique: false }), 'REVISION_CONFLICT');
        expect(await snapshot([original.id])).toEqual(before);
      });

      it('fails with NOT_FOUND when the row is gone', async () => {
        const ghost = artifact(1, { revision: 2 });
        await expectCode(store.replaceArtifact(ghost, 1, eventFor('updated', ghost), { unique: false }), 'NOT_FOUND');
        expect(await store.readEvents(0, 10)).toEqual([]);
      });

      it('fails with DUPLICATE_VERSION when the new version is taken, changing nothing', async () => {
        await insert(artifact(1, { name: 'same', version: '1.0.0' }), { unique: true });
        const second = artifact(2, { name: 'same', version: '2.0.0', tags: ['keep'] });
        await insert(second, { unique: true });
        const before = await snapshot([second.id]);
        const next = { ...second, version: '1.0.0', tags: ['lost'], revision: 2 };
        await expectCode(store.replaceArtifact(next, 1, eventFor('updated', next), { unique: true }), 'DUPLICATE_VERSION');
        expect(await snapshot([second.id])).toEqual(before);

        await store.replaceArtifact({ ...next, version: '1.0.0+other' }, 1, eventFor('updated', next), { unique: true });
        await store.replaceArtifact({ ...next, revision: 3 }, 2, eventFor('updated', next), { unique: false });
        expect(await store.countArtifacts({ op: 'eq', target: { kind: 'version' }, value: '1.0.0' })).toBe(2);
      });

      it('refuses a next.revision other than expectedRevision + 1, changing nothing', async () => {
        const original = artifact(1);
        await insert(original);
        const before = await snapshot([original.id]);
        const next = { ...original, name: 'skipped', revision: 3 };
        await expect(store.replaceArtifact(next, 1, eventFor('updated', next), { unique: false })).rejects.toBeInstanceOf(Error);
        expect(await snapshot([original.id])).toEqual(before);
      });
    });

    describe('deleteArtifact', () => {
      it('removes the row with its tags, properties, members and outgoing links, leaves incoming links dangling, and appends the event', async () => {
        const doomed = artifact(1, { tags: ['t'], properties: { p: 'v' }, visibility: 'shared' });
        const other = artifact(2);
        await insert(doomed);
        await insert(other);
        await store.insertMember(member(doomed.id, 'p2', 1), eventFor('updated', doomed, { revision: 2 }));
        await store.insertLink(link(doomed.id, 'base', other.id, 1), false, eventFor('updated', doomed, { revision: 3 }));
        await store.insertLink(link(other.id, 'uses', doomed.id, 1), false, eventFor('updated', other, { revision: 2 }));

        const event = eventFor('deleted', doomed, { revision: 3 });
        const result = await store.deleteArtifact(doomed.id, 3, event);

        expect(result).toEqual({ event: { ...event, seq: expect.any(Number) }, blobs: [] });
        expect(await store.getArtifacts([doomed.id])).toEqual([null]);
        expect(await names({ op: 'tagsAny', tags: ['t'] })).toEqual([]);
        expect(await names({ op: 'hasProperty', name: 'p' })).toEqual([]);
        expect(await store.getMembers([doomed.id])).toEqual([[]]);
        expect(await store.getLinks([doomed.id, other.id])).toEqual([[], [link(other.id, 'uses', doomed.id, 1)]]);
        expect((await store.readEvents(0, 100)).at(-1)).toEqual(result.event);
      });

      it('fails with REVISION_CONFLICT or NOT_FOUND, changing nothing', async () => {
        const kept = artifact(1, { tags: ['t'] });
        await insert(kept);
        const before = await snapshot([kept.id]);
        await expectCode(store.deleteArtifact(kept.id, 7, eventFor('deleted', kept)), 'REVISION_CONFLICT');
        await expectCode(store.deleteArtifact(uuid(2), 1, eventFor('deleted', artifact(2))), 'NOT_FOUND');
        expect(await snapshot([kept.id])).toEqual(before);
      });

      it('frees the unique version for reuse', async () => {
        const first = artifact(1, { name: 'same', version: '1.0.0' });
        await insert(first, { unique: true });
        await expectCode(insert(artifact(2, { name: 'same', version: '1.0.0' }), { unique: true }), 'DUPLICATE_VERSION');
        await store.deleteArtifact(first.id, 1, eventFor('deleted', first));
        await insert(artifact(2, { name: 'same', version: '1.0.0' }), { unique: true });
        expect(await store.countArtifacts({ op: 'true' })).toBe(1);
      });
    });

    describe('members', () => {
      it('inserts, updates and deletes members, bumping the artifact revision through the event', async () => {
        const shared = artifact(1, { visibility: 'shared' });
        await insert(shared);
        const inserted = await store.insertMember(member(shared.id, 'p3', 5), eventFor('updated', shared, { revision: 2, at: at(5) }));
        await store.insertMember(member(shared.id, 'p2', 5), eventFor('updated', shared, { revision: 3, at: at(6) }));
        await store.insertMember(member(shared.id, 'p1', 9), eventFor('updated', shared, { revision: 4, at: at(7) }));
        expect(inserted.revision).toBe(2);

        expect(await store.getMembers([shared.id])).toEqual([[member(shared.id, 'p2', 5), member(shared.id, 'p3', 5), member(shared.id, 'p1', 9)]]);
        const [afterInserts] = await store.getArtifacts([shared.id]);
        expect(afterInserts).toMatchObject({ revision: 4, updatedAt: at(7) });

        const accepted: MemberRecord = { ...member(shared.id, 'p2', 5), status: 'accepted', updatedAt: at(20) };
        await store.updateMember(accepted, eventFor('updated', shared, { revision: 5, at: at(20) }));
        await store.deleteMember(shared.id, 'p3', eventFor('updated', shared, { revision: 6, at: at(21) }));

        expect(await store.getMembers([shared.id])).toEqual([[accepted, member(shared.id, 'p1', 9)]]);
        const [final] = await store.getArtifacts([shared.id]);
        expect(final).toMatchObject({ revision: 6, updatedAt: at(21), name: shared.name });
        expect((await store.readEvents(0, 100)).map((e) => e.revision)).toEqual([1, 2, 3, 4, 5, 6]);
      });

      it('reports MEMBER_EXISTS and MEMBER_NOT_FOUND, changing nothing', async () => {
        const shared = artifact(1, { visibility: 'shared' });
        await insert(shared);
        await store.insertMember(member(shared.id, 'p2', 1), eventFor('updated', shared, { revision: 2 }));
        const before = await snapshot([shared.id]);

        await expectCode(store.insertMember(member(shared.id, 'p2', 3), eventFor('updated', shared, { revision: 3 })), 'MEMBER_EXISTS');
        await expectCode(store.updateMember({ ...member(shared.id, 'p9', 3), status: 'accepted' }, eventFor('updated', shared, { revision: 3 })), 'MEMBER_NOT_FOUND');
        await expectCode(store.deleteMember(shared.id, 'p9', eventFor('updated', shared, { revision: 3 })), 'MEMBER_NOT_FOUND');
        expect(await snapshot([shared.id])).toEqual(before);
      });

      it('checks the revision (REVISION_CONFLICT) and the artifact (NOT_FOUND), changing nothing', async () => {
        const shared = artifact(1, { visibility: 'shared' });
        await insert(shared);
        const before = await snapshot([shared.id]);
        await expectCode(store.insertMember(member(shared.id, 'p2', 1), eventFor('updated', shared, { revision: 5 })), 'REVISION_CONFLICT');
        await expectCode(store.insertMember(member(shared.id, 'p2', 1), eventFor('updated', shared, { revision: 1 })), 'REVISION_CONFLICT');
        await expectCode(store.insertMember(member(uuid(2), 'p2', 1), eventFor('updated', artifact(2), { revision: 2 })), 'NOT_FOUND');
        expect(await snapshot([shared.id])).toEqual(before);
      });

      it('returns one list per id, in order, with repeats and empty lists', async () => {
        const a = artifact(1, { visibility: 'shared' });
        const b = artifact(2, { visibility: 'shared' });
        await insert(a);
        await insert(b);
        await store.insertMember(member(b.id, 'p2', 1), eventFor('updated', b, { revision: 2 }));
        expect(await store.getMembers([b.id, a.id, uuid(9), b.id])).toEqual([[member(b.id, 'p2', 1)], [], [], [member(b.id, 'p2', 1)]]);
        expect(await store.getMembers([])).toEqual([]);
      });
    });

    describe('links', () => {
      it('adds links sorted by name then createdAt, replaces and deletes them, bumping the revision', async () => {
        const source = artifact(1);
        const targets = [artifact(2), artifact(3), artifact(4)];
        await insert(source);
        for (const t of targets) await insert(t);

        await store.insertLink(link(source.id, 'uses', targets[0].id, 5), false, eventFor('updated', source, { revision: 2 }));
        await store.insertLink(link(source.id, 'uses', targets[1].id, 3), false, eventFor('updated', source, { revision: 3 }));
        await store.insertLink(link(source.id, 'base', targets[2].id, 9), false, eventFor('updated', source, { revision: 4, at: at(40) }));
        expect(await store.getLinks([source.id])).toEqual([[
          link(source.id, 'base', targets[2].id, 9),
          link(source.id, 'uses', targets[1].id, 3),
          link(source.id, 'uses', targets[0].id, 5),
        ]]);
        expect((await store.getArtifacts([source.id]))[0]).toMatchObject({ revision: 4, updatedAt: at(40) });

        await store.insertLink(link(source.id, 'base', targets[0].id, 10), true, eventFor('updated', source, { revision: 5 }));
        expect(await store.getLinks([source.id])).toEqual([[
          link(source.id, 'base', targets[0].id, 10),
          link(source.id, 'uses', targets[1].id, 3),
          link(source.id, 'uses', targets[0].id, 5),
        ]]);

        const one = await store.deleteLinks(source.id, 'uses', targets[1].id, eventFor('updated', source, { revision: 6 }));
        expect(one.removed).toBe(1);
        const none = await store.deleteLinks(source.id, 'missing', undefined, eventFor('updated', source, { revision: 7 }));
        expect(none.removed).toBe(0);
        const all = await store.deleteLinks(source.id, 'base', undefined, eventFor('updated', source, { revision: 8 }));
        expect(all).toEqual({ event: expect.objectContaining({ revision: 8, seq: expect.any(Number) }), removed: 1 });
        expect(await store.getLinks([source.id, targets[0].id])).toEqual([[link(source.id, 'uses', targets[0].id, 5)], []]);
        expect((await store.getArtifacts([source.id]))[0]?.revision).toBe(8);
      });

      it('refuses stale revisions, missing sources and missing targets, changing nothing', async () => {
        const source = artifact(1);
        const target = artifact(2);
        await insert(source);
        await insert(target);
        const before = await snapshot([source.id, target.id]);
        await expectCode(store.insertLink(link(source.id, 'uses', target.id, 1), false, eventFor('updated', source, { revision: 3 })), 'REVISION_CONFLICT');
        await expectCode(store.insertLink(link(uuid(8), 'uses', target.id, 1), false, eventFor('updated', artifact(8), { revision: 2 })), 'NOT_FOUND');
        await expectCode(store.insertLink(link(source.id, 'uses', uuid(9), 1), false, eventFor('updated', source, { revision: 2 })), 'LINK_INVALID');
        await expectCode(store.deleteLinks(source.id, 'uses', undefined, eventFor('updated', source, { revision: 4 })), 'REVISION_CONFLICT');
        expect(await snapshot([source.id, target.id])).toEqual(before);
      });

      it('links to a target held by another backend when told so (the caller checked it)', async () => {
        const source = artifact(1);
        await insert(source);
        const elsewhere = uuid(9);
        await store.insertLink(link(source.id, 'uses', elsewhere, 1), false, eventFor('updated', source, { revision: 2 }), { foreignTarget: true });
        expect(await store.getLinks([source.id])).toEqual([[link(source.id, 'uses', elsewhere, 1)]]);
        expect((await store.getArtifacts([source.id]))[0]?.revision).toBe(2);
      });
    });

    describe('blobs', () => {
      it('lists blobs per id sorted by field then key, returns them on delete, and counts stored bytes in usage', async () => {
        const a = artifact(1, { owner: 'p1', typeName: 'widgets' });
        const b = artifact(2, { owner: 'p1', typeName: 'gadgets' });
        await insert(a);
        await insert(b);
        const blobsOfA = [blob(a.id, 'files', 'b.txt', 5), blob(a.id, 'files', 'a.txt', 7), blob(a.id, 'blob', '', 100), { ...blob(a.id, 'remote', '', 1000), external: true, url: 'https://example.com/x', store: null, location: null }];
        const lastA = await putBlobs(a, blobsOfA);
        await putBlobs(b, [blob(b.id, 'blob', '', 3)]);

        const sortedA = [blobsOfA[2], blobsOfA[1], blobsOfA[0], blobsOfA[3]];
        expect(await store.getBlobs([a.id, uuid(9), b.id])).toEqual([sortedA, [], [blob(b.id, 'blob', '', 3)]]);
        expect(await store.usage('p1')).toEqual({ projectId: 'p1', counts: { widgets: 1, gadgets: 1 }, bytes: { widgets: 112, gadgets: 3 } });
        expect(await store.referencedLocations('file', [blobsOfA[0].location!, 'nowhere', blob(b.id, 'blob', '', 3).location!])).toEqual(new Set([blobsOfA[0].location, blob(b.id, 'blob', '', 3).location]));

        const deleted = await store.deleteArtifact(a.id, lastA.revision, eventFor('deleted', lastA));
        expect(deleted.blobs).toEqual(sortedA);
        expect(await store.getBlobs([a.id])).toEqual([[]]);
        expect(await store.usage('p1')).toEqual({ projectId: 'p1', counts: { gadgets: 1 }, bytes: { gadgets: 3 } });
      });

      it('replaces a blob with putBlob, returning the previous one, and deletes it with deleteBlob', async () => {
        const a = artifact(1);
        await insert(a);
        const first = blob(a.id, 'blob', '', 10);
        const second = { ...blob(a.id, 'blob', '', 20), location: 'elsewhere', updatedAt: at(9) };
        const r2 = bumped(a, 2);
        expect((await store.putBlob(first, write(r2, 1))).replaced).toBeNull();
        const r3 = bumped(a, 3);
        const put = await store.putBlob(second, write(r3, 2));
        expect(put.replaced).toEqual(first);
        expect(await store.getBlobs([a.id])).toEqual([[{ ...second, createdAt: first.createdAt }]]);
        await expectCode(store.deleteBlob(a.id, 'other', '', write(bumped(a, 4), 3)), 'NOT_FOUND');
        const removed = await store.deleteBlob(a.id, 'blob', '', write(bumped(a, 4), 3));
        expect(removed.removed).toEqual({ ...second, createdAt: first.createdAt });
        expect(await store.getBlobs([a.id])).toEqual([[]]);
        expect((await store.getArtifacts([a.id]))[0]!.revision).toBe(4);
      });
    });

    describe('uploads', () => {
      it('shows a running upload as a saving blob, counts its reservation, and completes it atomically', async () => {
        const a = artifact(1, { owner: 'p1', typeName: 'images', status: 'queued' });
        await insert(a);
        await putBlobs(a, [blob(a.id, 'image', '', 40)]);
        const saving = { ...bumped(a, 3), status: 'saving' as const };
        const began = await store.beginUpload(upload(a, 'u1', 100), {}, write(saving, 2, 'statusChanged'));
        expect(began).toMatchObject({ kind: 'statusChanged', revision: 3, seq: expect.any(Number) });
        const [[shown]] = await store.getBlobs([a.id]);
        expect(shown).toMatchObject({ field: 'image', key: '', status: 'saving', size: null, contentType: 'application/octet-stream' });
        expect((await store.usage('p1')).bytes).toEqual({ images: 140 });

        const active = { ...bumped(a, 4), status: 'active' as const };
        const fresh = { ...blob(a.id, 'image', '', 64), location: 'new-place' };
        const done = await store.completeUpload('u1', fresh, write(active, 3, 'statusChanged'));
        expect(done.replaced).toEqual(blob(a.id, 'image', '', 40));
        expect(done.event).toMatchObject({ kind: 'statusChanged', revision: 4 });
        expect(await store.getBlobs([a.id])).toEqual([[{ ...fresh, createdAt: blob(a.id, 'image', '', 40).createdAt }]]);
        expect((await store.usage('p1')).bytes).toEqual({ images: 64 });
        expect(await store.listUploads()).toEqual([]);
        await expectCode(store.completeUpload('u1', fresh, write(bumped(a, 5), 4)), 'GONE');
      });

      it('refuses a second upload of the same blob with BLOB_BUSY, but not of another key', async () => {
        const a = artifact(1);
        await insert(a);
        await store.beginUpload(upload(a, 'u1', 1, 'files', 'x'), {});
        await expectCode(store.beginUpload(upload(a, 'u2', 1, 'files', 'x'), {}), 'BLOB_BUSY');
        await store.beginUpload(upload(a, 'u3', 1, 'files', 'y'), {});
        await expectCode(store.putBlob(blob(a.id, 'files', 'x', 1), write(bumped(a, 2), 1)), 'BLOB_BUSY');
        expect((await store.listUploads()).map((u) => u.id)).toEqual(['u1', 'u3']);
      });

      it('enforces byte quotas over stored bytes and reservations, writing nothing when refused', async () => {
        const a = artifact(1, { owner: 'p1', typeName: 'images', status: 'queued' });
        const b = artifact(2, { owner: 'p1', typeName: 'charts' });
        await insert(a);
        await insert(b);
        await putBlobs(b, [blob(b.id, 'blob', '', 60)]);
        await store.beginUpload(upload(b, 'running', 30, 'other'), {});
        const before = await snapshot([a.id, b.id]);
        const eventsBefore = await store.readEvents(0, 100);
        const saving = { ...bumped(a, 2), status: 'saving' as const };
        await expectCode(store.beginUpload(upload(a, 'u1', 11), { maxTotal: 100 }, write(saving, 1, 'statusChanged')), 'QUOTA_EXCEEDED');
        await expectCode(store.beginUpload(upload(a, 'u1', 1), { maxOfType: 0 }, write(saving, 1, 'statusChanged')), 'QUOTA_EXCEEDED');
        expect(await snapshot([a.id, b.id])).toEqual(before);
        expect(await store.readEvents(0, 100)).toEqual(eventsBefore);
        expect((await store.listUploads()).map((u) => u.id)).toEqual(['running']);
        await store.beginUpload(upload(a, 'u1', 10), { maxTotal: 100, maxOfType: 10 }, write(saving, 1, 'statusChanged'));
        expect((await store.getArtifacts([a.id]))[0]!.status).toBe('saving');
      });

      it('aborts with an optional artifact write, renews leases and lists expired uploads', async () => {
        const a = artifact(1, { status: 'saving' });
        await insert(a);
        await store.beginUpload({ ...upload(a, 'old', 5), expiresAt: at(10) }, {});
        await store.beginUpload({ ...upload(a, 'new', 5, 'other'), expiresAt: at(50) }, {});
        expect((await store.listUploads(at(20))).map((u) => u.id)).toEqual(['old']);
        expect(await store.renewUpload('old', at(100))).toBe(true);
        expect(await store.listUploads(at(20))).toEqual([]);
        expect(await store.renewUpload('missing', at(100))).toBe(false);
        const queued = { ...bumped(a, 2), status: 'queued' as const };
        expect(await store.abortUpload('old', write(queued, 1, 'statusChanged'))).toMatchObject({ kind: 'statusChanged', revision: 2 });
        expect(await store.abortUpload('old')).toBeNull();
        expect((await store.getArtifacts([a.id]))[0]!.status).toBe('queued');
        expect((await store.listUploads()).map((u) => u.id)).toEqual(['new']);
      });

      it('drops the uploads of a deleted artifact, so completing one reports GONE', async () => {
        const a = artifact(1);
        await insert(a);
        await store.beginUpload(upload(a, 'u1', 5), {});
        await store.deleteArtifact(a.id, 1, eventFor('deleted', a));
        expect(await store.listUploads()).toEqual([]);
        await expectCode(store.completeUpload('u1', blob(a.id, 'image', '', 5), write(bumped(a, 2), 1)), 'GONE');
        await expectCode(store.beginUpload(upload(a, 'u2', 5), {}), 'NOT_FOUND');
      });
    });

    describe('blob copies', () => {
      const copies: BlobCopy[] = [{ store: 's3', location: 'images/1' }, { store: 'swift', location: 'container/1' }];

      it('round-trips copies through putBlob, completeUpload, getBlobs, deleteBlob and deleteArtifact', async () => {
        const a = artifact(1, { typeName: 'images', status: 'queued' });
        await insert(a);
        const first = { ...blob(a.id, 'image', '', 10), copies };
        expect((await store.putBlob(first, write(bumped(a, 2), 1))).replaced).toBeNull();
        expect(await store.getBlobs([a.id])).toEqual([[first]]);

        // An upsert replaces the copies with the new blob's, fewer or none.
        const second = { ...blob(a.id, 'image', '', 20), location: 'second', copies: [copies[1]] };
        expect((await store.putBlob(second, write(bumped(a, 3), 2))).replaced).toEqual(first);
        expect(await store.getBlobs([a.id])).toEqual([[second]]);

        await store.beginUpload(upload(a, 'u1', 30), {});
        const uploaded = { ...blob(a.id, 'image', '', 30), location: 'uploaded', copies: [copies[1], copies[0]] };
        const done = await store.completeUpload('u1', uploaded, write(bumped(a, 4), 3));
        expect(done.replaced).toEqual(second);
        expect(await store.getBlobs([a.id])).toEqual([[uploaded]]);

        const removed = await store.deleteBlob(a.id, 'image', '', write(bumped(a, 5), 4));
        expect(removed.removed).toEqual(uploaded);

        const files = [{ ...blob(a.id, 'files', 'x', 1), copies: [copies[0]] }, { ...blob(a.id, 'files', 'y', 2), copies: [] }];
        const last = await putBlobs(a, files);
        const deleted = await store.deleteArtifact(a.id, last.revision, eventFor('deleted', last));
        expect(deleted.blobs).toEqual(files);
      });

      it('counts a location as referenced when a blob holds it as its primary location or as a copy in that store', async () => {
        const a = artifact(1);
        const b = artifact(2);
        await insert(a);
        await insert(b);
        const multi = { ...blob(a.id, 'image', '', 1), store: 'file', location: 'p1', copies: [{ store: 's3', location: 'c1' }, { store: 'file', location: 'c2' }] };
        const single = { ...blob(b.id, 'image', '', 1), store: 's3', location: 'p2', copies: [] };
        const lastA = await putBlobs(a, [multi]);
        await putBlobs(b, [single]);

        expect(await store.referencedLocations('file', ['p1', 'c1', 'c2', 'p2', 'nowhere'])).toEqual(new Set(['p1', 'c2']));
        expect(await store.referencedLocations('s3', ['p1', 'c1', 'c2', 'p2', 'nowhere'])).toEqual(new Set(['c1', 'p2']));
        expect(await store.referencedLocations('swift', ['p1', 'c1', 'c2', 'p2'])).toEqual(new Set());
        expect(await store.referencedLocations('s3', [])).toEqual(new Set());

        // A sweeper batch: thousands of candidates, a few of them referenced.
        const batch = Array.from({ length: 3000 }, (_, i) => `orphan-${i}`);
        batch.splice(1234, 0, 'c1');
        batch.push('p2');
        expect(await store.referencedLocations('s3', batch)).toEqual(new Set(['c1', 'p2']));

        // Dropping the copy frees its location.
        await store.putBlob({ ...multi, copies: [] }, write(bumped(lastA, lastA.revision + 1), lastA.revision));
        expect(await store.referencedLocations('s3', ['c1', 'p2'])).toEqual(new Set(['p2']));
        expect(await store.referencedLocations('file', ['p1', 'c2'])).toEqual(new Set(['p1']));
      });
    });

    describe('blob locations', () => {
      const locations: BlobLocation[] = [
        { url: 'file:///var/lib/vitrine/blobs/ab/1', metadata: { store: 'fs', nested: { n: 1, list: [1, 'two', null] } } },
        { url: 'https://mirror.example/image.raw#new', metadata: {} },
      ];

      it('round-trips locations in order through putBlob, getBlobs, deleteBlob and deleteArtifact; a blob without any reads back without the key', async () => {
        const a = artifact(1, { typeName: 'images', status: 'queued' });
        await insert(a);
        const external = { ...blob(a.id, 'image', '', 10), external: true, url: locations[1].url, store: null, location: null, locations: [locations[1]] };
        await store.putBlob(external, write(bumped(a, 2), 1));
        expect(await store.getBlobs([a.id])).toEqual([[external]]);

        // An upsert replaces the list (reordered, metadata changed) with the new blob's.
        const both = { ...blob(a.id, 'image', '', 10), locations: [locations[1], locations[0]] };
        expect((await store.putBlob(both, write(bumped(a, 3), 2))).replaced).toEqual(external);
        const [[read]] = await store.getBlobs([a.id]);
        expect(read.locations).toEqual([locations[1], locations[0]]);

        // A completed upload writes a blob without locations: the list goes.
        await store.beginUpload(upload(a, 'u1', 5), {});
        const uploaded = blob(a.id, 'image', '', 5);
        expect((await store.completeUpload('u1', uploaded, write(bumped(a, 4), 3))).replaced).toEqual(both);
        const [[plain]] = await store.getBlobs([a.id]);
        expect(plain).toEqual(uploaded);
        expect(plain).not.toHaveProperty('locations');

        const last = await putBlobs(bumped(a, 4), [{ ...uploaded, locations }]);
        const deleted = await store.deleteArtifact(a.id, last.revision, eventFor('deleted', last));
        expect(deleted.blobs).toEqual([{ ...uploaded, locations }]);
      });

      it('keeps the bytes of a blob that also has external locations referenced', async () => {
        const a = artifact(1, { typeName: 'images' });
        await insert(a);
        await putBlobs(a, [{ ...blob(a.id, 'image', '', 1), store: 'file', location: 'kept', locations }]);
        expect(await store.referencedLocations('file', ['kept', 'orphan'])).toEqual(new Set(['kept']));
      });
    });

    describe('tasks', () => {
      it('inserts tasks with and without an artifact write, and reads them back exactly in the order asked', async () => {
        const image = artifact(1, { typeName: 'images', status: 'queued' });
        await insert(image);
        const plain = task(1, { userId: null, requestId: null, input: { nested: { list: [1, 'two', null, true], empty: {} }, 'ünï': '✓' } });
        expect(await store.insertTask(plain)).toBeNull();

        const locking = task(2);
        const locked = { ...bumped(image, 2), properties: { os_glance_import_task: locking.id } };
        const event = await store.insertTask(locking, write(locked, 1));
        expect(event).toEqual({ ...eventFor('updated', locked), seq: expect.any(Number) });
        expect((await store.readEvents(0, 100)).at(-1)).toEqual(event);
        expect(await store.getArtifacts([image.id])).toEqual([locked]);

        expect(await store.getTasks([locking.id, taskId(99), plain.id, locking.id])).toEqual([locking, null, plain, locking]);
        expect(await store.getTasks([])).toEqual([]);
      });

      it('writes no task when its artifact write fails with REVISION_CONFLICT or NOT_FOUND', async () => {
        const image = artifact(1, { typeName: 'images', status: 'queued' });
        await insert(image);
        const before = await snapshot([image.id]);
        await expectCode(store.insertTask(task(1), write(bumped(image, 3), 2)), 'REVISION_CONFLICT');
        await expectCode(store.insertTask(task(2, { imageId: uuid(9) }), write(bumped(artifact(9), 2), 1)), 'NOT_FOUND');
        expect(await store.getTasks([taskId(1), taskId(2)])).toEqual([null, null]);
        expect(await snapshot([image.id])).toEqual(before);
      });

      it('replaces a task with and without an artifact write; a missing task is NOT_FOUND and a failed write changes nothing', async () => {
        const image = artifact(1, { typeName: 'images', status: 'importing' });
        await insert(image);
        const running = task(1, { status: 'processing', leaseExpiresAt: at(60), attempts: 1 });
        await store.insertTask(running);

        const progressed = { ...running, message: 'Copied 10 MiB', updatedAt: at(20) };
        expect(await store.updateTask(progressed)).toBeNull();
        expect(await store.getTasks([running.id])).toEqual([progressed]);

        const before = await snapshot([image.id]);
        const ghost = task(2);
        await expectCode(store.updateTask(ghost), 'NOT_FOUND');
        await expectCode(store.updateTask(ghost, write(bumped(image, 2), 1)), 'NOT_FOUND');
        expect(await store.getTasks([ghost.id])).toEqual([null]);
        const finished: TaskRecord = {
          ...progressed, status: 'success', result: { image_id: image.id }, message: '', updatedAt: at(30), expiresAt: at(30 + 48 * 3600), leaseExpiresAt: null,
        };
        await expectCode(store.updateTask(finished, write(bumped(image, 3), 2)), 'REVISION_CONFLICT');
        expect(await store.getTasks([running.id])).toEqual([progressed]);
        expect(await snapshot([image.id])).toEqual(before);

        const active = { ...bumped(image, 2), status: 'active' as const };
        const event = await store.updateTask(finished, write(active, 1, 'statusChanged'));
        expect(event).toMatchObject({ kind: 'statusChanged', revision: 2, seq: expect.any(Number) });
        expect(await store.getTasks([running.id])).toEqual([finished]);
        expect(await store.getArtifacts([image.id])).toEqual([active]);
      });

      it('lists an image\'s tasks newest first, ties broken by id, and no one else\'s', async () => {
        const older = task(1, { createdAt: at(5) });
        const tieLow = task(2, { createdAt: at(7) });
        const tieHigh = task(3, { createdAt: at(7) });
        const other = task(4, { imageId: uuid(2), createdAt: at(9) });
        for (const t of [tieLow, other, older, tieHigh]) await store.insertTask(t);
        expect(await store.listTasks(uuid(1))).toEqual([tieHigh, tieLow, older]);
        expect(await store.listTasks(uuid(2))).toEqual([other]);
        expect(await store.listTasks(uuid(3))).toEqual([]);
      });

      describe('queryTasks', () => {
        // Times: a missing expiresAt or userId sorts lowest; 'B' < 'a' in byte order, as both engines compare.
        const fixtures = (): TaskRecord[] => [
          task(1, { createdAt: at(5), updatedAt: at(50), status: 'success', expiresAt: at(500), userId: 'a', owner: 'p1' }),
          task(2, { createdAt: at(7), updatedAt: at(20), status: 'failure', expiresAt: at(300), userId: 'B', owner: 'p2', imageId: uuid(2) }),
          task(3, { createdAt: at(7), updatedAt: at(70), status: 'pending', userId: null, requestId: null, owner: 'p1' }),
          task(4, { createdAt: at(2), updatedAt: at(30), status: 'success', expiresAt: at(300), userId: 'a', owner: 'p2', imageId: uuid(2) }),
          task(5, { createdAt: at(9), updatedAt: at(10), status: 'processing', userId: 'c', owner: 'p1', leaseExpiresAt: at(60), attempts: 1 }),
        ];
        const query = (over: Partial<TaskQuery> = {}): TaskQuery => ({ where: {}, sortKey: 'createdAt', direction: 'desc', limit: 100, ...over });
        const ids = (tasks: TaskRecord[]) => tasks.map((t) => Number(t.id.slice(-4)));

        it('orders by the key, then createdAt, then id, all in one direction, missing values lowest', async () => {
          for (const t of fixtures()) await store.insertTask(t);
          expect(await store.queryTasks(query())).toEqual([taskId(5), taskId(3), taskId(2), taskId(1), taskId(4)].map((id) => fixtures().find((t) => t.id === id)));
          expect(ids(await store.queryTasks(query({ direction: 'asc' })))).toEqual([4, 1, 2, 3, 5]);
          // Glance's quirk: `id` is already a tie-breaker, so sorting by it sorts by createdAt first.
          expect(ids(await store.queryTasks(query({ sortKey: 'id', direction: 'asc' })))).toEqual([4, 1, 2, 3, 5]);
          expect(ids(await store.queryTasks(query({ sortKey: 'updatedAt', direction: 'asc' })))).toEqual([5, 2, 4, 1, 3]);
          expect(ids(await store.queryTasks(query({ sortKey: 'status', direction: 'asc' })))).toEqual([2, 3, 5, 4, 1]);
          expect(ids(await store.queryTasks(query({ sortKey: 'expiresAt', direction: 'asc' })))).toEqual([3, 5, 4, 2, 1]);
          expect(ids(await store.queryTasks(query({ sortKey: 'expiresAt', direction: 'desc' })))).toEqual([1, 2, 4, 5, 3]);
          expect(ids(await store.queryTasks(query({ sortKey: 'userId', direction: 'asc' })))).toEqual([3, 2, 4, 1, 5]);
          expect(ids(await store.queryTasks(query({ sortKey: 'requestId', direction: 'desc' })))).toEqual([5, 4, 2, 1, 3]);
          expect(ids(await store.queryTasks(query({ sortKey: 'owner', direction: 'desc', limit: 2 })))).toEqual([2, 4]);
          expect(await store.queryTasks(query({ limit: 0 }))).toEqual([]);
        });

        it('filters by equality on each column, combined with AND', async () => {
          for (const t of fixtures()) await store.insertTask(t);
          expect(ids(await store.queryTasks(query({ where: { status: 'success' } })))).toEqual([1, 4]);
          expect(ids(await store.queryTasks(query({ where: { status: 'success', owner: 'p2' } })))).toEqual([4]);
          expect(ids(await store.queryTasks(query({ where: { imageId: uuid(2) } })))).toEqual([2, 4]);
          expect(ids(await store.queryTasks(query({ where: { userId: 'a', requestId: 'req-1' } })))).toEqual([1]);
          expect(ids(await store.queryTasks(query({ where: { id: taskId(3), type: 'api_image_import' } })))).toEqual([3]);
          expect(await store.queryTasks(query({ where: { type: 'import' } }))).toEqual([]);
          expect(await store.queryTasks(query({ where: { status: '' } }))).toEqual([]);
          expect(ids(await store.queryTasks(query({ where: { owner: undefined } })))).toEqual([5, 3, 2, 1, 4]);
        });

        it('pages after a marker task through every order without losing or repeating a task', async () => {
          for (const t of fixtures()) await store.insertTask(t);
          for (const sortKey of TASK_SORT_KEYS) {
            for (const direction of ['asc', 'desc'] as const) {
              const all = await store.queryTasks(query({ sortKey, direction }));
              const walked: TaskRecord[] = [];
              for (let page = await store.queryTasks(query({ sortKey, direction, limit: 2 })); page.length > 0;) {
                walked.push(...page);
                page = await store.queryTasks(query({ sortKey, direction, limit: 2, after: page.at(-1) }));
              }
              expect({ sortKey, direction, ids: ids(walked) }).toEqual({ sortKey, direction, ids: ids(all) });
            }
          }
          const marker = fixtures()[1];
          expect(ids(await store.queryTasks(query({ after: marker, where: { owner: 'p1' } })))).toEqual([1]);
        });
      });

      it('claims the oldest pending task, or a processing one whose lease expired, and skips leased and finished ones', async () => {
        const later = task(1, { createdAt: at(3) });
        const oldest = task(2, { createdAt: at(1) });
        const leased = task(3, { createdAt: at(0), status: 'processing', leaseExpiresAt: at(50), attempts: 1 });
        const done = task(4, { createdAt: at(0), status: 'success', expiresAt: at(500) });
        const failed = task(5, { createdAt: at(0), status: 'failure', expiresAt: at(500) });
        for (const t of [later, done, leased, oldest, failed]) await store.insertTask(t);

        const first = await store.claimTask(at(10), at(40));
        expect(first).toEqual({ ...oldest, status: 'processing', leaseExpiresAt: at(40), attempts: 1, updatedAt: at(10) });
        expect(await store.getTasks([oldest.id])).toEqual([first]);
        expect(await store.claimTask(at(10), at(40))).toMatchObject({ id: later.id, attempts: 1 });
        expect(await store.claimTask(at(10), at(40))).toBeNull();
        expect(await store.claimTask(at(40), at(80))).toBeNull(); // a lease ending exactly now still holds

        // Both leases of 40 have passed; the older task comes back first, the lease of 50 still holds.
        expect(await store.claimTask(at(45), at(90))).toMatchObject({ id: oldest.id, status: 'processing', leaseExpiresAt: at(90), attempts: 2 });
        expect(await store.claimTask(at(45), at(90))).toMatchObject({ id: later.id, attempts: 2 });
        expect(await store.claimTask(at(45), at(90))).toBeNull();
        expect(await store.claimTask(at(60), at(100))).toMatchObject({ id: leased.id, leaseExpiresAt: at(100), attempts: 2 });
        expect(await store.getTasks([done.id, failed.id])).toEqual([done, failed]);
      });

      it('renews the lease of a processing task only', async () => {
        await store.insertTask(task(1));
        await store.insertTask(task(2, { createdAt: at(9) }));
        const claimed = (await store.claimTask(at(10), at(40)))!;
        expect(await store.renewTask(claimed.id, at(80))).toBe(true);
        expect(await store.getTasks([claimed.id])).toEqual([{ ...claimed, leaseExpiresAt: at(80) }]);
        expect(await store.claimTask(at(60), at(100))).toMatchObject({ id: taskId(2) }); // not the renewed one

        await store.updateTask({ ...claimed, leaseExpiresAt: at(80), status: 'failure', message: 'boom', expiresAt: at(1000) });
        expect(await store.renewTask(claimed.id, at(200))).toBe(false);
        expect(await store.renewTask(taskId(99), at(200))).toBe(false);
        await store.insertTask(task(3));
        expect(await store.renewTask(taskId(3), at(200))).toBe(false); // pending: nothing to renew
        expect((await store.getTasks([claimed.id, taskId(3)])).map((t) => t?.leaseExpiresAt)).toEqual([at(80), null]);
      });

      it('prunes finished tasks whose expiry has passed, and no others', async () => {
        const tasks = [
          task(1, { status: 'success', expiresAt: at(10) }),
          task(2, { status: 'failure', expiresAt: at(20) }),
          task(3, { status: 'success', expiresAt: at(100) }),
          task(4, { status: 'failure', expiresAt: at(50) }),
          task(5),
          task(6, { status: 'processing', leaseExpiresAt: at(5), expiresAt: at(5) }),
          task(7, { expiresAt: at(5) }),
        ];
        for (const t of tasks) await store.insertTask(t);
        expect(await store.pruneTasks(at(50))).toBe(2);
        expect(await store.pruneTasks(at(50))).toBe(0);
        expect((await store.getTasks(tasks.map((t) => t.id))).map((t) => t?.id ?? null)).toEqual([null, null, taskId(3), taskId(4), taskId(5), taskId(6), taskId(7)]);
      });

      it('keeps an image\'s tasks after the image is deleted', async () => {
        const image = artifact(1, { typeName: 'images', status: 'queued' });
        await insert(image);
        const t = task(1);
        const locked = { ...bumped(image, 2), properties: { os_glance_import_task: t.id } };
        await store.insertTask(t, write(locked, 1));
        await store.deleteArtifact(image.id, 2, eventFor('deleted', locked));
        expect(await store.listTasks(image.id)).toEqual([t]);
        expect(await store.getTasks([t.id])).toEqual([t]);
      });

      it('hands each task to exactly one of several instances claiming at once', async () => {
        const tasks = Array.from({ length: 20 }, (_, i) => task(i + 1, { createdAt: at(i % 3) }));
        for (const t of tasks) await store.insertTask(t);
        const peers = await Promise.all(Array.from({ length: 4 }, () => openPeer(store)));
        try {
          const claimed = await Promise.all(peers.map(async (peer) => {
            const mine: TaskRecord[] = [];
            for (let claim = await peer.claimTask(at(100), at(200)); claim; claim = await peer.claimTask(at(100), at(200))) mine.push(claim);
            return mine;
          }));
          const all = claimed.flat();
          expect(all.map((t) => t.id).sort()).toEqual(tasks.map((t) => t.id).sort());
          expect(all.every((t) => t.attempts === 1 && t.status === 'processing')).toBe(true);
          expect(await store.claimTask(at(100), at(200))).toBeNull();
        } finally {
          await Promise.all(peers.map((p) => p.close()));
        }
      });
    });

    describe('events', () => {
      it('reads events after a seq, oldest first, with a limit, keeping every field', async () => {
        const a = artifact(1);
        const stored: StoredEvent[] = [];
        stored.push(await insert(a));
        for (let r = 2; r <= 5; r++) {
          const next = { ...a, revision: r, status: r === 5 ? ('active' as const) : a.status };
          const event = eventFor(r === 5 ? 'statusChanged' : 'updated', next, r === 5 ? { from: 'drafted', to: 'active' } : {});
          stored.push(await store.replaceArtifact(next, r - 1, event, { unique: false }));
        }
        expect(await store.readEvents(0, 100)).toEqual(stored);
        expect(await store.readEvents(stored[1].seq, 2)).toEqual(stored.slice(2, 4));
        expect(await store.readEvents(stored[4].seq, 10)).toEqual([]);
        expect(await store.readEvents(0, 0)).toEqual([]);
        expect(stored.map((e) => e.seq)).toEqual([...stored.map((e) => e.seq)].sort((x, y) => x - y));
      });

      it('appends events of artifacts kept elsewhere, in order, after the ones already logged', async () => {
        const before = await insert(artifact(1));
        // Artifacts of another backend: no rows here, only their events.
        const foreign = artifact(50, { typeName: 'images', status: 'queued' });
        const active = { ...foreign, status: 'active' as const, revision: 2 };
        // Each names the backend that holds its artifact, and reads back with it.
        const events = [eventFor('created', foreign), eventFor('statusChanged', active, { from: 'queued', to: 'active' }), eventFor('deleted', active, { from: 'active', to: 'deleted' })].map((e) => ({ ...e, backend: 'legacy' }));
        const stored = await store.appendEvents(events);

        expect(stored).toEqual(events.map((e) => ({ ...e, seq: expect.any(Number) })));
        expect(stored[0].seq).toBeGreaterThan(before.seq);
        expect(stored.map((e) => e.seq)).toEqual([stored[0].seq, stored[0].seq + 1, stored[0].seq + 2]);
        expect(await store.readEvents(before.seq, 10)).toEqual(stored);
        expect(await store.getArtifacts([foreign.id])).toEqual([null]);
        expect(await store.appendEvents([])).toEqual([]);
        expect(await store.readEvents(0, 10)).toHaveLength(4);
      });

      it('appends all of a batch or none of it', async () => {
        const first = await insert(artifact(1));
        const good = eventFor('updated', artifact(2));
        // A snapshot that cannot be encoded fails the second append, after the first one ran.
        const bad = eventFor('updated', artifact(3, { fields: { big: 1n as unknown as FieldValue } }));
        await expect(store.appendEvents([good, bad])).rejects.toThrow();
        expect(await store.readEvents(0, 10)).toEqual([first]);
        const next = await store.appendEvents([good]);
        expect(next[0].seq).toBeGreaterThan(first.seq);
      });

      it('prunes to the newest events, and seq keeps growing afterwards', async () => {
        const stored: StoredEvent[] = [];
        for (let i = 1; i <= 5; i++) stored.push(await insert(artifact(i)));
        await store.pruneEvents(2);
        expect(await store.readEvents(0, 100)).toEqual(stored.slice(3));
        await store.pruneEvents(10);
        expect(await store.readEvents(0, 100)).toEqual(stored.slice(3));
        await store.pruneEvents(0);
        expect(await store.readEvents(0, 100)).toEqual([]);
        const after = await insert(artifact(6));
        expect(after.seq).toBeGreaterThan(stored[4].seq);
      });
    });

    describe('quotas and usage', () => {
      it('stores per-project overrides, replacing them all on set', async () => {
        expect(await store.getQuotas('p1')).toEqual({});
        await store.setQuotas('p1', { 'max_artifact_number:images': 10, max_uploaded_data: 1_000_000_000_000 });
        await store.setQuotas('p2', { 'max_artifact_number:images': 3 });
        expect(await store.getQuotas('p1')).toEqual({ 'max_artifact_number:images': 10, max_uploaded_data: 1_000_000_000_000 });
        await store.setQuotas('p1', { 'max_artifact_number:widgets': 0 });
        expect(await store.getQuotas('p1')).toEqual({ 'max_artifact_number:widgets': 0 });
        await store.setQuotas('p1', {});
        expect(await store.getQuotas('p1')).toEqual({});
        expect(await store.getQuotas('p2')).toEqual({ 'max_artifact_number:images': 3 });
      });

      it('counts a project\'s artifacts per type, leaving out deleted ones and other owners', async () => {
        await insert(artifact(1, { owner: 'p1', typeName: 'widgets' }));
        await insert(artifact(2, { owner: 'p1', typeName: 'widgets', status: 'active' }));
        await insert(artifact(3, { owner: 'p1', typeName: 'gadgets' }));
        await insert(artifact(4, { owner: 'p1', typeName: 'gadgets', status: 'deleted' }));
        await insert(artifact(5, { owner: 'p2', typeName: 'widgets' }));
        expect(await store.usage('p1')).toEqual({ projectId: 'p1', counts: { widgets: 2, gadgets: 1 }, bytes: { widgets: 0, gadgets: 0 } });
        expect(await store.usage('nobody')).toEqual({ projectId: 'nobody', counts: {}, bytes: {} });
      });
    });

    describe('conditions', () => {
      beforeEach(async () => {
        await seedFixture(store);
      });

      it.each(CONDITION_CASES)('%s', async (_title, where, expected) => {
        expect(await names(where)).toEqual([...expected].sort());
        expect(await store.countArtifacts(where)).toBe(expected.length);
        // Every predicate is two-valued: `not` is its exact complement, NULLs included.
        expect(await store.countArtifacts({ op: 'not', condition: where })).toBe(FIXTURE.length - expected.length);
      });
    });

    describe('sorting and keyset pagination', () => {
      beforeEach(async () => {
        await seedFixture(store);
      });

      it.each(SORT_CASES)('%s', async (_title, sort) => {
        const stored = (await store.getArtifacts(FIXTURE.map((f) => f.record.id))) as ArtifactRecord[];
        const expected = [...stored].sort(comparator(sort)).map((r) => keyOf(r.id));

        const listed = await store.listArtifacts({ where: { op: 'true' }, sort, limit: 100 });
        expect(listed.map((r) => keyOf(r.id))).toEqual(expected);

        expect(await pageThrough(sort, { op: 'true' }, 3)).toEqual(expected);
        // With NULLs lowest both ways, flipping every direction reverses the order exactly (backward paging relies on it).
        const flipped = sort.length ? [...expected].reverse() : expected;
        const reversed = await store.listArtifacts({ where: { op: 'true' }, sort: reverse(sort), limit: 100 });
        expect(reversed.map((r) => keyOf(r.id))).toEqual(flipped);
        expect(await pageThrough(reverse(sort), { op: 'true' }, 3)).toEqual(flipped);
        expect(await pageThrough(sort, { op: 'true' }, 1)).toEqual(expected);

        const widgets: Condition = { op: 'eq', target: { kind: 'column', name: 'typeName' }, value: 'widgets' };
        const expectedWidgets = expected.filter((k) => FIXTURE.find((f) => f.key === k)?.record.typeName === 'widgets');
        expect(await pageThrough(sort, widgets, 2)).toEqual(expectedWidgets);
      });

      it('returns nothing for limit 0 and nothing after the last row', async () => {
        const sort: SortKey[] = [{ target: { kind: 'column', name: 'createdAt' }, direction: 'asc' }];
        expect(await store.listArtifacts({ where: { op: 'true' }, sort, limit: 0 })).toEqual([]);
        const all = await store.listArtifacts({ where: { op: 'true' }, sort, limit: 100 });
        expect(await store.listArtifacts({ where: { op: 'true' }, sort, after: keysetFor(all[all.length - 1], sort), limit: 100 })).toEqual([]);
      });
    });

    // ---- helpers bound to the current store ----------------------------------------------

    function insert(record: ArtifactRecord, options: { unique?: boolean; limit?: { maxTotal?: number; maxOfType?: number } } = {}): Promise<StoredEvent> {
      return store.insertArtifact(record, eventFor('created', record), { unique: options.unique ?? false, limit: options.limit });
    }

    async function names(where: Condition): Promise<string[]> {
      const rows = await store.listArtifacts({ where, sort: [], limit: 1000 });
      return rows.map((r) => keyOf(r.id)).sort();
    }

    /** Stores blobs one by one through the port; returns the artifact at its final revision. */
    async function putBlobs(record: ArtifactRecord, blobs: BlobRecord[]): Promise<ArtifactRecord> {
      let current = (await store.getArtifacts([record.id]))[0]!;
      for (const b of blobs) {
        const next = bumped(current, current.revision + 1);
        await store.putBlob(b, write(next, current.revision));
        current = next;
      }
      return current;
    }

    /** Everything a failed write must leave untouched. */
    async function snapshot(ids: string[]) {
      return {
        artifacts: await store.getArtifacts(ids),
        members: await store.getMembers(ids),
        links: await store.getLinks(ids),
        count: await store.countArtifacts({ op: 'true' }),
        events: await store.readEvents(0, 10_000),
      };
    }

    async function pageThrough(sort: SortKey[], where: Condition, size: number): Promise<string[]> {
      const keys: string[] = [];
      let after: Keyset | undefined;
      for (let guard = 0; guard < 100; guard++) {
        const page = await store.listArtifacts({ where, sort, after, limit: size });
        keys.push(...page.map((r) => keyOf(r.id)));
        if (page.length < size) return keys;
        after = keysetFor(page[page.length - 1], sort);
      }
      throw new Error('pagination did not end');
    }
  });
}

// ---- records ----------------------------------------------------------------------------

/** Deterministic lower-case UUIDs, so tests can name rows by number. */
export function uuid(n: number): string {
  return `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** A fixed timestamp `seconds` after 2024-01-01T00:00:00Z. */
export function at(seconds: number): string {
  return new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();
}

export function artifact(n: number, overrides: Partial<ArtifactRecord> = {}): ArtifactRecord {
  return {
    id: uuid(n),
    typeName: 'widgets',
    name: `artifact-${n}`,
    version: '1.0.0',
    status: 'drafted',
    visibility: 'private',
    owner: 'p1',
    tags: [],
    properties: {},
    fields: {},
    createdAt: at(n),
    updatedAt: at(n),
    activatedAt: null,
    revision: 1,
    ...overrides,
  };
}

export function eventFor(kind: NewEvent['kind'], record: ArtifactRecord, overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    kind,
    artifactId: record.id,
    typeName: record.typeName,
    owner: record.owner,
    visibility: record.visibility,
    revision: record.revision,
    at: record.updatedAt,
    snapshot: record,
    ...overrides,
  };
}

function member(artifactId: string, project: string, seconds: number): MemberRecord {
  return { artifactId, member: project, status: 'pending', createdAt: at(seconds), updatedAt: at(seconds) };
}

function link(sourceId: string, name: string, targetId: string, seconds: number): LinkRecord {
  return { sourceId, name, targetId, createdAt: at(seconds) };
}

function blob(artifactId: string, field: string, key: string, size: number): BlobRecord {
  return {
    artifactId, field, key, status: 'active', size,
    md5: 'm', sha256: 's', sha512: null, contentType: 'application/octet-stream',
    external: false, url: null, store: 'file', location: `${artifactId}/${field}/${key}`, copies: [],
    createdAt: at(1), updatedAt: at(2),
  };
}

export function taskId(n: number): string {
  return `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

/** A pending import of artifact 1 created at `n` seconds. */
export function task(n: number, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: taskId(n),
    type: 'api_image_import',
    status: 'pending',
    imageId: uuid(1),
    owner: 'p1',
    userId: 'user-1',
    requestId: `req-${n}`,
    input: { image_id: uuid(1), import_req: { method: { name: 'web-download', uri: 'https://example.com/x.img' } }, backend: ['fast', 'cheap'] },
    result: null,
    message: '',
    createdAt: at(n),
    updatedAt: at(n),
    expiresAt: null,
    leaseExpiresAt: null,
    attempts: 0,
    ...overrides,
  };
}

function bumped(record: ArtifactRecord, revision: number): ArtifactRecord {
  return { ...record, revision, updatedAt: at(100 + revision) };
}

function write(next: ArtifactRecord, expectedRevision: number, kind: NewEvent['kind'] = 'updated'): ArtifactWrite {
  return { next, expectedRevision, event: eventFor(kind, next) };
}

export function upload(a: ArtifactRecord, id: string, reserved: number, field = 'image', key = ''): UploadRecord {
  return { id, artifactId: a.id, field, key, owner: a.owner, typeName: a.typeName, reserved, contentType: 'application/octet-stream', startedAt: at(1), expiresAt: at(1000) };
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VitrineError);
  expect((error as VitrineError).code).toBe(code);
}

// ---- the condition and sort fixture ------------------------------------------------------

interface FixtureRow {
  key: string;
  record: ArtifactRecord;
}

const ACT = '2024-02-01T00:00:00.000Z';

/** Ten artifacts with ties, NULLs, missing fields, prereleases and build metadata on purpose. */
const FIXTURE: FixtureRow[] = [
  row('a1', 1, { typeName: 'widgets', owner: 'p1', name: 'alpha', version: '1.0.0', status: 'active', visibility: 'public', tags: ['red', 'blue'],
    properties: { os_distro: 'ubuntu', 'owner_specified.openstack.md5': 'abc' }, fields: { size: 10, label: 'Big', flag: true, colors: ['red', 'green'], nums: [1, 2] }, activatedAt: ACT, createdAt: at(1) }),
  row('a2', 2, { typeName: 'widgets', owner: 'p1', name: 'alpha', version: '1.0.0+b1', status: 'active', visibility: 'private', tags: ['red'],
    properties: { os_distro: 'fedora' }, fields: { size: 9, label: 'big', flag: false, colors: ['blue'] }, activatedAt: '2024-02-02T00:00:00.000Z', createdAt: at(2) }),
  row('a3', 3, { typeName: 'widgets', owner: 'p1', name: 'alpha', version: '2.0.0-rc.1', status: 'drafted', visibility: 'shared', tags: [],
    properties: {}, fields: { size: null, label: 'small_x', colors: [] }, activatedAt: null, createdAt: at(2) }),
  row('b1', 4, { typeName: 'widgets', owner: 'p1', name: 'beta', version: '0.9.0', status: 'deactivated', visibility: 'community', tags: ['blue'],
    properties: { os_distro: 'ubuntu', note: '' }, fields: { size: 100, flag: true, label: '100%' }, activatedAt: '2024-02-03T00:00:00.000Z', createdAt: at(3) }),
  row('b2', 5, { typeName: 'widgets', owner: 'p1', name: 'beta', version: '0.10.0', status: 'active', visibility: 'public', tags: ['green'],
    properties: { os_distro: 'Ubuntu' }, fields: { size: 2.5, label: 'b_2', nums: [10] }, activatedAt: ACT, createdAt: at(4) }),
  row('b3', 6, { typeName: 'widgets', owner: 'p2', name: 'beta', version: '5.0.0', status: 'active', visibility: 'private', tags: ['red', 'green'],
    properties: {}, fields: {}, activatedAt: null, createdAt: at(5) }),
  row('g1', 7, { typeName: 'gadgets', owner: 'p1', name: 'alpha', version: '3.0.0', status: 'active', visibility: 'public', tags: ['blue', 'green'],
    properties: { kernel_id: 'k1' }, fields: { size: 10, flag: false }, activatedAt: '2024-01-15T00:00:00.000Z', createdAt: at(6) }),
  row('g2', 8, { typeName: 'gadgets', owner: 'p2', name: 'zeta', version: '1.0.0-alpha', status: 'drafted', visibility: 'private', fields: { label: 'Zeta' }, createdAt: at(7) }),
  row('g3', 9, { typeName: 'gadgets', owner: 'p2', name: 'zeta', version: '1.0.0-alpha.1', status: 'drafted', visibility: 'private', fields: { size: -1 }, createdAt: at(7) }),
  row('g4', 10, { typeName: 'gadgets', owner: 'p2', name: 'zeta', version: '1.0.0-beta', status: 'deleted', visibility: 'private', fields: { flag: true, size: 0 }, createdAt: at(8) }),
];

function row(key: string, n: number, overrides: Partial<ArtifactRecord>): FixtureRow {
  const record = artifact(n, overrides);
  return { key, record: { ...record, updatedAt: record.createdAt } };
}

function keyOf(id: string): string {
  return FIXTURE.find((f) => f.record.id === id)?.key ?? id;
}

async function seedFixture(store: MetadataStore): Promise<void> {
  for (const { record } of FIXTURE) await store.insertArtifact(record, eventFor('created', record), { unique: true });
  const byKey = (k: string) => FIXTURE.find((f) => f.key === k)!.record;
  const a3 = byKey('a3');
  const b1 = byKey('b1');
  await store.insertMember({ ...member(a3.id, 'p2', 20), status: 'accepted' }, eventFor('updated', a3, { revision: 2, at: at(20) }));
  await store.insertMember(member(a3.id, 'p3', 21), eventFor('updated', a3, { revision: 3, at: at(21) }));
  await store.insertMember({ ...member(b1.id, 'p2', 22), status: 'rejected' }, eventFor('updated', b1, { revision: 2, at: at(22) }));
}

const col = (name: Extract<Target, { kind: 'column' }>['name']) => ({ kind: 'column', name }) as const;
const version = { kind: 'version' } as const;
const field = (name: string, valueType: 'string' | 'number' | 'boolean') => ({ kind: 'field', name, valueType }) as const;
const prop = (name: string) => ({ kind: 'property', name }) as const;
const ALL = FIXTURE.map((f) => f.key);

type ConditionCase = [string, Condition, string[]];

const CONDITION_CASES: ConditionCase[] = [
  // columns
  ['column eq', { op: 'eq', target: col('name'), value: 'alpha' }, ['a1', 'a2', 'a3', 'g1']],
  ['column neq', { op: 'neq', target: col('name'), value: 'alpha' }, ['b1', 'b2', 'b3', 'g2', 'g3', 'g4']],
  ['column gt', { op: 'gt', target: col('name'), value: 'beta' }, ['g2', 'g3', 'g4']],
  ['column gte', { op: 'gte', target: col('name'), value: 'beta' }, ['b1', 'b2', 'b3', 'g2', 'g3', 'g4']],
  ['column in', { op: 'in', target: col('owner'), values: ['p2', 'p9'] }, ['b3', 'g2', 'g3', 'g4']],
  ['column eq on typeName', { op: 'eq', target: col('typeName'), value: 'gadgets' }, ['g1', 'g2', 'g3', 'g4']],
  ['column eq on id', { op: 'eq', target: col('id'), value: uuid(1) }, ['a1']],
  ['timestamp lt', { op: 'lt', target: col('createdAt'), value: at(2) }, ['a1']],
  ['timestamp lte', { op: 'lte', target: col('createdAt'), value: at(2) }, ['a1', 'a2', 'a3']],
  ['nullable column gt skips NULLs', { op: 'gt', target: col('activatedAt'), value: '2024-01-31T00:00:00.000Z' }, ['a1', 'a2', 'b1', 'b2']],
  ['nullable column eq', { op: 'eq', target: col('activatedAt'), value: ACT }, ['a1', 'b2']],
  ['nullable column neq includes NULLs', { op: 'neq', target: col('activatedAt'), value: ACT }, ['a2', 'a3', 'b1', 'b3', 'g1', 'g2', 'g3', 'g4']],
  ['nullable column in skips NULLs', { op: 'in', target: col('activatedAt'), values: [ACT, '2024-01-15T00:00:00.000Z'] }, ['a1', 'b2', 'g1']],
  ['column isNull', { op: 'isNull', target: col('activatedAt') }, ['a3', 'b3', 'g2', 'g3', 'g4']],
  ['column isNull on a required column', { op: 'isNull', target: col('name') }, []],
  ['status in', { op: 'in', target: col('status'), values: ['active', 'deactivated'] }, ['a1', 'a2', 'b1', 'b2', 'b3', 'g1']],
  ['empty in matches nothing', { op: 'in', target: col('name'), values: [] }, []],
  ['column like is case-sensitive', { op: 'like', target: col('name'), pattern: 'AL%' }, []],
  ['column like', { op: 'like', target: col('name'), pattern: 'al%a' }, ['a1', 'a2', 'a3', 'g1']],
  // versions
  ['version eq is exact, build metadata included', { op: 'eq', target: version, value: '1.0.0' }, ['a1']],
  ['version eq with build metadata', { op: 'eq', target: version, value: '1.0.0+b1' }, ['a2']],
  ['version neq', { op: 'neq', target: version, value: '1.0.0' }, ['a2', 'a3', 'b1', 'b2', 'b3', 'g1', 'g2', 'g3', 'g4']],
  ['version gt ignores build metadata', { op: 'gt', target: version, value: '1.0.0' }, ['a3', 'b3', 'g1']],
  ['version gte', { op: 'gte', target: version, value: '1.0.0' }, ['a1', 'a2', 'a3', 'b3', 'g1']],
  ['version lt puts prereleases below their release', { op: 'lt', target: version, value: '1.0.0' }, ['b1', 'b2', 'g2', 'g3', 'g4']],
  ['version lte compares numerically', { op: 'lte', target: version, value: '0.10.0' }, ['b1', 'b2']],
  ['version gt a prerelease', { op: 'gt', target: version, value: '1.0.0-alpha' }, ['a1', 'a2', 'a3', 'b3', 'g1', 'g3', 'g4']],
  ['version range between prereleases', { op: 'and', conditions: [{ op: 'gte', target: version, value: '1.0.0-alpha.1' }, { op: 'lt', target: version, value: '1.0.0-beta' }] }, ['g3']],
  ['version range across releases', { op: 'and', conditions: [{ op: 'gt', target: version, value: '0.9.0' }, { op: 'lt', target: version, value: '1.0.0' }] }, ['b2', 'g2', 'g3', 'g4']],
  ['version in', { op: 'in', target: version, values: ['1.0.0+b1', '5.0.0'] }, ['a2', 'b3']],
  ['version like', { op: 'like', target: version, pattern: '1.0.0%' }, ['a1', 'a2', 'g2', 'g3', 'g4']],
  ['version isNull', { op: 'isNull', target: version }, []],
  // typed fields
  ['number field gt compares numerically', { op: 'gt', target: field('size', 'number'), value: 9 }, ['a1', 'b1', 'g1']],
  ['number field lte', { op: 'lte', target: field('size', 'number'), value: 2.5 }, ['b2', 'g3', 'g4']],
  ['number field eq', { op: 'eq', target: field('size', 'number'), value: 10 }, ['a1', 'g1']],
  ['number field neq includes missing and null', { op: 'neq', target: field('size', 'number'), value: 10 }, ['a2', 'a3', 'b1', 'b2', 'b3', 'g2', 'g3', 'g4']],
  ['number field in', { op: 'in', target: field('size', 'number'), values: [9, 100] }, ['a2', 'b1']],
  ['field isNull covers missing and JSON null', { op: 'isNull', target: field('size', 'number') }, ['a3', 'b3', 'g2']],
  ['string field eq is case-sensitive', { op: 'eq', target: field('label', 'string'), value: 'big' }, ['a2']],
  ['string field like is case-sensitive', { op: 'like', target: field('label', 'string'), pattern: 'B%' }, ['a1']],
  ['like _ matches one character', { op: 'like', target: field('label', 'string'), pattern: 'b_2' }, ['b2']],
  ['like escapes _ with a backslash', { op: 'like', target: field('label', 'string'), pattern: '%\\_%' }, ['a3', 'b2']],
  ['like escapes % with a backslash', { op: 'like', target: field('label', 'string'), pattern: '100\\%' }, ['b1']],
  ['like % matches any present value', { op: 'like', target: field('label', 'string'), pattern: '%' }, ['a1', 'a2', 'a3', 'b1', 'b2', 'g2']],
  ['like treats GLOB characters literally', { op: 'like', target: field('label', 'string'), pattern: 'B*' }, []],
  ['boolean field eq true', { op: 'eq', target: field('flag', 'boolean'), value: true }, ['a1', 'b1', 'g4']],
  ['boolean field eq false', { op: 'eq', target: field('flag', 'boolean'), value: false }, ['a2', 'g1']],
  ['boolean field neq true', { op: 'neq', target: field('flag', 'boolean'), value: true }, ['a2', 'a3', 'b2', 'b3', 'g1', 'g2', 'g3']],
  ['list field contains a string', { op: 'contains', target: field('colors', 'string'), value: 'red' }, ['a1']],
  ['list field contains another string', { op: 'contains', target: field('colors', 'string'), value: 'blue' }, ['a2']],
  ['list field contains a number', { op: 'contains', target: field('nums', 'number'), value: 10 }, ['b2']],
  ['list field contains, first element', { op: 'contains', target: field('nums', 'number'), value: 1 }, ['a1']],
  ['contains on a scalar field matches nothing', { op: 'contains', target: field('label', 'string'), value: 'Big' }, []],
  // properties
  ['property eq', { op: 'eq', target: prop('os_distro'), value: 'ubuntu' }, ['a1', 'b1']],
  ['property neq includes artifacts without it', { op: 'neq', target: prop('os_distro'), value: 'ubuntu' }, ['a2', 'a3', 'b2', 'b3', 'g1', 'g2', 'g3', 'g4']],
  ['property in', { op: 'in', target: prop('os_distro'), values: ['fedora', 'Ubuntu'] }, ['a2', 'b2']],
  ['property like is case-sensitive', { op: 'like', target: prop('os_distro'), pattern: 'u%' }, ['a1', 'b1']],
  ['property gt compares strings', { op: 'gt', target: prop('os_distro'), value: 'fedora' }, ['a1', 'b1']],
  ['property isNull', { op: 'isNull', target: prop('os_distro') }, ['a3', 'b3', 'g1', 'g2', 'g3', 'g4']],
  ['property with dots in its name', { op: 'eq', target: prop('owner_specified.openstack.md5'), value: 'abc' }, ['a1']],
  ['property with an empty value', { op: 'eq', target: prop('note'), value: '' }, ['b1']],
  ['property contains means it exists', { op: 'contains', target: prop('kernel_id'), value: 'ignored' }, ['g1']],
  ['hasProperty', { op: 'hasProperty', name: 'owner_specified.openstack.md5' }, ['a1']],
  ['hasProperty with an empty value', { op: 'hasProperty', name: 'note' }, ['b1']],
  // tags
  ['tagsAll', { op: 'tagsAll', tags: ['red', 'blue'] }, ['a1']],
  ['tagsAll with one tag', { op: 'tagsAll', tags: ['red'] }, ['a1', 'a2', 'b3']],
  ['tagsAll with a repeated tag', { op: 'tagsAll', tags: ['red', 'red'] }, ['a1', 'a2', 'b3']],
  ['tagsAny', { op: 'tagsAny', tags: ['green', 'blue'] }, ['a1', 'b1', 'b2', 'b3', 'g1']],
  ['empty tagsAll matches everything', { op: 'tagsAll', tags: [] }, ALL],
  ['empty tagsAny matches nothing', { op: 'tagsAny', tags: [] }, []],
  // members
  ['memberOf accepted', { op: 'memberOf', project: 'p2', statuses: ['accepted'] }, ['a3']],
  ['memberOf other statuses', { op: 'memberOf', project: 'p2', statuses: ['pending', 'rejected'] }, ['b1']],
  ['memberOf pending', { op: 'memberOf', project: 'p3', statuses: ['pending'] }, ['a3']],
  ['memberOf without statuses', { op: 'memberOf', project: 'p2', statuses: [] }, []],
  // latest
  ['latest of every (type, owner, name)', { op: 'latest', within: { op: 'true' } }, ['a3', 'b2', 'b3', 'g1', 'g4']],
  ['latest among matching rows, build-metadata ties all returned', { op: 'latest', within: { op: 'eq', target: col('status'), value: 'active' } }, ['a1', 'a2', 'b2', 'b3', 'g1']],
  ['latest among prereleases', { op: 'latest', within: { op: 'and', conditions: [{ op: 'eq', target: col('typeName'), value: 'gadgets' }, { op: 'neq', target: col('status'), value: 'deleted' }] } }, ['g1', 'g3']],
  ['latest groups by owner too', { op: 'latest', within: { op: 'eq', target: col('name'), value: 'beta' } }, ['b2', 'b3']],
  ['latest combined with an outer filter', { op: 'and', conditions: [{ op: 'latest', within: { op: 'true' } }, { op: 'eq', target: col('owner'), value: 'p1' }] }, ['a3', 'b2', 'g1']],
  ['latest within a version range', { op: 'latest', within: { op: 'lt', target: version, value: '2.0.0-0' } }, ['a1', 'a2', 'b2', 'g4']],
  // logic
  ['true', { op: 'true' }, ALL],
  ['empty and is true', { op: 'and', conditions: [] }, ALL],
  ['empty or is false', { op: 'or', conditions: [] }, []],
  ['or', { op: 'or', conditions: [{ op: 'eq', target: col('name'), value: 'beta' }, { op: 'tagsAny', tags: ['blue'] }] }, ['a1', 'b1', 'b2', 'b3', 'g1']],
  ['and', { op: 'and', conditions: [{ op: 'eq', target: col('name'), value: 'alpha' }, { op: 'eq', target: col('typeName'), value: 'widgets' }, { op: 'not', condition: { op: 'isNull', target: col('activatedAt') } }] }, ['a1', 'a2']],
  ['not', { op: 'not', condition: { op: 'tagsAny', tags: ['red'] } }, ['a3', 'b1', 'b2', 'g1', 'g2', 'g3', 'g4']],
  ['not of an empty in', { op: 'not', condition: { op: 'in', target: col('name'), values: [] } }, ALL],
  ['nested not of or', { op: 'not', condition: { op: 'or', conditions: [{ op: 'eq', target: field('flag', 'boolean'), value: true }, { op: 'isNull', target: field('size', 'number') }] } }, ['a2', 'b2', 'g1', 'g3']],
];

type SortCase = [string, SortKey[]];

const key = (target: SortTarget, direction: 'asc' | 'desc' = 'asc'): SortKey => ({ target, direction });

const SORT_CASES: SortCase[] = [
  ['no keys: id only', []],
  ['createdAt desc (ties broken by id desc)', [key(col('createdAt'), 'desc')]],
  ['createdAt asc', [key(col('createdAt'))]],
  ['name asc, version desc', [key(col('name')), key(version, 'desc')]],
  ['version asc (precedence, then build metadata)', [key(version)]],
  ['nullable activatedAt asc (NULLs first)', [key(col('activatedAt'))]],
  ['nullable activatedAt desc (NULLs last), name asc', [key(col('activatedAt'), 'desc'), key(col('name'))]],
  ['number field desc with missing values', [key(field('size', 'number'), 'desc')]],
  ['number field asc, createdAt desc', [key(field('size', 'number')), key(col('createdAt'), 'desc')]],
  ['boolean field asc, name desc', [key(field('flag', 'boolean')), key(col('name'), 'desc')]],
  ['string field asc', [key(field('label', 'string'))]],
  ['owner desc, typeName asc, version asc', [key(col('owner'), 'desc'), key(col('typeName')), key(version)]],
  ['status asc, activatedAt desc, size asc', [key(col('status')), key(col('activatedAt'), 'desc'), key(field('size', 'number'))]],
];

function reverse(sort: SortKey[]): SortKey[] {
  return sort.map((k) => ({ ...k, direction: k.direction === 'asc' ? 'desc' : 'asc' }));
}

type SortValue = Scalar | null;

function sortValue(r: ArtifactRecord, target: SortTarget): SortValue {
  if (target.kind === 'column') return r[target.name];
  if (target.kind === 'version') return r.version;
  const v: FieldValue | undefined = r.fields[target.name];
  return v === undefined || v === null || typeof v === 'object' ? null : v;
}

/** A client's view of a row's keyset position (what a cursor would carry). */
function keysetFor(r: ArtifactRecord, sort: SortKey[]): Keyset {
  return { values: sort.map((k) => sortValue(r, k.target)), id: r.id };
}

/** The specified order, computed independently of any store: NULL lowest, versions by precedence then build. */
function comparator(sort: SortKey[]): (x: ArtifactRecord, y: ArtifactRecord) => number {
  const lastDirection = sort.length ? sort[sort.length - 1].direction : 'asc';
  return (x, y) => {
    for (const k of sort) {
      const c = compareValues(sortValue(x, k.target), sortValue(y, k.target), k.target.kind === 'version');
      if (c !== 0) return k.direction === 'asc' ? c : -c;
    }
    const c = compareValues(x.id, y.id, false);
    return lastDirection === 'asc' ? c : -c;
  };
}

function compareValues(a: SortValue, b: SortValue, isVersion: boolean): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (isVersion) {
    const ea = encodeVersion(String(a));
    const eb = encodeVersion(String(b));
    return ea.prefix - eb.prefix || cmp(ea.suffix, eb.suffix) || cmp(ea.meta, eb.meta);
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return cmp(String(a), String(b));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

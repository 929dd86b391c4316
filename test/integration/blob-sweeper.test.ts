import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { transitionWrite } from '../../src/backends/native/blob-writes';
import { NativeBackend } from '../../src/backends/native/backend';
import { HashPool } from '../../src/backends/native/hasher';
import { StoreSet } from '../../src/backends/native/stores';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import { FsBlobStore } from '../../src/storage/blobs/fs';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * The periodic sweep of a shared deployment (not exclusive: other instances may be writing),
 * with the real SQLite and filesystem stores: bytes no blob references are removed only when
 * a second sweep still finds them unreferenced, bytes of committed blobs and of this
 * process's running writes never, and an upload whose lease expired is ended with its image
 * back in queued.
 */
const member: Principal = { projectId: 'p', userId: 'u', roles: ['member'] };
const types = new TypeRegistry();
let dir: string;
let store: SqliteMetadataStore;
let hashPool: HashPool;
let fast: FsBlobStore;
let cheap: FsBlobStore;
let backend: NativeBackend;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-sweeper-'));
  store = new SqliteMetadataStore({ path: join(dir, 'db.sqlite') });
  await store.migrate();
  hashPool = new HashPool();
  fast = new FsBlobStore('fast', join(dir, 'fast'));
  cheap = new FsBlobStore('cheap', join(dir, 'cheap'));
  backend = new NativeBackend({
    name: 'native', types, store, bus: new MemoryEventBus(), paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts',
    blobs: { stores: new StoreSet([{ store: fast }, { store: cheap }], 'fast', true), hashPool, leaseMs: 30_000, progressIntervalMs: 1000, allowPrivateUrls: false },
  });
});

afterEach(async () => {
  await hashPool.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const orphan = async (target: FsBlobStore) => (await target.write(Readable.from([randomBytes(1000)]))).location;

async function activeImage(): Promise<string> {
  const image = await backend.create(member, { typeName: 'images', name: 'kept', fields: { disk_format: 'raw', container_format: 'bare' } });
  await backend.uploadBlob(member, { artifactId: image.id, field: 'image', key: '' }, Readable.from([randomBytes(5000)]), { contentType: 'application/octet-stream' });
  return image.id;
}

test('an unreferenced location goes at the second sweep, in every store; committed bytes stay', async () => {
  const kept = await activeImage();
  const inFast = await orphan(fast);
  const inCheap = await orphan(cheap);

  const first = await backend.sweepBlobs({ exclusive: false });
  expect(first.orphanedLocations).toBe(0);
  expect(await fast.stat(inFast)).toBe(1000);
  expect(await cheap.stat(inCheap)).toBe(1000);

  const second = await backend.sweepBlobs({ exclusive: false });
  expect(second.orphanedLocations).toBe(2);
  expect(await fast.stat(inFast)).toBeNull();
  expect(await cheap.stat(inCheap)).toBeNull();

  const [blob] = (await backend.blobsOf(member, [kept]))[0];
  expect(blob.location).not.toBeNull();
  expect(await fast.stat(blob.location as string)).toBe(5000);
});

test('a location that appears between two sweeps is a candidate only from the sweep that first saw it', async () => {
  await backend.sweepBlobs({ exclusive: false });
  const late = await orphan(fast);
  expect((await backend.sweepBlobs({ exclusive: false })).orphanedLocations).toBe(0);
  expect(await fast.stat(late)).toBe(1000);
  expect((await backend.sweepBlobs({ exclusive: false })).orphanedLocations).toBe(1);
});

test('an upload whose lease expired is ended: its image is queued again', async () => {
  const image = await backend.create(member, { typeName: 'images', name: 'stuck', fields: { disk_format: 'raw', container_format: 'bare' } });
  const [record] = await store.getArtifacts([image.id]);
  const past = new Date(Date.now() - 60_000).toISOString();
  await store.beginUpload(
    { id: 'b2f3c1de-0000-4000-8000-000000000001', artifactId: image.id, field: 'image', key: '', owner: 'p', typeName: 'images', reserved: 10, contentType: null, startedAt: past, expiresAt: past },
    {},
    transitionWrite(types.get('images'), record!, 'upload_start'),
  );
  expect((await backend.getMany(member, [image.id]))[0]).toMatchObject({ status: 'saving' });
  const report = await backend.sweepBlobs({ exclusive: false });
  expect(report.expiredUploads).toBe(1);
  expect((await backend.getMany(member, [image.id]))[0]).toMatchObject({ status: 'queued' });
  expect(await store.listUploads()).toEqual([]);
});

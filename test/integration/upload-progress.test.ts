import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { NativeBackend } from '../../src/backends/native/backend';
import { HashPool } from '../../src/backends/native/hasher';
import { StoreSet } from '../../src/backends/native/stores';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import type { ProgressEvent } from '../../src/events/port';
import { FsBlobStore } from '../../src/storage/blobs/fs';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * Upload progress on the event bus, through the native backend with its real stores:
 * throttled reports while bytes stream, then exactly one final event with the outcome.
 * Throttling is checked by its extremes (an interval no upload reaches, and none at all),
 * never by timing.
 */
const member: Principal = { projectId: 'p', userId: 'u', roles: ['member'] };
let dir: string;
let store: SqliteMetadataStore;
let hashPool: HashPool;
let bus: MemoryEventBus;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-progress-'));
  store = new SqliteMetadataStore({ path: join(dir, 'db.sqlite') });
  await store.migrate();
  hashPool = new HashPool();
  bus = new MemoryEventBus();
});
afterEach(async () => {
  await hashPool.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function backend(progressIntervalMs: number): NativeBackend {
  return new NativeBackend({
    name: 'native', types: new TypeRegistry(), store, bus, paging: { defaultPageSize: 25, maxPageSize: 100 }, quotaDefaults: {}, blobPathPrefix: '/v1/artifacts',
    blobs: { stores: new StoreSet([{ store: new FsBlobStore('fs', join(dir, 'blobs')) }], 'fs', false), hashPool, leaseMs: 30_000, progressIntervalMs, allowPrivateUrls: false },
  });
}

function progressEvents(): ProgressEvent[] {
  const seen: ProgressEvent[] = [];
  bus.subscribe((m) => {
    if (m.topic === 'progress') seen.push(m.event);
  });
  return seen;
}

async function upload(b: NativeBackend, chunks: number, meta: Record<string, unknown> = {}) {
  const image = await b.create(member, { typeName: 'images', name: 'i', fields: { disk_format: 'raw', container_format: 'bare' } });
  const body = Readable.from(Array.from({ length: chunks }, () => Buffer.alloc(64 * 1024, 1)));
  const result = b.uploadBlob(member, { artifactId: image.id, field: 'image', key: '' }, body, { contentType: null, ...meta });
  return { image, result };
}

it('reports only the outcome when the upload ends within one interval', async () => {
  const seen = progressEvents();
  const { image, result } = await upload(backend(1e9), 16);
  await result;
  expect(seen).toEqual([expect.objectContaining({ kind: 'uploadProgress', artifactId: image.id, owner: 'p', subject: 'image', bytes: 16 * 64 * 1024, done: true, outcome: 'succeeded', etaSeconds: 0 })]);
});

it('reports growing byte counts while streaming, then one final event', async () => {
  const seen = progressEvents();
  const { result } = await upload(backend(0), 32, { expectedSize: 32 * 64 * 1024 });
  await result;
  const running = seen.filter((e) => !e.done);
  expect(running.length).toBeGreaterThan(1);
  expect(running.every((e, i) => i === 0 || e.bytes > running[i - 1].bytes)).toBe(true);
  expect(running.every((e) => e.total === 32 * 64 * 1024 && e.ratePerSecond >= 0)).toBe(true);
  expect(seen.filter((e) => e.done)).toEqual([expect.objectContaining({ outcome: 'succeeded', bytes: 32 * 64 * 1024 })]);
  expect(seen[seen.length - 1].done).toBe(true);
});

it('ends a failed upload with one failed event carrying the reason', async () => {
  const seen = progressEvents();
  const { result } = await upload(backend(1e9), 4, { expectedMd5: '0'.repeat(32) });
  await expect(result).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
  expect(seen).toEqual([expect.objectContaining({ done: true, outcome: 'failed', error: expect.stringContaining('md5') })]);
});

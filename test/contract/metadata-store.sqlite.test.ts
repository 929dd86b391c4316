import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetadataStore } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { artifact, eventFor, metadataStoreContract } from './metadata-store.contract';

/** Runs the contract against a fresh file-backed database per test (WAL needs a real file). */
const dirs = new Map<MetadataStore, string>();

metadataStoreContract(
  'SqliteMetadataStore',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-contract-'));
    const store = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
    dirs.set(store, dir);
    return store;
  },
  (store) => {
    rmSync(dirs.get(store)!, { recursive: true, force: true });
    dirs.delete(store);
  },
  // Another connection on the same file, as another process would open.
  async (store) => new SqliteMetadataStore({ path: join(dirs.get(store)!, 'metadata.db') }),
);

describe('SqliteMetadataStore specifics', () => {
  it('works in memory too', async () => {
    const store = new SqliteMetadataStore({ path: ':memory:' });
    await store.migrate();
    await store.ping();
    expect(await store.countArtifacts({ op: 'true' })).toBe(0);
    await store.close();
    await store.close();
  });

  it('uses WAL, NORMAL sync and foreign keys on a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-pragmas-'));
    const store = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
    try {
      const db = store.database;
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0);
      await store.migrate();
      await store.migrate();
      const applied = db.prepare('SELECT id FROM schema_migrations').all();
      expect(applied).toEqual([{ id: '0001_artifacts' }, { id: '0002_uploads' }, { id: '0003_image_listing' }, { id: '0004_copies_and_tasks' }, { id: '0005_metadefs' }, { id: '0006_blob_locations' }]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a write mark that moves with every committed write, never backwards, seen by other connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-mark-'));
    const store = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
    const other = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
    try {
      await store.migrate();
      expect(await store.writeMark()).toBe(0);
      const first = artifact(1);
      await store.insertArtifact(first, eventFor('created', first), { unique: false });
      const afterInsert = await store.writeMark();
      expect(afterInsert).toBeGreaterThan(0);
      expect(await other.writeMark()).toBe(afterInsert);
      // A write that fails (stale revision) commits nothing and leaves the mark.
      const renamed = { ...first, name: 'renamed', revision: 2 };
      await expect(store.replaceArtifact(renamed, 7, eventFor('updated', renamed), { unique: false })).rejects.toThrow();
      expect(await store.writeMark()).toBe(afterInsert);
      await other.replaceArtifact(renamed, 1, eventFor('updated', renamed), { unique: false });
      const afterUpdate = await store.writeMark();
      expect(afterUpdate).toBeGreaterThan(afterInsert);
      // Pruning every event must not lower it, or an old mark could come back.
      await store.pruneEvents(0);
      expect(await store.writeMark()).toBe(afterUpdate);
    } finally {
      await other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetadataStore } from '../../src/storage/metadata/port';
import Database from 'better-sqlite3';
import { applyMigrations, MIGRATIONS } from '../../src/storage/metadata/migrations';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';
import { artifact, eventFor, metadataStoreContract, upload } from './metadata-store.contract';

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

/** Two connections on one fresh migrated file, as two processes would open it. */
async function withTwoConnections(prefix: string, fn: (store: SqliteMetadataStore, other: SqliteMetadataStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
  const other = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
  try {
    await store.migrate();
    await fn(store, other);
  } finally {
    await other.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

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
      expect(applied).toEqual([{ id: '0001_artifacts' }, { id: '0002_uploads' }, { id: '0003_image_listing' }, { id: '0004_copies_and_tasks' }, { id: '0005_metadefs' }, { id: '0006_blob_locations' }, { id: '0007_children_json' }, { id: '0008_tasks_created' }, { id: '0009_upload_mark' }, { id: '0010_event_backend' }]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a write mark that moves with every committed write, never backwards, seen by other connections', () =>
    withTwoConnections('vitrine-mark-', async (store, other) => {
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
      // A blob upload of an artifact type begins and ends without an event; it shows as a
      // SAVING blob meanwhile, so both ends move the mark, for every connection.
      await store.beginUpload(upload(renamed, 'u1', 10, 'files', 'a'), {});
      const afterBegin = await other.writeMark();
      expect(afterBegin).toBeGreaterThan(afterUpdate);
      await other.abortUpload('u1');
      expect(await store.writeMark()).toBeGreaterThan(afterBegin);
    }));

  it('0007 fills the tag and property JSON of artifacts written before it, in their order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vitrine-0007-'));
    const path = join(dir, 'metadata.db');
    try {
      const db = new Database(path);
      applyMigrations(db, MIGRATIONS.filter((m) => m.id < '0007'));
      const row = db.prepare(`INSERT INTO artifacts (id, type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner, fields, created_at, updated_at, activated_at, revision)
        VALUES (?, 'images', ?, '0.0.0', 0, '', '', 'queued', 'private', 'p1', '{}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', NULL, 1)`);
      row.run('a1', 'old');
      row.run('a2', 'bare');
      const tag = db.prepare('INSERT INTO artifact_tags (artifact_id, tag, position) VALUES (?, ?, ?)');
      tag.run('a1', 'zeta', 0);
      tag.run('a1', 'alpha', 1);
      const property = db.prepare('INSERT INTO artifact_properties (artifact_id, name, value) VALUES (?, ?, ?)');
      property.run('a1', 'os_version', '12');
      property.run('a1', 'os_distro', 'debian');
      db.close();

      const store = new SqliteMetadataStore({ path });
      await store.migrate();
      const [a1, a2] = await store.getArtifacts(['a1', 'a2']);
      expect(a1!.tags).toEqual(['zeta', 'alpha']);
      expect(Object.entries(a1!.properties)).toEqual([['os_distro', 'debian'], ['os_version', '12']]);
      expect(a2!.tags).toEqual([]);
      expect(a2!.properties).toEqual({});
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a count until the next write, from any connection', () =>
    withTwoConnections('vitrine-count-', async (store, other) => {
      const all = { op: 'true' } as const;
      const first = artifact(1);
      await store.insertArtifact(first, eventFor('created', first), { unique: false });
      expect(await store.countArtifacts(all)).toBe(1);
      // A row slipped in without an event is not seen: the count was kept.
      store.database.exec(`INSERT INTO artifacts (id, type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner, fields, created_at, updated_at, activated_at, revision)
        SELECT 'sneaked-in', type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner, fields, created_at, updated_at, activated_at, revision FROM artifacts`);
      expect(await store.countArtifacts(all)).toBe(1);
      // Any committed write moves the mark, here one made through another connection.
      const second = artifact(2);
      await other.insertArtifact(second, eventFor('created', second), { unique: false });
      expect(await store.countArtifacts(all)).toBe(3);
    }));
});

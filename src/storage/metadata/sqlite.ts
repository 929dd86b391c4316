import Database from 'better-sqlite3';
import type { ArtifactRecord, BlobRecord, LinkRecord, MemberRecord, Status, TaskRecord, Visibility } from '../../domain/artifact';
import { fail, VitrineError } from '../../domain/errors';
import { encodeVersion } from '../../domain/semver';
import { applyMigrations } from './migrations';
import type { MetadefRecord } from '../../domain/metadefs';
import type {
  ArtifactWrite, ByteLimit, Condition, CountLimit, ListQuery, MetadataStore, MetadefInsertOptions, MetadefKey, MetadefKind, MetadefQuery, NewEvent,
  StoredEvent, TaskQuery, UploadRecord, Usage,
} from './port';
import { compileTaskQuery } from './task-query';
import {
  blobFromRow, blobsWithUploads, copiesJson, eventFromRow, groupBy, locationsJson, metadefFromRow, TASK_COLUMNS, taskFromRow, taskValues, uploadFromRow,
  type BlobRow, type EventRow, type MetadefRow, type TaskRow, type UploadRow,
} from './rows';
import { compileCount, compileList, sqliteDialect } from './sql';

/**
 * MetadataStore on an embedded SQLite file (better-sqlite3, synchronous). Each write is one
 * IMMEDIATE transaction, so its row changes and its event commit together and concurrent
 * writers queue on the busy timeout instead of failing halfway. Child rows (tags,
 * properties, members, links, blobs) go with their artifact through ON DELETE CASCADE.
 */
export interface SqliteMetadataStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /** How long a writer waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

interface ArtifactRow {
  id: string;
  type_name: string;
  name: string;
  version: string;
  status: Status;
  visibility: Visibility;
  owner: string;
  fields: string;
  created_at: string;
  updated_at: string;
  activated_at: string | null;
  revision: number;
  tags_json: string;
  properties_json: string;
}



/** Tags and properties come with each row as JSON kept on it (migration 0007): one row per listed artifact. */
const ARTIFACT_COLUMNS = 'a.id, a.type_name, a.name, a.version, a.status, a.visibility, a.owner, a.fields, a.created_at, a.updated_at, a.activated_at, a.revision, a.tags_json, a.properties_json';
/** Id lists travel as one JSON parameter, so a statement is prepared once whatever the count. */
const IDS = '(SELECT value FROM json_each(?))';
const STATEMENT_CACHE_SIZE = 256;
/** Distinct counts kept (a few hundred bytes each); all are dropped when full. */
const COUNT_CACHE_SIZE = 512;

export class SqliteMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly counts = new Map<string, { mark: number; n: number }>();
  /** One reusable transaction wrapper: `.immediate(fn)` runs fn inside BEGIN IMMEDIATE. */
  private readonly transaction: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(options: SqliteMetadataStoreOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    this.transaction = this.db.transaction((fn: () => unknown) => fn());
  }

  /** The underlying connection, for diagnostics and tests; writes through it bypass the event log. */
  get database(): Database.Database {
    return this.db;
  }

  async migrate(): Promise<void> {
    applyMigrations(this.db);
  }

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    this.statements.clear();
    // Recommended before closing: refreshes planner statistics where they have gone stale.
    this.db.pragma('optimize');
    this.db.close();
  }

  // ---- artifacts -------------------------------------------------------------------------

  async insertArtifact(artifact: ArtifactRecord, event: NewEvent, options: { unique: boolean; limit?: CountLimit }): Promise<StoredEvent> {
    return this.write(() => {
      this.insertRow(artifact, options.unique);
      this.insertChildren(artifact);
      if (options.limit) this.enforceLimit(artifact, options.limit);
      return this.appendEvent(event);
    });
  }

  async replaceArtifact(next: ArtifactRecord, expectedRevision: number, event: NewEvent, options: { unique: boolean }): Promise<StoredEvent> {
    return this.write(() => this.applyWrite({ next, expectedRevision, event }, options.unique));
  }

  async deleteArtifact(id: string, expectedRevision: number, event: NewEvent): Promise<{ event: StoredEvent; blobs: BlobRecord[] }> {
    return this.write(() => {
      const blobs = this.loadBlobs([id])[0];
      if (this.stmt('DELETE FROM artifacts WHERE id = ? AND revision = ?').run(id, expectedRevision).changes === 0) {
        this.failMissingOrStale(id, expectedRevision);
      }
      return { event: this.appendEvent(event), blobs };
    });
  }

  async getArtifacts(ids: readonly string[]): Promise<(ArtifactRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.stmt(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts a WHERE a.id IN ${IDS}`).all(JSON.stringify([...new Set(ids)])) as ArtifactRow[];
    const byId = new Map(this.hydrate(rows).map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listArtifacts(query: ListQuery): Promise<ArtifactRecord[]> {
    const { sql, params } = compileList(sqliteDialect, query, ARTIFACT_COLUMNS);
    return this.hydrate(this.stmt(sql).all(...params) as ArtifactRow[]);
  }

  /**
   * Counts repeat (every page of a listing asks for its total) and cost a scan of every
   * matching index entry, so each is kept under the write mark it was counted at.
   */
  async countArtifacts(where: Condition): Promise<number> {
    const { sql, params } = compileCount(sqliteDialect, where);
    const key = `${sql}\n${JSON.stringify(params)}`;
    // Read before counting: a write in between can only leave a count under an older mark.
    const mark = this.currentMark();
    const kept = this.counts.get(key);
    if (kept?.mark === mark) return kept.n;
    const n = (this.stmt(sql).get(...params) as { n: number }).n;
    if (this.counts.size >= COUNT_CACHE_SIZE) this.counts.clear();
    this.counts.set(key, { mark, n });
    return n;
  }

  /** The query plan of `listArtifacts(query)`, one `EXPLAIN QUERY PLAN` detail line per step. */
  explainList(query: ListQuery): string[] {
    const { sql, params } = compileList(sqliteDialect, query, ARTIFACT_COLUMNS);
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  }

  /** The query plan of `queryTasks(query)`, as explainList. */
  explainTasks(query: TaskQuery): string[] {
    const { sql, params } = compileTaskQuery(sqliteDialect, query, '*');
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
  }

  /**
   * Loads many artifacts in one transaction, without events or quota checks: for imports,
   * benchmarks and test fixtures. Returns how many were written.
   */
  bulkLoad(artifacts: readonly ArtifactRecord[], options: { unique?: boolean } = {}): number {
    return this.write(() => {
      for (const a of artifacts) {
        this.insertRow(a, options.unique ?? false);
        this.insertChildren(a);
      }
      return artifacts.length;
    });
  }

  // ---- members ---------------------------------------------------------------------------

  async getMembers(artifactIds: readonly string[]): Promise<MemberRecord[][]> {
    const rows = this.stmt(
      `SELECT artifact_id AS artifactId, member, status, created_at AS createdAt, updated_at AS updatedAt
       FROM artifact_members WHERE artifact_id IN ${IDS} ORDER BY created_at, member`,
    ).all(JSON.stringify(artifactIds)) as MemberRecord[];
    return groupBy(artifactIds, rows, (m) => m.artifactId);
  }

  async insertMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent> {
    return this.write(() => {
      this.bumpRevision(member.artifactId, event);
      try {
        this.stmt('INSERT INTO artifact_members (artifact_id, member, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
          .run(member.artifactId, member.member, member.status, member.createdAt, member.updatedAt);
      } catch (err) {
        if (constraintOf(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY') fail('MEMBER_EXISTS', `project ${member.member} is already a member`);
        throw err;
      }
      return this.appendEvent(event);
    });
  }

  async updateMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent> {
    return this.write(() => {
      this.bumpRevision(member.artifactId, event);
      const changed = this.stmt('UPDATE artifact_members SET status = ?, updated_at = ? WHERE artifact_id = ? AND member = ?')
        .run(member.status, member.updatedAt, member.artifactId, member.member).changes;
      if (changed === 0) fail('MEMBER_NOT_FOUND', `project ${member.member} is not a member`);
      return this.appendEvent(event);
    });
  }

  async deleteMember(artifactId: string, member: string, event: NewEvent): Promise<StoredEvent> {
    return this.write(() => {
      this.bumpRevision(artifactId, event);
      if (this.stmt('DELETE FROM artifact_members WHERE artifact_id = ? AND member = ?').run(artifactId, member).changes === 0) {
        fail('MEMBER_NOT_FOUND', `project ${member} is not a member`);
      }
      return this.appendEvent(event);
    });
  }

  // ---- links -----------------------------------------------------------------------------

  async getLinks(sourceIds: readonly string[]): Promise<LinkRecord[][]> {
    const rows = this.stmt(
      `SELECT source_id AS sourceId, name, target_id AS targetId, created_at AS createdAt
       FROM artifact_links WHERE source_id IN ${IDS} ORDER BY name, created_at, target_id`,
    ).all(JSON.stringify(sourceIds)) as LinkRecord[];
    return groupBy(sourceIds, rows, (l) => l.sourceId);
  }

  async insertLink(link: LinkRecord, replace: boolean, event: NewEvent, options: { foreignTarget?: boolean } = {}): Promise<StoredEvent> {
    return this.write(() => {
      this.bumpRevision(link.sourceId, event);
      if (replace) {
        this.stmt('DELETE FROM artifact_links WHERE source_id = ? AND name = ? AND target_id <> ?').run(link.sourceId, link.name, link.targetId);
      }
      // Links are soft references: a target deleted later leaves a dangling link (resolved as
      // null), but a link must name an existing artifact when it is made.
      if (!options.foreignTarget && !this.stmt('SELECT 1 FROM artifacts WHERE id = ?').get(link.targetId)) fail('LINK_INVALID', `link target ${link.targetId} does not exist`);
      // An existing identical link stays as it is (with its createdAt): adding it is idempotent.
      this.stmt('INSERT INTO artifact_links (source_id, name, target_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (source_id, name, target_id) DO NOTHING')
        .run(link.sourceId, link.name, link.targetId, link.createdAt);
      return this.appendEvent(event);
    });
  }

  async deleteLinks(sourceId: string, name: string, targetId: string | undefined, event: NewEvent): Promise<{ event: StoredEvent; removed: number }> {
    return this.write(() => {
      this.bumpRevision(sourceId, event);
      const removed = targetId === undefined
        ? this.stmt('DELETE FROM artifact_links WHERE source_id = ? AND name = ?').run(sourceId, name).changes
        : this.stmt('DELETE FROM artifact_links WHERE source_id = ? AND name = ? AND target_id = ?').run(sourceId, name, targetId).changes;
      return { event: this.appendEvent(event), removed };
    });
  }

  // ---- blobs -----------------------------------------------------------------------------

  async getBlobs(artifactIds: readonly string[]): Promise<BlobRecord[][]> {
    return this.loadBlobs(artifactIds);
  }

  /** Stored blobs, with each blob that has a running upload shown once, as saving. */
  private loadBlobs(artifactIds: readonly string[]): BlobRecord[][] {
    const ids = JSON.stringify(artifactIds);
    const stored = this.stmt(`SELECT * FROM artifact_blobs WHERE artifact_id IN ${IDS}`).all(ids) as BlobRow[];
    const uploads = this.stmt(`SELECT * FROM blob_uploads WHERE artifact_id IN ${IDS}`).all(ids) as UploadRow[];
    return blobsWithUploads(artifactIds, stored, uploads);
  }


  async beginUpload(upload: UploadRecord, limit: ByteLimit, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(() => {
      const event = write ? this.applyWrite(write) : null;
      if (limit.maxTotal !== undefined && limit.maxTotal >= 0) this.enforceBytes(upload, null, limit.maxTotal);
      if (limit.maxOfType !== undefined && limit.maxOfType >= 0) this.enforceBytes(upload, upload.typeName, limit.maxOfType);
      try {
        this.stmt(
          `INSERT INTO blob_uploads (id, artifact_id, field, key, owner, type_name, reserved, content_type, started_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(upload.id, upload.artifactId, upload.field, upload.key, upload.owner, upload.typeName, upload.reserved, upload.contentType, upload.startedAt, upload.expiresAt);
      } catch (err) {
        const code = constraintOf(err);
        if (code === 'SQLITE_CONSTRAINT_UNIQUE') fail('BLOB_BUSY', `another upload of ${upload.field}${upload.key ? `/${upload.key}` : ''} is running`);
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') fail('NOT_FOUND', `artifact ${upload.artifactId} does not exist`);
        throw err;
      }
      return event;
    });
  }

  async renewUpload(uploadId: string, expiresAt: string): Promise<boolean> {
    return this.stmt('UPDATE blob_uploads SET expires_at = ? WHERE id = ?').run(expiresAt, uploadId).changes > 0;
  }

  async completeUpload(uploadId: string, blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }> {
    return this.write(() => {
      if (this.stmt('DELETE FROM blob_uploads WHERE id = ?').run(uploadId).changes === 0) {
        fail('GONE', 'the upload was abandoned (its artifact was deleted, or it was swept as stale)');
      }
      return this.storeBlob(blob, write);
    });
  }

  async abortUpload(uploadId: string, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(() => {
      this.stmt('DELETE FROM blob_uploads WHERE id = ?').run(uploadId);
      return write ? this.applyWrite(write) : null;
    });
  }

  async listUploads(expiredBefore?: string): Promise<UploadRecord[]> {
    const rows = (expiredBefore === undefined
      ? this.stmt('SELECT * FROM blob_uploads ORDER BY started_at, id').all()
      : this.stmt('SELECT * FROM blob_uploads WHERE expires_at < ? ORDER BY started_at, id').all(expiredBefore)) as UploadRow[];
    return rows.map(uploadFromRow);
  }

  async putBlob(blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }> {
    return this.write(() => {
      if (this.stmt('SELECT 1 FROM blob_uploads WHERE artifact_id = ? AND field = ? AND key = ?').get(blob.artifactId, blob.field, blob.key)) {
        fail('BLOB_BUSY', `an upload of ${blob.field}${blob.key ? `/${blob.key}` : ''} is running`);
      }
      return this.storeBlob(blob, write);
    });
  }

  async deleteBlob(artifactId: string, field: string, key: string, write: ArtifactWrite): Promise<{ event: StoredEvent; removed: BlobRecord }> {
    return this.write(() => {
      const row = this.stmt('SELECT * FROM artifact_blobs WHERE artifact_id = ? AND field = ? AND key = ?').get(artifactId, field, key) as BlobRow | undefined;
      if (!row) fail('NOT_FOUND', `no blob ${field}${key ? `/${key}` : ''}`);
      this.stmt('DELETE FROM artifact_blobs WHERE artifact_id = ? AND field = ? AND key = ?').run(artifactId, field, key);
      return { event: this.applyWrite(write), removed: blobFromRow(row) };
    });
  }

  async referencedLocations(store: string, locations: readonly string[]): Promise<Set<string>> {
    if (locations.length === 0) return new Set();
    const wanted = JSON.stringify(locations);
    // Primary locations through ix_artifact_blobs_location; copies by reading only the blobs
    // that have any (the partial index ix_artifact_blobs_copies, which holds their JSON).
    const rows = this.stmt(
      `SELECT location FROM artifact_blobs WHERE store = ? AND location IN ${IDS}
       UNION
       SELECT c.value ->> '$.location' FROM artifact_blobs b INDEXED BY ix_artifact_blobs_copies, json_each(b.copies) c
       WHERE b.copies <> '[]' AND c.value ->> '$.store' = ? AND c.value ->> '$.location' IN ${IDS}`,
    ).all(store, wanted, store, wanted) as { location: string }[];
    return new Set(rows.map((r) => r.location));
  }

  /** Upserts a blob row with its artifact write; returns the row it replaced. */
  private storeBlob(blob: BlobRecord, write: ArtifactWrite): { event: StoredEvent; replaced: BlobRecord | null } {
    const previous = this.stmt('SELECT * FROM artifact_blobs WHERE artifact_id = ? AND field = ? AND key = ?').get(blob.artifactId, blob.field, blob.key) as BlobRow | undefined;
    this.stmt(
      `INSERT INTO artifact_blobs (artifact_id, field, key, status, size, md5, sha256, sha512, content_type, external, url, store, location, copies, locations, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (artifact_id, field, key) DO UPDATE SET status = excluded.status, size = excluded.size, md5 = excluded.md5,
         sha256 = excluded.sha256, sha512 = excluded.sha512, content_type = excluded.content_type, external = excluded.external,
         url = excluded.url, store = excluded.store, location = excluded.location, copies = excluded.copies, locations = excluded.locations, updated_at = excluded.updated_at`,
    ).run(
      blob.artifactId, blob.field, blob.key, blob.status, blob.size, blob.md5, blob.sha256, blob.sha512, blob.contentType,
      blob.external ? 1 : 0, blob.url, blob.store, blob.location, copiesJson(blob), locationsJson(blob), blob.createdAt, blob.updatedAt,
    );
    return { event: this.applyWrite(write), replaced: previous ? blobFromRow(previous) : null };
  }

  /** QUOTA_EXCEEDED unless the owner's stored bytes plus reservations leave room for this upload. */
  private enforceBytes(upload: UploadRecord, typeName: string | null, max: number): void {
    const { used } = this.stmt(
      `SELECT
         COALESCE((SELECT SUM(b.size) FROM artifact_blobs b JOIN artifacts a ON a.id = b.artifact_id
                   WHERE a.owner = ? AND b.external = 0 AND (? IS NULL OR a.type_name = ?)), 0)
       + COALESCE((SELECT SUM(u.reserved) FROM blob_uploads u WHERE u.owner = ? AND (? IS NULL OR u.type_name = ?)), 0) AS used`,
    ).get(upload.owner, typeName, typeName, upload.owner, typeName, typeName) as { used: number };
    if (used + upload.reserved > max) {
      const scope = typeName ? ` of ${typeName}` : '';
      fail('QUOTA_EXCEEDED', `project ${upload.owner} may store at most ${max} bytes${scope}; ${used} are used and this upload needs up to ${upload.reserved}`, { limit: max, used });
    }
  }

  // ---- tasks -----------------------------------------------------------------------------

  async insertTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(() => {
      const event = write ? this.applyWrite(write) : null;
      this.stmt(`INSERT INTO tasks (${TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(...taskValues(task));
      return event;
    });
  }

  async updateTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(() => {
      const [id, ...rest] = taskValues(task);
      const changed = this.stmt(
        `UPDATE tasks SET type = ?, status = ?, image_id = ?, owner = ?, user_id = ?, request_id = ?, input = ?, result = ?, message = ?,
           created_at = ?, updated_at = ?, expires_at = ?, lease_expires_at = ?, attempts = ?
         WHERE id = ?`,
      ).run(...rest, id).changes;
      if (changed === 0) fail('NOT_FOUND', `task ${task.id} does not exist`);
      return write ? this.applyWrite(write) : null;
    });
  }

  async getTasks(ids: readonly string[]): Promise<(TaskRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.stmt(`SELECT * FROM tasks WHERE id IN ${IDS}`).all(JSON.stringify([...new Set(ids)])) as TaskRow[];
    const byId = new Map(rows.map((r) => [r.id, taskFromRow(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listTasks(imageId: string): Promise<TaskRecord[]> {
    const rows = this.stmt('SELECT * FROM tasks WHERE image_id = ? ORDER BY created_at DESC, id DESC').all(imageId) as TaskRow[];
    return rows.map(taskFromRow);
  }

  async queryTasks(query: TaskQuery): Promise<TaskRecord[]> {
    const { sql, params } = compileTaskQuery(sqliteDialect, query, '*');
    return (this.stmt(sql).all(...params) as TaskRow[]).map(taskFromRow);
  }

  async claimTask(now: string, leaseExpiresAt: string): Promise<TaskRecord | null> {
    // One IMMEDIATE transaction: the write lock is taken before the candidate is read, so
    // another connection claiming at the same time waits and then sees this claim.
    const row = this.write(() => this.stmt(
      `UPDATE tasks SET status = 'processing', lease_expires_at = ?, attempts = attempts + 1, updated_at = ?
       WHERE id = (SELECT id FROM tasks INDEXED BY ix_tasks_claim
                   WHERE status IN ('pending', 'processing') AND (status = 'pending' OR lease_expires_at < ?)
                   ORDER BY created_at, id LIMIT 1)
       RETURNING *`,
    ).get(leaseExpiresAt, now, now)) as TaskRow | undefined;
    return row ? taskFromRow(row) : null;
  }

  async renewTask(id: string, leaseExpiresAt: string): Promise<boolean> {
    return this.stmt(`UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND status = 'processing'`).run(leaseExpiresAt, id).changes > 0;
  }

  async pruneTasks(before: string): Promise<number> {
    return this.stmt(`DELETE FROM tasks WHERE status IN ('success', 'failure') AND expires_at < ?`).run(before).changes;
  }

  // ---- events ----------------------------------------------------------------------------

  async appendEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    return this.write(() => events.map((e) => this.appendEvent(e)));
  }

  async readEvents(afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = this.stmt('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, Math.max(0, Math.floor(limit))) as EventRow[];
    return rows.map(eventFromRow);
  }

  async writeMark(): Promise<number> {
    return this.currentMark();
  }

  private currentMark(): number {
    // The events' AUTOINCREMENT high-water mark (committed with the event, never lowered by
    // pruning) plus the upload counter (0009): both only grow, and every write grows one.
    const row = this.stmt(
      `SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events') AS events, (SELECT value FROM write_counters WHERE name = 'blob_uploads') AS uploads`,
    ).get() as { events: number | null; uploads: number | null };
    return (row.events ?? 0) + (row.uploads ?? 0);
  }

  async pruneEvents(keep: number): Promise<void> {
    // Deletes up to the newest event that is not kept; with fewer than `keep + 1` events the bound is NULL and nothing goes.
    this.stmt('DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?)').run(Math.max(0, Math.floor(keep)));
  }

  // ---- quotas ----------------------------------------------------------------------------

  async getQuotas(projectId: string): Promise<Record<string, number>> {
    const rows = this.stmt('SELECT name, value FROM quotas WHERE project_id = ? ORDER BY name').all(projectId) as { name: string; value: number }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  async setQuotas(projectId: string, quotas: Record<string, number>): Promise<void> {
    this.write(() => {
      this.stmt('DELETE FROM quotas WHERE project_id = ?').run(projectId);
      const insert = this.stmt('INSERT INTO quotas (project_id, name, value) VALUES (?, ?, ?)');
      for (const [name, value] of Object.entries(quotas)) insert.run(projectId, name, value);
    });
  }

  async usage(projectId: string): Promise<Usage> {
    const rows = this.stmt(
      // Correlated per artifact so only the project's blob rows are read, through their primary key.
      `SELECT a.type_name AS typeName, COUNT(*) AS n,
         COALESCE(SUM((SELECT SUM(b.size) FROM artifact_blobs b WHERE b.artifact_id = a.id AND b.external = 0)), 0)
         + COALESCE(SUM((SELECT SUM(u.reserved) FROM blob_uploads u WHERE u.artifact_id = a.id)), 0) AS bytes
       FROM artifacts a
       WHERE a.owner = ? AND a.status <> 'deleted'
       GROUP BY a.type_name ORDER BY a.type_name`,
    ).all(projectId) as { typeName: string; n: number; bytes: number }[];
    return {
      projectId,
      counts: Object.fromEntries(rows.map((r) => [r.typeName, r.n])),
      bytes: Object.fromEntries(rows.map((r) => [r.typeName, r.bytes])),
    };
  }

  // ---- metadefs --------------------------------------------------------------------------

  async listMetadefs(query: MetadefQuery): Promise<MetadefRecord[]> {
    const rows = this.stmt(
      `SELECT * FROM metadefs WHERE kind = ?
         AND (? IS NULL OR namespace IN (SELECT value FROM json_each(?)))
         AND (? IS NULL OR name IN (SELECT value FROM json_each(?)))
       ORDER BY namespace, created_at, rowid`,
    ).all(
      query.kind,
      query.namespaces ? 1 : null, JSON.stringify(query.namespaces ?? []),
      query.names ? 1 : null, JSON.stringify(query.names ?? []),
    ) as MetadefRow[];
    return rows.map(metadefFromRow);
  }

  async insertMetadefs(records: readonly MetadefRecord[], options: MetadefInsertOptions = {}): Promise<void> {
    this.write(() => {
      if (options.replace) this.stmt('DELETE FROM metadefs WHERE namespace = ? AND kind = ?').run(options.replace.namespace, options.replace.kind);
      for (const r of options.ensure ?? []) this.insertMetadef(r, true);
      for (const r of records) this.insertMetadef(r, false);
    });
  }

  async updateMetadef(key: MetadefKey, next: MetadefRecord): Promise<void> {
    this.write(() => {
      const changed = this.guardMetadef(next, () =>
        this.stmt(
          `UPDATE metadefs SET namespace = ?, kind = ?, name = ?, owner = ?, visibility = ?, protected = ?, body = ?, created_at = ?, updated_at = ?
           WHERE namespace = ? AND kind = ? AND name = ?`,
        ).run(...metadefValues(next), key.namespace, key.kind, key.name).changes,
      );
      if (changed === 0) fail('METADEF_NOT_FOUND', `no ${key.kind} ${key.name} in namespace ${key.namespace}`);
      // A namespace's rows follow it when it is renamed (the new name is free: its row just moved there).
      if (key.kind === 'namespace' && next.namespace !== key.namespace) {
        this.stmt(`UPDATE metadefs SET namespace = ? WHERE namespace = ? AND kind <> 'namespace'`).run(next.namespace, key.namespace);
      }
    });
  }

  async deleteMetadefs(namespace: string, kind: MetadefKind, name?: string): Promise<number> {
    return this.write(() => {
      if (kind === 'namespace') {
        const gone = this.stmt(`DELETE FROM metadefs WHERE namespace = ? AND kind = 'namespace' AND (? IS NULL OR name = ?)`).run(namespace, name ?? null, name ?? null).changes;
        if (gone > 0) this.stmt('DELETE FROM metadefs WHERE namespace = ?').run(namespace);
        return gone;
      }
      return this.stmt('DELETE FROM metadefs WHERE namespace = ? AND kind = ? AND (? IS NULL OR name = ?)').run(namespace, kind, name ?? null, name ?? null).changes;
    });
  }

  async seedMetadefs(seed: string, records: readonly MetadefRecord[]): Promise<boolean> {
    return this.write(() => {
      if (this.stmt('INSERT OR IGNORE INTO metadef_seeds (id, applied_at) VALUES (?, ?)').run(seed, new Date().toISOString()).changes === 0) return false;
      for (const r of records) this.insertMetadef(r, true);
      return true;
    });
  }

  private insertMetadef(r: MetadefRecord, ifAbsent: boolean): void {
    this.guardMetadef(r, () =>
      this.stmt(
        `INSERT ${ifAbsent ? 'OR IGNORE ' : ''}INTO metadefs (namespace, kind, name, owner, visibility, protected, body, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(...metadefValues(r)),
    );
  }

  private guardMetadef<R>(r: MetadefRecord, fn: () => R): R {
    try {
      return fn();
    } catch (err) {
      if (constraintOf(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        fail('METADEF_EXISTS', r.kind === 'namespace' ? `namespace ${r.name} already exists` : `${r.kind} ${r.name} already exists in namespace ${r.namespace}`);
      }
      throw err;
    }
  }

  // ---- internals -------------------------------------------------------------------------

  private write<R>(fn: () => R): R {
    return this.transaction.immediate(fn) as R;
  }

  /** Prepared statements by SQL text; least recently used ones are dropped past the cap. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s) {
      this.statements.delete(sql);
    } else {
      s = this.db.prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value as string);
    }
    this.statements.set(sql, s);
    return s;
  }

  private insertRow(a: ArtifactRecord, unique: boolean): void {
    const v = encodeVersion(a.version);
    this.guardUnique(() =>
      this.stmt(
        `INSERT INTO artifacts (id, type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner,
           fields, created_at, updated_at, activated_at, revision, unique_scope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        a.id, a.typeName, a.name, a.version, v.prefix, v.suffix, v.meta, a.status, a.visibility, a.owner,
        JSON.stringify(a.fields), a.createdAt, a.updatedAt, a.activatedAt, a.revision, unique ? 1 : null,
      ),
    );
  }

  /** Runs a write on `artifacts`, turning uniqueness violations into the domain's codes. */
  private guardUnique<R>(fn: () => R): R {
    try {
      return fn();
    } catch (err) {
      const code = constraintOf(err);
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new VitrineError('DUPLICATE_ID', 'an artifact with this id exists');
      if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw new VitrineError('DUPLICATE_VERSION', 'an artifact with this type, owner, name and version exists');
      throw err;
    }
  }

  /** Writes the tag and property rows (for filters), then their JSON on the artifact row (for reads), in the child rows' order. */
  private insertChildren(a: ArtifactRecord): void {
    const tag = this.stmt('INSERT INTO artifact_tags (artifact_id, tag, position) VALUES (?, ?, ?)');
    [...new Set(a.tags)].forEach((t, i) => tag.run(a.id, t, i));
    const property = this.stmt('INSERT INTO artifact_properties (artifact_id, name, value) VALUES (?, ?, ?)');
    for (const [name, value] of Object.entries(a.properties)) property.run(a.id, name, value);
    this.stmt(
      `UPDATE artifacts SET
         tags_json = (SELECT json_group_array(tag) FROM (SELECT tag FROM artifact_tags t WHERE t.artifact_id = artifacts.id ORDER BY position)),
         properties_json = (SELECT json_group_object(name, value) FROM (SELECT name, value FROM artifact_properties p WHERE p.artifact_id = artifacts.id ORDER BY name))
       WHERE id = ?`,
    ).run(a.id);
  }

  /** Counts the owner's other live artifacts inside the write's transaction; a negative limit means unlimited (Glare's -1). */
  private enforceLimit(a: ArtifactRecord, limit: CountLimit): void {
    const count = (typeName: string | null) =>
      (this.stmt(`SELECT COUNT(*) AS n FROM artifacts WHERE owner = ? AND (? IS NULL OR type_name = ?) AND status <> 'deleted' AND id <> ?`)
        .get(a.owner, typeName, typeName, a.id) as { n: number }).n;
    if (limit.maxTotal !== undefined && limit.maxTotal >= 0 && count(null) >= limit.maxTotal) {
      fail('QUOTA_EXCEEDED', `project ${a.owner} may have at most ${limit.maxTotal} artifacts`, { limit: limit.maxTotal });
    }
    if (limit.maxOfType !== undefined && limit.maxOfType >= 0 && count(a.typeName) >= limit.maxOfType) {
      fail('QUOTA_EXCEEDED', `project ${a.owner} may have at most ${limit.maxOfType} ${a.typeName}`, { limit: limit.maxOfType, typeName: a.typeName });
    }
  }

  /**
   * Replaces an artifact row and its tags and properties if it is still at
   * `expectedRevision`, then appends the event. `unique` undefined keeps the row's scope.
   */
  private applyWrite({ next, expectedRevision, event }: ArtifactWrite, unique?: boolean): StoredEvent {
    if (next.revision !== expectedRevision + 1) {
      fail('INTERNAL', `an artifact write must set revision ${expectedRevision + 1}, got ${next.revision}`);
    }
    const v = encodeVersion(next.version);
    const changed = this.guardUnique(() =>
      this.stmt(
        `UPDATE artifacts SET type_name = ?, name = ?, version = ?, version_prefix = ?, version_suffix = ?, version_meta = ?,
           status = ?, visibility = ?, owner = ?, fields = ?, created_at = ?, updated_at = ?, activated_at = ?, revision = ?,
           unique_scope = CASE WHEN ? IS NULL THEN unique_scope WHEN ? = 1 THEN 1 ELSE NULL END
         WHERE id = ? AND revision = ?`,
      ).run(
        next.typeName, next.name, next.version, v.prefix, v.suffix, v.meta,
        next.status, next.visibility, next.owner, JSON.stringify(next.fields), next.createdAt, next.updatedAt, next.activatedAt, next.revision,
        unique === undefined ? null : Number(unique), unique === undefined ? null : Number(unique), next.id, expectedRevision,
      ).changes,
    );
    if (changed === 0) this.failMissingOrStale(next.id, expectedRevision);
    this.stmt('DELETE FROM artifact_tags WHERE artifact_id = ?').run(next.id);
    this.stmt('DELETE FROM artifact_properties WHERE artifact_id = ?').run(next.id);
    this.insertChildren(next);
    return this.appendEvent(event);
  }

  /** Member and link writes change the artifact too: its revision moves to the event's, guarded by CAS. */
  private bumpRevision(artifactId: string, event: NewEvent): void {
    const expected = event.revision - 1;
    const changed = this.stmt('UPDATE artifacts SET revision = ?, updated_at = ? WHERE id = ? AND revision = ?')
      .run(event.revision, event.at, artifactId, expected).changes;
    if (changed === 0) this.failMissingOrStale(artifactId, expected);
  }

  private failMissingOrStale(id: string, expectedRevision: number): never {
    const row = this.stmt('SELECT revision FROM artifacts WHERE id = ?').get(id) as { revision: number } | undefined;
    if (!row) fail('NOT_FOUND', `artifact ${id} does not exist`);
    return fail('REVISION_CONFLICT', `artifact ${id} is at revision ${row.revision}, not ${expectedRevision}`, { revision: row.revision });
  }

  private appendEvent(e: NewEvent): StoredEvent {
    const { lastInsertRowid } = this.stmt(
      `INSERT INTO events (kind, artifact_id, type_name, owner, visibility, from_status, to_status, revision, at, snapshot, backend)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(e.kind, e.artifactId, e.typeName, e.owner, e.visibility, e.from ?? null, e.to ?? null, e.revision, e.at, JSON.stringify(e.snapshot), e.backend ?? null);
    return { ...e, seq: Number(lastInsertRowid) };
  }

  /** Rows to records. */
  private hydrate(rows: ArtifactRow[]): ArtifactRecord[] {
    return rows.map((r) => ({
      id: r.id,
      typeName: r.type_name,
      name: r.name,
      version: r.version,
      status: r.status,
      visibility: r.visibility,
      owner: r.owner,
      tags: JSON.parse(r.tags_json) as string[],
      // JSON.parse defines own properties, so even a property named __proto__ survives.
      properties: JSON.parse(r.properties_json) as Record<string, string>,
      fields: JSON.parse(r.fields) as ArtifactRecord['fields'],
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      activatedAt: r.activated_at,
      revision: r.revision,
    }));
  }
}

function metadefValues(r: MetadefRecord): (string | number | null)[] {
  return [r.namespace, r.kind, r.name, r.owner, r.visibility, r.protected ? 1 : 0, JSON.stringify(r.body), r.createdAt, r.updatedAt];
}

/**
 * The SQLite constraint code of an error, if it is one. Duck-typed on purpose: the native
 * addon keeps the SqliteError class of whichever module instance loaded it first, so
 * `instanceof` fails when the module is loaded again (jest's per-file module registries).
 */
function constraintOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') ? code : undefined;
}









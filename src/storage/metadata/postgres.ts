import pg, { type CustomTypesConfig, type PoolClient, type PoolConfig, type QueryResultRow } from 'pg';
import type { ArtifactRecord, BlobRecord, LinkRecord, MemberRecord, Status, TaskRecord, Visibility } from '../../domain/artifact';
import { fail, VitrineError } from '../../domain/errors';
import { encodeVersion } from '../../domain/semver';
import type { MetadefRecord } from '../../domain/metadefs';
import type {
  ArtifactWrite, ByteLimit, Condition, CountLimit, ListQuery, MetadataStore, MetadefInsertOptions, MetadefKey, MetadefKind, MetadefQuery, NewEvent,
  StoredEvent, TaskQuery, UploadRecord, Usage,
} from './port';
import { compileTaskQuery } from './task-query';
import { applyPostgresMigrations, COPY_LOCATIONS_EXPRESSION, LOCK_SPACE, quoteIdentifier, SCHEMA_NAME } from './postgres-migrations';
import {
  blobFromRow, blobsWithUploads, copiesJson, eventFromRow, groupBy, locationsJson, metadefFromRow, push, TASK_COLUMNS, taskFromRow, taskValues, uploadFromRow,
  type BlobRow, type EventRow, type MetadefRow, type TaskRow, type UploadRow,
} from './rows';
import { compileCount, compileList, postgresDialect } from './sql';

/**
 * MetadataStore on PostgreSQL, for several Vitrine instances sharing one database. Each
 * write is one READ COMMITTED transaction on a pooled connection:
 *
 * - Optimistic locking is the row CAS `UPDATE … WHERE id = $1 AND revision = $2`: a
 *   concurrent writer of the same row waits for the row lock, then re-checks the predicate
 *   against the committed row and matches nothing, so the loser gets REVISION_CONFLICT.
 * - Quota checks count rows, which a row lock cannot protect (the rows that would collide
 *   do not exist yet). Writes that check a quota first take a transaction-scoped advisory
 *   lock on the owner (`pg_advisory_xact_lock`), so checks of one owner run one at a time
 *   across all instances, and each counts after the previous one committed (READ COMMITTED
 *   takes a new snapshot per statement). Owners never wait for each other, and SERIALIZABLE
 *   (with its retries on every false conflict) is not needed.
 * - Events are appended last, under an advisory lock held until commit, so seq order is
 *   commit order: a reader polling `seq > last` never skips an event that commits late.
 * - Deadlocks and serialization failures (40P01, 40001) retry the whole transaction.
 */
export interface PostgresMetadataStoreOptions {
  /** postgres://user:password@host:port/database */
  connectionString?: string;
  /** Further pg.Pool options (host, ssl, …); `connectionString` and `poolSize` win. */
  pool?: Omit<PoolConfig, 'types' | 'options'>;
  /** Most connections this instance opens (default 10). */
  poolSize?: number;
  /** A schema of its own (created by migrate); the connection's default schema otherwise. */
  schema?: string;
  /** How long to wait for a connection before failing (default 5000 ms). */
  connectionTimeoutMs?: number;
  /** How often a transaction runs at most when it deadlocks (default 4). */
  maxAttempts?: number;
}

interface ArtifactRow {
  id: string;
  type_name: string;
  name: string;
  version: string;
  status: Status;
  visibility: Visibility;
  owner: string;
  fields: ArtifactRecord['fields'];
  created_at: string;
  updated_at: string;
  activated_at: string | null;
  revision: number;
}




const ARTIFACT_COLUMNS = 'a.id, a.type_name, a.name, a.version, a.status, a.visibility, a.owner, a.fields, a.created_at, a.updated_at, a.activated_at, a.revision';
const BLOB_COLUMNS = 'artifact_id, field, key, status, size, md5, sha256, sha512, content_type, external, url, store, location, copies, locations, created_at, updated_at';

/** Transient failures worth running the whole transaction again for. */
const RETRYABLE = new Set(['40001' /* serialization_failure */, '40P01' /* deadlock_detected */]);

/**
 * BIGINT (counts, sizes, seq) and NUMERIC (sums) arrive as strings by default, to keep
 * precision; every such value here is below 2^53 by design, so numbers are exact. Set per
 * pool, not on pg's global parsers, so other users of pg in the process are unaffected.
 */
const NUMERIC_OIDS = new Set([20 /* int8 */, 1700 /* numeric */]);
const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    NUMERIC_OIDS.has(oid) && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as CustomTypesConfig['getTypeParser'],
};

export class PostgresMetadataStore implements MetadataStore {
  private readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  private readonly maxAttempts: number;
  private closed = false;
  /** Where the database is, for errors: host, port and database, never the credentials. */
  private readonly where: string;

  constructor(options: PostgresMetadataStoreOptions) {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
      fail('CONFIG_INVALID', `schema ${JSON.stringify(options.schema)} is not a valid schema name (expected lower-case letters, digits and _, at most 63)`);
    }
    this.schema = options.schema;
    this.where = placeOf(options);
    this.maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 4));
    this.pool = new pg.Pool({
      ...options.pool,
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      max: options.poolSize ?? options.pool?.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? options.pool?.connectionTimeoutMillis ?? 5000,
      types: TYPES,
      // Set at connection start-up, so every pooled connection sees the schema from its first query.
      ...(options.schema !== undefined ? { options: `-c search_path=${quoteIdentifier(options.schema)}` } : {}),
    });
    // An idle connection that dies (server restart, network) is reported here; without a
    // listener it would crash the process. The pool drops it and the next query reconnects,
    // while ping() fails and /readyz reports the database as unavailable.
    this.pool.on('error', () => undefined);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect().catch((error: unknown) => {
      throw new VitrineError('UNAVAILABLE', `the metadata store cannot reach PostgreSQL at ${this.where}: ${reasonOf(error)}`);
    });
    try {
      await applyPostgresMigrations(client, this.schema);
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  // ---- artifacts -------------------------------------------------------------------------

  async insertArtifact(artifact: ArtifactRecord, event: NewEvent, options: { unique: boolean; limit?: CountLimit }): Promise<StoredEvent> {
    return this.write(async (tx) => {
      if (options.limit) await tx.lockOwner(artifact.owner);
      await tx.insertRow(artifact, options.unique);
      await tx.insertChildren(artifact);
      if (options.limit) await tx.enforceLimit(artifact, options.limit);
      return tx.appendEvent(event);
    });
  }

  async replaceArtifact(next: ArtifactRecord, expectedRevision: number, event: NewEvent, options: { unique: boolean }): Promise<StoredEvent> {
    return this.write(async (tx) => {
      await tx.replaceRow({ next, expectedRevision, event }, options.unique);
      return tx.appendEvent(event);
    });
  }

  async deleteArtifact(id: string, expectedRevision: number, event: NewEvent): Promise<{ event: StoredEvent; blobs: BlobRecord[] }> {
    return this.write(async (tx) => {
      const [blobs] = await loadBlobs(tx.client, [id]);
      if ((await tx.query('DELETE FROM artifacts WHERE id = $1 AND revision = $2', [id, expectedRevision])).rowCount === 0) {
        await tx.failMissingOrStale(id, expectedRevision);
      }
      return { event: await tx.appendEvent(event), blobs };
    });
  }

  async getArtifacts(ids: readonly string[]): Promise<(ArtifactRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<ArtifactRow>(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts a WHERE a.id = ANY($1::text[])`, [[...new Set(ids)]]);
    const byId = new Map((await this.hydrate(rows)).map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listArtifacts(query: ListQuery): Promise<ArtifactRecord[]> {
    const { sql, params } = compileList(postgresDialect, query, ARTIFACT_COLUMNS);
    return this.hydrate(await this.rows<ArtifactRow>(sql, params));
  }

  async countArtifacts(where: Condition): Promise<number> {
    const { sql, params } = compileCount(postgresDialect, where);
    return (await this.rows<{ n: number }>(sql, params))[0].n;
  }

  /** The plan of `listArtifacts(query)` as `EXPLAIN (FORMAT JSON)` gives it. */
  async explainList(query: ListQuery): Promise<unknown> {
    const { sql, params } = compileList(postgresDialect, query, ARTIFACT_COLUMNS);
    return (await this.rows<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, params))[0]['QUERY PLAN'];
  }

  /**
   * Runs `fn` with a connection of this store's pool, for diagnostics, bulk fixtures and
   * tests; writes through it bypass the event log.
   */
  async withConnection<R>(fn: (client: PoolClient) => Promise<R>): Promise<R> {
    const client = await this.pool.connect();
    try {
      return await fn(client);
    } finally {
      client.release();
    }
  }

  // ---- members ---------------------------------------------------------------------------

  async getMembers(artifactIds: readonly string[]): Promise<MemberRecord[][]> {
    if (artifactIds.length === 0) return [];
    const rows = await this.rows<MemberRecord>(
      `SELECT artifact_id AS "artifactId", member, status, created_at AS "createdAt", updated_at AS "updatedAt"
       FROM artifact_members WHERE artifact_id = ANY($1::text[]) ORDER BY created_at, member`,
      [[...artifactIds]],
    );
    return groupBy(artifactIds, rows, (m) => m.artifactId);
  }

  async insertMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent> {
    return this.write(async (tx) => {
      await tx.bumpRevision(member.artifactId, event);
      await tx.query(
        'INSERT INTO artifact_members (artifact_id, member, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)',
        [member.artifactId, member.member, member.status, member.createdAt, member.updatedAt],
      );
      return tx.appendEvent(event);
    }, { artifact_members_pkey: () => new VitrineError('MEMBER_EXISTS', `project ${member.member} is already a member`) });
  }

  async updateMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent> {
    return this.write(async (tx) => {
      await tx.bumpRevision(member.artifactId, event);
      const { rowCount } = await tx.query(
        'UPDATE artifact_members SET status = $1, updated_at = $2 WHERE artifact_id = $3 AND member = $4',
        [member.status, member.updatedAt, member.artifactId, member.member],
      );
      if (rowCount === 0) fail('MEMBER_NOT_FOUND', `project ${member.member} is not a member`);
      return tx.appendEvent(event);
    });
  }

  async deleteMember(artifactId: string, member: string, event: NewEvent): Promise<StoredEvent> {
    return this.write(async (tx) => {
      await tx.bumpRevision(artifactId, event);
      if ((await tx.query('DELETE FROM artifact_members WHERE artifact_id = $1 AND member = $2', [artifactId, member])).rowCount === 0) {
        fail('MEMBER_NOT_FOUND', `project ${member} is not a member`);
      }
      return tx.appendEvent(event);
    });
  }

  // ---- links -----------------------------------------------------------------------------

  async getLinks(sourceIds: readonly string[]): Promise<LinkRecord[][]> {
    if (sourceIds.length === 0) return [];
    const rows = await this.rows<LinkRecord>(
      `SELECT source_id AS "sourceId", name, target_id AS "targetId", created_at AS "createdAt"
       FROM artifact_links WHERE source_id = ANY($1::text[]) ORDER BY name, created_at, target_id`,
      [[...sourceIds]],
    );
    return groupBy(sourceIds, rows, (l) => l.sourceId);
  }

  async insertLink(link: LinkRecord, replace: boolean, event: NewEvent, options: { foreignTarget?: boolean } = {}): Promise<StoredEvent> {
    return this.write(async (tx) => {
      await tx.bumpRevision(link.sourceId, event);
      if (replace) {
        await tx.query('DELETE FROM artifact_links WHERE source_id = $1 AND name = $2 AND target_id <> $3', [link.sourceId, link.name, link.targetId]);
      }
      // Links are soft references (no foreign key on the target): a target deleted later
      // leaves a dangling link, but a link must name an existing artifact when it is made.
      if (!options.foreignTarget && (await tx.query('SELECT 1 FROM artifacts WHERE id = $1', [link.targetId])).rowCount === 0) fail('LINK_INVALID', `link target ${link.targetId} does not exist`);
      // An existing identical link stays as it is (with its createdAt): adding it is idempotent.
      await tx.query(
        'INSERT INTO artifact_links (source_id, name, target_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, name, target_id) DO NOTHING',
        [link.sourceId, link.name, link.targetId, link.createdAt],
      );
      return tx.appendEvent(event);
    });
  }

  async deleteLinks(sourceId: string, name: string, targetId: string | undefined, event: NewEvent): Promise<{ event: StoredEvent; removed: number }> {
    return this.write(async (tx) => {
      await tx.bumpRevision(sourceId, event);
      const { rowCount } = targetId === undefined
        ? await tx.query('DELETE FROM artifact_links WHERE source_id = $1 AND name = $2', [sourceId, name])
        : await tx.query('DELETE FROM artifact_links WHERE source_id = $1 AND name = $2 AND target_id = $3', [sourceId, name, targetId]);
      return { event: await tx.appendEvent(event), removed: rowCount ?? 0 };
    });
  }

  // ---- blobs -----------------------------------------------------------------------------

  async getBlobs(artifactIds: readonly string[]): Promise<BlobRecord[][]> {
    if (artifactIds.length === 0) return [];
    return loadBlobs(this.pool, artifactIds);
  }

  async beginUpload(upload: UploadRecord, limit: ByteLimit, write?: ArtifactWrite): Promise<StoredEvent | null> {
    const blobName = `${upload.field}${upload.key ? `/${upload.key}` : ''}`;
    return this.write(async (tx) => {
      const checksTotal = limit.maxTotal !== undefined && limit.maxTotal >= 0;
      const checksType = limit.maxOfType !== undefined && limit.maxOfType >= 0;
      if (checksTotal || checksType) await tx.lockOwner(upload.owner);
      if (write) await tx.replaceRow(write);
      if (checksTotal) await tx.enforceBytes(upload, null, limit.maxTotal!);
      if (checksType) await tx.enforceBytes(upload, upload.typeName, limit.maxOfType!);
      await tx.query(
        `INSERT INTO blob_uploads (id, artifact_id, field, key, owner, type_name, reserved, content_type, started_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [upload.id, upload.artifactId, upload.field, upload.key, upload.owner, upload.typeName, upload.reserved, upload.contentType, upload.startedAt, upload.expiresAt],
      );
      return write ? tx.appendEvent(write.event) : null;
    }, {
      ux_blob_uploads_blob: () => new VitrineError('BLOB_BUSY', `another upload of ${blobName} is running`),
      blob_uploads_artifact_id_fkey: () => new VitrineError('NOT_FOUND', `artifact ${upload.artifactId} does not exist`),
    });
  }

  async renewUpload(uploadId: string, expiresAt: string): Promise<boolean> {
    return ((await this.pool.query('UPDATE blob_uploads SET expires_at = $1 WHERE id = $2', [expiresAt, uploadId])).rowCount ?? 0) > 0;
  }

  async completeUpload(uploadId: string, blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }> {
    return this.write(async (tx) => {
      if ((await tx.query('DELETE FROM blob_uploads WHERE id = $1', [uploadId])).rowCount === 0) {
        fail('GONE', 'the upload was abandoned (its artifact was deleted, or it was swept as stale)');
      }
      return tx.storeBlob(blob, write);
    });
  }

  async abortUpload(uploadId: string, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(async (tx) => {
      await tx.query('DELETE FROM blob_uploads WHERE id = $1', [uploadId]);
      if (!write) return null;
      await tx.replaceRow(write);
      return tx.appendEvent(write.event);
    });
  }

  async listUploads(expiredBefore?: string): Promise<UploadRecord[]> {
    const rows = expiredBefore === undefined
      ? await this.rows<UploadRow>('SELECT * FROM blob_uploads ORDER BY started_at, id')
      : await this.rows<UploadRow>('SELECT * FROM blob_uploads WHERE expires_at < $1 ORDER BY started_at, id', [expiredBefore]);
    return rows.map(uploadFromRow);
  }

  async putBlob(blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }> {
    return this.write(async (tx) => {
      if ((await tx.query('SELECT 1 FROM blob_uploads WHERE artifact_id = $1 AND field = $2 AND key = $3', [blob.artifactId, blob.field, blob.key])).rowCount) {
        fail('BLOB_BUSY', `an upload of ${blob.field}${blob.key ? `/${blob.key}` : ''} is running`);
      }
      return tx.storeBlob(blob, write);
    });
  }

  async deleteBlob(artifactId: string, field: string, key: string, write: ArtifactWrite): Promise<{ event: StoredEvent; removed: BlobRecord }> {
    return this.write(async (tx) => {
      const { rows } = await tx.query<BlobRow>(`DELETE FROM artifact_blobs WHERE artifact_id = $1 AND field = $2 AND key = $3 RETURNING ${BLOB_COLUMNS}`, [artifactId, field, key]);
      if (rows.length === 0) fail('NOT_FOUND', `no blob ${field}${key ? `/${key}` : ''}`);
      await tx.replaceRow(write);
      return { event: await tx.appendEvent(write.event), removed: blobFromRow(rows[0]) };
    });
  }

  async referencedLocations(store: string, locations: readonly string[]): Promise<Set<string>> {
    if (locations.length === 0) return new Set();
    const wanted = [...new Set(locations)];
    // Primary locations through ix_artifact_blobs_location; copies through the GIN index of
    // their locations (only the blobs holding one of them are read), then by store. The
    // batch reaches ?| through a sub-select: seeing a long array, the planner prices the
    // index at one probe per element and prefers a full scan, which is many times slower.
    const rows = await this.rows<{ location: string }>(
      `SELECT location FROM artifact_blobs WHERE store = $1 AND location = ANY($2::text[])
       UNION
       SELECT c.copy->>'location' FROM artifact_blobs CROSS JOIN jsonb_array_elements(copies) AS c(copy)
       WHERE copies <> '[]' AND ${COPY_LOCATIONS_EXPRESSION} ?| (SELECT $2::text[])
         AND c.copy->>'store' = $1 AND c.copy->>'location' = ANY($2::text[])`,
      [store, wanted],
    );
    return new Set(rows.map((r) => r.location));
  }

  // ---- tasks -----------------------------------------------------------------------------

  async insertTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(async (tx) => {
      if (write) await tx.replaceRow(write);
      await tx.query(`INSERT INTO tasks (${TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, taskValues(task));
      return write ? tx.appendEvent(write.event) : null;
    });
  }

  async updateTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null> {
    return this.write(async (tx) => {
      const { rowCount } = await tx.query(
        `UPDATE tasks SET type = $2, status = $3, image_id = $4, owner = $5, user_id = $6, request_id = $7, input = $8, result = $9,
           message = $10, created_at = $11, updated_at = $12, expires_at = $13, lease_expires_at = $14, attempts = $15
         WHERE id = $1`,
        taskValues(task),
      );
      if (rowCount === 0) fail('NOT_FOUND', `task ${task.id} does not exist`);
      if (!write) return null;
      await tx.replaceRow(write);
      return tx.appendEvent(write.event);
    });
  }

  async getTasks(ids: readonly string[]): Promise<(TaskRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::text[])`, [[...new Set(ids)]]);
    const byId = new Map(rows.map((r) => [r.id, taskFromRow(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listTasks(imageId: string): Promise<TaskRecord[]> {
    const rows = await this.rows<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE image_id = $1 ORDER BY created_at DESC, id DESC`, [imageId]);
    return rows.map(taskFromRow);
  }

  async queryTasks(query: TaskQuery): Promise<TaskRecord[]> {
    const { sql, params } = compileTaskQuery(postgresDialect, query, TASK_COLUMNS);
    return (await this.rows<TaskRow>(sql, params)).map(taskFromRow);
  }

  async claimTask(now: string, leaseExpiresAt: string): Promise<TaskRecord | null> {
    // One statement. SKIP LOCKED passes over a candidate another claimer has locked, and a
    // candidate claimed and committed meanwhile is re-checked against the WHERE (its lease
    // is now in the future) and dropped: two claimers never get the same task.
    const rows = await this.rows<TaskRow>(
      `UPDATE tasks t SET status = 'processing', lease_expires_at = $2, attempts = t.attempts + 1, updated_at = $1
       FROM (SELECT id FROM tasks
             WHERE status IN ('pending', 'processing') AND (status = 'pending' OR lease_expires_at < $1)
             ORDER BY created_at, id LIMIT 1
             FOR UPDATE SKIP LOCKED) AS c
       WHERE t.id = c.id
       RETURNING ${TASK_COLUMNS.split(', ').map((column) => `t.${column}`).join(', ')}`,
      [now, leaseExpiresAt],
    );
    return rows.length > 0 ? taskFromRow(rows[0]) : null;
  }

  async renewTask(id: string, leaseExpiresAt: string): Promise<boolean> {
    return ((await this.pool.query(`UPDATE tasks SET lease_expires_at = $1 WHERE id = $2 AND status = 'processing'`, [leaseExpiresAt, id])).rowCount ?? 0) > 0;
  }

  async pruneTasks(before: string): Promise<number> {
    return (await this.pool.query(`DELETE FROM tasks WHERE status IN ('success', 'failure') AND expires_at < $1`, [before])).rowCount ?? 0;
  }

  // ---- events ----------------------------------------------------------------------------

  async appendEvents(events: readonly NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    return this.write(async (tx) => {
      const stored: StoredEvent[] = [];
      for (const e of events) stored.push(await tx.appendEvent(e));
      return stored;
    });
  }

  async readEvents(afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.rows<EventRow>('SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, Math.max(0, Math.floor(limit))]);
    return rows.map(eventFromRow);
  }

  async pruneEvents(keep: number): Promise<void> {
    // Deletes up to the newest event that is not kept; with fewer than `keep + 1` events the bound is NULL and nothing goes.
    await this.pool.query('DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET $1)', [Math.max(0, Math.floor(keep))]);
  }

  // ---- quotas ----------------------------------------------------------------------------

  async getQuotas(projectId: string): Promise<Record<string, number>> {
    const rows = await this.rows<{ name: string; value: number }>('SELECT name, value FROM quotas WHERE project_id = $1 ORDER BY name', [projectId]);
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  async setQuotas(projectId: string, quotas: Record<string, number>): Promise<void> {
    await this.write(async (tx) => {
      await tx.query('DELETE FROM quotas WHERE project_id = $1', [projectId]);
      const entries = Object.entries(quotas);
      if (entries.length === 0) return;
      await tx.query(
        'INSERT INTO quotas (project_id, name, value) SELECT $1, n, v FROM unnest($2::text[], $3::bigint[]) AS q(n, v)',
        [projectId, entries.map(([n]) => n), entries.map(([, v]) => v)],
      );
    });
  }

  async usage(projectId: string): Promise<Usage> {
    const rows = await this.rows<{ type_name: string; n: number; bytes: number }>(
      // Correlated per artifact so only the project's blob rows are read, through their primary key.
      `SELECT a.type_name, COUNT(*) AS n,
         COALESCE(SUM((SELECT SUM(b.size) FROM artifact_blobs b WHERE b.artifact_id = a.id AND NOT b.external)), 0)
         + COALESCE(SUM((SELECT SUM(u.reserved) FROM blob_uploads u WHERE u.artifact_id = a.id)), 0) AS bytes
       FROM artifacts a
       WHERE a.owner = $1 AND a.status <> 'deleted'
       GROUP BY a.type_name ORDER BY a.type_name`,
      [projectId],
    );
    return {
      projectId,
      counts: Object.fromEntries(rows.map((r) => [r.type_name, r.n])),
      bytes: Object.fromEntries(rows.map((r) => [r.type_name, r.bytes])),
    };
  }

  // ---- metadefs --------------------------------------------------------------------------

  async listMetadefs(query: MetadefQuery): Promise<MetadefRecord[]> {
    const rows = await this.rows<MetadefRow>(
      `SELECT * FROM metadefs WHERE kind = $1
         AND ($2::text[] IS NULL OR namespace = ANY($2::text[]))
         AND ($3::text[] IS NULL OR name = ANY($3::text[]))
       ORDER BY namespace, created_at, seq`,
      [query.kind, query.namespaces ? [...query.namespaces] : null, query.names ? [...query.names] : null],
    );
    return rows.map(metadefFromRow);
  }

  async insertMetadefs(records: readonly MetadefRecord[], options: MetadefInsertOptions = {}): Promise<void> {
    await this.write(async (tx) => {
      if (options.replace) await tx.query('DELETE FROM metadefs WHERE namespace = $1 AND kind = $2', [options.replace.namespace, options.replace.kind]);
      for (const r of options.ensure ?? []) await insertMetadef(tx, r, true);
      for (const r of records) await insertMetadef(tx, r, false);
    }, metadefKeyErrors(records));
  }

  async updateMetadef(key: MetadefKey, next: MetadefRecord): Promise<void> {
    await this.write(async (tx) => {
      const changed = (await tx.query(
        `UPDATE metadefs SET namespace = $1, kind = $2, name = $3, owner = $4, visibility = $5, protected = $6, body = $7, created_at = $8, updated_at = $9
         WHERE namespace = $10 AND kind = $11 AND name = $12`,
        [...metadefValues(next), key.namespace, key.kind, key.name],
      )).rowCount ?? 0;
      if (changed === 0) fail('METADEF_NOT_FOUND', `no ${key.kind} ${key.name} in namespace ${key.namespace}`);
      // A namespace's rows follow it when it is renamed (the new name is free: its row just moved there).
      if (key.kind === 'namespace' && next.namespace !== key.namespace) {
        await tx.query(`UPDATE metadefs SET namespace = $1 WHERE namespace = $2 AND kind <> 'namespace'`, [next.namespace, key.namespace]);
      }
    }, metadefKeyErrors([next]));
  }

  async deleteMetadefs(namespace: string, kind: MetadefKind, name?: string): Promise<number> {
    return this.write(async (tx) => {
      const gone = (await tx.query('DELETE FROM metadefs WHERE namespace = $1 AND kind = $2 AND ($3::text IS NULL OR name = $3)', [namespace, kind, name ?? null])).rowCount ?? 0;
      if (kind === 'namespace' && gone > 0) await tx.query('DELETE FROM metadefs WHERE namespace = $1', [namespace]);
      return gone;
    });
  }

  async seedMetadefs(seed: string, records: readonly MetadefRecord[]): Promise<boolean> {
    return this.write(async (tx) => {
      // Instances starting together: the loser waits on the seed row's key, then inserts nothing.
      const first = (await tx.query('INSERT INTO metadef_seeds (id, applied_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [seed, new Date().toISOString()])).rowCount ?? 0;
      if (first === 0) return false;
      for (const r of records) await insertMetadef(tx, r, true);
      return true;
    });
  }

  // ---- internals -------------------------------------------------------------------------

  private async rows<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /**
   * Runs `fn` in one transaction, retrying it from the start on deadlock or serialization
   * failure. Unique violations of the constraints named in `uniqueErrors` become those
   * domain errors (the artifact keys are mapped for every write).
   */
  private async write<R>(fn: (tx: WriteTransaction) => Promise<R>, uniqueErrors: ConstraintErrors = {}): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(new WriteTransaction(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // A connection that cannot even roll back is discarded rather than returned to the pool.
        await client.query('ROLLBACK').catch((rollbackError: Error) => { broken = rollbackError; });
        if (RETRYABLE.has(sqlStateOf(err) ?? '') && attempt < this.maxAttempts) continue;
        throw translate(err, uniqueErrors);
      } finally {
        client.release(broken);
      }
    }
  }

  /** Rows to records, with tags and properties loaded in one query each for the whole page. */
  private async hydrate(rows: ArtifactRow[]): Promise<ArtifactRecord[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [tagRows, propertyRows] = await Promise.all([
      this.rows<{ artifact_id: string; tag: string }>('SELECT artifact_id, tag FROM artifact_tags WHERE artifact_id = ANY($1::text[]) ORDER BY artifact_id, position', [ids]),
      this.rows<{ artifact_id: string; name: string; value: string }>('SELECT artifact_id, name, value FROM artifact_properties WHERE artifact_id = ANY($1::text[]) ORDER BY artifact_id, name', [ids]),
    ]);
    const tags = new Map<string, string[]>();
    for (const t of tagRows) push(tags, t.artifact_id, t.tag);
    const properties = new Map<string, [string, string][]>();
    for (const p of propertyRows) push(properties, p.artifact_id, [p.name, p.value]);
    return rows.map((r) => ({
      id: r.id,
      typeName: r.type_name,
      name: r.name,
      version: r.version,
      status: r.status,
      visibility: r.visibility,
      owner: r.owner,
      tags: tags.get(r.id) ?? [],
      // fromEntries defines own properties, so even a property named __proto__ survives.
      properties: Object.fromEntries(properties.get(r.id) ?? []),
      fields: r.fields,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      activatedAt: r.activated_at,
      revision: r.revision,
    }));
  }
}

type ConstraintErrors = Readonly<Record<string, () => VitrineError>>;

/** The artifact keys, which any write that touches `artifacts` may violate. */
const ARTIFACT_KEY_ERRORS: ConstraintErrors = {
  artifacts_pkey: () => new VitrineError('DUPLICATE_ID', 'an artifact with this id exists'),
  ux_artifacts_version: () => new VitrineError('DUPLICATE_VERSION', 'an artifact with this type, owner, name and version exists'),
};

interface PgError {
  code?: unknown;
  constraint?: unknown;
}

function sqlStateOf(err: unknown): string | undefined {
  const code = (err as PgError | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Constraint violations (SQLSTATE 23505 unique, 23503 foreign key) to domain errors, by constraint name. */
function translate(err: unknown, errors: ConstraintErrors): unknown {
  const state = sqlStateOf(err);
  if (state !== '23505' && state !== '23503') return err;
  const constraint = (err as PgError).constraint;
  if (typeof constraint !== 'string') return err;
  const make = Object.prototype.hasOwnProperty.call(errors, constraint) ? errors[constraint] : ARTIFACT_KEY_ERRORS[constraint];
  return make ? make() : err;
}

function metadefValues(r: MetadefRecord): unknown[] {
  return [r.namespace, r.kind, r.name, r.owner, r.visibility, r.protected, JSON.stringify(r.body), r.createdAt, r.updatedAt];
}

async function insertMetadef(tx: WriteTransaction, r: MetadefRecord, ifAbsent: boolean): Promise<void> {
  await tx.query(
    `INSERT INTO metadefs (namespace, kind, name, owner, visibility, protected, body, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)${ifAbsent ? ' ON CONFLICT (namespace, kind, name) DO NOTHING' : ''}`,
    metadefValues(r),
  );
}

/** A taken catalog key, named after the first record written (the one a single-row write is about). */
function metadefKeyErrors(records: readonly MetadefRecord[]): ConstraintErrors {
  const r = records[0];
  const what = !r ? 'a metadef with this key' : r.kind === 'namespace' ? `namespace ${r.name}` : `${r.kind} ${r.name} in namespace ${r.namespace}`;
  return { metadefs_pkey: () => new VitrineError('METADEF_EXISTS', `${what} already exists`) };
}

/** The statements of one write transaction on one pooled connection. */
class WriteTransaction {
  constructor(readonly client: PoolClient) {}

  query<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.client.query<R>(sql, params);
  }

  /**
   * Serialises the quota checks of one owner across every instance until commit. Keyed by
   * schema and owner: a hash collision only makes two owners queue, it never lets one pass.
   */
  async lockOwner(owner: string): Promise<void> {
    await this.query(`SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2))`, [LOCK_SPACE.owners, owner]);
  }

  async insertRow(a: ArtifactRecord, unique: boolean): Promise<void> {
    const v = encodeVersion(a.version);
    await this.query(
      `INSERT INTO artifacts (id, type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner,
         fields, created_at, updated_at, activated_at, revision, unique_scope)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      [a.id, a.typeName, a.name, a.version, v.prefix, v.suffix, v.meta, a.status, a.visibility, a.owner,
        JSON.stringify(a.fields), a.createdAt, a.updatedAt, a.activatedAt, a.revision, unique ? 1 : null],
    );
  }

  /** Tags (keeping their order, without repeats) and properties, one statement each. */
  async insertChildren(a: ArtifactRecord): Promise<void> {
    const tags = [...new Set(a.tags)];
    if (tags.length > 0) {
      await this.query(
        'INSERT INTO artifact_tags (artifact_id, tag, position) SELECT $1, t.tag, t.n - 1 FROM unnest($2::text[]) WITH ORDINALITY AS t(tag, n)',
        [a.id, tags],
      );
    }
    const properties = Object.entries(a.properties);
    if (properties.length > 0) {
      await this.query(
        'INSERT INTO artifact_properties (artifact_id, name, value) SELECT $1, p.name, p.value FROM unnest($2::text[], $3::text[]) AS p(name, value)',
        [a.id, properties.map(([n]) => n), properties.map(([, v]) => v)],
      );
    }
  }

  /** Counts the owner's other live artifacts (under the owner lock); a negative limit means unlimited (Glare's -1). */
  async enforceLimit(a: ArtifactRecord, limit: CountLimit): Promise<void> {
    const count = async (typeName: string | null) =>
      (await this.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM artifacts WHERE owner = $1 AND ($2::text IS NULL OR type_name = $2) AND status <> 'deleted' AND id <> $3`,
        [a.owner, typeName, a.id],
      )).rows[0].n;
    if (limit.maxTotal !== undefined && limit.maxTotal >= 0 && (await count(null)) >= limit.maxTotal) {
      fail('QUOTA_EXCEEDED', `project ${a.owner} may have at most ${limit.maxTotal} artifacts`, { limit: limit.maxTotal });
    }
    if (limit.maxOfType !== undefined && limit.maxOfType >= 0 && (await count(a.typeName)) >= limit.maxOfType) {
      fail('QUOTA_EXCEEDED', `project ${a.owner} may have at most ${limit.maxOfType} ${a.typeName}`, { limit: limit.maxOfType, typeName: a.typeName });
    }
  }

  /** QUOTA_EXCEEDED unless the owner's stored bytes plus reservations (under the owner lock) leave room for this upload. */
  async enforceBytes(upload: UploadRecord, typeName: string | null, max: number): Promise<void> {
    const { used } = (await this.query<{ used: number }>(
      `SELECT
         COALESCE((SELECT SUM(b.size) FROM artifact_blobs b JOIN artifacts a ON a.id = b.artifact_id
                   WHERE a.owner = $1 AND NOT b.external AND ($2::text IS NULL OR a.type_name = $2)), 0)
       + COALESCE((SELECT SUM(u.reserved) FROM blob_uploads u WHERE u.owner = $1 AND ($2::text IS NULL OR u.type_name = $2)), 0) AS used`,
      [upload.owner, typeName],
    )).rows[0];
    if (used + upload.reserved > max) {
      const scope = typeName ? ` of ${typeName}` : '';
      fail('QUOTA_EXCEEDED', `project ${upload.owner} may store at most ${max} bytes${scope}; ${used} are used and this upload needs up to ${upload.reserved}`, { limit: max, used });
    }
  }

  /**
   * Replaces an artifact row and its tags and properties if it is still at
   * `expectedRevision` (the caller appends the event). `unique` undefined keeps the row's scope.
   */
  async replaceRow({ next, expectedRevision }: ArtifactWrite, unique?: boolean): Promise<void> {
    if (next.revision !== expectedRevision + 1) {
      fail('INTERNAL', `an artifact write must set revision ${expectedRevision + 1}, got ${next.revision}`);
    }
    const v = encodeVersion(next.version);
    const { rowCount } = await this.query(
      `UPDATE artifacts SET type_name = $1, name = $2, version = $3, version_prefix = $4, version_suffix = $5, version_meta = $6,
         status = $7, visibility = $8, owner = $9, fields = $10, created_at = $11, updated_at = $12, activated_at = $13, revision = $14,
         unique_scope = CASE WHEN $15::boolean IS NULL THEN unique_scope WHEN $15::boolean THEN 1 END
       WHERE id = $16 AND revision = $17`,
      [next.typeName, next.name, next.version, v.prefix, v.suffix, v.meta,
        next.status, next.visibility, next.owner, JSON.stringify(next.fields), next.createdAt, next.updatedAt, next.activatedAt, next.revision,
        unique ?? null, next.id, expectedRevision],
    );
    if (rowCount === 0) await this.failMissingOrStale(next.id, expectedRevision);
    await this.query('DELETE FROM artifact_tags WHERE artifact_id = $1', [next.id]);
    await this.query('DELETE FROM artifact_properties WHERE artifact_id = $1', [next.id]);
    await this.insertChildren(next);
  }

  /** Member and link writes change the artifact too: its revision moves to the event's, guarded by CAS. */
  async bumpRevision(artifactId: string, event: NewEvent): Promise<void> {
    const expected = event.revision - 1;
    const { rowCount } = await this.query('UPDATE artifacts SET revision = $1, updated_at = $2 WHERE id = $3 AND revision = $4', [event.revision, event.at, artifactId, expected]);
    if (rowCount === 0) await this.failMissingOrStale(artifactId, expected);
  }

  async failMissingOrStale(id: string, expectedRevision: number): Promise<never> {
    const { rows } = await this.query<{ revision: number }>('SELECT revision FROM artifacts WHERE id = $1', [id]);
    if (rows.length === 0) fail('NOT_FOUND', `artifact ${id} does not exist`);
    return fail('REVISION_CONFLICT', `artifact ${id} is at revision ${rows[0].revision}, not ${expectedRevision}`, { revision: rows[0].revision });
  }

  /** Upserts a blob row with its artifact write; returns the row it replaced. */
  async storeBlob(blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }> {
    const { rows: previous } = await this.query<BlobRow>(
      `SELECT ${BLOB_COLUMNS} FROM artifact_blobs WHERE artifact_id = $1 AND field = $2 AND key = $3 FOR UPDATE`,
      [blob.artifactId, blob.field, blob.key],
    );
    await this.query(
      `INSERT INTO artifact_blobs (${BLOB_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
       ON CONFLICT (artifact_id, field, key) DO UPDATE SET status = excluded.status, size = excluded.size, md5 = excluded.md5,
         sha256 = excluded.sha256, sha512 = excluded.sha512, content_type = excluded.content_type, external = excluded.external,
         url = excluded.url, store = excluded.store, location = excluded.location, copies = excluded.copies, locations = excluded.locations, updated_at = excluded.updated_at`,
      [blob.artifactId, blob.field, blob.key, blob.status, blob.size, blob.md5, blob.sha256, blob.sha512, blob.contentType,
        blob.external, blob.url, blob.store, blob.location, copiesJson(blob), locationsJson(blob), blob.createdAt, blob.updatedAt],
    );
    await this.replaceRow(write);
    return { event: await this.appendEvent(write.event), replaced: previous.length > 0 ? blobFromRow(previous[0]) : null };
  }

  /**
   * Appends the event; call it last. The lock (held until commit) makes appends of this
   * schema take turns, so events commit in seq order: with concurrent appends, a later seq
   * could otherwise become visible first and a reader that moved past it would never see
   * the earlier one.
   */
  async appendEvent(e: NewEvent): Promise<StoredEvent> {
    const snapshot = JSON.stringify(e.snapshot); // before the lock: an unencodable snapshot fails without waiting
    await this.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [LOCK_SPACE.events]);
    const { rows } = await this.query<{ seq: number }>(
      `INSERT INTO events (kind, artifact_id, type_name, owner, visibility, from_status, to_status, revision, at, snapshot, backend)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
      [e.kind, e.artifactId, e.typeName, e.owner, e.visibility, e.from ?? null, e.to ?? null, e.revision, e.at, snapshot, e.backend ?? null],
    );
    return { ...e, seq: rows[0].seq };
  }
}

/** Stored blobs, with each blob that has a running upload shown once, as saving. */
async function loadBlobs(db: pg.Pool | PoolClient, artifactIds: readonly string[]): Promise<BlobRecord[][]> {
  const ids = [...artifactIds];
  const stored = (await db.query<BlobRow>(`SELECT ${BLOB_COLUMNS} FROM artifact_blobs WHERE artifact_id = ANY($1::text[])`, [ids])).rows;
  const uploads = (await db.query<UploadRow>('SELECT * FROM blob_uploads WHERE artifact_id = ANY($1::text[])', [ids])).rows;
  return blobsWithUploads(artifactIds, stored, uploads);
}

function placeOf(options: PostgresMetadataStoreOptions): string {
  if (options.connectionString === undefined) return `${options.pool?.host ?? 'localhost'}:${options.pool?.port ?? 5432}/${options.pool?.database ?? ''}`;
  try {
    const url = new URL(options.connectionString);
    return `${url.host}${url.pathname}`;
  } catch {
    return 'the configured URL';
  }
}

/** A driver or socket error in a few words: its code and message, without a stack. */
function reasonOf(error: unknown): string {
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}

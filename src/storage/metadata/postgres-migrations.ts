import type { PoolClient } from 'pg';
import type { Migration } from './migrations';

/**
 * The PostgreSQL schema: the same tables, keys and indexes as the SQLite one (migrations.ts),
 * under the same migration ids, as an append-only list: never edit a migration that has
 * shipped, add a new one.
 *
 * - Text that the compiler compares or sorts (ids, names, versions, owners, tags, property
 *   values, timestamps kept as ISO text) is `COLLATE "C"`, so order is byte order, as in
 *   SQLite, whatever the database's default collation.
 * - `version_prefix` packs major/minor/patch into up to 50 bits: BIGINT.
 * - `fields` and the event snapshot are JSONB.
 * - Indexes on a nullable sort column put NULLs first, as the compiler orders them
 *   (NULL lowest), so one index serves both directions.
 */
/** What the compiler reads for the boolean field os_hidden; kept literal because shipped migrations never change. */
export const OS_HIDDEN_EXPRESSION = `(CASE WHEN jsonb_typeof(fields->'os_hidden') = 'boolean' THEN (fields->>'os_hidden')::boolean END)`;

/** The locations of a blob's copies, as a JSONB array of strings; kept literal (shipped migrations never change), and the adapter queries exactly it. */
export const COPY_LOCATIONS_EXPRESSION = `jsonb_path_query_array(copies, '$[*].location')`;

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_artifacts',
    sql: `
      CREATE TABLE artifacts (
        id             TEXT COLLATE "C" NOT NULL,
        type_name      TEXT COLLATE "C" NOT NULL,
        name           TEXT COLLATE "C" NOT NULL,
        version        TEXT COLLATE "C" NOT NULL,
        version_prefix BIGINT           NOT NULL,
        version_suffix TEXT COLLATE "C" NOT NULL,
        version_meta   TEXT COLLATE "C" NOT NULL,
        status         TEXT COLLATE "C" NOT NULL,
        visibility     TEXT COLLATE "C" NOT NULL,
        owner          TEXT COLLATE "C" NOT NULL,
        fields         JSONB            NOT NULL,
        created_at     TEXT COLLATE "C" NOT NULL,
        updated_at     TEXT COLLATE "C" NOT NULL,
        activated_at   TEXT COLLATE "C",
        revision       INTEGER          NOT NULL,
        -- 1 when the row was written with unique versions, NULL otherwise (NULLs never collide).
        unique_scope   SMALLINT CHECK (unique_scope = 1),
        CONSTRAINT artifacts_pkey PRIMARY KEY (id)
      );

      CREATE UNIQUE INDEX ux_artifacts_version ON artifacts (type_name, owner, name, version_prefix, version_suffix, version_meta)
        WHERE unique_scope = 1;

      -- Listings filter by type (and often owner, status or visibility) and read in sort
      -- order, stopping after a page: each index ends with the sort column and id.
      CREATE INDEX ix_artifacts_type_created ON artifacts (type_name, created_at, id);
      CREATE INDEX ix_artifacts_type_updated ON artifacts (type_name, updated_at, id);
      CREATE INDEX ix_artifacts_type_activated ON artifacts (type_name, activated_at NULLS FIRST, id);
      CREATE INDEX ix_artifacts_type_name ON artifacts (type_name, name, version_prefix, version_suffix, version_meta, id);
      CREATE INDEX ix_artifacts_type_version ON artifacts (type_name, version_prefix, version_suffix, version_meta, id);
      CREATE INDEX ix_artifacts_owner_created ON artifacts (owner, type_name, created_at, id);
      CREATE INDEX ix_artifacts_owner_name ON artifacts (owner, type_name, name, id);
      CREATE INDEX ix_artifacts_status_updated ON artifacts (type_name, status, updated_at, id);
      CREATE INDEX ix_artifacts_visibility_created ON artifacts (visibility, type_name, created_at, id);

      CREATE TABLE artifact_tags (
        artifact_id TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        tag         TEXT COLLATE "C" NOT NULL,
        -- Keeps the order the tags were given in.
        position    INTEGER          NOT NULL,
        PRIMARY KEY (artifact_id, tag)
      );
      CREATE INDEX ix_artifact_tags_tag ON artifact_tags (tag, artifact_id);

      CREATE TABLE artifact_properties (
        artifact_id TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        name        TEXT COLLATE "C" NOT NULL,
        value       TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (artifact_id, name)
      );
      CREATE INDEX ix_artifact_properties_name_value ON artifact_properties (name, value, artifact_id);

      CREATE TABLE artifact_members (
        artifact_id TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        member      TEXT COLLATE "C" NOT NULL,
        status      TEXT COLLATE "C" NOT NULL,
        created_at  TEXT COLLATE "C" NOT NULL,
        updated_at  TEXT COLLATE "C" NOT NULL,
        CONSTRAINT artifact_members_pkey PRIMARY KEY (artifact_id, member)
      );
      CREATE INDEX ix_artifact_members_member ON artifact_members (member, status, artifact_id);

      CREATE TABLE artifact_links (
        source_id  TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        name       TEXT COLLATE "C" NOT NULL,
        target_id  TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (source_id, name, target_id)
      );
      CREATE INDEX ix_artifact_links_target ON artifact_links (target_id);

      CREATE TABLE artifact_blobs (
        artifact_id  TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        field        TEXT COLLATE "C" NOT NULL,
        key          TEXT COLLATE "C" NOT NULL,
        status       TEXT             NOT NULL,
        size         BIGINT,
        md5          TEXT,
        sha256       TEXT,
        sha512       TEXT,
        content_type TEXT,
        external     BOOLEAN          NOT NULL DEFAULT false,
        url          TEXT,
        store        TEXT,
        location     TEXT,
        created_at   TEXT             NOT NULL,
        updated_at   TEXT             NOT NULL,
        PRIMARY KEY (artifact_id, field, key)
      );

      CREATE TABLE quotas (
        project_id TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        value      BIGINT           NOT NULL,
        PRIMARY KEY (project_id, name)
      );

      -- The outbox. A sequence never goes backwards, even after pruning everything; appends
      -- are serialised (see appendEvent) so seq order is also commit order.
      CREATE TABLE events (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind        TEXT    NOT NULL,
        artifact_id TEXT    NOT NULL,
        type_name   TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        visibility  TEXT    NOT NULL,
        from_status TEXT,
        to_status   TEXT,
        revision    INTEGER NOT NULL,
        at          TEXT    NOT NULL,
        snapshot    JSONB   NOT NULL
      );
    `,
  },
  {
    id: '0002_uploads',
    sql: `
      -- Running uploads: the blob shows as saving and its reservation counts against quotas
      -- until the upload completes, fails, or its lease runs out (a dead process).
      CREATE TABLE blob_uploads (
        id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        artifact_id  TEXT COLLATE "C" NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        field        TEXT COLLATE "C" NOT NULL,
        key          TEXT COLLATE "C" NOT NULL,
        owner        TEXT COLLATE "C" NOT NULL,
        type_name    TEXT COLLATE "C" NOT NULL,
        reserved     BIGINT           NOT NULL,
        content_type TEXT,
        started_at   TEXT COLLATE "C" NOT NULL,
        expires_at   TEXT COLLATE "C" NOT NULL,
        CONSTRAINT ux_blob_uploads_blob UNIQUE (artifact_id, field, key)
      );
      CREATE INDEX ix_blob_uploads_owner ON blob_uploads (owner, type_name);
      CREATE INDEX ix_blob_uploads_expires ON blob_uploads (expires_at);
      CREATE INDEX ix_artifact_blobs_location ON artifact_blobs (store, location);
    `,
  },
  {
    id: '0003_image_listing',
    sql: `
      -- Every Glance-style image listing filters on os_hidden: index the exact expression
      -- postgresDialect.jsonField emits for a boolean field (a test pins the two together).
      CREATE INDEX ix_artifacts_os_hidden ON artifacts (type_name, ${OS_HIDDEN_EXPRESSION}, created_at, id);
    `,
  },
  {
    id: '0004_copies_and_tasks',
    sql: `
      -- Further copies of a blob's bytes in other stores, as a JSON array of {store, location}.
      -- The sweeper asks which of a batch of locations some copy still holds: the adapter
      -- matches the copies' locations with ?| against the batch, through this index of the
      -- few blobs that have copies. (Containment, copies @> ANY(…), probes once per location
      -- through the posting list of the store, which all copies in that store share: slower
      -- than a full scan.) Without fastupdate: such writes are rare, and a pending list
      -- (until vacuum) would be read linearly for every location of a batch.
      ALTER TABLE artifact_blobs ADD COLUMN copies JSONB NOT NULL DEFAULT '[]';
      CREATE INDEX ix_artifact_blobs_copy_locations ON artifact_blobs USING gin (${COPY_LOCATIONS_EXPRESSION}) WITH (fastupdate = off)
        WHERE copies <> '[]';

      -- Background jobs (image imports). No foreign key on image_id: a task outlives its
      -- image, as in Glance, and goes when pruned after it expires.
      CREATE TABLE tasks (
        id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        type             TEXT COLLATE "C" NOT NULL,
        status           TEXT COLLATE "C" NOT NULL,
        image_id         TEXT COLLATE "C" NOT NULL,
        owner            TEXT COLLATE "C" NOT NULL,
        user_id          TEXT,
        request_id       TEXT,
        input            JSONB            NOT NULL,
        result           JSONB,
        message          TEXT             NOT NULL,
        created_at       TEXT COLLATE "C" NOT NULL,
        updated_at       TEXT COLLATE "C" NOT NULL,
        expires_at       TEXT COLLATE "C",
        lease_expires_at TEXT COLLATE "C",
        attempts         INTEGER          NOT NULL DEFAULT 0
      );
      CREATE INDEX ix_tasks_image_created ON tasks (image_id, created_at DESC, id DESC);
      -- Claims read the unfinished tasks oldest first; finished ones (kept until they
      -- expire) stay out of this index.
      CREATE INDEX ix_tasks_claim ON tasks (created_at, id) INCLUDE (status, lease_expires_at) WHERE status IN ('pending', 'processing');
      CREATE INDEX ix_tasks_expires ON tasks (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    id: '0005_metadefs',
    sql: `
      CREATE TABLE metadefs (
        namespace  TEXT COLLATE "C" NOT NULL,
        kind       TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        owner      TEXT COLLATE "C",
        visibility TEXT COLLATE "C",
        protected  BOOLEAN          NOT NULL DEFAULT FALSE,
        body       JSONB            NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL,
        -- Insertion order (SQLite's rowid): ties of created_at read back in the order written.
        seq        BIGINT GENERATED ALWAYS AS IDENTITY,
        CONSTRAINT metadefs_pkey PRIMARY KEY (namespace, kind, name)
      );
      CREATE INDEX ix_metadefs_kind_name ON metadefs (kind, name, namespace);
      CREATE TABLE metadef_seeds (
        id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        applied_at TEXT COLLATE "C" NOT NULL
      );
    `,
  },
  {
    id: '0006_blob_locations',
    sql: `
      -- Image locations a client set (Glance's show_multiple_locations): a JSON array of
      -- {url, metadata}. External URLs, and the metadata of stored copies by their URL; the
      -- copies themselves stay in store/location/copies, which the sweeper reads.
      ALTER TABLE artifact_blobs ADD COLUMN locations JSONB NOT NULL DEFAULT '[]';
    `,
  },
  {
    id: '0007_children_json',
    sql: `
      -- SQLite keeps tags and properties as JSON on the artifact row (its per-row aggregate
      -- subqueries were most of a listed page); PostgreSQL still aggregates them per page.
      -- Nothing to change here: the id keeps both schemas' histories aligned.
      SELECT 1;
    `,
  },
  {
    id: '0008_tasks_created',
    sql: `
      -- The task list (GET /v2/tasks) in its default order, newest first: a page is read off
      -- this index, not sorted out of the whole table.
      CREATE INDEX ix_tasks_created ON tasks (created_at, id);
    `,
  },
  {
    id: '0009_upload_mark',
    sql: `
      -- SQLite counts upload rows for its write mark; PostgreSQL gives no mark (its sequence
      -- values commit out of order). Nothing to change here: the id keeps both histories aligned.
      SELECT 1;
    `,
  },
  {
    id: '0010_event_backend',
    sql: `
      -- The backend holding the artifact of each event (a federation's backends share this log).
      ALTER TABLE events ADD COLUMN backend TEXT;
    `,
  },
];

/** Lock keys (two-int form, so they never meet the one-bigint keys other software may use). */
export const LOCK_SPACE = {
  migrations: 0x76697431, // 'vit1'
  owners: 0x76697432,
  events: 0x76697433,
} as const;

/**
 * Applies the migrations not yet recorded, in one transaction on `client`; returns the ids
 * it applied. Instances starting together queue on an advisory lock (scoped to the schema),
 * so exactly one applies each migration and the others then find it recorded.
 */
export async function applyPostgresMigrations(client: PoolClient, schema: string | undefined, migrations: readonly Migration[] = POSTGRES_MIGRATIONS): Promise<string[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_setting($2)))', [LOCK_SPACE.migrations, 'search_path']);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = new Set((await client.query<{ id: string }>('SELECT id FROM schema_migrations')).rows.map((r) => r.id));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)', [m.id, new Date().toISOString()]);
      applied.push(m.id);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Schema names are spliced into SQL (search_path, CREATE SCHEMA), hence the strict shape. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

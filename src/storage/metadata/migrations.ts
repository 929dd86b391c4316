import type { Database } from 'better-sqlite3';

/**
 * The SQLite schema, as an append-only list: never edit a migration that has shipped, add
 * a new one. `applyMigrations` runs the missing ones in one transaction and records each
 * in `schema_migrations`, so running it again is a no-op.
 */
export interface Migration {
  id: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: '0001_artifacts',
    sql: `
      CREATE TABLE artifacts (
        id             TEXT    NOT NULL PRIMARY KEY,
        type_name      TEXT    NOT NULL,
        name           TEXT    NOT NULL,
        version        TEXT    NOT NULL,
        version_prefix INTEGER NOT NULL,
        version_suffix TEXT    NOT NULL,
        version_meta   TEXT    NOT NULL,
        status         TEXT    NOT NULL,
        visibility     TEXT    NOT NULL,
        owner          TEXT    NOT NULL,
        fields         TEXT    NOT NULL,
        created_at     TEXT    NOT NULL,
        updated_at     TEXT    NOT NULL,
        activated_at   TEXT,
        revision       INTEGER NOT NULL,
        -- 1 when the row was written with unique versions, NULL otherwise (NULLs never collide).
        unique_scope   INTEGER CHECK (unique_scope = 1)
      );

      CREATE UNIQUE INDEX ux_artifacts_version ON artifacts (type_name, owner, name, version_prefix, version_suffix, version_meta)
        WHERE unique_scope = 1;

      -- Listings filter by type (and often owner, status or visibility) and read in sort
      -- order, stopping after a page: each index ends with the sort column and id.
      CREATE INDEX ix_artifacts_type_created ON artifacts (type_name, created_at, id);
      CREATE INDEX ix_artifacts_type_updated ON artifacts (type_name, updated_at, id);
      CREATE INDEX ix_artifacts_type_activated ON artifacts (type_name, activated_at, id);
      CREATE INDEX ix_artifacts_type_name ON artifacts (type_name, name, version_prefix, version_suffix, version_meta, id);
      CREATE INDEX ix_artifacts_type_version ON artifacts (type_name, version_prefix, version_suffix, version_meta, id);
      CREATE INDEX ix_artifacts_owner_created ON artifacts (owner, type_name, created_at, id);
      CREATE INDEX ix_artifacts_owner_name ON artifacts (owner, type_name, name, id);
      CREATE INDEX ix_artifacts_status_updated ON artifacts (type_name, status, updated_at, id);
      CREATE INDEX ix_artifacts_visibility_created ON artifacts (visibility, type_name, created_at, id);

      CREATE TABLE artifact_tags (
        artifact_id TEXT    NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        tag         TEXT    NOT NULL,
        -- Keeps the order the tags were given in.
        position    INTEGER NOT NULL,
        PRIMARY KEY (artifact_id, tag)
      );
      CREATE INDEX ix_artifact_tags_tag ON artifact_tags (tag, artifact_id);

      CREATE TABLE artifact_properties (
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (artifact_id, name)
      );
      CREATE INDEX ix_artifact_properties_name_value ON artifact_properties (name, value, artifact_id);

      CREATE TABLE artifact_members (
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        member      TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (artifact_id, member)
      );
      CREATE INDEX ix_artifact_members_member ON artifact_members (member, status, artifact_id);

      CREATE TABLE artifact_links (
        source_id  TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        target_id  TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (source_id, name, target_id)
      );
      CREATE INDEX ix_artifact_links_target ON artifact_links (target_id);

      CREATE TABLE artifact_blobs (
        artifact_id  TEXT    NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        field        TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        size         INTEGER,
        md5          TEXT,
        sha256       TEXT,
        sha512       TEXT,
        content_type TEXT,
        external     INTEGER NOT NULL DEFAULT 0,
        url          TEXT,
        store        TEXT,
        location     TEXT,
        created_at   TEXT    NOT NULL,
        updated_at   TEXT    NOT NULL,
        PRIMARY KEY (artifact_id, field, key)
      );

      CREATE TABLE quotas (
        project_id TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        value      INTEGER NOT NULL,
        PRIMARY KEY (project_id, name)
      );

      -- The outbox: AUTOINCREMENT so seq never goes backwards, even after pruning everything.
      CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT    NOT NULL,
        artifact_id TEXT    NOT NULL,
        type_name   TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        visibility  TEXT    NOT NULL,
        from_status TEXT,
        to_status   TEXT,
        revision    INTEGER NOT NULL,
        at          TEXT    NOT NULL,
        snapshot    TEXT    NOT NULL
      );
    `,
  },
  {
    id: '0002_uploads',
    sql: `
      -- Running uploads: the blob shows as saving and its reservation counts against quotas
      -- until the upload completes, fails, or its lease runs out (a dead process).
      CREATE TABLE blob_uploads (
        id           TEXT    NOT NULL PRIMARY KEY,
        artifact_id  TEXT    NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        field        TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        owner        TEXT    NOT NULL,
        type_name    TEXT    NOT NULL,
        reserved     INTEGER NOT NULL,
        content_type TEXT,
        started_at   TEXT    NOT NULL,
        expires_at   TEXT    NOT NULL,
        UNIQUE (artifact_id, field, key)
      );
      CREATE INDEX ix_blob_uploads_owner ON blob_uploads (owner, type_name);
      CREATE INDEX ix_blob_uploads_expires ON blob_uploads (expires_at);
      CREATE INDEX ix_artifact_blobs_location ON artifact_blobs (store, location);
    `,
  },
  {
    id: '0003_image_listing',
    sql: `
      -- Every Glance-style image listing filters on os_hidden (hidden images stay out unless
      -- asked for): index the exact expression the SQL compiler emits, so counts are covered
      -- and the default newest-first page walks the index in order.
      CREATE INDEX ix_artifacts_os_hidden ON artifacts (type_name, json_extract(fields, '$.os_hidden'), created_at, id);
      -- Rows carry their tags as a JSON aggregate in tag order: read them in that order.
      CREATE INDEX ix_artifact_tags_position ON artifact_tags (artifact_id, position, tag);
    `,
  },
  {
    id: '0004_copies_and_tasks',
    sql: `
      -- Further copies of a blob's bytes in other stores, as a JSON array of {store, location}.
      ALTER TABLE artifact_blobs ADD COLUMN copies TEXT NOT NULL DEFAULT '[]';
      -- The sweeper asks which locations copies still reference: only blobs that have copies
      -- are read, out of this index alone (it holds the JSON), not the whole table.
      CREATE INDEX ix_artifact_blobs_copies ON artifact_blobs (copies) WHERE copies <> '[]';

      -- Background jobs (image imports). No foreign key on image_id: a task outlives its
      -- image, as in Glance, and goes when pruned after it expires.
      CREATE TABLE tasks (
        id               TEXT    NOT NULL PRIMARY KEY,
        type             TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        image_id         TEXT    NOT NULL,
        owner            TEXT    NOT NULL,
        user_id          TEXT,
        request_id       TEXT,
        input            TEXT    NOT NULL,
        result           TEXT,
        message          TEXT    NOT NULL,
        created_at       TEXT    NOT NULL,
        updated_at       TEXT    NOT NULL,
        expires_at       TEXT,
        lease_expires_at TEXT,
        attempts         INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX ix_tasks_image_created ON tasks (image_id, created_at DESC, id DESC);
      -- Claims read the unfinished tasks oldest first; finished ones (kept until they
      -- expire) stay out of this index.
      CREATE INDEX ix_tasks_claim ON tasks (created_at, id, status, lease_expires_at) WHERE status IN ('pending', 'processing');
      CREATE INDEX ix_tasks_expires ON tasks (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    id: '0005_metadefs',
    sql: `
      -- The metadef catalog: namespaces and what they hold (objects, properties, tags,
      -- resource type associations), plus the global resource types (namespace ''). A
      -- namespace's rows share its key prefix, so reading or deleting them is a range of the
      -- primary key. body is the JSON of everything nothing filters on. The implicit rowid
      -- keeps insertion order, so rows written in one batch (same created_at) read back in
      -- the order given.
      CREATE TABLE metadefs (
        namespace  TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        owner      TEXT,
        visibility TEXT,
        protected  INTEGER NOT NULL DEFAULT 0,
        body       TEXT    NOT NULL,
        created_at TEXT    NOT NULL,
        updated_at TEXT    NOT NULL,
        PRIMARY KEY (namespace, kind, name)
      );
      -- Namespaces listed, and namespaces found by the resource type they are associated with.
      CREATE INDEX ix_metadefs_kind_name ON metadefs (kind, name, namespace);
      -- Seeds (the default catalog) applied once per database, even if their rows are deleted later.
      CREATE TABLE metadef_seeds (
        id         TEXT NOT NULL PRIMARY KEY,
        applied_at TEXT NOT NULL
      );
    `,
  },
  {
    id: '0006_blob_locations',
    sql: `
      -- Image locations a client set (Glance's show_multiple_locations): a JSON array of
      -- {url, metadata}. External URLs, and the metadata of stored copies by their URL; the
      -- copies themselves stay in store/location/copies, which the sweeper reads.
      ALTER TABLE artifact_blobs ADD COLUMN locations TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    id: '0007_children_json',
    sql: `
      -- Tags and properties as JSON on the artifact row too, rewritten with every write, so a
      -- listed page reads one row per artifact; the child tables stay for filtering.
      ALTER TABLE artifacts ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE artifacts ADD COLUMN properties_json TEXT NOT NULL DEFAULT '{}';
      UPDATE artifacts SET
        tags_json = (SELECT json_group_array(tag) FROM (SELECT tag FROM artifact_tags t WHERE t.artifact_id = artifacts.id ORDER BY position)),
        properties_json = (SELECT json_group_object(name, value) FROM (SELECT name, value FROM artifact_properties p WHERE p.artifact_id = artifacts.id ORDER BY name));
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
      -- Uploads in flight show as SAVING blobs, and a blob upload of an artifact type begins
      -- and ends without an event. This counter moves with every upload row that comes or
      -- goes, whoever writes it, so the write mark (writeMark) covers them too.
      CREATE TABLE write_counters (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO write_counters (name, value) VALUES ('blob_uploads', 0);
      CREATE TRIGGER blob_upload_began AFTER INSERT ON blob_uploads
        BEGIN UPDATE write_counters SET value = value + 1 WHERE name = 'blob_uploads'; END;
      CREATE TRIGGER blob_upload_ended AFTER DELETE ON blob_uploads
        BEGIN UPDATE write_counters SET value = value + 1 WHERE name = 'blob_uploads'; END;
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

/** Applies the migrations not yet recorded; returns the ids it applied. */
export function applyMigrations(db: Database, migrations: readonly Migration[] = MIGRATIONS): string[] {
  const run = db.transaction((): string[] => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = new Set((db.prepare('SELECT id FROM schema_migrations').all() as { id: string }[]).map((r) => r.id));
    const record = db.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)');
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      db.exec(m.sql);
      record.run(m.id, new Date().toISOString());
      applied.push(m.id);
    }
    return applied;
  });
  // IMMEDIATE: two processes migrating the same file serialise instead of both trying.
  return run.immediate();
}

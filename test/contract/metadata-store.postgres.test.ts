import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { ArtifactRecord } from '../../src/domain/artifact';
import { VitrineError } from '../../src/domain/errors';
import type { MetadataStore } from '../../src/storage/metadata/port';
import { MIGRATIONS } from '../../src/storage/metadata/migrations';
import { PostgresMetadataStore } from '../../src/storage/metadata/postgres';
import { OS_HIDDEN_EXPRESSION, POSTGRES_MIGRATIONS } from '../../src/storage/metadata/postgres-migrations';
import { postgresDialect } from '../../src/storage/metadata/sql';
import { artifact, at, eventFor, metadataStoreContract, task, taskId } from './metadata-store.contract';

/**
 * Runs the contract against the real PostgreSQL, each test in a fresh schema that is
 * dropped afterwards. An unreachable server fails every test (it is never skipped).
 */
const URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schemas = new Map<MetadataStore, string>();

async function admin<R>(fn: (client: Client) => Promise<R>): Promise<R> {
  const client = new Client({ connectionString: URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${URL.replace(/\/\/[^@/]*@/, '//…@')} (${(err as Error).message}). `
      + 'These tests need a real server: start it, or point VITRINE_TEST_POSTGRES_URL at one.',
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshSchema(): Promise<string> {
  const schema = `vitrine_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE SCHEMA ${schema}`));
  return schema;
}

async function dropSchema(schema: string): Promise<void> {
  await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

function storeIn(schema: string, applicationName?: string): PostgresMetadataStore {
  return new PostgresMetadataStore({ connectionString: URL, schema, poolSize: 4, pool: applicationName ? { application_name: applicationName } : {} });
}

metadataStoreContract(
  'PostgresMetadataStore',
  async () => {
    const schema = await freshSchema();
    const store = storeIn(schema);
    schemas.set(store, schema);
    return store;
  },
  async (store) => {
    await dropSchema(schemas.get(store)!);
    schemas.delete(store);
  },
  // Another pool on the same schema, as another instance would open.
  async (store) => storeIn(schemas.get(store)!),
);

describe('PostgresMetadataStore specifics', () => {
  let schema: string;
  let stores: PostgresMetadataStore[];

  beforeEach(async () => {
    schema = await freshSchema();
    stores = [];
  });

  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await dropSchema(schema);
  });

  function open(applicationName?: string): PostgresMetadataStore {
    const store = storeIn(schema, applicationName);
    stores.push(store);
    return store;
  }

  it('records each migration once, even when instances migrate at the same time', async () => {
    const instances = [open(), open(), open()];
    await Promise.all(instances.map((s) => s.migrate()));
    await instances[0].migrate();
    const applied = await instances[0].withConnection(async (c) => (await c.query('SELECT id FROM schema_migrations ORDER BY id')).rows);
    expect(applied).toEqual(MIGRATIONS.map((m) => ({ id: m.id })));
    expect(POSTGRES_MIGRATIONS.map((m) => m.id)).toEqual(MIGRATIONS.map((m) => m.id));
  });

  it('indexes os_hidden by exactly the expression the compiler reads', () => {
    expect(OS_HIDDEN_EXPRESSION).toBe(postgresDialect.jsonField('fields', 'os_hidden', 'boolean'));
  });

  it('creates its schema when it does not exist yet, and keeps its tables there', async () => {
    await dropSchema(schema);
    const store = open();
    await store.migrate();
    const tables = await admin(async (c) => (await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema])).rows.map((r) => r.table_name));
    expect(tables).toEqual(['artifact_blobs', 'artifact_links', 'artifact_members', 'artifact_properties', 'artifact_tags', 'artifacts', 'blob_uploads', 'events', 'metadef_seeds', 'metadefs', 'quotas', 'schema_migrations', 'tasks']);
  });

  it('refuses a schema name that would need quoting', () => {
    expect(() => new PostgresMetadataStore({ connectionString: URL, schema: 'Bad"; DROP' })).toThrow('is not a valid schema name');
  });

  it('fails ping, without crashing, when the server cannot be reached', async () => {
    const store = new PostgresMetadataStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', connectionTimeoutMs: 2000 });
    stores.push(store);
    await expect(store.ping()).rejects.toThrow();
  });

  describe('across instances (two pools on one schema)', () => {
    let a: PostgresMetadataStore;
    let b: PostgresMetadataStore;
    const racers = [`vitrine-race-a-${process.pid}`, `vitrine-race-b-${process.pid}`];

    beforeEach(async () => {
      a = open(racers[0]);
      b = open(racers[1]);
      await a.migrate();
      await b.migrate();
    });

    /**
     * Holds `gate` (statements taking locks) in an open transaction until both racers are
     * blocked on a lock, then releases it, so the two writes really run at the same time.
     */
    async function race<T>(gate: string[], writes: [() => Promise<T>, () => Promise<T>]): Promise<PromiseSettledResult<T>[]> {
      return admin(async (c) => {
        await c.query(`SET search_path = ${schema}`);
        await c.query('BEGIN');
        for (const sql of gate) await c.query(sql);
        const settled = Promise.allSettled(writes.map((w) => w()));
        for (;;) {
          const { rows } = await c.query<{ n: number }>(
            `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = ANY($1) AND wait_event_type = 'Lock'`,
            [racers],
          );
          if (rows[0].n === 2) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await c.query('COMMIT');
        return settled;
      });
    }

    function codes(results: PromiseSettledResult<unknown>[]): string[] {
      return results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason instanceof VitrineError ? r.reason.code : String(r.reason))).sort();
    }

    it('lets exactly one of two replaceArtifact calls with the same expected revision win', async () => {
      const original = artifact(1);
      await a.insertArtifact(original, eventFor('created', original), { unique: false });
      const next = (name: string): ArtifactRecord => ({ ...original, name, revision: 2, updatedAt: at(50) });
      const results = await race([`SELECT 1 FROM artifacts WHERE id = '${original.id}' FOR UPDATE`], [
        () => a.replaceArtifact(next('by-a'), 1, eventFor('updated', next('by-a')), { unique: false }),
        () => b.replaceArtifact(next('by-b'), 1, eventFor('updated', next('by-b')), { unique: false }),
      ]);
      expect(codes(results)).toEqual(['REVISION_CONFLICT', 'ok']);
      const winner = results[0].status === 'fulfilled' ? 'by-a' : 'by-b';
      expect((await b.getArtifacts([original.id]))[0]).toMatchObject({ name: winner, revision: 2 });
      expect((await a.readEvents(0, 10)).map((e) => e.kind)).toEqual(['created', 'updated']);
    });

    it('lets only one of two inserts pass a count quota of 1 for the same owner', async () => {
      const first = artifact(1, { owner: 'racer' });
      const second = artifact(2, { owner: 'racer' });
      // Both writes stop at their INSERT (the table lock); without the owner lock each would
      // then count only the committed rows, see none, and both would pass.
      const results = await race(['LOCK TABLE artifacts IN SHARE MODE'], [
        () => a.insertArtifact(first, eventFor('created', first), { unique: false, limit: { maxTotal: 1 } }),
        () => b.insertArtifact(second, eventFor('created', second), { unique: false, limit: { maxTotal: 1 } }),
      ]);
      expect(codes(results)).toEqual(['QUOTA_EXCEEDED', 'ok']);
      expect(await a.countArtifacts({ op: 'eq', target: { kind: 'column', name: 'owner' }, value: 'racer' })).toBe(1);
    });

    it('lets only one of two uploads of the same blob begin', async () => {
      const target = artifact(1);
      await a.insertArtifact(target, eventFor('created', target), { unique: false });
      const upload = (id: string) => ({
        id, artifactId: target.id, field: 'image', key: '', owner: target.owner, typeName: target.typeName,
        reserved: 10, contentType: null, startedAt: at(1), expiresAt: at(1000),
      });
      const results = await race(['LOCK TABLE blob_uploads IN SHARE MODE'], [
        () => a.beginUpload(upload('u-a'), { maxTotal: 100 }),
        () => b.beginUpload(upload('u-b'), { maxTotal: 100 }),
      ]);
      expect(codes(results)).toEqual(['BLOB_BUSY', 'ok']);
      expect(await b.listUploads()).toHaveLength(1);
    });

    it('gives the one claimable task to only one of two instances claiming at the same moment', async () => {
      await a.insertTask(task(1));
      const results = await race(['LOCK TABLE tasks IN SHARE MODE'], [
        () => a.claimTask(at(10), at(40)),
        () => b.claimTask(at(10), at(40)),
      ]);
      const claimed = results.map((r) => (r.status === 'fulfilled' ? r.value?.id ?? null : String(r.reason)));
      expect(claimed).toHaveLength(2);
      expect(claimed).toContain(taskId(1));
      expect(claimed).toContain(null);
      expect(await a.getTasks([taskId(1)])).toEqual([expect.objectContaining({ status: 'processing', attempts: 1 })]);
    });

    it('passes over a task that another transaction has locked instead of waiting for it', async () => {
      await a.insertTask(task(1));
      await a.insertTask(task(2));
      const { blocked, claimed } = await admin(async (c) => {
        await c.query(`SET search_path = ${schema}`);
        await c.query('BEGIN');
        await c.query('SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE', [taskId(1)]);
        let settled = false;
        const claim = a.claimTask(at(10), at(40)).finally(() => { settled = true; });
        // Either the claim returns while the lock is held, or it shows up waiting on it.
        let waiting = false;
        while (!settled && !waiting) {
          const { rows } = await c.query<{ n: number }>(
            `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [racers[0]],
          );
          waiting = rows[0].n > 0;
          if (!waiting) await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await c.query('COMMIT');
        return { blocked: waiting, claimed: await claim };
      });
      expect(blocked).toBe(false);
      expect(claimed).toMatchObject({ id: taskId(2), status: 'processing' });
      expect(await b.claimTask(at(10), at(40))).toMatchObject({ id: taskId(1) });
    });
  });
});

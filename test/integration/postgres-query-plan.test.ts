import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Status, Visibility } from '../../src/domain/artifact';
import { accessCondition } from '../../src/domain/filters';
import { encodeVersion } from '../../src/domain/semver';
import type { Condition, ListQuery, SortKey } from '../../src/storage/metadata/port';
import { PostgresMetadataStore } from '../../src/storage/metadata/postgres';
import { keysetOf } from '../../src/storage/metadata/sql';

/**
 * Listings must stay index-driven at scale on PostgreSQL too: with 100,000 rows (and fresh
 * statistics), the plans of the queries the backends issue never scan the artifacts table
 * sequentially, and when sorting by a base column they read an index in order instead of
 * sorting. Runs against the real server, in a schema of its own.
 */
const URL = process.env.VITRINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROWS = 100_000;
const BATCH = 10_000;
const OWNERS = 40;
const STATUSES: Status[] = ['queued', 'active', 'active', 'active', 'deactivated', 'deleted'];
const VISIBILITIES: Visibility[] = ['private', 'public', 'shared', 'community'];

const eq = (name: 'typeName' | 'owner' | 'status' | 'name', value: string): Condition => ({ op: 'eq', target: { kind: 'column', name }, value });
const images = eq('typeName', 'images');
const byCreatedDesc: SortKey[] = [{ target: { kind: 'column', name: 'createdAt' }, direction: 'desc' }];
const viewer = { projectId: 'project-7', userId: 'user-7', roles: ['member' as const] };

/** The same distribution as the SQLite plan test, written in batches of unnest()ed arrays. */
async function seed(client: PoolClient): Promise<void> {
  for (let start = 0; start < ROWS; start += BATCH) {
    const cols: unknown[][] = Array.from({ length: 15 }, () => []);
    const tags: [string[], string[], number[]] = [[], [], []];
    const props: [string[], string[], string[]] = [[], [], []];
    for (let i = start; i < start + BATCH; i++) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      const created = new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString();
      const v = encodeVersion(`${i % 7}.${i % 3}.0${i % 11 === 0 ? '-rc.1' : ''}`);
      const row = [
        id, i % 10 < 7 ? 'images' : 'heat_templates', `name-${i % 5000}`, v.canonical, v.prefix, v.suffix, v.meta,
        STATUSES[i % STATUSES.length], VISIBILITIES[(i >> 2) % VISIBILITIES.length], `project-${i % OWNERS}`,
        JSON.stringify({ disk_format: i % 2 ? 'qcow2' : 'raw', size: (i * 7919) % 100_000 }),
        created, new Date(Date.UTC(2024, 6, 1) + ((i * 31) % ROWS) * 1000).toISOString(), i % 3 === 0 ? null : created, 1,
      ];
      row.forEach((value, c) => cols[c].push(value));
      (i % 50 === 0 ? ['golden', `batch-${i % 7}`] : [`batch-${i % 7}`]).forEach((t, p) => { tags[0].push(id); tags[1].push(t); tags[2].push(p); });
      if (i % 20 === 0) {
        for (const [name, value] of [['os_distro', i % 40 === 0 ? 'ubuntu' : 'fedora'], ['owner_specified.openstack.md5', `md5-${i}`]]) {
          props[0].push(id); props[1].push(name); props[2].push(value);
        }
      }
    }
    await client.query(
      `INSERT INTO artifacts (id, type_name, name, version, version_prefix, version_suffix, version_meta, status, visibility, owner,
         fields, created_at, updated_at, activated_at, revision)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[],
         $10::text[], $11::jsonb[], $12::text[], $13::text[], $14::text[], $15::int[])`,
      cols,
    );
    await client.query('INSERT INTO artifact_tags (artifact_id, tag, position) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])', tags);
    await client.query('INSERT INTO artifact_properties (artifact_id, name, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])', props);
  }
  await client.query('ANALYZE');
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

describe('PostgreSQL query plans at 100,000 artifacts', () => {
  const schema = `vitrine_plan_${randomBytes(6).toString('hex')}`;
  let store: PostgresMetadataStore;

  beforeAll(async () => {
    store = new PostgresMetadataStore({ connectionString: URL, schema, poolSize: 2 });
    await store.migrate().catch((err: Error) => {
      throw new Error(`PostgreSQL is not reachable or not usable at VITRINE_TEST_POSTGRES_URL or 127.0.0.1:5432 (${err.message})`);
    });
    await store.withConnection(seed);
  });

  afterAll(async () => {
    await store.withConnection((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    await store.close();
  });

  /** Asserts the plan never reads artifacts sequentially and, when `ordered`, has no sort step. */
  async function expectIndexed(query: ListQuery, ordered: boolean): Promise<PlanNode[]> {
    const [{ Plan }] = (await store.explainList(query)) as [{ Plan: PlanNode }];
    const all = nodes(Plan);
    const seqScans = all.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'artifacts');
    expect({ plan: Plan, seqScans }).toEqual({ plan: Plan, seqScans: [] });
    if (ordered) {
      const sorts = all.filter((n) => /Sort$/.test(n['Node Type']));
      expect({ plan: Plan, sorts }).toEqual({ plan: Plan, sorts: [] });
    }
    return all;
  }

  const indexesOf = (plan: PlanNode[]) => plan.map((n) => n['Index Name']).filter(Boolean);

  it('lists images a project may see, newest first, from the created index', async () => {
    const query: ListQuery = { where: { op: 'and', conditions: [images, accessCondition(viewer, undefined)] }, sort: byCreatedDesc, limit: 100 };
    expect(indexesOf(await expectIndexed(query, true))).toContain('ix_artifacts_type_created');
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    for (const r of rows) {
      expect(r.typeName).toBe('images');
      expect(r.owner === viewer.projectId || r.visibility === 'public' || r.visibility === 'shared').toBe(true);
    }
    expectSorted(rows.map((r) => r.createdAt), 'desc');
  });

  it('filters by owner and sorts by name', async () => {
    const query: ListQuery = { where: { op: 'and', conditions: [images, eq('owner', 'project-3')] }, sort: [{ target: { kind: 'column', name: 'name' }, direction: 'asc' }], limit: 100 };
    await expectIndexed(query, true);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.owner === 'project-3' && r.typeName === 'images')).toBe(true);
    expectSorted(rows.map((r) => [r.name, r.id].join('\u0000')), 'asc');
  });

  it('filters by status and sorts by updatedAt', async () => {
    const query: ListQuery = { where: { op: 'and', conditions: [images, eq('status', 'active')] }, sort: [{ target: { kind: 'column', name: 'updatedAt' }, direction: 'desc' }], limit: 100 };
    await expectIndexed(query, true);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.status === 'active')).toBe(true);
    expectSorted(rows.map((r) => r.updatedAt), 'desc');
  });

  it('filters by tag and by property without scanning artifacts', async () => {
    const tagged: ListQuery = { where: { op: 'and', conditions: [images, { op: 'tagsAll', tags: ['golden'] }] }, sort: byCreatedDesc, limit: 100 };
    await expectIndexed(tagged, false);
    expect((await store.listArtifacts(tagged)).every((r) => r.tags.includes('golden'))).toBe(true);

    const ubuntu: ListQuery = { where: { op: 'and', conditions: [images, { op: 'eq', target: { kind: 'property', name: 'os_distro' }, value: 'ubuntu' }] }, sort: byCreatedDesc, limit: 100 };
    await expectIndexed(ubuntu, false);
    const rows = await store.listArtifacts(ubuntu);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.properties.os_distro === 'ubuntu')).toBe(true);
  });

  it('finds the latest version of a name through the name index', async () => {
    const named: Condition = { op: 'and', conditions: [images, eq('name', 'name-42')] };
    const query: ListQuery = { where: { op: 'latest', within: named }, sort: [{ target: { kind: 'version' }, direction: 'desc' }], limit: 100 };
    expect(indexesOf(await expectIndexed(query, false)).join(' ')).toMatch(/ix_artifacts_type_name|ix_artifacts_owner_name/);
    expect((await store.listArtifacts(query)).length).toBeGreaterThan(0);
  });

  it('reads the next page of a keyset listing from the index, continuing where the first ended', async () => {
    const base: ListQuery = { where: { op: 'and', conditions: [images, accessCondition(viewer, undefined)] }, sort: byCreatedDesc, limit: 100 };
    const first = await store.listArtifacts(base);
    const next: ListQuery = { ...base, after: keysetOf(first[first.length - 1], base.sort) };
    await expectIndexed(next, true);
    const second = await store.listArtifacts(next);
    const both = await store.listArtifacts({ ...base, limit: 200 });
    expect([...first, ...second].map((r) => r.id)).toEqual(both.map((r) => r.id));
  });
});

function expectSorted(values: string[], direction: 'asc' | 'desc'): void {
  const sorted = [...values].sort();
  if (direction === 'desc') sorted.reverse();
  expect(values).toEqual(sorted);
}

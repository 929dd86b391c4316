import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArtifactRecord, Status, Visibility } from '../../src/domain/artifact';
import { accessCondition } from '../../src/domain/filters';
import { compareVersions } from '../../src/domain/semver';
import type { Condition, ListQuery, SortKey } from '../../src/storage/metadata/port';
import { keysetOf } from '../../src/storage/metadata/sql';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * Listings must stay index-driven at scale: with 100,000 rows, the plans of the queries the
 * backends issue use an index for the filter and, when sorting by a base column, for the
 * order too (so a page stops after `limit` rows instead of sorting everything).
 */
const ROWS = 100_000;
const OWNERS = 40;
const STATUSES: Status[] = ['queued', 'active', 'active', 'active', 'deactivated', 'deleted'];
const VISIBILITIES: Visibility[] = ['private', 'public', 'shared', 'community'];

const eq = (name: 'typeName' | 'owner' | 'status' | 'name', value: string): Condition => ({ op: 'eq', target: { kind: 'column', name }, value });
const images = eq('typeName', 'images');
const byCreatedDesc: SortKey[] = [{ target: { kind: 'column', name: 'createdAt' }, direction: 'desc' }];
const viewer = { projectId: 'project-7', userId: 'user-7', roles: ['member' as const] };

function seedRecord(i: number): ArtifactRecord {
  const created = new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString();
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    typeName: i % 10 < 7 ? 'images' : 'heat_templates',
    name: `name-${i % 5000}`,
    version: `${i % 7}.${i % 3}.0${i % 11 === 0 ? '-rc.1' : ''}`,
    status: STATUSES[i % STATUSES.length],
    visibility: VISIBILITIES[(i >> 2) % VISIBILITIES.length],
    owner: `project-${i % OWNERS}`,
    tags: i % 50 === 0 ? ['golden', `batch-${i % 7}`] : [`batch-${i % 7}`],
    properties: i % 20 === 0 ? { os_distro: i % 40 === 0 ? 'ubuntu' : 'fedora', 'owner_specified.openstack.md5': `md5-${i}` } : {},
    fields: { disk_format: i % 2 ? 'qcow2' : 'raw', size: (i * 7919) % 100_000 },
    createdAt: created,
    updatedAt: new Date(Date.UTC(2024, 6, 1) + ((i * 31) % ROWS) * 1000).toISOString(),
    activatedAt: i % 3 === 0 ? null : created,
    revision: 1,
  };
}

/** Scans of tables; a co-routine's own output (a row's tags or properties) is not a table. */
function fullScans(plan: string[]): string[] {
  return plan.filter((line) => /^SCAN \S+/.test(line) && !/\bUSING\b/.test(line) && !/VIRTUAL TABLE/.test(line) && !/^SCAN \(subquery-\d+\)$/.test(line));
}

function tempSorts(plan: string[]): string[] {
  return plan.filter((line) => line.includes('USE TEMP B-TREE FOR ORDER BY'));
}

describe('SQLite query plans at 100,000 artifacts', () => {
  let dir: string;
  let store: SqliteMetadataStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-plan-'));
    store = new SqliteMetadataStore({ path: join(dir, 'metadata.db') });
    await store.migrate();
    expect(store.bulkLoad(Array.from({ length: ROWS }, (_, i) => seedRecord(i)))).toBe(ROWS);
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Asserts the plan is index-driven and, when `ordered`, needs no sort step. */
  function expectIndexed(query: ListQuery, ordered: boolean): string[] {
    const plan = store.explainList(query);
    expect({ plan, fullScans: fullScans(plan) }).toEqual({ plan, fullScans: [] });
    if (ordered) expect({ plan, tempSorts: tempSorts(plan) }).toEqual({ plan, tempSorts: [] });
    return plan;
  }

  it('lists images a project may see, newest first, from the created index', async () => {
    const query: ListQuery = { where: { op: 'and', conditions: [images, accessCondition(viewer, undefined)] }, sort: byCreatedDesc, limit: 100 };
    const plan = expectIndexed(query, true);
    expect(plan.join('\n')).toMatch(/USING (COVERING )?INDEX ix_artifacts_type_created/);

    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    for (const r of rows) {
      expect(r.typeName).toBe('images');
      expect(r.owner === viewer.projectId || r.visibility === 'public' || r.visibility === 'shared').toBe(true);
    }
    // No accepted memberships were seeded, so shared rows are only the viewer's own.
    expect(rows.filter((r) => r.visibility === 'shared' && r.owner !== viewer.projectId)).toEqual([]);
    expectSorted(rows.map((r) => r.createdAt), 'desc');
  });

  it('filters by owner and sorts by name', async () => {
    const query: ListQuery = {
      where: { op: 'and', conditions: [images, eq('owner', 'project-3')] },
      sort: [{ target: { kind: 'column', name: 'name' }, direction: 'asc' }],
      limit: 100,
    };
    expectIndexed(query, true);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.owner === 'project-3' && r.typeName === 'images')).toBe(true);
    expectSorted(rows.map((r) => [r.name, r.id].join('\u0000')), 'asc');
  });

  it('filters by status and sorts by updatedAt', async () => {
    const query: ListQuery = {
      where: { op: 'and', conditions: [images, eq('status', 'active')] },
      sort: [{ target: { kind: 'column', name: 'updatedAt' }, direction: 'desc' }],
      limit: 100,
    };
    expectIndexed(query, true);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.status === 'active')).toBe(true);
    expectSorted(rows.map((r) => r.updatedAt), 'desc');
  });

  it('filters by tag through the tag index', async () => {
    const query: ListQuery = { where: { op: 'and', conditions: [images, { op: 'tagsAll', tags: ['golden'] }] }, sort: byCreatedDesc, limit: 100 };
    const plan = expectIndexed(query, false);
    expect(plan.join('\n')).toMatch(/artifact_tags USING (COVERING )?INDEX (ix_artifact_tags_tag|sqlite_autoindex_artifact_tags_1)/);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.tags.includes('golden'))).toBe(true);
    expectSorted(rows.map((r) => r.createdAt), 'desc');
  });

  it('filters by property name and value through the property index', async () => {
    const query: ListQuery = {
      where: { op: 'and', conditions: [images, { op: 'eq', target: { kind: 'property', name: 'os_distro' }, value: 'ubuntu' }] },
      sort: byCreatedDesc,
      limit: 100,
    };
    const plan = expectIndexed(query, false);
    expect(plan.join('\n')).toMatch(/artifact_properties USING (COVERING )?INDEX (ix_artifact_properties_name_value|sqlite_autoindex_artifact_properties_1)/);
    const rows = await store.listArtifacts(query);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.properties.os_distro === 'ubuntu')).toBe(true);
    expectSorted(rows.map((r) => r.createdAt), 'desc');
  });

  it('finds the latest version of a name through the name index', async () => {
    const named: Condition = { op: 'and', conditions: [images, eq('name', 'name-42')] };
    const query: ListQuery = { where: { op: 'latest', within: named }, sort: [{ target: { kind: 'version' }, direction: 'desc' }], limit: 100 };
    const plan = expectIndexed(query, true);
    expect(plan.join('\n')).toMatch(/ix_artifacts_type_name/);

    const all = await store.listArtifacts({ where: named, sort: [], limit: 1000 });
    const rows = await store.listArtifacts(query);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const sameKey = all.filter((x) => x.owner === r.owner);
      expect(sameKey.every((x) => compareVersions(x.version, r.version) <= 0)).toBe(true);
    }
    expect(new Set(rows.map((r) => r.owner)).size).toBe(new Set(all.map((r) => r.owner)).size);
  });

  it('reads the next page of a keyset listing from the index, continuing where the first ended', async () => {
    const base: ListQuery = { where: { op: 'and', conditions: [images, accessCondition(viewer, undefined)] }, sort: byCreatedDesc, limit: 100 };
    const first = await store.listArtifacts(base);
    const next: ListQuery = { ...base, after: keysetOf(first[first.length - 1], base.sort) };
    expectIndexed(next, true);

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

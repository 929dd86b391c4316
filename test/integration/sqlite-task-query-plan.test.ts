import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskRecord } from '../../src/domain/artifact';
import type { TaskQuery } from '../../src/storage/metadata/port';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * The task list's default order (newest first, as GET /v2/tasks and glanceclient's pages
 * without a sort key ask) is read off ix_tasks_created: a page stops after `limit` rows
 * instead of sorting every task, also after a marker.
 */
let dir: string;
let store: SqliteMetadataStore;

function task(n: number): TaskRecord {
  const at = new Date(Date.UTC(2025, 0, 1) + n * 1000).toISOString();
  return {
    id: `30000000-0000-4000-8000-${String(n).padStart(12, '0')}`, type: 'api_image_import', status: n % 2 ? 'success' : 'failure',
    imageId: `00000000-0000-4000-8000-${String(n % 100).padStart(12, '0')}`, owner: `p${n % 10}`, userId: 'u', requestId: `req-${n}`,
    input: {}, result: null, message: '', createdAt: at, updatedAt: at, expiresAt: null, leaseExpiresAt: null, attempts: 0,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-task-plan-'));
  store = new SqliteMetadataStore({ path: join(dir, 'plan.sqlite') });
  await store.migrate();
  for (let n = 0; n < 5000; n++) await store.insertTask(task(n));
  store.database.exec('ANALYZE');
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.each([
  ['newest first', { where: {}, sortKey: 'createdAt', direction: 'desc', limit: 26 }],
  ['oldest first after a marker', { where: {}, sortKey: 'createdAt', direction: 'asc', limit: 26, after: task(2500) }],
  ['sort_key=id (created_at first) after a marker', { where: {}, sortKey: 'id', direction: 'desc', limit: 26, after: task(2500) }],
] as [string, TaskQuery][])('%s: read off ix_tasks_created, no sort', (_name, query) => {
  const plan = store.explainTasks(query).join(' | ');
  expect(plan).toContain('ix_tasks_created');
  expect(plan).not.toContain('TEMP B-TREE');
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendParts } from '../../src/app/compose';
import { FederatedBackend } from '../../src/backends/federation/backend';
import type { ArtifactBackend, TaskListRequest } from '../../src/backends/port';
import { TASK_SORT_KEYS, TASK_STATUSES, type TaskRecord } from '../../src/domain/artifact';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { Principal } from '../../src/domain/policy';
import { MemoryEventBus } from '../../src/events/memory';
import { faulty, openNativeMember, type Faults, type NativeMember } from '../helpers/backends';

/**
 * The task list of three native backends merged, checked against the order one native
 * store gives when it holds every task: pages after markers (each backend's own, and
 * markers of the others, which a backend reads up to) concatenate to exactly that order.
 */
const ADMIN: Principal = { projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] };
const MEMBER: Principal = { projectId: 'p1', userId: 'u1', roles: ['member', 'reader'] };
const types = new TypeRegistry();

let dir: string;
let members: NativeMember[];
let all: NativeMember;
let fed: FederatedBackend;
const faults: Faults = {};

function at(seconds: number): string {
  return new Date(Date.UTC(2025, 0, 1) + seconds * 1000).toISOString();
}

function task(n: number): TaskRecord {
  const done = n % 3 !== 0;
  return {
    id: `20000000-0000-4000-8000-${String((n * 7919) % 1000003).padStart(12, '0')}`,
    type: 'api_image_import',
    status: TASK_STATUSES[n % 4],
    imageId: `00000000-0000-4000-8000-${String(n % 5).padStart(12, '0')}`,
    owner: `p${n % 3}`,
    userId: n % 4 === 0 ? null : `user-${n % 6}`,
    requestId: n % 5 === 0 ? null : `req-${n}`,
    input: {},
    result: null,
    message: '',
    // Ties on purpose: several tasks share a creation time.
    createdAt: at(Math.floor(n / 3)),
    updatedAt: at(100 - (n % 7)),
    expiresAt: done ? at(1000 + (n % 4)) : null,
    leaseExpiresAt: null,
    attempts: 0,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vitrine-federation-tasks-'));
  const parts: BackendParts = { types, bus: new MemoryEventBus(), paging: { defaultPageSize: 10, maxPageSize: 1000 }, blobPathPrefix: '/v1/artifacts' };
  members = await Promise.all(['a', 'b', 'c'].map((name) => openNativeMember(parts, dir, name)));
  all = await openNativeMember(parts, dir, 'all');
  for (let n = 0; n < 31; n++) {
    await members[n % 3].store.insertTask(task(n));
    await all.store.insertTask(task(n));
  }
  fed = new FederatedBackend({
    members: [members[0].backend, faulty(members[1].backend, faults), members[2].backend].map((backend: ArtifactBackend) => ({ backend })),
    types,
    // Small pages, so reading up to a foreign marker takes several requests.
    paging: { defaultPageSize: 10, maxPageSize: 4 },
  });
});

afterAll(async () => {
  await Promise.all([...members, all].map((m) => m.store.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function walk(backend: ArtifactBackend, request: Omit<TaskListRequest, 'limit' | 'afterId'>, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let afterId: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await backend.listTasks(ADMIN, { ...request, limit, ...(afterId !== undefined && { afterId }) });
    ids.push(...page.tasks.map((t) => t.id));
    expect(page.warnings).toBeUndefined();
    if (!page.hasNextPage) return ids;
    afterId = page.tasks.at(-1)!.id;
  }
  throw new Error('paging did not end');
}

test('pages through the merged list in exactly one store\'s order, for every sort key, direction and page size', async () => {
  for (const sortKey of TASK_SORT_KEYS) {
    for (const direction of ['asc', 'desc'] as const) {
      const want = (await all.backend.listTasks(ADMIN, { sortKey, direction, limit: 1000 })).tasks.map((t) => t.id);
      expect(want).toHaveLength(31);
      for (const limit of [1, 4, 7, 31]) {
        expect({ sortKey, direction, limit, ids: await walk(fed, { sortKey, direction }, limit) }).toEqual({ sortKey, direction, limit, ids: want });
      }
    }
  }
});

test('filters apply in every backend', async () => {
  const want = (await all.backend.listTasks(ADMIN, { filter: { status: 'success', owner: 'p1' }, limit: 1000 })).tasks.map((t) => t.id);
  expect(want.length).toBeGreaterThan(1);
  expect(await walk(fed, { filter: { status: 'success', owner: 'p1' } }, 2)).toEqual(want);
});

test('refuses non-admins and unknown markers; a backend that is down leaves a warning', async () => {
  await expect(fed.listTasks(MEMBER, { limit: 5 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  await expect(fed.listTasks(ADMIN, { limit: 5, afterId: '20000000-0000-4000-8000-999999999999' })).rejects.toMatchObject({ code: 'CURSOR_INVALID' });
  faults.down = true;
  try {
    const page = await fed.listTasks(ADMIN, { limit: 100 });
    expect(page.warnings).toEqual([expect.objectContaining({ backend: 'b', code: 'UPSTREAM_UNAVAILABLE' })]);
    const reachable = new Set([0, 2].flatMap((i) => Array.from({ length: 31 }, (_, n) => n).filter((n) => n % 3 === i).map((n) => task(n).id)));
    expect(new Set(page.tasks.map((t) => t.id))).toEqual(reachable);
  } finally {
    faults.down = false;
  }
});

import { randomBytes, randomUUID } from 'node:crypto';
import { serveFiles, type FileServer } from '../helpers/file-server';
import { startTestApp, type HttpResult, type TestApp, type TestCaller } from '../helpers/app';

/**
 * GET /v2/tasks (and GraphQL `tasks`) on the native store, after real imports: a glance-direct
 * and a web-download that succeed, and a web-download that fails.
 */
const DATA = randomBytes(64 * 1024 + 3);
let source: FileServer;
let app: TestApp;
const ids: { direct: string; web: string; failed: string } = { direct: '', web: '', failed: '' };
/** Every task, newest first, as the admin lists them by default. */
let all: Record<string, unknown>[];

const headers = (who: TestCaller) => ({ 'x-auth-token': app.tokens[who], accept: 'application/json' });
const get = (path: string, who: TestCaller = 'admin') => app.http('GET', path, { headers: headers(who) });

async function createImage(who: TestCaller): Promise<string> {
  const res = await app.http('POST', '/v2/images', { headers: headers(who), body: { name: 'task-list', disk_format: 'raw', container_format: 'bare' } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function importAndWait(who: TestCaller, id: string, method: Record<string, unknown>): Promise<void> {
  const res = await app.http('POST', `/v2/images/${id}/import`, { headers: headers(who), body: { method } });
  expect(res.status).toBe(202);
  for (;;) {
    const tasks = (await get(`/v2/images/${id}/tasks`, who)).body.tasks as { status: string }[];
    if (tasks.length > 0 && tasks.every((t) => t.status === 'success' || t.status === 'failure')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectGlanceError(res: HttpResult, status: number, message: string): void {
  expect({ status: res.status, message: res.body?.message }).toEqual({ status, message: expect.stringContaining(message) });
}

beforeAll(async () => {
  source = await serveFiles({ '/image.raw': DATA });
  app = await startTestApp({ imports: { pollIntervalMs: 50, webDownload: { allowedHosts: ['127.0.0.1'], allowedPorts: [] } } });

  ids.direct = await createImage('memberA');
  const staged = await fetch(`${app.baseUrl}/v2/images/${ids.direct}/stage`, { method: 'PUT', headers: { ...headers('memberA'), 'content-type': 'application/octet-stream' }, body: DATA });
  expect(staged.status).toBe(204);
  await importAndWait('memberA', ids.direct, { name: 'glance-direct' });
  ids.web = await createImage('memberB');
  await importAndWait('memberB', ids.web, { name: 'web-download', uri: `${source.url}/image.raw` });
  ids.failed = await createImage('memberA');
  await importAndWait('memberA', ids.failed, { name: 'web-download', uri: `${source.url}/missing` });

  const listed = await get('/v2/tasks');
  expect(listed.status).toBe(200);
  all = listed.body.tasks;
});

afterAll(async () => {
  await app?.close();
  await source.close();
});

const taskIdOf = async (imageId: string, who: TestCaller) => ((await get(`/v2/images/${imageId}/tasks`, who)).body.tasks as { id: string }[])[0].id;

test('admins list every project\'s tasks, newest first, as stubs without input, result or message', async () => {
  const expected = [
    { image: ids.failed, who: 'memberA', owner: 'project-a', status: 'failure' },
    { image: ids.web, who: 'memberB', owner: 'project-b', status: 'success' },
    { image: ids.direct, who: 'memberA', owner: 'project-a', status: 'success' },
  ] as const;
  const taskIds = await Promise.all(expected.map((e) => taskIdOf(e.image, e.who)));
  expect(all.map((t) => t.id)).toEqual(taskIds);
  all.forEach((task, i) => {
    expect(Object.keys(task).sort()).toEqual(['created_at', 'expires_at', 'id', 'owner', 'schema', 'self', 'status', 'type', 'updated_at']);
    expect(task).toMatchObject({ type: 'api_image_import', status: expected[i].status, owner: expected[i].owner, self: `/v2/tasks/${taskIds[i]}`, schema: '/v2/schemas/task' });
    expect(task.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
  const body = (await get('/v2/tasks')).body;
  expect(body).toEqual({ tasks: all, first: '/v2/tasks', schema: '/v2/schemas/tasks' });
});

test('non-admins are refused before anything else is checked, with Glance\'s body', async () => {
  for (const who of ['memberA', 'readerA'] as const) {
    expectGlanceError(await get('/v2/tasks', who), 403, 'You are not authorized to complete tasks_api_access action.');
    expectGlanceError(await get('/v2/tasks?sort_dir=sideways&limit=x', who), 403, 'tasks_api_access');
  }
  expect((await app.http('GET', '/v2/tasks')).status).toBe(401);
});

test('filters status, type, owner and image_id; an empty status matches nothing', async () => {
  const idsOf = async (query: string) => ((await get(`/v2/tasks?${query}`)).body.tasks as { id: string }[]).map((t) => t.id);
  expect(await idsOf('status=success')).toEqual([all[1].id, all[2].id]);
  expect(await idsOf('status=failure')).toEqual([all[0].id]);
  expect(await idsOf('status=pending')).toEqual([]);
  expect(await idsOf('owner=project-b')).toEqual([all[1].id]);
  expect(await idsOf(`image_id=${ids.direct}&status=success`)).toEqual([all[2].id]);
  // Glance accepts only the legacy type in the filter; image imports are api_image_import.
  expect(await idsOf('type=import')).toEqual([]);
  expect(await idsOf('status=')).toEqual([]);
  expect(await idsOf('created_at=2020-01-01T00:00:00Z')).toEqual([]);
  expect(await idsOf('unknown_key=1')).toEqual(all.map((t) => t.id));
});

test('sorts by any task column in either direction, created_at and id breaking ties', async () => {
  const idsOf = async (query: string) => ((await get(`/v2/tasks?${query}`)).body.tasks as { id: string }[]).map((t) => t.id);
  const reversed = all.map((t) => t.id).reverse();
  expect(await idsOf('sort_dir=asc')).toEqual(reversed);
  expect(await idsOf('sort_key=id&sort_dir=asc')).toEqual(reversed);
  expect(await idsOf('sort_key=status&sort_dir=asc')).toEqual([all[0].id, all[2].id, all[1].id]);
  expect(await idsOf('sort_key=owner&sort_dir=desc')).toEqual([all[1].id, all[0].id, all[2].id]);
  expect(await idsOf('sort_key=updated_at')).toHaveLength(3);
});

test('pages with limit and marker: next whenever a page is full, first without the marker', async () => {
  const seen: string[] = [];
  let path: string | undefined = '/v2/tasks?limit=1&sort_dir=desc';
  const pages: Record<string, unknown>[] = [];
  while (path) {
    const res = await get(path);
    expect(res.status).toBe(200);
    pages.push(res.body);
    seen.push(...(res.body.tasks as { id: string }[]).map((t) => t.id));
    path = res.body.next;
  }
  expect(seen).toEqual(all.map((t) => t.id));
  // Three full pages, then an empty one without next.
  expect(pages.map((p) => (p.tasks as unknown[]).length)).toEqual([1, 1, 1, 0]);
  expect(pages[0]).toMatchObject({ first: '/v2/tasks?limit=1&sort_dir=desc', next: `/v2/tasks?limit=1&sort_dir=desc&marker=${all[0].id}` });
  expect(pages[1].first).toBe('/v2/tasks?limit=1&sort_dir=desc');
  expect(pages[3]).not.toHaveProperty('next');

  const rest = await get(`/v2/tasks?marker=${all[0].id}&status=success`);
  expect(rest.body.tasks.map((t: { id: string }) => t.id)).toEqual([all[1].id, all[2].id]);
  expect(rest.body.first).toBe('/v2/tasks?status=success');
  expect((await get('/v2/tasks?limit=0')).body).toEqual({ tasks: [], first: '/v2/tasks?limit=0', schema: '/v2/schemas/tasks' });
  expect((await get('/v2/tasks?limit=5000')).body.tasks).toHaveLength(3);
});

test('every bad request is Glance\'s 400, in Glance\'s order', async () => {
  const unknown = randomUUID();
  expectGlanceError(await get('/v2/tasks?sort_dir=up'), 400, 'Invalid sort direction: up');
  expectGlanceError(await get('/v2/tasks?status=done'), 400, 'Invalid status value: done');
  expectGlanceError(await get('/v2/tasks?type=api_image_import'), 400, 'Invalid type value: api_image_import');
  expectGlanceError(await get('/v2/tasks?marker=not-a-uuid'), 400, 'Invalid marker format');
  expectGlanceError(await get('/v2/tasks?limit=ten'), 400, 'limit param must be an integer');
  expectGlanceError(await get('/v2/tasks?limit=-1'), 400, 'limit param must be positive');
  expectGlanceError(await get(`/v2/tasks?marker=${unknown}`), 400, `Task with the given id ${unknown} was not found`);
  expectGlanceError(await get('/v2/tasks?marker='), 400, 'Task with the given id  was not found');
  expectGlanceError(await get('/v2/tasks?sort_key=message'), 400, 'Sort key supplied was not valid.');
  // The marker is read before the sort is built; the direction is checked before both.
  expectGlanceError(await get(`/v2/tasks?sort_key=bogus&marker=${unknown}`), 400, `Task with the given id ${unknown} was not found`);
  expectGlanceError(await get(`/v2/tasks?sort_key=bogus&marker=${all[0].id}`), 400, 'Sort key supplied was not valid.');
  expectGlanceError(await get('/v2/tasks?sort_dir=up&status=done&marker=x'), 400, 'Invalid sort direction: up');
  expect((await app.http('POST', '/v2/tasks', { headers: headers('admin'), body: {} })).status).toBe(405);
});

test('the task schemas are served, the list\'s items without input, result and message', async () => {
  const task = (await get('/v2/schemas/task', 'memberA')).body;
  expect(task.name).toBe('task');
  expect(task.properties.type.enum).toEqual(['import', 'api_image_import']);
  expect(Object.keys(task.properties)).toEqual(expect.arrayContaining(['input', 'result', 'message', 'expires_at']));
  const tasks = (await get('/v2/schemas/tasks', 'memberA')).body;
  expect(tasks.links).toEqual([{ rel: 'describedby', href: '{schema}' }]);
  expect(Object.keys(tasks.properties.tasks.items.properties)).not.toEqual(expect.arrayContaining(['input']));
  expect(Object.keys(tasks.properties.tasks.items.properties).sort()).toEqual(
    ['created_at', 'expires_at', 'id', 'image_id', 'owner', 'request_id', 'schema', 'self', 'status', 'type', 'updated_at', 'user_id'],
  );
});

test('GraphQL tasks: admins only, filters, sort and cursor paging', async () => {
  const query = `query($first: Int, $after: String, $filter: TaskListFilter, $sortKey: TaskSortKey, $direction: SortDirection) {
    tasks(first: $first, after: $after, filter: $filter, sortKey: $sortKey, direction: $direction) {
      nodes { id imageId status }
      edges { cursor }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }`;
  const denied = await app.gql(query, {}, app.tokens.memberA);
  expect(denied.body.errors?.[0].extensions?.code).toBe('FORBIDDEN');

  const walked: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 5; page++) {
    const res: HttpResult = await app.gql(query, { first: 2, after });
    expect(res.body.errors).toBeUndefined();
    const tasks = res.body.data.tasks;
    walked.push(...tasks.nodes.map((n: { id: string }) => n.id));
    expect(tasks.pageInfo.hasPreviousPage).toBe(after !== null);
    if (!tasks.pageInfo.hasNextPage) break;
    after = tasks.pageInfo.endCursor;
  }
  expect(walked).toEqual(all.map((t) => t.id));

  const filtered = await app.gql(query, { filter: { status: 'SUCCESS', owner: 'project-a' } });
  expect(filtered.body.data.tasks.nodes).toEqual([{ id: all[2].id, imageId: ids.direct, status: 'SUCCESS' }]);
  const sorted = await app.gql(query, { sortKey: 'STATUS', direction: 'ASC' });
  expect(sorted.body.data.tasks.nodes.map((n: { id: string }) => n.id)).toEqual([all[0].id, all[2].id, all[1].id]);
  expect((await app.gql(query, { after: 'not-a-cursor' })).body.errors?.[0].extensions?.code).toBe('CURSOR_INVALID');
  expect((await app.gql(query, { first: 1001 })).body.errors?.[0].extensions?.code).toBe('PAGE_SIZE_INVALID');
});

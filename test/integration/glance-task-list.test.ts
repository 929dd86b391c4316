import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { serveFiles, type FileServer } from '../helpers/file-server';
import { startTestApp, type HttpResult, type TestApp, type TestCaller } from '../helpers/app';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * GET /v2/tasks through Vitrine's Glance backend against a real Glance 25.1 (scripts/glance-dev),
 * compared with what that Glance answers directly for the same query: the same bodies
 * (tasks, first, next, schema), the same statuses and messages for every bad request, and
 * the same 403 for a non-admin. The tasks come from imports made through Vitrine's facade.
 */
jest.setTimeout(300_000);

const DATA = randomBytes(32 * 1024 + 5);
let glance: RealGlance;
let app: TestApp;
let source: FileServer;

const vitrine = (path: string, who: TestCaller = 'admin', init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpResult> =>
  app.http(init.method ?? 'GET', path, { headers: { 'x-auth-token': app.tokens[who], accept: 'application/json', ...init.headers }, body: init.body });

/** Glance itself; glance-dev's trusted headers make a caller without them an admin of its default project. */
async function direct(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await request(`${glance.url}${path}`, { headers: { accept: 'application/json', ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, body: String(res.headers['content-type']).includes('json') ? JSON.parse(text) : text };
}

async function importVia(method: Record<string, unknown>, stage?: Buffer): Promise<string> {
  const created = await vitrine('/v2/images', 'admin', { method: 'POST', body: { name: `tasks-${randomUUID().slice(0, 8)}`, disk_format: 'raw', container_format: 'bare' } });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  if (stage) {
    const staged = await request(`${app.baseUrl}/v2/images/${id}/stage`, { method: 'PUT', headers: { 'x-auth-token': app.tokens.admin, 'content-type': 'application/octet-stream' }, body: stage });
    await staged.body.dump();
    expect(staged.statusCode).toBe(204);
  }
  expect((await vitrine(`/v2/images/${id}/import`, 'admin', { method: 'POST', body: { method } })).status).toBe(202);
  for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
    const tasks = (await direct(`/v2/images/${id}/tasks`)).body.tasks as { status: string }[];
    if (tasks.length > 0 && tasks.every((t) => t.status === 'success' || t.status === 'failure')) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the import of ${id} did not finish`);
}

beforeAll(async () => {
  source = await serveFiles({ '/image.raw': DATA });
  glance = await startGlance();
  app = await startTestApp({
    backends: [{ name: 'legacy', driver: 'glance', url: glance.url, identity: 'headers', timeouts: { connectMs: 1000, requestMs: 30_000, idleMs: 30_000 } }],
    // The web-download source is on loopback.
    dataPlane: { allowPrivateUrls: true },
  });
  await importVia({ name: 'glance-direct' }, DATA);
  await importVia({ name: 'web-download', uri: `${source.url}/image.raw` });
  await importVia({ name: 'web-download', uri: `${source.url}/missing` });
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled([app?.close(), glance?.stop()]);
  await source?.close();
}, 120_000);

test('every listing query answers exactly what Glance answers', async () => {
  const all = (await direct('/v2/tasks')).body.tasks as { id: string }[];
  expect(all).toHaveLength(3);
  const queries = [
    '', 'limit=1', 'limit=2', `limit=1&marker=${all[0].id}`, `marker=${all[1].id}`, 'limit=0', 'limit=3',
    'status=success', 'status=failure', 'status=', 'type=import', 'sort_dir=asc', 'sort_key=status&sort_dir=asc',
    'sort_key=id', 'sort_key=updated_at&sort_dir=asc', 'sort_key=deleted', 'sort_dir=asc&limit=2&status=success',
  ];
  for (const query of queries) {
    const path = query ? `/v2/tasks?${query}` : '/v2/tasks';
    const [theirs, ours] = await Promise.all([direct(path), vitrine(path)]);
    expect({ query, status: ours.status, body: ours.body }).toEqual({ query, status: theirs.status, body: theirs.body });
  }
  const expected = (await direct('/v2/tasks?sort_key=status&sort_dir=asc')).body.tasks.map((t: { status: string }) => t.status);
  expect(expected).toEqual(['failure', 'success', 'success']);
});

test('a client follows next through Vitrine to the same tasks, in the same pages', async () => {
  const walk = async (get: (path: string) => Promise<{ body: any }>) => {
    const pages: string[][] = [];
    for (let path: string | undefined = '/v2/tasks?limit=2&sort_dir=asc'; path;) {
      const { body } = await get(path);
      pages.push(body.tasks.map((t: { id: string }) => t.id));
      path = body.next;
    }
    return pages;
  };
  const theirs = await walk((p) => direct(p));
  expect(theirs.map((p) => p.length)).toEqual([2, 1]);
  expect(await walk((p) => vitrine(p))).toEqual(theirs);
});

test('every bad request fails as in Glance, with the same status and message', async () => {
  const unknown = randomUUID();
  const queries = [
    'sort_dir=up', 'status=done', 'type=api_image_import', 'marker=not-a-uuid', 'limit=ten', 'limit=-1', `marker=${unknown}`,
    'marker=', 'sort_key=message', `sort_key=bogus&marker=${unknown}`, 'sort_dir=up&status=done&marker=x',
  ];
  for (const query of queries) {
    const [theirs, ours] = await Promise.all([direct(`/v2/tasks?${query}`), vitrine(`/v2/tasks?${query}`)]);
    // webob's JSON message: the status explanation, <br /><br />, then the detail.
    const message = (body: any) => String(body?.message ?? '').split('<br />').map((part) => part.trim()).filter(Boolean).at(-1);
    expect({ query, status: ours.status, message: message(ours.body) }).toEqual({ query, status: theirs.status, message: message(theirs.body) });
    expect(ours.status).toBe(400);
    expect(message(theirs.body)).toMatch(/\w/);
  }
});

test('a non-admin gets Glance\'s 403 from Vitrine (refused before Glance is asked) and from Glance', async () => {
  const theirs = await direct('/v2/tasks', { 'x-roles': 'member,reader', 'x-project-id': randomUUID().replace(/-/g, '') });
  const ours = await vitrine('/v2/tasks', 'memberA');
  expect(theirs.status).toBe(403);
  expect(ours.status).toBe(403);
  expect(ours.body.message).toContain('You are not authorized to complete tasks_api_access action.');
  expect(theirs.body.message).toContain(ours.body.message);
});

test('GraphQL tasks pages through the Glance\'s tasks', async () => {
  const all = ((await direct('/v2/tasks')).body.tasks as { id: string }[]).map((t) => t.id);
  const query = 'query($after: String) { tasks(first: 2, after: $after) { nodes { id status } pageInfo { hasNextPage endCursor } } }';
  const first = await app.gql(query);
  expect(first.body.errors).toBeUndefined();
  expect(first.body.data.tasks.pageInfo.hasNextPage).toBe(true);
  const second = await app.gql(query, { after: first.body.data.tasks.pageInfo.endCursor });
  expect([...first.body.data.tasks.nodes, ...second.body.data.tasks.nodes].map((n: { id: string }) => n.id)).toEqual(all);
  expect(second.body.data.tasks.pageInfo.hasNextPage).toBe(false);
});

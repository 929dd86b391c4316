import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp, type TestCaller } from '../helpers/app';
import { GLANCE, parseRows, requireClients, runClient, runClientOk } from '../helpers/openstack-clients';

/**
 * python-glanceclient 4.1's `task-list` against Vitrine's native store: paging through
 * `next` (--page-size), --sort-key/--sort-dir (default: status, desc), the --status and
 * --type filters (this client's spelling of them), the task schema its model checks each
 * task against, and the refusals it prints.
 */
jest.setTimeout(300_000);

const DATA = randomBytes(40_000);
let app: TestApp;
let home: string;
let source: Server;
/** Task ids, newest first, as the API lists them. */
let listed: { id: string; status: string; owner: string }[];

const v2 = (args: string[], who: TestCaller = 'admin') => ['--os-image-url', app.baseUrl, '--os-auth-token', app.tokens[who], '--os-image-api-version', '2', ...args];
const taskList = async (args: string[] = []) => parseRows(await runClientOk(home, GLANCE, v2(['task-list', ...args])));
const headers = (who: TestCaller) => ({ 'x-auth-token': app.tokens[who] });

async function importImage(who: TestCaller, method: Record<string, unknown>, stage = false): Promise<void> {
  const created = await app.http('POST', '/v2/images', { headers: headers(who), body: { name: 'cli-tasks', disk_format: 'raw', container_format: 'bare' } });
  const id = created.body.id as string;
  if (stage) expect((await fetch(`${app.baseUrl}/v2/images/${id}/stage`, { method: 'PUT', headers: { ...headers(who), 'content-type': 'application/octet-stream' }, body: DATA })).status).toBe(204);
  expect((await app.http('POST', `/v2/images/${id}/import`, { headers: headers(who), body: { method } })).status).toBe(202);
  for (;;) {
    const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers: headers(who) })).body.tasks as { status: string }[];
    if (tasks.length > 0 && tasks.every((t) => t.status === 'success' || t.status === 'failure')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  requireClients();
  home = mkdtempSync(join(tmpdir(), 'vitrine-task-list-client-'));
  source = createServer((req, res) => (req.url === '/image.raw' ? res.writeHead(200, { 'content-length': DATA.length }).end(DATA) : res.writeHead(404).end()));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(source.address() as AddressInfo).port}`;
  app = await startTestApp({ imports: { pollIntervalMs: 50, webDownload: { allowedHosts: ['127.0.0.1'], allowedPorts: [] } } });
  await importImage('memberA', { name: 'glance-direct' }, true);
  await importImage('memberB', { name: 'web-download', uri: `${url}/image.raw` });
  await importImage('memberA', { name: 'web-download', uri: `${url}/missing` });
  await importImage('memberB', { name: 'web-download', uri: `${url}/image.raw` });
  listed = (await app.http('GET', '/v2/tasks', { headers: headers('admin') })).body.tasks;
  expect(listed.map((t) => t.status)).toEqual(['success', 'failure', 'success', 'success']);
});

afterAll(async () => {
  await app?.close();
  source?.closeAllConnections();
  source?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** The API's own answer for a query, as task-list rows. */
async function api(query: string): Promise<string[][]> {
  const tasks = (await app.http('GET', `/v2/tasks?limit=1000&${query}`, { headers: headers('admin') })).body.tasks as typeof listed;
  return tasks.map((t) => [t.id, 'api_image_import', t.status, t.owner]);
}

test('task-list shows every task with its type, status and owner, by status then newest, in pages of any size', async () => {
  const want = await api('sort_key=status&sort_dir=desc');
  expect(want.map((r) => r[2])).toEqual(['success', 'success', 'success', 'failure']);
  expect(want.map((r) => r[0]).sort()).toEqual(listed.map((t) => t.id).sort());
  expect(await taskList()).toEqual(want);
  // The client follows `next` until a page comes back without one.
  expect(await taskList(['--page-size', '1'])).toEqual(want);
  expect(await taskList(['--page-size', '3'])).toEqual(want);
});

test('task-list sorts and filters', async () => {
  expect((await taskList(['--sort-key', 'status', '--sort-dir', 'asc'])).map((r) => r[2])).toEqual(['failure', 'success', 'success', 'success']);
  expect((await taskList(['--sort-key', 'id', '--sort-dir', 'asc'])).map((r) => r[0])).toEqual(listed.map((t) => t.id).reverse());
  expect((await taskList(['--sort-key', 'type'])).map((r) => r[0])).toEqual(listed.map((t) => t.id));
  expect((await taskList(['--status', 'success', '--page-size', '2', '--sort-key', 'id'])).map((r) => r[0]))
    .toEqual(listed.filter((t) => t.status === 'success').map((t) => t.id));
  expect((await taskList(['--status', 'failure'])).map((r) => r[0])).toEqual(listed.filter((t) => t.status === 'failure').map((t) => t.id));
  expect(await taskList(['--type', 'import'])).toEqual([]);
});

test('task-list prints Glance\'s refusals: a non-admin, a bad filter', async () => {
  const denied = await runClient(home, GLANCE, v2(['task-list'], 'memberA'));
  expect(denied.code).not.toBe(0);
  expect(denied.stderr).toContain('403');
  expect(denied.stderr).toContain('tasks_api_access');
  const bad = await runClient(home, GLANCE, v2(['task-list', '--status', 'done']));
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('Invalid status value: done');
  const badType = await runClient(home, GLANCE, v2(['task-list', '--type', 'api_image_import']));
  expect(badType.code).not.toBe(0);
  expect(badType.stderr).toContain('Invalid type value: api_image_import');
});

import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startTestApp, TEST_TOKENS, type TestApp } from '../helpers/app';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * Vitrine in front of a real Glance 25.1 and its own native store at once, configured the
 * way operators do it (`backends`), used through GraphQL, the data plane and the facade.
 */
let glance: RealGlance;
let app: TestApp;
const DATA = randomBytes(2 * 1024 * 1024 + 3);
const MD5 = createHash('md5').update(DATA).digest('hex');

beforeAll(async () => {
  glance = await startGlance();
  app = await startTestApp({
    backends: [
      { name: 'native', driver: 'native' },
      { name: 'legacy', driver: 'glance', url: glance.url, identity: 'headers', timeouts: { connectMs: 1000, requestMs: 10_000, idleMs: 10_000 }, retries: 0, breaker: { failures: 2, resetMs: 60_000 } },
    ],
  });
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await app?.close();
  await glance?.stop();
});

const CREATE = 'mutation($input: CreateImageInput!, $backend: String) { createImage(input: $input, backend: $backend) { id backend status name } }';

/** What Glance itself says about an image (as project-a, the caller's project). */
async function inGlance(id: string): Promise<Record<string, unknown>> {
  const res = await request(`${glance.url}/v2/images/${id}`, { headers: { 'x-project-id': 'project-a', 'x-roles': 'member,reader', 'x-user-id': 'member-a' } });
  return (await res.body.json()) as Record<string, unknown>;
}

describe('a native store and a real Glance as one', () => {
  let legacyId: string;
  let nativeId: string;

  test('creates in the backend asked for, and finds each image by id through either', async () => {
    const legacy = await app.gql(CREATE, { input: { name: 'fed-legacy', diskFormat: 'raw', containerFormat: 'bare' }, backend: 'legacy' }, TEST_TOKENS.memberA);
    expect(legacy.body.errors).toBeUndefined();
    expect(legacy.body.data.createImage).toMatchObject({ backend: 'legacy', status: 'QUEUED', name: 'fed-legacy' });
    legacyId = legacy.body.data.createImage.id;
    expect(await inGlance(legacyId)).toMatchObject({ id: legacyId, name: 'fed-legacy', owner: 'project-a' });

    const native = await app.gql(CREATE, { input: { name: 'fed-native', diskFormat: 'raw', containerFormat: 'bare' } }, TEST_TOKENS.memberA);
    nativeId = native.body.data.createImage.id;
    expect(native.body.data.createImage.backend).toBe('native');

    const found = await app.gql('query($ids: [ID!]!) { nodes(ids: $ids) { ... on Image { id backend name } } }', { ids: [legacyId, nativeId] }, TEST_TOKENS.memberA);
    expect(found.body.data.nodes).toEqual([{ id: legacyId, backend: 'legacy', name: 'fed-legacy' }, { id: nativeId, backend: 'native', name: 'fed-native' }]);
    const unknown = await app.gql(CREATE, { input: { name: 'x' }, backend: 'nowhere' }, TEST_TOKENS.memberA);
    expect(unknown.body.errors?.[0].extensions?.code).toBe('BACKEND_UNKNOWN');
  });

  test('lists across both, sorted and filtered by backend; updates reach Glance', async () => {
    const listed = await app.gql('{ images(filter: { name: { in: ["fed-legacy", "fed-native"] } }, sort: [{ key: "name", direction: ASC }]) { edges { node { name backend } } } }', {}, TEST_TOKENS.memberA);
    expect(listed.body.errors).toBeUndefined();
    expect(listed.body.data.images.edges.map((e: { node: unknown }) => e.node)).toEqual([{ name: 'fed-legacy', backend: 'legacy' }, { name: 'fed-native', backend: 'native' }]);
    const onlyLegacy = await app.gql('{ images(filter: { backend: ["legacy"], name: { eq: "fed-legacy" } }) { edges { node { id } } } }', {}, TEST_TOKENS.memberA);
    expect(onlyLegacy.body.data.images.edges).toEqual([{ node: { id: legacyId } }]);

    const updated = await app.gql('mutation($id: ID!) { updateImage(id: $id, input: { minRam: 256 }) { minRam } setProperties(id: $id, properties: { os_distro: "cirros" }) { id } }', { id: legacyId }, TEST_TOKENS.memberA);
    expect(updated.body.errors).toBeUndefined();
    expect(await inGlance(legacyId)).toMatchObject({ min_ram: 256, os_distro: 'cirros' });
  });

  test('streams image data to and from Glance through the data plane and the facade', async () => {
    const put = await request(`${app.baseUrl}/v1/artifacts/${legacyId}/blobs/image`, { method: 'PUT', headers: { authorization: `Bearer ${TEST_TOKENS.memberA}`, 'content-type': 'application/octet-stream' }, body: DATA });
    expect(put.statusCode).toBe(200);
    await put.body.dump();
    expect(await inGlance(legacyId)).toMatchObject({ status: 'active', checksum: MD5, size: DATA.length });
    const facade = await request(`${app.baseUrl}/v2/images/${legacyId}/file`, { headers: { 'x-auth-token': TEST_TOKENS.memberA } });
    expect(facade.statusCode).toBe(200);
    expect(Buffer.from(await facade.body.arrayBuffer()).equals(DATA)).toBe(true);
    const listed = await request(`${app.baseUrl}/v2/images?name=in:fed-legacy,fed-native&sort=name:asc`, { headers: { 'x-auth-token': TEST_TOKENS.memberA } });
    const names = ((await listed.body.json()) as { images: { name: string }[] }).images.map((i) => i.name);
    expect(names).toEqual(['fed-legacy', 'fed-native']);
  });

  /** Imports staged bytes into a new image of `backend` through the facade; resolves when its task ended. */
  async function importedTask(backend: string): Promise<string> {
    const created = await app.gql(CREATE, { input: { name: `fed-task-${backend}`, diskFormat: 'raw', containerFormat: 'bare' }, backend }, TEST_TOKENS.memberA);
    const id = created.body.data.createImage.id as string;
    const headers = { 'x-auth-token': TEST_TOKENS.memberA };
    const staged = await request(`${app.baseUrl}/v2/images/${id}/stage`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: DATA.subarray(0, 4096) });
    await staged.body.dump();
    expect(staged.statusCode).toBe(204);
    const started = await app.http('POST', `/v2/images/${id}/import`, { headers, body: { method: { name: 'glance-direct' } } });
    expect(started.status).toBe(202);
    for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
      const tasks = (await app.http('GET', `/v2/images/${id}/tasks`, { headers })).body.tasks as { id: string; status: string }[];
      if (tasks.length === 1 && ['success', 'failure'].includes(tasks[0].status)) return tasks[0].id;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the import into ${backend} did not end`);
  }

  const listTasks = async (path: string) => {
    const res = await app.http('GET', path, { headers: { 'x-auth-token': TEST_TOKENS.admin, accept: 'application/json' } });
    expect(res.status).toBe(200);
    return res.body as { tasks: { id: string; created_at: string }[]; next?: string };
  };

  test('GET /v2/tasks merges the native store\'s and the Glance\'s tasks, newest first, and pages across both', async () => {
    const made: string[] = [];
    for (const backend of ['legacy', 'native', 'legacy', 'native']) {
      // Glance shows task times to the second: each import starts in a second of its own.
      await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
      made.push(await importedTask(backend));
    }
    const merged = (await listTasks('/v2/tasks')).tasks;
    // Newest first: the imports ran one after the other.
    expect(merged.map((t) => t.id)).toEqual([...made].reverse());
    const glanceOwn = await request(`${glance.url}/v2/tasks`, { headers: { accept: 'application/json' } });
    expect(((await glanceOwn.body.json()) as { tasks: { id: string }[] }).tasks.map((t) => t.id)).toEqual([made[2], made[0]]);

    for (const direction of ['desc', 'asc']) {
      const walked: string[] = [];
      for (let path: string | undefined = `/v2/tasks?limit=1&sort_dir=${direction}`; path;) {
        const page = await listTasks(path);
        walked.push(...page.tasks.map((t) => t.id));
        path = page.next;
      }
      expect(walked).toEqual(direction === 'desc' ? [...made].reverse() : made);
    }
    const denied = await app.http('GET', '/v2/tasks', { headers: { 'x-auth-token': TEST_TOKENS.memberA } });
    expect(denied.status).toBe(403);
    const gql = await app.gql('{ tasks(first: 3) { nodes { id } pageInfo { hasNextPage } } }');
    expect(gql.body.data.tasks).toEqual({ nodes: [...made].reverse().slice(0, 3).map((id) => ({ id })), pageInfo: { hasNextPage: true } });
  });

  test('with Glance down, native images are still served and listings name the backend that failed', async () => {
    await glance.stop();
    const listed = await app.gql('{ images(filter: { name: { in: ["fed-legacy", "fed-native"] } }) { edges { node { name } } } }', {}, TEST_TOKENS.memberA);
    expect(listed.body.data.images.edges).toEqual([{ node: { name: 'fed-native' } }]);
    expect(listed.body.errors?.[0].extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', backend: 'legacy' });
    const native = await app.gql('query($id: ID!) { image(id: $id) { name } }', { id: nativeId }, TEST_TOKENS.memberA);
    expect(native.body.data.image).toEqual({ name: 'fed-native' });
    const legacy = await app.gql('query($id: ID!) { image(id: $id) { name } }', { id: legacyId }, TEST_TOKENS.memberA);
    expect(legacy.body.errors?.[0].extensions?.code).toMatch(/^UPSTREAM_/);
    // The task list holds the native store's tasks; GraphQL names the backend that failed.
    expect((await listTasks('/v2/tasks')).tasks.map((t) => t.id)).toHaveLength(2);
    const tasks = await app.gql('{ tasks { nodes { id } } }');
    expect(tasks.body.data.tasks.nodes).toHaveLength(2);
    expect(tasks.body.errors?.[0].extensions).toMatchObject({ code: expect.stringMatching(/^UPSTREAM_/), backend: 'legacy' });
  });
});

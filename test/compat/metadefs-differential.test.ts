import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { startTestApp, type TestApp } from '../helpers/app';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';

/**
 * Differential test of the metadefs API: the same requests against a real Glance 25.1
 * (scripts/glance-dev) and against Vitrine's facade, compared after normalising what
 * legitimately differs: timestamps (removed), owners (the two servers' project ids) and,
 * for errors, the explanation text (statuses must match; webob wording is not asserted).
 *
 * Identities: Glance runs without Keystone; its requests carry the identity headers its
 * paste filter trusts. On Vitrine the same callers are the test tokens: admin (project
 * "admin"), memberA (project-a), memberB (project-b).
 *
 * Deliberate differences, asserted as such: Vitrine starts with a default catalog
 * (resource types and namespaces; a fresh Glance has none until `glance-manage db
 * load_metadefs`), so listings are compared filtered to this run's own resource type.
 */
jest.setTimeout(300_000);

type Who = 'admin' | 'memberA' | 'memberB';

interface Answer {
  status: number;
  body: unknown;
  allow?: string;
}

let glance: RealGlance;
let app: TestApp;
const agent = new Agent();
const RUN = randomUUID().slice(0, 8);
const RT = `OS::Differential::${RUN}`;

beforeAll(async () => {
  const started = await Promise.allSettled([startGlance(), startTestApp()]);
  if (started[0].status === 'fulfilled') glance = started[0].value;
  if (started[1].status === 'fulfilled') app = started[1].value;
  for (const result of started) if (result.status === 'rejected') throw result.reason;
}, GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled([glance?.stop(), app?.close(), agent.close()]);
}, 120_000);

const GLANCE_IDENTITY: Record<Who, Record<string, string>> = {
  admin: {},
  memberA: { 'x-project-id': 'project-a', 'x-user-id': 'member-a', 'x-roles': 'member,reader' },
  memberB: { 'x-project-id': 'project-b', 'x-user-id': 'member-b', 'x-roles': 'member,reader' },
};

async function send(url: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await request(`${url}${path}`, {
    dispatcher: agent,
    method: method as 'GET',
    headers: { accept: 'application/json', ...(text !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: text,
  });
  const raw = await res.body.text();
  let parsed: unknown = raw;
  try {
    parsed = raw ? JSON.parse(raw) : '';
  } catch {
    // not JSON: kept as text
  }
  const allow = res.headers.allow;
  return { status: res.statusCode, body: parsed, ...(typeof allow === 'string' && { allow }) };
}

/** Drops timestamps, replaces owners; error bodies keep only their status. */
function normalise(answer: Answer, owner: string): Answer {
  if (answer.status >= 400) return { status: answer.status, body: '<error>', ...(answer.allow && { allow: answer.allow }) };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === 'created_at' || k === 'updated_at') continue;
        out[k] = k === 'owner' && x === owner ? '<owner>' : walk(x);
      }
      return out;
    }
    return v;
  };
  return { status: answer.status, body: walk(answer.body) };
}

/** Runs one request on both servers and expects the same normalised answer; returns it. */
async function same(method: string, path: string, options: { who?: Who; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const who = options.who ?? 'admin';
  const [g, v] = await Promise.all([
    send(glance.url, method, `/v2${path}`, { ...GLANCE_IDENTITY[who], ...options.headers }, options.body),
    send(app.baseUrl, method, `/v2${path}`, { 'x-auth-token': app.tokens[who], ...options.headers }, options.body),
  ]);
  const G = normalise(g, glance.projectId);
  const V = normalise(v, 'admin');
  expect({ request: `${method} ${path}`, ...V }).toEqual({ request: `${method} ${path}`, ...G });
  return V;
}

const NS = `diff-${RUN}`;

it('serves the same schema documents (descriptions aside)', async () => {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'description').map(([k, x]) => [k, strip(x)]));
    return v;
  };
  for (const name of ['namespace', 'namespaces', 'object', 'objects', 'property', 'properties', 'tag', 'tags', 'resource_type', 'resource_types']) {
    const [g, v] = await Promise.all([send(glance.url, 'GET', `/v2/schemas/metadefs/${name}`, {}), send(app.baseUrl, 'GET', `/v2/schemas/metadefs/${name}`, { 'x-auth-token': app.tokens.admin })]);
    expect(v.status).toBe(200);
    expect({ name, schema: strip(v.body) }).toEqual({ name, schema: strip(g.body) });
  }
});

it('namespaces: create with contents, show (plain and for a resource type), list, update, protection, delete', async () => {
  await same('POST', '/metadefs/namespaces', {
    body: {
      namespace: NS,
      display_name: 'Differential',
      description: 'compared with Glance',
      visibility: 'public',
      protected: true,
      resource_type_associations: [{ name: RT, prefix: 'dt_', properties_target: 'image' }],
      properties: { disk_bus: { title: 'Disk bus', type: 'string', enum: ['virtio', 'ide'], default: 'virtio' } },
      objects: [{ name: 'Topology', description: 'layout', required: ['sockets'], properties: { sockets: { title: 'Sockets', type: 'integer', minimum: 1 } } }],
      tags: [{ name: 'alpha' }, { name: 'beta' }],
    },
  });
  await same('GET', `/metadefs/namespaces/${NS}`);
  await same('GET', `/metadefs/namespaces/${NS}?resource_type=${RT}`);
  await same('GET', `/metadefs/namespaces/${NS}?resource_type=OS::Unrelated`);
  const listed = await same('GET', `/metadefs/namespaces?resource_types=${RT}`);
  expect((listed.body as { namespaces: unknown[] }).namespaces).toHaveLength(1);
  await same('GET', `/metadefs/namespaces?resource_types=${RT}&limit=1`);
  await same('GET', `/metadefs/namespaces?resource_types=${RT}&visibility=private`);

  await same('POST', '/metadefs/namespaces', { body: { namespace: NS } });
  await same('DELETE', `/metadefs/namespaces/${NS}`);
  await same('DELETE', `/metadefs/namespaces/${NS}/objects`);
  await same('DELETE', `/metadefs/namespaces/${NS}/tags/alpha`);
  await same('DELETE', `/metadefs/namespaces/${NS}/resource_types/${RT}`);
  await same('PUT', `/metadefs/namespaces/${NS}`, { body: { namespace: NS, description: 'now private', visibility: 'private', display_name: NS, protected: false } });
  await same('GET', `/metadefs/namespaces/${NS}`);
});

it('objects, properties, tags and associations of a namespace', async () => {
  const ns = `${NS}-parts`;
  await same('POST', '/metadefs/namespaces', { body: { namespace: ns, visibility: 'public' } });

  await same('POST', `/metadefs/namespaces/${ns}/objects`, { body: { name: 'o1', description: 'first', properties: { a: { title: 'A', type: 'string', enum: ['x', 'y'] } }, required: ['a'] } });
  await same('POST', `/metadefs/namespaces/${ns}/objects`, { body: { name: 'o2' } });
  await same('POST', `/metadefs/namespaces/${ns}/objects`, { body: { name: 'o2' } });
  await same('GET', `/metadefs/namespaces/${ns}/objects/o1`);
  await same('PUT', `/metadefs/namespaces/${ns}/objects/o2`, { body: { name: 'o3', description: 'renamed' } });
  await same('GET', `/metadefs/namespaces/${ns}/objects/o2`);
  await same('DELETE', `/metadefs/namespaces/${ns}/objects/o3`);
  await same('GET', `/metadefs/namespaces/${ns}/objects`);

  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'p1', title: 'P1', type: 'integer', minimum: 0, maximum: 8 } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'p2', title: 'P2', type: 'array', items: { type: 'string', enum: ['a', 'b'] } } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'p1', title: 'again', type: 'string' } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'p9', type: 'string' } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'p9', title: 'T', type: 'text' } });
  await same('GET', `/metadefs/namespaces/${ns}/properties`);
  await same('GET', `/metadefs/namespaces/${ns}/properties/p1`);
  await same('PUT', `/metadefs/namespaces/${ns}/properties/p1`, { body: { name: 'p1b', title: 'P1b', type: 'integer' } });
  await same('GET', `/metadefs/namespaces/${ns}/properties/p1`);
  await same('DELETE', `/metadefs/namespaces/${ns}/properties/p2`);
  await same('GET', `/metadefs/namespaces/${ns}/properties`);

  await same('POST', `/metadefs/namespaces/${ns}/tags`, { body: { tags: [{ name: 't1' }, { name: 't2' }, { name: 't3' }] } });
  await same('POST', `/metadefs/namespaces/${ns}/tags`, { body: { tags: [{ name: 't4' }] }, headers: { 'x-openstack-append': 'true' } });
  await same('POST', `/metadefs/namespaces/${ns}/tags/t5`);
  await same('POST', `/metadefs/namespaces/${ns}/tags/t5`);
  await same('GET', `/metadefs/namespaces/${ns}/tags/t5`);
  await same('PUT', `/metadefs/namespaces/${ns}/tags/t5`, { body: { name: 't6' } });
  await same('DELETE', `/metadefs/namespaces/${ns}/tags/t1`);
  const tags = await same('GET', `/metadefs/namespaces/${ns}/tags`);
  expect((tags.body as { tags: unknown[] }).tags).toHaveLength(4);
  await same('POST', `/metadefs/namespaces/${ns}/tags`, { body: { tags: [{ name: 'only' }] } });
  await same('GET', `/metadefs/namespaces/${ns}/tags`);
  await same('DELETE', `/metadefs/namespaces/${ns}/tags`);
  await same('GET', `/metadefs/namespaces/${ns}/tags`);

  await same('POST', `/metadefs/namespaces/${ns}/resource_types`, { body: { name: RT, prefix: 'x_' } });
  await same('POST', `/metadefs/namespaces/${ns}/resource_types`, { body: { name: RT } });
  await same('GET', `/metadefs/namespaces/${ns}/resource_types`);
  await same('DELETE', `/metadefs/namespaces/${ns}/resource_types/${RT}`);
  await same('DELETE', `/metadefs/namespaces/${ns}/resource_types/${RT}`);
  await same('GET', `/metadefs/namespaces/${ns}/resource_types`);

  await same('DELETE', `/metadefs/namespaces/${ns}`);
  await same('GET', `/metadefs/namespaces/${ns}`);
  await same('GET', `/metadefs/namespaces/${ns}/objects`);
});

it('ordering, paging, renames and rename conflicts', async () => {
  const base = `${NS}-order`;
  for (const n of ['c', 'a', 'b']) await same('POST', '/metadefs/namespaces', { body: { namespace: `${base}-${n}`, visibility: 'public', resource_type_associations: [{ name: RT }] } });
  await same('GET', `/metadefs/namespaces?resource_types=${RT}&sort_key=namespace&sort_dir=asc`);
  await same('GET', `/metadefs/namespaces?resource_types=${RT}&sort_key=namespace&sort_dir=desc&limit=2`);
  await same('GET', `/metadefs/namespaces?resource_types=${RT}&sort_key=namespace&sort_dir=asc&limit=1&marker=${base}-a`);
  const ns = `${base}-a`;
  for (const o of ['o1', 'o2', 'o3']) await same('POST', `/metadefs/namespaces/${ns}/objects`, { body: { name: o } });
  await same('GET', `/metadefs/namespaces/${ns}/objects`);
  await same('POST', `/metadefs/namespaces/${ns}/resource_types`, { body: { name: 'OS::Glance::Image', prefix: 'p_' } });
  await same('POST', `/metadefs/namespaces/${ns}/resource_types`, { body: { name: 'OS::Nova::Flavor', prefix: 'p:' } });
  await same('GET', `/metadefs/namespaces/${ns}/resource_types`);
  await same('GET', `/metadefs/namespaces/${ns}`);
  await same('PUT', `/metadefs/namespaces/${ns}/objects/o1`, { body: { name: 'o2' } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'x', title: 'X', type: 'string' } });
  await same('POST', `/metadefs/namespaces/${ns}/properties`, { body: { name: 'y', title: 'Y', type: 'string' } });
  await same('PUT', `/metadefs/namespaces/${ns}/properties/x`, { body: { name: 'y', title: 'X', type: 'string' } });
  await same('POST', `/metadefs/namespaces/${ns}/tags`, { body: { tags: [{ name: 'k1' }, { name: 'k2' }] } });
  await same('PUT', `/metadefs/namespaces/${ns}/tags/k1`, { body: { name: 'k2' } });
  await same('PUT', `/metadefs/namespaces/${ns}`, { body: { namespace: `${base}-b` } });
  await same('PUT', `/metadefs/namespaces/${ns}`, { body: { namespace: `${base}-renamed`, visibility: 'public' } });
  await same('GET', `/metadefs/namespaces/${base}-renamed`);
  await same('GET', `/metadefs/namespaces/${ns}`);
  for (const n of ['renamed', 'b', 'c']) await same('DELETE', `/metadefs/namespaces/${base}-${n}`);
});

it('errors: bad bodies, read-only fields, missing entries, methods', async () => {
  const ns = `${NS}-errors`;
  await same('POST', '/metadefs/namespaces', { body: { namespace: ns, visibility: 'shared' } });
  await same('POST', '/metadefs/namespaces', { body: { display_name: 'no namespace' } });
  await same('POST', '/metadefs/namespaces', { body: { namespace: ns, bogus: true } });
  await same('POST', '/metadefs/namespaces', { body: { namespace: ns, created_at: '2020-01-01T00:00:00Z' } });
  await same('POST', '/metadefs/namespaces', { body: '{not json' });
  await same('POST', '/metadefs/namespaces');
  await same('GET', `/metadefs/namespaces/missing-${RUN}`);
  await same('GET', `/metadefs/namespaces/missing-${RUN}/properties/x`);
  await same('POST', `/metadefs/namespaces/missing-${RUN}/tags/x`);
  await same('GET', '/metadefs/namespaces?sort_dir=up');
  await same('GET', '/metadefs/namespaces?limit=-3');
  await same('PATCH', '/metadefs/namespaces');
  await same('PUT', '/metadefs/resource_types');
  await same('GET', `/metadefs/namespaces/${ns}/resource_types/${RT}`);
});

it('policy: members read public and own-project namespaces and write nothing', async () => {
  const ns = `${NS}-policy`;
  await same('POST', '/metadefs/namespaces', { body: { namespace: ns, visibility: 'private', owner: 'project-a', resource_type_associations: [{ name: RT }] } });
  await same('GET', `/metadefs/namespaces/${ns}`, { who: 'memberA' });
  await same('GET', `/metadefs/namespaces/${ns}`, { who: 'memberB' });
  await same('GET', `/metadefs/namespaces?resource_types=${RT}`, { who: 'memberB' });
  await same('GET', `/metadefs/namespaces/${ns}/tags`, { who: 'memberB' });
  await same('POST', '/metadefs/namespaces', { who: 'memberA', body: { namespace: `${ns}-by-member` } });
  await same('POST', `/metadefs/namespaces/${ns}/tags/t`, { who: 'memberA' });
  await same('PUT', `/metadefs/namespaces/${ns}`, { who: 'memberA', body: { namespace: ns } });
  await same('DELETE', `/metadefs/namespaces/${ns}`, { who: 'memberA' });
  await same('DELETE', `/metadefs/namespaces/${ns}`, { who: 'memberB' });
  await same('DELETE', `/metadefs/namespaces/${ns}`);
});

it('resource types: Vitrine lists its default catalog besides what Glance lists', async () => {
  const [g, v] = await Promise.all([
    send(glance.url, 'GET', '/v2/metadefs/resource_types', {}),
    send(app.baseUrl, 'GET', '/v2/metadefs/resource_types', { 'x-auth-token': app.tokens.admin }),
  ]);
  expect(v.status).toBe(g.status);
  const names = (a: Answer) => (a.body as { resource_types: { name: string }[] }).resource_types.map((t) => t.name);
  expect(names(v)).toEqual(expect.arrayContaining(names(g)));
  expect(names(v)).toContain('OS::Glance::Image');
});

import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app';
import { GLANCE_START_TIMEOUT_MS, startGlance, type RealGlance } from '../helpers/glance';
import { KEYSTONE_START_TIMEOUT_MS, startKeystone, type RealKeystone } from '../helpers/keystone';

/**
 * Vitrine in front of a Glance that sits behind Keystone, as in a real cloud: a real
 * Keystone 22 (scripts/keystone-dev), a real Glance 25.1 with keystonemiddleware's
 * auth_token (scripts/glance-dev --keystone), Vitrine in auth.mode keystone with a
 * `glance` backend that forwards the caller's token (identity: token). Glance applies its
 * own policy to the forwarded token; nothing here trusts identity headers.
 */
let keystone: RealKeystone;
let glance: RealGlance;
let app: TestApp;

beforeAll(async () => {
  keystone = await startKeystone();
  glance = await startGlance({ keystone: keystone.url });
  app = await startTestApp({
    auth: { mode: 'keystone', keystone: keystone.authConfig({ timeoutMs: 30_000 }) },
    backends: [{ name: 'legacy', driver: 'glance', url: glance.url, identity: 'token', retries: 0 }],
  });
}, KEYSTONE_START_TIMEOUT_MS + GLANCE_START_TIMEOUT_MS);

afterAll(async () => {
  await app?.close();
  await glance?.stop();
  await keystone?.stop();
}, 120_000);

const auth = (token: string) => ({ 'x-auth-token': token });

/** What Glance itself answers for this token (no Vitrine in between). */
async function glanceShow(id: string, token: string): Promise<{ status: number; body: Record<string, unknown> | null }> {
  const res = await fetch(`${glance.url}/v2/images/${id}`, { headers: { ...auth(token), accept: 'application/json' } });
  return { status: res.status, body: res.ok ? ((await res.json()) as Record<string, unknown>) : null };
}

it('Glance refuses requests without a token: it really is behind Keystone', async () => {
  expect((await fetch(`${glance.url}/v2/images`)).status).toBe(401);
});

it('creates, uploads and reads through Vitrine with the caller\'s own token; Glance records the token\'s project', async () => {
  const memberA = await keystone.tokenFor('member-a', 'project-a');
  const created = await app.http('POST', '/v2/images', { headers: auth(memberA), body: { name: 'behind-keystone', disk_format: 'raw', container_format: 'bare', visibility: 'private' } });
  expect(created.status).toBe(201);
  expect(created.body.owner).toBe(keystone.projectIds['project-a']);
  const upstream = await glanceShow(created.body.id, memberA);
  expect(upstream.status).toBe(200);
  expect(upstream.body).toMatchObject({ name: 'behind-keystone', owner: keystone.projectIds['project-a'] });

  const data = randomBytes(64 * 1024);
  const put = await fetch(`${app.baseUrl}/v2/images/${created.body.id}/file`, { method: 'PUT', headers: { ...auth(memberA), 'content-type': 'application/octet-stream' }, body: data });
  expect(put.status).toBe(204);
  const got = await fetch(`${app.baseUrl}/v2/images/${created.body.id}/file`, { headers: auth(memberA) });
  expect(got.status).toBe(200);
  expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);

  const listed = await app.gql('{ images(first: 50) { edges { node { id owner } } } }', undefined, memberA);
  expect(listed.body.errors).toBeUndefined();
  expect(listed.body.data.images.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(created.body.id);
});

it('lets Glance\'s policy decide: another project sees nothing, only an admin may publicize, an admin sees all', async () => {
  const memberA = await keystone.tokenFor('member-a', 'project-a');
  const created = await app.http('POST', '/v2/images', { headers: auth(memberA), body: { name: 'private-to-a', visibility: 'private' } });
  expect(created.status).toBe(201);

  const memberB = await keystone.tokenFor('member-b', 'project-b');
  expect((await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(memberB) })).status).toBe(404);
  expect((await glanceShow(created.body.id, memberB)).status).toBe(404);

  const readerA = await keystone.tokenFor('reader-a', 'project-a');
  expect((await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(readerA) })).status).toBe(200);

  // Glance's rule (publicize_image: admin), applied by Glance to the forwarded token.
  const publicize = [{ op: 'replace', path: '/visibility', value: 'public' }];
  const patch = (token: string) => app.http('PATCH', `/v2/images/${created.body.id}`, { headers: { ...auth(token), 'content-type': 'application/openstack-images-v2.1-json-patch' }, body: publicize });
  expect((await patch(memberA)).status).toBe(403);
  const refused = await app.gql('mutation($id: ID!) { setVisibility(id: $id, visibility: PUBLIC) { id } }', { id: created.body.id }, memberA);
  expect(refused.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  expect((await glanceShow(created.body.id, memberA)).body).toMatchObject({ visibility: 'private' });

  const admin = await keystone.tokenFor('admin', 'admin');
  const seen = await app.http('GET', `/v2/images/${created.body.id}`, { headers: auth(admin) });
  expect(seen.status).toBe(200);
  expect(seen.body.owner).toBe(keystone.projectIds['project-a']);
  expect((await patch(admin)).status).toBe(200);
  expect((await glanceShow(created.body.id, memberB)).body).toMatchObject({ visibility: 'public' });
});

import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The overridable policy rules (config `policy`, src/domain/policy.ts) on the native store,
 * through the Glance facade and GraphQL: Glance's defaults unless configured, each override
 * applied to its own rule only.
 */
const V21 = 'application/openstack-images-v2.1-json-patch';

async function createImage(app: TestApp, body: Record<string, unknown> = {}): Promise<string> {
  const res = await app.http('POST', '/v2/images', { headers: { 'x-auth-token': app.tokens.memberA }, body: { name: 'policy', disk_format: 'raw', container_format: 'bare', ...body } });
  expect(res.status).toBe(201);
  return res.body.id;
}

function patch(app: TestApp, id: string, ops: unknown[], who: keyof TestApp['tokens'] = 'memberA') {
  return app.http('PATCH', `/v2/images/${id}`, { headers: { 'x-auth-token': app.tokens[who], 'content-type': V21 }, body: JSON.stringify(ops) });
}

const publicize = [{ op: 'replace', path: '/visibility', value: 'public' }];

describe("Glance's defaults", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app?.close());

  it('lets only admins publicize, and the owner project\'s members delete and share', async () => {
    const id = await createImage(app);
    expect((await patch(app, id, publicize)).status).toBe(403);
    const gql = await app.gql('mutation($id: ID!) { setVisibility(id: $id, visibility: PUBLIC) { id } }', { id }, app.tokens.memberA);
    expect(gql.body.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringContaining('policy publicizeImage') });
    expect((await patch(app, id, publicize, 'admin')).status).toBe(200);

    const shared = await createImage(app, { visibility: 'shared' });
    expect((await app.http('POST', `/v2/images/${shared}/members`, { headers: { 'x-auth-token': app.tokens.memberA }, body: { member: 'project-b' } })).status).toBe(200);
    expect((await app.http('DELETE', `/v2/images/${shared}`, { headers: { 'x-auth-token': app.tokens.readerA } })).status).toBe(403);
    expect((await app.http('DELETE', `/v2/images/${shared}`, { headers: { 'x-auth-token': app.tokens.memberA } })).status).toBe(204);
  });
});

describe('overrides', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ policy: { publicizeImage: 'member', deleteImage: 'admin', manageMembers: 'admin', importWebDownload: 'admin' } });
  });
  afterAll(() => app?.close());

  it('lets the owner project\'s members publicize when publicizeImage is member, and no other project', async () => {
    const id = await createImage(app);
    // Another project does not even see it (shared, no member); a reader of the owner may not write.
    expect((await patch(app, id, publicize, 'memberB')).status).toBe(404);
    expect((await patch(app, id, publicize, 'readerA')).status).toBe(403);
    const res = await patch(app, id, publicize);
    expect(res.status).toBe(200);
    expect(res.body.visibility).toBe('public');
    const created = await app.gql('mutation { createImage(input: { name: "born-public", visibility: PUBLIC }) { visibility } }', undefined, app.tokens.memberA);
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createImage.visibility).toBe('PUBLIC');
  });

  it('leaves deleting and sharing to admins when those rules say admin', async () => {
    const id = await createImage(app, { visibility: 'shared' });
    const del = await app.http('DELETE', `/v2/images/${id}`, { headers: { 'x-auth-token': app.tokens.memberA, accept: 'application/json' } });
    expect(del.status).toBe(403);
    expect(del.body.message).toContain('policy deleteImage');
    expect((await app.http('POST', `/v2/images/${id}/members`, { headers: { 'x-auth-token': app.tokens.memberA }, body: { member: 'project-b' } })).status).toBe(403);
    expect((await app.http('POST', `/v2/images/${id}/members`, { headers: { 'x-auth-token': app.tokens.admin }, body: { member: 'project-b' } })).status).toBe(200);
    expect((await app.http('DELETE', `/v2/images/${id}/members/project-b`, { headers: { 'x-auth-token': app.tokens.memberA } })).status).toBe(403);
    expect((await app.http('DELETE', `/v2/images/${id}`, { headers: { 'x-auth-token': app.tokens.admin } })).status).toBe(204);
  });

  it('applies an import method\'s own rule before anything starts', async () => {
    const id = await createImage(app);
    const refused = await app.http('POST', `/v2/images/${id}/import`, { headers: { 'x-auth-token': app.tokens.memberA, accept: 'application/json' }, body: { method: { name: 'web-download', uri: 'https://images.example.com/a.img' } } });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('policy importWebDownload');
    expect((await app.http('GET', `/v2/images/${id}`, { headers: { 'x-auth-token': app.tokens.memberA } })).body).toMatchObject({ status: 'queued' });
    expect((await app.http('GET', `/v2/images/${id}/tasks`, { headers: { 'x-auth-token': app.tokens.memberA } })).body.tasks).toEqual([]);
  });
});

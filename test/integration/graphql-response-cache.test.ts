import { startTestApp, type HttpResult, type GraphQLBody, type TestApp, type TestCaller } from '../helpers/app';
import { openBackdoor, type Backdoor } from '../helpers/backdoor';
import { facadeClient } from '../helpers/facade-client';

/**
 * GraphQL results reused until the next write (config graphql.responseCache) on the native
 * SQLite store. As in the facade's page-cache test, an image renamed behind Vitrine's back
 * (a second SQLite connection, no event) tells a reused result (old name) from a fresh one.
 * A result is kept from the second time its request comes, so each test asks twice first.
 */
const LIST = 'query List($first: Int) { images(first: $first, sort: [{ key: "createdAt", direction: DESC }]) { edges { node { id name status size tags members { project status } } } totalCount } }';
const SHOW = 'query Show($id: ID!) { image(id: $id) { id name ... on Image { checksum blobs { status size md5 } links { name targetId } } } }';

describe('GraphQL response cache', () => {
  let app: TestApp;
  let db: Backdoor;
  let facade: ReturnType<typeof facadeClient>;

  beforeAll(async () => {
    app = await startTestApp();
    db = openBackdoor(app);
    facade = facadeClient(app, { accept: 'application/json', namePrefix: 'gql-cached' });
  });
  afterAll(async () => {
    db.close();
    await app.close();
  });

  const post = (query: string, variables: Record<string, unknown> = {}, who: TestCaller = 'memberA', headers: Record<string, string> = {}): Promise<HttpResult<GraphQLBody>> =>
    app.http('POST', '/graphql', { headers: { authorization: `Bearer ${app.tokens[who]}`, ...headers }, body: { query, variables } });
  const data = async (query: string, variables: Record<string, unknown> = {}, who: TestCaller = 'memberA', headers: Record<string, string> = {}) => {
    const res = await post(query, variables, who, headers);
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    return res.body.data;
  };
  type Listed = { id: string; name: string; status: string; size: number | null; tags: string[]; members: { project: string; status: string }[] };
  const listed = async (id: string, who: TestCaller = 'memberA', variables: Record<string, unknown> = { first: 100 }, headers: Record<string, string> = {}): Promise<Listed | undefined> =>
    ((await data(LIST, variables, who, headers)).images.edges as { node: Listed }[]).map((e) => e.node).find((n) => n.id === id);
  const renameBehindTheBack = (id: string, name: string) => db.rename(id, name);

  test('a repeated query is answered with the same bytes until no-cache asks for a fresh one', async () => {
    const image = await facade.create();
    const first = await post(LIST, { first: 100 });
    await post(LIST, { first: 100 });
    renameBehindTheBack(image.id, 'renamed-directly');
    const again = await post(LIST, { first: 100 });
    expect(again.text).toBe(first.text);
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    expect((await listed(image.id, 'memberA', { first: 100 }, { 'cache-control': 'no-cache' }))?.name).toBe('renamed-directly');
    // The fresh answer replaced the kept one.
    expect((await listed(image.id))?.name).toBe('renamed-directly');
  });

  test('a result is kept from its second request on', async () => {
    const image = await facade.create();
    expect(await seenBy(app, image.id)).toBe(image.name);
    renameBehindTheBack(image.id, 'renamed-once');
    expect(await seenBy(app, image.id)).toBe('renamed-once');
    renameBehindTheBack(image.id, 'renamed-twice');
    expect(await seenBy(app, image.id)).toBe('renamed-once');
  });

  test('results are kept per caller, variables, operation and Accept header', async () => {
    const image = await facade.create();
    await listed(image.id, 'memberA', { first: 50 });
    await listed(image.id, 'memberA', { first: 50 });
    renameBehindTheBack(image.id, 'other-request');
    expect((await listed(image.id, 'memberA', { first: 50 }))?.name).toBe(image.name);
    expect((await listed(image.id, 'memberA', { first: 51 }))?.name).toBe('other-request');
    expect((await listed(image.id, 'readerA', { first: 50 }))?.name).toBe('other-request');
    // Project B never gets project A's result: the private image is not in its list.
    expect(await listed(image.id, 'memberB', { first: 50 })).toBeUndefined();
    const graphqlJson = await post(LIST, { first: 50 }, 'memberA', { accept: 'application/graphql-response+json' });
    expect(graphqlJson.headers['content-type']).toMatch(/^application\/graphql-response\+json/);
    expect(JSON.stringify(graphqlJson.body)).toContain('other-request');
    const named = await app.http('POST', '/graphql', { headers: { authorization: `Bearer ${app.tokens.memberA}` }, body: { query: `${LIST} query Other { __typename }`, operationName: 'List', variables: { first: 50 } } });
    expect(JSON.stringify(named.body)).toContain('other-request');
  });

  test('a caller who cannot authenticate never gets a kept result', async () => {
    await data(LIST, { first: 100 });
    await data(LIST, { first: 100 });
    const res = await app.http('POST', '/graphql', { headers: { authorization: 'Bearer not-a-known-token-000000000000' }, body: { query: LIST, variables: { first: 100 } } });
    expect(res.body.data ?? null).toBeNull();
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('documents that read anything besides artifacts are always executed', async () => {
    const image = await facade.create();
    const readsMore = [
      `query { viewer { projectId } image(id: "${image.id}") { name } }`,
      `query { usage { totalCount } image(id: "${image.id}") { name } }`,
      `query { artifactTypes { name } image(id: "${image.id}") { name } }`,
      `query { node(id: "${image.id}") { ... on Image { name } } }`,
    ];
    for (const [i, query] of readsMore.entries()) {
      const name = async () => {
        const d = await data(query);
        return (d.image ?? d.node).name;
      };
      await name();
      await name();
      renameBehindTheBack(image.id, `renamed-${i}`);
      expect(await name()).toBe(`renamed-${i}`);
    }
  });

  test('a result with errors is not kept', async () => {
    const image = await facade.create();
    const query = `query { a: image(id: "${image.id}") { name } b: artifact(id: "not-an-id") { id } }`;
    const first = await post(query);
    expect(first.body.errors?.length).toBeGreaterThan(0);
    await post(query);
    renameBehindTheBack(image.id, 'after-an-error');
    expect((await post(query)).body.data.a.name).toBe('after-an-error');
  });

  test('every kind of write is seen at once', async () => {
    const image = await facade.create();
    const target = await facade.create();
    const seen = async (who: TestCaller = 'memberA') => listed(image.id, who);
    const shown = async () => (await data(SHOW, { id: image.id })).image;
    for (const warm of [() => seen(), () => seen('memberB'), () => shown()]) {
      await warm();
      await warm();
    }

    const created = await data('mutation($input: CreateImageInput!) { createImage(input: $input) { id } }', { input: { name: 'gql-cached-new', diskFormat: 'raw', containerFormat: 'bare' } });
    expect((await data(LIST, { first: 100 })).images.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(created.createImage.id);

    await data('mutation($id: ID!) { updateImage(id: $id, input: { name: "updated" }) { id } }', { id: image.id });
    expect((await seen())?.name).toBe('updated');

    await data('mutation($id: ID!) { addTags(id: $id, tags: ["fresh"]) { id } }', { id: image.id });
    expect((await seen())?.tags).toContain('fresh');

    await data('mutation($id: ID!, $target: ID!) { addLink(sourceId: $id, name: "related", targetId: $target) { id } }', { id: image.id, target: target.id });
    expect((await shown()).links).toEqual([{ name: 'related', targetId: target.id }]);

    expect(await facade.upload(image.id, Buffer.from('twelve bytes'))).toBe(204);
    expect(await seen()).toMatchObject({ status: 'ACTIVE', size: 12 });
    expect((await shown()).blobs).toEqual([expect.objectContaining({ status: 'ACTIVE', size: 12 })]);

    await data('mutation($id: ID!) { setVisibility(id: $id, visibility: SHARED) { id } }', { id: image.id });
    expect(await seen('memberB')).toBeUndefined();
    await data('mutation($id: ID!) { addMember(artifactId: $id, project: "project-b") { status } }', { id: image.id });
    expect((await seen())?.members).toEqual([{ project: 'project-b', status: 'PENDING' }]);
    await data('mutation($id: ID!) { updateMemberStatus(artifactId: $id, project: "project-b", status: ACCEPTED) { status } }', { id: image.id }, 'memberB');
    expect((await seen('memberB'))?.name).toBe('updated');
    await data('mutation($id: ID!) { removeMember(artifactId: $id, project: "project-b") }', { id: image.id });
    expect(await seen('memberB')).toBeUndefined();

    await data('mutation($id: ID!) { deactivateArtifact(id: $id) { id } }', { id: image.id }, 'admin');
    expect((await seen())?.status).toBe('DEACTIVATED');

    expect((await facade.call('DELETE', `/v2/images/${image.id}`, 'admin')).status).toBe(204);
    expect(await seen()).toBeUndefined();
    expect((await data(SHOW, { id: image.id })).image).toBeNull();
  });

  test('a write through another instance on the same SQLite file is seen', async () => {
    const other = await startTestApp({}, { dataDir: app.dataDir });
    try {
      const image = await facade.create();
      await seenBy(app, image.id);
      await seenBy(app, image.id);
      const res = await other.http('PATCH', `/v2/images/${image.id}`, {
        headers: { 'x-auth-token': other.tokens.memberA, 'content-type': 'application/openstack-images-v2.1-json-patch' },
        body: JSON.stringify([{ op: 'replace', path: '/name', value: 'patched-elsewhere' }]),
      });
      expect(res.status).toBe(200);
      expect(await seenBy(app, image.id)).toBe('patched-elsewhere');
    } finally {
      await other.close();
    }
  });

  test('off with entries 0', async () => {
    const off = await startTestApp({ graphql: { responseCache: { entries: 0 } } });
    try {
      const offFacade = facadeClient(off, { accept: 'application/json', namePrefix: 'gql-uncached' });
      const image = await offFacade.create();
      expect(await seenBy(off, image.id)).toBe(image.name);
      expect(await seenBy(off, image.id)).toBe(image.name);
      const offDb = openBackdoor(off);
      try {
        offDb.rename(image.id, 'renamed-uncached');
      } finally {
        offDb.close();
      }
      expect(await seenBy(off, image.id)).toBe('renamed-uncached');
    } finally {
      await off.close();
    }
  });
});

async function seenBy(app: TestApp, id: string): Promise<string | undefined> {
  const res = await app.http('POST', '/graphql', { headers: { authorization: `Bearer ${app.tokens.memberA}` }, body: { query: SHOW, variables: { id } } });
  expect(res.body.errors).toBeUndefined();
  return res.body.data.image?.name;
}

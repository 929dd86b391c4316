import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faulty, openNativeMember, type Faults, type NativeMember } from '../helpers/backends';
import { startTestApp, type GraphQLBody, type TestApp } from '../helpers/app';

/**
 * Two real native backends served as one, through GraphQL over HTTP: the configured one
 * ("native", the default for creates) and a second on a SQLite file of its own ("archive",
 * added through the test-only extraBackends hook, wrapped so that it can be taken down).
 */
const IMAGE = 'id name backend revision';
const PAGE = `pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount nodes { ${IMAGE} }`;

describe('federation of two native backends', () => {
  let app: TestApp;
  let dir: string;
  let archive: NativeMember;
  const faults: Faults = {};
  const made: { id: string; name: string; backend: string }[] = [];

  async function ok(query: string, variables?: Record<string, unknown>): Promise<any> {
    const res = await app.gql(query, variables);
    expect(res.body.errors).toBeUndefined();
    expect(res.status).toBe(200);
    return res.body.data;
  }

  async function createImage(name: string, backend?: string): Promise<{ id: string; name: string; backend: string }> {
    const data = await ok(`mutation($input: CreateImageInput!, $backend: String) { createImage(input: $input, backend: $backend) { ${IMAGE} } }`, { input: { name }, backend });
    return data.createImage;
  }

  /** The sorted union, as the test computes it: name, then id (ASCII only). */
  function expectedOrder(items: { id: string; name: string }[], direction: 'asc' | 'desc' = 'asc'): string[] {
    const sign = direction === 'asc' ? 1 : -1;
    return [...items].sort((a, b) => sign * (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1)).map((i) => i.id);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vitrine-federation-it-'));
    app = await startTestApp({}, {
      app: {
        extraBackends: async (parts) => {
          archive = await openNativeMember(parts, dir, 'archive');
          return [{ backend: faulty(archive.backend, faults) }];
        },
      },
    });
    for (let i = 0; i < 17; i++) made.push(await createImage(`img-${i % 5}`, i % 2 === 0 ? 'archive' : undefined));
  });

  afterAll(async () => {
    await app?.close();
    await archive?.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates in the named backend, or the first one by default', async () => {
    expect(made.filter((m) => m.backend === 'archive')).toHaveLength(9);
    expect(made.filter((m) => m.backend === 'native')).toHaveLength(8);
    const res = await app.gql('mutation { createImage(input: { name: "x" }, backend: "nope") { id } }');
    expect(res.body.errors?.[0]).toMatchObject({ extensions: { code: 'BACKEND_UNKNOWN' } });
    const artifact = await app.gql('mutation { createArtifact(input: { typeName: "images", name: "y" }, backend: "elsewhere") { id } }');
    expect(artifact.body.errors?.[0]).toMatchObject({ extensions: { code: 'BACKEND_UNKNOWN' }, message: expect.stringContaining('archive') });
  });

  it('finds artifacts by id in either backend', async () => {
    const ids = made.map((m) => m.id);
    const data = await ok(`query($ids: [ID!]!) { nodes(ids: $ids) { ... on Image { ${IMAGE} } } }`, { ids });
    expect(data.nodes.map((n: { id: string; backend: string }) => [n.id, n.backend])).toEqual(made.map((m) => [m.id, m.backend]));
    const inArchive = made.find((m) => m.backend === 'archive')!;
    expect((await ok(`query($id: ID!) { image(id: $id) { ${IMAGE} } }`, { id: inArchive.id })).image).toMatchObject({ id: inArchive.id, backend: 'archive' });
  });

  it('lists both backends merged and sorted, forward and backward, with no duplicates or gaps', async () => {
    const want = expectedOrder(made);
    for (const size of [1, 4, 17]) {
      const seen: string[] = [];
      let after: string | null = null;
      for (let n = 0; n < 40; n++) {
        const data = await ok(`query($after: String, $first: Int) { images(sort: [{ key: "name" }], first: $first, after: $after) { ${PAGE} } }`, { after, first: size });
        expect(data.images.totalCount).toBe(made.length);
        seen.push(...data.images.nodes.map((i: { id: string }) => i.id));
        if (!data.images.pageInfo.hasNextPage) break;
        after = data.images.pageInfo.endCursor;
      }
      expect(seen).toEqual(want);
    }

    const back: string[] = [];
    let before: string | null = null;
    for (let n = 0; n < 40; n++) {
      const data = await ok(`query($before: String) { images(sort: [{ key: "name", direction: DESC }], last: 3, before: $before) { ${PAGE} } }`, { before });
      back.unshift(...data.images.nodes.map((i: { id: string }) => i.id));
      if (!data.images.pageInfo.hasPreviousPage) break;
      before = data.images.pageInfo.startCursor;
    }
    expect(back).toEqual(expectedOrder(made, 'desc'));
  });

  it('filters by backend', async () => {
    const data = await ok(`{ images(filter: { backend: ["archive"] }, first: 50) { ${PAGE} } }`);
    expect(data.images.nodes.map((i: { id: string }) => i.id).sort()).toEqual(made.filter((m) => m.backend === 'archive').map((m) => m.id).sort());
    expect(data.images.totalCount).toBe(9);
    const both = await ok(`{ artifacts(typeName: "images", filter: { backend: ["native", "archive"] }, first: 1) { totalCount } }`);
    expect(both.artifacts.totalCount).toBe(made.length);
    const res = await app.gql('{ images(filter: { backend: ["archive", "legacy"] }) { totalCount } }');
    expect(res.body.errors?.[0]).toMatchObject({ extensions: { code: 'BACKEND_UNKNOWN' }, message: expect.stringContaining('legacy') });
  });

  it('routes updates and deletes to the backend that holds the artifact', async () => {
    const target = await createImage('to-rename', 'archive');
    const renamed = await ok(`mutation($id: ID!) { updateImage(id: $id, input: { name: "renamed-in-archive" }) { ${IMAGE} } }`, { id: target.id });
    expect(renamed.updateImage).toMatchObject({ id: target.id, name: 'renamed-in-archive', backend: 'archive', revision: 2 });
    const [stored] = await archive.backend.getMany({ projectId: 'admin', userId: 'admin', roles: ['admin'] }, [target.id]);
    expect(stored).toMatchObject({ name: 'renamed-in-archive' });

    const deleted = await ok('mutation($id: ID!) { deleteArtifact(id: $id) { id } }', { id: target.id });
    expect(deleted.deleteArtifact.id).toBe(target.id);
    expect((await ok('query($id: ID!) { image(id: $id) { id } }', { id: target.id })).image).toBeNull();
    const again = await app.gql('mutation($id: ID!) { deleteArtifact(id: $id) { id } }', { id: target.id });
    expect(again.body.errors?.[0]).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
  });

  it('links an artifact of one backend to an artifact of the other', async () => {
    const source = made.find((m) => m.backend === 'native')!;
    const target = made.find((m) => m.backend === 'archive')!;
    await ok('mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "base", targetId: $t) { id } }', { s: source.id, t: target.id });
    const data = await ok(`query($id: ID!) { image(id: $id) { links { name target { id backend } } } }`, { id: source.id });
    expect(data.image.links).toEqual([{ name: 'base', target: { id: target.id, backend: 'archive' } }]);
    await ok('mutation($s: ID!) { removeLink(sourceId: $s, name: "base") { id } }', { s: source.id });
  });

  describe('while the archive backend is down', () => {
    beforeAll(() => {
      faults.down = true;
    });
    afterAll(() => {
      faults.down = false;
    });

    it('lists the native backend\'s images, with an error naming the archive backend', async () => {
      const res = await app.gql(`{ images(sort: [{ key: "name" }], first: 50) { ${PAGE} } }`);
      expect(res.status).toBe(200);
      const body: GraphQLBody = res.body;
      expect(body.data.images.nodes.map((i: { id: string }) => i.id)).toEqual(expectedOrder(made.filter((m) => m.backend === 'native')));
      expect(body.data.images.totalCount).toBe(8);
      expect(body.errors).toEqual([
        expect.objectContaining({ path: ['images'], extensions: { code: 'UPSTREAM_UNAVAILABLE', backend: 'archive' }, message: expect.stringContaining('archive') }),
      ]);
    });

    it('reports a warning only in the response of the operation that met it (batched requests)', async () => {
      const native = made.find((m) => m.backend === 'native')!;
      const res = await app.http('POST', '/graphql', {
        headers: { authorization: `Bearer ${app.tokens.admin}` },
        body: [{ query: '{ images(first: 5) { totalCount } }' }, { query: 'query($id: ID!) { node(id: $id) { id } }', variables: { id: native.id } }],
      });
      expect(res.status).toBe(200);
      expect(res.body).toHaveLength(2);
      expect(res.body[0].errors).toEqual([expect.objectContaining({ extensions: { code: 'UPSTREAM_UNAVAILABLE', backend: 'archive' } })]);
      expect(res.body[1]).toEqual({ data: { node: { id: native.id } } });
    });

    it('still finds native artifacts by id, and reports archive ones as unavailable, not missing', async () => {
      const native = made.find((m) => m.backend === 'native')!;
      const inArchive = made.find((m) => m.backend === 'archive')!;
      expect((await ok(`query($id: ID!) { node(id: $id) { id } }`, { id: native.id })).node).toEqual({ id: native.id });

      const res = await app.gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: [native.id, inArchive.id] });
      expect(res.body.data.nodes).toEqual([{ id: native.id }, null]);
      expect(res.body.errors).toEqual([expect.objectContaining({ path: ['nodes', 1], extensions: expect.objectContaining({ code: 'UPSTREAM_UNAVAILABLE', backend: 'archive' }) })]);

      const update = await app.gql('mutation($id: ID!) { addTags(id: $id, tags: ["x"]) { id } }', { id: inArchive.id });
      expect(update.body.errors?.[0]).toMatchObject({ extensions: { code: 'UPSTREAM_UNAVAILABLE', backend: 'archive' } });
    });

    it('answers Glance clients with what the other backends hold', async () => {
      const res = await app.http('GET', '/v2/images?limit=50', { headers: { 'x-auth-token': app.tokens.admin } });
      expect(res.status).toBe(200);
      expect(res.body.images.map((i: { id: string }) => i.id).sort()).toEqual(made.filter((m) => m.backend === 'native').map((m) => m.id).sort());
      const inArchive = made.find((m) => m.backend === 'archive')!;
      const one = await app.http('GET', `/v2/images/${inArchive.id}`, { headers: { 'x-auth-token': app.tokens.admin, accept: 'application/json' } });
      expect(one.status).toBe(503);
    });
  });

  it('serves the archive again once it is back', async () => {
    const data = await ok(`{ images(first: 50) { totalCount nodes { id } } }`);
    expect(data.images.totalCount).toBe(made.length);
  });
});

describe('a single backend', () => {
  it('is handed to the edges as it is: native cursors, its configured name', async () => {
    const app = await startTestApp({ backends: [{ name: 'primary', driver: 'native' }] });
    try {
      const res = await app.gql('mutation { createImage(input: { name: "solo" }) { id backend } }');
      expect(res.body.data.createImage.backend).toBe('primary');
      const list = await app.gql('{ images(first: 1) { edges { cursor } } }');
      const cursor = JSON.parse(Buffer.from(list.body.data.images.edges[0].cursor, 'base64url').toString('utf8'));
      expect(Object.keys(cursor).sort()).toEqual(['i', 's', 'v']);
      const wrong = await app.gql('{ images(filter: { backend: ["native"] }) { totalCount } }');
      expect(wrong.body.errors?.[0]).toMatchObject({ extensions: { code: 'BACKEND_UNKNOWN' } });
      const mine = await app.gql('{ images(filter: { backend: ["primary"] }) { totalCount } }');
      expect(mine.body.data.images.totalCount).toBe(1);
      const none = await app.gql('{ images(filter: { backend: [] }) { totalCount } }');
      expect(none.body.data.images.totalCount).toBe(0);
    } finally {
      await app.close();
    }
  });
});

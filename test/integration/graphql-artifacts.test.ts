import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The artifact API through real HTTP: creation, reads, updates with revisions, lifecycle,
 * links, members, visibility across projects, and every kind of bad input with its code.
 */
const ROLE_TYPE = {
  name: 'ansible_roles',
  displayName: 'Ansible roles',
  fields: {
    galaxy_url: { kind: 'string', mutable: true, sortable: true, requiredOnActivate: false, filterOps: ['eq', 'neq', 'in', 'like'] },
    min_ansible: { kind: 'string', requiredOnActivate: true },
    stars: { kind: 'integer', mutable: true, sortable: true, minimum: 0, requiredOnActivate: false },
    platforms: { kind: 'string', container: 'list', mutable: true, filterOps: ['eq', 'in'] },
    certified: { kind: 'boolean', default: false, nullable: false },
    archive: { kind: 'blob', requiredOnActivate: false },
  },
  links: { depends_on: { many: true, mutable: false }, parent: { many: false, mutable: true } },
};

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ artifactTypes: [ROLE_TYPE] });
});
afterAll(async () => app?.close());

type GqlResult = { status: number; body: { data?: any; errors?: { message: string; extensions?: { code?: string } }[] } };

async function ok(query: string, variables?: Record<string, unknown>, token = app.tokens.admin): Promise<any> {
  const res: GqlResult = await app.gql(query, variables, token);
  if (res.body.errors) throw new Error(`unexpected errors: ${JSON.stringify(res.body.errors)}`);
  expect(res.status).toBe(200);
  return res.body.data;
}

async function code(query: string, variables?: Record<string, unknown>, token = app.tokens.admin): Promise<string | undefined> {
  const res: GqlResult = await app.gql(query, variables, token);
  expect(res.body.errors?.length).toBeGreaterThan(0);
  return res.body.errors![0].extensions?.code;
}

const CREATE_ROLE = `mutation($input: CreateArtifactInput!) { createArtifact(input: $input) { id name version status visibility revision owner ... on AnsibleRole { galaxyUrl stars platforms certified minAnsible } } }`;

function role(name: string, extra: Record<string, unknown> = {}, token = app.tokens.memberA) {
  return ok(CREATE_ROLE, { input: { typeName: 'ansible_roles', name, ...extra } }, token).then((d) => d.createArtifact);
}

function image(input: Record<string, unknown>, token = app.tokens.memberA) {
  return ok(`mutation($input: CreateImageInput!) { createImage(input: $input) { id name status visibility owner revision diskFormat containerFormat minDisk minRam protected osHidden tags properties size checksum } }`, { input }, token).then((d) => d.createImage);
}

describe('images', () => {
  it('creates an image with every Glance field and reads it back through node, artifact and image', async () => {
    const created = await image({ name: 'cirros', diskFormat: 'qcow2', containerFormat: 'bare', minDisk: 1, minRam: 64, tags: ['x', 'y', 'x'], properties: { os_distro: 'cirros', 'owner_specified.openstack.md5': '' } });
    expect(created).toMatchObject({
      name: 'cirros', status: 'QUEUED', visibility: 'SHARED', owner: 'project-a', revision: 1,
      diskFormat: 'qcow2', containerFormat: 'bare', minDisk: 1, minRam: 64, protected: false, osHidden: false,
      tags: ['x', 'y'], properties: { os_distro: 'cirros', 'owner_specified.openstack.md5': '' }, size: null, checksum: null,
    });
    const d = await ok(`query($id: ID!) {
      node(id: $id) { __typename id }
      artifact(id: $id) { typeName backend version ... on Image { virtualSize osHashAlgo osHashValue stores data { size } } }
      image(id: $id) { name createdAt updatedAt activatedAt }
    }`, { id: created.id }, app.tokens.memberA);
    expect(d.node).toEqual({ __typename: 'Image', id: created.id });
    expect(d.artifact).toEqual({ typeName: 'images', backend: 'native', version: '0.0.0', virtualSize: null, osHashAlgo: null, osHashValue: null, stores: [], data: null });
    expect(d.image.name).toBe('cirros');
    expect(Date.parse(d.image.createdAt)).not.toBeNaN();
    expect(d.image.activatedAt).toBeNull();
  });

  it('accepts a client-chosen id once, as Glance does', async () => {
    const id = '0d6f3a1e-7c55-4c3b-9a7a-3e1c2b5d4f60';
    await image({ id, name: 'chosen' });
    expect(await code(`mutation { createImage(input: {id: "${id}", name: "again"}) { id } }`, undefined, app.tokens.memberA)).toBe('DUPLICATE_ID');
  });

  it('keeps formats editable only while queued and refuses reserved and system fields', async () => {
    const img = await image({ name: 'fmt' });
    const upd = await ok(`mutation($id: ID!) { updateImage(id: $id, input: {diskFormat: "raw", minRam: 128}) { diskFormat minRam revision } }`, { id: img.id }, app.tokens.memberA);
    expect(upd.updateImage).toEqual({ diskFormat: 'raw', minRam: 128, revision: 2 });
    expect(await code(`mutation($id: ID!) { setProperties(id: $id, properties: {os_glance_import_task: "x"}) { id } }`, { id: img.id }, app.tokens.memberA)).toBe('PROPERTY_RESERVED');
    expect(await code(`mutation($id: ID!) { updateArtifact(id: $id, input: {fields: {size: 5}}) { id } }`, { id: img.id }, app.tokens.memberA)).toBe('FIELD_READ_ONLY');
    expect(await code(`mutation($id: ID!) { updateImage(id: $id, input: {diskFormat: "floppy"}) { id } }`, { id: img.id }, app.tokens.memberA)).toBe('FIELD_INVALID');
  });

  it('refuses to delete a protected image until protection is lifted', async () => {
    const img = await image({ name: 'keep', protected: true });
    expect(await code(`mutation($id: ID!) { deleteArtifact(id: $id) { id } }`, { id: img.id }, app.tokens.memberA)).toBe('PROTECTED');
    await ok(`mutation($id: ID!) { updateImage(id: $id, input: {protected: false}) { id } }`, { id: img.id }, app.tokens.memberA);
    const d = await ok(`mutation($id: ID!) { deleteArtifact(id: $id) { id typeName } }`, { id: img.id }, app.tokens.memberA);
    expect(d.deleteArtifact).toEqual({ id: img.id, typeName: 'images' });
    expect((await ok(`query($id: ID!) { artifact(id: $id) { id } }`, { id: img.id }, app.tokens.memberA)).artifact).toBeNull();
  });

  it('hides os_hidden images from default lists, as Glance does', async () => {
    const name = `hidden-${Date.now()}`;
    await image({ name, osHidden: true });
    const byDefault = await ok(`query($n: String!) { images(filter: {name: {eq: $n}}) { totalCount } }`, { n: name }, app.tokens.memberA);
    const asked = await ok(`query($n: String!) { images(filter: {name: {eq: $n}, osHidden: true}) { totalCount } }`, { n: name }, app.tokens.memberA);
    expect(byDefault.images.totalCount).toBe(0);
    expect(asked.images.totalCount).toBe(1);
  });
});

describe('configured artifact types', () => {
  it('appear in the schema as their own GraphQL type with typed fields', async () => {
    const d = await ok(`{ __type(name: "AnsibleRole") { interfaces { name } fields { name type { kind name ofType { name } } } }
      artifactType(name: "ansible_roles") { graphqlTypeName lifecycle builtin uniqueVersions statuses
        fields { name graphqlName kind container mutable requiredOnActivate sortable filterOps default }
        links { name many mutable } } }`);
    const fields = Object.fromEntries(d.__type.fields.map((f: any) => [f.name, f.type]));
    expect(d.__type.interfaces.map((i: any) => i.name).sort()).toEqual(['Artifact', 'Node']);
    expect(fields.galaxyUrl).toMatchObject({ kind: 'SCALAR', name: 'String' });
    expect(fields.stars).toMatchObject({ kind: 'SCALAR', name: 'SafeInt' });
    expect(fields.certified).toMatchObject({ kind: 'NON_NULL', ofType: { name: 'Boolean' } });
    expect(fields.platforms.kind).toBe('LIST');
    expect(fields.archive).toMatchObject({ kind: 'OBJECT', name: 'Blob' });
    expect(d.artifactType).toMatchObject({ graphqlTypeName: 'AnsibleRole', lifecycle: 'ARTIFACT', builtin: false, uniqueVersions: true, statuses: ['DRAFTED', 'ACTIVE', 'DEACTIVATED', 'DELETED'] });
    expect(d.artifactType.fields.find((f: any) => f.name === 'galaxy_url')).toEqual({ name: 'galaxy_url', graphqlName: 'galaxyUrl', kind: 'STRING', container: 'NONE', mutable: true, requiredOnActivate: false, sortable: true, filterOps: ['EQ', 'NEQ', 'IN', 'LIKE'], default: null });
    expect(d.artifactType.links).toEqual([{ name: 'depends_on', many: true, mutable: false }, { name: 'parent', many: false, mutable: true }]);
  });

  it('lists the built-in Glare types with their fields', async () => {
    const d = await ok(`{ artifactTypes { name graphqlTypeName lifecycle } heat: artifactType(name: "heat_templates") { fields { name kind } } }`);
    const names = d.artifactTypes.map((t: any) => t.name);
    expect(names).toEqual(expect.arrayContaining(['images', 'heat_templates', 'heat_environments', 'murano_packages', 'tosca_templates', 'ansible_roles']));
    expect(d.heat.fields).toEqual(expect.arrayContaining([{ name: 'template', kind: 'BLOB' }, { name: 'nested_templates', kind: 'BLOB_DICT' }]));
  });
});

describe('lifecycle and revisions', () => {
  it('activates only when required fields are set, freezes immutable fields, and keeps mutable ones editable', async () => {
    const r = await role('lint', { version: '1.0', fields: { galaxy_url: 'https://galaxy.example/lint' } });
    expect(r).toMatchObject({ status: 'DRAFTED', visibility: 'PRIVATE', version: '1.0.0', certified: false, platforms: [] });
    expect(await code(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('ACTIVATION_INCOMPLETE');
    await ok(`mutation($id: ID!) { updateArtifact(id: $id, input: {fields: {min_ansible: "2.9"}}) { id } }`, { id: r.id }, app.tokens.memberA);
    const act = await ok(`mutation($id: ID!) { activateArtifact(id: $id) { status activatedAt revision } }`, { id: r.id }, app.tokens.memberA);
    expect(act.activateArtifact.status).toBe('ACTIVE');
    expect(act.activateArtifact.activatedAt).not.toBeNull();
    expect(await code(`mutation($id: ID!) { updateArtifact(id: $id, input: {fields: {min_ansible: "2.10"}}) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FIELD_IMMUTABLE');
    expect(await code(`mutation($id: ID!) { updateArtifact(id: $id, input: {version: "2.0"}) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FIELD_IMMUTABLE');
    const mut = await ok(`mutation($id: ID!) { updateArtifact(id: $id, input: {fields: {stars: 5}}) { ... on AnsibleRole { stars } } }`, { id: r.id }, app.tokens.memberA);
    expect(mut.updateArtifact.stars).toBe(5);
  });

  it('lets only admins deactivate and reactivate Glare artifacts, and nothing changes while deactivated', async () => {
    const r = await role('deact', { fields: { min_ansible: '2' } });
    await ok(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: r.id }, app.tokens.memberA);
    expect(await code(`mutation($id: ID!) { deactivateArtifact(id: $id) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FORBIDDEN');
    expect((await ok(`mutation($id: ID!) { deactivateArtifact(id: $id) { status } }`, { id: r.id })).deactivateArtifact.status).toBe('DEACTIVATED');
    expect(await code(`mutation($id: ID!) { addTags(id: $id, tags: ["t"]) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FIELD_IMMUTABLE');
    expect(await code(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: r.id })).toBe('TRANSITION_FORBIDDEN');
    expect((await ok(`mutation($id: ID!) { reactivateArtifact(id: $id) { status } }`, { id: r.id })).reactivateArtifact.status).toBe('ACTIVE');
  });

  it('publishes only active artifacts, and only as an admin', async () => {
    const r = await role('pub', { fields: { min_ansible: '2' } });
    expect(await code(`mutation($id: ID!) { publishArtifact(id: $id) { id } }`, { id: r.id })).toBe('FORBIDDEN');
    await ok(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: r.id }, app.tokens.memberA);
    expect(await code(`mutation($id: ID!) { publishArtifact(id: $id) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FORBIDDEN');
    expect((await ok(`mutation($id: ID!) { publishArtifact(id: $id) { visibility } }`, { id: r.id })).publishArtifact.visibility).toBe('PUBLIC');
    expect((await ok(`query($id: ID!) { artifact(id: $id) { name } }`, { id: r.id }, app.tokens.memberB)).artifact.name).toBe('pub');
  });

  it('refuses a stale ifRevision with REVISION_CONFLICT and loses no concurrent update', async () => {
    const r = await role('rev');
    await ok(`mutation($id: ID!) { addTags(id: $id, tags: ["one"], ifRevision: 1) { revision } }`, { id: r.id }, app.tokens.memberA);
    expect(await code(`mutation($id: ID!) { addTags(id: $id, tags: ["two"], ifRevision: 1) { revision } }`, { id: r.id }, app.tokens.memberA)).toBe('REVISION_CONFLICT');
    const tags = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await Promise.all(tags.map((t) => ok(`mutation($id: ID!, $t: String!) { addTags(id: $id, tags: [$t]) { revision } }`, { id: r.id, t }, app.tokens.memberA)));
    const after = await ok(`query($id: ID!) { artifact(id: $id) { tags revision } }`, { id: r.id }, app.tokens.memberA);
    expect([...after.artifact.tags].sort()).toEqual(['one', ...tags].sort());
    expect(after.artifact.revision).toBe(2 + tags.length);
  });

  it('enforces unique (type, owner, name, version) but allows another project the same name', async () => {
    await role('uniq', { version: '1.0.0' });
    expect(await code(CREATE_ROLE, { input: { typeName: 'ansible_roles', name: 'uniq', version: '1.0' } }, app.tokens.memberA)).toBe('DUPLICATE_VERSION');
    await role('uniq', { version: '1.0.0' }, app.tokens.memberB);
    const other = await role('uniq', { version: '1.0.1' });
    expect(await code(`mutation($id: ID!) { updateArtifact(id: $id, input: {version: "1.0.0"}) { id } }`, { id: other.id }, app.tokens.memberA)).toBe('DUPLICATE_VERSION');
  });
});

describe('listing', () => {
  const prefix = `list-${Date.now()}`;
  const ids: string[] = [];

  beforeAll(async () => {
    const versions = ['1.0.0', '1.2.0', '2.0.0-rc.1', '2.0.0', '0.9.0', '1.10.0'];
    for (const [i, version] of versions.entries()) {
      const r = await role(`${prefix}-${i % 2 === 0 ? 'even' : 'odd'}`, {
        version,
        tags: i % 3 === 0 ? ['blue', 'big'] : ['red'],
        properties: { tier: i < 3 ? 'gold' : 'silver' },
        fields: { stars: i * 10, platforms: i % 2 ? ['el8'] : ['focal', 'el8'], galaxy_url: `https://g/${i}` },
      });
      ids.push(r.id);
    }
  });

  const Q = `query($f: ArtifactFilter, $s: [SortInput!], $first: Int, $after: String, $last: Int, $before: String) {
    artifacts(typeName: "ansible_roles", filter: $f, sort: $s, first: $first, after: $after, last: $last, before: $before) {
      totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id name version } } } }`;
  const list = (vars: Record<string, unknown>) => ok(Q, vars, app.tokens.memberA).then((d) => d.artifacts);
  const names = (conn: any) => conn.edges.map((e: any) => e.node.version);
  const mine = { name: { like: `${prefix}-%` } };

  it('pages forward and backward with cursors and a multi-key sort', async () => {
    const sort = [{ key: 'name', direction: 'ASC' }, { key: 'version', direction: 'DESC' }];
    const all = await list({ f: mine, s: sort, first: 100 });
    expect(all.totalCount).toBe(6);
    expect(names(all)).toEqual(['2.0.0-rc.1', '1.0.0', '0.9.0', '2.0.0', '1.10.0', '1.2.0']);
    const p1 = await list({ f: mine, s: sort, first: 4 });
    expect(p1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const p2 = await list({ f: mine, s: sort, first: 4, after: p1.pageInfo.endCursor });
    expect([...names(p1), ...names(p2)]).toEqual(names(all));
    expect(p2.pageInfo.hasNextPage).toBe(false);
    const back = await list({ f: mine, s: sort, last: 2, before: p2.pageInfo.startCursor });
    expect(names(back)).toEqual(names(all).slice(2, 4));
    expect(back.pageInfo.hasPreviousPage).toBe(true);
    const tail = await list({ f: mine, s: sort, last: 2 });
    expect(names(tail)).toEqual(names(all).slice(4));
  });

  it('filters by semver range, comparisons, in, tags, properties, typed fields and time', async () => {
    expect(names(await list({ f: { ...mine, version: { range: '^1.0.0' } }, s: [{ key: 'version' }], first: 50 }))).toEqual(['1.0.0', '1.2.0', '1.10.0']);
    expect(names(await list({ f: { ...mine, version: { gte: '2.0.0-0', lt: '2.0.0' } }, first: 50 }))).toEqual(['2.0.0-rc.1']);
    expect((await list({ f: { ...mine, tags: { all: ['blue', 'big'] } } })).totalCount).toBe(2);
    expect((await list({ f: { ...mine, tags: { any: ['blue', 'red'] } } })).totalCount).toBe(6);
    expect((await list({ f: { ...mine, properties: [{ key: 'tier', eq: 'gold' }] } })).totalCount).toBe(3);
    expect((await list({ f: { ...mine, fields: [{ field: 'stars', op: 'GTE', value: 30 }] } })).totalCount).toBe(3);
    expect((await list({ f: { ...mine, fields: [{ field: 'platforms', op: 'EQ', value: 'focal' }] } })).totalCount).toBe(3);
    expect((await list({ f: { ...mine, fields: [{ field: 'galaxyUrl', op: 'IN', value: ['https://g/1', 'https://g/2'] }] } })).totalCount).toBe(2);
    expect((await list({ f: { ...mine, status: { eq: 'DRAFTED' }, createdAt: { gt: '2000-01-01T00:00:00Z' } } })).totalCount).toBe(6);
    expect((await list({ f: { ...mine, or: [{ version: { eq: '0.9' } }, { version: { eq: '2.0.0' } }] } })).totalCount).toBe(2);
    expect((await list({ f: { ...mine, not: { tags: { any: ['red'] } } } })).totalCount).toBe(2);
    const sortedByStars = await list({ f: mine, s: [{ key: 'stars', direction: 'DESC' }], first: 2 });
    expect(names(sortedByStars)).toEqual(['1.10.0', '0.9.0']);
  });

  it('returns the latest version of each name', async () => {
    const latest = await list({ f: { ...mine, latest: true }, s: [{ key: 'name' }] });
    expect(names(latest)).toEqual(['2.0.0-rc.1', '2.0.0']);
    const one = await ok(`query($n: String!) { latestArtifact(typeName: "ansible_roles", name: $n) { version } }`, { n: `${prefix}-odd` }, app.tokens.memberA);
    expect(one.latestArtifact.version).toBe('2.0.0');
  });

  it.each([
    [{ fields: [{ field: 'stars', op: 'LIKE', value: '1%' }] }, 'FILTER_INVALID'],
    [{ fields: [{ field: 'nope', op: 'EQ', value: 1 }] }, 'FILTER_INVALID'],
    [{ fields: [{ field: 'stars', op: 'EQ', value: 'ten' }] }, 'FILTER_INVALID'],
    [{ version: { range: '>>1' } }, 'VERSION_INVALID'],
  ])('rejects the bad filter %j with %s', async (f, expected) => {
    expect(await code(Q, { f }, app.tokens.memberA)).toBe(expected);
  });

  it.each([
    [{ s: [{ key: 'platforms' }] }, 'SORT_INVALID'],
    [{ s: [{ key: 'bogus' }] }, 'SORT_INVALID'],
    [{ first: -1 }, 'PAGE_SIZE_INVALID'],
    [{ first: 100000 }, 'PAGE_SIZE_INVALID'],
    [{ after: 'not-a-cursor' }, 'CURSOR_INVALID'],
  ])('rejects bad paging or sorting %j with %s', async (vars, expected) => {
    expect(await code(Q, vars, app.tokens.memberA)).toBe(expected);
  });

  it('refuses a cursor replayed with a different sort', async () => {
    const p = await list({ f: mine, s: [{ key: 'name' }], first: 1 });
    expect(await code(Q, { f: mine, s: [{ key: 'version' }], first: 1, after: p.pageInfo.endCursor }, app.tokens.memberA)).toBe('CURSOR_INVALID');
  });
});

describe('visibility, roles, members and links across projects', () => {
  it('never shows a private artifact of project A to project B, on any path', async () => {
    const secret = await role(`secret-${Date.now()}`);
    const pub = await role(`linker-${Date.now()}`, { fields: { min_ansible: '1' } });
    await ok(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: pub.id }, app.tokens.memberA);
    await ok(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "parent", targetId: $t) { id } }`, { s: pub.id, t: secret.id }, app.tokens.memberA);
    await ok(`mutation($id: ID!) { publishArtifact(id: $id) { id } }`, { id: pub.id });
    const asB = await ok(`query($id: ID!, $pub: ID!) {
      node(id: $id) { id } artifact(id: $id) { id } nodes(ids: [$id, $pub]) { id }
      artifacts(typeName: "ansible_roles", filter: {ids: [$id]}) { totalCount }
      linker: artifact(id: $pub) { links { name targetId target { id } } } }`, { id: secret.id, pub: pub.id }, app.tokens.memberB);
    expect(asB.node).toBeNull();
    expect(asB.artifact).toBeNull();
    expect(asB.nodes).toEqual([null, { id: pub.id }]);
    expect(asB.artifacts.totalCount).toBe(0);
    expect(asB.linker.links).toEqual([{ name: 'parent', targetId: secret.id, target: null }]);
    expect(await code(`mutation($id: ID!) { addTags(id: $id, tags: ["x"]) { id } }`, { id: secret.id }, app.tokens.memberB)).toBe('NOT_FOUND');
    expect(await code(`mutation($id: ID!) { deleteArtifact(id: $id) { id } }`, { id: secret.id }, app.tokens.memberB)).toBe('NOT_FOUND');
    expect(await code(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "parent", targetId: $t) { id } }`, { s: (await role(`b-${Date.now()}`, {}, app.tokens.memberB)).id, t: secret.id }, app.tokens.memberB)).toBe('LINK_INVALID');
  });

  it('lets readers read but not write', async () => {
    const r = await role(`ro-${Date.now()}`);
    expect((await ok(`query($id: ID!) { artifact(id: $id) { id } }`, { id: r.id }, app.tokens.readerA)).artifact.id).toBe(r.id);
    expect(await code(`mutation($id: ID!) { addTags(id: $id, tags: ["x"]) { id } }`, { id: r.id }, app.tokens.readerA)).toBe('FORBIDDEN');
    expect(await code(CREATE_ROLE, { input: { typeName: 'ansible_roles', name: 'nope' } }, app.tokens.readerA)).toBe('FORBIDDEN');
  });

  it('shares an image with members who accept, reject, and see only their own entry', async () => {
    const img = await image({ name: `shared-${Date.now()}` });
    const listB = (status?: string) => ok(`query($n: String!, $m: MemberStatusFilter) { images(filter: {name: {eq: $n}, memberStatus: $m}) { totalCount } }`, { n: img.name, m: status }, app.tokens.memberB).then((d) => d.images.totalCount);
    const added = await ok(`mutation($id: ID!) { addMember(artifactId: $id, project: "project-b") { project status artifactId } }`, { id: img.id }, app.tokens.memberA);
    expect(added.addMember).toEqual({ project: 'project-b', status: 'PENDING', artifactId: img.id });
    expect(await code(`mutation($id: ID!) { addMember(artifactId: $id, project: "project-b") { project } }`, { id: img.id }, app.tokens.memberA)).toBe('MEMBER_EXISTS');
    expect(await listB()).toBe(0);
    expect(await listB('PENDING')).toBe(1);
    expect(await code(`mutation($id: ID!) { updateMemberStatus(artifactId: $id, project: "project-b", status: ACCEPTED) { status } }`, { id: img.id }, app.tokens.memberA)).toBe('FORBIDDEN');
    await ok(`mutation($id: ID!) { updateMemberStatus(artifactId: $id, project: "project-b", status: ACCEPTED) { status } }`, { id: img.id }, app.tokens.memberB);
    expect(await listB()).toBe(1);
    await ok(`mutation($id: ID!) { addMember(artifactId: $id, project: "project-c") { project } }`, { id: img.id }, app.tokens.memberA);
    const seenByB = await ok(`query($id: ID!) { image(id: $id) { members { project status } } }`, { id: img.id }, app.tokens.memberB);
    expect(seenByB.image.members).toEqual([{ project: 'project-b', status: 'ACCEPTED' }]);
    const seenByA = await ok(`query($id: ID!) { image(id: $id) { members { project } } }`, { id: img.id }, app.tokens.memberA);
    expect(seenByA.image.members.map((m: any) => m.project)).toEqual(['project-b', 'project-c']);
    await ok(`mutation($id: ID!) { updateMemberStatus(artifactId: $id, project: "project-b", status: REJECTED) { status } }`, { id: img.id }, app.tokens.memberB);
    expect(await listB()).toBe(0);
    expect(await listB('REJECTED')).toBe(1);
    await ok(`mutation($id: ID!) { removeMember(artifactId: $id, project: "project-b") }`, { id: img.id }, app.tokens.memberA);
    expect((await ok(`query($id: ID!) { image(id: $id) { id } }`, { id: img.id }, app.tokens.memberB)).image).toBeNull();
    expect(await code(`mutation($id: ID!) { removeMember(artifactId: $id, project: "project-b") }`, { id: img.id }, app.tokens.memberA)).toBe('MEMBER_NOT_FOUND');
  });

  it('allows members only on shared artifacts', async () => {
    const img = await image({ name: 'private-img', visibility: 'PRIVATE' });
    expect(await code(`mutation($id: ID!) { addMember(artifactId: $id, project: "project-b") { project } }`, { id: img.id }, app.tokens.memberA)).toBe('NOT_SHARED');
  });

  it('enforces declared link cardinality and mutability', async () => {
    const a = await role(`la-${Date.now()}`, { fields: { min_ansible: '1' } });
    const b = await role(`lb-${Date.now()}`);
    const c = await role(`lc-${Date.now()}`);
    await ok(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "parent", targetId: $t) { id } }`, { s: a.id, t: b.id }, app.tokens.memberA);
    const replaced = await ok(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "parent", targetId: $t) { links(name: "parent") { targetId target { name } } } }`, { s: a.id, t: c.id }, app.tokens.memberA);
    expect(replaced.addLink.links).toEqual([{ targetId: c.id, target: { name: c.name } }]);
    await ok(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "depends_on", targetId: $t) { id } }`, { s: a.id, t: b.id }, app.tokens.memberA);
    await ok(`mutation($s: ID!, $t: ID!) { addLink(sourceId: $s, name: "depends_on", targetId: $t) { id } }`, { s: a.id, t: c.id }, app.tokens.memberA);
    await ok(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: a.id }, app.tokens.memberA);
    expect(await code(`mutation($s: ID!) { removeLink(sourceId: $s, name: "depends_on") { id } }`, { s: a.id }, app.tokens.memberA)).toBe('FIELD_IMMUTABLE');
    const after = await ok(`mutation($s: ID!) { removeLink(sourceId: $s, name: "parent") { links { name } } }`, { s: a.id }, app.tokens.memberA);
    expect(after.removeLink.links).toEqual([{ name: 'depends_on' }, { name: 'depends_on' }]);
    expect(await code(`mutation($s: ID!) { addLink(sourceId: $s, name: "parent", targetId: $s) { id } }`, { s: b.id }, app.tokens.memberA)).toBe('LINK_INVALID');
  });
});

describe('bad input gets a stable code and writes nothing', () => {
  it.each([
    ['malformed id', `{ artifact(id: "nope") { id } }`, 'INVALID_ID'],
    ['unknown type', `mutation { createArtifact(input: {typeName: "widgets", name: "w"}) { id } }`, 'TYPE_UNKNOWN'],
    ['unknown field', `mutation { createArtifact(input: {typeName: "ansible_roles", name: "w", fields: {colour: "red"}}) { id } }`, 'FIELD_UNKNOWN'],
    ['wrong value type', `mutation { createArtifact(input: {typeName: "ansible_roles", name: "w", fields: {stars: "many"}}) { id } }`, 'FIELD_INVALID'],
    ['value out of range', `mutation { createArtifact(input: {typeName: "ansible_roles", name: "w", fields: {stars: -1}}) { id } }`, 'FIELD_INVALID'],
    ['invalid version', `mutation { createArtifact(input: {typeName: "ansible_roles", name: "w", version: "one"}) { id } }`, 'VERSION_INVALID'],
    ['empty name', `mutation { createArtifact(input: {typeName: "ansible_roles", name: " "}) { id } }`, 'FIELD_INVALID'],
    ['oversize name', `mutation { createArtifact(input: {typeName: "ansible_roles", name: "${'n'.repeat(256)}"}) { id } }`, 'FIELD_INVALID'],
    ['oversize tag', `mutation { createImage(input: {name: "t", tags: ["${'t'.repeat(256)}"]}) { id } }`, 'FIELD_INVALID'],
    ['tag with a slash', `mutation { createImage(input: {name: "t", tags: ["a/b"]}) { id } }`, 'FIELD_INVALID'],
    ['negative min_ram', `mutation { createImage(input: {name: "t", minRam: -5}) { id } }`, 'FIELD_INVALID'],
    ['non-string property', `mutation { createImage(input: {name: "t", properties: {x: 1}}) { id } }`, 'FIELD_INVALID'],
    ['system field on create', `mutation { createArtifact(input: {typeName: "images", name: "t", fields: {checksum: "x"}}) { id } }`, 'FIELD_READ_ONLY'],
    ['unknown GraphQL field', `{ artifacts { nodes { colour } } }`, 'GRAPHQL_VALIDATION_FAILED'],
    ['wrong argument type', `{ artifacts(first: "ten") { totalCount } }`, 'GRAPHQL_VALIDATION_FAILED'],
  ])('%s', async (_what, query, expected) => {
    expect(await code(query, undefined, app.tokens.memberA)).toBe(expected);
  });

  it('answers an unknown id with null, not an error', async () => {
    expect((await ok(`{ artifact(id: "00000000-0000-4000-8000-000000000000") { id } }`)).artifact).toBeNull();
  });

  it('refuses to activate an image by hand: images become active when their data arrives', async () => {
    const img = await image({ name: 'manual' });
    expect(await code(`mutation($id: ID!) { activateArtifact(id: $id) { id } }`, { id: img.id }, app.tokens.memberA)).toBe('TRANSITION_FORBIDDEN');
  });

  it('leaves the artifact untouched when one part of an update is invalid', async () => {
    const r = await role(`atomic-${Date.now()}`);
    expect(await code(`mutation($id: ID!) { updateArtifact(id: $id, input: {name: "renamed", fields: {stars: "bad"}}) { id } }`, { id: r.id }, app.tokens.memberA)).toBe('FIELD_INVALID');
    const after = await ok(`query($id: ID!) { artifact(id: $id) { name revision } }`, { id: r.id }, app.tokens.memberA);
    expect(after.artifact).toEqual({ name: r.name, revision: 1 });
  });

  it('counts quota on artifact number per project and type', async () => {
    await ok(`mutation { setQuotas(projectId: "project-q", quotas: [{name: "max_artifact_number:ansible_roles", value: 1}]) { projectId } }`);
    const q = app.tokens.memberQ;
    await role('q1', {}, q);
    expect(await code(CREATE_ROLE, { input: { typeName: 'ansible_roles', name: 'q2' } }, q)).toBe('QUOTA_EXCEEDED');
    const usage = await ok(`{ usage { projectId totalCount types { typeName count maxCount } quotas { name value } } }`, undefined, q);
    expect(usage.usage.types.find((t: any) => t.typeName === 'ansible_roles')).toEqual({ typeName: 'ansible_roles', count: 1, maxCount: 1 });
    expect(usage.usage.quotas).toEqual([{ name: 'max_artifact_number:ansible_roles', value: 1 }]);
    expect(await code(`mutation { setQuotas(projectId: "project-q", quotas: [{name: "max_things", value: 1}]) { projectId } }`)).toBe('BAD_INPUT');
    expect(await code(`mutation { setQuotas(projectId: "project-q", quotas: []) { projectId } }`, undefined, q)).toBe('FORBIDDEN');
    expect(await code(`{ usage(projectId: "project-a") { totalCount } }`, undefined, q)).toBe('FORBIDDEN');
  });
});

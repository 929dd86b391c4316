import { randomUUID } from 'node:crypto';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * Metadata definitions through GraphQL over real HTTP: the property-picker read (namespaces
 * for a resource type, prefixed names, enums), the admin mutations, the policy and the
 * error codes in extensions.code; and that GraphQL and the Glance facade share one catalog.
 */
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const RUN = randomUUID().slice(0, 8);

const PICKER = `
  query Picker($rt: String) {
    metadefNamespaces(resourceType: $rt) {
      namespace displayName visibility protected
      resourceTypeAssociations { name prefix propertiesTarget }
      properties { name title type enumValues description schema }
      objects { name required properties { name type } }
      tags { name }
    }
  }`;

function codes(body: { errors?: { extensions?: { code?: string } }[] }): (string | undefined)[] {
  return (body.errors ?? []).map((e) => e.extensions?.code);
}

describe('reads', () => {
  it('gives a property picker the namespaces of a resource type with prefixed property names', async () => {
    const res = await app.gql(PICKER, { rt: 'OS::Glance::Image' }, app.tokens.memberB);
    expect(res.body.errors).toBeUndefined();
    const namespaces = res.body.data.metadefNamespaces as any[];
    const names = namespaces.map((n) => n.namespace);
    expect(names).toEqual(expect.arrayContaining(['Vitrine::Libvirt::Devices', 'Vitrine::Compute::CPU', 'Vitrine::Image::OperatingSystem']));
    const devices = namespaces.find((n) => n.namespace === 'Vitrine::Libvirt::Devices');
    expect(devices).toMatchObject({ visibility: 'PUBLIC', protected: true });
    const diskBus = devices.properties.find((p: { name: string }) => p.name === 'hw_disk_bus');
    expect(diskBus).toMatchObject({ type: 'string', title: expect.any(String), description: expect.any(String) });
    expect(diskBus.enumValues).toEqual(expect.arrayContaining(['virtio', 'ide']));
    expect(diskBus.schema.enum).toEqual(diskBus.enumValues);
    const cpu = namespaces.find((n) => n.namespace === 'Vitrine::Compute::CPU');
    expect(cpu.objects[0].properties.map((p: { name: string }) => p.name)).toContain('hw_cpu_sockets');

    // Flavors get the flavor prefix, and only the namespaces associated with flavors.
    const flavors = await app.gql(PICKER, { rt: 'OS::Nova::Flavor' }, app.tokens.memberB);
    const flavorNamespaces = flavors.body.data.metadefNamespaces as any[];
    expect(flavorNamespaces.map((n) => n.namespace)).not.toContain('Vitrine::Image::OperatingSystem');
    expect(flavorNamespaces.find((n) => n.namespace === 'Vitrine::Compute::CPU').properties.map((p: { name: string }) => p.name)).toContain('hw:cpu_policy');

    const types = await app.gql('{ metadefResourceTypes { name protected } }', {}, app.tokens.readerA);
    expect(types.body.data.metadefResourceTypes).toEqual(expect.arrayContaining([{ name: 'OS::Glance::Image', protected: true }]));
  });

  it('answers null for a namespace that is missing or private to another project', async () => {
    const name = `gql-private-${RUN}`;
    const created = await app.gql(`mutation($i: CreateMetadefNamespaceInput!) { createMetadefNamespace(input: $i) { namespace owner visibility } }`, {
      i: { namespace: name, visibility: 'PRIVATE', owner: 'project-a' },
    });
    expect(created.body.data.createMetadefNamespace).toEqual({ namespace: name, owner: 'project-a', visibility: 'PRIVATE' });
    const read = (token: string) => app.gql('query($n: String!) { metadefNamespace(namespace: $n) { namespace } }', { n: name }, token);
    expect((await read(app.tokens.readerA)).body.data.metadefNamespace).toEqual({ namespace: name });
    expect((await read(app.tokens.memberB)).body.data.metadefNamespace).toBeNull();
    expect((await app.gql('{ metadefNamespace(namespace: "nope") { namespace } }')).body.data.metadefNamespace).toBeNull();
  });
});

describe('mutations', () => {
  it('builds a namespace, edits its contents and deletes it; the facade sees the same catalog', async () => {
    const name = `gql-${RUN}`;
    const created = await app.gql(`mutation($i: CreateMetadefNamespaceInput!) {
        createMetadefNamespace(input: $i) { namespace displayName protected resourceTypeAssociations { name prefix } properties { name enumValues } tags { name } objects { name required } }
      }`, {
      i: {
        namespace: name,
        displayName: 'Watchdog',
        visibility: 'PUBLIC',
        resourceTypeAssociations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }],
        properties: [{ name: 'watchdog_action', title: 'Watchdog action', type: 'string', enumValues: ['reset', 'poweroff', 'pause', 'none'] }],
        objects: [{ name: 'Timer', required: ['period'], properties: [{ name: 'period', title: 'Period', type: 'integer', schema: { minimum: 1 } }] }],
        tags: ['watchdog'],
      },
    });
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createMetadefNamespace).toEqual({
      namespace: name, displayName: 'Watchdog', protected: false,
      resourceTypeAssociations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }],
      properties: [{ name: 'watchdog_action', enumValues: ['reset', 'poweroff', 'pause', 'none'] }],
      tags: [{ name: 'watchdog' }],
      objects: [{ name: 'Timer', required: ['period'] }],
    });
    const rest = await app.http('GET', `/v2/metadefs/namespaces/${name}?resource_type=OS::Glance::Image`, { headers: { 'x-auth-token': app.tokens.memberB } });
    expect(rest.body.properties.hw_watchdog_action.enum).toEqual(['reset', 'poweroff', 'pause', 'none']);
    expect(rest.body.objects[0].properties.hw_period).toEqual({ title: 'Period', type: 'integer', minimum: 1 });

    const edits = await app.gql(`mutation($ns: String!) {
        p: createMetadefProperty(namespace: $ns, input: { name: "extra", title: "Extra", type: "boolean" }) { name type }
        u: updateMetadefProperty(namespace: $ns, name: "watchdog_action", input: { name: "watchdog_action", title: "Action", type: "string", enumValues: ["reset"] }) { title enumValues }
        o: updateMetadefObject(namespace: $ns, name: "Timer", input: { name: "Clock", description: "renamed" }) { name description required }
        t: createMetadefTags(namespace: $ns, names: ["more"]) { name }
        r: renameMetadefTag(namespace: $ns, name: "watchdog", newName: "wd") { name }
        a: associateMetadefResourceType(namespace: $ns, input: { name: "OS::Cinder::Volume", prefix: "hw_", propertiesTarget: "image" }) { name propertiesTarget }
        n: updateMetadefNamespace(namespace: $ns, input: { description: "timers", protected: true }) { displayName description protected visibility }
      }`, { ns: name });
    expect(edits.body.errors).toBeUndefined();
    expect(edits.body.data).toEqual({
      p: { name: 'extra', type: 'boolean' },
      u: { title: 'Action', enumValues: ['reset'] },
      o: { name: 'Clock', description: 'renamed', required: [] },
      t: [{ name: 'more' }],
      r: { name: 'wd' },
      a: { name: 'OS::Cinder::Volume', propertiesTarget: 'image' },
      n: { displayName: 'Watchdog', description: 'timers', protected: true, visibility: 'PUBLIC' },
    });
    const tags = await app.gql('query($n: String!) { metadefNamespace(namespace: $n) { tags { name } } }', { n: name });
    expect(tags.body.data.metadefNamespace.tags.map((t: { name: string }) => t.name).sort()).toEqual(['more', 'wd']);

    const protectedDelete = await app.gql('mutation($n: String!) { deleteMetadefNamespace(namespace: $n) }', { n: name });
    expect(codes(protectedDelete.body)).toEqual(['METADEF_PROTECTED']);
    await app.gql('mutation($n: String!) { updateMetadefNamespace(namespace: $n, input: { protected: false, namespace: "renamed-' + RUN + '" }) { namespace } }', { n: name });
    const moved = await app.gql('query($n: String!) { metadefNamespace(namespace: $n) { properties { name } } }', { n: `renamed-${RUN}` });
    expect(moved.body.data.metadefNamespace.properties.map((p: { name: string }) => p.name).sort()).toEqual(['extra', 'watchdog_action']);
    const deleted = await app.gql('mutation($n: String!) { deleteMetadefNamespace(namespace: $n) }', { n: `renamed-${RUN}` });
    expect(deleted.body.data.deleteMetadefNamespace).toBe(true);
    expect((await app.http('GET', `/v2/metadefs/namespaces/renamed-${RUN}`, { headers: { 'x-auth-token': app.tokens.admin } })).status).toBe(404);
  });

  it('reports errors with stable codes', async () => {
    const create = (i: Record<string, unknown>, token = app.tokens.admin) =>
      app.gql('mutation($i: CreateMetadefNamespaceInput!) { createMetadefNamespace(input: $i) { namespace } }', { i }, token);
    expect(codes((await create({ namespace: `m-${RUN}` }, app.tokens.memberA)).body)).toEqual(['FORBIDDEN']);
    expect(codes((await create({ namespace: 'x'.repeat(81) })).body)).toEqual(['BAD_INPUT']);
    expect(codes((await create({ namespace: `e-${RUN}`, properties: [{ name: 'p', title: 'P', type: 'text' }] })).body)).toEqual(['BAD_INPUT']);
    expect((await create({ namespace: `d-${RUN}` })).body.errors).toBeUndefined();
    expect(codes((await create({ namespace: `d-${RUN}` })).body)).toEqual(['METADEF_EXISTS']);
    // Nothing of a refused create is left behind.
    expect(codes((await create({ namespace: `t-${RUN}`, tags: ['a', 'a'] })).body)).toEqual(['METADEF_EXISTS']);
    expect((await app.gql(`{ metadefNamespace(namespace: "t-${RUN}") { namespace } }`)).body.data.metadefNamespace).toBeNull();
    const missing = await app.gql(`mutation { deleteMetadefTag(namespace: "d-${RUN}", name: "nope") }`);
    expect(codes(missing.body)).toEqual(['METADEF_NOT_FOUND']);
    const nsMissing = await app.gql('mutation { createMetadefProperty(namespace: "nope", input: { name: "a", title: "A", type: "string" }) { name } }');
    expect(codes(nsMissing.body)).toEqual(['METADEF_NOT_FOUND']);
  });
});

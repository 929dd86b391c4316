import { randomUUID } from 'node:crypto';
import { startTestApp, type HttpResult, type TestApp } from '../helpers/app';

/**
 * Metadata definitions through the Glance facade over real HTTP: Tempest 33's metadef flows
 * (tempest/api/image/v2/admin/test_images_metadefs_*.py and test_images_metadefs_schema.py,
 * with the status codes its clients expect), the default catalog of a fresh deployment,
 * Glance's default policy (admins write; public and own-project namespaces are readable)
 * and the error codes (400 bad body, 403 read-only / protected / not admin, 404, 409).
 */
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => app?.close());

const RUN = randomUUID().slice(0, 8);
type Who = keyof TestApp['tokens'];

function call(method: string, path: string, who: Who = 'admin', options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<HttpResult> {
  return app.http(method, `/v2${path}`, { headers: { 'x-auth-token': app.tokens[who], accept: 'application/json', ...options.headers }, body: options.body });
}

async function createNamespace(name: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: name, visibility: 'public', description: 'Tempest', display_name: name, protected: false, ...extra } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('schemas (test_images_metadefs_schema.py)', () => {
  it.each([
    ['namespace', 'namespace'], ['namespaces', 'namespaces'], ['resource_type', 'resource_type_association'], ['resource_types', 'resource_type_associations'],
    ['object', 'object'], ['objects', 'objects'], ['property', 'property'], ['properties', 'properties'], ['tag', 'tag'], ['tags', 'tags'],
  ])('serves metadefs/%s named %s', async (path, name) => {
    const res = await call('GET', `/schemas/metadefs/${path}`, 'readerA');
    expect(res.status).toBe(200);
    expect(res.body.name).toBe(name);
  });

  it('answers 405 with Allow on other methods', async () => {
    const res = await call('POST', '/schemas/metadefs/namespace');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET');
  });
});

describe('default catalog', () => {
  it('lists the usual resource types and useful public namespaces to every project', async () => {
    const types = await call('GET', '/metadefs/resource_types', 'readerA');
    expect(types.status).toBe(200);
    const names = types.body.resource_types.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Server', 'OS::Nova::Aggregate', 'OS::Trove::Instance']));
    expect(Object.keys(types.body.resource_types[0]).sort()).toEqual(['created_at', 'name', 'updated_at']);

    const forImages = await call('GET', '/metadefs/namespaces?resource_types=OS::Glance::Image', 'memberB');
    expect(forImages.status).toBe(200);
    const devices = forImages.body.namespaces.find((n: { namespace: string }) => n.namespace === 'Vitrine::Libvirt::Devices');
    expect(devices).toMatchObject({ visibility: 'public', protected: true, self: '/v2/metadefs/namespaces/Vitrine::Libvirt::Devices' });
    expect(devices.resource_type_associations).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'OS::Glance::Image', prefix: 'hw_' })]));

    // What a property picker shows for images: prefixed names with enums.
    const shown = await call('GET', '/metadefs/namespaces/Vitrine::Libvirt::Devices?resource_type=OS::Glance::Image', 'memberB');
    expect(shown.status).toBe(200);
    expect(shown.body.properties.hw_disk_bus).toMatchObject({ type: 'string', enum: expect.arrayContaining(['virtio', 'scsi', 'ide']) });
    expect(shown.body.properties.hw_vif_model.enum).toContain('e1000');
    const os = await call('GET', '/metadefs/namespaces/Vitrine::Image::OperatingSystem?resource_type=OS::Glance::Image', 'memberB');
    expect(Object.keys(os.body.properties)).toEqual(expect.arrayContaining(['os_distro', 'os_type', 'os_version']));
    // A flavor sees the CPU namespace with the flavor prefix, objects included.
    const cpu = await call('GET', '/metadefs/namespaces/Vitrine::Compute::CPU?resource_type=OS::Nova::Flavor', 'memberB');
    expect(Object.keys(cpu.body.properties)).toContain('hw:cpu_policy');
    expect(Object.keys(cpu.body.objects[0].properties)).toContain('hw:cpu_sockets');

    // Protected: even an admin cannot delete it.
    expect((await call('DELETE', '/metadefs/namespaces/Vitrine::Compute::CPU')).status).toBe(403);
    expect((await call('DELETE', '/metadefs/namespaces/Vitrine::Compute::CPU/properties/cpu_policy')).status).toBe(403);
  });
});

describe('namespaces (test_images_metadefs_namespaces.py)', () => {
  it('creates, lists, shows, refuses to delete while protected, updates and deletes', async () => {
    const types = await call('GET', '/metadefs/resource_types');
    const resourceName = types.body.resource_types[0].name as string;
    const name = `namespace-${RUN}`;
    const created = await call('POST', '/metadefs/namespaces', 'admin', {
      body: { namespace: name, visibility: 'public', description: 'Tempest', display_name: name, resource_type_associations: [{ name: resourceName }], protected: true },
    });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/v2/metadefs/namespaces/${name}`);
    expect(created.body).toMatchObject({ namespace: name, visibility: 'public', protected: true, owner: 'admin', resource_type_associations: [{ name: resourceName }] });

    const list = await call('GET', '/metadefs/namespaces');
    expect(list.body.namespaces.map((n: { namespace: string }) => n.namespace)).toContain(name);
    expect(list.body.schema).toBe('/v2/schemas/metadefs/namespaces');
    const shown = await call('GET', `/metadefs/namespaces/${name}`);
    expect(shown.body).toMatchObject({ namespace: name, visibility: 'public' });
    expect((await call('DELETE', `/metadefs/namespaces/${name}`)).status).toBe(403);

    const updated = await call('PUT', `/metadefs/namespaces/${name}`, 'admin', { body: { namespace: name, description: 'Tempest', visibility: 'private', display_name: name, protected: false } });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ visibility: 'private', protected: false });
    expect((await call('DELETE', `/metadefs/namespaces/${name}`)).status).toBe(204);
    expect((await call('GET', `/metadefs/namespaces/${name}`)).status).toBe(404);
  });

  it('answers 409 for a duplicate, 400 for a bad body, 403 for read-only fields', async () => {
    const name = `dup-${RUN}`;
    await createNamespace(name);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: name } })).status).toBe(409);
    const bad = await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: `x-${RUN}`, visibility: 'shared' } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain("'shared' is not one of ['public', 'private']");
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: { display_name: 'no name' } })).status).toBe(400);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: 'x'.repeat(81) } })).status).toBe(400);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: `y-${RUN}`, unknown: 1 } })).status).toBe(400);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: { namespace: `y-${RUN}`, created_at: 'now' } })).status).toBe(403);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: 'not json' })).status).toBe(400);
    expect((await call('POST', '/metadefs/namespaces', 'admin', { body: [1] })).status).toBe(400);
    expect((await call('PATCH', '/metadefs/namespaces')).status).toBe(405);
  });

  it('applies the default policy: only admins write, private namespaces stay in their project', async () => {
    const name = `private-${RUN}`;
    await createNamespace(name, { visibility: 'private', owner: 'project-a' });
    expect((await call('GET', `/metadefs/namespaces/${name}`, 'readerA')).status).toBe(200);
    expect((await call('GET', `/metadefs/namespaces/${name}`, 'memberB')).status).toBe(404);
    expect((await call('GET', `/metadefs/namespaces/${name}/properties`, 'memberB')).status).toBe(404);
    const listed = (who: Who) => call('GET', '/metadefs/namespaces?limit=1000', who).then((r) => r.body.namespaces.map((n: { namespace: string }) => n.namespace));
    expect(await listed('memberA')).toContain(name);
    expect(await listed('memberB')).not.toContain(name);
    expect((await call('POST', '/metadefs/namespaces', 'memberA', { body: { namespace: `member-${RUN}` } })).status).toBe(403);
    expect((await call('PUT', `/metadefs/namespaces/${name}`, 'memberA', { body: { namespace: name } })).status).toBe(403);
    expect((await call('DELETE', `/metadefs/namespaces/${name}`, 'memberA')).status).toBe(403);
    expect((await call('POST', `/metadefs/namespaces/${name}/tags/t`, 'memberA')).status).toBe(403);
    // Invisible is not found, even for writes.
    expect((await call('DELETE', `/metadefs/namespaces/${name}`, 'memberB')).status).toBe(404);
  });

  it('pages with limit and marker, sorted and filtered', async () => {
    for (const n of ['p1', 'p2', 'p3']) await createNamespace(`page-${RUN}-${n}`, { visibility: 'private' });
    const first = await call('GET', '/metadefs/namespaces?visibility=private&sort_key=namespace&sort_dir=asc&limit=2');
    expect(first.status).toBe(200);
    const mine = (r: HttpResult) => r.body.namespaces.map((n: { namespace: string }) => n.namespace);
    expect(mine(first)).toHaveLength(2);
    expect(first.body.next).toContain('marker=');
    const rest = await call('GET', first.body.next.replace('/v2', ''));
    expect(rest.status).toBe(200);
    const all = [...mine(first), ...mine(rest)];
    expect(all.filter((n: string) => n.startsWith(`page-${RUN}`))).toEqual([`page-${RUN}-p1`, `page-${RUN}-p2`, `page-${RUN}-p3`]);
    expect((await call('GET', '/metadefs/namespaces?sort_dir=sideways')).status).toBe(400);
    expect((await call('GET', '/metadefs/namespaces?visibility=shared')).status).toBe(400);
    expect((await call('GET', '/metadefs/namespaces?limit=-1')).status).toBe(400);
    expect((await call('GET', '/metadefs/namespaces?limit=x')).status).toBe(400);
  });
});

describe('objects (test_images_metadefs_namespace_objects.py)', () => {
  it('creates, lists, shows, renames and deletes objects', async () => {
    const ns = (await createNamespace(`objects-${RUN}`)).namespace as string;
    const created = await call('POST', `/metadefs/namespaces/${ns}/objects`, 'admin', {
      body: { name: 'obj', description: 'd', required: ['a'], properties: { a: { title: 'A', type: 'integer', minimum: 0 } } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'obj', self: `/v2/metadefs/namespaces/${ns}/objects/obj`, schema: '/v2/schemas/metadefs/object', required: ['a'] });
    expect((await call('POST', `/metadefs/namespaces/${ns}/objects`, 'admin', { body: { name: 'obj' } })).status).toBe(409);
    expect((await call('POST', `/metadefs/namespaces/${ns}/objects`, 'admin', { body: { name: 'bad', properties: { a: { title: 'A' } } } })).status).toBe(400);
    const listed = await call('GET', `/metadefs/namespaces/${ns}/objects`, 'memberB');
    expect(listed.body.objects.map((o: { name: string }) => o.name)).toEqual(['obj']);
    expect((await call('GET', `/metadefs/namespaces/${ns}/objects/obj`)).body.name).toBe('obj');
    const renamed = await call('PUT', `/metadefs/namespaces/${ns}/objects/obj`, 'admin', { body: { name: 'obj2' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe('obj2');
    expect(renamed.body.required).toBeUndefined();
    expect((await call('GET', `/metadefs/namespaces/${ns}/objects/obj`)).status).toBe(404);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/objects/obj2`)).status).toBe(204);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/objects/obj2`)).status).toBe(404);
    expect((await call('GET', `/metadefs/namespaces/${ns}/objects`)).body.objects).toEqual([]);
    expect((await call('GET', `/metadefs/namespaces/nope-${RUN}/objects`)).status).toBe(404);
  });
});

describe('properties (test_images_metadefs_namespace_properties.py)', () => {
  it('creates, shows (also by prefixed name), updates and deletes a property', async () => {
    const resourceName = (await call('GET', '/metadefs/resource_types')).body.resource_types[0].name as string;
    const enumValues = ['xen', 'qemu', 'kvm', 'lxc', 'uml', 'vmware', 'hyperv'];
    const ns = (await createNamespace(`props-${RUN}`)).namespace as string;
    const associated = await call('POST', `/metadefs/namespaces/${ns}/resource_types`, 'admin', { body: { name: resourceName } });
    expect(associated.status).toBe(201);
    const created = await call('POST', `/metadefs/namespaces/${ns}/properties`, 'admin', { body: { title: 'T1', name: resourceName, type: 'string', enum: enumValues } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ name: resourceName, title: 'T1', type: 'string', enum: enumValues });
    expect((await call('GET', `/metadefs/namespaces/${ns}/properties/${resourceName}`)).body.name).toBe(resourceName);
    const updated = await call('PUT', `/metadefs/namespaces/${ns}/properties/${resourceName}`, 'admin', { body: { title: 'T2', type: 'string', enum: enumValues, name: resourceName } });
    expect(updated.status).toBe(200);
    expect(updated.body.title).toBe('T2');
    expect((await call('POST', `/metadefs/namespaces/${ns}/properties`, 'admin', { body: { name: 'x', type: 'string' } })).status).toBe(400);
    expect((await call('POST', `/metadefs/namespaces/${ns}/properties`, 'admin', { body: { name: resourceName, title: 'again', type: 'string' } })).status).toBe(409);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/properties/${resourceName}`)).status).toBe(204);
    expect((await call('GET', `/metadefs/namespaces/${ns}/properties`)).body).toEqual({ properties: {} });

    // Prefixed lookups (Glance's resource_type filter on show).
    await call('POST', `/metadefs/namespaces/${ns}/resource_types`, 'admin', { body: { name: 'OS::Nova::Flavor', prefix: 'quota:' } });
    await call('POST', `/metadefs/namespaces/${ns}/properties`, 'admin', { body: { name: 'cpu_shares', title: 'Shares', type: 'integer' } });
    const byPrefix = await call('GET', `/metadefs/namespaces/${ns}/properties/quota:cpu_shares?resource_type=OS::Nova::Flavor`);
    expect(byPrefix.status).toBe(200);
    expect(byPrefix.body.name).toBe('cpu_shares');
    expect((await call('GET', `/metadefs/namespaces/${ns}/properties/cpu_shares?resource_type=OS::Nova::Flavor`)).status).toBe(404);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/properties`)).status).toBe(204);
    expect((await call('GET', `/metadefs/namespaces/${ns}/properties`)).body).toEqual({ properties: {} });
  });
});

describe('tags (test_images_metadefs_namespace_tags.py)', () => {
  const tags = [{ name: 'sample-tag1' }, { name: 'sample-tag2' }, { name: 'sample-tag3' }];

  it('creates several, lists, deletes all', async () => {
    const ns = (await createNamespace(`tags-${RUN}`)).namespace as string;
    const created = await call('POST', `/metadefs/namespaces/${ns}/tags`, 'admin', { body: { tags } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ tags });
    const listed = await call('GET', `/metadefs/namespaces/${ns}/tags`);
    expect(listed.body.tags.map((t: { name: string }) => t.name).sort()).toEqual(tags.map((t) => t.name));
    // Without X-Openstack-Append the set is replaced; with it, added to.
    await call('POST', `/metadefs/namespaces/${ns}/tags`, 'admin', { body: { tags: [{ name: 'other' }] } });
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags`)).body.tags).toEqual([{ name: 'other' }]);
    await call('POST', `/metadefs/namespaces/${ns}/tags`, 'admin', { body: { tags: [{ name: 'more' }] }, headers: { 'x-openstack-append': 'True' } });
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags`)).body.tags.map((t: { name: string }) => t.name).sort()).toEqual(['more', 'other']);
    expect((await call('POST', `/metadefs/namespaces/${ns}/tags`, 'admin', { body: { tags: [{ name: 'd' }, { name: 'd' }] } })).status).toBe(409);
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags`)).body.tags).toHaveLength(2);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/tags`)).status).toBe(204);
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags`)).body.tags).toEqual([]);
  });

  it('creates one, shows, renames and deletes it', async () => {
    const ns = (await createNamespace(`tag-${RUN}`)).namespace as string;
    const created = await call('POST', `/metadefs/namespaces/${ns}/tags/tag_name`);
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['created_at', 'name', 'updated_at']);
    expect((await call('POST', `/metadefs/namespaces/${ns}/tags/tag_name`)).status).toBe(409);
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags/tag_name`)).body.name).toBe('tag_name');
    const renamed = await call('PUT', `/metadefs/namespaces/${ns}/tags/tag_name`, 'admin', { body: { name: 'update-tag' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe('update-tag');
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/tags/update-tag`)).status).toBe(204);
    expect((await call('GET', `/metadefs/namespaces/${ns}/tags`)).body.tags).toEqual([]);
  });
});

describe('resource type associations (test_images_metadefs_resource_types.py)', () => {
  it('associates, lists and removes; a new resource type is created on the way', async () => {
    const ns = (await createNamespace(`rt-${RUN}`)).namespace as string;
    const created = await call('POST', `/metadefs/namespaces/${ns}/resource_types`, 'admin', { body: { name: `OS::Test::${RUN}`, prefix: 'tst_' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: `OS::Test::${RUN}`, prefix: 'tst_' });
    expect((await call('POST', `/metadefs/namespaces/${ns}/resource_types`, 'admin', { body: { name: `OS::Test::${RUN}` } })).status).toBe(409);
    expect((await call('GET', '/metadefs/resource_types')).body.resource_types.map((t: { name: string }) => t.name)).toContain(`OS::Test::${RUN}`);
    const listed = await call('GET', `/metadefs/namespaces/${ns}/resource_types`);
    expect(listed.body.resource_type_associations.map((a: { name: string }) => a.name)).toEqual([`OS::Test::${RUN}`]);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/resource_types/OS::Test::${RUN}`)).status).toBe(204);
    expect((await call('DELETE', `/metadefs/namespaces/${ns}/resource_types/OS::Test::${RUN}`)).status).toBe(404);
    expect((await call('GET', `/metadefs/namespaces/${ns}/resource_types`)).body.resource_type_associations).toEqual([]);
    expect((await call('PUT', `/metadefs/namespaces/${ns}/resource_types`)).headers.allow).toBe('GET, POST');
  });

  it('creates a namespace with everything in one request and deletes it with its contents', async () => {
    const name = `full-${RUN}`;
    const created = await call('POST', '/metadefs/namespaces', 'admin', {
      body: {
        namespace: name,
        resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_' }],
        properties: { disk_bus: { title: 'Disk', type: 'string', enum: ['a', 'b'] } },
        objects: [{ name: 'o1', properties: { x: { title: 'X', type: 'integer' } }, required: ['x'] }],
        tags: [{ name: 't1' }],
      },
    });
    expect(created.status).toBe(201);
    // The create echoes nested entries without their timestamps, as Glance does.
    expect(created.body.resource_type_associations).toEqual([{ name: 'OS::Glance::Image', prefix: 'hw_' }]);
    expect(created.body.objects).toEqual([{ name: 'o1', required: ['x'], properties: { x: { title: 'X', type: 'integer' } } }]);
    const shown = await call('GET', `/metadefs/namespaces/${name}?resource_type=OS::Glance::Image`);
    expect(shown.body.properties).toEqual({ hw_disk_bus: { title: 'Disk', type: 'string', enum: ['a', 'b'] } });
    expect(shown.body.objects[0]).toMatchObject({ required: ['hw_x'], properties: { hw_x: { title: 'X', type: 'integer' } } });
    expect(shown.body.tags).toEqual([{ name: 't1' }]);
    expect((await call('DELETE', `/metadefs/namespaces/${name}`)).status).toBe(204);
    // Recreated under the same name, it starts empty.
    await createNamespace(name);
    const again = await call('GET', `/metadefs/namespaces/${name}`);
    expect(again.body.properties).toBeUndefined();
    expect(again.body.objects).toBeUndefined();
    expect(again.body.tags).toBeUndefined();
  });
});

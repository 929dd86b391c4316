import { StoreMetadefCatalog } from '../../src/backends/metadefs/catalog';
import { DEFAULT_RESOURCE_TYPES, defaultCatalog } from '../../src/backends/metadefs/default-catalog';
import { VitrineError, type ErrorCode } from '../../src/domain/errors';
import {
  canReadNamespace, METADEF_SCHEMAS, namespaceView, objectView, propertyView, tagView, associationView, validateMetadef, withPrefix,
  type MetadefNamespaceDetail,
} from '../../src/domain/metadefs';
import type { Principal } from '../../src/domain/policy';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/** The pure metadef rules (schemas, visibility, prefixes), the default catalog, and the catalog's order of checks. */

const admin: Principal = { projectId: 'admin', userId: 'admin', roles: ['admin', 'member', 'reader'] };
const memberA: Principal = { projectId: 'project-a', userId: 'a', roles: ['member', 'reader'] };
const memberB: Principal = { projectId: 'project-b', userId: 'b', roles: ['member', 'reader'] };

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof VitrineError) return err.code;
    throw err;
  }
  return undefined;
}

async function asyncCodeOf(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  return promise.then(() => undefined, (err: unknown) => {
    if (err instanceof VitrineError) return err.code;
    throw err;
  });
}

describe('validateMetadef', () => {
  const ns = METADEF_SCHEMAS.namespace;

  it('accepts what Glance accepts', () => {
    validateMetadef(ns, { namespace: 'n' });
    validateMetadef(ns, {
      namespace: 'n', display_name: 'N', description: 'd', visibility: 'public', protected: true, owner: 'p',
      resource_type_associations: [{ name: 'OS::Glance::Image', prefix: 'hw_', properties_target: 'image' }],
      properties: { p: { title: 'P', type: 'string', enum: ['a'], default: 'a', readonly: false } },
      objects: [{ name: 'o', required: ['p'], properties: { p: { title: 'P', type: 'integer' } } }],
      tags: [{ name: 't' }],
    });
    validateMetadef(METADEF_SCHEMAS.property, { name: 'p', title: 'P', type: 'integer', minimum: 0, maxLength: 3, items: { type: 'string', enum: ['x'] } });
  });

  it.each([
    [{ namespace: 'n', visibility: 'shared' }, "'shared' is not one of ['public', 'private']"],
    [{ display_name: 'x' }, "'namespace' is a required property"],
    [{ namespace: 'n'.repeat(81) }, 'is too long'],
    [{ namespace: 'n', bogus: 1, other: 2 }, "Additional properties are not allowed ('bogus', 'other' were unexpected)"],
    [{ namespace: 'n', protected: 'yes' }, "'yes' is not of type 'boolean'"],
    [{ namespace: 'n', properties: { p: { title: 'P' } } }, "'type' is a required property"],
    [{ namespace: 'n', properties: { p: { title: 'P', type: 'text' } } }, "'text' is not one of"],
    [{ namespace: 'n', objects: [{ name: 'o', required: ['a', 'a'] }] }, 'has non-unique elements'],
    [{ namespace: 'n', properties: { p: { title: 'P', type: 'string', maxLength: -1 } } }, 'is less than the minimum of 0'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => validateMetadef(ns, body)).toThrow(message);
    expect(codeOf(() => validateMetadef(ns, body))).toBe('BAD_INPUT');
  });

  it('refuses bodies that are not objects, and property requirement lists that are empty', () => {
    for (const body of [null, [], 'x', 1]) expect(codeOf(() => validateMetadef(ns, body))).toBe('BAD_INPUT');
    expect(codeOf(() => validateMetadef(METADEF_SCHEMAS.property, { name: 'p', title: 'P', type: 'object', required: [] }))).toBe('BAD_INPUT');
  });

  it('names the schema in its message, as Glance does', () => {
    expect(() => validateMetadef(METADEF_SCHEMAS.tag, { name: 1 })).toThrow("Provided object does not match schema 'tag': 1 is not of type 'string'");
  });
});

describe('canReadNamespace', () => {
  it.each([
    [admin, 'private', 'project-b', true],
    [memberA, 'private', 'project-a', true],
    [memberA, 'private', 'project-b', false],
    [memberA, 'public', 'project-b', true],
    [memberB, 'private', null, true],
  ] as const)('%j reads a %s namespace of %s: %s', (p, visibility, owner, expected) => {
    expect(canReadNamespace(p, { visibility, owner })).toBe(expected);
  });
});

describe('withPrefix', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const row = { owner: null, visibility: null, protected: false, createdAt: at, updatedAt: at };
  const detail: MetadefNamespaceDetail = {
    ...namespaceView({ ...row, namespace: 'n', kind: 'namespace', name: 'n', visibility: 'public', body: {} }),
    properties: [propertyView({ ...row, namespace: 'n', kind: 'property', name: 'disk_bus', body: { title: 'D', type: 'string' } })],
    objects: [objectView({ ...row, namespace: 'n', kind: 'object', name: 'o', body: { required: ['x'], properties: { x: { title: 'X', type: 'integer' } } } })],
    tags: [tagView({ ...row, namespace: 'n', kind: 'tag', name: 't', body: {} })],
    associations: [
      associationView({ ...row, namespace: 'n', kind: 'association', name: 'OS::Glance::Image', body: { prefix: 'hw_' } }),
      associationView({ ...row, namespace: 'n', kind: 'association', name: 'OS::Nova::Server', body: {} }),
    ],
  };

  it('prefixes properties, object properties and required lists for an associated resource type', () => {
    const shown = withPrefix(detail, 'OS::Glance::Image');
    expect(shown.properties.map((p) => p.name)).toEqual(['hw_disk_bus']);
    expect(shown.objects[0].required).toEqual(['hw_x']);
    expect(Object.keys(shown.objects[0].properties)).toEqual(['hw_x']);
    expect(detail.properties[0].name).toBe('disk_bus');
  });

  it('leaves names alone without a resource type, for one without prefix, or one not associated', () => {
    for (const rt of [undefined, 'OS::Nova::Server', 'OS::Other']) expect(withPrefix(detail, rt)).toBe(detail);
  });
});

describe('default catalog', () => {
  const rows = defaultCatalog('2026-01-01T00:00:00.000Z');

  it('has the usual resource types, protected, and no key twice', () => {
    const types = rows.filter((r) => r.kind === 'resource_type');
    expect(types.map((r) => r.name)).toEqual([...DEFAULT_RESOURCE_TYPES]);
    expect(types.every((r) => r.protected && r.namespace === '')).toBe(true);
    for (const name of ['OS::Glance::Image', 'OS::Cinder::Volume', 'OS::Nova::Flavor', 'OS::Nova::Server', 'OS::Nova::Aggregate', 'OS::Trove::Instance']) {
      expect(types.map((r) => r.name)).toContain(name);
    }
    const keys = rows.map((r) => `${r.namespace}|${r.kind}|${r.name}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('is valid against the schemas the API serves', () => {
    const namespaces = rows.filter((r) => r.kind === 'namespace');
    expect(namespaces.length).toBeGreaterThanOrEqual(3);
    for (const ns of namespaces) {
      const of = (kind: string) => rows.filter((r) => r.namespace === ns.namespace && r.kind === kind);
      validateMetadef(METADEF_SCHEMAS.namespace, {
        namespace: ns.namespace,
        ...ns.body,
        visibility: ns.visibility,
        protected: ns.protected,
        resource_type_associations: of('association').map((a) => ({ name: a.name, ...a.body })),
        properties: Object.fromEntries(of('property').map((p) => [p.name, p.body])),
        objects: of('object').map((o) => ({ name: o.name, ...o.body })),
        tags: of('tag').map((t) => ({ name: t.name })),
      });
      for (const p of of('property')) validateMetadef(METADEF_SCHEMAS.property, { name: p.name, ...p.body });
      // Every association names a known resource type; every property has a description for the picker.
      for (const a of of('association')) expect(DEFAULT_RESOURCE_TYPES as readonly string[]).toContain(a.name);
      for (const p of of('property')) expect(typeof p.body.description).toBe('string');
    }
    const devices = rows.filter((r) => r.namespace === 'Vitrine::Libvirt::Devices' && r.kind === 'property').map((r) => r.name);
    expect(devices).toEqual(expect.arrayContaining(['disk_bus', 'vif_model']));
    const os = rows.filter((r) => r.namespace === 'Vitrine::Image::OperatingSystem' && r.kind === 'property').map((r) => r.name);
    expect(os).toEqual(expect.arrayContaining(['os_distro', 'os_type']));
  });
});

describe('StoreMetadefCatalog: checks in Glance\'s order', () => {
  let store: SqliteMetadataStore;
  let catalog: StoreMetadefCatalog;

  beforeEach(async () => {
    store = new SqliteMetadataStore({ path: ':memory:' });
    await store.migrate();
    catalog = new StoreMetadefCatalog({ store, now: () => new Date('2026-01-01T00:00:00Z') });
    await catalog.createNamespace(admin, { namespace: 'priv', visibility: 'private', owner: 'project-a' });
    await catalog.createNamespace(admin, { namespace: 'prot', visibility: 'public', protected: true, tags: [{ name: 't' }] });
  });
  afterEach(async () => store.close());

  it('judges the body first, then visibility, then the role, then the entry and its protection', async () => {
    // A bad body is 400 even where the namespace is missing.
    expect(await asyncCodeOf(catalog.createObject(memberB, 'missing', { name: 'o', bogus: true }))).toBe('BAD_INPUT');
    expect(await asyncCodeOf(catalog.createObject(memberB, 'missing', { name: 'o', created_at: 'x' }))).toBe('FIELD_READ_ONLY');
    // An invisible namespace is not found, even to a caller who could not write it anyway.
    expect(await asyncCodeOf(catalog.createObject(memberB, 'priv', { name: 'o' }))).toBe('METADEF_NOT_FOUND');
    expect(await asyncCodeOf(catalog.createObject(memberA, 'priv', { name: 'o' }))).toBe('FORBIDDEN');
    expect(await asyncCodeOf(catalog.deleteTag(memberA, 'prot', 'nope'))).toBe('FORBIDDEN');
    expect(await asyncCodeOf(catalog.deleteTag(admin, 'prot', 'nope'))).toBe('METADEF_NOT_FOUND');
    expect(await asyncCodeOf(catalog.deleteTag(admin, 'prot', 't'))).toBe('METADEF_PROTECTED');
    expect(await asyncCodeOf(catalog.deleteNamespaceContents(admin, 'prot', 'tag'))).toBe('METADEF_PROTECTED');
    expect(await asyncCodeOf(catalog.deleteNamespace(admin, 'prot'))).toBe('METADEF_PROTECTED');
    expect((await catalog.listTags(memberB, 'prot')).map((t) => t.name)).toEqual(['t']);
  });

  it('seeds the default catalog once', async () => {
    expect(await catalog.seedDefaults()).toBe(true);
    expect(await catalog.seedDefaults()).toBe(false);
    expect((await catalog.listResourceTypes(memberB)).map((t) => t.name)).toEqual(expect.arrayContaining([...DEFAULT_RESOURCE_TYPES]));
    const page = await catalog.listNamespaces(memberB, { resourceTypes: ['OS::Nova::Flavor'] });
    expect(page.namespaces.map((n) => n.namespace)).toEqual(['Vitrine::Compute::CPU']);
  });
});

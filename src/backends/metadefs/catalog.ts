import { fail } from '../../domain/errors';
import {
  associationView, canReadNamespace, GLOBAL_NAMESPACE, METADEF_SCHEMAS, namespaceView, objectView, propertyView, rejectReadOnly,
  requireMetadefAdmin, resourceTypeView, TAG_LIST_SCHEMA, tagView, validateMetadef, withPrefix,
  type JsonSchema, type MetadefAssociation, type MetadefKind, type MetadefNamespace, type MetadefNamespaceDetail, type MetadefObject,
  type MetadefProperty, type MetadefRecord, type MetadefResourceType, type MetadefTag, type MetadefVisibility,
} from '../../domain/metadefs';
import type { Principal } from '../../domain/policy';
import type { MetadataStore } from '../../storage/metadata/port';
import type { MetadefCatalog, NamespaceContentKind, NamespaceListItem, NamespaceListRequest, NamespacePage } from '../port';
import { DEFAULT_CATALOG_SEED, defaultCatalog } from './default-catalog';

/**
 * The metadef catalog on the MetadataStore: Glance 25's semantics (metadef_api and the v2
 * controllers) with its default policy. Checks run in Glance's order, since its status codes
 * depend on it: the body against its schema (400, read-only fields 403), the namespace
 * visible (404), the caller an admin (403), then the entry (404/409) and protection (403).
 * Unlike Glance, a namespace created with contents is written in one transaction.
 */
export interface StoreMetadefCatalogOptions {
  store: MetadataStore;
  now?: () => Date;
}

const CONTENT_NAMES: Record<NamespaceContentKind, string> = { object: 'objects', property: 'properties', tag: 'tags' };

export class StoreMetadefCatalog implements MetadefCatalog {
  private readonly store: MetadataStore;
  private readonly now: () => Date;

  constructor(options: StoreMetadefCatalogOptions) {
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
  }

  /** Writes the default catalog (resource types and a few useful namespaces) once per database. */
  async seedDefaults(): Promise<boolean> {
    return this.store.seedMetadefs(DEFAULT_CATALOG_SEED, defaultCatalog(this.timestamp()));
  }

  // ---- namespaces ------------------------------------------------------------------------

  async listNamespaces(p: Principal, request: NamespaceListRequest = {}): Promise<NamespacePage> {
    let rows = (await this.store.listMetadefs({ kind: 'namespace' })).filter((r) => canReadNamespace(p, r));
    if (request.visibility) rows = rows.filter((r) => r.visibility === request.visibility);
    const associations = await this.store.listMetadefs({ kind: 'association', namespaces: rows.map((r) => r.namespace) });
    if (request.resourceTypes) {
      const wanted = new Set(request.resourceTypes);
      const matching = new Set(associations.filter((a) => wanted.has(a.name)).map((a) => a.namespace));
      rows = rows.filter((r) => matching.has(r.namespace));
    }
    const key = request.sortKey ?? 'created_at';
    const direction = request.sortDir === 'asc' ? 1 : -1;
    const sortValue = (r: MetadefRecord) => (key === 'namespace' ? r.namespace : key === 'updated_at' ? r.updatedAt : r.createdAt);
    rows.sort((a, b) => direction * (compare(sortValue(a), sortValue(b)) || compare(a.namespace, b.namespace)));
    if (request.marker !== undefined) {
      const at = rows.findIndex((r) => r.namespace === request.marker);
      if (at < 0) fail('METADEF_NOT_FOUND', `Metadata definition namespace=${request.marker} was not found.`);
      rows = rows.slice(at + 1);
    }
    const limit = request.limit;
    const page = limit === undefined ? rows : rows.slice(0, limit);
    const byNamespace = groupBy(associations, (a) => a.namespace);
    const namespaces: NamespaceListItem[] = page.map((r) => ({ ...namespaceView(r), associations: (byNamespace.get(r.namespace) ?? []).map(associationView) }));
    return { namespaces, next: limit !== undefined && page.length > 0 && page.length === limit ? page[page.length - 1].namespace : null };
  }

  async getNamespace(p: Principal, namespace: string, options: { resourceType?: string } = {}): Promise<MetadefNamespaceDetail> {
    const row = await this.visibleNamespace(p, namespace, `Metadata definition namespace=${namespace} was not found.`);
    const [detail] = await this.details([row]);
    return withPrefix(detail, options.resourceType);
  }

  async getNamespaces(p: Principal, namespaces: readonly string[], options: { resourceType?: string } = {}): Promise<(MetadefNamespaceDetail | null)[]> {
    if (namespaces.length === 0) return [];
    const rows = (await this.store.listMetadefs({ kind: 'namespace', namespaces: [...new Set(namespaces)] })).filter((r) => canReadNamespace(p, r));
    const byName = new Map((await this.details(rows)).map((d) => [d.namespace, withPrefix(d, options.resourceType)]));
    return namespaces.map((n) => byName.get(n) ?? null);
  }

  async createNamespace(p: Principal, body: Record<string, unknown>): Promise<MetadefNamespaceDetail> {
    rejectReadOnly('namespace', body);
    validateMetadef(METADEF_SCHEMAS.namespace, body);
    requireMetadefAdmin(p, 'create metadata definition namespaces');
    const at = this.timestamp();
    const namespace = body.namespace as string;
    const row: MetadefRecord = {
      namespace,
      kind: 'namespace',
      name: namespace,
      owner: typeof body.owner === 'string' ? body.owner : p.projectId,
      visibility: (body.visibility as MetadefVisibility | undefined) ?? 'private',
      protected: body.protected === true,
      body: namespaceBody(body),
      createdAt: at,
      updatedAt: at,
    };
    const children: MetadefRecord[] = [];
    const types: MetadefRecord[] = [];
    for (const a of (body.resource_type_associations ?? []) as Record<string, unknown>[]) {
      if (typeof a.name !== 'string') fail('BAD_INPUT', 'A resource type association needs a name.');
      children.push(this.child(namespace, 'association', a.name, associationBody(a), at));
      types.push(this.child(GLOBAL_NAMESPACE, 'resource_type', a.name, {}, at));
    }
    for (const o of (body.objects ?? []) as Record<string, unknown>[]) {
      if (typeof o.name !== 'string') fail('BAD_INPUT', 'An object needs a name.');
      children.push(this.child(namespace, 'object', o.name, objectBody(o), at));
    }
    for (const t of (body.tags ?? []) as Record<string, unknown>[]) {
      if (typeof t.name !== 'string') fail('BAD_INPUT', 'A tag needs a name.');
      children.push(this.child(namespace, 'tag', t.name, {}, at));
    }
    for (const [name, schema] of Object.entries((body.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      children.push(this.child(namespace, 'property', name, propertyBody(schema), at));
    }
    await this.store.insertMetadefs([row, ...children], { ensure: types });
    // What was written, in the order given (Glance echoes the request's order).
    const of = (kind: MetadefKind) => children.filter((c) => c.kind === kind);
    return {
      ...namespaceView(row),
      objects: of('object').map(objectView),
      properties: of('property').map(propertyView),
      tags: of('tag').map(tagView),
      associations: of('association').map(associationView),
    };
  }

  async updateNamespace(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefNamespace> {
    rejectReadOnly('namespace', body);
    validateMetadef(METADEF_SCHEMAS.namespace, body);
    const row = await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'modify metadata definition namespaces');
    // Glance's PUT replaces: what the body leaves out goes back to its default.
    const renamed = body.namespace as string;
    const next: MetadefRecord = {
      ...row,
      namespace: renamed,
      name: renamed,
      owner: typeof body.owner === 'string' ? body.owner : p.projectId,
      visibility: (body.visibility as MetadefVisibility | undefined) ?? 'private',
      protected: body.protected === true,
      body: namespaceBody(body),
      updatedAt: this.timestamp(),
    };
    await this.store.updateMetadef({ namespace, kind: 'namespace', name: namespace }, next);
    return namespaceView(next);
  }

  async deleteNamespace(p: Principal, namespace: string): Promise<void> {
    const row = await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'delete metadata definition namespaces');
    if (row.protected) fail('METADEF_PROTECTED', `Metadata definition namespace ${namespace} is protected and cannot be deleted.`);
    await this.store.deleteMetadefs(namespace, 'namespace', namespace);
  }

  async deleteNamespaceContents(p: Principal, namespace: string, kind: NamespaceContentKind): Promise<void> {
    const row = await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, `delete the ${CONTENT_NAMES[kind]} of metadata definition namespaces`);
    if (row.protected) fail('METADEF_PROTECTED', `Metadata definition namespace ${namespace} is protected and cannot be deleted.`);
    await this.store.deleteMetadefs(namespace, kind);
  }

  // ---- objects ---------------------------------------------------------------------------

  async listObjects(p: Principal, namespace: string): Promise<MetadefObject[]> {
    await this.visibleNamespace(p, namespace);
    return (await this.store.listMetadefs({ kind: 'object', namespaces: [namespace] })).map(objectView);
  }

  async getObject(p: Principal, namespace: string, name: string): Promise<MetadefObject> {
    await this.visibleNamespace(p, namespace);
    return objectView(await this.entry(namespace, 'object', name));
  }

  async createObject(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefObject> {
    this.checkObject(body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'create metadata definition objects');
    const row = this.child(namespace, 'object', body.name as string, objectBody(body), this.timestamp());
    await this.store.insertMetadefs([row]);
    return objectView(row);
  }

  async updateObject(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefObject> {
    this.checkObject(body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'modify metadata definition objects');
    const row = await this.entry(namespace, 'object', name);
    const next = { ...row, name: body.name as string, body: objectBody(body), updatedAt: this.timestamp() };
    await this.store.updateMetadef({ namespace, kind: 'object', name }, next);
    return objectView(next);
  }

  async deleteObject(p: Principal, namespace: string, name: string): Promise<void> {
    await this.deleteEntry(p, namespace, 'object', name, 'objects');
  }

  private checkObject(body: Record<string, unknown>): void {
    rejectReadOnly('object', body);
    validateMetadef(METADEF_SCHEMAS.object, body);
    // Glance checks each of an object's properties against the property schema (name optional).
    for (const property of Object.values((body.properties ?? {}) as Record<string, unknown>)) validateMetadef(propertySchemaWithoutName(), property);
  }

  // ---- properties ------------------------------------------------------------------------

  async listProperties(p: Principal, namespace: string): Promise<MetadefProperty[]> {
    await this.visibleNamespace(p, namespace);
    return (await this.store.listMetadefs({ kind: 'property', namespaces: [namespace] })).map(propertyView);
  }

  async getProperty(p: Principal, namespace: string, name: string, options: { resourceType?: string } = {}): Promise<MetadefProperty> {
    await this.visibleNamespace(p, namespace);
    let stored = name;
    if (options.resourceType) {
      const [association] = await this.store.listMetadefs({ kind: 'association', namespaces: [namespace], names: [options.resourceType] });
      if (!association) fail('METADEF_NOT_FOUND', `Resource type ${options.resourceType} is not associated with namespace ${namespace}.`);
      const prefix = associationView(association).prefix;
      if (!prefix || !name.startsWith(prefix)) {
        fail('METADEF_NOT_FOUND', `Property ${name} does not start with the expected resource type association prefix of '${prefix ?? ''}'.`);
      }
      stored = name.slice(prefix.length);
    }
    // Glance answers with the stored (unprefixed) name.
    return propertyView(await this.entry(namespace, 'property', stored));
  }

  async createProperty(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefProperty> {
    rejectReadOnly('property', body);
    validateMetadef(METADEF_SCHEMAS.property, body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'create metadata definition properties');
    const row = this.child(namespace, 'property', body.name as string, propertyBody(body), this.timestamp());
    await this.store.insertMetadefs([row]);
    return propertyView(row);
  }

  async updateProperty(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefProperty> {
    rejectReadOnly('property', body);
    validateMetadef(METADEF_SCHEMAS.property, body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'modify metadata definition properties');
    const row = await this.entry(namespace, 'property', name);
    const next = { ...row, name: body.name as string, body: propertyBody(body), updatedAt: this.timestamp() };
    await this.store.updateMetadef({ namespace, kind: 'property', name }, next);
    return propertyView(next);
  }

  async deleteProperty(p: Principal, namespace: string, name: string): Promise<void> {
    await this.deleteEntry(p, namespace, 'property', name, 'properties');
  }

  // ---- tags ------------------------------------------------------------------------------

  async listTags(p: Principal, namespace: string): Promise<MetadefTag[]> {
    await this.visibleNamespace(p, namespace);
    return newestFirst(await this.store.listMetadefs({ kind: 'tag', namespaces: [namespace] })).map(tagView);
  }

  async getTag(p: Principal, namespace: string, name: string): Promise<MetadefTag> {
    await this.visibleNamespace(p, namespace);
    return tagView(await this.entry(namespace, 'tag', name));
  }

  async createTag(p: Principal, namespace: string, name: string): Promise<MetadefTag> {
    // Glance looks the namespace up before it checks the name from the path.
    await this.visibleNamespace(p, namespace);
    validateMetadef(METADEF_SCHEMAS.tag, { name });
    requireMetadefAdmin(p, 'create metadata definition tags');
    const row = this.child(namespace, 'tag', name, {}, this.timestamp());
    await this.store.insertMetadefs([row]);
    return tagView(row);
  }

  async createTags(p: Principal, namespace: string, body: Record<string, unknown>, append: boolean): Promise<MetadefTag[]> {
    validateMetadef(TAG_LIST_SCHEMA, body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'create metadata definition tags');
    const at = this.timestamp();
    const rows = ((body.tags ?? []) as { name: string }[]).map((t) => this.child(namespace, 'tag', t.name, {}, at));
    await this.store.insertMetadefs(rows, append ? {} : { replace: { namespace, kind: 'tag' } });
    return rows.map(tagView);
  }

  async updateTag(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefTag> {
    rejectReadOnly('tag', body);
    validateMetadef(METADEF_SCHEMAS.tag, body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'modify metadata definition tags');
    const row = await this.entry(namespace, 'tag', name);
    const next = { ...row, name: body.name as string, updatedAt: this.timestamp() };
    await this.store.updateMetadef({ namespace, kind: 'tag', name }, next);
    return tagView(next);
  }

  async deleteTag(p: Principal, namespace: string, name: string): Promise<void> {
    await this.deleteEntry(p, namespace, 'tag', name, 'tags');
  }

  // ---- resource types --------------------------------------------------------------------

  async listResourceTypes(_p: Principal): Promise<MetadefResourceType[]> {
    return (await this.store.listMetadefs({ kind: 'resource_type', namespaces: [GLOBAL_NAMESPACE] })).map(resourceTypeView);
  }

  async listAssociations(p: Principal, namespace: string): Promise<MetadefAssociation[]> {
    await this.visibleNamespace(p, namespace);
    return (await this.store.listMetadefs({ kind: 'association', namespaces: [namespace] })).map(associationView);
  }

  async createAssociation(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefAssociation> {
    rejectReadOnly('association', body);
    validateMetadef(METADEF_SCHEMAS.resource_type, body);
    await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'associate resource types with metadata definition namespaces');
    const at = this.timestamp();
    const name = body.name as string;
    const row = this.child(namespace, 'association', name, associationBody(body), at);
    await this.store.insertMetadefs([row], { ensure: [this.child(GLOBAL_NAMESPACE, 'resource_type', name, {}, at)] });
    return associationView(row);
  }

  async deleteAssociation(p: Principal, namespace: string, resourceType: string): Promise<void> {
    const row = await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, 'remove resource type associations');
    const [found] = await this.store.listMetadefs({ kind: 'association', namespaces: [namespace], names: [resourceType] });
    if (!found) fail('METADEF_NOT_FOUND', `Failed to find resource type ${resourceType} to delete`);
    if (row.protected) fail('METADEF_PROTECTED', `Resource type association ${resourceType} of protected namespace ${namespace} cannot be deleted.`);
    await this.store.deleteMetadefs(namespace, 'association', resourceType);
  }

  // ---- internals -------------------------------------------------------------------------

  private timestamp(): string {
    return this.now().toISOString();
  }

  /** The namespace's row if the caller may see it; METADEF_NOT_FOUND otherwise (Glance hides the difference). */
  private async visibleNamespace(p: Principal, namespace: string, message = `Namespace ${namespace} not found`): Promise<MetadefRecord> {
    const [row] = await this.store.listMetadefs({ kind: 'namespace', namespaces: [namespace], names: [namespace] });
    if (!row || !canReadNamespace(p, row)) fail('METADEF_NOT_FOUND', message);
    return row;
  }

  private async entry(namespace: string, kind: MetadefKind, name: string): Promise<MetadefRecord> {
    const [row] = await this.store.listMetadefs({ kind, namespaces: [namespace], names: [name] });
    if (!row) fail('METADEF_NOT_FOUND', `Metadata definition ${kind === 'property' ? 'property' : kind} not found for namespace=${namespace} and ${kind}=${name}.`);
    return row;
  }

  private async deleteEntry(p: Principal, namespace: string, kind: NamespaceContentKind, name: string, what: string): Promise<void> {
    const ns = await this.visibleNamespace(p, namespace);
    requireMetadefAdmin(p, `delete metadata definition ${what}`);
    await this.entry(namespace, kind, name);
    if (ns.protected) fail('METADEF_PROTECTED', `The ${kind} ${name} of protected namespace ${namespace} cannot be deleted.`);
    await this.store.deleteMetadefs(namespace, kind, name);
  }

  private child(namespace: string, kind: MetadefKind, name: string, body: Record<string, unknown>, at: string): MetadefRecord {
    return { namespace, kind, name, owner: null, visibility: null, protected: false, body, createdAt: at, updatedAt: at };
  }

  /** Namespaces with their contents, four reads whatever their number. */
  private async details(rows: readonly MetadefRecord[]): Promise<MetadefNamespaceDetail[]> {
    const names = rows.map((r) => r.namespace);
    const [objects, properties, tags, associations] = await Promise.all(
      (['object', 'property', 'tag', 'association'] as const).map((kind) => this.store.listMetadefs({ kind, namespaces: names })),
    );
    const by = (list: MetadefRecord[]) => groupBy(list, (r) => r.namespace);
    const [o, pr, t, a] = [by(objects), by(properties), by(tags), by(associations)];
    return rows.map((r) => ({
      ...namespaceView(r),
      objects: (o.get(r.namespace) ?? []).map(objectView),
      properties: (pr.get(r.namespace) ?? []).map(propertyView),
      tags: newestFirst(t.get(r.namespace) ?? []).map(tagView),
      associations: (a.get(r.namespace) ?? []).map(associationView),
    }));
  }
}

/**
 * Glance lists tags newest first (created_at, then id, descending; objects, properties and
 * associations in insertion order); the store reads one namespace's rows oldest first in
 * insertion order, so that is the reverse.
 */
function newestFirst(rows: readonly MetadefRecord[]): MetadefRecord[] {
  return [...rows].reverse();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

function pick(body: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
  return out;
}

const namespaceBody = (body: Record<string, unknown>) => pick(body, ['display_name', 'description']);
const objectBody = (body: Record<string, unknown>) => pick(body, ['description', 'required', 'properties']);
const associationBody = (body: Record<string, unknown>) => pick(body, ['prefix', 'properties_target']);

/**
 * A property's stored definition: the body as given. Glance keeps `name` inside it when the
 * property came through the properties API and not when it came with its namespace, and a
 * namespace read shows the definition as stored, so the difference stays visible.
 */
function propertyBody(body: Record<string, unknown>): Record<string, unknown> {
  return { ...body };
}

let propertyWithoutName: JsonSchema | undefined;
function propertySchemaWithoutName(): JsonSchema {
  propertyWithoutName ??= { ...METADEF_SCHEMAS.property, required: ['type', 'title'] };
  return propertyWithoutName;
}

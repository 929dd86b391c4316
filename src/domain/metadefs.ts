import { fail } from './errors';
import { isAdmin, type Principal } from './policy';
import { hasJsonType, isPlainObject, pyRepr } from './json-values';

/**
 * Metadata definitions (Glance's "metadefs"): a catalog that tells dashboards which
 * properties make sense on which kind of resource (images, volumes, flavors, ...).
 * Namespaces hold properties, objects (named groups of properties) and tags, and are
 * associated with resource types, optionally with a prefix that the properties take when
 * applied to that resource type. Pure rules only: records, the JSON schemas the catalog
 * validates with (the same documents the Glance facade serves), and who may see what.
 */

export const METADEF_KINDS = ['namespace', 'object', 'property', 'tag', 'resource_type', 'association'] as const;
export type MetadefKind = (typeof METADEF_KINDS)[number];
export const METADEF_VISIBILITIES = ['public', 'private'] as const;
export type MetadefVisibility = (typeof METADEF_VISIBILITIES)[number];

/** Resource types belong to no namespace: their rows use this namespace key. */
export const GLOBAL_NAMESPACE = '';

/**
 * One stored entry of the catalog, keyed by (namespace, kind, name). A namespace's own row
 * has kind `namespace` and name = namespace; an association's name is the resource type's.
 * `owner` and `visibility` are set on namespace rows only; `body` holds the rest
 * (descriptions, a property's JSON schema, an association's prefix, ...).
 */
export interface MetadefRecord {
  namespace: string;
  kind: MetadefKind;
  name: string;
  owner: string | null;
  visibility: MetadefVisibility | null;
  protected: boolean;
  body: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

// ---- views -------------------------------------------------------------------------------

export interface MetadefNamespace {
  namespace: string;
  displayName: string | null;
  description: string | null;
  visibility: MetadefVisibility;
  protected: boolean;
  owner: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A property definition: its name (the row's key) and its JSON-schema fragment (title, type, enum, ...), which may repeat the name. */
export interface MetadefProperty {
  namespace: string;
  name: string;
  schema: Record<string, unknown>;
}

export interface MetadefObject {
  namespace: string;
  name: string;
  description: string | null;
  required: string[];
  /** Property definitions by name (the same shape as a namespace's properties). */
  properties: Record<string, Record<string, unknown>>;
  createdAt: string;
  updatedAt: string;
}

export interface MetadefTag {
  namespace: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface MetadefResourceType {
  name: string;
  protected: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface MetadefAssociation {
  namespace: string;
  /** The resource type's name. */
  name: string;
  prefix: string | null;
  propertiesTarget: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A namespace with everything in it, as `GET /v2/metadefs/namespaces/{ns}` shows it. */
export interface MetadefNamespaceDetail extends MetadefNamespace {
  objects: MetadefObject[];
  properties: MetadefProperty[];
  tags: MetadefTag[];
  associations: MetadefAssociation[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function namespaceView(r: MetadefRecord): MetadefNamespace {
  return {
    namespace: r.namespace,
    displayName: str(r.body.display_name),
    description: str(r.body.description),
    visibility: r.visibility ?? 'private',
    protected: r.protected,
    owner: r.owner,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function propertyView(r: MetadefRecord): MetadefProperty {
  return { namespace: r.namespace, name: r.name, schema: r.body };
}

export function objectView(r: MetadefRecord): MetadefObject {
  return {
    namespace: r.namespace,
    name: r.name,
    description: str(r.body.description),
    required: Array.isArray(r.body.required) ? (r.body.required as string[]) : [],
    properties: (r.body.properties ?? {}) as Record<string, Record<string, unknown>>,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function tagView(r: MetadefRecord): MetadefTag {
  return { namespace: r.namespace, name: r.name, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

export function resourceTypeView(r: MetadefRecord): MetadefResourceType {
  return { name: r.name, protected: r.protected, createdAt: r.createdAt, updatedAt: r.updatedAt };
}

export function associationView(r: MetadefRecord): MetadefAssociation {
  return {
    namespace: r.namespace,
    name: r.name,
    prefix: str(r.body.prefix),
    propertiesTarget: str(r.body.properties_target),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * Property names as a resource type sees them: with the association's prefix (e.g.
 * `hw_` for images, `hw:` for flavors) when the namespace is associated with `resourceType`
 * with one; unchanged otherwise. Object properties and `required` lists are prefixed too.
 */
export function withPrefix(detail: MetadefNamespaceDetail, resourceType: string | undefined): MetadefNamespaceDetail {
  const prefix = resourceType ? detail.associations.find((a) => a.name === resourceType)?.prefix : null;
  if (!prefix) return detail;
  const prefixKeys = (props: Record<string, Record<string, unknown>>) => Object.fromEntries(Object.entries(props).map(([k, v]) => [prefix + k, v]));
  return {
    ...detail,
    properties: detail.properties.map((p) => ({ ...p, name: prefix + p.name })),
    objects: detail.objects.map((o) => ({ ...o, properties: prefixKeys(o.properties), required: o.required.map((n) => prefix + n) })),
  };
}

// ---- policy ------------------------------------------------------------------------------

/**
 * Glance's default metadef policy: public namespaces are readable by everyone, private
 * ones by their owning project (a namespace without owner is readable by all, as in
 * Glance's database layer), admins see everything.
 */
export function canReadNamespace(p: Principal, ns: Pick<MetadefRecord, 'owner' | 'visibility'>): boolean {
  if (isAdmin(p)) return true;
  if (ns.owner === null || ns.visibility === 'public') return true;
  return ns.owner === p.projectId;
}

/** Every metadef write is `metadef_admin` (role:admin) in Glance 25's defaults. */
export function requireMetadefAdmin(p: Principal, action: string): void {
  if (!isAdmin(p)) fail('FORBIDDEN', `only an admin may ${action}`);
}

// ---- schemas -----------------------------------------------------------------------------

export type JsonSchema = Record<string, unknown>;

const PROPERTY_TYPES = ['array', 'boolean', 'integer', 'number', 'object', 'string', null];

/** Definitions shared by the namespace and object schemas (property shapes). */
function sharedDefinitions(stringArrayMinItems?: number): Record<string, JsonSchema> {
  return {
    positiveInteger: { type: 'integer', minimum: 0 },
    positiveIntegerDefault0: { allOf: [{ $ref: '#/definitions/positiveInteger' }, { default: 0 }] },
    stringArray: { type: 'array', items: { type: 'string' }, ...(stringArrayMinItems !== undefined && { minItems: stringArrayMinItems }), uniqueItems: true },
  };
}

/** The fields of a property definition (Glance's PropertyType). */
function propertyFields(): Record<string, JsonSchema> {
  return {
    name: { type: 'string', maxLength: 80 },
    title: { type: 'string' },
    description: { type: 'string' },
    operators: { type: 'array', items: { type: 'string' } },
    type: { type: 'string', enum: PROPERTY_TYPES },
    required: { $ref: '#/definitions/stringArray' },
    minimum: { type: 'number' },
    maximum: { type: 'number' },
    maxLength: { $ref: '#/definitions/positiveInteger' },
    minLength: { $ref: '#/definitions/positiveIntegerDefault0' },
    pattern: { type: 'string', format: 'regex' },
    enum: { type: 'array' },
    readonly: { type: 'boolean' },
    default: {},
    items: { type: 'object', properties: { type: { type: 'string', enum: PROPERTY_TYPES }, enum: { type: 'array' } } },
    maxItems: { $ref: '#/definitions/positiveInteger' },
    minItems: { $ref: '#/definitions/positiveIntegerDefault0' },
    uniqueItems: { type: 'boolean', default: false },
    additionalItems: { type: 'boolean' },
  };
}

function definitionsWithProperty(): Record<string, JsonSchema> {
  return {
    ...sharedDefinitions(),
    property: { type: 'object', additionalProperties: { type: 'object', required: ['title', 'type'], properties: propertyFields() } },
  };
}

const timestamps = (what: string): Record<string, JsonSchema> => ({
  created_at: { type: 'string', readOnly: true, description: `When the ${what} was created.`, format: 'date-time' },
  updated_at: { type: 'string', readOnly: true, description: `When the ${what} last changed.`, format: 'date-time' },
});

const links = (): JsonSchema[] => [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }];

function namespaceSchema(): JsonSchema {
  return {
    name: 'namespace',
    properties: {
      namespace: { type: 'string', description: 'Unique name of the namespace.', maxLength: 80 },
      display_name: { type: 'string', description: 'Name to show in user interfaces.', maxLength: 80 },
      description: { type: 'string', description: 'What the namespace is for.', maxLength: 500 },
      visibility: { type: 'string', description: 'Who may read the namespace: everyone, or its owner only.', enum: ['public', 'private'] },
      protected: { type: 'boolean', description: 'A protected namespace cannot be deleted.' },
      owner: { type: 'string', description: 'Project owning the namespace.', maxLength: 255 },
      ...timestamps('namespace'),
      schema: { readOnly: true, type: 'string' },
      self: { readOnly: true, type: 'string' },
      resource_type_associations: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, prefix: { type: 'string' }, properties_target: { type: 'string' } } },
      },
      properties: { $ref: '#/definitions/property' },
      objects: {
        type: 'array',
        items: {
          type: 'object',
          properties: { name: { type: 'string' }, description: { type: 'string' }, required: { $ref: '#/definitions/stringArray' }, properties: { $ref: '#/definitions/property' } },
        },
      },
      tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
    },
    additionalProperties: false,
    definitions: definitionsWithProperty(),
    required: ['namespace'],
  };
}

function objectSchema(): JsonSchema {
  return {
    name: 'object',
    properties: {
      name: { type: 'string', maxLength: 80 },
      description: { type: 'string' },
      required: { $ref: '#/definitions/stringArray' },
      properties: { $ref: '#/definitions/property' },
      schema: { readOnly: true, type: 'string' },
      self: { readOnly: true, type: 'string' },
      ...timestamps('object'),
    },
    additionalProperties: false,
    definitions: definitionsWithProperty(),
    required: ['name'],
  };
}

function propertySchema(requireName: boolean): JsonSchema {
  return {
    name: 'property',
    properties: propertyFields(),
    additionalProperties: false,
    definitions: sharedDefinitions(1),
    required: requireName ? ['type', 'title', 'name'] : ['type', 'title'],
  };
}

function tagSchema(): JsonSchema {
  return { name: 'tag', properties: { name: { type: 'string', maxLength: 80 }, ...timestamps('tag') }, additionalProperties: false, required: ['name'] };
}

function associationSchema(): JsonSchema {
  return {
    name: 'resource_type_association',
    properties: {
      name: { type: 'string', description: 'Resource type, named as in Heat where one exists (e.g. OS::Nova::Server).', maxLength: 80 },
      prefix: { type: 'string', description: 'Prefix the namespace\'s properties take on this resource type, separator included (e.g. "hw_" or "hw:").', maxLength: 80 },
      properties_target: { type: 'string', description: 'Which metadata of the resource the properties go to, where it has several (e.g. "image" for Cinder volume image metadata).', maxLength: 80 },
      ...timestamps('association'),
    },
    additionalProperties: false,
    required: ['name'],
  };
}

function collection(name: string, key: string, item: JsonSchema): JsonSchema {
  const { definitions, ...rest } = item;
  return {
    name,
    properties: { [key]: { type: 'array', items: rest }, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
    links: links(),
    ...(definitions !== undefined && { definitions }),
  };
}

export interface MetadefSchemas {
  namespace: JsonSchema;
  namespaces: JsonSchema;
  object: JsonSchema;
  objects: JsonSchema;
  property: JsonSchema;
  properties: JsonSchema;
  tag: JsonSchema;
  tags: JsonSchema;
  resource_type: JsonSchema;
  resource_types: JsonSchema;
}

function buildMetadefSchemas(): MetadefSchemas {
  const namespace = namespaceSchema();
  const object = objectSchema();
  const tag = tagSchema();
  const association = associationSchema();
  const { definitions: propertyDefinitions, ...propertyItem } = propertySchema(false);
  return {
    namespace,
    namespaces: collection('namespaces', 'namespaces', namespace),
    object,
    objects: collection('objects', 'objects', object),
    property: propertySchema(true),
    // A dictionary keyed by property name, so the items need no name.
    properties: {
      name: 'properties',
      properties: { properties: { type: 'object', additionalProperties: propertyItem }, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
      links: links(),
      definitions: propertyDefinitions,
    },
    tag,
    tags: collection('tags', 'tags', tag),
    resource_type: association,
    resource_types: collection('resource_type_associations', 'resource_type_associations', association),
  };
}

/** Built once; callers must not mutate them. */
export const METADEF_SCHEMAS: Readonly<MetadefSchemas> = Object.freeze(buildMetadefSchemas());

/** The body of `POST .../tags` (several tags at once). */
export const TAG_LIST_SCHEMA: JsonSchema = {
  name: 'tags',
  properties: { tags: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } } },
};

// ---- validation --------------------------------------------------------------------------

/**
 * Checks `value` against `schema` (the JSON Schema subset the metadef schemas use: type,
 * enum, maxLength, minimum, minItems, uniqueItems, required, properties,
 * additionalProperties, items, allOf, local $ref) and fails BAD_INPUT with the first
 * mismatch, worded like python-jsonschema as Glance reports it.
 */
export function validateMetadef(schema: JsonSchema, value: unknown): void {
  const problem = isPlainObject(value) ? check(schema, schema, value) : `${pyRepr(value)} is not of type 'object'`;
  if (problem !== null) fail('BAD_INPUT', `Provided object does not match schema '${String(schema.name)}': ${problem}`);
}

function resolve(root: JsonSchema, rule: JsonSchema): JsonSchema {
  const ref = rule.$ref;
  if (typeof ref !== 'string') return rule;
  const name = ref.replace('#/definitions/', '');
  const found = (root.definitions as Record<string, JsonSchema> | undefined)?.[name];
  if (!found) throw new Error(`schema ${String(root.name)}: unresolved ${ref}`);
  return found;
}

function check(root: JsonSchema, ruleIn: JsonSchema, value: unknown): string | null {
  const rule = resolve(root, ruleIn);
  if (Array.isArray(rule.allOf)) {
    for (const part of rule.allOf as JsonSchema[]) {
      const p = check(root, part, value);
      if (p !== null) return p;
    }
  }
  if (rule.type !== undefined) {
    const types = ([] as string[]).concat(rule.type as string | string[]);
    if (!types.some((t) => hasJsonType(value, t))) return `${pyRepr(value)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`;
  }
  if (Array.isArray(rule.enum) && !rule.enum.some((allowed) => allowed === value)) return `${pyRepr(value)} is not one of ${pyRepr(rule.enum)}`;
  if (typeof value === 'string' && typeof rule.maxLength === 'number' && [...value].length > rule.maxLength) return `${pyRepr(value)} is too long`;
  if (typeof value === 'number' && typeof rule.minimum === 'number' && value < rule.minimum) return `${pyRepr(value)} is less than the minimum of ${rule.minimum}`;
  if (Array.isArray(value)) {
    if (typeof rule.minItems === 'number' && value.length < rule.minItems) return `${pyRepr(value)} is too short`;
    if (rule.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) return `${pyRepr(value)} has non-unique elements`;
    if (rule.items && typeof rule.items === 'object') {
      for (const item of value) {
        const p = check(root, rule.items as JsonSchema, item);
        if (p !== null) return p;
      }
    }
  }
  if (isPlainObject(value)) {
    for (const key of (rule.required as string[] | undefined) ?? []) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) return `${pyRepr(key)} is a required property`;
    }
    const properties = (rule.properties ?? {}) as Record<string, JsonSchema>;
    const additional = rule.additionalProperties as JsonSchema | false | undefined;
    const unexpected: string[] = [];
    for (const [key, v] of Object.entries(value)) {
      const sub = Object.prototype.hasOwnProperty.call(properties, key) ? properties[key] : additional;
      if (sub === false) {
        unexpected.push(key);
        continue;
      }
      if (sub) {
        const p = check(root, sub, v);
        if (p !== null) return p;
      }
    }
    if (unexpected.length > 0) return `Additional properties are not allowed (${unexpected.map((k) => pyRepr(k)).join(', ')} ${unexpected.length === 1 ? 'was' : 'were'} unexpected)`;
  }
  return null;
}

/** Fields a client may never send in a metadef body (Glance answers 403 "Attribute 'x' is read-only."). */
export const METADEF_READ_ONLY: Readonly<Record<'namespace' | 'object' | 'property' | 'tag' | 'association', readonly string[]>> = {
  namespace: ['self', 'schema', 'created_at', 'updated_at'],
  object: ['self', 'schema', 'created_at', 'updated_at'],
  property: ['created_at', 'updated_at'],
  tag: ['created_at', 'updated_at'],
  association: ['created_at', 'updated_at'],
};

export function rejectReadOnly(kind: keyof typeof METADEF_READ_ONLY, body: Record<string, unknown>): void {
  for (const key of METADEF_READ_ONLY[kind]) {
    if (Object.prototype.hasOwnProperty.call(body, key)) fail('FIELD_READ_ONLY', `Attribute '${key}' is read-only.`);
  }
}

import { fail } from './errors';
import { camelCase } from './filters';
import { defineField, type ArtifactTypeDef, type FieldSpec, type LinkDef, type Lifecycle } from './types';

/** Names every artifact has as base fields; type fields may not reuse them. */
export const BASE_FIELD_NAMES = [
  'id', 'type_name', 'name', 'version', 'status', 'visibility', 'owner', 'tags', 'properties', 'metadata',
  'created_at', 'updated_at', 'activated_at', 'revision', 'backend', 'blobs', 'links', 'members', 'fields',
] as const;

/** GraphQL type names that configured types may not take. */
const RESERVED_GRAPHQL_NAMES = new Set([
  'Query', 'Mutation', 'Subscription', 'Node', 'Artifact', 'Image', 'Blob', 'ArtifactLink', 'ImageMember',
  'JSON', 'JSONObject', 'DateTime', 'SafeInt', 'PageInfo', 'Viewer', 'ProjectUsage', 'Quota',
]);

export interface TypeSpec {
  name: string;
  displayName?: string;
  graphqlName?: string;
  lifecycle?: Lifecycle;
  uniqueVersions?: boolean;
  fields?: Record<string, FieldSpec>;
  links?: Record<string, { many?: boolean; mutable?: boolean; description?: string }>;
}

const IMAGE_DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
const IMAGE_CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
const TB = 1024 ** 4;

/** Glance images: every field stays editable, except the formats once data has arrived. */
const image: TypeSpec = {
  name: 'images',
  displayName: 'Images',
  graphqlName: 'Image',
  lifecycle: 'image',
  uniqueVersions: false,
  fields: {
    disk_format: { kind: 'string', allowedValues: IMAGE_DISK_FORMATS, editableIn: ['queued', 'importing'], sortable: true, requiredOnActivate: false, description: 'Format of the disk (qcow2, raw, ...).' },
    container_format: { kind: 'string', allowedValues: IMAGE_CONTAINER_FORMATS, editableIn: ['queued', 'importing'], sortable: true, requiredOnActivate: false, description: 'Format of the container (bare, ovf, ...).' },
    size: { kind: 'integer', system: true, sortable: true, requiredOnActivate: false, description: 'Size of the image data in bytes.' },
    virtual_size: { kind: 'integer', system: true, sortable: true, requiredOnActivate: false, description: 'Virtual size of the disk in bytes.' },
    checksum: { kind: 'string', system: true, requiredOnActivate: false, filterOps: ['eq', 'in'], description: 'MD5 hex digest of the image data.' },
    os_hash_algo: { kind: 'string', system: true, requiredOnActivate: false, filterOps: ['eq'], description: 'Algorithm of os_hash_value (sha512).' },
    os_hash_value: { kind: 'string', system: true, maxLength: 128, requiredOnActivate: false, filterOps: ['eq', 'in'], description: 'Hex digest of the image data.' },
    min_disk: { kind: 'integer', mutable: true, nullable: false, default: 0, minimum: 0, sortable: true, requiredOnActivate: false, description: 'Disk space (GB) needed to boot.' },
    min_ram: { kind: 'integer', mutable: true, nullable: false, default: 0, minimum: 0, sortable: true, requiredOnActivate: false, description: 'RAM (MB) needed to boot.' },
    protected: { kind: 'boolean', mutable: true, nullable: false, default: false, requiredOnActivate: false, description: 'Protected images cannot be deleted.' },
    os_hidden: { kind: 'boolean', mutable: true, nullable: false, default: false, requiredOnActivate: false, description: 'Hidden from default image lists.' },
    stores: { kind: 'string', container: 'list', system: true, requiredOnActivate: false, description: 'Stores holding the image data, sorted.' },
    image: { kind: 'blob', maxBlobSize: TB, requiredOnActivate: false, mutable: false, editableIn: ['queued', 'saving'], description: 'The image data.' },
  },
};

const description: FieldSpec = { kind: 'string', maxLength: 4096, mutable: true, requiredOnActivate: false, filterOps: [], description: 'Free text description.' };

const glareTypes: TypeSpec[] = [
  {
    name: 'heat_templates',
    displayName: 'Heat Templates',
    graphqlName: 'HeatTemplate',
    fields: {
      description,
      template: { kind: 'blob', requiredOnActivate: true, description: 'The Heat template.' },
      nested_templates: { kind: 'blobDict', requiredOnActivate: false, description: 'Templates the main template includes, by file name.' },
      default_envs: { kind: 'string', container: 'dict', mutable: true, description: 'Default environments by name.' },
    },
    links: { environments: { many: true, mutable: true, description: 'Heat environments for this template.' } },
  },
  {
    name: 'heat_environments',
    displayName: 'Heat Environments',
    graphqlName: 'HeatEnvironment',
    fields: { description, environment: { kind: 'blob', requiredOnActivate: true, description: 'The Heat environment file.' } },
  },
  {
    name: 'murano_packages',
    displayName: 'Murano packages',
    graphqlName: 'MuranoPackage',
    fields: {
      description,
      package: { kind: 'blob', maxBlobSize: 100 * 1024 * 1024, requiredOnActivate: false, description: 'The package archive.' },
      type: { kind: 'string', allowedValues: ['Application', 'Library'], default: 'Application', nullable: false, sortable: true, description: 'Application or Library.' },
      display_name: { kind: 'string', mutable: true, sortable: true, filterOps: ['eq', 'neq', 'in', 'like'], description: 'Human-readable name.' },
      categories: { kind: 'string', container: 'list', mutable: true, description: 'Catalog categories.' },
      class_definitions: { kind: 'string', container: 'list', description: 'Classes the package defines.' },
      inherits: { kind: 'string', container: 'dict', description: 'Inheritance map.' },
      keywords: { kind: 'string', container: 'list', mutable: true, description: 'Search keywords.' },
    },
    links: { dependencies: { many: true, mutable: false, description: 'Packages this package needs.' } },
  },
  {
    name: 'tosca_templates',
    displayName: 'TOSCA Templates',
    graphqlName: 'ToscaTemplate',
    fields: {
      description,
      template_format: { kind: 'string', sortable: true, description: 'Format of the template.' },
      template: { kind: 'blob', requiredOnActivate: true, description: 'The TOSCA template.' },
    },
  },
];

export const BUILTIN_TYPE_SPECS: readonly TypeSpec[] = [image, ...glareTypes];

/** heat_templates → HeatTemplate */
export function graphqlNameFor(typeName: string): string {
  const singular = typeName.endsWith('s') ? typeName.slice(0, -1) : typeName;
  return singular.split('_').filter(Boolean).map((p) => p[0].toUpperCase() + p.slice(1)).join('');
}

export function defineType(spec: TypeSpec, builtin: boolean): ArtifactTypeDef {
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(spec.name)) fail('CONFIG_INVALID', `type name ${JSON.stringify(spec.name)} must match [a-z][a-z0-9_]* (at most 64 characters)`);
  const graphqlName = spec.graphqlName ?? graphqlNameFor(spec.name);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(graphqlName)) fail('CONFIG_INVALID', `type ${spec.name}: graphqlName ${JSON.stringify(graphqlName)} must be PascalCase letters and digits`);
  if (!builtin && RESERVED_GRAPHQL_NAMES.has(graphqlName)) fail('CONFIG_INVALID', `type ${spec.name}: graphqlName ${graphqlName} is reserved`);
  const fields = Object.entries(spec.fields ?? {}).map(([name, f]) => {
    if ((BASE_FIELD_NAMES as readonly string[]).includes(name)) fail('CONFIG_INVALID', `type ${spec.name}: field ${name} is a base field of every artifact`);
    return defineField(name, f);
  });
  // Fields become camelCase GraphQL fields: foo_1 and foo1 would both be foo1.
  const graphqlFields = new Map<string, string>(BASE_FIELD_NAMES.map((n) => [camelCase(n), `the base field ${n}`]));
  for (const f of fields) {
    const other = graphqlFields.get(camelCase(f.name));
    if (other) fail('CONFIG_INVALID', `type ${spec.name}: field ${f.name} would be the GraphQL field ${camelCase(f.name)}, as is ${other}`);
    graphqlFields.set(camelCase(f.name), `field ${f.name}`);
  }
  const links: LinkDef[] = Object.entries(spec.links ?? {}).map(([name, l]) => {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(name)) fail('CONFIG_INVALID', `type ${spec.name}: link name ${JSON.stringify(name)} must match [a-z][a-z0-9_]*`);
    if (fields.some((f) => f.name === name)) fail('CONFIG_INVALID', `type ${spec.name}: ${name} is both a field and a link`);
    return Object.freeze({ name, many: l.many ?? false, mutable: l.mutable ?? false, description: l.description ?? '' });
  });
  return Object.freeze({
    name: spec.name,
    graphqlName,
    displayName: spec.displayName ?? spec.name,
    lifecycle: spec.lifecycle ?? 'artifact',
    uniqueVersions: spec.uniqueVersions ?? (spec.lifecycle ?? 'artifact') === 'artifact',
    fields: Object.freeze(fields),
    links: Object.freeze(links),
    builtin,
  });
}

/** All types served: the built-ins followed by the operator's, each name used once. */
export class TypeRegistry {
  private readonly byName = new Map<string, ArtifactTypeDef>();

  constructor(operatorTypes: readonly TypeSpec[] = []) {
    for (const spec of BUILTIN_TYPE_SPECS) this.add(defineType(spec, true));
    for (const spec of operatorTypes) {
      if (this.byName.has(spec.name)) fail('CONFIG_INVALID', `artifact type ${spec.name} is defined twice (or is a built-in type)`);
      this.add(defineType(spec, false));
    }
    const graphqlNames = new Set<string>();
    for (const t of this.byName.values()) {
      if (graphqlNames.has(t.graphqlName)) fail('CONFIG_INVALID', `two artifact types map to the GraphQL name ${t.graphqlName}; set graphqlName on one of them`);
      graphqlNames.add(t.graphqlName);
    }
  }

  private add(type: ArtifactTypeDef): void {
    this.byName.set(type.name, type);
  }

  all(): ArtifactTypeDef[] {
    return [...this.byName.values()];
  }

  find(name: string): ArtifactTypeDef | undefined {
    return this.byName.get(name);
  }

  get(name: string): ArtifactTypeDef {
    return this.byName.get(name) ?? fail('TYPE_UNKNOWN', `no artifact type ${JSON.stringify(name)} (types: ${[...this.byName.keys()].join(', ')})`);
  }

  byGraphqlName(graphqlName: string): ArtifactTypeDef | undefined {
    return this.all().find((t) => t.graphqlName === graphqlName);
  }
}

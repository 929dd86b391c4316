import type { FilterSpec, StringOps } from '../../domain/filters';
import type { FilterOp } from '../../domain/types';
import type { ArtifactFilter, ImageFilter, InputMaybe, IntFilter, SortInput, StringFilter } from '../__generated__/resolvers';

/**
 * GraphQL inputs → the domain's FilterSpec and sort keys. Only shape changes happen here
 * (enum case, image field names); validation lives in the domain's filter compiler.
 */
const lower = <T extends string>(v: T): Lowercase<T> => v.toLowerCase() as Lowercase<T>;
const lowerAll = <T extends string>(v: InputMaybe<T[]> | undefined) => (v ? v.map(lower) : undefined);

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;
}

function stringOps(f: InputMaybe<StringFilter> | undefined): StringOps | undefined {
  return f ? defined({ eq: f.eq ?? undefined, neq: f.neq ?? undefined, in: f.in ?? undefined, like: f.like ?? undefined }) : undefined;
}

function common(f: ArtifactFilter | ImageFilter): FilterSpec {
  return defined({
    ids: f.ids ?? undefined,
    name: stringOps(f.name),
    owner: stringOps(f.owner),
    status: f.status ? defined({ eq: f.status.eq ? lower(f.status.eq) : undefined, neq: f.status.neq ? lower(f.status.neq) : undefined, in: lowerAll(f.status.in) }) : undefined,
    visibility: f.visibility ? defined({ eq: f.visibility.eq ? lower(f.visibility.eq) : undefined, in: lowerAll(f.visibility.in) }) : undefined,
    tags: f.tags ? defined({ all: f.tags.all ?? undefined, any: f.tags.any ?? undefined }) : undefined,
    properties: f.properties?.map((p) => defined({ key: p.key, eq: p.eq ?? undefined, neq: p.neq ?? undefined, in: p.in ?? undefined, like: p.like ?? undefined, exists: p.exists ?? undefined })),
    createdAt: f.createdAt ? defined({ ...f.createdAt }) : undefined,
    updatedAt: f.updatedAt ? defined({ ...f.updatedAt }) : undefined,
    memberStatus: f.memberStatus ? lower(f.memberStatus) : undefined,
    backend: f.backend ?? undefined,
  }) as FilterSpec;
}

export function artifactFilter(f: InputMaybe<ArtifactFilter> | undefined): FilterSpec | undefined {
  if (!f) return undefined;
  return defined({
    ...common(f),
    version: f.version ? defined({ ...f.version }) : undefined,
    latest: f.latest ?? undefined,
    activatedAt: f.activatedAt ? defined({ ...f.activatedAt }) : undefined,
    fields: f.fields?.map((x) => ({ field: x.field, op: lower(x.op) as FilterOp, value: x.value })),
    and: f.and?.map((x) => artifactFilter(x)!),
    or: f.or?.map((x) => artifactFilter(x)!),
    not: f.not ? artifactFilter(f.not) : undefined,
  }) as FilterSpec;
}

const IMAGE_STRING_FIELDS = [['diskFormat', 'disk_format'], ['containerFormat', 'container_format'], ['checksum', 'checksum'], ['osHashValue', 'os_hash_value']] as const;
const IMAGE_INT_FIELDS = [['size', 'size'], ['minDisk', 'min_disk'], ['minRam', 'min_ram']] as const;

function opsToFields(field: string, ops: StringFilter | IntFilter): FilterSpec['fields'] {
  return Object.entries(ops)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([op, value]) => ({ field, op: op as FilterOp, value }));
}

/**
 * Image filters are artifact filters on the images type's fields. Hidden images stay out
 * unless osHidden is true (Glance's os_hidden), only at the top level.
 */
export function imageFilter(f: InputMaybe<ImageFilter> | undefined, topLevel = true): FilterSpec {
  const filter = f ?? {};
  const fields: NonNullable<FilterSpec['fields']> = [];
  for (const [input, field] of IMAGE_STRING_FIELDS) if (filter[input]) fields.push(...opsToFields(field, filter[input]!)!);
  for (const [input, field] of IMAGE_INT_FIELDS) if (filter[input]) fields.push(...opsToFields(field, filter[input]!)!);
  if (filter.protected != null) fields.push({ field: 'protected', op: 'eq', value: filter.protected });
  if (topLevel || filter.osHidden != null) fields.push({ field: 'os_hidden', op: 'eq', value: filter.osHidden ?? false });
  return defined({
    ...common(filter),
    fields: fields.length ? fields : undefined,
    and: filter.and?.map((x) => imageFilter(x, false)),
    or: filter.or?.map((x) => imageFilter(x, false)),
    not: filter.not ? imageFilter(filter.not, false) : undefined,
  }) as FilterSpec;
}

export function sortKeys(sort: InputMaybe<SortInput[]> | undefined): { key: string; direction: 'asc' | 'desc' }[] | undefined {
  return sort?.map((s) => ({ key: s.key, direction: s.direction === 'DESC' ? 'desc' : 'asc' }));
}

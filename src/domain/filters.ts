import { ALL_STATUSES, VISIBILITIES, type MemberStatus, type Scalar, type Status, type Visibility } from './artifact';
import { fail } from './errors';
import { parseId } from './ids';
import type { Principal } from './policy';
import { isAdmin } from './policy';
import type { Comparison, Condition, SortKey, SortTarget, Target } from './query';
import { canonicalVersion, parseVersionRange } from './semver';
import { findField, type ArtifactTypeDef, type FieldDef, type FilterOp } from './types';

/**
 * Filters as every edge expresses them (GraphQL inputs, Glance query parameters), compiled
 * here, once, into the store's neutral Condition tree, with each field's declared
 * operators enforced. Visibility scoping is added by `accessCondition`, never by edges.
 */
export interface StringOps { eq?: string; neq?: string; in?: string[]; like?: string }
export interface TimeOps { gt?: string; gte?: string; lt?: string; lte?: string }
export interface VersionOps { eq?: string; neq?: string; in?: string[]; gt?: string; gte?: string; lt?: string; lte?: string; range?: string }
export interface PropertyOps { key: string; eq?: string; neq?: string; in?: string[]; like?: string; exists?: boolean }
export interface FieldOps { field: string; op: FilterOp; value: unknown }

export interface FilterSpec {
  ids?: string[];
  name?: StringOps;
  version?: VersionOps;
  latest?: boolean;
  status?: { eq?: Status; neq?: Status; in?: Status[] };
  visibility?: { eq?: Visibility; in?: Visibility[] };
  owner?: StringOps;
  tags?: { all?: string[]; any?: string[] };
  properties?: PropertyOps[];
  fields?: FieldOps[];
  createdAt?: TimeOps;
  updatedAt?: TimeOps;
  activatedAt?: TimeOps;
  memberStatus?: MemberStatus | 'all';
  /**
   * Only artifacts held by these backends (names from configuration); top level only.
   * Backends judge it with `selectBackends`, not the filter compiler.
   */
  backend?: string[];
  and?: FilterSpec[];
  or?: FilterSpec[];
  not?: FilterSpec;
}

const MAX_IN_VALUES = 1000;
const MAX_NESTING = 8;

export function and(...conditions: Condition[]): Condition {
  const parts = conditions.filter((c) => c.op !== 'true');
  return parts.length === 0 ? { op: 'true' } : parts.length === 1 ? parts[0] : { op: 'and', conditions: parts };
}

/** The filter's own condition, without `latest` (which wraps the whole query; see compileQuery). */
export function compileFilter(type: ArtifactTypeDef | undefined, spec: FilterSpec | undefined, depth = 0): Condition {
  if (!spec) return { op: 'true' };
  if (depth > MAX_NESTING) fail('FILTER_INVALID', `filters may nest at most ${MAX_NESTING} levels`);
  const parts: Condition[] = [];
  const column = (name: Extract<Target, { kind: 'column' }>['name']): Target => ({ kind: 'column', name });

  if (spec.ids) parts.push({ op: 'in', target: column('id'), values: limitIn(spec.ids, 'ids').map((id) => parseId(id)) });
  if (spec.name) parts.push(...stringOps(column('name'), spec.name, 'name'));
  if (spec.owner) parts.push(...stringOps(column('owner'), spec.owner, 'owner'));
  if (spec.version) parts.push(...versionOps(spec.version));
  if (spec.status) parts.push(...enumOps(column('status'), spec.status, ALL_STATUSES, 'status'));
  if (spec.visibility) parts.push(...enumOps(column('visibility'), spec.visibility, VISIBILITIES, 'visibility'));
  if (spec.tags?.all) parts.push({ op: 'tagsAll', tags: limitIn(spec.tags.all, 'tags.all') });
  if (spec.tags?.any) parts.push({ op: 'tagsAny', tags: limitIn(spec.tags.any, 'tags.any') });
  for (const p of spec.properties ?? []) parts.push(...propertyOps(p));
  for (const f of spec.fields ?? []) parts.push(fieldOp(type, f));
  if (spec.createdAt) parts.push(...timeOps(column('createdAt'), spec.createdAt, 'createdAt'));
  if (spec.updatedAt) parts.push(...timeOps(column('updatedAt'), spec.updatedAt, 'updatedAt'));
  if (spec.activatedAt) parts.push(...timeOps(column('activatedAt'), spec.activatedAt, 'activatedAt'));
  for (const sub of spec.and ?? []) parts.push(compileNested(type, sub, depth));
  if (spec.or) parts.push({ op: 'or', conditions: spec.or.map((sub) => compileNested(type, sub, depth)) });
  if (spec.not) parts.push({ op: 'not', condition: compileNested(type, spec.not, depth) });
  return and(...parts);
}

function compileNested(type: ArtifactTypeDef | undefined, spec: FilterSpec, depth: number): Condition {
  if (spec.latest !== undefined || spec.memberStatus !== undefined || spec.backend !== undefined) {
    fail('FILTER_INVALID', 'latest, memberStatus and backend apply to the whole query, not inside and/or/not');
  }
  return compileFilter(type, spec, depth + 1);
}

function limitIn<T>(values: T[], what: string): T[] {
  if (values.length > MAX_IN_VALUES) fail('FILTER_INVALID', `${what} accepts at most ${MAX_IN_VALUES} values`);
  return values;
}

function stringOps(target: Target, ops: StringOps, what: string): Condition[] {
  const out: Condition[] = [];
  if (ops.eq !== undefined) out.push({ op: 'eq', target, value: ops.eq });
  if (ops.neq !== undefined) out.push({ op: 'neq', target, value: ops.neq });
  if (ops.in !== undefined) out.push({ op: 'in', target, values: limitIn(ops.in, `${what}.in`) });
  if (ops.like !== undefined) out.push({ op: 'like', target, pattern: ops.like });
  return out;
}

function enumOps<T extends string>(target: Target, ops: { eq?: T; neq?: T; in?: T[] }, allowed: readonly string[], what: string): Condition[] {
  for (const v of [ops.eq, ops.neq, ...(ops.in ?? [])]) {
    if (v !== undefined && !allowed.includes(v)) fail('FILTER_INVALID', `${what} ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  }
  return stringOps(target, ops, what);
}

function timeOps(target: Target, ops: TimeOps, what: string): Condition[] {
  const out: Condition[] = [];
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    const v = ops[op];
    if (v === undefined) continue;
    const t = Date.parse(v);
    if (Number.isNaN(t)) fail('FILTER_INVALID', `${what}.${op} expects an ISO-8601 time, got ${JSON.stringify(v)}`);
    out.push({ op, target, value: new Date(t).toISOString() });
  }
  return out;
}

function versionOps(ops: VersionOps): Condition[] {
  const target: Target = { kind: 'version' };
  const out: Condition[] = [];
  for (const op of ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const) {
    const v = ops[op];
    if (v !== undefined) out.push({ op, target, value: canonicalVersion(v) });
  }
  if (ops.in) out.push({ op: 'in', target, values: limitIn(ops.in, 'version.in').map(canonicalVersion) });
  if (ops.range !== undefined) {
    const alternatives = parseVersionRange(ops.range).map((set) => and(...set.map(({ op, version }): Condition => ({ op, target, value: version }))));
    out.push(alternatives.length === 1 ? alternatives[0] : { op: 'or', conditions: alternatives });
  }
  return out;
}

function propertyOps(p: PropertyOps): Condition[] {
  if (!p.key) fail('FILTER_INVALID', 'a property filter needs a key');
  const out: Condition[] = stringOps({ kind: 'property', name: p.key }, p, `properties.${p.key}`);
  if (p.exists === true) out.push({ op: 'hasProperty', name: p.key });
  if (p.exists === false) out.push({ op: 'not', condition: { op: 'hasProperty', name: p.key } });
  return out;
}

export function fieldTarget(field: FieldDef): Extract<Target, { kind: 'field' }> {
  const valueType = field.kind === 'string' ? 'string' : field.kind === 'boolean' ? 'boolean' : 'number';
  return { kind: 'field', name: field.name, valueType };
}

/** Accepts the storage name (disk_format) or the GraphQL name (diskFormat). */
export function resolveField(type: ArtifactTypeDef, name: string): FieldDef | undefined {
  return findField(type, name) ?? findField(type, snakeCase(name));
}

function fieldOp(type: ArtifactTypeDef | undefined, f: FieldOps): Condition {
  if (!type) fail('FILTER_INVALID', 'filters on typed fields need a typeName');
  const field = resolveField(type, f.field) ?? fail('FILTER_INVALID', `type ${type.name} has no field ${JSON.stringify(f.field)}`);
  if (!field.filterOps.includes(f.op)) {
    fail('FILTER_INVALID', `field ${field.name} does not allow ${f.op} (allowed: ${field.filterOps.join(', ') || 'none'})`);
  }
  const target = fieldTarget(field);
  const check = (v: unknown): Scalar => {
    const expected = target.valueType;
    if (typeof v !== expected) fail('FILTER_INVALID', `field ${field.name} compares ${expected} values, got ${JSON.stringify(v)}`);
    return v as Scalar;
  };
  const inList = field.container === 'list';
  switch (f.op) {
    case 'in':
      if (!Array.isArray(f.value)) fail('FILTER_INVALID', `in on ${field.name} expects a list`);
      if (inList) return { op: 'or', conditions: limitIn(f.value, field.name).map((v) => ({ op: 'contains', target, value: check(v) })) };
      return { op: 'in', target, values: limitIn(f.value, field.name).map(check) };
    case 'like':
      return { op: 'like', target, pattern: String(check(f.value)) };
    case 'eq':
      return inList ? { op: 'contains', target, value: check(f.value) } : f.value === null ? { op: 'isNull', target } : { op: 'eq', target, value: check(f.value) };
    case 'neq':
      if (inList) return { op: 'not', condition: { op: 'contains', target, value: check(f.value) } };
      return f.value === null ? { op: 'not', condition: { op: 'isNull', target } } : { op: 'neq', target, value: check(f.value) };
    default:
      return { op: f.op as Comparison, target, value: check(f.value) };
  }
}

/**
 * The backends among `names` (those the caller serves, in order) that a filter's `backend`
 * list selects: all of them without one; BACKEND_UNKNOWN for a name that is none of them.
 */
export function selectBackends(spec: FilterSpec | undefined, names: readonly string[]): string[] {
  const wanted = spec?.backend;
  if (wanted === undefined) return [...names];
  const unknown = wanted.find((n) => !names.includes(n));
  if (unknown !== undefined) fail('BACKEND_UNKNOWN', `no backend ${JSON.stringify(unknown.slice(0, 64))} (backends: ${names.join(', ')})`);
  return names.filter((n) => wanted.includes(n));
}

/**
 * Which rows a principal may see in listings, as Glance lists: its own, public ones, shared
 * ones whose membership has one of `memberStatuses`, and community ones only when asked for.
 * Admins see everything.
 */
export function accessCondition(p: Principal, spec: FilterSpec | undefined): Condition {
  if (isAdmin(p)) return { op: 'true' };
  const visibility: Target = { kind: 'column', name: 'visibility' };
  const wanted = spec?.visibility?.in ?? (spec?.visibility?.eq ? [spec.visibility.eq] : []);
  const memberStatuses: MemberStatus[] = !spec?.memberStatus || spec.memberStatus === 'accepted'
    ? ['accepted']
    : spec.memberStatus === 'all' ? ['pending', 'accepted', 'rejected'] : [spec.memberStatus];
  const readable: Condition[] = [
    { op: 'eq', target: { kind: 'column', name: 'owner' }, value: p.projectId },
    { op: 'eq', target: visibility, value: 'public' },
    { op: 'and', conditions: [{ op: 'eq', target: visibility, value: 'shared' }, { op: 'memberOf', project: p.projectId, statuses: memberStatuses }] },
  ];
  if (wanted.includes('community')) readable.push({ op: 'eq', target: visibility, value: 'community' });
  return { op: 'or', conditions: readable };
}

const BASE_SORT: Record<string, SortTarget> = {
  id: { kind: 'column', name: 'id' },
  name: { kind: 'column', name: 'name' },
  owner: { kind: 'column', name: 'owner' },
  status: { kind: 'column', name: 'status' },
  visibility: { kind: 'column', name: 'visibility' },
  typeName: { kind: 'column', name: 'typeName' },
  type_name: { kind: 'column', name: 'typeName' },
  createdAt: { kind: 'column', name: 'createdAt' },
  created_at: { kind: 'column', name: 'createdAt' },
  updatedAt: { kind: 'column', name: 'updatedAt' },
  updated_at: { kind: 'column', name: 'updatedAt' },
  activatedAt: { kind: 'column', name: 'activatedAt' },
  activated_at: { kind: 'column', name: 'activatedAt' },
  version: { kind: 'version' },
};

export const DEFAULT_SORT: readonly SortKey[] = [{ target: BASE_SORT.createdAt, direction: 'desc' }];

export function resolveSort(type: ArtifactTypeDef | undefined, keys: readonly { key: string; direction: 'asc' | 'desc' }[] | undefined): SortKey[] {
  if (!keys || keys.length === 0) return [...DEFAULT_SORT];
  if (keys.length > 5) fail('SORT_INVALID', 'at most 5 sort keys');
  return keys.map(({ key, direction }) => {
    const base = Object.prototype.hasOwnProperty.call(BASE_SORT, key) ? BASE_SORT[key] : undefined;
    if (base) return { target: base, direction };
    const field = type ? resolveField(type, key) : undefined;
    if (!field) fail('SORT_INVALID', `unknown sort key ${JSON.stringify(key)}${type ? '' : ' (typed fields need a typeName)'}`);
    if (!field.sortable) fail('SORT_INVALID', `field ${field.name} is not sortable`);
    return { target: fieldTarget(field), direction };
  });
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

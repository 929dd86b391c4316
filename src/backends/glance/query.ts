import { ALL_STATUSES, IMAGE_STATUSES, VISIBILITIES, type ArtifactRecord, type Status } from '../../domain/artifact';
import { fail } from '../../domain/errors';
import { resolveField, type FilterSpec, type TimeOps } from '../../domain/filters';
import { parseId } from '../../domain/ids';
import type { Keyset, SortKey } from '../../domain/query';
import type { ArtifactTypeDef } from '../../domain/types';

/**
 * ListRequest filters and sorts as `GET /v2/images` query parameters. Everything is pushed
 * down to Glance, or refused (FILTER_INVALID / SORT_INVALID naming the backend): filtering
 * or sorting here after Glance paged would return short or misordered pages.
 *
 * Glance's query language (images.py _get_filters, db/sqlalchemy/api.py
 * _make_conditions_from_filters): `in:` lists on name, id, status and the formats;
 * one comparison per time (gt/gte/lt/lte/eq/neq, the last one given wins); `_min`/`_max`
 * on integer columns; equality on anything else, extra properties included; `tag` repeats
 * as AND. Glance shows times in whole seconds but compares the stored microseconds, so
 * comparisons are rounded to the second the way the shown value is (see `timeOperand`).
 */
export interface GlanceFilter {
  /** Query parameters in a stable order; `tag` may repeat. */
  params: [string, string][];
  /** The filter cannot match anything: answer without asking Glance. */
  nothing: boolean;
}

/** Statuses Glance lists at all (killed and deleted images never appear in lists). */
const LISTABLE: readonly Status[] = IMAGE_STATUSES.filter((s) => s !== 'killed' && s !== 'deleted');
/** More ids than this in one `id=in:` would pass eventlet's 8 KiB request-line limit. */
export const MAX_IDS_PER_QUERY = 150;
const INTEGER_FIELDS = new Set(['size', 'virtual_size', 'min_disk', 'min_ram']);
const IN_FIELDS = new Set(['disk_format', 'container_format']);
const EQUALITY_FIELDS = new Set(['checksum', 'os_hash_value', 'os_hash_algo']);
const BOOLEAN_FIELDS = new Set(['protected', 'os_hidden']);
/** Query parameter names that are not extra-property filters in Glance. */
const RESERVED_PARAMS = new Set([
  'limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status', 'visibility', 'tag', 'changes-since',
  'id', 'name', 'status', 'owner', 'created_at', 'updated_at', 'size', 'virtual_size', 'min_disk', 'min_ram',
  'disk_format', 'container_format', 'checksum', 'os_hash_algo', 'os_hash_value', 'protected', 'os_hidden',
]);

export function glanceFilter(type: ArtifactTypeDef, spec: FilterSpec | undefined, backend: string): GlanceFilter {
  const t = new Translation(type, backend);
  if (spec) t.apply(spec);
  return t.result();
}

class Translation {
  private statuses: Set<Status> | undefined;
  private visibilities: Set<string> | undefined;
  private readonly lists = new Map<string, string[]>();
  private readonly equals = new Map<string, string>();
  private readonly ranges = new Map<string, { min?: number; max?: number }>();
  private readonly times = new Map<string, { op: 'gte' | 'lt'; at: number }>();
  private readonly tags = new Set<string>();
  private nothing = false;

  constructor(private readonly type: ArtifactTypeDef, private readonly backend: string) {}

  private unsupported(what: string): never {
    return fail('FILTER_INVALID', `backend ${this.backend} (a Glance) cannot filter by ${what}`, { backend: this.backend });
  }

  apply(spec: FilterSpec): void {
    if (spec.ids) {
      if (spec.ids.length > MAX_IDS_PER_QUERY) this.unsupported(`more than ${MAX_IDS_PER_QUERY} ids at once`);
      this.intersect('id', spec.ids.map((id) => parseId(id)));
    }
    if (spec.name) {
      if (spec.name.neq !== undefined || spec.name.like !== undefined) this.unsupported('name with neq or like (only eq and in)');
      if (spec.name.eq !== undefined) this.intersect('name', [spec.name.eq]);
      if (spec.name.in) this.intersect('name', spec.name.in);
    }
    if (spec.version) this.unsupported('version (Glance images have none)');
    if (spec.latest) this.unsupported('latest (Glance images have no versions)');
    if (spec.activatedAt) this.unsupported('activatedAt (Glance does not record it)');
    if (spec.status) {
      const { eq, in: within, neq } = spec.status;
      for (const s of [eq, neq, ...(within ?? [])]) {
        if (s !== undefined && !ALL_STATUSES.includes(s)) fail('FILTER_INVALID', `status ${JSON.stringify(s)} is not one of ${ALL_STATUSES.join(', ')}`);
      }
      if (eq !== undefined) this.keepStatuses([eq]);
      if (within) this.keepStatuses(within);
      if (neq !== undefined) this.dropStatuses([neq]);
    }
    if (spec.visibility) {
      for (const v of [spec.visibility.eq, ...(spec.visibility.in ?? [])]) {
        if (v !== undefined && !VISIBILITIES.includes(v)) fail('FILTER_INVALID', `visibility ${JSON.stringify(v)} is not one of ${VISIBILITIES.join(', ')}`);
      }
      if (spec.visibility.eq !== undefined) this.keepVisibilities([spec.visibility.eq]);
      if (spec.visibility.in) this.keepVisibilities(spec.visibility.in);
    }
    if (spec.owner) {
      const { eq, in: within, neq, like } = spec.owner;
      if (neq !== undefined || like !== undefined || (within && within.length > 1)) this.unsupported('owner with neq, like or several values (only eq)');
      if (eq !== undefined) this.single('owner', eq);
      if (within?.length === 0) this.matchNothing();
      else if (within) this.single('owner', within[0]);
    }
    if (spec.tags?.all) for (const tag of spec.tags.all) this.tags.add(tag);
    if (spec.tags?.any) {
      if (spec.tags.any.length > 1) this.unsupported('tags.any with several tags (Glance ANDs tags: use tags.all)');
      if (spec.tags.any.length === 0) this.matchNothing();
      else this.tags.add(spec.tags.any[0]);
    }
    for (const p of spec.properties ?? []) this.property(p);
    for (const f of spec.fields ?? []) this.field(f.field, f.op, f.value);
    if (spec.createdAt) this.time('created_at', spec.createdAt);
    if (spec.updatedAt) this.time('updated_at', spec.updatedAt);
    if (spec.memberStatus !== undefined) this.single('member_status', spec.memberStatus);
    for (const sub of spec.and ?? []) this.apply(sub);
    if (spec.or) {
      if (spec.or.length !== 1) this.unsupported('or');
      this.apply(spec.or[0]);
    }
    if (spec.not) this.negated(spec.not);
  }

  /** Only `not` over statuses has a Glance form (an `in:` over the others). */
  private negated(spec: FilterSpec): void {
    const keys = Object.entries(spec).filter(([, v]) => v !== undefined).map(([k]) => k);
    const status = spec.status;
    if (keys.length !== 1 || keys[0] !== 'status' || !status || status.neq !== undefined) this.unsupported('not (except not over status eq/in)');
    this.dropStatuses([...(status.eq !== undefined ? [status.eq] : []), ...(status.in ?? [])]);
  }

  private property(p: { key: string; eq?: string; neq?: string; in?: string[]; like?: string; exists?: boolean }): void {
    if (!p.key) fail('FILTER_INVALID', 'a property filter needs a key');
    if (RESERVED_PARAMS.has(p.key) || /_(min|max)$/.test(p.key)) this.unsupported(`property ${JSON.stringify(p.key)} (the name is one of Glance's own query parameters)`);
    if (p.neq !== undefined || p.like !== undefined || p.exists !== undefined || (p.in && p.in.length > 1)) {
      this.unsupported(`property ${p.key} with neq, like, exists or several values (only eq)`);
    }
    if (p.eq !== undefined) this.single(p.key, p.eq);
    if (p.in?.length === 0) this.matchNothing();
    else if (p.in) this.single(p.key, p.in[0]);
  }

  private field(name: string, op: string, value: unknown): void {
    const field = resolveField(this.type, name) ?? fail('FILTER_INVALID', `type ${this.type.name} has no field ${JSON.stringify(name)}`);
    const key = field.name;
    const values = op === 'in' ? (Array.isArray(value) ? value : fail('FILTER_INVALID', `in on ${key} expects a list`)) : [value];
    if (IN_FIELDS.has(key) && (op === 'eq' || op === 'in')) {
      this.intersect(key, values.map((v) => (typeof v === 'string' ? v : fail('FILTER_INVALID', `field ${key} compares string values, got ${JSON.stringify(v)}`))));
      return;
    }
    if (INTEGER_FIELDS.has(key) && ['eq', 'gt', 'gte', 'lt', 'lte'].includes(op)) {
      const n = typeof value === 'number' && Number.isFinite(value) ? value : fail('FILTER_INVALID', `field ${key} compares numbers, got ${JSON.stringify(value)}`);
      // Integer columns: a strict or fractional bound is the nearest inclusive integer one.
      if (op === 'eq') this.range(key, Number.isInteger(n) ? n : Infinity, Number.isInteger(n) ? n : -Infinity);
      if (op === 'gt') this.range(key, Math.floor(n) + 1, undefined);
      if (op === 'gte') this.range(key, Math.ceil(n), undefined);
      if (op === 'lt') this.range(key, undefined, Math.ceil(n) - 1);
      if (op === 'lte') this.range(key, undefined, Math.floor(n));
      return;
    }
    if (EQUALITY_FIELDS.has(key) && (op === 'eq' || (op === 'in' && values.length === 1))) {
      const v = values[0];
      this.single(key, typeof v === 'string' ? v : fail('FILTER_INVALID', `field ${key} compares string values, got ${JSON.stringify(v)}`));
      return;
    }
    if (BOOLEAN_FIELDS.has(key) && (op === 'eq' || op === 'neq')) {
      if (typeof value !== 'boolean') fail('FILTER_INVALID', `field ${key} compares boolean values, got ${JSON.stringify(value)}`);
      this.single(key, String(op === 'eq' ? value : !value));
      return;
    }
    this.unsupported(`${key} with ${op}`);
  }

  private time(key: 'created_at' | 'updated_at', ops: TimeOps): void {
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const v = ops[op];
      if (v === undefined) continue;
      const t = Date.parse(v);
      if (Number.isNaN(t)) fail('FILTER_INVALID', `${key}.${op} expects an ISO-8601 time, got ${JSON.stringify(v)}`);
      const next = timeOperand(op, t);
      const current = this.times.get(key);
      if (current && current.op !== next.op) this.unsupported(`a range of ${key} (Glance takes one comparison per time)`);
      if (!current || (next.op === 'gte' ? next.at > current.at : next.at < current.at)) this.times.set(key, next);
    }
  }

  private intersect(key: string, values: readonly string[]): void {
    const current = this.lists.get(key);
    const next = current ? current.filter((v) => values.includes(v)) : [...new Set(values)];
    if (next.length === 0) this.matchNothing();
    this.lists.set(key, next);
  }

  private single(key: string, value: string): void {
    const current = this.equals.get(key);
    if (current !== undefined && current !== value) this.matchNothing();
    this.equals.set(key, value);
  }

  private range(key: string, min: number | undefined, max: number | undefined): void {
    const r = this.ranges.get(key) ?? {};
    if (min !== undefined) r.min = r.min === undefined ? min : Math.max(r.min, min);
    if (max !== undefined) r.max = r.max === undefined ? max : Math.min(r.max, max);
    if (r.min !== undefined && r.max !== undefined && r.min > r.max) this.matchNothing();
    this.ranges.set(key, r);
  }

  private keepStatuses(statuses: readonly Status[]): void {
    this.statuses = new Set([...(this.statuses ?? LISTABLE)].filter((s) => statuses.includes(s)));
  }

  private dropStatuses(statuses: readonly Status[]): void {
    this.statuses = new Set([...(this.statuses ?? LISTABLE)].filter((s) => !statuses.includes(s)));
  }

  private keepVisibilities(visibilities: readonly string[]): void {
    this.visibilities = new Set([...(this.visibilities ?? VISIBILITIES)].filter((v) => visibilities.includes(v)));
  }

  private matchNothing(): void {
    this.nothing = true;
  }

  result(): GlanceFilter {
    const params: [string, string][] = [];
    if (this.statuses) {
      const statuses = LISTABLE.filter((s) => this.statuses!.has(s));
      if (statuses.length === 0) this.matchNothing();
      else if (statuses.length < LISTABLE.length) params.push(['status', `in:${statuses.join(',')}`]);
    }
    if (this.visibilities) {
      const v = [...this.visibilities];
      if (v.length === 0) this.matchNothing();
      else if (v.length === VISIBILITIES.length) params.push(['visibility', 'all']);
      else if (v.length === 1) params.push(['visibility', v[0]]);
      else this.unsupported('several visibilities (Glance takes one, or all)');
    }
    for (const [key, values] of this.lists) params.push([key, key === 'id' ? `in:${values.join(',')}` : inList(values, key, this.backend)]);
    for (const [key, r] of this.ranges) {
      if (r.min !== undefined && r.min === r.max) params.push([key, String(r.min)]);
      else {
        if (r.min !== undefined) params.push([`${key}_min`, String(r.min)]);
        if (r.max !== undefined) params.push([`${key}_max`, String(r.max)]);
      }
    }
    for (const [key, { op, at }] of this.times) params.push([key, `${op}:${glanceTime(at)}`]);
    for (const [key, value] of this.equals) params.push([key, value]);
    for (const tag of this.tags) params.push(['tag', tag]);
    return { params, nothing: this.nothing };
  }
}

/** `in:"a","b,c"`: api-wg quoting, which Glance splits without unescaping, so a `"` cannot be expressed. */
function inList(values: readonly string[], key: string, backend: string): string {
  if (values.some((v) => v.includes('"'))) fail('FILTER_INVALID', `backend ${backend} (a Glance) cannot match ${key} values that contain a double quote`, { backend });
  if (values.length === 1 && !values[0].includes(',')) return `eq:${values[0]}`;
  return `in:${values.map((v) => `"${v}"`).join(',')}`;
}

/**
 * A comparison with the shown time (whole seconds, floor of the stored time) as one on the
 * stored time: shown > T ⇔ stored ≥ ⌊T⌋+1s; shown ≥ T ⇔ stored ≥ ⌈T⌉; shown < T ⇔
 * stored < ⌈T⌉; shown ≤ T ⇔ stored < ⌊T⌋+1s.
 */
export function timeOperand(op: 'gt' | 'gte' | 'lt' | 'lte', t: number): { op: 'gte' | 'lt'; at: number } {
  const floor = Math.floor(t / 1000) * 1000;
  const ceil = Math.ceil(t / 1000) * 1000;
  switch (op) {
    case 'gt': return { op: 'gte', at: floor + 1000 };
    case 'gte': return { op: 'gte', at: ceil };
    case 'lt': return { op: 'lt', at: ceil };
    case 'lte': return { op: 'lt', at: floor + 1000 };
  }
}

function glanceTime(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19)}Z`;
}

// ---- sorting ---------------------------------------------------------------------------

/** Glance's sort keys (images.py _available_sort_keys) by the sort target they stand for. */
const SORT_COLUMNS: Record<string, string> = { id: 'id', name: 'name', status: 'status', createdAt: 'created_at', updatedAt: 'updated_at' };
const SORT_FIELDS = new Set(['disk_format', 'container_format', 'size']);

/**
 * The `sort` parameter: the keys asked for, then created_at and id (unless present) in the
 * direction of the last key, so the order is total and a reversed sort reads it backwards.
 * typeName and version are the same for every image here and sort nothing.
 */
export function glanceSort(sort: readonly SortKey[], backend: string): string {
  const parts: [string, 'asc' | 'desc'][] = [];
  for (const { target, direction } of sort) {
    let key: string | undefined;
    if (target.kind === 'column' && target.name === 'typeName') continue;
    if (target.kind === 'version') continue;
    if (target.kind === 'column') key = SORT_COLUMNS[target.name];
    if (target.kind === 'field' && SORT_FIELDS.has(target.name)) key = target.name;
    if (!key) {
      fail('SORT_INVALID', `backend ${backend} (a Glance) cannot sort by ${target.name} (Glance sorts by name, status, container_format, disk_format, size, id, created_at, updated_at)`, { backend });
    }
    if (!parts.some(([k]) => k === key)) parts.push([key, direction]);
  }
  const last = parts.at(-1)?.[1] ?? 'desc';
  for (const key of ['created_at', 'id']) if (!parts.some(([k]) => k === key)) parts.push([key, last]);
  return parts.map(([k, d]) => `${k}:${d}`).join(',');
}

export function reverseGlanceSort(sort: string): string {
  return sort.split(',').map((part) => part.replace(/:(asc|desc)$/, (_, d: string) => (d === 'asc' ? ':desc' : ':asc'))).join(',');
}

/** The keyset of a row under `sort`, for cursors (Glance itself pages by the marker's id). */
export function keysetOf(sort: readonly SortKey[], r: ArtifactRecord): Keyset {
  return {
    id: r.id,
    values: sort.map(({ target }) => {
      switch (target.kind) {
        case 'version':
          return r.version;
        case 'field': {
          const v = r.fields[target.name];
          return v === undefined || v === null || typeof v === 'object' ? null : v;
        }
        default:
          return r[target.name];
      }
    }),
  };
}

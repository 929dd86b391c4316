import type { ListRequest } from '../../backends/port';
import { IMAGE_STATUSES, VISIBILITIES, type MemberStatus, type Status } from '../../domain/artifact';
import type { FieldOps, FilterSpec, TimeOps } from '../../domain/filters';
import { isUuid } from '../../domain/ids';
import { badRequest } from './errors';
import { IMAGE_TYPE } from '../../domain/glance-image';

/**
 * `GET /v2/images` query parameters, with Glance's semantics (images.py
 * RequestDeserializer.index, ImagesController.index; db/sqlalchemy/api.py
 * _make_conditions_from_filters), translated to a backend ListRequest, plus the
 * `first`/`next` links Glance builds from the original query.
 */
export interface ImageListQuery {
  /** Page size after Glance's default and cap. */
  limit: number;
  /** The image to continue after (Glance's keyset marker). */
  marker?: string;
  request: ListRequest & { first: number };
  first: string;
  next(lastId: string): string;
}

export interface ListLimits {
  defaultPageSize: number;
  maxPageSize: number;
}

const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'];
const IN_FILTER_KEYS = new Set(['name', 'id', 'status', 'container_format', 'disk_format']);
const INTEGER_FIELDS = new Set(['size', 'virtual_size', 'min_disk', 'min_ram']);
const STRING_FIELDS = new Set(['checksum', 'os_hash_value', 'os_hash_algo']);
const MEMBER_STATUS_VALUES = ['pending', 'accepted', 'rejected', 'all'];
/** Matches no row: an `in` over no ids compiles to FALSE. */
const NOTHING: FilterSpec = { ids: [] };

export function parseImageListQuery(rawQuery: string, limits: ListLimits): ImageListQuery {
  const params = new URLSearchParams(rawQuery);
  const remaining = new Map<string, string[]>();
  for (const [key, value] of params) remaining.set(key, [...(remaining.get(key) ?? []), value]);
  const take = (key: string): string[] => {
    const values = remaining.get(key) ?? [];
    remaining.delete(key);
    return values;
  };
  const takeLast = (key: string): string | undefined => take(key).at(-1);

  const limit = parseLimit(takeLast('limit'), limits);
  const marker = takeLast('marker');
  const memberStatus = takeLast('member_status') ?? 'accepted';
  if (!MEMBER_STATUS_VALUES.includes(memberStatus)) throw badRequest(`Invalid status: ${memberStatus}`);
  const tags = take('tag').map((t) => t.trim());

  const visibility = takeLast('visibility');
  if (visibility && ![...VISIBILITIES, 'all'].includes(visibility)) throw badRequest(`Invalid visibility value: ${visibility}`);
  if (takeLast('changes-since')) throw badRequest('The "changes-since" filter is no longer available on v2.');

  const sort = parseSort(take('sort'), take('sort_key'), take('sort_dir'));

  const osHidden = (takeLast('os_hidden') ?? 'false').toLowerCase();
  if (osHidden !== 'true' && osHidden !== 'false') {
    throw badRequest(`Invalid value '${osHidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.`);
  }
  const isProtected = takeLast('protected');
  if (isProtected !== undefined && isProtected !== 'true' && isProtected !== 'false') {
    throw badRequest(`Invalid value '${isProtected}' for 'protected' filter. Valid values are 'true' or 'false'.`);
  }

  // Glance never lists killed (or deleted) images.
  const and: FilterSpec[] = [{ not: { status: { in: ['killed', 'deleted'] } } }];
  const fields: FieldOps[] = [{ field: 'os_hidden', op: 'eq', value: osHidden === 'true' }];
  if (isProtected !== undefined) fields.push({ field: 'protected', op: 'eq', value: isProtected === 'true' });
  const filter: FilterSpec = { and, fields, memberStatus: memberStatus as MemberStatus | 'all' };
  if (tags.length > 0) filter.tags = { all: tags };
  if (visibility) filter.visibility = visibility === 'all' ? { in: [...VISIBILITIES] } : { eq: visibility as (typeof VISIBILITIES)[number] };

  // Every other parameter filters, one value each (the last, as webob's dict does).
  for (const key of [...remaining.keys()]) {
    const value = takeLast(key)!;
    and.push(filterFor(key, value));
  }

  return {
    limit,
    marker,
    request: { typeName: IMAGE_TYPE, filter, sort, first: limit },
    first: link(params, undefined),
    next: (lastId) => link(params, lastId),
  };
}

function parseLimit(raw: string | undefined, limits: ListLimits): number {
  if (raw === undefined) return Math.min(limits.defaultPageSize, limits.maxPageSize);
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw badRequest('limit param must be an integer');
  const n = Number(raw);
  if (n < 0) throw badRequest('limit param must be positive');
  return Math.min(n, limits.maxPageSize, 1000);
}

function parseSort(sort: string[], keys: string[], dirs: string[]): ListRequest['sort'] {
  const sortKeys: string[] = [];
  const sortDirs: string[] = [];
  if (sort.length > 0) {
    if (keys.length > 0 || dirs.length > 0) throw badRequest('Old and new sorting syntax cannot be combined');
    for (const part of sort.at(-1)!.trim().split(',')) {
      const [key, dir] = splitOnce(part, ':');
      sortKeys.push(sortKey(key.trim()));
      sortDirs.push(sortDir((dir ?? '').trim() || 'desc'));
    }
  } else {
    sortKeys.push(...keys.map((k) => sortKey(k.trim())));
    sortDirs.push(...dirs.map((d) => sortDir(d.trim())));
    if (sortDirs.length > 1 && sortDirs.length !== sortKeys.length) throw badRequest('Number of sort dirs does not match the number of sort keys');
  }
  if (sortKeys.length === 0) sortKeys.push('created_at');
  if (sortDirs.length === 0) sortDirs.push('desc');
  const out = sortKeys.map((key, i) => ({ key, direction: (sortDirs.length === sortKeys.length ? sortDirs[i] : sortDirs[0]) as 'asc' | 'desc' }));
  // Glance always appends created_at (then id, which the store appends) as tie-breakers.
  if (!sortKeys.includes('created_at')) out.push({ key: 'created_at', direction: 'desc' });
  return out;
}

function sortKey(key: string): string {
  if (!SORT_KEYS.includes(key)) throw badRequest(`Invalid sort key: ${key}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
  return key;
}

function sortDir(dir: string): string {
  if (dir !== 'asc' && dir !== 'desc') throw badRequest(`Invalid sort direction: ${dir}`);
  return dir;
}

function filterFor(key: string, value: string): FilterSpec {
  if (key === 'created_at' || key === 'updated_at') return timeFilter(key, value);
  if (IN_FILTER_KEYS.has(key)) return inFilter(key, value);
  if (key.endsWith('_min') || key.endsWith('_max')) {
    const field = key.slice(0, -4);
    if (!INTEGER_FIELDS.has(field)) throw badRequest(`Unable to filter on a range of ${field}.`);
    if (!/^\s*[+-]?\d+\s*$/.test(value)) throw badRequest('Unable to filter on a range with a non-numeric value.');
    return { fields: [{ field, op: key.endsWith('_min') ? 'gte' : 'lte', value: Number(value) }] };
  }
  if (key === 'owner') return { owner: { eq: value } };
  if (INTEGER_FIELDS.has(key)) {
    // Glance compares the column in SQL; a non-number simply matches nothing.
    return /^\s*[+-]?\d+\s*$/.test(value) ? { fields: [{ field: key, op: 'eq', value: Number(value) }] } : NOTHING;
  }
  if (STRING_FIELDS.has(key)) return { fields: [{ field: key, op: 'eq', value }] };
  return { properties: [{ key, eq: value }] };
}

/** name, id, status, container_format, disk_format: `eq` (default) or `in:` with quoted values. */
function inFilter(key: string, expression: string): FilterSpec {
  const [op, operand] = splitFilterOp(expression);
  let values: string[];
  if (op === 'in') values = splitQuoted(operand);
  else if (op === 'eq') values = [operand];
  else throw badRequest(`Unable to filter by unknown operator '${op}'.`);
  switch (key) {
    case 'name':
      return { name: { in: values } };
    case 'id': {
      const ids = values.filter(isUuid).map((id) => id.toLowerCase());
      return { ids };
    }
    case 'status': {
      // An unknown status matches nothing in Glance; the domain would refuse it.
      const statuses = values.filter((s): s is Status => (IMAGE_STATUSES as readonly string[]).includes(s));
      return statuses.length > 0 ? { status: { in: statuses } } : NOTHING;
    }
    default:
      return { fields: [{ field: key, op: 'in', value: values }] };
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * created_at / updated_at with gt, gte, lt, lte, eq, neq. Glance shows whole seconds, so a
 * threshold in whole seconds covers the whole second: eq:T matches what is shown as T.
 */
function timeFilter(key: 'created_at' | 'updated_at', expression: string): FilterSpec {
  const [op, operand] = ISO_8601.test(expression.trim()) ? ['eq', expression.trim()] : splitFilterOp(expression);
  const at = parseIsoTime(operand, key);
  const wholeSecond = at % 1000 === 0;
  const iso = (t: number) => new Date(t).toISOString();
  const nextSecond = iso(at + 1000);
  let ops: TimeOps;
  switch (op) {
    case 'gt': ops = wholeSecond ? { gte: nextSecond } : { gt: iso(at) }; break;
    case 'gte': ops = { gte: iso(at) }; break;
    case 'lt': ops = { lt: iso(at) }; break;
    case 'lte': ops = wholeSecond ? { lt: nextSecond } : { lte: iso(at) }; break;
    case 'eq':
    case 'neq': ops = wholeSecond ? { gte: iso(at), lt: nextSecond } : { gte: iso(at), lte: iso(at) }; break;
    default: throw badRequest('Unable to filter on a unknown operator.');
  }
  const spec: FilterSpec = key === 'created_at' ? { createdAt: ops } : { updatedAt: ops };
  return op === 'neq' ? { not: spec } : spec;
}

function parseIsoTime(text: string, key: string): number {
  const trimmed = text.trim();
  // iso8601 (Glance's parser) reads a time without a zone as UTC.
  const withZone = /(?:Z|[+-]\d{2}(?::?\d{2})?)$/i.test(trimmed) || !trimmed.includes('T') && !trimmed.includes(' ') ? trimmed : `${trimmed}Z`;
  const t = ISO_8601.test(trimmed) ? Date.parse(withZone.replace(' ', 'T')) : NaN;
  if (Number.isNaN(t)) throw badRequest(`Bad "${key}" query filter format. Use ISO 8601 DateTime notation.`);
  return t;
}

/** Glance's split_filter_op: `op:value`, or `eq` when there is no colon. */
function splitFilterOp(expression: string): [string, string] {
  const [left, right] = splitOnce(expression, ':');
  return right === undefined ? ['eq', left] : [left, right];
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const i = text.indexOf(separator);
  return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + separator.length)];
}

/** `a,"b,c",d` → a | b,c | d (api-wg quoting; backslash escapes inside quotes). */
export function splitQuoted(value: string): string[] {
  if ((value.match(/(?<!\\)"/g) ?? []).length % 2 !== 0) throw badRequest(`Invalid filter value ${value}. The quote is not closed.`);
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)",?|([^,]+),?|,/g;
  for (const m of value.matchAll(re)) out.push((m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1'));
  return out;
}

/** Glance's first/next links: the original query minus `marker`, then the new marker. */
function link(params: URLSearchParams, marker: string | undefined): string {
  const query = new URLSearchParams([...params].filter(([key]) => key !== 'marker'));
  if (marker !== undefined) query.append('marker', marker);
  const text = query.toString();
  return text ? `/v2/images?${text}` : '/v2/images';
}

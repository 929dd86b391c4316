import type { ArtifactRecord, Scalar } from '../../domain/artifact';
import { fail } from '../../domain/errors';
import { encodeVersion } from '../../domain/semver';
import type { Comparison, Condition, Keyset, ListQuery, SortKey, SortTarget, Target } from './port';

/**
 * Compiles the neutral query (Condition, SortKey[], Keyset) into SQL for the artifact
 * tables. Everything engine-specific goes through a `SqlDialect`, so the SQLite and
 * PostgreSQL adapters share the semantics below:
 *
 * - Every compiled predicate is two-valued (never SQL NULL), so `not` is an exact
 *   complement: `neq` matches rows where the value is missing, `eq`/`gt`/`in`/`like` never do.
 * - NULL sorts below every value: first in ascending order, last in descending order. This
 *   makes a reversed sort exactly the reversed order, which backward paging relies on.
 * - `id` is the final tie-breaker, in the direction of the last key.
 */
export interface SqlDialect {
  readonly name: string;
  /** The placeholder for the 1-based `index`-th parameter: `?` or `$1`. */
  placeholder(index: number): string;
  /** How a boolean is bound, and how typed boolean fields compare. */
  bool(value: boolean): unknown;
  /** A typed field read out of the JSON `fields` column; NULL when absent or JSON null. */
  jsonField(column: string, field: string, valueType: FieldValueType): string;
  /** Whether the JSON list `field` contains the (already bound) value. Must be two-valued. */
  jsonListContains(column: string, field: string, valueType: FieldValueType, placeholder: string): string;
  /** Case-sensitive LIKE, `\` escaping the next character; returns the predicate and what to bind. */
  like(expression: string, pattern: string, bind: (value: unknown) => string): string;
}

export type FieldValueType = 'string' | 'number' | 'boolean';

/** The artifacts table's columns behind the neutral column names. */
export const COLUMNS = {
  id: 'id',
  typeName: 'type_name',
  name: 'name',
  owner: 'owner',
  status: 'status',
  visibility: 'visibility',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  activatedAt: 'activated_at',
} as const;

const NULLABLE_COLUMNS = new Set<string>(['activatedAt']);

/** Field names are spliced into SQL (so expression indexes can match), hence the strict shape. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export function checkFieldName(name: string, code: 'FILTER_INVALID' | 'SORT_INVALID'): string {
  if (!FIELD_NAME.test(name)) fail(code, `${JSON.stringify(name.slice(0, 64))} is not a valid field name`);
  return name;
}

/** Translates a LIKE pattern (`%`, `_`, `\` escapes) into a GLOB pattern, which SQLite matches case-sensitively. */
export function likeToGlob(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) out += globLiteral(pattern[++i]);
    else if (c === '%') out += '*';
    else if (c === '_') out += '?';
    else out += globLiteral(c);
  }
  return out;
}

function globLiteral(c: string): string {
  return c === '*' || c === '?' || c === '[' ? `[${c}]` : c;
}

export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  placeholder: () => '?',
  bool: (value) => (value ? 1 : 0),
  // json_extract already returns INTEGER/REAL for numbers and 1/0 for booleans.
  jsonField: (column, field) => `json_extract(${column}, '$.${field}')`,
  jsonListContains: (column, field, _valueType, placeholder) =>
    `(json_type(${column}, '$.${field}') IS 'array' AND EXISTS (SELECT 1 FROM json_each(${column}, '$.${field}') AS je WHERE je.value = ${placeholder}))`,
  // SQLite's LIKE ignores ASCII case; GLOB does not.
  like: (expression, pattern, bind) => `${expression} GLOB ${bind(likeToGlob(pattern))}`,
};

const JSONB_TYPES: Record<FieldValueType, { jsonType: string; sqlType: string }> = {
  string: { jsonType: 'string', sqlType: 'text' },
  number: { jsonType: 'number', sqlType: 'numeric' },
  boolean: { jsonType: 'boolean', sqlType: 'boolean' },
};

/**
 * PostgreSQL: `$n` placeholders, native booleans, JSONB. A field reads as its declared type
 * only when the JSON value has that type (NULL otherwise), so a cast never raises on a
 * stray value; strings compare in byte order (COLLATE "C"), as in SQLite.
 */
export const postgresDialect: SqlDialect = {
  name: 'postgres',
  placeholder: (index) => `$${index}`,
  bool: (value) => value,
  jsonField: (column, field, valueType) => {
    const { jsonType, sqlType } = JSONB_TYPES[valueType];
    const read = `(${column}->>'${field}')${valueType === 'string' ? ' COLLATE "C"' : `::${sqlType}`}`;
    return `(CASE WHEN jsonb_typeof(${column}->'${field}') = '${jsonType}' THEN ${read} END)`;
  },
  // Containment compares JSON values by type (the string "10" is not the number 10) and can
  // use a GIN index on the column; COALESCE keeps it two-valued when the field is missing.
  jsonListContains: (column, field, valueType, placeholder) =>
    `COALESCE(jsonb_typeof(${column}->'${field}') = 'array' AND ${column}->'${field}' @> jsonb_build_array(${placeholder}::${JSONB_TYPES[valueType].sqlType}), false)`,
  // PostgreSQL's LIKE is case-sensitive already; a trailing lone `\` is a literal, as in likeToGlob.
  like: (expression, pattern, bind) => `${expression} LIKE ${bind(escapeTrailingBackslash(pattern))} ESCAPE '\\'`,
};

/** PostgreSQL rejects a pattern ending in its escape character; likeToGlob reads it as a literal `\`. */
function escapeTrailingBackslash(pattern: string): string {
  const trailing = /\\+$/.exec(pattern)?.[0].length ?? 0;
  return trailing % 2 === 1 ? `${pattern}\\` : pattern;
}

/**
 * Collects parameters while SQL text is produced. Fragments must be generated in the order
 * they appear in the final statement, because `?` placeholders are positional.
 */
export class SqlBuilder {
  readonly params: unknown[] = [];
  private aliases = 0;

  constructor(readonly dialect: SqlDialect) {}

  bind(value: unknown): string {
    this.params.push(typeof value === 'boolean' ? this.dialect.bool(value) : value);
    return this.dialect.placeholder(this.params.length);
  }

  list(values: readonly unknown[]): string {
    return values.map((v) => this.bind(v)).join(', ');
  }

  /** A fresh table alias for correlated subqueries over artifacts. */
  alias(): string {
    return `a${++this.aliases}`;
  }
}

const TRUE = '1=1';
const FALSE = '1=0';

/** Compiles a condition against the artifacts row aliased `a`. */
export function compileCondition(b: SqlBuilder, cond: Condition, a: string): string {
  switch (cond.op) {
    case 'true':
      return TRUE;
    case 'and':
      return cond.conditions.length === 0 ? TRUE : `(${cond.conditions.map((c) => compileCondition(b, c, a)).join(' AND ')})`;
    case 'or':
      return cond.conditions.length === 0 ? FALSE : `(${cond.conditions.map((c) => compileCondition(b, c, a)).join(' OR ')})`;
    case 'not':
      return `NOT ${compileCondition(b, cond.condition, a)}`;
    case 'hasProperty':
      return `${a}.id IN (SELECT artifact_id FROM artifact_properties WHERE name = ${b.bind(cond.name)})`;
    case 'tagsAll':
      if (cond.tags.length === 0) return TRUE;
      return `(${unique(cond.tags).map((t) => `${a}.id IN (SELECT artifact_id FROM artifact_tags WHERE tag = ${b.bind(t)})`).join(' AND ')})`;
    case 'tagsAny':
      if (cond.tags.length === 0) return FALSE;
      return `${a}.id IN (SELECT artifact_id FROM artifact_tags WHERE tag IN (${b.list(unique(cond.tags))}))`;
    case 'memberOf':
      if (cond.statuses.length === 0) return FALSE;
      return `${a}.id IN (SELECT artifact_id FROM artifact_members WHERE member = ${b.bind(cond.project)} AND status IN (${b.list(unique(cond.statuses))}))`;
    case 'latest':
      return compileLatest(b, cond.within, a);
    case 'isNull':
      return compileIsNull(b, cond.target, a);
    case 'in':
      return compileIn(b, cond.target, cond.values, a);
    case 'like':
      return compileLike(b, cond.target, cond.pattern, a);
    case 'contains':
      return compileContains(b, cond.target, cond.value, a);
    default:
      return compileComparison(b, cond.op, cond.target, cond.value, a);
  }
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/**
 * A row is the latest of its (type, owner, name) when it matches `within` and no other row
 * matching `within` has a higher precedence; equal precedence (build metadata only) ties.
 */
function compileLatest(b: SqlBuilder, within: Condition, a: string): string {
  const self = compileCondition(b, within, a);
  const o = b.alias();
  const other = compileCondition(b, within, o);
  return `(${self} AND NOT EXISTS (SELECT 1 FROM artifacts ${o} WHERE ${o}.type_name = ${a}.type_name AND ${o}.owner = ${a}.owner AND ${o}.name = ${a}.name`
    + ` AND ${o}.version_prefix >= ${a}.version_prefix AND (${o}.version_prefix > ${a}.version_prefix OR ${o}.version_suffix > ${a}.version_suffix)`
    + ` AND ${other}))`;
}

const OPERATORS: Record<Comparison, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' };

/** A scalar expression of the row for a column or typed field, and whether it can be NULL. */
interface Scalarish {
  sql: string;
  nullable: boolean;
}

function scalarOf(b: SqlBuilder, target: Extract<Target, { kind: 'column' | 'field' }>, a: string, code: 'FILTER_INVALID' | 'SORT_INVALID'): Scalarish {
  if (target.kind === 'column') {
    const column = Object.prototype.hasOwnProperty.call(COLUMNS, target.name) ? COLUMNS[target.name] : fail(code, `unknown column ${JSON.stringify(target.name)}`);
    return { sql: `${a}.${column}`, nullable: NULLABLE_COLUMNS.has(target.name) };
  }
  return { sql: b.dialect.jsonField(`${a}.fields`, checkFieldName(target.name, code), target.valueType), nullable: true };
}

/** Wraps a predicate on a nullable expression so that a NULL value yields false, not NULL. */
function guarded(e: Scalarish, predicate: string): string {
  return e.nullable ? `(${e.sql} IS NOT NULL AND ${predicate})` : predicate;
}

function propertyRows(b: SqlBuilder, name: string, a: string, valuePredicate?: (value: string) => string): string {
  const byName = `name = ${b.bind(name)}`; // bound first: it comes first in the text
  const byValue = valuePredicate ? ` AND ${valuePredicate('value')}` : '';
  return `${a}.id IN (SELECT artifact_id FROM artifact_properties WHERE ${byName}${byValue})`;
}

function compileComparison(b: SqlBuilder, op: Comparison, target: Target, value: Scalar, a: string): string {
  switch (target.kind) {
    case 'property':
      // neq is the complement of eq: artifacts without the property match it too.
      if (op === 'neq') return `NOT ${propertyRows(b, target.name, a, (v) => `${v} = ${b.bind(value)}`)}`;
      return propertyRows(b, target.name, a, (v) => `${v} ${OPERATORS[op]} ${b.bind(value)}`);
    case 'version':
      return compileVersionComparison(b, op, String(value), a);
    default: {
      const e = scalarOf(b, target, a, 'FILTER_INVALID');
      if (op === 'neq') return e.nullable ? `(${e.sql} IS NULL OR ${e.sql} <> ${b.bind(value)})` : `${e.sql} <> ${b.bind(value)}`;
      return guarded(e, `${e.sql} ${OPERATORS[op]} ${b.bind(value)}`);
    }
  }
}

/** eq/neq compare canonical strings (build metadata included); order comparisons use precedence. */
function compileVersionComparison(b: SqlBuilder, op: Comparison, value: string, a: string): string {
  const v = encodeVersion(value);
  if (op === 'eq' || op === 'neq') return `${a}.version ${OPERATORS[op]} ${b.bind(v.canonical)}`;
  const p = `${a}.version_prefix`;
  const s = `${a}.version_suffix`;
  // The redundant bound on the prefix lets an index range scan do most of the work.
  if (op === 'gt' || op === 'gte') {
    return `(${p} >= ${b.bind(v.prefix)} AND (${p} > ${b.bind(v.prefix)} OR ${s} ${OPERATORS[op]} ${b.bind(v.suffix)}))`;
  }
  return `(${p} <= ${b.bind(v.prefix)} AND (${p} < ${b.bind(v.prefix)} OR ${s} ${OPERATORS[op]} ${b.bind(v.suffix)}))`;
}

function compileIn(b: SqlBuilder, target: Target, values: readonly Scalar[], a: string): string {
  if (values.length === 0) return FALSE;
  switch (target.kind) {
    case 'property':
      return propertyRows(b, target.name, a, (v) => `${v} IN (${b.list(unique(values))})`);
    case 'version':
      return `${a}.version IN (${b.list(unique(values.map((v) => encodeVersion(String(v)).canonical)))})`;
    default: {
      const e = scalarOf(b, target, a, 'FILTER_INVALID');
      return guarded(e, `${e.sql} IN (${b.list(unique(values))})`);
    }
  }
}

function compileLike(b: SqlBuilder, target: Target, pattern: string, a: string): string {
  switch (target.kind) {
    case 'property':
      return propertyRows(b, target.name, a, (v) => b.dialect.like(v, pattern, (x) => b.bind(x)));
    case 'version':
      return b.dialect.like(`${a}.version`, pattern, (x) => b.bind(x));
    default: {
      const e = scalarOf(b, target, a, 'FILTER_INVALID');
      return guarded(e, b.dialect.like(e.sql, pattern, (x) => b.bind(x)));
    }
  }
}

function compileIsNull(b: SqlBuilder, target: Target, a: string): string {
  switch (target.kind) {
    case 'property':
      return `NOT ${propertyRows(b, target.name, a)}`;
    case 'version':
      return FALSE;
    default:
      return `${scalarOf(b, target, a, 'FILTER_INVALID').sql} IS NULL`;
  }
}

function compileContains(b: SqlBuilder, target: Target, value: Scalar, a: string): string {
  switch (target.kind) {
    case 'property':
      return propertyRows(b, target.name, a);
    case 'field': {
      const name = checkFieldName(target.name, 'FILTER_INVALID');
      return b.dialect.jsonListContains(`${a}.fields`, name, target.valueType, b.bind(value));
    }
    default:
      return fail('FILTER_INVALID', 'contains applies to list fields and properties only');
  }
}

/** One ORDER BY term after expanding sort keys (a version key becomes three columns). */
interface OrderTerm {
  sql: string;
  direction: 'asc' | 'desc';
  nullable: boolean;
}

function orderTerms(b: SqlBuilder, sort: readonly SortKey[], a: string): OrderTerm[] {
  const terms: OrderTerm[] = [];
  for (const key of sort) {
    for (const sql of sortExpressions(b, key.target, a)) terms.push({ ...sql, direction: key.direction });
  }
  terms.push({ sql: `${a}.id`, nullable: false, direction: sort.length ? sort[sort.length - 1].direction : 'asc' });
  return terms;
}

function sortExpressions(b: SqlBuilder, target: SortTarget, a: string): Scalarish[] {
  if (target.kind === 'version') {
    return ['version_prefix', 'version_suffix', 'version_meta'].map((c) => ({ sql: `${a}.${c}`, nullable: false }));
  }
  if ((target as Target).kind === 'property') fail('SORT_INVALID', 'properties are not sortable');
  return [scalarOf(b, target, a, 'SORT_INVALID')];
}

/** The values of the expanded terms at a keyset position (a version becomes prefix, suffix, meta). */
function keysetValues(sort: readonly SortKey[], after: Keyset): unknown[] {
  if (after.values.length !== sort.length) fail('CURSOR_INVALID', `the cursor has ${after.values.length} sort values, the sort ${sort.length}`);
  const values: unknown[] = [];
  sort.forEach((key, i) => {
    const v = after.values[i];
    if (key.target.kind !== 'version') values.push(v);
    else if (v === null) values.push(null, null, null);
    else {
      const e = encodeVersion(String(v));
      values.push(e.prefix, e.suffix, e.meta);
    }
  });
  values.push(after.id);
  return values;
}

/**
 * ORDER BY with explicit NULL placement where a term can be NULL. Non-null terms omit it:
 * it changes nothing there and would stop PostgreSQL from using a plain index for order.
 */
export function compileOrderBy(b: SqlBuilder, sort: readonly SortKey[], a: string): string {
  return orderTerms(b, sort, a)
    .map((t) => `${t.sql} ${t.direction.toUpperCase()}${t.nullable ? (t.direction === 'asc' ? ' NULLS FIRST' : ' NULLS LAST') : ''}`)
    .join(', ');
}

/**
 * Rows strictly after `after` in the sort order: the usual expansion
 * `t1 > v1 OR (t1 = v1 AND (t2 > v2 OR ...))`, with "greater" and "equal" spelled out for
 * NULLs (which sort lowest) and a leading range bound on the first term for index use.
 */
export function compileKeyset(b: SqlBuilder, sort: readonly SortKey[], after: Keyset, a: string): string {
  const terms = orderTerms(b, sort, a);
  const values = keysetValues(sort, after);
  const build = (i: number): string => {
    const beyond = strictlyAfter(b, terms[i], values[i]);
    if (i === terms.length - 1) return beyond;
    const rest = `${equalTo(b, terms[i], values[i])} AND ${build(i + 1)}`;
    return beyond === FALSE ? `(${rest})` : `(${beyond} OR (${rest}))`;
  };
  const first = terms[0];
  const bound = values[0] !== null && !first.nullable ? `${first.sql} ${first.direction === 'asc' ? '>=' : '<='} ${b.bind(values[0])} AND ` : '';
  return `(${bound}${build(0)})`;
}

function strictlyAfter(b: SqlBuilder, t: OrderTerm, v: unknown): string {
  if (t.direction === 'asc') return v === null ? `${t.sql} IS NOT NULL` : `${t.sql} > ${b.bind(v)}`;
  if (v === null) return FALSE;
  return t.nullable ? `(${t.sql} < ${b.bind(v)} OR ${t.sql} IS NULL)` : `${t.sql} < ${b.bind(v)}`;
}

function equalTo(b: SqlBuilder, t: OrderTerm, v: unknown): string {
  return v === null ? `${t.sql} IS NULL` : `${t.sql} = ${b.bind(v)}`;
}

/** The listing statement for `query`, selecting `columns` of the artifacts row aliased `a`. */
export function compileList(dialect: SqlDialect, query: ListQuery, columns: string): { sql: string; params: unknown[] } {
  const b = new SqlBuilder(dialect);
  let where = compileCondition(b, query.where, 'a');
  if (query.after) where = `${where} AND ${compileKeyset(b, query.sort, query.after, 'a')}`;
  const orderBy = compileOrderBy(b, query.sort, 'a');
  const limit = b.bind(Math.max(0, Math.floor(query.limit)));
  return { sql: `SELECT ${columns} FROM artifacts a WHERE ${where} ORDER BY ${orderBy} LIMIT ${limit}`, params: b.params };
}

export function compileCount(dialect: SqlDialect, where: Condition): { sql: string; params: unknown[] } {
  const b = new SqlBuilder(dialect);
  return { sql: `SELECT COUNT(*) AS n FROM artifacts a WHERE ${compileCondition(b, where, 'a')}`, params: b.params };
}

/** The keyset position of `record` under `sort`, i.e. what a cursor after it carries. */
export function keysetOf(record: ArtifactRecord, sort: readonly SortKey[]): Keyset {
  const values = sort.map(({ target }): Scalar | null => {
    switch (target.kind) {
      case 'version':
        return record.version;
      case 'column':
        return record[target.name];
      default: {
        const v = Object.prototype.hasOwnProperty.call(record.fields, target.name) ? record.fields[target.name] : null;
        return v === null || typeof v === 'object' ? null : v;
      }
    }
  });
  return { values, id: record.id };
}

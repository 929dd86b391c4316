import type { ArtifactRecord, Scalar } from './artifact';
import type { Keyset, SortKey, SortTarget } from './query';
import { encodeVersion } from './semver';

/**
 * The order of a listing, computed in memory exactly as the metadata stores order rows
 * (src/storage/metadata/sql.ts): sort keys in turn, NULL below every value, text in byte
 * order (UTF-8, as SQLite's BINARY and PostgreSQL's "C" collation), versions by semver
 * precedence then build metadata, and the id last, in the direction of the last key.
 * A federation merges the pages of several backends with it.
 */

/** The value a sort key reads from a record (versions as their canonical string). */
export function sortValue(record: ArtifactRecord, target: SortTarget): Scalar | null {
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
}

/** The keyset position of `record` under `sort`: what a cursor after it carries. */
export function keysetOf(sort: readonly SortKey[], record: ArtifactRecord): Keyset {
  return { values: sort.map(({ target }) => sortValue(record, target)), id: record.id };
}

/** Negative when `a` comes first under `sort`, positive when `b` does, 0 for the same position. */
export function compareKeysets(sort: readonly SortKey[], a: Keyset, b: Keyset): number {
  for (let i = 0; i < sort.length; i++) {
    const { target, direction } = sort[i];
    const c = target.kind === 'version' ? compareVersionValues(a.values[i], b.values[i]) : compareValues(a.values[i], b.values[i]);
    if (c !== 0) return direction === 'asc' ? c : -c;
  }
  const c = compareText(a.id, b.id);
  return sort.length > 0 && sort[sort.length - 1].direction === 'desc' ? -c : c;
}

/** Ascending order of two sort values: NULL lowest, numbers and booleans (false < true) by value, text by code point. */
export function compareValues(a: Scalar | null, b: Scalar | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b);
  if (typeof a === typeof b) return a < b ? -1 : 1;
  // A field holds one declared type; mixed values only come from a misbehaving backend.
  return typeof a < typeof b ? -1 : 1;
}

function compareVersionValues(a: Scalar | null, b: Scalar | null): number {
  if (a === null || b === null) return compareValues(a, b);
  const x = encodeVersion(String(a));
  const y = encodeVersion(String(b));
  if (x.prefix !== y.prefix) return x.prefix < y.prefix ? -1 : 1;
  return compareText(x.suffix, y.suffix) || compareText(x.meta, y.meta);
}

/**
 * Code point order, which is UTF-8 byte order. JavaScript's `<` compares UTF-16 units,
 * which puts characters above U+FFFF (surrogate pairs, D800–DFFF) before U+E000–U+FFFF.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

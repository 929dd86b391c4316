import { createHash } from 'node:crypto';
import type { Scalar } from './artifact';
import { fail } from './errors';
import type { Keyset, SortKey } from './query';

/**
 * Opaque cursors: the keyset position of a row plus a fingerprint of the sort it was
 * taken under, so a cursor replayed with another sort is refused instead of skipping rows.
 */
export interface PageRequest {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface PageLimits {
  defaultPageSize: number;
  maxPageSize: number;
}

export interface PagePlan {
  /** Read in reverse sort order (for last/before), then flip. */
  backward: boolean;
  size: number;
  position?: Keyset;
}

function fingerprint(sort: readonly SortKey[]): string {
  return createHash('sha1').update(JSON.stringify(sort)).digest('base64url').slice(0, 10);
}

/** Encodes the cursors of a page; the sort's fingerprint is computed once per page, not per row. */
export function cursorEncoder(sort: readonly SortKey[]): (position: Keyset) => string {
  const s = fingerprint(sort);
  return (position) => Buffer.from(JSON.stringify({ s, v: position.values, i: position.id })).toString('base64url');
}

export function encodeCursor(sort: readonly SortKey[], position: Keyset): string {
  return cursorEncoder(sort)(position);
}

export function decodeCursor(sort: readonly SortKey[], cursor: string): Keyset {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return fail('CURSOR_INVALID', 'the cursor is not one this server issued');
  }
  const c = parsed as { s?: unknown; v?: unknown; i?: unknown };
  if (typeof c !== 'object' || c === null || typeof c.i !== 'string' || !Array.isArray(c.v) || c.v.length !== sort.length) {
    fail('CURSOR_INVALID', 'the cursor is not one this server issued');
  }
  if (c.s !== fingerprint(sort)) fail('CURSOR_INVALID', 'the cursor was issued for another sort order');
  if (!c.v.every((x) => x === null || ['string', 'number', 'boolean'].includes(typeof x))) fail('CURSOR_INVALID', 'the cursor is not one this server issued');
  return { values: c.v as (Scalar | null)[], id: c.i };
}

/** A page request checked against the limits: its direction, size and the cursor it starts from. */
export interface PageShape {
  backward: boolean;
  size: number;
  cursor?: string;
}

export function pageShape(req: PageRequest, limits: PageLimits): PageShape {
  const { first, last, after, before } = req;
  if (first != null && last != null) fail('PAGE_SIZE_INVALID', 'pass first or last, not both');
  if (after != null && before != null) fail('CURSOR_INVALID', 'pass after or before, not both');
  for (const [name, n] of [['first', first], ['last', last]] as const) {
    if (n != null && (!Number.isInteger(n) || n < 0 || n > limits.maxPageSize)) {
      fail('PAGE_SIZE_INVALID', `${name} must be between 0 and ${limits.maxPageSize}, got ${n}`);
    }
  }
  const backward = last != null || (before != null && first == null);
  const size = (backward ? last : first) ?? limits.defaultPageSize;
  const cursor = backward ? before : after;
  return cursor != null ? { backward, size, cursor } : { backward, size };
}

export function planPage(sort: readonly SortKey[], req: PageRequest, limits: PageLimits): PagePlan {
  const { backward, size, cursor } = pageShape(req, limits);
  return { backward, size, position: cursor !== undefined ? decodeCursor(sort, cursor) : undefined };
}

export function reverseSort(sort: readonly SortKey[]): SortKey[] {
  return sort.map((k) => ({ ...k, direction: k.direction === 'asc' ? 'desc' : 'asc' }));
}

import { createHash } from 'node:crypto';
import { fail } from '../../domain/errors';
import type { SortKey } from '../../domain/query';

/**
 * Federated cursors. The cursor of an item in a merged listing holds, for each backend of the
 * listing, the boundary just after that item: between the backend's items at or before it
 * and those after it, written with the backend's own cursors (opaque here), plus which
 * backend the item came from. Paging forward (`after`) continues each backend after `last`;
 * paging backward (`before`) continues each backend before `next`, except the item's own
 * backend, which continues before the item itself (its `last`).
 *
 * Format: base64url(JSON [version, query fingerprint, boundaries, item's backend]) "." digest. The digest
 * (not a secret MAC: any instance must accept any other's cursors) catches corrupted or
 * edited cursors; the fingerprint catches cursors of another query (sort, backends, type).
 * A forged but well-formed cursor can only move the position: every backend re-checks its
 * own cursors and applies visibility on every read.
 */
export type LastMark =
  /** Nothing of this backend lies before the position. */
  | null
  /** After this backend cursor. */
  | { c: string }
  /** After this artifact (an `afterId` marker), which this backend resolves itself. */
  | { id: string }
  /** Everything of this backend lies before the position (a backend that failed on a last-page request). */
  | 'end';

export interface Boundary {
  last: LastMark;
  /** The backend cursor of its first item after the position; null when none was seen. */
  next: string | null;
}

const VERSION = 1;
const MAX_CURSOR_LENGTH = 64 * 1024;

/** Identifies a listing's query shape: the resolved sort, the backends merged (in order) and the type. */
export function queryFingerprint(sort: readonly SortKey[], backends: readonly string[], typeName: string | undefined): string {
  return digest(JSON.stringify({ sort, backends, typeName: typeName ?? null })).slice(0, 12);
}

/** The position just after one item of a merged listing. */
export interface ItemPosition {
  boundaries: Boundary[];
  /** Index of the backend the item came from; its boundary's `last` is the item itself. */
  owner: number;
}

export function encodeFederatedCursor(query: string, position: ItemPosition): string {
  const text = JSON.stringify([VERSION, query, position.boundaries.map((b) => [b.last, b.next]), position.owner]);
  return `${Buffer.from(text, 'utf8').toString('base64url')}.${digest(text).slice(0, 16)}`;
}

export function decodeFederatedCursor(query: string, cursor: string, backends: number): ItemPosition {
  const dot = cursor.lastIndexOf('.');
  const text = dot > 0 && cursor.length <= MAX_CURSOR_LENGTH ? Buffer.from(cursor.slice(0, dot), 'base64url').toString('utf8') : '';
  if (!text || digest(text).slice(0, 16) !== cursor.slice(dot + 1)) invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== VERSION) invalid();
  const [, fingerprint, entries, owner] = parsed as [number, unknown, unknown, unknown];
  if (fingerprint !== query) fail('CURSOR_INVALID', 'the cursor was issued for another query (sort, type or backends)');
  if (!Array.isArray(entries) || entries.length !== backends) invalid();
  const boundaries = entries.map((entry): Boundary => {
    if (!Array.isArray(entry) || entry.length !== 2) return invalid();
    const [last, next] = entry as [unknown, unknown];
    if (next !== null && typeof next !== 'string') invalid();
    return { last: lastMark(last), next: next as string | null };
  });
  if (!Number.isInteger(owner) || (owner as number) < 0 || (owner as number) >= backends) invalid();
  const own = boundaries[owner as number].last;
  if (own === null || own === 'end' || !('c' in own)) invalid();
  return { boundaries, owner: owner as number };
}

function lastMark(value: unknown): LastMark {
  if (value === null || value === 'end') return value;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const v = value as { c?: unknown; id?: unknown };
    if (keys.length === 1 && typeof v.c === 'string') return { c: v.c };
    if (keys.length === 1 && typeof v.id === 'string') return { id: v.id };
  }
  return invalid();
}

function invalid(): never {
  return fail('CURSOR_INVALID', 'the cursor is not one this server issued');
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

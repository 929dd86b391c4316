import { randomUUID } from 'node:crypto';
import { fail } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function newId(): string {
  return randomUUID();
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Canonical (lower-case) form of a client-supplied id, or INVALID_ID. */
export function parseId(value: string, what = 'id'): string {
  if (!isUuid(value)) fail('INVALID_ID', `${what} must be a UUID, got ${JSON.stringify(truncate(value))}`);
  return value.toLowerCase();
}

export function truncate(value: string, max = 64): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

import type { IncomingHttpHeaders } from 'node:http';

/**
 * Conditional requests (RFC 9110 §13.2.2), evaluated in the RFC's order: If-Match, else
 * If-Unmodified-Since (412 when false); then If-None-Match, else If-Modified-Since (304
 * for GET and HEAD). Dates compare at one-second precision, as HTTP dates carry.
 */
export interface Validators {
  /** Strong entity tag, quoted. */
  etag: string;
  lastModified: Date;
}

export type Precondition = 'proceed' | 'not-modified' | 'failed';

export function evaluatePreconditions(headers: IncomingHttpHeaders, v: Validators): Precondition {
  const ifMatch = header(headers, 'if-match');
  const ifUnmodifiedSince = header(headers, 'if-unmodified-since');
  if (ifMatch !== undefined) {
    if (!matches(ifMatch, v.etag, true)) return 'failed';
  } else if (ifUnmodifiedSince !== undefined) {
    const date = parseHttpDate(ifUnmodifiedSince);
    if (date !== null && seconds(v.lastModified) > date) return 'failed';
  }
  const ifNoneMatch = header(headers, 'if-none-match');
  const ifModifiedSince = header(headers, 'if-modified-since');
  if (ifNoneMatch !== undefined) {
    if (matches(ifNoneMatch, v.etag, false)) return 'not-modified';
  } else if (ifModifiedSince !== undefined) {
    const date = parseHttpDate(ifModifiedSince);
    if (date !== null && seconds(v.lastModified) <= date) return 'not-modified';
  }
  return 'proceed';
}

/** Whether a Range may apply: no If-Range, or one naming the current representation. */
export function rangeApplies(headers: IncomingHttpHeaders, v: Validators): boolean {
  const ifRange = header(headers, 'if-range');
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === v.etag;
  const date = parseHttpDate(value);
  return date !== null && date === seconds(v.lastModified);
}

function matches(list: string, etag: string, strong: boolean): boolean {
  const tags = list.split(',').map((t) => t.trim()).filter(Boolean);
  if (tags.includes('*')) return true;
  const bare = (t: string) => (t.startsWith('W/') ? t.slice(2) : t);
  return tags.some((t) => (strong ? !t.startsWith('W/') && t === etag : bare(t) === bare(etag)));
}

function parseHttpDate(text: string): number | null {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

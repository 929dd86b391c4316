import { VitrineError, type ErrorCode } from '../../domain/errors';

/**
 * What Glance's error answers and transport failures become in Vitrine's registry. Glance
 * renders errors with webob: HTML by default, `{"message", "code", "title"}` when JSON is
 * asked for, and the message itself carries `<br /><br />` and, for schema errors, a
 * jsonschema dump. Only the message text reaches the client: never headers, never the body
 * as is (it could echo what the request carried).
 */

/** Longest message taken from an upstream answer. */
const MAX_MESSAGE = 500;

/** The human sentence of a Glance error body (JSON, HTML or text), cleaned; '' when none. */
export function glanceMessage(body: string, contentType: string | undefined): string {
  let text = body;
  if (contentType?.includes('json')) {
    try {
      const parsed = JSON.parse(body) as unknown;
      const message = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).message : undefined;
      text = typeof message === 'string' ? message : '';
    } catch {
      text = '';
    }
  } else if (/<html/i.test(body)) {
    // webob: <head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>MESSAGE<br /><br />
    text = body.replace(/<head>[\s\S]*?<\/head>/i, '').replace(/<h1>[\s\S]*?<\/h1>/i, '');
  } else {
    // text/plain: "404 Not Found\n\nMESSAGE"
    text = body.replace(/^\d{3} [^\n]*\n/, '');
  }
  // jsonschema appends the failing schema and instance after a blank line.
  text = text.replace(/\n\s*Failed validating[\s\S]*$/, '');
  text = text.replace(/<br\s*\/?>/gi, '\n').replace(/<[^>]*>/g, '');
  text = decodeEntities(text).split(/\s*\n\s*/).map((line) => line.trim()).filter(Boolean).join(' ');
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower];
  });
}

/** Glance's status → Vitrine's code, before any refinement by the operation. */
const BY_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'TRANSITION_FORBIDDEN',
  410: 'GONE',
  413: 'QUOTA_EXCEEDED',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  416: 'RANGE_NOT_SATISFIABLE',
};

/** Messages that name a clearer code than the status alone. */
const BY_MESSAGE: { status: number; pattern: RegExp; code: ErrorCode }[] = [
  { status: 403, pattern: /is protected and cannot be deleted/i, code: 'PROTECTED' },
  { status: 403, pattern: /is read-only/i, code: 'FIELD_READ_ONLY' },
  { status: 403, pattern: /is reserved/i, code: 'PROPERTY_RESERVED' },
  { status: 403, pattern: /can be only replaced for a queued image/i, code: 'FIELD_IMMUTABLE' },
  { status: 403, pattern: /Not allowed to (de|re)activate image in status/i, code: 'TRANSITION_FORBIDDEN' },
  { status: 403, pattern: /Only shared images have members/i, code: 'NOT_SHARED' },
  { status: 404, pattern: /not found in the member list/i, code: 'MEMBER_NOT_FOUND' },
  { status: 400, pattern: /must be set prior to saving data/i, code: 'ACTIVATION_INCOMPLETE' },
  { status: 409, pattern: /transition from saving to saving/i, code: 'BLOB_BUSY' },
  { status: 409, pattern: /Image ID .* already exists/i, code: 'DUPLICATE_ID' },
  { status: 409, pattern: /Member .* is duplicated/i, code: 'MEMBER_EXISTS' },
  { status: 409, pattern: /Property .* does not exist/i, code: 'BAD_INPUT' },
  { status: 413, pattern: /size cap|too large|exceeds the (maximum|image size)/i, code: 'BLOB_TOO_LARGE' },
  // Image import (POST /v2/images/{id}/import, PUT /v2/images/{id}/stage).
  { status: 409, pattern: /Image has active task|prior operation is still in progress/i, code: 'IMPORT_BUSY' },
  { status: 409, pattern: /Store for identifier .* not found|Unknown scheme/i, code: 'STORE_UNKNOWN' },
  { status: 400, pattern: /does not pass filtering/i, code: 'URL_FORBIDDEN' },
  { status: 404, pattern: /method is not available at this site/i, code: 'BAD_INPUT' },
];

/** Per-operation overrides, e.g. `{ 409: 'BLOB_BUSY' }` for an upload to a saving image. */
export type StatusCodes = Partial<Record<number, ErrorCode>>;

/** The VitrineError for a Glance error answer; 5xx and unknown statuses are upstream failures. */
export function glanceAnswerError(backend: string, status: number, message: string, overrides: StatusCodes = {}): VitrineError {
  const details = { backend, status };
  if (status >= 500) {
    return new VitrineError('UPSTREAM_UNAVAILABLE', `backend ${backend}: Glance failed with HTTP ${status}${message ? `: ${message}` : ''}`, details);
  }
  const code = overrides[status] ?? BY_MESSAGE.find((m) => m.status === status && m.pattern.test(message))?.code ?? BY_STATUS[status];
  if (!code) return new VitrineError('UPSTREAM_REJECTED', `backend ${backend}: Glance answered with an unexpected HTTP ${status}${message ? `: ${message}` : ''}`, details);
  return new VitrineError(code, message || `Glance refused the request (HTTP ${status})`, details);
}

/** How a failed exchange with Glance is reported, and whether it may be retried and counts against the breaker. */
export interface TransportFailure {
  error: VitrineError;
  /** Nothing reached Glance or Glance dropped the connection: safe to retry an idempotent read. */
  retryable: boolean;
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNABORTED',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED',
]);

const TIMEOUTS: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'did not accept the connection in time',
  UND_ERR_HEADERS_TIMEOUT: 'did not answer in time',
  UND_ERR_BODY_TIMEOUT: 'stopped sending its answer',
  ETIMEDOUT: 'did not accept the connection in time',
};

/** Undici's and the socket's errors as registry codes; null for errors that are not transport failures. */
export function transportFailure(backend: string, err: unknown): TransportFailure | null {
  const code = errorCode(err);
  if (code === undefined) return null;
  if (code in TIMEOUTS) {
    return { error: new VitrineError('UPSTREAM_TIMEOUT', `backend ${backend}: Glance ${TIMEOUTS[code]}`, { backend, reason: code }), retryable: code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' };
  }
  if (UNAVAILABLE_CODES.has(code)) {
    const what = code === 'ECONNREFUSED' ? 'refused the connection' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'does not resolve' : 'dropped the connection';
    return { error: new VitrineError('UPSTREAM_UNAVAILABLE', `backend ${backend}: Glance ${what}`, { backend, reason: code }), retryable: true };
  }
  return null;
}

function errorCode(err: unknown): string | undefined {
  // Connection errors may arrive wrapped (AggregateError for several addresses, or `cause`).
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code in TIMEOUTS || UNAVAILABLE_CODES.has(code))) return code;
    const inner = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(inner) && inner.length > 0) e = inner[0];
    else e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function upstreamTimeout(backend: string, what: string): VitrineError {
  return new VitrineError('UPSTREAM_TIMEOUT', `backend ${backend}: Glance ${what}`, { backend });
}

export function upstreamRejected(backend: string, what: string): VitrineError {
  return new VitrineError('UPSTREAM_REJECTED', `backend ${backend}: ${what}`, { backend });
}

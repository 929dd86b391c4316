/**
 * The one registry of error codes. Every error Vitrine reports to a client carries one of
 * these codes; each edge maps it (GraphQL `extensions.code`, HTTP status, Glance bodies).
 * Codes are part of the public contract: never rename one, only add.
 */
export const ERRORS = {
  // authentication and authorisation
  UNAUTHENTICATED: { status: 401, summary: 'No valid token was presented.' },
  FORBIDDEN: { status: 403, summary: 'The caller may not do this.' },

  // lookups
  INVALID_ID: { status: 400, summary: 'An id is not a well-formed UUID.' },
  NOT_FOUND: { status: 404, summary: 'The artifact does not exist or is not visible to the caller.' },
  TYPE_UNKNOWN: { status: 400, summary: 'No artifact type has this name.' },
  BACKEND_UNKNOWN: { status: 400, summary: 'No backend has this name.' },

  // input validation
  BAD_INPUT: { status: 400, summary: 'The input is malformed.' },
  FIELD_UNKNOWN: { status: 400, summary: 'The artifact type has no field of this name.' },
  FIELD_INVALID: { status: 400, summary: 'A value does not fit its field (type, range, length, allowed values).' },
  FIELD_READ_ONLY: { status: 403, summary: 'A system field cannot be set by clients.' },
  FIELD_IMMUTABLE: { status: 403, summary: 'The field cannot change in the artifact\'s current status.' },
  PROPERTY_RESERVED: { status: 403, summary: 'Property names starting with os_glance are reserved.' },
  VERSION_INVALID: { status: 400, summary: 'A version is not a valid semantic version.' },
  FILTER_INVALID: { status: 400, summary: 'A filter names an unknown field or an operator the field does not allow.' },
  SORT_INVALID: { status: 400, summary: 'A sort key is unknown or not sortable.' },
  CURSOR_INVALID: { status: 400, summary: 'A pagination cursor is malformed or belongs to another query.' },
  PAGE_SIZE_INVALID: { status: 400, summary: 'A page size is negative or above the maximum.' },

  // state
  REVISION_CONFLICT: { status: 409, summary: 'The artifact changed since the given revision.' },
  DUPLICATE_VERSION: { status: 409, summary: 'An artifact with this type, owner, name and version exists.' },
  DUPLICATE_ID: { status: 409, summary: 'An artifact with this id exists.' },
  TRANSITION_FORBIDDEN: { status: 409, summary: 'The lifecycle does not allow this status change.' },
  ACTIVATION_INCOMPLETE: { status: 400, summary: 'Fields required on activation are missing.' },
  PROTECTED: { status: 403, summary: 'The artifact is protected and cannot be deleted.' },
  MEMBER_EXISTS: { status: 409, summary: 'The project is already a member.' },
  MEMBER_NOT_FOUND: { status: 404, summary: 'The project is not a member.' },
  NOT_SHARED: { status: 403, summary: 'Only artifacts with shared visibility have members.' },
  LINK_INVALID: { status: 400, summary: 'A link target does not exist, is not visible, or is the artifact itself.' },
  QUOTA_EXCEEDED: { status: 413, summary: 'A project quota would be exceeded.' },

  // metadata definitions (metadefs)
  METADEF_NOT_FOUND: { status: 404, summary: 'The metadef namespace, object, property, tag, resource type or association does not exist or is not visible to the caller.' },
  METADEF_EXISTS: { status: 409, summary: 'A metadef namespace, object, property, tag or association of this name already exists.' },
  METADEF_PROTECTED: { status: 403, summary: 'The metadef namespace is protected: neither it nor what it contains can be deleted.' },

  // data plane
  BLOB_BUSY: { status: 409, summary: 'Another upload of this blob is running.' },
  BLOB_NOT_READY: { status: 409, summary: 'The blob has no complete data yet (never uploaded, or an upload is running).' },
  BLOB_TOO_LARGE: { status: 413, summary: 'The upload is larger than the blob field allows.' },
  SIZE_MISMATCH: { status: 400, summary: 'The uploaded size differs from the size the client announced.' },
  CHECKSUM_MISMATCH: { status: 400, summary: 'The uploaded bytes do not match the checksum the client announced.' },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'The requested byte range lies outside the blob.' },
  PRECONDITION_FAILED: { status: 412, summary: 'A conditional request header (If-Match, If-Unmodified-Since) did not hold.' },
  SIGNATURE_INVALID: { status: 403, summary: 'A signed URL is malformed, tampered with, or for another blob.' },
  SIGNATURE_EXPIRED: { status: 403, summary: 'A signed URL has expired.' },
  URL_FORBIDDEN: { status: 400, summary: 'An external URL is malformed or points to a private, loopback or otherwise disallowed address.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The request\'s Content-Type is not accepted here.' },
  IMPORT_FETCH_FAILED: { status: 502, summary: 'Fetching import data (a web-download URL, or glance-download\'s remote Glance) failed: the server answered other than 2xx, could not be reached, stalled, broke the connection, or redirected too often.' },
  IMPORT_SOURCE_UNKNOWN: { status: 400, summary: 'glance-download: no image endpoint for the region and interface (in the caller\'s service catalog, or imports.glanceDownload.regions).' },
  STORE_UNKNOWN: { status: 400, summary: 'No blob store has this name (or multiple stores are not enabled).' },
  IMPORT_BUSY: { status: 409, summary: 'Another import of this image is running.' },
  CACHE_DISABLED: { status: 404, summary: 'The image cache is not enabled on this instance (imageCache.enabled).' },
  LOCATION_INVALID: { status: 400, summary: 'An image location is malformed, uses a scheme no store reads, does not answer, or is already on the image; or a replacement drops or changes a URL.' },
  LOCATION_CONFLICT: { status: 409, summary: 'A location\'s validation data differs from the image\'s checksum or hash, or the image\'s status does not allow this location change.' },
  GONE: { status: 410, summary: 'The artifact or upload disappeared while the request ran (deleted, or swept after a crash).' },

  // subscriptions
  CURSOR_EXPIRED: { status: 410, summary: 'The event cursor is older than the oldest event the log keeps; subscribe again without `after`.' },
  TOO_MANY_SUBSCRIPTIONS: { status: 429, summary: 'The connection already runs as many subscriptions as allowed.' },

  // GraphQL request limits
  BAD_REQUEST: { status: 400, summary: 'The HTTP request is malformed (bad JSON, missing query, CSRF check failed).' },
  BAD_USER_INPUT: { status: 400, summary: 'A variable or argument value does not fit its GraphQL type.' },
  OPERATION_RESOLUTION_FAILURE: { status: 400, summary: 'The operation to run cannot be determined (unknown or ambiguous operationName).' },
  PERSISTED_QUERY_NOT_FOUND: { status: 400, summary: 'The persisted query hash is unknown; send the full query.' },
  PERSISTED_QUERY_NOT_SUPPORTED: { status: 400, summary: 'Persisted queries are not supported here.' },
  GRAPHQL_PARSE_FAILED: { status: 400, summary: 'The document is not valid GraphQL syntax.' },
  GRAPHQL_VALIDATION_FAILED: { status: 400, summary: 'The document does not validate against the schema.' },
  QUERY_TOO_DEEP: { status: 400, summary: 'The query nests deeper than allowed.' },
  QUERY_TOO_COSTLY: { status: 400, summary: 'The query\'s estimated cost is above the limit.' },
  TOO_MANY_ALIASES: { status: 400, summary: 'The query uses more aliases than allowed.' },
  TOO_MANY_TOKENS: { status: 400, summary: 'The document has more tokens than allowed.' },
  TOO_MANY_DIRECTIVES: { status: 400, summary: 'The query uses more directives than allowed.' },
  BATCH_TOO_LARGE: { status: 400, summary: 'A batched request holds more operations than allowed.' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'The request body is larger than allowed.' },

  // server side
  CONFIG_INVALID: { status: 500, summary: 'The configuration is invalid.' },
  UNAVAILABLE: { status: 503, summary: 'A dependency is not available.' },
  UPSTREAM_UNAVAILABLE: { status: 503, summary: 'A backend service (e.g. a Glance) refused the connection, failed, or is cut off by its circuit breaker.' },
  UPSTREAM_TIMEOUT: { status: 504, summary: 'A backend service did not answer in time.' },
  UPSTREAM_REJECTED: { status: 502, summary: 'A backend service answered with something Vitrine cannot interpret.' },
  INTERNAL: { status: 500, summary: 'An unexpected error; details are in the server log.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * Codes that say a backend could not answer, rather than that it refused the request: a
 * federation of backends reports these as warnings beside what the others answered.
 */
export const UNAVAILABILITY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_REJECTED']);

export function isUnavailability(err: unknown): err is VitrineError {
  return err instanceof VitrineError && UNAVAILABILITY_CODES.has(err.code);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}

/** An error whose message is safe to show to the client that caused it. */
export class VitrineError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'VitrineError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new VitrineError(code, message, details);
}

import { join } from 'node:path';
import { z } from 'zod';
import { POLICY_DEFAULTS, POLICY_RULES, ROLES, type PolicyName } from '../domain/policy';

/**
 * The one configuration schema. Every default lives here. Each leaf carries its own
 * expectation as its error message ("an integer from 0 to 65535"), so load.ts can report
 * every bad key as `path: expected …, got … (from …)` without guessing from zod's wording.
 */

function expecting(what: string) {
  return { error: `expected ${what}` };
}

function strict<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown key; expected one of: ${keys}` : 'expected an object'),
  });
}

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const e = expecting(max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`);
  return z.number(e).int(e).min(min, e).max(max, e);
}

function num() {
  return z.number(expecting('a number'));
}

function text(min = 0) {
  const e = expecting(min > 0 ? `a string of at least ${min} characters` : 'a string');
  return z.string(e).min(min, e);
}

function bool() {
  return z.boolean(expecting('true or false'));
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expecting(`one of ${values.join(', ')}`));
}

function list<T extends z.ZodType>(item: T, nonEmpty = false) {
  const e = expecting(nonEmpty ? 'a non-empty array' : 'an array');
  return nonEmpty ? z.array(item, e).min(1, e) : z.array(item, e);
}

function dict<T extends z.ZodType>(value: T, key: z.ZodType<string> = z.string()) {
  return z.record(key, value, expecting('an object'));
}

/** Glare's quota names; whether `:<type>` names a known type is checked in load.ts. */
export const QUOTA_NAME = /^(max_artifact_number|max_uploaded_data)(?::([a-z][a-z0-9_]*))?$/;
const quotaName = z.string().regex(QUOTA_NAME, expecting('max_artifact_number or max_uploaded_data, optionally followed by :<type>'));

export const MODES = ['development', 'production'] as const;
export const EVENT_DRIVERS = ['memory', 'redis', 'nats'] as const;
const BROKER_URL = 'a redis://, rediss:// or nats:// URL';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const TokenSchema = strict({
  token: text(16),
  projectId: text(1),
  userId: text(1),
  roles: list(oneOf(ROLES), true),
});

const KEYSTONE_URL = 'an http(s) URL of the Keystone endpoint, without /v3';

/** The Keystone that validates tokens (auth.mode keystone), and the service user it does so as. */
const KeystoneSchema = strict({
  url: z.string(expecting(KEYSTONE_URL)).regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, expecting(KEYSTONE_URL)).refine((u) => !/\/v3\/?$/.test(u), expecting(KEYSTONE_URL)),
  serviceUser: text(1),
  servicePassword: text(1),
  serviceProject: text(1),
  /** The domain (name) of the service user and project. */
  serviceDomain: text(1).default('Default'),
  /** A validated token is trusted this long before Keystone is asked again (revocations take effect after it). */
  cacheSeconds: int(0).default(300),
  /** Validated tokens kept (least recently used go first). */
  cacheSize: int(1).default(10_000),
  /** A Keystone request slower than this fails with UNAVAILABLE. */
  timeoutMs: int(1).default(5_000),
});

const scalar = z.union([z.string(), z.number(), z.boolean()], expecting('a string, number or boolean'));
const fieldValue = z.union([scalar, z.null(), z.array(scalar), z.record(z.string(), scalar)], expecting('a scalar, null, a list or an object of scalars'));

/** Shape of `TypeSpec` (src/domain/builtin-types.ts); TypeRegistry checks the semantics. */
const FieldSpecSchema = strict({
  kind: oneOf(['string', 'integer', 'float', 'boolean', 'blob', 'blobDict']),
  container: oneOf(['none', 'list', 'dict']).optional(),
  description: text().optional(),
  system: bool().optional(),
  mutable: bool().optional(),
  requiredOnActivate: bool().optional(),
  nullable: bool().optional(),
  default: fieldValue.optional(),
  sortable: bool().optional(),
  filterOps: list(oneOf(['eq', 'neq', 'in', 'like', 'gt', 'gte', 'lt', 'lte'])).optional(),
  maxLength: int(0).optional(),
  minLength: int(0).optional(),
  pattern: text().optional(),
  allowedValues: list(scalar).optional(),
  minimum: num().optional(),
  maximum: num().optional(),
  maxItems: int(0).optional(),
  maxBlobSize: int(0).optional(),
  maxFolderSize: int(0).optional(),
});

const LinkSpecSchema = strict({
  many: bool().optional(),
  mutable: bool().optional(),
  description: text().optional(),
});

const storeName = z.string(expecting('a store name')).regex(/^(?!os_glance_)[a-z][a-z0-9_-]{0,62}$/, expecting('a store name of lower-case letters, digits, _ and - (not starting with os_glance_)'));

const FsStoreSchema = strict({
  driver: z.literal('fs'),
  path: text(1),
  description: text().optional(),
});

/** A Swift container (docs/operations.md): v1 auth, or a storage URL with a preset token. */
const SwiftStoreSchema = strict({
  driver: z.literal('swift'),
  description: text().optional(),
  /** v1 auth (tempauth): `{ url, user: "account:user", key }`. */
  auth: strict({ url: z.string(expecting('an http(s) URL')).regex(/^https?:\/\/\S+$/, expecting('an http(s) URL')), user: text(1), key: text(1) }).optional(),
  storageUrl: z.string(expecting('an http(s) URL')).regex(/^https?:\/\/\S+$/, expecting('an http(s) URL')).optional(),
  token: text(1).optional(),
  container: z.string(expecting('a container name')).regex(/^[A-Za-z0-9._-]{1,256}$/, expecting('a container name of letters, digits, ".", "_" and "-"')),
  segmentBytes: int(1).optional(),
  maxSegments: int(1).optional(),
  bufferBytes: int(1).optional(),
  incompleteGraceMs: int(1).optional(),
  connections: int(1).optional(),
  timeoutMs: int(1).optional(),
  /** Signs temp URLs (at least 16 characters); a secret, never echoed. */
  tempUrlKey: text(16).optional(),
  /** Data-plane downloads redirect to a Swift temp URL instead of passing through Vitrine. */
  redirectDownloads: bool().optional(),
})
  .refine((s) => !s.redirectDownloads || s.tempUrlKey !== undefined, { path: ['redirectDownloads'], error: 'expected a tempUrlKey to sign the temp URLs with' })
  .refine((s) => s.auth !== undefined || (s.storageUrl !== undefined && s.token !== undefined), { path: ['auth'], error: 'expected auth, or both storageUrl and token' });

/** The driver picks the shape (fs when omitted), so a mistake is reported against that shape's keys. */
const StoreSchema = z.preprocess(
  (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('driver' in v) ? { ...v, driver: 'fs' } : v),
  z.discriminatedUnion('driver', [FsStoreSchema, SwiftStoreSchema], expecting('a store: { driver: "fs", path } or { driver: "swift", container, auth }')),
);

const TypeSpecSchema = strict({
  name: text(1),
  displayName: text().optional(),
  graphqlName: text(1).optional(),
  uniqueVersions: bool().optional(),
  fields: dict(FieldSpecSchema),
  links: dict(LinkSpecSchema).optional(),
});

/** Backend names appear in ArtifactView.backend, filters and the createArtifact argument. */
export const BACKEND_NAME = /^[a-z][a-z0-9_-]*$/;
const backendName = z.string(expecting('a backend name')).regex(BACKEND_NAME, expecting('a name of lower-case letters, digits, _ and -, starting with a letter')).max(64, expecting('a name of at most 64 characters'));
const GLANCE_URL = 'an http:// or https:// URL of the Glance endpoint, without /v2';
const AMQP_URL = 'an amqp:// or amqps:// URL of the RabbitMQ that Glance notifies';

const NativeBackendSchema = strict({ name: backendName, driver: z.literal('native') });

const GlanceBackendSchema = strict({
  name: backendName,
  driver: z.literal('glance'),
  url: z.string(expecting(GLANCE_URL)).regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, expecting(GLANCE_URL)).refine((u) => !/\/v2\/?$/.test(u), expecting(GLANCE_URL)),
  /** token: forward the caller's token (X-Auth-Token); headers: X-Project-Id/X-User-Id/X-Roles for a Glance behind a trusted auth filter. */
  identity: oneOf(['token', 'headers']).default('token'),
  timeouts: strict({
    connectMs: int(1).default(3_000),
    /** Until the response headers arrive. */
    requestMs: int(1).default(30_000),
    /** Longest pause in a streamed body (uploads and downloads). */
    idleMs: int(1).default(60_000),
  }).prefault({}),
  /** Extra attempts for idempotent reads (GET, HEAD), with jittered backoff. */
  retries: int(0, 10).default(2),
  /** Open after this many consecutive failures; try again after resetMs. */
  breaker: strict({ failures: int(1).default(5), resetMs: int(1).default(10_000) }).prefault({}),
  /** Keep-alive connections in the pool. */
  connections: int(1, 1024).default(16),
  /** How often a running import's task and image are read for importProgress events. */
  importPollIntervalMs: int(10).default(1000),
  /** Without notifications: how often images seen in flight (saving, uploading, importing) are read again for status events; 0: never. */
  inFlightPollMs: int(0).default(5000),
  /** Glance's oslo.messaging notifications over RabbitMQ, turned into artifactEvents (docs/glance-backend.md). */
  notifications: strict({
    url: z.string(expecting(AMQP_URL)).regex(/^amqps?:\/\/\S+$/, expecting(AMQP_URL)),
    /** Glance's control_exchange. */
    exchange: text(1).default('glance'),
    /** oslo.messaging's notification topic ([oslo_messaging_notifications] topics); bound as `<topic>.*`. */
    topic: text(1).default('notifications'),
    /** The queue Vitrine reads from; `vitrine-<backend name>` by default. Instances naming the same queue share its messages. */
    queue: text(1).optional(),
    /** RabbitMQ removes the queue after this long without a consumer (what arrives meanwhile waits in it). */
    queueExpiresMs: int(1000).default(3_600_000),
    reconnectMinMs: int(1).default(500),
    reconnectMaxMs: int(1).default(30_000),
  }).optional(),
});

const BackendSchema = z.discriminatedUnion('driver', [NativeBackendSchema, GlanceBackendSchema], expecting('a backend: an object with driver "native" or "glance"'));

/** Names unique, at most one native backend (it owns the metadata store). */
const BackendsSchema = list(BackendSchema, true).superRefine((backends, ctx) => {
  const seen = new Set<string>();
  let natives = 0;
  backends.forEach((b, i) => {
    if (seen.has(b.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'expected a name no other backend has' });
    seen.add(b.name);
    if (b.driver === 'native' && ++natives > 1) ctx.addIssue({ code: 'custom', path: [i, 'driver'], message: 'expected at most one native backend' });
  });
});

const GraphQLSchema = strict({
  /** Defaults to on in development, off in production. */
  introspection: bool().optional(),
  /** The Apollo explorer landing page on GET /graphql; same default as introspection. */
  explorer: bool().optional(),
  maxDepth: int(1).default(12),
  // armor counts fields and nesting, not page sizes: a 100-image page with Glance's fields costs about 8,200.
  maxCost: int(1).default(25000),
  maxAliases: int(0).default(20),
  maxDirectives: int(0).default(30),
  maxTokens: int(1).default(4000),
  maxBatch: int(1).default(10),
  /**
   * Results of queries that read artifacts only, reused until the next write
   * (src/graphql/response-cache.ts); only where the backend can tell when artifacts change
   * (the native store on SQLite). 0 turns it off.
   */
  responseCache: strict({
    entries: int(0).default(256),
    maxBytes: int(0).default(32 * 1024 ** 2),
  }).prefault({}),
});

export const ConfigSchema = strict({
  mode: oneOf(MODES).default('development'),
  host: text(1).default('127.0.0.1'),
  port: int(0, 65535).default(4000),
  dataDir: text(1).default('./data'),
  logLevel: oneOf(LOG_LEVELS).optional(),
  database: strict({
    /** Defaults to postgres when a url is given, sqlite otherwise. */
    driver: oneOf(['sqlite', 'postgres']).optional(),
    /** sqlite: the database file. */
    path: text(1).optional(),
    /** postgres: the connection URL (VITRINE_DATABASE_URL). */
    url: z.string(expecting('a postgres:// or postgresql:// URL')).regex(/^postgres(ql)?:\/\/\S+$/, expecting('a postgres:// or postgresql:// URL')).optional(),
    /** postgres: a schema of its own (created by migrate); the user's default search_path otherwise. */
    schema: z.string(expecting('a schema name')).regex(/^[a-z_][a-z0-9_]{0,62}$/, expecting('a schema name of lower-case letters, digits and _ (at most 63)')).optional(),
    /** postgres: the most connections one instance opens. */
    poolSize: int(1, 1000).default(10),
  })
    .refine((d) => d.driver !== 'postgres' || d.url !== undefined, { path: ['url'], error: 'expected a postgres:// URL when database.driver is "postgres"' })
    .refine((d) => d.driver !== 'sqlite' || d.url === undefined, { path: ['driver'], error: 'expected "postgres" when database.url is set (or remove the url)' })
    .prefault({}),
  blobs: strict({
    driver: z.literal('fs', expecting('"fs"')).default('fs'),
    /** The single store's folder (when `stores` is not set). */
    path: text(1).optional(),
    /** Named stores (Glance's enabled_backends): setting them turns multiple stores on. */
    stores: dict(StoreSchema, storeName).optional(),
    /** Where uploads and staging go; the first named store by default. */
    defaultStore: storeName.optional(),
  })
    .refine((b) => b.defaultStore === undefined || (b.stores !== undefined && b.defaultStore in b.stores), { path: ['defaultStore'], error: 'expected the name of one of blobs.stores' })
    .refine((b) => b.stores === undefined || Object.keys(b.stores).length > 0, { path: ['stores'], error: 'expected at least one store (or remove blobs.stores)' })
    .prefault({}),
  /** Interoperable image import on the native store (docs/import.md). */
  imports: strict({
    // glance-download is offered only when listed: it makes Vitrine call out to other Glances with the caller's token.
    methods: list(oneOf(['glance-direct', 'web-download', 'copy-image', 'glance-download'])).default(['glance-direct', 'web-download', 'copy-image']),
    /** Imports one instance runs at a time; more wait as pending tasks. */
    concurrency: int(1, 64).default(2),
    /** A running import's lease: another instance (or this one after a restart) takes over a task whose lease passed. */
    leaseSeconds: int(5, 3600).default(60),
    /** How long finished tasks stay listed (Glance: 48 hours). */
    taskTimeToLiveHours: int(1).default(48),
    /** A task interrupted this many times (its process died) fails instead of running again. */
    maxAttempts: int(1, 100).default(3),
    pollIntervalMs: int(50).default(5_000),
    /** glance-download (docs/import.md): where remote Glances are, and what is copied from their images. */
    glanceDownload: strict({
      /** Static auth mode: region name → Glance URL (without /v2); keystone mode reads the caller's service catalog instead. */
      regions: dict(z.string(expecting(GLANCE_URL)).regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, expecting(GLANCE_URL)).refine((u) => !/\/v2\/?$/.test(u), expecting(GLANCE_URL))).default({}),
      /** Prefixes of the remote image's properties copied over the local image's (Glance's [glance_download_properties] extra_properties). */
      properties: list(text(1)).default(['hw_', 'trait:', 'os_distro', 'os_secure_boot', 'os_type']),
    }).prefault({}),
    webDownload: strict({
      /** Largest download, in bytes (the image field's own limit also applies). */
      maxBytes: int(1).default(1024 ** 4),
      connectTimeoutMs: int(1).default(10_000),
      /** A download that sends nothing for this long fails. */
      idleTimeoutMs: int(1).default(60_000),
      maxRedirects: int(0, 20).default(5),
      // Glance's [import_filtering_opts]: an allow list, when set, wins over the deny list.
      allowedSchemes: list(text(1)).default(['http', 'https']),
      disallowedSchemes: list(text(1)).default([]),
      allowedHosts: list(text(1)).default([]),
      disallowedHosts: list(text(1)).default([]),
      /** Checked only when a URL names its port; empty allows every port. */
      allowedPorts: list(int(1, 65535)).default([80, 443]),
      disallowedPorts: list(int(1, 65535)).default([]),
    }).prefault({}),
  }).prefault({}),
  auth: strict({
    /** static: the tokens below (or a generated admin token); keystone: tokens validated by a Keystone v3. */
    mode: oneOf(['static', 'keystone']).default('static'),
    tokens: list(TokenSchema).default([]),
    keystone: KeystoneSchema.optional(),
  })
    .refine((a) => a.mode !== 'keystone' || a.keystone !== undefined, { path: ['keystone'], error: 'expected { url, serviceUser, servicePassword, serviceProject } when auth.mode is keystone' })
    .prefault({}),
  graphql: GraphQLSchema.prefault({}),
  http: strict({ bodyLimitBytes: int(1).default(1024 * 1024) }).prefault({}),
  paging: strict({ defaultPageSize: int(1).default(25), maxPageSize: int(1).default(1000) })
    // Only judged when maxPageSize itself is valid, so one mistake is reported once.
    .refine((p) => p.maxPageSize < 1 || p.defaultPageSize <= p.maxPageSize, { path: ['defaultPageSize'], error: 'expected at most paging.maxPageSize' })
    .prefault({}),
  quotas: dict(int(-1), quotaName).default({}),
  artifactTypes: list(TypeSpecSchema).default([]),
  /** Where artifacts are kept, in order: lookups ask them in turn; the first is the default for creates (docs/federation.md). */
  backends: BackendsSchema.default([{ name: 'native', driver: 'native' }]),
  events: strict({
    keep: int(0).default(100_000),
    pruneIntervalMs: int(0).default(60_000),
    /** Defaults to the url's scheme (redis://, rediss://, nats://), memory without a url. */
    driver: oneOf(EVENT_DRIVERS).optional(),
    /** redis or nats: the broker URL (VITRINE_EVENTS_URL). */
    url: z.string(expecting(BROKER_URL)).regex(/^(rediss?|nats):\/\/\S+$/, expecting(BROKER_URL)).optional(),
    /** The Redis channel or NATS subject that every instance of one deployment shares. */
    channel: z.string(expecting('a channel name')).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, expecting('a channel name of letters, digits, _ and -, in parts joined by "."')).default('vitrine.events'),
  })
    .refine((e) => e.driver !== 'redis' || (e.url !== undefined && brokerOf(e.url) === 'redis'), { path: ['url'], error: 'expected a redis:// or rediss:// URL when events.driver is "redis"' })
    .refine((e) => e.driver !== 'nats' || (e.url !== undefined && brokerOf(e.url) === 'nats'), { path: ['url'], error: 'expected a nats:// URL when events.driver is "nats"' })
    .refine((e) => e.driver !== 'memory' || e.url === undefined, { path: ['driver'], error: 'expected "redis" or "nats" when events.url is set (or remove the url)' })
    .prefault({}),
  subscriptions: strict({
    /** Close a socket that sends no connection_init within this time (4408); 0 waits forever. */
    connectionInitWaitTimeoutMs: int(0).default(3_000),
    /** Ping interval; a socket that misses a pong for as long is terminated; 0 disables. */
    keepAliveMs: int(0).default(12_000),
    maxSubscriptionsPerConnection: int(1).default(100),
    /** Undelivered events one subscription may hold before its socket closes with 4420. */
    queueLimit: int(1).default(1_000),
    /** Bytes waiting in a socket's send buffer beyond which it is closed as too slow (4420). */
    maxBufferedBytes: int(1024).default(4 * 1024 * 1024),
  }).prefault({}),
  /** The node-local image cache and Glance's cache API (docs/configuration.md, docs/glance-compat.md). */
  imageCache: strict({
    /** Off by default, as in Glance (no image_cache_dir): the cache API then answers 404. */
    enabled: bool().default(false),
    /** A local folder of this instance's own; <dataDir>/image-cache by default. */
    dir: text(1).optional(),
    /** Least recently used images are evicted beyond this many bytes (Glance's image_cache_max_size: 10 GiB). */
    maxBytes: int(1).default(10 * 1024 ** 3),
    /** The prefetcher runs this long after an image is queued (Glance: a periodic job, every 5 minutes by default). */
    prefetchDelayMs: int(0).default(1000),
  }).prefault({}),
  /** What image JSON shows (Glance's show_multiple_locations and show_image_direct_url; docs/glance-compat.md). */
  images: strict({
    /** `locations` on images, and adding, replacing and removing them (off: 403, as Glance). */
    showLocations: bool().default(false),
    /** `direct_url`: the first location's URL. */
    showDirectUrl: bool().default(false),
    /** Most locations one image may have (Glance's image_location_quota); -1: no limit. */
    maxLocations: int(-1).default(10),
    /**
     * Rendered `GET /v2/images` pages reused until the next write (src/http/page-cache.ts);
     * only where the backend can tell when a list changes (the native store on SQLite). 0 turns it off.
     */
    listCache: strict({
      entries: int(0).default(256),
      maxBytes: int(0).default(32 * 1024 ** 2),
    }).prefault({}),
  }).prefault({}),
  /** Overrides of the overridable policy rules (src/domain/policy.ts): admin, member or reader. */
  policy: strict(policyShape()).prefault({}),
  /** The blob data plane (docs/dataplane.md). */
  dataPlane: strict({
    /** Let external blob URLs point to private, loopback or link-local addresses (SSRF guard off). */
    allowPrivateUrls: bool().default(false),
    /** HMAC key for signed URLs; generated once into <dataDir>/url-signing-key when absent. */
    signingKey: text(32).optional(),
    /** How long a running upload's lease lasts without renewal; it is renewed every sixth of this. */
    uploadLeaseSeconds: int(5, 3600).default(30),
    /** At most one upload progress event per upload per this many milliseconds. */
    progressIntervalMs: int(10).default(250),
    /** Period of the sweep of expired uploads and orphaned bytes. */
    sweepIntervalSeconds: int(1).default(300),
  }).prefault({}),
}).transform((c) => {
  const development = c.mode === 'development';
  return {
    ...c,
    logLevel: c.logLevel ?? (development ? 'info' : 'warn'),
    database: databaseOf(c.database, c.dataDir),
    blobs: blobsOf(c.blobs, c.dataDir),
    events: eventsOf(c.events),
    imageCache: { ...c.imageCache, dir: c.imageCache.dir ?? join(c.dataDir, 'image-cache') },
    graphql: { ...c.graphql, introspection: c.graphql.introspection ?? development, explorer: c.graphql.explorer ?? development },
  };
});

/** One optional key per overridable rule, defaulting to Glance's default. */
function policyShape() {
  const names = Object.keys(POLICY_DEFAULTS) as PolicyName[];
  return Object.fromEntries(names.map((name) => [name, oneOf(POLICY_RULES).default(POLICY_DEFAULTS[name])])) as Record<PolicyName, z.ZodDefault<z.ZodEnum<{ [K in (typeof POLICY_RULES)[number]]: K }>>>;
}

/**
 * SQLite keeps exactly `{ driver, path }`; PostgreSQL adds its connection settings. `path`
 * stays on both because load.ts and the CLI read it whatever the driver.
 */
function databaseOf(d: { driver?: 'sqlite' | 'postgres'; path?: string; url?: string; schema?: string; poolSize: number }, dataDir: string) {
  const path = d.path ?? join(dataDir, 'vitrine.sqlite');
  if (d.url === undefined || d.driver === 'sqlite') return { driver: 'sqlite' as const, path };
  return { driver: 'postgres' as const, path, url: d.url, poolSize: d.poolSize, ...(d.schema !== undefined ? { schema: d.schema } : {}) };
}

/**
 * Without named stores there is one store called "fs" (multiple stores off, as a Glance
 * without enabled_backends); with them, the default is the one named or the first.
 */
function blobsOf(b: { driver: 'fs'; path?: string; stores?: Record<string, StoreConfig>; defaultStore?: string }, dataDir: string) {
  const path = b.path ?? join(dataDir, 'blobs');
  if (b.stores === undefined) return { driver: b.driver, path, multistore: false, defaultStore: 'fs', stores: { fs: { driver: 'fs' as const, path } as StoreConfig } };
  return { driver: b.driver, path, multistore: true, defaultStore: b.defaultStore ?? Object.keys(b.stores)[0], stores: b.stores };
}

type StoreConfig = z.output<typeof StoreSchema>;

/** The broker a URL names by its scheme. */
function brokerOf(url: string): 'redis' | 'nats' {
  return url.startsWith('nats:') ? 'nats' : 'redis';
}

/** The in-process bus keeps only the log settings; a broker adds where and on what channel. */
function eventsOf(e: { keep: number; pruneIntervalMs: number; driver?: (typeof EVENT_DRIVERS)[number]; url?: string; channel: string }) {
  const log = { keep: e.keep, pruneIntervalMs: e.pruneIntervalMs };
  if (e.url === undefined || e.driver === 'memory') return { ...log, driver: 'memory' as const };
  return { ...log, driver: brokerOf(e.url), url: e.url, channel: e.channel };
}

type DeepReadonly<T> = T extends (infer I)[] ? readonly DeepReadonly<I>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

export type Config = DeepReadonly<z.output<typeof ConfigSchema>>;
export type TokenConfig = Config['auth']['tokens'][number];
export type KeystoneAuthConfig = NonNullable<Config['auth']['keystone']>;
export type GraphQLLimits = Config['graphql'];
export type Mode = Config['mode'];
export type SubscriptionLimits = Config['subscriptions'];
export type EventsConfig = Config['events'];
export type ImportsConfig = Config['imports'];
export type ImageCacheConfig = Config['imageCache'];
export type BackendConfig = Config['backends'][number];
export type GlanceBackendConfig = Extract<BackendConfig, { driver: 'glance' }>;

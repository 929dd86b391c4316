import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createCachingBackend, type ImageCacheService } from '../backends/cache/backend';
import { CacheFiles } from '../backends/cache/store';
import { FederatedBackend, type FederationMember } from '../backends/federation/backend';
import { GlanceBackend } from '../backends/glance/backend';
import { StoreMetadefCatalog } from '../backends/metadefs/catalog';
import { NativeBackend } from '../backends/native/backend';
import { HashPool } from '../backends/native/hasher';
import type { ImportSettings } from '../backends/native/imports';
import { StoreSet } from '../backends/native/stores';
import { webFetcher, type WebFetcherOptions } from '../backends/native/web-download';
import { glanceSource, type GlanceSourceOptions } from '../backends/native/glance-download';
import type { ArtifactBackend, Lookup } from '../backends/port';
import type { Config, GlanceBackendConfig, ImageCacheConfig, TokenConfig } from '../config/schema';
import { TypeRegistry, type TypeSpec } from '../domain/builtin-types';
import { fail } from '../domain/errors';
import type { PageLimits } from '../domain/paging';
import { policiesOf, type Principal } from '../domain/policy';
import type { BrokerBusOptions } from '../events/broker';
import { MemoryEventBus } from '../events/memory';
import { NatsEventBus } from '../events/nats';
import { RedisEventBus } from '../events/redis';
import { errorBody } from '../graphql/errors';
import { buildExecutableSchema } from '../graphql/schema';
import { registerGraphQL } from '../graphql/server';
import { registerSubscriptions } from '../graphql/subscriptions/transport';
import type { EventBus, EventLog } from '../events/port';
import type { MetadataStore } from '../storage/metadata/port';
import { createAuthenticator } from '../http/auth';
import { createKeystoneIdentity, type KeystoneIdentity } from '../http/keystone';
import { registerDataPlane } from '../http/dataplane/routes';
import { registerGlanceFacade } from '../http/glance';
import { UrlSigner } from '../http/dataplane/signing';
import { registerHealthRoutes } from '../http/health';
import { createLogger, type Logger } from '../observability/logger';
import { createMetrics, observeHttpRequests } from '../observability/metrics';
import { FsBlobStore } from '../storage/blobs/fs';
import type { BlobStore } from '../storage/blobs/port';
import { SwiftBlobStore } from '../storage/blobs/swift';
import { PostgresMetadataStore } from '../storage/metadata/postgres';
import { SqliteMetadataStore } from '../storage/metadata/sqlite';
import { ensureAdminToken } from './admin-token';
import { ensureSigningKey } from './signing-key';

/**
 * The composition root: the one place that names concrete adapters (SQLite or PostgreSQL,
 * the in-memory, Redis or NATS bus, the configured backends, federated when there are
 * several) and wires them to the edges, which only know ports.
 */
/** Where the data plane serves blob bytes. */
const DATA_PLANE_PREFIX = '/v1/artifacts';

export interface App {
  server: FastifyInstance;
  /** Set once `listen` has bound, e.g. http://127.0.0.1:4000. */
  url?: string;
  logger: Logger;
  /** Starts accepting connections on the configured host and port; resolves to the URL. */
  listen(): Promise<string>;
  /** Stops accepting requests, lets in-flight ones finish, then closes the stores. Idempotent. */
  close(): Promise<void>;
}

export interface AppOptions {
  /** Where the first-start admin token is shown; stdout by default. */
  announce?: (text: string) => void;
  /** Replaces the logger made from config (tests pass a silent one). */
  logger?: Logger;
  /** Replaces the configured event bus (tests publish progress on it; closed with the app). */
  bus?: EventBus;
  /**
   * Tests only: backends served after the configured ones, built from the app's parts (a
   * second native backend on a SQLite file of its own, or a wrapper that injects faults:
   * configuration allows one native backend). With any, the app serves a federation, as
   * with several configured backends. The caller closes what it opened, after the app.
   */
  extraBackends?: (parts: BackendParts) => FederationMember[] | Promise<FederationMember[]>;
}

/** What a backend is built from, beside its own configuration. */
export interface BackendParts {
  types: TypeRegistry;
  bus: EventBus;
  /** Page limits a federated member must accept: one more than clients may ask (the merge reads ahead). */
  paging: PageLimits;
  /** Where the data plane serves blobs. */
  blobPathPrefix: string;
  /** Finds link targets and `afterId` markers in every backend (the federation's getMany). */
  lookup?: (principal: Principal, ids: readonly string[]) => Promise<Lookup[]>;
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const types = new TypeRegistry(config.artifactTypes as readonly TypeSpec[]);
  await prepareDirectories(config);

  // Opened first: a broker that does not answer stops the start before anything else is open.
  const { bus, ping: pingBus } = options.bus ? { bus: options.bus, ping: undefined } : await openEventBus(config.events, logger);
  const store = openMetadataStore(config);
  const stores = openBlobStores(config.blobs);
  const hashPool = new HashPool();
  let server: FastifyInstance | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let closeBackends: (() => Promise<void>) | undefined;
  const closeBlobStores = () => Promise.all(stores.all().map((s) => (s instanceof SwiftBlobStore ? s.close() : undefined)));
  try {
    await store.migrate();
    // Metadefs live in the metadata store whatever the artifact backends are (a Glance-only
    // deployment keeps its catalog here too); the default catalog is written once per database.
    const metadefs = new StoreMetadefCatalog({ store });
    await metadefs.seedDefaults();
    const keystone = config.auth.mode === 'keystone' && config.auth.keystone ? createKeystoneIdentity(config.auth.keystone, { logger }) : undefined;
    const opened = await openBackends(config, { store, bus, stores, hashPool, logger, types, keystone }, options.extraBackends);
    const { native } = opened;
    closeBackends = opened.close;
    // The image cache wraps whatever backend the edges get (native, Glance or a federation).
    const imageCache = config.imageCache.enabled ? await openImageCache(config.imageCache, opened.backend, bus, logger) : undefined;
    const backend = imageCache?.backend ?? opened.backend;
    closeBackends = async () => {
      await imageCache?.cache.close();
      await opened.close();
    };
    // The embedded SQLite store belongs to this process alone: whatever upload the ledger
    // still holds, and whatever bytes nothing references, a dead process left behind. A
    // shared store (PostgreSQL) may hold live uploads of other instances: leases decide.
    const swept = await backend.sweepBlobs({ exclusive: config.database.driver === 'sqlite' });
    if (swept.incompleteWrites + swept.expiredUploads + swept.orphanedLocations > 0) logger.info({ swept }, 'removed leftovers of interrupted uploads');
    const urlSigner = new UrlSigner(await ensureSigningKey(config.dataDir, config.dataPlane.signingKey), DATA_PLANE_PREFIX);
    const authenticate = keystone?.authenticate ?? createAuthenticator(await effectiveTokens(config, options.announce ?? ((text) => process.stdout.write(text))));
    const metrics = createMetrics();

    server = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      bodyLimit: config.http.bodyLimitBytes,
      // Blob dictionary keys (up to 255 characters, percent-encoded) are path parameters.
      routerOptions: { maxParamLength: 2048 },
      requestIdHeader: 'x-request-id',
      genReqId: () => randomUUID(),
    });
    server.addHook('onSend', async (request, reply) => {
      reply.header('x-request-id', request.id);
    });
    server.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      const status = error.statusCode ?? 500;
      if (status === 413) return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', `the request body is larger than ${config.http.bodyLimitBytes} bytes`));
      if (status >= 400 && status < 500) return reply.code(status).send(errorBody('BAD_REQUEST', error.message));
      request.log.error({ err: error }, 'unexpected error');
      return reply.code(500).send(errorBody('INTERNAL', 'Unexpected error'));
    });
    observeHttpRequests(server, metrics);
    const checks = { metadata: () => store.ping(), blobs: async () => void (await Promise.all(stores.all().map((s) => s.ping()))), ...(pingBus && { events: pingBus }) };
    await registerHealthRoutes(server, { checks, metrics });
    const schema = buildExecutableSchema(types);
    await registerGraphQL(server, {
      schema,
      backend,
      metadefs,
      authenticate,
      mode: config.mode,
      limits: config.graphql,
      bodyLimitBytes: config.http.bodyLimitBytes,
      metrics,
      logger,
      urlSigner,
      responseCache: { entries: config.graphql.responseCache.entries, bytes: config.graphql.responseCache.maxBytes },
      ...(imageCache && { imageCache: imageCache.cache }),
    });
    await registerDataPlane(server, { backend, authenticate, signer: urlSigner, prefix: DATA_PLANE_PREFIX });
    await registerGlanceFacade(server, { backend, metadefs, authenticate, bodyLimitBytes: config.http.bodyLimitBytes, paging: config.paging, importMethods: config.imports.methods, multistore: config.blobs.multistore, showLocations: config.images.showLocations, policies: policiesOf(config.policy), listCache: { entries: config.images.listCache.entries, bytes: config.images.listCache.maxBytes }, ...(imageCache && { imageCache: imageCache.cache }) });
    sweepTimer = setInterval(() => {
      backend.sweepBlobs({ exclusive: false }).catch((err: unknown) => logger.warn({ err }, 'blob sweep failed'));
    }, config.dataPlane.sweepIntervalSeconds * 1000);
    sweepTimer.unref();
    registerSubscriptions(server, {
      schema,
      backend,
      bus,
      log: eventLogOf(store),
      authenticate,
      mode: config.mode,
      graphqlLimits: config.graphql,
      limits: config.subscriptions,
      maxMessageBytes: config.http.bodyLimitBytes,
      logger,
    });
    native?.startImports({ exclusive: config.database.driver === 'sqlite' });
    imageCache?.cache.start();
    await store.pruneEvents(config.events.keep);
    const stopPruning = pruneEventsPeriodically(store, config.events, logger);
    server.addHook('onClose', async () => {
      stopPruning();
      clearInterval(sweepTimer);
      await closeBackends?.();
      await closeBlobStores();
      await hashPool.close();
      await bus.close();
      await store.close();
    });
    await server.ready();
  } catch (err) {
    clearInterval(sweepTimer);
    if (server) await server.close().catch(() => undefined);
    else {
      await closeBackends?.().catch(() => undefined);
      await Promise.all([store.close(), hashPool.close(), closeBlobStores()]).catch(() => undefined);
    }
    await bus.close().catch(() => undefined);
    throw err;
  }

  const fastify = server;
  let closing: Promise<void> | undefined;
  const app: App = {
    server: fastify,
    logger,
    async listen() {
      await fastify.listen({ host: config.host, port: config.port });
      const address = fastify.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      app.url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
      return app.url;
    },
    close() {
      closing ??= closeServer(fastify);
      return closing;
    },
  };
  return app;
}

interface SharedParts {
  types: TypeRegistry;
  store: MetadataStore;
  bus: EventBus;
  stores: StoreSet;
  hashPool: HashPool;
  logger: Logger;
  /** Keystone mode: Vitrine's identity there (a Glance backend reads notified images with its service token). */
  keystone?: KeystoneIdentity;
}

/**
 * The configured backends (docs/federation.md): one is handed to the edges as it is; several
 * are handed over as one FederatedBackend, in configuration order. The native backend takes
 * its configured name, which every artifact it serves carries.
 */
async function openBackends(config: Config, shared: SharedParts, extra: AppOptions['extraBackends']): Promise<{ backend: ArtifactBackend; native?: NativeBackend; close: () => Promise<void> }> {
  const federated = config.backends.length > 1 || extra !== undefined;
  let federation: FederatedBackend | undefined;
  const parts: BackendParts = {
    types: shared.types,
    bus: shared.bus,
    paging: federated ? { ...config.paging, maxPageSize: config.paging.maxPageSize + 1 } : config.paging,
    blobPathPrefix: DATA_PLANE_PREFIX,
    ...(federated && { lookup: (principal, ids) => federation!.getMany(principal, ids) }),
  };
  const members = config.backends.map((spec): FederationMember => {
    if (spec.driver === 'glance') return openGlanceBackend(spec, config, shared, parts);
    return { backend: openNativeBackend(spec.name, config, shared, parts) };
  });
  if (extra) members.push(...(await extra(parts)));
  const native = members.find((m): m is FederationMember & { backend: NativeBackend } => m.backend instanceof NativeBackend)?.backend;
  // Native: stops its import runner; Glance: closes its connection pool.
  const close = async () => {
    for (const { backend } of members) if (backend instanceof NativeBackend || backend instanceof GlanceBackend) await backend.close();
  };
  if (!federated) return { backend: members[0].backend, native, close };
  federation = new FederatedBackend({
    members,
    types: shared.types,
    paging: config.paging,
    home: config.backends.find((b) => b.driver === 'native')?.name,
  });
  return { backend: federation, native, close };
}

function openNativeBackend(name: string, config: Config, shared: SharedParts, parts: BackendParts): NativeBackend {
  const { logger } = shared;
  const fetcher = webFetcher(webDownloadOptions(config));
  return new NativeBackend({
    name,
    types: parts.types,
    store: shared.store,
    bus: parts.bus,
    paging: parts.paging,
    quotaDefaults: config.quotas,
    blobPathPrefix: parts.blobPathPrefix,
    blobs: {
      stores: shared.stores,
      hashPool: shared.hashPool,
      leaseMs: config.dataPlane.uploadLeaseSeconds * 1000,
      progressIntervalMs: config.dataPlane.progressIntervalMs,
      allowPrivateUrls: config.dataPlane.allowPrivateUrls,
      log: (message, err) => logger.warn({ err }, message),
    },
    policies: policiesOf(config.policy),
    imports: { settings: importSettings(config), fetcher, glance: glanceSource(glanceSourceOptions(config)) },
    locations: {
      show: config.images.showLocations,
      showDirectUrl: config.images.showDirectUrl,
      policies: policiesOf(config.policy),
      maxLocations: config.images.maxLocations,
      // Locations go through web-download's URL filter (Glance: validate_external_location).
      open: (url, signal) => fetcher.open(url, Number.MAX_SAFE_INTEGER, signal ?? new AbortController().signal),
    },
    log: (message, err) => logger.error({ err }, message),
    ...(parts.lookup && { lookup: parts.lookup }),
  });
}

/**
 * A `driver: "glance"` backend: a real Glance v2 proxied (docs/glance-backend.md); it serves
 * images only. Its lifecycle events go to the metadata store's log, as the native backend's.
 */
function openGlanceBackend(spec: GlanceBackendConfig, config: Config, shared: SharedParts, parts: BackendParts): FederationMember {
  const { logger } = shared;
  const notifications = spec.notifications && { ...spec.notifications, queue: spec.notifications.queue ?? `vitrine-${spec.name}` };
  const backend = new GlanceBackend({
    name: spec.name,
    url: spec.url,
    identity: spec.identity,
    ...(shared.keystone && { serviceToken: shared.keystone.serviceToken }),
    timeouts: spec.timeouts,
    retries: spec.retries,
    breaker: spec.breaker,
    connections: spec.connections,
    types: parts.types,
    bus: parts.bus,
    progressIntervalMs: config.dataPlane.progressIntervalMs,
    blobPathPrefix: parts.blobPathPrefix,
    allowPrivateUrls: config.dataPlane.allowPrivateUrls,
    // Vitrine's switches in front of the proxied Glance's own (show_multiple_locations, show_image_direct_url).
    locations: { show: config.images.showLocations, showDirectUrl: config.images.showDirectUrl },
    // Glance pages hold at most 1000 images; the federation reads short pages further.
    paging: { defaultPageSize: Math.min(parts.paging.defaultPageSize, GLANCE_MAX_PAGE), maxPageSize: Math.min(parts.paging.maxPageSize, GLANCE_MAX_PAGE) },
    pollIntervalMs: spec.importPollIntervalMs,
    events: { append: (events) => shared.store.appendEvents(events) },
    ...(notifications && { notifications }),
    inFlightPollMs: spec.inFlightPollMs,
    log: (message, err) => logger.warn({ err, backend: spec.name }, message),
  });
  return { backend, typeNames: ['images'] };
}

const GLANCE_MAX_PAGE = 1000;

/** The node-local image cache (docs/configuration.md): its folder, and the backend read through it. */
async function openImageCache(spec: ImageCacheConfig, inner: ArtifactBackend, bus: EventBus, logger: Logger): Promise<{ backend: ArtifactBackend; cache: ImageCacheService }> {
  const log = (message: string, err?: unknown) => logger.warn({ err }, message);
  const files = await CacheFiles.open(spec.dir, spec.maxBytes, log);
  return createCachingBackend({ inner, files, bus, log, prefetchDelayMs: spec.prefetchDelayMs });
}

/** The durable event log that subscriptions resume from, read through its port. */
function eventLogOf(store: MetadataStore): EventLog {
  return {
    read: (afterSeq, limit) => store.readEvents(afterSeq, limit),
    oldestSeq: async () => (await store.readEvents(0, 1))[0]?.seq ?? null,
  };
}

/** Keeps the event log bounded to `keep` events, every `pruneIntervalMs` (0: only at start). */
function pruneEventsPeriodically(store: MetadataStore, events: Config['events'], logger: Logger): () => void {
  const prune = () => store.pruneEvents(events.keep).catch((err: unknown) => logger.error({ err }, 'pruning the event log failed'));
  if (events.pruneIntervalMs <= 0) return () => undefined;
  const timer = setInterval(prune, events.pruneIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** `migrate` command: create or upgrade the metadata schema, then exit. */
export async function migrateDatabase(config: Config): Promise<void> {
  await prepareDirectories(config);
  const store = openMetadataStore(config);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

/**
 * The bus named by `events.driver`, and its readiness check: none for the in-process bus,
 * which cannot be unreachable. Broker outages are logged; the bus reconnects on its own.
 */
async function openEventBus(events: Config['events'], logger: Logger): Promise<{ bus: EventBus; ping?: () => Promise<void> }> {
  if (events.driver === 'memory') return { bus: new MemoryEventBus() };
  const { driver } = events;
  const options: BrokerBusOptions = {
    url: events.url,
    channel: events.channel,
    clientName: `vitrine-${hostname()}-${process.pid}`,
    onEvent: (event) => {
      if (event.kind === 'disconnected') logger.warn({ driver, err: event.error }, 'event bus disconnected; reconnecting (live events published meanwhile are lost, the event log keeps lifecycle events)');
      else if (event.kind === 'reconnected') logger.info({ driver }, 'event bus reconnected');
      else logger.warn({ driver, reason: event.reason }, 'discarded a message on the event channel that is not a Vitrine event');
    },
  };
  const bus = driver === 'redis' ? await RedisEventBus.connect(options) : await NatsEventBus.connect(options);
  return { bus, ping: () => bus.ping() };
}

/** The configured blob stores (one called "fs" unless named stores are configured). */
function openBlobStores(blobs: Config['blobs']): StoreSet {
  const named = Object.entries(blobs.stores).map(([name, spec]) => ({ store: openBlobStore(name, spec), description: spec.description }));
  return new StoreSet(named, blobs.defaultStore, blobs.multistore);
}

function openBlobStore(name: string, spec: Config['blobs']['stores'][string]): BlobStore {
  if (spec.driver === 'fs') return new FsBlobStore(name, spec.path);
  const { driver: _driver, description: _description, auth, ...options } = spec;
  return new SwiftBlobStore(name, { ...options, ...(auth && { auth: { ...auth } }) });
}

function importSettings(config: Config): ImportSettings {
  const i = config.imports;
  return {
    methods: i.methods,
    concurrency: i.concurrency,
    leaseMs: i.leaseSeconds * 1000,
    taskTtlMs: i.taskTimeToLiveHours * 3600_000,
    maxAttempts: i.maxAttempts,
    pollIntervalMs: i.pollIntervalMs,
    progressIntervalMs: config.dataPlane.progressIntervalMs,
    maxDownloadBytes: i.webDownload.maxBytes,
    glanceDownloadProperties: i.glanceDownload.properties,
  };
}

/** glance-download: the caller's service catalog in keystone mode, the configured regions otherwise; web-download's timeouts. */
function glanceSourceOptions(config: Config): GlanceSourceOptions {
  const w = config.imports.webDownload;
  const keystone = config.auth.mode === 'keystone' ? config.auth.keystone?.url : undefined;
  return {
    ...(keystone && { keystoneUrl: keystone }),
    regions: config.imports.glanceDownload.regions,
    connectTimeoutMs: w.connectTimeoutMs,
    idleTimeoutMs: w.idleTimeoutMs,
    maxRedirects: w.maxRedirects,
  };
}

function webDownloadOptions(config: Config): WebFetcherOptions {
  const w = config.imports.webDownload;
  return {
    filter: {
      allowedSchemes: w.allowedSchemes,
      disallowedSchemes: w.disallowedSchemes,
      allowedHosts: w.allowedHosts,
      disallowedHosts: w.disallowedHosts,
      allowedPorts: w.allowedPorts,
      disallowedPorts: w.disallowedPorts,
      allowPrivate: config.dataPlane.allowPrivateUrls,
    },
    connectTimeoutMs: w.connectTimeoutMs,
    idleTimeoutMs: w.idleTimeoutMs,
    maxRedirects: w.maxRedirects,
  };
}

/** The metadata adapter named by `database.driver`. */
function openMetadataStore(config: Config): MetadataStore {
  const db = config.database;
  if (db.driver === 'postgres') return new PostgresMetadataStore({ connectionString: db.url, poolSize: db.poolSize, schema: db.schema });
  return new SqliteMetadataStore({ path: db.path });
}

async function prepareDirectories(config: Config): Promise<void> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(config.database.path), { recursive: true, mode: 0o700 });
  for (const store of Object.values(config.blobs.stores)) if (store.driver === 'fs') await mkdir(store.path, { recursive: true, mode: 0o700 });
}

async function effectiveTokens(config: Config, announce: (text: string) => void): Promise<readonly TokenConfig[]> {
  if (config.auth.tokens.length > 0) return config.auth.tokens;
  return [await ensureAdminToken(config.dataDir, announce)];
}

/**
 * fastify.close() closes the connections idle at that moment; a keep-alive connection
 * whose response finishes afterwards would hold the close for the whole keep-alive
 * timeout (72 s). Closing idle connections again until the server is closed ends each
 * such connection as soon as its response is done, without cutting any response short.
 */
async function closeServer(fastify: FastifyInstance): Promise<void> {
  const sweep = setInterval(() => fastify.server.closeIdleConnections(), 100);
  try {
    await fastify.close();
  } finally {
    clearInterval(sweep);
  }
}

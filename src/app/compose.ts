import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { NativeBackend } from '../backends/native/backend';
import type { Config, TokenConfig } from '../config/schema';
import { TypeRegistry, type TypeSpec } from '../domain/builtin-types';
import { MemoryEventBus } from '../events/memory';
import { errorBody } from '../graphql/errors';
import { buildExecutableSchema } from '../graphql/schema';
import { registerGraphQL } from '../graphql/server';
import { createAuthenticator } from '../http/auth';
import { registerHealthRoutes } from '../http/health';
import { createLogger, type Logger } from '../observability/logger';
import { createMetrics, observeHttpRequests } from '../observability/metrics';
import { SqliteMetadataStore } from '../storage/metadata/sqlite';
import { ensureAdminToken } from './admin-token';

/**
 * The composition root: the one place that names concrete adapters (SQLite, the in-memory
 * bus, the native backend) and wires them to the edges, which only know ports.
 */
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
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const types = new TypeRegistry(config.artifactTypes as readonly TypeSpec[]);
  await prepareDirectories(config);

  const store = new SqliteMetadataStore({ path: config.database.path });
  const bus = new MemoryEventBus();
  let server: FastifyInstance | undefined;
  try {
    await store.migrate();
    const backend = new NativeBackend({
      name: 'native',
      types,
      store,
      bus,
      paging: config.paging,
      quotaDefaults: config.quotas,
      blobPathPrefix: '/v1/artifacts',
    });
    const tokens = await effectiveTokens(config, options.announce ?? ((text) => process.stdout.write(text)));
    const metrics = createMetrics();

    server = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      bodyLimit: config.http.bodyLimitBytes,
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
    await registerHealthRoutes(server, { checks: { metadata: () => store.ping() }, metrics });
    await registerGraphQL(server, {
      schema: buildExecutableSchema(types),
      backend,
      authenticate: createAuthenticator(tokens),
      mode: config.mode,
      limits: config.graphql,
      bodyLimitBytes: config.http.bodyLimitBytes,
      metrics,
      logger,
    });
    server.addHook('onClose', async () => {
      await bus.close();
      await store.close();
    });
    await server.ready();
  } catch (err) {
    if (server) await server.close().catch(() => undefined);
    else await store.close().catch(() => undefined);
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
      closing ??= fastify.close();
      return closing;
    },
  };
  return app;
}

/** `migrate` command: create or upgrade the metadata schema, then exit. */
export async function migrateDatabase(config: Config): Promise<void> {
  await prepareDirectories(config);
  const store = new SqliteMetadataStore({ path: config.database.path });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

async function prepareDirectories(config: Config): Promise<void> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(config.database.path), { recursive: true, mode: 0o700 });
  await mkdir(config.blobs.path, { recursive: true, mode: 0o700 });
}

/** Configured tokens, or the generated admin token when none are configured. */
async function effectiveTokens(config: Config, announce: (text: string) => void): Promise<readonly TokenConfig[]> {
  if (config.auth.tokens.length > 0) return config.auth.tokens;
  return [await ensureAdminToken(config.dataDir, announce)];
}

import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLSchema } from 'graphql';
import type { ArtifactBackend, ImageCachePort, MetadefCatalog } from '../backends/port';
import type { GraphQLLimits, Mode } from '../config/schema';
import { VitrineError } from '../domain/errors';
import type { Authenticate } from '../http/auth';
import type { UrlSigner } from '../http/dataplane/signing';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import type { PageCacheLimits } from '../http/page-cache';
import { createGraphQLContext, type GraphQLContext } from './context';
import { asRequestError, createErrorFormatter, errorBody, rejectAs } from './errors';
import { ResponseCache } from './response-cache';

/**
 * GraphQL over HTTP at /graphql (POST and GET) with Apollo Server on Fastify, hardened:
 * graphql-armor limits depth, cost, aliases and directives during validation (and hides
 * field suggestions in production); the parser stops at `maxTokens`; batches are capped
 * before Apollo sees them; CSRF prevention requires a preflighted request.
 */
export interface GraphQLServerOptions {
  schema: GraphQLSchema;
  backend: ArtifactBackend;
  metadefs?: MetadefCatalog;
  authenticate: Authenticate;
  mode: Mode;
  limits: GraphQLLimits;
  /** Fastify's body limit, for the 413 message. */
  bodyLimitBytes: number;
  metrics: Metrics;
  logger: Logger;
  /** Signs data-plane URLs for createUploadUrl / createDownloadUrl. */
  urlSigner?: UrlSigner;
  /** The image cache the imageCache query and mutations manage. */
  imageCache?: ImageCachePort;
  /** Query results kept until the next write (config graphql.responseCache); off when omitted. */
  responseCache?: PageCacheLimits;
}

export const GRAPHQL_PATH = '/graphql';

export async function registerGraphQL(app: FastifyInstance, options: GraphQLServerOptions): Promise<void> {
  const results = new ResponseCache(options.responseCache ?? { entries: 0, bytes: 0 }, options.schema, options.backend);
  const apollo = createApollo(options, results);
  await apollo.start();
  app.addHook('onClose', async () => apollo.stop());

  const execute = fastifyApolloHandler<GraphQLContext>(apollo, {
    context: async (request) => {
      const resultSlot = results.slotOf(request);
      try {
        const principal = resultSlot?.principal ?? (await options.authenticate(request.headers));
        return createGraphQLContext(principal, options.backend, options.urlSigner, { metadefs: options.metadefs, imageCache: options.imageCache, resultSlot });
      } catch (err) {
        throw err instanceof VitrineError ? asRequestError(err) : err;
      }
    },
  });
  const handler = async (request: Parameters<typeof execute>[0], reply: Parameters<typeof execute>[1]): Promise<string | void> => {
    const hit = await results.lookup(request, () => options.authenticate(request.headers));
    if (hit) {
      options.metrics.graphqlOperations.inc({ type: 'query', outcome: 'success' });
      void reply.type(hit.contentType);
      return hit.body;
    }
    const body = await execute.call(app, request, reply);
    results.keep(request, reply.statusCode, reply.getHeader('content-type'), body);
    return body;
  };

  await app.register(async (scope) => {
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => replyToHttpError(error, request, reply, options.bodyLimitBytes));
    // Apollo would run every operation of a batch; refuse oversized batches before it sees them.
    scope.addHook('preHandler', async (request, reply) => {
      if (Array.isArray(request.body) && request.body.length > options.limits.maxBatch) {
        return reply.code(400).send(errorBody('BATCH_TOO_LARGE', `a batch may hold at most ${options.limits.maxBatch} operations, got ${request.body.length}`));
      }
    });
    scope.route({ method: ['GET', 'POST'], url: GRAPHQL_PATH, handler });
  });
}

/** The armor limits (validation rules and Apollo plugins); the WebSocket transport reuses the same rules. */
export function createArmorProtection(limits: GraphQLLimits, mode: Mode): ReturnType<ApolloArmor['protect']> {
  const production = mode === 'production';
  const armor = new ApolloArmor({
    maxDepth: { n: limits.maxDepth, propagateOnRejection: false, onReject: [rejectAs('QUERY_TOO_DEEP')] },
    costLimit: { maxCost: limits.maxCost, propagateOnRejection: false, onReject: [rejectAs('QUERY_TOO_COSTLY')] },
    maxAliases: { n: limits.maxAliases, propagateOnRejection: false, onReject: [rejectAs('TOO_MANY_ALIASES')] },
    maxDirectives: { n: limits.maxDirectives, propagateOnRejection: false, onReject: [rejectAs('TOO_MANY_DIRECTIVES')] },
    // Armor's token limit turns syntax errors into HTTP 500 under Apollo 5; the parser's own
    // maxTokens (parseOptions below) rejects the same documents as parse errors.
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: production },
  });
  return armor.protect();
}

function createApollo(options: GraphQLServerOptions, results: ResponseCache): ApolloServer<GraphQLContext> {
  const { limits, mode } = options;
  const protection = createArmorProtection(limits, mode);

  return new ApolloServer<GraphQLContext>({
    schema: options.schema,
    introspection: limits.introspection,
    csrfPrevention: true,
    allowBatchedHttpRequests: true,
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules: protection.validationRules,
    includeStacktraceInErrorResponses: false,
    // main.ts owns the signals and closes Fastify, which stops Apollo.
    stopOnTerminationSignals: false,
    logger: options.logger,
    formatError: createErrorFormatter(options.logger),
    plugins: [
      // Vitrine sends no cache hints; Apollo's default cache-control plugin would still wrap
      // every field resolver (about a tenth of a 100-image page's CPU time).
      ApolloServerPluginCacheControlDisabled(),
      ...protection.plugins,
      limits.explorer ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }) : ApolloServerPluginLandingPageDisabled(),
      reportBackendWarnings(),
      countOperations(options.metrics),
      markReusableResults(results),
    ],
  });
}

/** Partial results of a federation: each backend that did not answer becomes an error next to the data. */
function reportBackendWarnings(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart({ contextValue }) {
      // Apollo gives each operation of a batch a shallow copy of the request's context: a
      // list of its own keeps one operation's warnings out of the others' responses.
      contextValue.warnings = [];
      return {
        async willSendResponse({ response, contextValue }) {
          const warnings = contextValue.warnings;
          if (warnings.length === 0 || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          result.errors = [...(result.errors ?? []), ...warnings];
        },
      };
    },
  };
}

/** A result without errors of a document that reads artifacts only may be kept (response-cache.ts). */
function markReusableResults(results: ResponseCache): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, document, errors, response }) {
          const slot = contextValue.resultSlot;
          if (!slot?.keep || !document || errors?.length || contextValue.warnings.length > 0) return;
          if (response.body.kind !== 'single' || response.body.singleResult.errors?.length) return;
          slot.cacheable = results.cacheableDocument(document);
        },
      };
    },
  };
}

function countOperations(metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ operation, errors }) {
          metrics.graphqlOperations.inc({ type: operation?.operation ?? 'unknown', outcome: errors?.length ? 'error' : 'success' });
        },
      };
    },
  };
}

/** Errors Fastify raises before Apollo runs (body too large, malformed JSON) as GraphQL-shaped bodies. */
function replyToHttpError(error: Error & { statusCode?: number }, request: FastifyRequest, reply: FastifyReply, bodyLimitBytes: number): FastifyReply {
  const status = error.statusCode ?? 500;
  if (status === 413) return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', `the request body is larger than ${bodyLimitBytes} bytes`));
  if (status >= 400 && status < 500) return reply.code(status).send(errorBody('BAD_REQUEST', error.message));
  request.log.error({ err: error }, 'unexpected error in the GraphQL route');
  return reply.code(500).send(errorBody('INTERNAL', 'Unexpected error'));
}

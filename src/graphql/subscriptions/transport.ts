import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { execute, getOperationAST, getVariableValues, GraphQLError, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { handleProtocols, makeServer, type Context } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ArtifactBackend } from '../../backends/port';
import type { GraphQLLimits, Mode, SubscriptionLimits } from '../../config/schema';
import type { Principal } from '../../domain/policy';
import type { EventBus, EventLog } from '../../events/port';
import type { Authenticate } from '../../http/auth';
import type { Logger } from '../../observability/logger';
import { createGraphQLContext } from '../context';
import { createErrorFormatter } from '../errors';
import { createArmorProtection, GRAPHQL_PATH } from '../server';
import { CLOSE } from './close-codes';
import { headersFromConnectionParams } from './connection-params';
import type { ConnectionHandle, SubscriptionContext } from './context';
import { parseAndValidate, subscribeWithEventContexts, type DocumentRules } from './execution';

/**
 * GraphQL over WebSocket (graphql-transport-ws, via graphql-ws's protocol core) on
 * Fastify's own HTTP server, at the same path as GraphQL over HTTP. `ws` runs in noServer
 * mode: this module answers the upgrade, so Apollo keeps GET and POST /graphql.
 */
export interface SubscriptionServerOptions {
  schema: GraphQLSchema;
  backend: ArtifactBackend;
  bus: EventBus;
  log: EventLog;
  authenticate: Authenticate;
  mode: Mode;
  graphqlLimits: GraphQLLimits;
  limits: SubscriptionLimits;
  /** Largest message accepted from a client. */
  maxMessageBytes: number;
  logger: Logger;
}

interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  principal?: Principal;
  connection: ConnectionHandle;
}

/** How long shutdown waits for clients to answer the close handshake before cutting them off. */
const CLOSE_GRACE_MS = 3_000;

export function registerSubscriptions(app: FastifyInstance, options: SubscriptionServerOptions): void {
  const { limits, logger } = options;
  const wss = new WebSocketServer({ noServer: true, handleProtocols, maxPayload: options.maxMessageBytes });
  const protocol = createProtocolServer(options);
  let shuttingDown = false;

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== GRAPHQL_PATH || shuttingDown) {
      socket.end(`HTTP/1.1 ${shuttingDown ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => serve(ws, request));
  });

  function serve(socket: WebSocket, request: IncomingMessage): void {
    const connection: ConnectionHandle = {
      congested: () => socket.bufferedAmount > limits.maxBufferedBytes,
      closeTooSlow: () => socket.close(CLOSE.SLOW_CONSUMER.code, CLOSE.SLOW_CONSUMER.reason),
    };
    socket.once('error', (err) => {
      logger.warn({ err }, 'WebSocket error; closing the connection');
      socket.terminate();
    });
    const stopKeepAlive = keepAlive(socket, limits.keepAliveMs);
    const closed = protocol.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', async (data) => {
            // A client that floods requests without reading the answers is cut off before its replies pile up.
            if (connection.congested()) return connection.closeTooSlow();
            try {
              await handle(String(data));
            } catch (err) {
              logger.error({ err }, 'unexpected error handling a WebSocket message');
              socket.close(4500, 'Internal server error');
            }
          }),
      },
      { socket, request, connection } satisfies Extra,
    );
    socket.once('close', (code, reason) => {
      stopKeepAlive();
      closed(code, reason.toString()).catch((err: unknown) => logger.error({ err }, 'error while ending the subscriptions of a closed socket'));
    });
  }

  // preClose runs before Fastify closes the HTTP server, which would otherwise wait for these sockets.
  app.addHook('preClose', async () => {
    shuttingDown = true;
    const sockets = [...wss.clients];
    await Promise.all(sockets.map((socket) => closeGoingAway(socket)));
    wss.close();
  });
}

function createProtocolServer(options: SubscriptionServerOptions) {
  const { schema, limits } = options;
  const protection = createArmorProtection(options.graphqlLimits, options.mode);
  const rules: DocumentRules = { maxTokens: options.graphqlLimits.maxTokens, armor: protection.validationRules, hideSuggestions: options.mode === 'production' };
  const format = createErrorFormatter(options.logger);
  const formatAll = (errors: readonly GraphQLError[]) => errors.map((e) => format(e.toJSON(), e));

  return makeServer<Record<string, unknown>, Extra>({
    schema,
    connectionInitWaitTimeout: limits.connectionInitWaitTimeoutMs || Infinity,
    onConnect: (ctx) => {
      try {
        ctx.extra.principal = options.authenticate(headersFromConnectionParams(ctx.connectionParams));
        return true;
      } catch {
        return false;
      }
    },
    onSubscribe: (ctx, _id, payload) => {
      if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
        return [coded(`a connection may run at most ${limits.maxSubscriptionsPerConnection} subscriptions at once`, 'TOO_MANY_SUBSCRIPTIONS')];
      }
      const document = parseAndValidate(schema, payload.query, rules);
      if (Array.isArray(document)) return document;
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [coded('the operation to run cannot be determined: name one of the document\'s operations in operationName', 'OPERATION_RESOLUTION_FAILURE')];
      const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}, { maxErrors: 10 });
      if (variables.errors) return variables.errors.map((e) => coded(e.message, 'BAD_USER_INPUT'));
      return {
        schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue: subscriptionContext(ctx, options),
      };
    },
    subscribe: subscribeWithEventContexts,
    execute: (args) => execute(args) as Promise<ExecutionResult>,
    onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: formatAll(result.errors) } : undefined),
    onError: (_ctx, _id, _payload, errors) => formatAll(errors),
  });
}

function subscriptionContext(ctx: Context<Record<string, unknown>, Extra>, options: SubscriptionServerOptions): SubscriptionContext {
  const { principal, connection } = ctx.extra;
  // onConnect set the principal: graphql-ws runs onSubscribe only on acknowledged connections.
  if (!principal) throw new Error('subscribe on a connection without a principal');
  return {
    ...createGraphQLContext(principal, options.backend),
    feed: { bus: options.bus, log: options.log, queueLimit: options.limits.queueLimit },
    connection,
  };
}

function coded(message: string, code: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** Pings every `intervalMs`; a socket that has not answered by the next ping is dead. */
function keepAlive(socket: WebSocket, intervalMs: number): () => void {
  if (intervalMs <= 0) return () => undefined;
  let alive = true;
  socket.on('pong', () => (alive = true));
  const timer = setInterval(() => {
    if (!alive) return socket.terminate();
    alive = false;
    socket.ping();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function closeGoingAway(socket: WebSocket): Promise<void> {
  if (socket.readyState === socket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const cutOff = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    socket.once('close', () => {
      clearTimeout(cutOff);
      resolve();
    });
    socket.close(CLOSE.GOING_AWAY.code, CLOSE.GOING_AWAY.reason);
  });
}

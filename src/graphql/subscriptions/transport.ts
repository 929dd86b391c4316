import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { execute, getOperationAST, getVariableValues, GraphQLError, type DocumentNode, type GraphQLFormattedError, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { handleProtocols, makeServer, type Context, type SubscribePayload } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ArtifactBackend } from '../../backends/port';
import type { GraphQLLimits, Mode, SubscriptionLimits } from '../../config/schema';
import type { Principal } from '../../domain/policy';
import type { EventBus, EventLog } from '../../events/port';
import type { Authenticate } from '../../http/auth';
import type { Logger } from '../../observability/logger';
import { createLoaders, type Loaders } from '../context';
import { createErrorFormatter } from '../errors';
import { VitrineError } from '../../domain/errors';
import { createArmorProtection, GRAPHQL_PATH } from '../server';
import { CLOSE } from './close-codes';
import { headersFromConnectionParams } from './connection-params';
import type { EventFeed, OperationRef, SocketHandle, SubscriptionContext } from './context';
import { cachedParseAndValidate, eventContext, subscribeWithEventContexts, type DocumentRules } from './execution';
import { ArtifactEventFanout, type RenderEvent } from './fanout';
import { EventSequencer } from './sequencer';

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
  principal?: Principal;
  connection: SocketConnection;
}

const TEXT = Object.freeze({ binary: false });

/** How long shutdown waits for clients to answer the close handshake before cutting them off. */
const CLOSE_GRACE_MS = 3_000;

export function registerSubscriptions(app: FastifyInstance, options: SubscriptionServerOptions): void {
  const { limits, logger } = options;
  const wss = new WebSocketServer({ noServer: true, handleProtocols, maxPayload: options.maxMessageBytes });
  const events = new EventSequencer({
    bus: options.bus,
    log: options.log,
    onError: (err) => logger.error({ err }, 'reading the event log to fill a gap in the live events failed; retrying'),
    onLost: (afterSeq, oldest) => logger.warn({ afterSeq, oldest }, 'events were pruned from the log before this instance delivered them; closing subscribers so they resume from their cursors'),
  });
  // Started at once, so that it knows where the log ends long before the first subscriber.
  events.start().catch((err: unknown) => logger.error({ err }, 'the event sequencer could not read the event log; the first subscriber retries'));
  const fanout = new ArtifactEventFanout({ backend: options.backend, log: options.log, events, queueLimit: limits.queueLimit, render: createRenderer(options) });
  const feed: EventFeed = { bus: options.bus, log: options.log, queueLimit: limits.queueLimit, events, fanout };
  const protocol = createProtocolServer(options, feed);
  const heartbeat = new Heartbeat(wss, limits.keepAliveMs);
  let shuttingDown = false;

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== GRAPHQL_PATH || shuttingDown) {
      socket.end(`HTTP/1.1 ${shuttingDown ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, serve);
  });

  function serve(socket: WebSocket): void {
    const connection = new SocketConnection(socket, limits.maxBufferedBytes);
    heartbeat.watch(socket);
    socket.once('error', (err) => {
      logger.warn({ err }, 'WebSocket error; closing the connection');
      socket.terminate();
    });
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
      { connection } satisfies Extra,
    );
    socket.once('close', (code, reason) => {
      closed(code, reason.toString()).catch((err: unknown) => logger.error({ err }, 'error while ending the subscriptions of a closed socket'));
    });
  }

  // preClose runs before Fastify closes the HTTP server, which would otherwise wait for these sockets.
  app.addHook('preClose', async () => {
    shuttingDown = true;
    heartbeat.stop();
    const sockets = [...wss.clients];
    await Promise.all(sockets.map((socket) => closeGoingAway(socket)));
    fanout.close();
    events.stop();
    wss.close();
  });
}

/** The connection handle of one socket; methods on the prototype, so an idle socket costs no closures. */
class SocketConnection implements SocketHandle {
  constructor(
    private readonly socket: WebSocket,
    private readonly maxBufferedBytes: number,
  ) {}

  congested(): boolean {
    return this.socket.bufferedAmount > this.maxBufferedBytes;
  }

  closeTooSlow(): void {
    this.close(CLOSE.SLOW_CONSUMER);
  }

  close(how: { code: number; reason: string }): void {
    this.socket.close(how.code, how.reason);
  }

  send(frame: string | Buffer, sent?: (err?: Error) => void): void {
    if (this.socket.readyState !== this.socket.OPEN) return sent?.();
    // A text frame either way: graphql-transport-ws messages are text.
    this.socket.send(frame, TEXT, sent);
  }
}

/** What graphql-ws would send as a `next` payload, rendered once for a group of identical subscribers. */
function createRenderer(options: SubscriptionServerOptions): RenderEvent {
  const format = createErrorFormatter(options.logger);
  return async (target, payload) => {
    const result = (await execute({
      schema: options.schema,
      document: target.document,
      operationName: target.operationName,
      variableValues: target.variables,
      rootValue: payload,
      contextValue: eventContext(target.principal, options.backend, payload),
    })) as ExecutionResult;
    return JSON.stringify(result.errors ? { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) } : result);
  };
}

function createProtocolServer(options: SubscriptionServerOptions, feed: EventFeed) {
  const { schema, limits } = options;
  const protection = createArmorProtection(options.graphqlLimits, options.mode);
  const rules: DocumentRules = { maxTokens: options.graphqlLimits.maxTokens, armor: protection.validationRules, hideSuggestions: options.mode === 'production' };
  const documentOf = cachedParseAndValidate(schema, rules);
  const format = createErrorFormatter(options.logger);
  const formatAll = (errors: readonly GraphQLError[]) => errors.map((e) => format(e.toJSON(), e));

  return makeServer<Record<string, unknown>, Extra>({
    schema,
    connectionInitWaitTimeout: limits.connectionInitWaitTimeoutMs || Infinity,
    onConnect: async (ctx) => {
      try {
        ctx.extra.principal = await options.authenticate(headersFromConnectionParams(ctx.connectionParams));
        return true;
      } catch (err) {
        // graphql-ws answers `false` with 4403; a token that could not be checked is not forbidden.
        if (err instanceof VitrineError && err.code === 'UNAVAILABLE') ctx.extra.connection.close(CLOSE.TRY_AGAIN_LATER);
        return false;
      }
    },
    onSubscribe: (ctx, id, payload) => {
      if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
        return [coded(`a connection may run at most ${limits.maxSubscriptionsPerConnection} subscriptions at once`, 'TOO_MANY_SUBSCRIPTIONS')];
      }
      const document = documentOf(payload.query);
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
        contextValue: subscriptionContext(ctx, options, feed, operationRef(id, payload, document)),
      };
    },
    subscribe: subscribeWithEventContexts,
    execute: (args) => execute(args) as Promise<ExecutionResult>,
    onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: formatAll(result.errors) } : undefined),
    onError: (_ctx, _id, _payload, errors) => formatAll(errors),
  });
}

function operationRef(id: string, payload: SubscribePayload, document: DocumentNode): OperationRef {
  return { id, query: payload.query, operationName: payload.operationName, variables: payload.variables, document };
}

function subscriptionContext(ctx: Context<Record<string, unknown>, Extra>, options: SubscriptionServerOptions, feed: EventFeed, operation: OperationRef): SubscriptionContext {
  const { principal, connection } = ctx.extra;
  // onConnect set the principal: graphql-ws runs onSubscribe only on acknowledged connections.
  if (!principal) throw new Error('subscribe on a connection without a principal');
  return new OperationContext(principal, options.backend, feed, connection, operation);
}

/**
 * The context of one operation on a socket. graphql-ws keeps it for as long as a
 * subscription runs, so its loaders are made on first use: an idle `artifactEvents`
 * subscription never needs them (each event gets fresh ones), a query does.
 */
class OperationContext implements SubscriptionContext {
  private made: Loaders | undefined;

  constructor(
    readonly principal: Principal,
    readonly backend: ArtifactBackend,
    readonly feed: EventFeed,
    readonly connection: SocketHandle,
    readonly operation: OperationRef,
  ) {}

  get loaders(): Loaders {
    return (this.made ??= createLoaders(this.principal, this.backend));
  }

  /** Federation warnings of listings are not reported over WebSocket: each use gets a throwaway list. */
  get warnings(): GraphQLFormattedError[] {
    return [];
  }
}

function coded(message: string, code: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/**
 * Pings every socket every `intervalMs`; a socket that has not answered by its next ping is
 * dead. One timer for the whole server rather than one per socket, spread over the interval
 * in slices (each socket belongs to one), so that ten thousand pings never go out in one
 * burst that would hold up an event on its way to the same sockets.
 */
const HEARTBEAT_SLICES = 16;
const SLICE = Symbol('heartbeat slice');
type Watched = WebSocket & { [SLICE]?: number };

class Heartbeat {
  private readonly unanswered = new WeakSet<WebSocket>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly answered: (this: WebSocket) => void;
  private next = 0;

  constructor(wss: WebSocketServer, intervalMs: number) {
    const unanswered = this.unanswered;
    this.answered = function answered(this: WebSocket) {
      unanswered.delete(this);
    };
    if (intervalMs <= 0) return;
    let tick = 0;
    this.timer = setInterval(() => {
      const slice = tick++ % HEARTBEAT_SLICES;
      for (const socket of wss.clients as Set<Watched>) {
        if (socket[SLICE] !== slice) continue;
        if (unanswered.has(socket)) {
          socket.terminate();
          continue;
        }
        unanswered.add(socket);
        socket.ping();
      }
    }, Math.max(1, Math.floor(intervalMs / HEARTBEAT_SLICES)));
    this.timer.unref();
  }

  watch(socket: Watched): void {
    if (!this.timer) return;
    socket[SLICE] = this.next++ % HEARTBEAT_SLICES;
    socket.on('pong', this.answered);
  }

  stop(): void {
    clearInterval(this.timer);
  }
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

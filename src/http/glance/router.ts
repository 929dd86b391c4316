import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { VitrineError } from '../../domain/errors';
import { isUuid } from '../../domain/ids';
import type { Principal } from '../../domain/policy';
import type { Authenticate } from '../auth';
import { errorFormat, fromVitrineError, glanceError, GlanceHttpError, renderError } from './errors';

/**
 * What every facade route shares: Glance's request ids, Glance-shaped errors, 405 with
 * `Allow` on every known path, raw request bodies (each route judges its media type
 * before reading), and the caller resolved from the same tokens as GraphQL.
 */
export type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
const METHODS: readonly Method[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export const REQUEST_ID_HEADER = 'x-openstack-request-id';

/** Glance adopts a caller's `req-<uuid>` (or bare uuid) request id, else mints one. */
function adoptOrMintRequestId(request: FastifyRequest): string {
  const header = request.headers[REQUEST_ID_HEADER];
  const given = (Array.isArray(header) ? header[0] : header)?.trim();
  if (given) {
    const id = given.startsWith('req-') ? given.slice(4) : given;
    if (isUuid(id)) return `req-${id}`;
  }
  return `req-${randomUUID()}`;
}

export interface ScopeOptions {
  /** Resolves the caller; omitted for the unauthenticated version documents. */
  authenticate?: Authenticate;
}

const principals = new WeakMap<FastifyRequest, Principal>();
const requestIds = new WeakMap<FastifyRequest, string>();

/** The request id this request answers with (a task records it: Tempest compares the two). */
export function requestIdOf(request: FastifyRequest): string {
  const id = requestIds.get(request);
  if (!id) throw new Error('no request id: the route is outside a facade scope');
  return id;
}

/** The caller of a request in an authenticated scope. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (!principal) throw new Error('no principal: the route is outside an authenticated facade scope');
  return principal;
}

export function setUpScope(scope: FastifyInstance, options: ScopeOptions): void {
  // Bodies stay streams; JSON routes read them with a limit, uploads stream them on.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  scope.addHook('onRequest', async (request, reply) => {
    const requestId = adoptOrMintRequestId(request);
    requestIds.set(request, requestId);
    reply.header(REQUEST_ID_HEADER, requestId);
    if (options.authenticate) principals.set(request, await options.authenticate(request.headers));
  });
  scope.setErrorHandler((error, request, reply) => sendError(request, reply, asGlanceError(error, request)));
}

/** Registers `handlers` on `url`, and 405 with `Allow` for every other method (Glance's RejectMethodController). */
export function resource(scope: FastifyInstance, url: string, handlers: Partial<Record<Method, Handler>>): void {
  const allowed = METHODS.filter((m) => handlers[m]);
  for (const method of allowed) scope.route({ method: method as HTTPMethods, url, exposeHeadRoute: false, handler: handlers[method]! });
  const rejected = METHODS.filter((m) => !handlers[m]);
  if (rejected.length === 0) return;
  scope.route({
    method: rejected as HTTPMethods[],
    url,
    exposeHeadRoute: false,
    handler: async (request) => {
      throw glanceError(405, `The method ${request.method} is not allowed for this resource.`, { Allow: allowed.join(', ') });
    },
  });
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: GlanceHttpError): FastifyReply {
  const accept = request.headers.accept;
  const { contentType, body } = renderError(errorFormat(Array.isArray(accept) ? accept.join(',') : accept), error.status, error.message, error.placement);
  // An upload refused before its body was read: drop the rest so the client sees the answer.
  if (!request.raw.complete) {
    reply.header('connection', 'close');
    request.raw.resume();
  }
  // Headers of a download that failed half-way do not describe this body.
  reply.removeHeader('content-length');
  reply.removeHeader('content-md5');
  return reply.code(error.status).headers(error.headers).type(contentType).send(request.method === 'HEAD' ? '' : body);
}

const INTERNAL_MESSAGE = 'The server has either erred or is incapable of performing the requested operation.';

function asGlanceError(error: unknown, request: FastifyRequest): GlanceHttpError {
  if (error instanceof GlanceHttpError) return error;
  if (error instanceof VitrineError) {
    if (error.status < 500) return fromVitrineError(error);
    request.log.error({ err: error }, 'Glance facade: backend error');
    return glanceError(error.status, error.status === 503 ? 'The server is currently unavailable. Please retry your request.' : INTERNAL_MESSAGE);
  }
  const status = (error as { statusCode?: number }).statusCode;
  // Fastify's own request errors (e.g. a client that aborted mid-body) are the caller's.
  if (status !== undefined && status >= 400 && status < 500) return glanceError(status, (error as Error).message);
  request.log.error({ err: error }, 'Glance facade: unexpected error');
  return glanceError(500, INTERNAL_MESSAGE);
}

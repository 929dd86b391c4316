import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';

/**
 * Reading what is left of a refused request body before answering. An upload refused
 * early (404, 409, 413, 415, 401...) is answered while the client may still be sending: a
 * client that writes its whole body before it reads (glanceclient's chunked uploads, most
 * HTTP libraries) then meets a closed connection and reports a broken pipe instead of the
 * answer. So the rest of the body is read and thrown away first, up to a bound; a body
 * read to its end leaves the connection usable for the next request.
 */
export interface DrainLimits {
  /** Most bytes discarded; past them the answer goes out and the connection closes. */
  maxBytes: number;
  /** Longest silence from a client that has not finished its body. */
  idleMs: number;
}

/** The bound of both upload edges (data plane and Glance facade). */
export const REFUSED_BODY_LIMITS: DrainLimits = Object.freeze({ maxBytes: 64 * 1024 * 1024, idleMs: 10_000 });

/**
 * Discards the unread rest of `body`. Resolves true once the body was read to its end
 * (the connection can carry another request), false when it was not: the bound was passed,
 * the client fell silent, or the stream broke or was destroyed. Past the bound the body
 * keeps flowing into the void so the answer can still be written before the close.
 *
 * A failed upload may have read part of the body already: only what is left is read, and
 * any pipe it left attached is detached first so the discarded bytes go nowhere.
 */
export function discardBody(body: IncomingMessage, limits: DrainLimits = REFUSED_BODY_LIMITS): Promise<boolean> {
  if (body.complete) return Promise.resolve(true);
  if (body.destroyed || body.socket?.destroyed !== false) return Promise.resolve(false);
  body.unpipe();
  return new Promise((resolve) => {
    let seen = 0;
    let idle: NodeJS.Timeout | undefined;
    const settle = (drained: boolean) => {
      clearTimeout(idle);
      body.off('data', count);
      body.off('end', ended);
      body.off('error', broken);
      body.off('close', broken);
      resolve(drained);
    };
    const restartIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => settle(false), limits.idleMs);
    };
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > limits.maxBytes) settle(false);
      else restartIdle();
    };
    const ended = () => settle(true);
    const broken = () => settle(body.complete);
    body.on('data', count);
    body.once('end', ended);
    body.once('error', broken);
    body.once('close', broken);
    restartIdle();
    body.resume();
  });
}

/**
 * For an error answer to a request whose body was not (fully) read: discards the rest of
 * the body, and asks for the connection to close when that could not be done.
 */
export async function discardBeforeAnswer(request: FastifyRequest, reply: FastifyReply, limits: DrainLimits = REFUSED_BODY_LIMITS): Promise<void> {
  if (!(await discardBody(request.raw, limits))) reply.header('connection', 'close');
}

import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { badRequest, glanceError } from './errors';

/**
 * Request bodies on the facade arrive as raw streams (see router.ts): the media type is
 * judged by each route first (PATCH's 415 before anything is read, uploads streamed),
 * then JSON routes read their body here with the configured size limit.
 */
export function rawBody(request: FastifyRequest): Readable | undefined {
  return request.body as Readable | undefined;
}

export async function readBody(request: FastifyRequest, limit: number): Promise<Buffer> {
  const stream = rawBody(request);
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buf.length;
    if (size > limit) {
      stream.destroy();
      throw glanceError(413, `The request body is larger than ${limit} bytes.`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** The JSON body, or `undefined` for an empty one; 400 "Malformed JSON" as Glance. */
export async function readJson(request: FastifyRequest, limit: number): Promise<unknown> {
  const text = (await readBody(request, limit)).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('Malformed JSON in request body.');
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The media type without parameters, lower-cased (webob's request.content_type). */
export function mediaType(request: FastifyRequest): string {
  return String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

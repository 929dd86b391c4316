import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BlobTarget, UploadMeta } from '../../backends/port';
import { VitrineError } from '../../domain/errors';
import { discardBeforeAnswer } from '../drain';
import { mediaType } from './body';
import { loadImage, param, type FacadeContext } from './context';
import { badRequest, conflict, forbidden, glanceError } from './errors';
import { principalOf, resource } from './router';

/**
 * Image data (Glance image_data.py): `PUT /v2/images/{id}/file` streams the body into the
 * image's `image` blob through the port (hashed on the fly: md5 → checksum, sha512 →
 * os_hash_value); `GET` streams it back with Glance's headers and its Range rules. The
 * image lifecycle (queued → saving → active, back to queued on failure) is the backend's.
 */
const IMAGE_BLOB = 'image';

export function registerDataRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  resource(scope, '/images/:imageId/file', {
    PUT: (request, reply) => upload(ctx, request, reply),
    GET: (request, reply) => download(ctx, request, reply),
  });
}

/**
 * A refusal (409 for an active image, 404, 415 ...) comes before the body is read; the rest
 * of the body is read first, as Glance does, so that glanceclient, still streaming its
 * chunks, gets the answer instead of a broken pipe.
 */
async function upload(ctx: FacadeContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  try {
    return await receive(ctx, request, reply);
  } catch (err) {
    await discardBeforeAnswer(request, reply);
    throw err;
  }
}

async function receive(ctx: FacadeContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const type = mediaType(request);
  if (type !== 'application/octet-stream') throw glanceError(415, `The request media type ${type || 'None'} is not supported by this server.`);
  const meta = uploadMeta(request);
  const principal = principalOf(request);
  const image = await loadImage(ctx, principal, param(request, 'imageId'));
  const target: BlobTarget = { artifactId: image.id, field: IMAGE_BLOB, key: '' };
  const aborted = new AbortController();
  // A client that goes away mid-upload ends it; the backend puts the image back to queued.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  try {
    await ctx.backend.uploadBlob(principal, target, request.raw, meta, aborted.signal);
  } catch (err) {
    if (!(err instanceof VitrineError)) throw err;
    switch (err.code) {
      case 'TRANSITION_FORBIDDEN':
      case 'BLOB_BUSY':
        throw conflict(`Image status transition from ${image.status} to saving is not allowed`);
      case 'ACTIVATION_INCOMPLETE':
        throw badRequest('Properties disk_format, container_format must be set prior to saving data.');
      default:
        throw err;
    }
  }
  return reply.code(204).send();
}

export function uploadMeta(request: FastifyRequest): UploadMeta {
  const integer = (name: string, what: string): number | undefined => {
    const raw = request.headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) return undefined;
    if (!/^\s*\d+\s*$/.test(value)) throw badRequest(`${what} must be a non-negative integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  return {
    contentType: 'application/octet-stream',
    contentLength: integer('content-length', 'Content-Length'),
    // glanceclient and the SDK announce the size; a mismatch is a 400 (SIZE_MISMATCH).
    expectedSize: integer('x-openstack-image-size', 'x-openstack-image-size'),
  };
}

async function download(ctx: FacadeContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const principal = principalOf(request);
  const image = await loadImage(ctx, principal, param(request, 'imageId'));
  let content;
  try {
    content = await ctx.backend.openBlob(principal, { artifactId: image.id, field: IMAGE_BLOB, key: '' });
  } catch (err) {
    if (!(err instanceof VitrineError)) throw err;
    // No data yet (queued, or saving): Glance answers 204 with an empty body.
    if (err.code === 'NOT_FOUND' || err.code === 'BLOB_NOT_READY') return reply.code(204).send();
    if (err.code === 'FORBIDDEN') throw forbidden('The requested image has been deactivated. Image data download is forbidden.');
    throw err;
  }
  if (content.kind === 'external' && content.open) {
    // Only at external locations (Glance's http store): streamed from the first one that
    // answers, whole (ranges are not forwarded), the checksum header only when known.
    const source = await content.open();
    reply.code(200).header('content-type', 'application/octet-stream');
    const checksum = content.artifact.fields.checksum;
    if (typeof checksum === 'string') reply.header('content-md5', checksum);
    if (source.size !== null) reply.header('content-length', source.size);
    return reply.send(source.body);
  }
  if (content.kind !== 'stored') return reply.code(204).send();
  const { size, md5 } = content.blob;
  const range = glanceRange(request.headers.range, size);
  reply.header('content-type', 'application/octet-stream');
  // Glance sends the hex checksum here (not RFC 1864's base64); clients compare it as hex.
  if (md5) reply.header('content-md5', md5);
  if (range === 'full') return reply.code(200).header('content-length', size).send(await content.read());
  return reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(await content.read(range));
}

/**
 * Glance's Range rules (webob): one `bytes=a-b` or suffix `bytes=-n` range; a list → 400;
 * anything unparseable or starting past the end → 416.
 */
export function glanceRange(header: string | string[] | undefined, size: number): 'full' | { start: number; end: number } {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined) return 'full';
  if (value.includes(',')) throw badRequest('Multiple ranges are not supported.');
  const unsatisfiable = glanceError(416, `Requested range not satisfiable: the image has ${size} bytes.`, { 'content-range': `bytes */${size}` });
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) throw unsatisfiable;
  return { start, end };
}

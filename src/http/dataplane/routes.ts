import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { ArtifactBackend, BlobContent, BlobTarget, UploadMeta } from '../../backends/port';
import { ERRORS, fail, VitrineError } from '../../domain/errors';
import type { Principal } from '../../domain/policy';
import type { Authenticate } from '../auth';
import { discardBeforeAnswer } from '../drain';
import { evaluatePreconditions, rangeApplies, type Validators } from './conditional';
import { decideRange } from './range';
import { SIGNATURE_PARAMS, type SignedMethod, type UrlSigner } from './signing';

/**
 * The data plane: blob bytes over plain HTTP, beside GraphQL on the same server.
 *   PUT|GET|HEAD|DELETE {prefix}/{artifactId}/blobs/{field}[/{key...}]
 * Bodies stream in both directions (a raw parser registered only in this plugin hands the
 * request stream to the backend untouched); limits and quotas are the backend's, so
 * Fastify's body limit does not apply here. Auth: the same tokens as GraphQL, or a signed URL.
 */
export interface DataPlaneOptions {
  backend: ArtifactBackend;
  authenticate: Authenticate;
  signer: UrlSigner;
  /** e.g. /v1/artifacts */
  prefix: string;
}

interface BlobParams {
  id: string;
  field: string;
  '*'?: string;
}

type BlobRequest = FastifyRequest<{ Params: BlobParams; Querystring: Record<string, string> }>;

/** Larger than any blob: the backend enforces the real limits while streaming. */
const UNLIMITED_BODY = Number.MAX_SAFE_INTEGER;

export async function registerDataPlane(app: FastifyInstance, options: DataPlaneOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // Leave the body unread: the upload handler streams request.raw itself.
    scope.addContentTypeParser('*', { bodyLimit: UNLIMITED_BODY }, (_request, _payload, done) => done(null, undefined));
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => replyWithError(error, request, reply));

    // glance-direct staging of an image's bytes, for a later importImage (token auth only).
    scope.route<{ Params: { id: string } }>({ method: 'PUT', url: `${options.prefix}/:id/stage`, bodyLimit: UNLIMITED_BODY, handler: (req, reply) => stage(options, req, reply) });

    const paths = [`${options.prefix}/:id/blobs/:field`, `${options.prefix}/:id/blobs/:field/*`];
    for (const url of paths) {
      scope.route<{ Params: BlobParams; Querystring: Record<string, string> }>({ method: 'PUT', url, bodyLimit: UNLIMITED_BODY, handler: (req, reply) => upload(options, req, reply) });
      scope.route<{ Params: BlobParams; Querystring: Record<string, string> }>({ method: 'GET', url, exposeHeadRoute: false, handler: (req, reply) => download(options, req, reply, false) });
      scope.route<{ Params: BlobParams; Querystring: Record<string, string> }>({ method: 'HEAD', url, handler: (req, reply) => download(options, req, reply, true) });
      scope.route<{ Params: BlobParams; Querystring: Record<string, string> }>({
        method: 'DELETE',
        url,
        handler: async (req, reply) => {
          await options.backend.deleteBlob(await authenticated(options, req), targetOf(req));
          return reply.code(204).send();
        },
      });
    }
  });
}

function targetOf(request: BlobRequest): BlobTarget {
  return { artifactId: request.params.id, field: request.params.field, key: request.params['*'] ?? '' };
}

/** A signed URL's principal when the query carries a signature, the token's otherwise. */
async function principalFor(options: DataPlaneOptions, request: BlobRequest, method: SignedMethod): Promise<Principal> {
  if (isSigned(request)) {
    const t = targetOf(request);
    return options.signer.verify({ method, artifactId: t.artifactId, field: t.field, key: t.key }, request.query);
  }
  return options.authenticate(request.headers);
}

async function authenticated(options: DataPlaneOptions, request: BlobRequest): Promise<Principal> {
  if (isSigned(request)) fail('SIGNATURE_INVALID', 'signed URLs are for PUT and GET only');
  return options.authenticate(request.headers);
}

/** Any signature parameter makes it a signed request, judged by its signature alone (never falling back to a token). */
function isSigned(request: BlobRequest): boolean {
  return SIGNATURE_PARAMS.some((p) => request.query[p] !== undefined);
}

// ---- upload ----------------------------------------------------------------------------

async function upload(options: DataPlaneOptions, request: BlobRequest, reply: FastifyReply): Promise<FastifyReply> {
  const principal = await principalFor(options, request, 'PUT');
  const meta = uploadMeta(request.headers);
  const aborted = new AbortController();
  // A client that goes away mid-upload ends the upload (its bytes and reservation go).
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  const result = await options.backend.uploadBlob(principal, targetOf(request), request.raw, meta, aborted.signal);
  const { blob } = result;
  return reply
    .code(200)
    .header('etag', `"${blob.md5}"`)
    .send({
      blob: { field: blob.field, key: blob.key || null, status: blob.status, size: blob.size, md5: blob.md5, sha512: blob.sha512, contentType: blob.contentType, url: blob.downloadUrl },
      artifact: { id: result.artifact.id, status: result.artifact.status, revision: result.artifact.revision },
    });
}

async function stage(options: DataPlaneOptions, request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<FastifyReply> {
  const principal = await options.authenticate(request.headers);
  const meta = uploadMeta(request.headers);
  const aborted = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  const image = await options.backend.stageImage(principal, request.params.id, request.raw, meta, aborted.signal);
  return reply.code(200).send({ artifact: { id: image.id, status: image.status, revision: image.revision, size: image.fields.size ?? null, checksum: image.fields.checksum ?? null } });
}

function uploadMeta(headers: IncomingHttpHeaders): UploadMeta {
  const contentLength = integerHeader(headers, 'content-length');
  if (contentLength === undefined && headers['transfer-encoding'] === undefined) {
    fail('BAD_INPUT', 'send the bytes as the request body, with Content-Length or chunked transfer encoding');
  }
  const sizes = ['x-expected-size', 'x-openstack-image-size'].map((h) => integerHeader(headers, h)).filter((n): n is number => n !== undefined);
  if (sizes.length === 2 && sizes[0] !== sizes[1]) fail('SIZE_MISMATCH', `X-Expected-Size (${sizes[0]}) and x-openstack-image-size (${sizes[1]}) differ`);
  const md5s = [contentMd5(headers), hexHeader(headers, 'x-expected-md5')].filter((s): s is string => s !== undefined);
  if (md5s.length === 2 && md5s[0] !== md5s[1]) fail('CHECKSUM_MISMATCH', 'Content-MD5 and X-Expected-MD5 announce different md5 digests');
  return {
    contentType: stringHeader(headers, 'content-type') ?? 'application/octet-stream',
    contentLength,
    expectedSize: sizes[0],
    expectedMd5: md5s[0],
    expectedSha512: hexHeader(headers, 'x-expected-sha512'),
  };
}

/** RFC 1864: base64 of the 16 digest bytes; returned as hex. */
function contentMd5(headers: IncomingHttpHeaders): string | undefined {
  const value = stringHeader(headers, 'content-md5');
  if (value === undefined) return undefined;
  const bytes = /^[A-Za-z0-9+/]{22}==$/.test(value.trim()) ? Buffer.from(value.trim(), 'base64') : null;
  if (!bytes || bytes.length !== 16) fail('BAD_INPUT', 'Content-MD5 must be the base64 of a 16-byte md5 digest (RFC 1864)');
  return bytes.toString('hex');
}

function integerHeader(headers: IncomingHttpHeaders, name: string): number | undefined {
  const value = stringHeader(headers, name);
  if (value === undefined) return undefined;
  if (!/^\d{1,16}$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) fail('BAD_INPUT', `${name} must be a non-negative integer, got ${JSON.stringify(value.slice(0, 40))}`);
  return Number(value);
}

function hexHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  return stringHeader(headers, name)?.trim().toLowerCase();
}

function stringHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// ---- download --------------------------------------------------------------------------

async function download(options: DataPlaneOptions, request: BlobRequest, reply: FastifyReply, headOnly: boolean): Promise<FastifyReply> {
  const principal = await principalFor(options, request, 'GET');
  const content = await options.backend.openBlob(principal, targetOf(request), { redirect: true });
  if (content.kind === 'external' && content.open) {
    // An image at external locations: streamed through here (as the Glance facade does), so
    // the location URLs stay behind the getImageLocation policy; whole, without validators.
    checksumHeaders(reply, content);
    reply.code(200).header('content-type', 'application/octet-stream');
    if (headOnly) return reply.send();
    const source = await content.open();
    if (source.size !== null) reply.header('content-length', source.size);
    return reply.send(source.body);
  }
  if (content.kind === 'external') {
    checksumHeaders(reply, content);
    return reply.code(302).header('location', content.url).header('cache-control', 'no-store').send();
  }
  const { blob } = content;
  const validators: Validators = { etag: `"${blob.md5}"`, lastModified: new Date(blob.updatedAt) };
  reply
    .header('etag', validators.etag)
    .header('last-modified', validators.lastModified.toUTCString())
    .header('accept-ranges', 'bytes')
    .header('x-checksum-sha512', blob.sha512 ?? '');
  const precondition = evaluatePreconditions(request.headers, validators);
  if (precondition === 'failed') fail('PRECONDITION_FAILED', 'the blob does not match If-Match / If-Unmodified-Since');
  if (precondition === 'not-modified') return reply.code(304).send();

  reply.header('content-type', blob.contentType ?? 'application/octet-stream');
  const range = rangeApplies(request.headers, validators) ? decideRange(stringHeader(request.headers, 'range'), blob.size) : { kind: 'full' as const };
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${blob.size}`);
    fail('RANGE_NOT_SATISFIABLE', `the blob has ${blob.size} bytes; the range asked for lies outside them`, { size: blob.size });
  }
  if (range.kind === 'partial') {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${blob.size}`).header('content-length', range.end - range.start + 1);
    return headOnly ? reply.send() : reply.send(await content.read({ start: range.start, end: range.end }));
  }
  reply.code(200).header('content-length', blob.size);
  checksumHeaders(reply, content);
  if (headOnly || blob.size === 0) return reply.send(headOnly ? undefined : '');
  return reply.send(await content.read());
}

function checksumHeaders(reply: FastifyReply, content: BlobContent): void {
  const { md5, sha512 } = content.blob;
  if (md5) reply.header('content-md5', Buffer.from(md5, 'hex').toString('base64'));
  if (sha512) reply.header('x-checksum-sha512', sha512);
}

// ---- errors ----------------------------------------------------------------------------

/**
 * `{"error": {"code", "message"}}` with the registry's status. The rest of a body the
 * upload did not read is discarded first (up to a bound), so a client still sending sees
 * the answer rather than a broken pipe.
 */
async function replyWithError(error: Error & { statusCode?: number; code?: string }, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  await discardBeforeAnswer(request, reply);
  // Headers of the download that failed half-way (its type, length) do not describe this body.
  reply.removeHeader('content-length');
  reply.header('content-type', 'application/json; charset=utf-8');
  if (error instanceof VitrineError) {
    if (error.code === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer');
    if (ERRORS[error.code].status >= 500) request.log.error({ err: error }, 'data plane dependency failed');
    return reply.code(error.status).send({ error: { code: error.code, message: error.message, ...(error.details && { details: error.details }) } });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return reply.code(status).send({ error: { code: status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST', message: error.message } });
  request.log.error({ err: error }, 'unexpected error in the data plane');
  return reply.code(500).send({ error: { code: 'INTERNAL', message: 'Unexpected error' } });
}

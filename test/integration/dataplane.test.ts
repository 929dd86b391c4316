import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { request } from 'undici';
import { UrlSigner } from '../../src/http/dataplane/signing';
import { startTestApp, type TestApp } from '../helpers/app';
import { chunk, LAST_CHUNK, RawConnection } from '../helpers/raw-http';

/**
 * The data plane through real HTTP: uploads (images and Glare types, plain blobs and blob
 * dictionaries), downloads with ranges and conditional requests, limits and quotas,
 * signed URLs, external blobs, concurrency and clients that go away, and every bad input
 * with its code and status. "Nothing stays" is checked on disk and in usage.
 */
const BUNDLE_TYPE = {
  name: 'bundles',
  fields: {
    archive: { kind: 'blob', maxBlobSize: 1000, requiredOnActivate: true },
    notes: { kind: 'blob', mutable: true, requiredOnActivate: false },
    files: { kind: 'blobDict', maxBlobSize: 600, maxFolderSize: 1000, requiredOnActivate: false },
    title: { kind: 'string', requiredOnActivate: false },
  },
};

let app: TestApp;
let blobDir: string;

beforeAll(async () => {
  app = await startTestApp({ artifactTypes: [BUNDLE_TYPE], quotas: { 'max_uploaded_data:bundles': 100_000 } });
  blobDir = app.config.blobs.path;
});
afterAll(async () => app?.close());

// ---- helpers -----------------------------------------------------------------------------

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

async function call(method: string, path: string, options: { token?: string | null; headers?: Record<string, string>; body?: Buffer | string | Readable | AsyncIterable<Buffer> } = {}): Promise<Res> {
  const token = options.token === undefined ? app.tokens.memberA : options.token;
  const res = await request(`${app.baseUrl}${path}`, {
    method: method as 'GET',
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...options.headers },
    body: options.body as never,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const type = String(res.headers['content-type'] ?? '');
  return { status: res.statusCode, headers: res.headers, body, json: type.includes('json') && body.length ? JSON.parse(body.toString()) : undefined };
}

const blobPath = (id: string, field: string, key?: string) => `/v1/artifacts/${id}/blobs/${field}${key ? `/${key}` : ''}`;

function put(id: string, field: string, body: Buffer | Readable | AsyncIterable<Buffer>, headers: Record<string, string> = {}, token?: string | null, key?: string): Promise<Res> {
  return call('PUT', blobPath(id, field, key), { token, headers: { 'content-type': 'application/octet-stream', ...headers }, body });
}

/** A body sent chunked: no Content-Length. */
function chunked(data: Buffer, chunk = 256): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
  return Readable.from(parts);
}

async function gqlOk(query: string, variables?: Record<string, unknown>, token = app.tokens.memberA): Promise<any> {
  const res = await app.gql(query, variables, token);
  if (res.body.errors) throw new Error(`unexpected errors: ${JSON.stringify(res.body.errors)}`);
  return res.body.data;
}

async function gqlCode(query: string, variables?: Record<string, unknown>, token = app.tokens.memberA): Promise<string | undefined> {
  const res = await app.gql(query, variables, token);
  expect(res.body.errors?.length).toBeGreaterThan(0);
  return res.body.errors![0].extensions?.code;
}

async function newImage(fields: Record<string, unknown> = {}, token = app.tokens.memberA): Promise<string> {
  const d = await gqlOk(`mutation($input: CreateImageInput!) { createImage(input: $input) { id } }`, { input: { name: 'img', diskFormat: 'raw', containerFormat: 'bare', ...fields } }, token);
  return d.createImage.id;
}

async function newBundle(token = app.tokens.memberA, name = `b-${Math.random().toString(36).slice(2)}`): Promise<string> {
  const d = await gqlOk(`mutation($input: CreateArtifactInput!) { createArtifact(input: $input) { id } }`, { input: { typeName: 'bundles', name } }, token);
  return d.createArtifact.id;
}

async function image(id: string, token = app.tokens.memberA): Promise<any> {
  const d = await gqlOk(`query($id: ID!) { image(id: $id) { status size checksum osHashAlgo osHashValue virtualSize stores revision data { status size md5 sha512 contentType url } } }`, { id }, token);
  return d.image;
}

async function blobsOf(id: string): Promise<any[]> {
  const d = await gqlOk(`query($id: ID!) { artifact(id: $id) { blobs { field key status size md5 external url } } }`, { id }, app.tokens.admin);
  return d.artifact.blobs;
}

async function usageBytes(projectId: string): Promise<number> {
  const d = await gqlOk(`query($p: String) { usage(projectId: $p) { totalBytes } }`, { p: projectId }, app.tokens.admin);
  return d.usage.totalBytes;
}

/** Every file under the blob folder, partial writes included. */
function storedFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(full);
    }
  };
  walk(blobDir);
  return out;
}

/** One request written byte for byte on a socket (no client-side path normalisation or default headers). */
function rawRequest(requestLine: string, headers: Record<string, string>, body = ''): Promise<{ status: number; json: any }> {
  const url = new URL(app.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      const lines = [requestLine, `host: ${url.host}`, `authorization: Bearer ${app.tokens.memberA}`, 'connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const payload = text.slice(text.indexOf('\r\n\r\n') + 4);
      let json: any;
      try {
        json = JSON.parse(payload);
      } catch {
        json = undefined;
      }
      resolve({ status, json });
    });
  });
}

/** Polls until `check` holds; the data plane finishes failed uploads after it answered. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never happened: ${what}`);
}

// ---- images ------------------------------------------------------------------------------

describe('image upload and download', () => {
  it('moves an image queued → saving → active and sets Glance\'s fields from the streamed bytes', async () => {
    const id = await newImage();
    const data = bytes(70_000);
    const res = await put(id, 'image', data);
    expect(res.status).toBe(200);
    expect(res.json.blob).toMatchObject({ field: 'image', key: null, status: 'active', size: data.length, md5: md5(data), sha512: sha512(data) });
    expect(res.json.artifact).toMatchObject({ id, status: 'active' });
    expect(await image(id)).toMatchObject({
      status: 'ACTIVE', size: data.length, checksum: md5(data), osHashAlgo: 'sha512', osHashValue: sha512(data), virtualSize: data.length, stores: ['fs'],
      data: { status: 'ACTIVE', size: data.length, md5: md5(data), url: blobPath(id, 'image') },
    });

    const got = await call('GET', blobPath(id, 'image'));
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
    expect(got.headers).toMatchObject({
      'content-length': String(data.length),
      'content-type': 'application/octet-stream',
      etag: `"${md5(data)}"`,
      'content-md5': Buffer.from(md5(data), 'hex').toString('base64'),
      'accept-ranges': 'bytes',
      'x-checksum-sha512': sha512(data),
    });
    expect(Date.parse(String(got.headers['last-modified']))).not.toBeNaN();
  });

  it('reads virtual_size from a qcow2 header while streaming', async () => {
    const id = await newImage({ diskFormat: 'qcow2' });
    const header = Buffer.alloc(4096);
    Buffer.from([0x51, 0x46, 0x49, 0xfb]).copy(header, 0);
    header.writeUInt32BE(3, 4);
    header.writeBigUInt64BE(10n * 1024n ** 3n, 24);
    expect((await put(id, 'image', chunked(header, 7))).status).toBe(200);
    expect((await image(id)).virtualSize).toBe(10 * 1024 ** 3);
  });

  it('leaves virtual_size null for formats it cannot read cheaply', async () => {
    const id = await newImage({ diskFormat: 'vmdk' });
    expect((await put(id, 'image', bytes(100))).status).toBe(200);
    expect((await image(id)).virtualSize).toBeNull();
  });

  it('accepts chunked uploads (no Content-Length) and an empty body with Content-Length: 0', async () => {
    const id = await newImage();
    const data = bytes(5000, 3);
    expect((await put(id, 'image', chunked(data))).status).toBe(200);
    expect((await call('GET', blobPath(id, 'image'))).body.equals(data)).toBe(true);
    const empty = await newImage();
    const res = await put(empty, 'image', Buffer.alloc(0));
    expect(res.status).toBe(200);
    expect(res.json.blob.md5).toBe(md5(Buffer.alloc(0)));
    const got = await call('GET', blobPath(empty, 'image'));
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(0);
  });

  it('refuses a second upload once the image is active (409), as Glance does', async () => {
    const id = await newImage();
    await put(id, 'image', bytes(10));
    const res = await put(id, 'image', bytes(10));
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('TRANSITION_FORBIDDEN');
  });

  it('requires disk and container formats before image data (400), leaving the image queued', async () => {
    const id = (await gqlOk(`mutation { createImage(input: {name: "noformat"}) { id } }`)).createImage.id;
    const res = await put(id, 'image', bytes(10));
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('ACTIVATION_INCOMPLETE');
    expect((await image(id)).status).toBe('QUEUED');
  });

  it('lets only admins download a deactivated image (403 otherwise)', async () => {
    const id = await newImage();
    await put(id, 'image', bytes(64));
    await gqlOk(`mutation($id: ID!) { deactivateArtifact(id: $id) { status } }`, { id });
    const member = await call('GET', blobPath(id, 'image'));
    expect(member.status).toBe(403);
    expect(member.json.error.code).toBe('FORBIDDEN');
    expect((await call('GET', blobPath(id, 'image'), { token: app.tokens.admin })).status).toBe(200);
  });
});

describe('verification: size and checksums', () => {
  const cases: [string, (d: Buffer) => Record<string, string>, string][] = [
    ['X-Expected-Size', (d) => ({ 'x-expected-size': String(d.length + 1) }), 'SIZE_MISMATCH'],
    ['x-openstack-image-size', (d) => ({ 'x-openstack-image-size': String(d.length - 1) }), 'SIZE_MISMATCH'],
    ['Content-MD5', () => ({ 'content-md5': Buffer.from(md5(Buffer.from('other')), 'hex').toString('base64') }), 'CHECKSUM_MISMATCH'],
    ['X-Expected-MD5', () => ({ 'x-expected-md5': md5(Buffer.from('other')) }), 'CHECKSUM_MISMATCH'],
    ['X-Expected-SHA512', () => ({ 'x-expected-sha512': sha512(Buffer.from('other')) }), 'CHECKSUM_MISMATCH'],
  ];
  it.each(cases)('a wrong %s gives 400 and keeps nothing; the image stays queued and a retry works', async (_name, headers, code) => {
    const id = await newImage();
    const data = bytes(3000, 9);
    const before = storedFiles().length;
    const usage = await usageBytes('project-a');
    const res = await put(id, 'image', data, headers(data));
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe(code);
    expect(await image(id)).toMatchObject({ status: 'QUEUED', size: null, checksum: null, data: null });
    expect(storedFiles().length).toBe(before);
    expect(await usageBytes('project-a')).toBe(usage);
    const retry = await put(id, 'image', data, { 'content-md5': Buffer.from(md5(data), 'hex').toString('base64'), 'x-expected-sha512': sha512(data), 'x-expected-size': String(data.length) });
    expect(retry.status).toBe(200);
    expect((await image(id)).status).toBe('ACTIVE');
  });

  it('a chunked body longer than its X-Expected-Size is cut off (400 SIZE_MISMATCH)', async () => {
    const id = await newImage();
    const res = await put(id, 'image', chunked(bytes(2000)), { 'x-expected-size': '1000' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('SIZE_MISMATCH');
    expect((await image(id)).status).toBe('QUEUED');
  });

  it.each([
    ['a malformed Content-MD5', { 'content-md5': 'not-base64' }],
    ['a malformed X-Expected-MD5', { 'x-expected-md5': 'abc' }],
    ['a malformed X-Expected-SHA512', { 'x-expected-sha512': 'zz' }],
    ['a negative X-Expected-Size', { 'x-expected-size': '-4' }],
  ])('%s is a 400 BAD_INPUT before any byte is read', async (_name, headers) => {
    const id = await newImage();
    const res = await put(id, 'image', bytes(10), headers);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('BAD_INPUT');
    expect((await image(id)).status).toBe('QUEUED');
  });
});

// ---- ranges and conditional requests -----------------------------------------------------

describe('ranges, HEAD and conditional requests', () => {
  const data = bytes(1000, 5);
  let id: string;
  let path: string;
  let etag: string;
  let lastModified: string;

  beforeAll(async () => {
    id = await newImage();
    await put(id, 'image', data, { 'content-type': 'application/x-raw-disk' });
    path = blobPath(id, 'image');
    const head = await call('HEAD', path);
    etag = String(head.headers.etag);
    lastModified = String(head.headers['last-modified']);
  });

  it.each([
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-5', 995, 999],
    ['bytes=900-5000', 900, 999],
    ['bytes=-5000', 0, 999],
  ])('Range %s → 206 with Content-Range', async (range, start, end) => {
    const res = await call('GET', path, { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/1000`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('an unsatisfiable Range %s → 416 with Content-Range: bytes */size', async (range) => {
    const res = await call('GET', path, { headers: { range } });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe('bytes */1000');
    expect(res.json.error.code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it.each(['bytes=0-1,5-6', 'items=0-4', 'bytes=9-2', 'bytes=abc'])('Range %s is ignored: 200 with the whole body', async (range) => {
    const res = await call('GET', path, { headers: { range } });
    expect(res.status).toBe(200);
    expect(res.body.equals(data)).toBe(true);
  });

  it('HEAD answers the same headers without a body', async () => {
    const res = await call('HEAD', path);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(res.headers).toMatchObject({ 'content-length': '1000', 'content-type': 'application/x-raw-disk', etag: `"${md5(data)}"`, 'accept-ranges': 'bytes', 'x-checksum-sha512': sha512(data) });
  });

  it('If-None-Match and If-Modified-Since give 304; If-Match and If-Unmodified-Since give 412 when false', async () => {
    expect((await call('GET', path, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await call('GET', path, { headers: { 'if-none-match': '"other", W/' + etag } })).status).toBe(304);
    expect((await call('GET', path, { headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    expect((await call('GET', path, { headers: { 'if-modified-since': lastModified } })).status).toBe(304);
    expect((await call('GET', path, { headers: { 'if-modified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })).status).toBe(200);
    const failed = await call('GET', path, { headers: { 'if-match': '"other"' } });
    expect(failed.status).toBe(412);
    expect(failed.json.error.code).toBe('PRECONDITION_FAILED');
    expect((await call('GET', path, { headers: { 'if-match': etag } })).status).toBe(200);
    expect((await call('GET', path, { headers: { 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } })).status).toBe(412);
    expect((await call('GET', path, { headers: { 'if-unmodified-since': lastModified } })).status).toBe(200);
  });

  it('If-Range serves the range only while the validator still matches', async () => {
    expect((await call('GET', path, { headers: { range: 'bytes=0-9', 'if-range': etag } })).status).toBe(206);
    expect((await call('GET', path, { headers: { range: 'bytes=0-9', 'if-range': lastModified } })).status).toBe(206);
    const stale = await call('GET', path, { headers: { range: 'bytes=0-9', 'if-range': '"stale"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(1000);
  });
});

// ---- bad targets, auth --------------------------------------------------------------------

describe('bad targets and callers', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = await newBundle();
  });

  it.each([
    ['an unknown artifact', () => blobPath('7c9f0a44-2c48-4a3a-9a55-0d3b36a3b9a1', 'image'), 404, 'NOT_FOUND'],
    ['a malformed id', () => blobPath('not-a-uuid', 'image'), 400, 'INVALID_ID'],
    ['an unknown field', () => blobPath(bundle, 'nope'), 400, 'FIELD_UNKNOWN'],
    ['a field that is not a blob', () => blobPath(bundle, 'title'), 400, 'FIELD_INVALID'],
    ['a key on a plain blob', () => blobPath(bundle, 'archive', 'k'), 400, 'BAD_INPUT'],
    ['a blob dictionary without a key', () => blobPath(bundle, 'files'), 400, 'BAD_INPUT'],
    ['a key with an empty part', () => blobPath(bundle, 'files', 'a//b'), 400, 'BAD_INPUT'],
  ])('PUT and GET on %s → %i %s', async (_name, path, status, code) => {
    for (const method of ['PUT', 'GET']) {
      const res = await call(method, path(), method === 'PUT' ? { headers: { 'content-type': 'application/octet-stream' }, body: bytes(5) } : {});
      expect([method, res.status, res.json?.error?.code]).toEqual([method, status, code]);
    }
  });

  it('refuses keys with "." or ".." parts, sent verbatim (clients would normalise them away)', async () => {
    for (const key of ['a/%2E%2E/b', 'a/../b', './a', 'a/.']) {
      const res = await rawRequest(`PUT ${blobPath(bundle, 'files', key)} HTTP/1.1`, { 'content-type': 'text/plain', 'content-length': '1' }, 'x');
      expect([key, res.status, res.json?.error?.code]).toEqual([key, 400, 'BAD_INPUT']);
    }
  });

  it('refuses a PUT without a body (no Content-Length, not chunked) with 400', async () => {
    const res = await rawRequest(`PUT ${blobPath(bundle, 'archive')} HTTP/1.1`, { 'content-type': 'application/octet-stream' });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('BAD_INPUT');
    expect(await blobsOf(bundle)).toEqual([]);
  });

  it('uses the GraphQL tokens: none → 401, a reader → 403, another project → 404 (invisible)', async () => {
    const none = await put(bundle, 'archive', bytes(5), {}, null);
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe('UNAUTHENTICATED');
    const xAuth = await call('GET', blobPath(bundle, 'archive'), { token: null, headers: { 'x-auth-token': app.tokens.memberA } });
    expect(xAuth.status).toBe(404); // authenticated; nothing uploaded yet
    expect((await put(bundle, 'archive', bytes(5), {}, app.tokens.readerA)).json.error.code).toBe('FORBIDDEN');
    const other = await put(bundle, 'archive', bytes(5), {}, app.tokens.memberB);
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('NOT_FOUND');
    expect((await call('GET', blobPath(bundle, 'archive'), { token: app.tokens.memberB })).status).toBe(404);
  });

  it('answers 404 for a blob that was never uploaded', async () => {
    const res = await call('GET', blobPath(bundle, 'notes'));
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('NOT_FOUND');
  });
});

// ---- Glare types, dictionaries, delete ------------------------------------------------------

describe('Glare artifacts', () => {
  it('uploads while drafted; after activation only mutable blobs change', async () => {
    const id = await newBundle();
    expect((await put(id, 'archive', bytes(100))).status).toBe(200);
    await gqlOk(`mutation($id: ID!) { activateArtifact(id: $id) { status } }`, { id });
    const frozen = await put(id, 'archive', bytes(100));
    expect(frozen.status).toBe(403);
    expect(frozen.json.error.code).toBe('FIELD_IMMUTABLE');
    expect((await put(id, 'notes', Buffer.from('# notes'), { 'content-type': 'text/markdown' })).status).toBe(200);
    const notes = await call('GET', blobPath(id, 'notes'));
    expect(notes.headers['content-type']).toBe('text/markdown');
    expect(notes.body.toString()).toBe('# notes');
  });

  it('stores blob dictionary entries under keys with slashes', async () => {
    const id = await newBundle();
    expect((await put(id, 'files', Buffer.from('a: 1'), {}, undefined, 'conf/app.yaml')).status).toBe(200);
    expect((await put(id, 'files', Buffer.from('b'), {}, undefined, 'conf/x%20y.txt')).status).toBe(200);
    expect((await call('GET', blobPath(id, 'files', 'conf/app.yaml'))).body.toString()).toBe('a: 1');
    expect((await call('GET', blobPath(id, 'files', 'conf/x%20y.txt'))).body.toString()).toBe('b');
    const keys = (await blobsOf(id)).filter((b) => b.field === 'files').map((b) => [b.key, b.url]);
    expect(keys).toEqual([['conf/app.yaml', blobPath(id, 'files', 'conf/app.yaml')], ['conf/x y.txt', blobPath(id, 'files', 'conf/x%20y.txt')]]);
  });

  it('deletes the replaced bytes after a re-upload commits', async () => {
    const id = await newBundle();
    await put(id, 'archive', bytes(100, 1));
    const before = storedFiles().length;
    await put(id, 'archive', bytes(200, 2));
    expect(storedFiles().length).toBe(before);
    expect((await call('GET', blobPath(id, 'archive'))).body.equals(bytes(200, 2))).toBe(true);
  });

  it('DELETE removes an uploaded blob of a drafted artifact with its bytes, and not once active', async () => {
    const id = await newBundle();
    await put(id, 'archive', bytes(50));
    const before = storedFiles().length;
    const res = await call('DELETE', blobPath(id, 'archive'));
    expect(res.status).toBe(204);
    expect(storedFiles().length).toBe(before - 1);
    expect((await call('GET', blobPath(id, 'archive'))).status).toBe(404);
    expect((await call('DELETE', blobPath(id, 'archive'))).status).toBe(404);
    await put(id, 'archive', bytes(50));
    await gqlOk(`mutation($id: ID!) { activateArtifact(id: $id) { status } }`, { id });
    const refused = await call('DELETE', blobPath(id, 'archive'));
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('FIELD_IMMUTABLE');
  });
});

// ---- limits and quotas ----------------------------------------------------------------------

describe('limits and quotas', () => {
  it('refuses a Content-Length over the field\'s maxBlobSize at once (413 BLOB_TOO_LARGE)', async () => {
    const id = await newBundle();
    const res = await put(id, 'archive', bytes(1001));
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('BLOB_TOO_LARGE');
    expect((await put(id, 'archive', bytes(1000))).status).toBe(200);
  });

  it('cuts a chunked upload off at maxBlobSize (413) and keeps nothing', async () => {
    const id = await newBundle();
    const before = storedFiles().length;
    const usage = await usageBytes('project-a');
    const res = await put(id, 'archive', chunked(bytes(3000), 100));
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('BLOB_TOO_LARGE');
    expect(await blobsOf(id)).toEqual([]);
    expect(storedFiles().length).toBe(before);
    expect(await usageBytes('project-a')).toBe(usage);
  });

  it('limits a blob dictionary to maxFolderSize minus its other entries', async () => {
    const id = await newBundle();
    expect((await put(id, 'files', bytes(600), {}, undefined, 'a')).status).toBe(200);
    const over = await put(id, 'files', bytes(401), {}, undefined, 'b');
    expect(over.status).toBe(413);
    expect(over.json.error.code).toBe('BLOB_TOO_LARGE');
    expect((await put(id, 'files', chunked(bytes(500)), {}, undefined, 'b')).status).toBe(413);
    expect((await put(id, 'files', bytes(400), {}, undefined, 'b')).status).toBe(200);
    // Replacing an entry does not count its old size against the folder.
    expect((await put(id, 'files', bytes(600, 4), {}, undefined, 'b')).status).toBe(413);
    expect((await put(id, 'files', bytes(400, 4), {}, undefined, 'a')).status).toBe(200);
  });

  it('enforces max_uploaded_data with and without Content-Length; nothing stays and usage is unchanged', async () => {
    await gqlOk(`mutation { setQuotas(projectId: "project-q", quotas: [{name: "max_uploaded_data", value: 1500}]) { projectId } }`, undefined, app.tokens.admin);
    const first = await newImage({}, app.tokens.memberQ);
    expect((await put(first, 'image', bytes(1000), {}, app.tokens.memberQ)).status).toBe(200);
    expect(await usageBytes('project-q')).toBe(1000);
    const before = storedFiles().length;

    const second = await newImage({}, app.tokens.memberQ);
    const withLength = await put(second, 'image', bytes(501), {}, app.tokens.memberQ);
    expect(withLength.status).toBe(413);
    expect(withLength.json.error.code).toBe('QUOTA_EXCEEDED');
    const streamed = await put(second, 'image', chunked(bytes(2000), 200), {}, app.tokens.memberQ);
    expect(streamed.status).toBe(413);
    expect(streamed.json.error.code).toBe('QUOTA_EXCEEDED');
    expect((await image(second, app.tokens.memberQ)).status).toBe('QUEUED');
    expect(storedFiles().length).toBe(before);
    expect(await usageBytes('project-q')).toBe(1000);

    expect((await put(second, 'image', chunked(bytes(500)), {}, app.tokens.memberQ)).status).toBe(200);
    expect(await usageBytes('project-q')).toBe(1500);
    const full = await newImage({}, app.tokens.memberQ);
    expect((await put(full, 'image', chunked(bytes(1)), {}, app.tokens.memberQ)).json.error.code).toBe('QUOTA_EXCEEDED');
  });

  it('enforces the configured per-type quota (max_uploaded_data:bundles)', async () => {
    await gqlOk(`mutation { setQuotas(projectId: "project-b", quotas: [{name: "max_uploaded_data:bundles", value: 150}]) { projectId } }`, undefined, app.tokens.admin);
    const id = await newBundle(app.tokens.memberB);
    expect((await put(id, 'archive', bytes(100), {}, app.tokens.memberB)).status).toBe(200);
    const over = await put(id, 'notes', bytes(51), {}, app.tokens.memberB);
    expect(over.status).toBe(413);
    expect(over.json.error.code).toBe('QUOTA_EXCEEDED');
    // Images of the same project are not bound by the bundles quota.
    const img = await newImage({}, app.tokens.memberB);
    expect((await put(img, 'image', bytes(500), {}, app.tokens.memberB)).status).toBe(200);
  });
});

// ---- concurrency and disconnects --------------------------------------------------------------

describe('concurrency and clients that go away', () => {
  it('lets one upload of a blob run: a second gets 409 BLOB_BUSY, a download 409 BLOB_NOT_READY', async () => {
    const id = await newImage();
    const body = new PassThrough();
    const first = put(id, 'image', body);
    body.write(bytes(1000));
    await eventually(async () => (await image(id)).status === 'SAVING', 'the first upload started');
    const second = await put(id, 'image', bytes(10));
    expect(second.status).toBe(409);
    expect(second.json.error.code).toMatch(/^(BLOB_BUSY|TRANSITION_FORBIDDEN)$/);
    const download = await call('GET', blobPath(id, 'image'));
    expect(download.status).toBe(409);
    expect(download.json.error.code).toBe('BLOB_NOT_READY');
    body.end(bytes(1000, 2));
    expect((await first).status).toBe(200);
    expect((await image(id)).size).toBe(2000);
  });

  it('answers BLOB_BUSY for a Glare blob already uploading', async () => {
    const id = await newBundle();
    const body = new PassThrough();
    const first = put(id, 'notes', body);
    body.write(bytes(100));
    await eventually(async () => (await blobsOf(id)).some((b) => b.status === 'SAVING'), 'the first upload started');
    const second = await put(id, 'notes', bytes(10));
    expect(second.status).toBe(409);
    expect(second.json.error.code).toBe('BLOB_BUSY');
    body.end();
    expect((await first).status).toBe(200);
  });

  it('ends an upload whose client disconnects: image back to queued, no bytes, no reservation', async () => {
    const id = await newImage();
    const before = storedFiles().length;
    const usage = await usageBytes('project-a');
    const url = new URL(`${app.baseUrl}${blobPath(id, 'image')}`);
    const req = httpRequest({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${app.tokens.memberA}`, 'content-type': 'application/octet-stream', 'content-length': String(1 << 20) } });
    req.on('error', () => undefined);
    req.write(bytes(64 * 1024));
    await eventually(async () => (await image(id)).status === 'SAVING', 'the upload started');
    req.destroy();
    await eventually(async () => (await image(id)).status === 'QUEUED', 'the image went back to queued');
    await eventually(async () => storedFiles().length === before, 'the partial bytes were removed');
    expect(await usageBytes('project-a')).toBe(usage);
    expect((await put(id, 'image', bytes(100))).status).toBe(200);
  });
});

// ---- refused uploads from clients still sending ----------------------------------------------

describe('refused uploads while the client is still sending', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const head = (method: string, path: string, headers: string[]) =>
    [`${method} ${path} HTTP/1.1`, `host: ${new URL(app.baseUrl).host}`, `authorization: Bearer ${app.tokens.memberA}`, ...headers, '', ''].join('\r\n');
  const putHead = (path: string, framing = 'transfer-encoding: chunked') => head('PUT', path, ['content-type: application/octet-stream', framing]);
  let connection: RawConnection | undefined;
  afterEach(() => connection?.close());

  /** The next request on the same connection is answered: the refused body was read to its end. */
  async function stillUsable(conn: RawConnection, index: number): Promise<void> {
    expect(await conn.write(head('GET', blobPath(randomUUID(), 'image'), []))).toBeNull();
    const next = await conn.response(index);
    expect(next.status).toBe(404);
    expect(next.json.error.code).toBe('NOT_FOUND');
  }

  it('reads a chunked body sent after a pause before answering 404, and keeps the connection', async () => {
    const conn = (connection = await RawConnection.open(app.baseUrl));
    expect(await conn.write(putHead(blobPath(randomUUID(), 'image')))).toBeNull();
    // Like glanceclient: the body follows the headers a moment later, and is read only once sent.
    await sleep(200);
    expect(conn.responses).toEqual([]);
    expect(await conn.write(Buffer.concat([chunk(bytes(1000)), chunk(bytes(3000)), Buffer.from(LAST_CHUNK)]))).toBeNull();
    const res = await conn.response();
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('NOT_FOUND');
    expect(res.headers.connection).not.toBe('close');
    await stillUsable(conn, 1);
    expect(conn.error).toBeUndefined();
  });

  it('reads a Content-Length body of an active image before answering 409', async () => {
    const id = await newImage();
    expect((await put(id, 'image', bytes(10))).status).toBe(200);
    const conn = (connection = await RawConnection.open(app.baseUrl));
    expect(await conn.write(putHead(blobPath(id, 'image'), 'content-length: 5000'))).toBeNull();
    await sleep(200);
    expect(await conn.write(bytes(2000))).toBeNull();
    await sleep(100);
    expect(conn.responses).toEqual([]);
    expect(await conn.write(bytes(3000))).toBeNull();
    const res = await conn.response();
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('TRANSITION_FORBIDDEN');
    await stillUsable(conn, 1);
  });

  it('reads the rest of an upload cut off at maxBlobSize before answering 413, and keeps nothing', async () => {
    const id = await newBundle();
    const conn = (connection = await RawConnection.open(app.baseUrl));
    expect(await conn.write(putHead(blobPath(id, 'archive')))).toBeNull();
    expect(await conn.write(chunk(bytes(800)))).toBeNull();
    await sleep(100);
    // Past the field's 1000 bytes: the upload fails while the client goes on sending.
    expect(await conn.write(chunk(bytes(800)))).toBeNull();
    await sleep(200);
    expect(conn.responses).toEqual([]);
    expect(await conn.write(Buffer.concat([chunk(bytes(5000)), Buffer.from(LAST_CHUNK)]))).toBeNull();
    const res = await conn.response();
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('BLOB_TOO_LARGE');
    await stillUsable(conn, 1);
    expect(await blobsOf(id)).toEqual([]);
  });

  it('answers and closes once a refused body passes the 64 MiB it reads at most', async () => {
    const conn = (connection = await RawConnection.open(app.baseUrl));
    expect(await conn.write(putHead(blobPath(randomUUID(), 'image')))).toBeNull();
    const piece = chunk(Buffer.alloc(1024 * 1024, 7));
    let sent = 0;
    let sentWhenAnswered: number | undefined;
    const answered = conn.response().then((res) => {
      sentWhenAnswered = sent;
      return res;
    });
    // Send until the answer comes (or the server stops reading), and only just past the bound:
    // bytes still in flight when the server closes would make its kernel reset the
    // connection, and a reset discards the answer before this client reads it.
    while (sentWhenAnswered === undefined && sent < 65 * 1024 * 1024) {
      if ((await conn.write(piece)) !== null) break;
      sent += 1024 * 1024;
    }
    const res = await answered;
    expect(res.status).toBe(404);
    expect(res.headers.connection).toBe('close');
    expect(sentWhenAnswered).toBeGreaterThanOrEqual(64 * 1024 * 1024);
  });
});

// ---- signed URLs -------------------------------------------------------------------------------

describe('signed URLs', () => {
  const SIGN = `mutation($id: ID!, $field: String!, $key: String, $ttl: Int) { createUploadUrl(artifactId: $id, field: $field, key: $key, expiresInSeconds: $ttl) { url method expiresAt } }`;

  it('lets a browser PUT with a signed URL and no token, then GET with a signed download URL', async () => {
    const id = await newImage();
    const { createUploadUrl: signed } = await gqlOk(SIGN, { id, field: 'image' });
    expect(signed.method).toBe('PUT');
    expect(signed.url.startsWith(`${blobPath(id, 'image')}?`)).toBe(true);
    expect(Date.parse(signed.expiresAt) - Date.now()).toBeGreaterThan(800_000);
    const data = bytes(300);
    expect((await call('PUT', signed.url, { token: null, headers: { 'content-type': 'application/octet-stream' }, body: data })).status).toBe(200);
    // The upload URL grants PUT only.
    expect((await call('GET', signed.url, { token: null })).json.error.code).toBe('SIGNATURE_INVALID');
    const { createDownloadUrl: download } = await gqlOk(`mutation($id: ID!) { createDownloadUrl(artifactId: $id, field: "image") { url method } }`, { id });
    expect(download.method).toBe('GET');
    const got = await call('GET', download.url, { token: null });
    expect(got.status).toBe(200);
    expect(got.body.equals(data)).toBe(true);
  });

  it('refuses tampered URLs and URLs of another blob (403 SIGNATURE_INVALID)', async () => {
    const id = await newBundle();
    const other = await newBundle();
    const { createUploadUrl: signed } = await gqlOk(SIGN, { id, field: 'files', key: 'a.txt' });
    const u = new URL(signed.url, app.baseUrl);
    const attempts: string[] = [];
    const sig = u.searchParams.get('signature')!;
    const flipped = new URL(u);
    flipped.searchParams.set('signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    attempts.push(flipped.pathname + flipped.search);
    const later = new URL(u);
    later.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600));
    attempts.push(later.pathname + later.search);
    const admin = new URL(u);
    admin.searchParams.set('principal', Buffer.from(JSON.stringify({ p: 'project-a', u: 'member-a', r: ['admin'] })).toString('base64url'));
    attempts.push(admin.pathname + admin.search);
    attempts.push(`${blobPath(id, 'files', 'b.txt')}${u.search}`);
    attempts.push(`${blobPath(other, 'files', 'a.txt')}${u.search}`);
    attempts.push(`${blobPath(id, 'archive')}${u.search}`);
    attempts.push(`${blobPath(id, 'files', 'a.txt')}?expires=1&principal=x`);
    for (const path of attempts) {
      const res = await call('PUT', path, { token: null, headers: { 'content-type': 'text/plain' }, body: 'x' });
      expect([path, res.status, res.json.error.code]).toEqual([path, 403, 'SIGNATURE_INVALID']);
    }
    expect(await blobsOf(id)).toEqual([]);
  });

  it('refuses an expired URL (403 SIGNATURE_EXPIRED); the key file is private to the server', async () => {
    const id = await newImage();
    const keyFile = join(app.dataDir, 'url-signing-key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'utf8');
    const anHourAgo = new UrlSigner(key, '/v1/artifacts', () => Date.now() - 3600_000);
    const expired = anHourAgo.sign({ method: 'PUT', artifactId: id, field: 'image', key: '' }, { projectId: 'project-a', userId: 'member-a', roles: ['member'] }, 60);
    const res = await call('PUT', expired.url, { token: null, headers: { 'content-type': 'application/octet-stream' }, body: bytes(10) });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('SIGNATURE_EXPIRED');
    expect((await image(id)).status).toBe('QUEUED');
  });

  it('signs only for callers who may upload now, and bounds the lifetime', async () => {
    const active = await newImage();
    await put(active, 'image', bytes(10));
    expect(await gqlCode(SIGN, { id: active, field: 'image' })).toBe('TRANSITION_FORBIDDEN');
    const id = await newImage();
    expect(await gqlCode(SIGN, { id, field: 'image' }, app.tokens.readerA)).toBe('FORBIDDEN');
    expect(await gqlCode(SIGN, { id, field: 'image' }, app.tokens.memberB)).toBe('NOT_FOUND');
    expect(await gqlCode(SIGN, { id, field: 'nope' })).toBe('FIELD_UNKNOWN');
    expect(await gqlCode(SIGN, { id, field: 'image', ttl: 0 })).toBe('BAD_INPUT');
    expect(await gqlCode(SIGN, { id, field: 'image', ttl: 10_000_000 })).toBe('BAD_INPUT');
  });
});

// ---- external blobs ------------------------------------------------------------------------------

describe('external blobs', () => {
  const SET = `mutation($id: ID!, $field: String!, $key: String, $url: String!, $md5: String) { setExternalBlob(artifactId: $id, field: $field, key: $key, url: $url, md5: $md5, size: 1234, contentType: "application/zip") { field key external url md5 size status } }`;

  it('is for admins only (FORBIDDEN)', async () => {
    const id = await newBundle();
    expect(await gqlCode(SET, { id, field: 'archive', url: 'https://93.184.215.14/a.zip' })).toBe('FORBIDDEN');
  });

  it.each([
    'http://127.0.0.1/a', 'http://10.1.2.3/a', 'http://172.20.0.1/a', 'http://192.168.1.1/a', 'http://169.254.169.254/latest/meta-data',
    'http://0.0.0.0/a', 'http://224.0.0.1/a', 'http://[::1]/a', 'http://[::]/a', 'http://[fe80::1]/a', 'http://[fd00::1]/a', 'http://[ff02::1]/a',
    'http://[::ffff:127.0.0.1]/a', 'http://[::ffff:a9fe:a9fe]/a', 'http://localhost/a', 'ftp://93.184.215.14/a', 'file:///etc/passwd', 'not a url',
    'http://user:pw@93.184.215.14/a',
  ])('refuses %s (400 URL_FORBIDDEN)', async (url) => {
    const id = await newBundle(app.tokens.admin);
    expect(await gqlCode(SET, { id, field: 'archive', url }, app.tokens.admin)).toBe('URL_FORBIDDEN');
  });

  it('redirects downloads to a public URL (302 with Location) and DELETE removes it', async () => {
    const id = await newBundle();
    const url = 'https://93.184.215.14/pkg/a.zip';
    const d = await gqlOk(SET, { id, field: 'files', key: 'dist/a.zip', url, md5: 'D41D8CD98F00B204E9800998ECF8427E' }, app.tokens.admin);
    expect(d.setExternalBlob).toEqual({ field: 'files', key: 'dist/a.zip', external: true, url, md5: 'd41d8cd98f00b204e9800998ecf8427e', size: 1234, status: 'ACTIVE' });
    const res = await call('GET', blobPath(id, 'files', 'dist/a.zip'));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(url);
    expect(res.headers['content-md5']).toBe(Buffer.from('d41d8cd98f00b204e9800998ecf8427e', 'hex').toString('base64'));
    expect((await call('DELETE', blobPath(id, 'files', 'dist/a.zip'))).status).toBe(204);
    expect((await call('GET', blobPath(id, 'files', 'dist/a.zip'))).status).toBe(404);
  });

  it('refuses malformed digests and images', async () => {
    const id = await newBundle();
    expect(await gqlCode(SET, { id, field: 'archive', url: 'https://93.184.215.14/a', md5: 'xyz' }, app.tokens.admin)).toBe('BAD_INPUT');
    const img = await newImage();
    expect(await gqlCode(SET, { id: img, field: 'image', url: 'https://93.184.215.14/a' }, app.tokens.admin)).toBe('BAD_INPUT');
  });
});

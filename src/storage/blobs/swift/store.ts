import { createHash, createHmac, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { VitrineError, fail } from '../../../domain/errors';
import type { BlobStore, BlobWriteOptions, BlobWriteResult, ByteRange } from '../port';
import { ByteSource } from './byte-source';
import { SwiftSession, header, type SwiftV1Auth } from './session';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Swift's default `max_file_size`: the largest single object (and so segment). */
export const SWIFT_MAX_OBJECT_BYTES = 5 * GiB;

/**
 * How a SwiftBlobStore reaches its account and lays out blobs. Either `auth` (tokens are
 * fetched and renewed as needed) or `storageUrl` + `token` (used until Swift rejects it),
 * or all three (the token is used first, `storageUrl` overrides the auth's X-Storage-Url).
 */
export interface SwiftBlobStoreOptions {
  /** v1 authentication: tempauth (`account:user` and key), swauth, or Keystone's v1 shim. */
  auth?: SwiftV1Auth;
  /** The account URL, `https://swift.example.com/v1/AUTH_vitrine`. With `auth`, replaces the X-Storage-Url it answers (an internal endpoint, say). */
  storageUrl?: string;
  /** A preset token, for `storageUrl`. */
  token?: string;
  /**
   * The container blobs are stored in, created when missing: letters, digits, `.`, `_`, `-`.
   * Large blobs' segments go to the same container under `.segments/`, so that a temp URL
   * signed with the container's key can read them too.
   */
  container: string;
  /** Blobs larger than `bufferBytes` are stored as Static Large Objects of segments this large (the last one smaller). Default 1 GiB, at most 5 GiB. */
  segmentBytes?: number;
  /** The most segments of one blob: Swift's `max_manifest_segments` (default 1000). Caps a blob at segmentBytes × maxSegments. */
  maxSegments?: number;
  /** Blobs up to this size are buffered and stored as one plain object (ETag sent ahead); larger ones stream into segments. Default 4 MiB, at most `segmentBytes`. Memory per running write. */
  bufferBytes?: number;
  /** `sweepIncomplete` removes segments without a manifest only once the newest of them is this old. Must exceed the longest time one segment takes to upload. Default 6 h. */
  incompleteGraceMs?: number;
  /** Names per container listing request (Swift's `container_listing_limit`, default 10000). */
  listPageSize?: number;
  /** Sets the container's X-Container-Meta-Temp-URL-Key, which `tempUrl` signs with (HMAC-SHA256). */
  tempUrlKey?: string;
  /** Hand out temp URLs as `directUrl`, so downloads redirect to Swift (needs `tempUrlKey`). */
  redirectDownloads?: boolean;
  /** Connections kept open to Swift (per origin). Default 32. */
  connections?: number;
  /** Longest wait for Swift's answer, or between two pieces of a body. Default 120 s. */
  timeoutMs?: number;
  /** Longest a `ping` (readiness) waits for authentication and a HEAD of the container. Default 5 s. */
  pingTimeoutMs?: number;
}

/** `<uuid>` is a plain object, `<uuid>.slo` a Static Large Object manifest. */
const LOCATION = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.slo)?$/;
/** Segments are `.segments/<uuid>/<8-digit index>`, `<uuid>.slo` being their manifest. */
const SEGMENTS = '.segments/';
const SEGMENT = /^\.segments\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/\d{8}$/;
const CONTAINER = /^[A-Za-z0-9._-]{1,256}$/;
/** The most a segment body takes from the source at once (slices, never copies). */
const PIECE_BYTES = MiB;
const DELETE_CONCURRENCY = 8;
const OCTETS = 'application/octet-stream';

/** A container listing entry: an object, or (with a delimiter) a `subdir` standing for many. */
interface ListingEntry {
  name?: string;
  subdir?: string;
  last_modified?: string;
}

interface Segment {
  path: string;
  etag: string;
  size_bytes: number;
}


/**
 * Blobs in one OpenStack Swift container. Every write creates objects under a fresh UUID
 * and never overwrites (`If-None-Match: *`). Small blobs are one object whose md5 Swift
 * checks on arrival; larger ones stream, with constant memory, into segments of a
 * Static Large Object (each segment's ETag checked against the md5 computed while
 * sending), whose manifest is written last: a blob exists only once it is complete.
 * A write that fails or is aborted deletes what it created; segments left by a process
 * that died mid-write are what `sweepIncomplete` removes.
 */
export class SwiftBlobStore implements BlobStore {
  /** Segments without a manifest are removed only past the grace period. */
  readonly sweepsWhileShared = true;
  private readonly session: SwiftSession;
  private readonly container: string;
  private readonly segmentBytes: number;
  private readonly maxSegments: number;
  private readonly bufferBytes: number;
  private readonly graceMs: number;
  private readonly pageSize: number;
  private readonly pingTimeoutMs: number;
  readonly #tempUrlKey: string | undefined;
  readonly #redirect: boolean;
  private ready: Promise<void> | undefined;

  constructor(readonly name: string, options: SwiftBlobStoreOptions) {
    checkOptions(name, options);
    this.container = options.container;
    this.segmentBytes = options.segmentBytes ?? GiB;
    this.maxSegments = options.maxSegments ?? 1000;
    this.bufferBytes = Math.min(options.bufferBytes ?? 4 * MiB, this.segmentBytes);
    this.graceMs = options.incompleteGraceMs ?? 6 * 3600_000;
    this.pageSize = options.listPageSize ?? 10_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
    this.#tempUrlKey = options.tempUrlKey;
    this.#redirect = options.redirectDownloads === true;
    this.session = new SwiftSession(name, {
      auth: options.auth,
      storageUrl: options.storageUrl,
      token: options.token,
      connections: options.connections ?? 32,
      timeoutMs: options.timeoutMs ?? 120_000,
    });
  }

  /** The largest blob this store takes: `segmentBytes × maxSegments`. */
  get maxBlobBytes(): number {
    return this.segmentBytes * this.maxSegments;
  }

  async write(source: Readable, options: BlobWriteOptions = {}): Promise<BlobWriteResult> {
    const { signal } = options;
    const input = new ByteSource(source);
    const written: string[] = [];
    const onAbort = () => source.destroy(abortError(signal!));
    try {
      if (signal?.aborted) throw abortError(signal);
      signal?.addEventListener('abort', onAbort, { once: true });
      await this.prepare();
      const id = randomUUID();
      const head = await input.read(this.bufferBytes);
      if (await input.atEnd()) return await this.putWhole(id, head, written, signal);
      return await this.putSegmented(id, head, input, written, signal);
    } catch (err) {
      input.abandon();
      await this.discard(written);
      if (input.error !== undefined) throw input.error;
      if (signal?.aborted) throw abortError(signal);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      input.release();
    }
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    if (!LOCATION.test(location)) fail('NOT_FOUND', 'not a location of this blob store');
    const res = await this.session.request({
      method: 'GET',
      path: this.objectPath(location),
      ...(range && { headers: { range: `bytes=${range.start}-${range.end}` } }),
    });
    if (res.statusCode === 206 || (res.statusCode === 200 && !range)) return res.body;
    await res.body.dump();
    if (res.statusCode === 404) fail('NOT_FOUND', 'the blob\'s bytes are missing from the store', { store: this.name });
    if (res.statusCode === 416) fail('RANGE_NOT_SATISFIABLE', 'the range lies outside the stored bytes', { store: this.name });
    throw this.session.unexpected(res.statusCode, range ? 'a ranged GET object' : 'GET object');
  }

  async stat(location: string): Promise<number | null> {
    if (!LOCATION.test(location)) return null;
    const res = await this.session.request({ method: 'HEAD', path: this.objectPath(location) });
    await res.body.dump();
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) throw this.session.unexpected(res.statusCode, 'HEAD object');
    return Number(header(res, 'content-length'));
  }

  async delete(location: string): Promise<void> {
    if (!LOCATION.test(location)) return;
    if (!location.endsWith('.slo')) return this.deleteObject(location);
    // Swift deletes the segments, then the manifest, and reports per object in the body.
    const res = await this.session.request({
      method: 'DELETE',
      path: this.objectPath(location),
      query: { 'multipart-manifest': 'delete' },
      headers: { accept: 'application/json' },
    });
    const text = await res.body.text();
    if (res.statusCode === 404) return;
    if (res.statusCode !== 200) throw this.session.unexpected(res.statusCode, 'DELETE large object');
    const report = parseJson(text) as { 'Response Status'?: string; Errors?: unknown[] } | undefined;
    const status = Number(report?.['Response Status']?.slice(0, 3));
    if (!(status < 300 || status === 404) || (report?.Errors?.length ?? 0) > 0) {
      throw this.session.unexpected(Number.isFinite(status) ? status : 500, `DELETE large object (${report?.Errors?.length ?? 0} segments not deleted)`);
    }
  }

  async *list(): AsyncIterable<string> {
    // The delimiter folds the segments into one `.segments/` entry per page.
    for await (const entry of this.listing({ delimiter: '/' })) {
      if (entry.name !== undefined && LOCATION.test(entry.name)) yield entry.name;
    }
  }

  /**
   * Deletes segment groups that have no manifest and whose newest segment is older than the
   * grace period (a write that died before its manifest); returns how many such writes.
   * A plain object is never incomplete: Swift discards an upload that did not finish.
   */
  async sweepIncomplete(): Promise<number> {
    await this.prepare();
    const cutoff = Date.now() - this.graceMs;
    let removed = 0;
    let group: { id: string; names: string[]; newest: number } | undefined;
    const settle = async (g: { id: string; names: string[]; newest: number }) => {
      if (g.newest >= cutoff || (await this.stat(`${g.id}.slo`)) !== null) return;
      await forEachLimited(g.names, DELETE_CONCURRENCY, (name) => this.deleteObject(name));
      removed++;
    };
    // The listing is sorted by name, so one write's segments come together.
    for await (const entry of this.listing({ prefix: SEGMENTS })) {
      const id = SEGMENT.exec(entry.name ?? '')?.[1];
      if (!id) continue;
      if (group?.id !== id) {
        if (group) await settle(group);
        group = { id, names: [], newest: 0 };
      }
      group.names.push(entry.name!);
      group.newest = Math.max(group.newest, swiftTime(entry.last_modified ?? ''));
    }
    if (group) await settle(group);
    return removed;
  }

  /** Authenticates if needed and HEADs the container (creating it first if need be), within `pingTimeoutMs`. */
  async ping(): Promise<void> {
    const checking = this.check();
    checking.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VitrineError('UNAVAILABLE', `the Swift blob store "${this.name}" did not answer within ${this.pingTimeoutMs} ms`, { store: this.name })), this.pingTimeoutMs);
    });
    try {
      await Promise.race([checking, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A URL that reads the blob without a token until it expires (Swift's TempURL, signed
   * with `tempUrlKey`), so downloads need not pass through Vitrine.
   */
  async tempUrl(location: string, expiresInSeconds: number, method: 'GET' | 'HEAD' = 'GET'): Promise<string> {
    const key = this.#tempUrlKey ?? fail('CONFIG_INVALID', `the Swift blob store "${this.name}" has no tempUrlKey`);
    if (!LOCATION.test(location)) fail('NOT_FOUND', 'not a location of this blob store');
    await this.prepare();
    const account = new URL(await this.session.storageUrl());
    const path = `${account.pathname.replace(/\/+$/, '')}/${this.container}/${location}`;
    const expires = Math.floor(Date.now() / 1000) + Math.max(1, Math.ceil(expiresInSeconds));
    const signature = createHmac('sha256', key).update(`${method}\n${expires}\n${path}`).digest('hex');
    return `${account.origin}${path}?temp_url_sig=${signature}&temp_url_expires=${expires}`;
  }

  /** A temp URL when downloads are to redirect to Swift (`redirectDownloads`), null otherwise. */
  async directUrl(location: string, expiresInSeconds: number): Promise<string | null> {
    return this.#redirect ? this.tempUrl(location, expiresInSeconds) : null;
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.session.close();
  }

  private async check(): Promise<void> {
    await this.prepare();
    const res = await this.session.request({ method: 'HEAD', path: `/${this.container}` });
    await res.body.dump();
    // Deleted behind our back: the next write or ping creates it again.
    if (res.statusCode === 404) this.ready = undefined;
    if (res.statusCode >= 300) throw this.session.unexpected(res.statusCode, 'HEAD container');
  }

  private prepare(): Promise<void> {
    this.ready ??= this.createContainers().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async createContainers(): Promise<void> {
    const key = this.#tempUrlKey;
    const res = await this.session.request({ method: 'PUT', path: `/${this.container}`, headers: key ? { 'x-container-meta-temp-url-key': key } : {} });
    await res.body.dump();
    if (res.statusCode !== 201 && res.statusCode !== 202) throw this.session.unexpected(res.statusCode, 'PUT container');
  }

  /** A blob that fits the buffer: one PUT whose ETag header makes Swift verify the md5. */
  private async putWhole(id: string, bytes: Buffer, written: string[], signal: AbortSignal | undefined): Promise<BlobWriteResult> {
    const md5 = createHash('md5').update(bytes).digest('hex');
    written.push(id);
    const res = await this.session.request({
      method: 'PUT',
      path: this.objectPath(id),
      headers: { 'content-type': OCTETS, etag: md5, 'if-none-match': '*' },
      body: bytes,
      signal,
    });
    await res.body.dump();
    if (res.statusCode === 422) throw this.corrupted('PUT object');
    if (res.statusCode !== 201) throw this.session.unexpected(res.statusCode, 'PUT object');
    if (unquote(header(res, 'etag')) !== md5) throw this.corrupted('PUT object');
    return { location: id, size: bytes.length };
  }

  /** A larger blob: segments streamed one after another, then the manifest that makes it exist. */
  private async putSegmented(id: string, head: Buffer, input: ByteSource, written: string[], signal: AbortSignal | undefined): Promise<BlobWriteResult> {
    const segments: Segment[] = [];
    let size = 0;
    let first: Buffer | undefined = head;
    do {
      if (segments.length >= this.maxSegments) {
        fail('BLOB_TOO_LARGE', `the Swift blob store "${this.name}" takes blobs of at most ${this.maxBlobBytes} bytes (${this.maxSegments} segments of ${this.segmentBytes})`, {
          store: this.name,
          maxBytes: this.maxBlobBytes,
        });
      }
      const name = `${SEGMENTS}${id}/${String(segments.length + 1).padStart(8, '0')}`;
      written.push(name);
      const segment = await this.putSegment(name, first, input, signal);
      segments.push(segment);
      size += segment.size_bytes;
      first = undefined;
    } while (!(await input.atEnd()));

    const manifest = `${id}.slo`;
    written.push(manifest);
    const res = await this.session.request({
      method: 'PUT',
      path: this.objectPath(manifest),
      query: { 'multipart-manifest': 'put' },
      headers: { 'content-type': OCTETS, 'if-none-match': '*', accept: 'application/json' },
      body: JSON.stringify(segments),
      signal,
    });
    await res.body.dump();
    // 400: a segment is missing or differs from what the manifest says (swept meanwhile?).
    if (res.statusCode !== 201) throw this.session.unexpected(res.statusCode, 'PUT large object manifest');
    const expected = createHash('md5').update(segments.map((s) => s.etag).join('')).digest('hex');
    if (unquote(header(res, 'etag')) !== expected) throw this.corrupted('PUT large object manifest');
    return { location: manifest, size };
  }

  /** Streams up to `segmentBytes` (starting with `first`) into one segment and checks its md5. */
  private async putSegment(name: string, first: Buffer | undefined, input: ByteSource, signal: AbortSignal | undefined): Promise<Segment> {
    const md5 = createHash('md5');
    const limit = this.segmentBytes;
    let size = 0;
    let answered = false;
    async function* body(): AsyncGenerator<Buffer> {
      if (first && first.length > 0) {
        md5.update(first);
        size += first.length;
        yield first;
      }
      // Stops pulling once Swift answered early (an error): the rest would be discarded.
      while (!answered && size < limit) {
        const piece = await input.next(Math.min(PIECE_BYTES, limit - size));
        if (!piece) return;
        md5.update(piece);
        size += piece.length;
        yield piece;
      }
    }
    let res;
    try {
      res = await this.session.stream({
        method: 'PUT',
        path: this.objectPath(name),
        headers: { 'content-type': OCTETS, 'if-none-match': '*' },
        body: body(),
        signal,
      });
    } finally {
      answered = true;
    }
    await res.body.dump();
    if (res.statusCode === 413) fail('BLOB_TOO_LARGE', `the Swift blob store "${this.name}" refused a segment of ${size} bytes as too large (segmentBytes above the cluster's max_file_size?)`, { store: this.name });
    if (res.statusCode !== 201) throw this.session.unexpected(res.statusCode, 'PUT segment');
    const etag = md5.digest('hex');
    if (unquote(header(res, 'etag')) !== etag) throw this.corrupted('PUT segment');
    return { path: `/${this.container}/${name}`, etag, size_bytes: size };
  }

  /** Best effort: whatever is left (Swift unreachable) is found by the sweeps. */
  private async discard(written: string[]): Promise<void> {
    await forEachLimited(written, DELETE_CONCURRENCY, (name) => this.deleteObject(name).catch(() => undefined));
  }

  private async deleteObject(name: string): Promise<void> {
    const res = await this.session.request({ method: 'DELETE', path: this.objectPath(name) });
    await res.body.dump();
    if (res.statusCode !== 204 && res.statusCode !== 404) throw this.session.unexpected(res.statusCode, 'DELETE object');
  }

  /** The container's listing, a page at a time (marker paging); nothing if it is missing. */
  private async *listing(filter: { prefix?: string; delimiter?: string }): AsyncIterable<ListingEntry> {
    let marker: string | undefined;
    for (;;) {
      const res = await this.session.request({
        method: 'GET',
        path: `/${this.container}`,
        query: { format: 'json', limit: String(this.pageSize), ...filter, ...(marker !== undefined && { marker }) },
      });
      if (res.statusCode === 404 || res.statusCode === 204) {
        await res.body.dump();
        return;
      }
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw this.session.unexpected(res.statusCode, 'GET container listing');
      }
      const page = (await res.body.json()) as ListingEntry[];
      for (const entry of page) yield entry;
      if (page.length < this.pageSize) return;
      const last = page[page.length - 1];
      marker = last.name ?? last.subdir;
    }
  }

  private objectPath(name: string): string {
    return `/${this.container}/${name}`;
  }

  private corrupted(operation: string): VitrineError {
    return new VitrineError('UNAVAILABLE', `the Swift blob store "${this.name}" stored different bytes than were sent (${operation}: ETag mismatch)`, { store: this.name });
  }
}

function checkOptions(name: string, o: SwiftBlobStoreOptions): void {
  const bad = (key: string, expected: string): never => fail('CONFIG_INVALID', `Swift blob store "${name}": ${key}: expected ${expected}`, { store: name, key });
  const url = (key: string, value: string | undefined) => {
    if (value === undefined) return;
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol)) bad(key, 'an http:// or https:// URL');
  };
  const int = (key: string, value: number | undefined, min: number, max: number) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) bad(key, `an integer from ${min} to ${max}`);
  };
  if (!o.auth && (o.storageUrl === undefined || o.token === undefined)) bad('auth', 'auth { url, user, key }, or storageUrl and token');
  if (o.auth) {
    url('auth.url', o.auth.url);
    if (!o.auth.user) bad('auth.user', 'a user name (account:user for tempauth)');
    if (!o.auth.key) bad('auth.key', 'a key');
  }
  url('storageUrl', o.storageUrl);
  if (o.token !== undefined && o.token.length === 0) bad('token', 'a non-empty token');
  if (!CONTAINER.test(o.container ?? '')) bad('container', 'a container name of 1 to 256 letters, digits, ".", "_" or "-"');
  int('segmentBytes', o.segmentBytes, 1, SWIFT_MAX_OBJECT_BYTES);
  int('maxSegments', o.maxSegments, 1, 100_000);
  int('bufferBytes', o.bufferBytes, 0, SWIFT_MAX_OBJECT_BYTES);
  int('incompleteGraceMs', o.incompleteGraceMs, 0, Number.MAX_SAFE_INTEGER);
  int('listPageSize', o.listPageSize, 1, 10_000);
  int('connections', o.connections, 1, 10_000);
  int('timeoutMs', o.timeoutMs, 1, Number.MAX_SAFE_INTEGER);
  int('pingTimeoutMs', o.pingTimeoutMs, 1, Number.MAX_SAFE_INTEGER);
  if (o.tempUrlKey !== undefined && o.tempUrlKey.length < 16) bad('tempUrlKey', 'a key of at least 16 characters');
  if (o.redirectDownloads && o.tempUrlKey === undefined) bad('redirectDownloads', 'a tempUrlKey to sign the temp URLs with');
}

/** Like the AbortError a stream pipeline rejects with: name "AbortError", the signal's reason as cause. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** Native Swift sends object ETags bare and SLO ETags quoted. */
function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1');
}

/** Listing times are UTC without a zone, with microseconds: "2026-01-02T03:04:05.123456". */
function swiftTime(text: string): number {
  const ms = Date.parse(`${text.slice(0, 23)}Z`);
  return Number.isFinite(ms) ? ms : Date.now();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

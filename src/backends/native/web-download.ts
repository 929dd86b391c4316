import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { fail, VitrineError } from '../../domain/errors';
import { disallowedReason, hostOf } from '../../domain/urls';

/**
 * The fetcher of web-download imports: Glance's URL filtering (`[import_filtering_opts]`,
 * `validate_import_uri`), plus a refusal of private and loopback addresses, applied to the
 * URL and again to every redirect. The connection goes to the very addresses that were
 * checked (no second DNS lookup that a rebinding name could answer differently), and the
 * body streams with a size cap and an idle timeout.
 */

/** Glance's `[import_filtering_opts]`, plus the private-address switch. */
export interface UrlFilter {
  /** When non-empty, the only schemes accepted (Glance's default: http, https). */
  allowedSchemes: readonly string[];
  /** Refused schemes; ignored when `allowedSchemes` is non-empty. */
  disallowedSchemes: readonly string[];
  /**
   * When non-empty, the only hosts accepted: exact names or IP literals. A listed host is
   * trusted, so the private-address check does not apply to it.
   */
  allowedHosts: readonly string[];
  /** Refused hosts; ignored when `allowedHosts` is non-empty. */
  disallowedHosts: readonly string[];
  /** When non-empty, the only ports accepted; checked only when the URL names a port. */
  allowedPorts: readonly number[];
  /** Refused ports; ignored when `allowedPorts` is non-empty. */
  disallowedPorts: readonly number[];
  /** false: refuse hosts that resolve to private, loopback, link-local... addresses. */
  allowPrivate: boolean;
}

/** Glance's defaults, and no private addresses. */
export const DEFAULT_URL_FILTER: UrlFilter = Object.freeze({
  allowedSchemes: Object.freeze(['http', 'https']),
  disallowedSchemes: Object.freeze([]),
  allowedHosts: Object.freeze([]),
  disallowedHosts: Object.freeze([]),
  allowedPorts: Object.freeze([80, 443]),
  disallowedPorts: Object.freeze([]),
  allowPrivate: false,
});

/** Resolves a host name to all its addresses (`dns.lookup` with `all` by default). */
export type HostLookup = (host: string) => Promise<string[]>;

export interface WebDownloadOptions {
  filter: UrlFilter;
  /** The body may hold at most this many bytes. */
  maxBytes: number;
  connectTimeoutMs: number;
  /** Longest wait for the answer's headers, and for more body bytes while the reader wants them. */
  idleTimeoutMs: number;
  /** Redirects followed at most (each one checked like the URL itself). */
  maxRedirects: number;
  /** Ends the download: a pending open rejects, an open body fails, with `signal.reason`. */
  signal?: AbortSignal;
  lookup?: HostLookup;
  /** Extra request headers, sent on every hop (glance-download: the caller's token, to hosts the filter allows only). */
  headers?: Readonly<Record<string, string>>;
}

export interface WebDownload {
  /**
   * The bytes, streamed. It fails with BLOB_TOO_LARGE past `maxBytes`, and with
   * IMPORT_FETCH_FAILED when the server stalls, the connection breaks or the body is
   * shorter than announced. Read it to the end or destroy it: either frees the connection.
   */
  body: Readable;
  /** The announced Content-Length, or null when the server streams without one. */
  size: number | null;
  contentType: string | null;
  /** The URL that answered, after redirects (it may carry a query; do not show it to others). */
  finalUrl: string;
}

const FETCHABLE_SCHEMES = new Set(['http', 'https']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_URL_LENGTH = 2048;
const FIRST = 'URI for web-download';

/**
 * Checks a web-download URL as Glance does before it accepts an import: the URL as a
 * whole, and that its host resolves to addresses it may fetch from. URL_FORBIDDEN says
 * which rule refused it ("URI for web-download does not pass filtering: ..."). A name that
 * does not resolve (yet) passes, as in Glance: the import then fails in its task, where
 * the fetch resolves it again and refuses it.
 */
export async function checkImportUrl(raw: string, filter: UrlFilter, lookup?: HostLookup): Promise<URL> {
  return (await vet(raw, filter, lookup ?? resolveAll, FIRST, undefined, { unresolved: 'pass' })).url;
}

/**
 * Opens a URL for a web-download import, following redirects itself. Resolves once a 2xx
 * answer's headers are in; rejects with URL_FORBIDDEN (the URL or a redirect fails the
 * filter), BLOB_TOO_LARGE (Content-Length above `maxBytes`) or IMPORT_FETCH_FAILED
 * (unreachable, timed out, too many redirects, an answer other than 2xx).
 */
export async function openWebDownload(url: string, options: WebDownloadOptions): Promise<WebDownload> {
  const { signal } = options;
  const lookup = options.lookup ?? resolveAll;
  let next = url;
  let base: URL | undefined;
  let subject = FIRST;
  for (let redirects = 0; ; redirects++) {
    signal?.throwIfAborted();
    const target = await abortable(vet(next, options.filter, lookup, subject, base), signal);
    const { client, answer } = await send(target, options);
    const { statusCode, headers } = answer;
    if (REDIRECTS.has(statusCode)) {
      closeQuietly(client);
      const location = header(headers, 'location');
      if (location === null) fail('IMPORT_FETCH_FAILED', `${describe(target.url)} answered ${statusCode} without a Location`);
      if (redirects >= options.maxRedirects) fail('IMPORT_FETCH_FAILED', `${describe(target.url)} redirects once more after ${options.maxRedirects} redirects, the most allowed`);
      // The Location as written goes to the filter: the parsed form hides numeric shorthands.
      next = location;
      base = target.url;
      subject = `redirect ${redirects + 1} (to ${URL.canParse(location, base.href) ? describe(new URL(location, base)) : 'a Location that is not a URL'})`;
      continue;
    }
    if (statusCode < 200 || statusCode > 299) {
      closeQuietly(client);
      fail('IMPORT_FETCH_FAILED', `${describe(target.url)} answered ${statusCode}; a download needs a 2xx answer`, { upstreamStatus: statusCode });
    }
    const size = contentLength(headers);
    if (size !== null && size > options.maxBytes) {
      closeQuietly(client);
      fail('BLOB_TOO_LARGE', `${describe(target.url)} announces ${size} bytes, more than the ${options.maxBytes} allowed`, { limit: options.maxBytes });
    }
    const body = new FetchedBody(answer.body, { maxBytes: options.maxBytes, idleTimeoutMs: options.idleTimeoutMs, declared: size, signal, release: () => closeQuietly(client) });
    return { body, size, contentType: header(headers, 'content-type'), finalUrl: target.url.href };
  }
}

// ---- the filter --------------------------------------------------------------------------

interface Vetted {
  url: URL;
  /** What the host resolved to, all checked; the connection may only go there. */
  addresses: string[];
}

async function vet(raw: string, filter: UrlFilter, lookup: HostLookup, subject: string, base?: URL, options: { unresolved: 'refuse' | 'pass' } = { unresolved: 'refuse' }): Promise<Vetted> {
  const refuse = (reason: string): never => fail('URL_FORBIDDEN', `${subject} does not pass filtering: ${reason}`);
  // The URL parser drops tabs and newlines anywhere and trims spaces: such a URL is not what it seems.
  if (/[\u0000-\u0020\u007f]/.test(raw)) refuse('the URL contains spaces or control characters');
  if (raw.length > MAX_URL_LENGTH) refuse(`the URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    return refuse(base ? 'it is not a URL' : 'it is not an absolute URL');
  }

  const scheme = url.protocol.slice(0, -1);
  if (!passes(scheme, normalizedList(filter.allowedSchemes), normalizedList(filter.disallowedSchemes))) {
    refuse(filter.allowedSchemes.length > 0 ? `scheme ${scheme} is not in allowed_schemes (${filter.allowedSchemes.join(', ')})` : `scheme ${scheme} is in disallowed_schemes`);
  }
  if (!FETCHABLE_SCHEMES.has(scheme)) refuse(`scheme ${scheme} cannot be fetched; only http and https can`);
  if (url.username || url.password) refuse('the URL must not carry credentials (user:password@)');

  const host = canonicalHost(hostOf(url));
  if (host === '') refuse('the URL has no host');
  const written = writtenAuthority(raw, base);
  // A relative Location keeps the host (and port) of the hop that was already checked.
  if (written === undefined && (base === undefined || url.host !== base.host)) refuse('its host cannot be read as written');
  // WHATWG parsing turns 2130706433, 127.1, 0x7f.1 or 0177.0.0.1 into 127.0.0.1: refuse
  // any IPv4 host that was not written out as four plain decimal numbers (Glance's rule).
  if (written !== undefined && isIP(host) === 4 && written.host.toLowerCase() !== host) {
    refuse(`host ${JSON.stringify(written.host.slice(0, 100))} is a numeric shorthand for ${host}; write the address in full`);
  }
  const hostAllowed = filter.allowedHosts.length > 0;
  if (!passes(host, filter.allowedHosts.map(hostEntry), filter.disallowedHosts.map(hostEntry))) {
    refuse(hostAllowed ? `host ${host} is not in allowed_hosts` : `host ${host} is in disallowed_hosts`);
  }
  // Only a port written in the URL is checked (as Glance); the parser hides a written default port.
  const writtenPort = written ? written.port : url.port;
  const port = writtenPort !== '' ? Number(writtenPort) : null;
  if (port !== null && !passes(port, filter.allowedPorts, filter.disallowedPorts)) {
    refuse(filter.allowedPorts.length > 0 ? `port ${port} is not in allowed_ports (${filter.allowedPorts.join(', ')})` : `port ${port} is in disallowed_ports`);
  }

  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await lookup(host);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) {
      if (options.unresolved === 'pass') return { url, addresses };
      refuse(`host ${host} does not resolve`);
    }
  }
  if (!filter.allowPrivate && !hostAllowed) {
    for (const address of addresses) {
      const reason = disallowedReason(address);
      if (reason === null) continue;
      const via = address === host ? `host ${host} is` : `host ${host} resolves to ${address},`;
      refuse(`${via} a ${reason} address; only public addresses are fetched unless the configuration allows private ones or lists the host`);
    }
  }
  return { url, addresses };
}

/** Glance: when the allow list is set, only it counts; otherwise the deny list does. */
function passes<T>(value: T, allowed: readonly T[], disallowed: readonly T[]): boolean {
  return allowed.length > 0 ? allowed.includes(value) : !disallowed.includes(value);
}

function normalizedList(values: readonly string[]): string[] {
  return values.map((v) => v.trim().toLowerCase());
}

/** Lower case, no trailing dot (`evil.example.` is `evil.example`). */
function canonicalHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** A configured host in the form `canonicalHost` gives: IPv6 without brackets, compressed. */
function hostEntry(entry: string): string {
  const bare = entry.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return canonicalHost(bare);
}

/**
 * The host and port as written, before the parser normalises them; undefined when the URL
 * is relative to `base` and keeps its host. Follows the WHATWG rules for http(s): without a
 * base any number of slashes leads to the authority; with one, two slashes are needed
 * (`http:/x` and `/x` are paths on the base's host, `//x` and `http://x` name a host).
 */
function writtenAuthority(raw: string, base: URL | undefined): { host: string; port: string } | undefined {
  const parts = /^(?:([a-z][a-z0-9+.-]*):)?([/\\]*)([^/\\?#]*)/i.exec(raw);
  if (!parts) return undefined;
  const [, scheme, slashes, authority] = parts;
  const sameScheme = base !== undefined && (scheme === undefined || `${scheme.toLowerCase()}:` === base.protocol);
  if (sameScheme && slashes.length < 2) return undefined;
  const hostPort = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority.slice(authority.lastIndexOf('@') + 1));
  if (!hostPort) return undefined;
  return { host: hostPort[1], port: hostPort[2] ?? '' };
}

/** For messages: no credentials, query or fragment, and not too long. */
function describe(url: URL): string {
  const text = `${url.protocol}//${url.host}${url.pathname}`;
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

const resolveAll: HostLookup = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, found: LookupAddress[]) => (err ? reject(err) : resolve(found.map((a) => a.address))));
  });

// ---- the request -------------------------------------------------------------------------

interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** One GET on a fresh connection to the vetted addresses. */
async function send(target: Vetted, options: WebDownloadOptions): Promise<{ client: Client; answer: Answer }> {
  const { url } = target;
  const client = new Client(url.origin, {
    connect: { timeout: options.connectTimeoutMs, lookup: pinnedLookup(target.addresses) },
    headersTimeout: options.idleTimeoutMs,
    // The body's idle time is measured by FetchedBody, only while its reader wants bytes.
    bodyTimeout: 0,
    pipelining: 1,
  });
  try {
    const answer = await client.request({
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      headers: { accept: '*/*', 'accept-encoding': 'identity', 'user-agent': 'vitrine-web-download', ...options.headers },
      signal: options.signal,
    });
    return { client, answer: { statusCode: answer.statusCode, headers: answer.headers, body: answer.body } };
  } catch (err) {
    closeQuietly(client);
    if (options.signal?.aborted) throw options.signal.reason;
    throw fetchFailure(err, describe(url), options);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that answers with the addresses already checked: connecting
 * never asks DNS again, so a name cannot rebind to another address between check and use.
 */
function pinnedLookup(addresses: readonly string[]) {
  return (hostname: string, options: { family?: number | string; all?: boolean }, callback: LookupCallback): void => {
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const usable = addresses.map((address) => ({ address, family: isIP(address) })).filter((a) => family === 0 || a.family === family);
    if (usable.length === 0) {
      callback(Object.assign(new Error(`no IPv${family} address was checked for ${hostname}`), { code: 'ENOTFOUND' }), '');
      return;
    }
    if (options.all) callback(null, usable);
    else callback(null, usable[0].address, usable[0].family);
  };
}

function fetchFailure(err: unknown, where: string, options: WebDownloadOptions): VitrineError {
  if (err instanceof VitrineError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new VitrineError('IMPORT_FETCH_FAILED', `connecting for ${where} timed out after ${options.connectTimeoutMs} ms`);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new VitrineError('IMPORT_FETCH_FAILED', `${where} did not answer within ${options.idleTimeoutMs} ms`);
  return new VitrineError('IMPORT_FETCH_FAILED', `fetching ${where} failed${typeof code === 'string' ? ` (${code})` : ''}`);
}

function header(headers: Answer['headers'], name: string): string | null {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function contentLength(headers: Answer['headers']): number | null {
  const value = header(headers, 'content-length');
  if (value === null || !/^\d{1,16}$/.test(value.trim())) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

function closeQuietly(client: Client): void {
  client.destroy().catch(() => undefined);
}

/** `work`, or the signal's reason as soon as it aborts (a DNS lookup cannot be cancelled). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

// ---- the body ----------------------------------------------------------------------------

interface BodyLimits {
  maxBytes: number;
  idleTimeoutMs: number;
  declared: number | null;
  signal?: AbortSignal;
  /** Frees the connection; called once, when the body ends or is destroyed. */
  release: () => void;
}

/**
 * The answer's body, pulled chunk by chunk as its reader asks: it counts bytes against the
 * cap, and times out only while the reader waits for bytes that do not come (a slow reader
 * is not a stalled server).
 */
class FetchedBody extends Readable {
  private bytes = 0;
  private wanted = false;
  private idle: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.destroy(this.limits.signal?.reason as Error);

  constructor(
    private readonly source: Readable,
    private readonly limits: BodyLimits,
  ) {
    super({ highWaterMark: 1 << 20 });
    source.on('readable', () => this.pump());
    source.on('end', () => this.finish());
    source.on('error', (err) => this.destroy(this.limits.signal?.aborted ? (this.limits.signal.reason as Error) : this.broken(err)));
    if (limits.signal?.aborted) queueMicrotask(this.onAbort);
    else limits.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  private pump(): void {
    while (this.wanted && !this.destroyed) {
      const chunk = this.source.read() as Buffer | null;
      if (chunk === null) {
        this.idle ??= setTimeout(() => this.destroy(new VitrineError('IMPORT_FETCH_FAILED', `the download stalled: no data for ${this.limits.idleTimeoutMs} ms after ${this.bytes} bytes`)), this.limits.idleTimeoutMs);
        return;
      }
      this.stopIdle();
      this.bytes += chunk.length;
      if (this.bytes > this.limits.maxBytes) {
        this.destroy(new VitrineError('BLOB_TOO_LARGE', `the download is larger than the ${this.limits.maxBytes} bytes allowed`, { limit: this.limits.maxBytes }));
        return;
      }
      this.wanted = this.push(chunk);
    }
  }

  private finish(): void {
    this.stopIdle();
    const { declared } = this.limits;
    if (declared !== null && this.bytes !== declared) {
      this.destroy(new VitrineError('IMPORT_FETCH_FAILED', `the download ended after ${this.bytes} of the ${declared} bytes announced`));
      return;
    }
    this.push(null);
    this.release();
  }

  private broken(err: Error): VitrineError {
    const code = (err as { code?: unknown }).code;
    return new VitrineError('IMPORT_FETCH_FAILED', `the connection broke after ${this.bytes} bytes${typeof code === 'string' ? ` (${code})` : ''}`);
  }

  private stopIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
  }

  private released = false;

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.limits.signal?.removeEventListener('abort', this.onAbort);
    this.limits.release();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    this.stopIdle();
    this.source.destroy();
    this.release();
    done(err);
  }
}

/** Settings of the fetcher that web-download imports use. */
export interface WebFetcherOptions {
  filter: UrlFilter;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRedirects: number;
  lookup?: HostLookup;
}

/** The import runner's view of this module: check a URL up front, then stream it. */
export function webFetcher(options: WebFetcherOptions): { check(uri: string): Promise<void>; open(uri: string, maxBytes: number, signal: AbortSignal): Promise<{ body: Readable; size: number | null }> } {
  return {
    check: async (uri) => {
      await checkImportUrl(uri, options.filter, options.lookup);
    },
    open: (uri, maxBytes, signal) => openWebDownload(uri, { ...options, maxBytes, signal }),
  };
}

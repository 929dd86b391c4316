import { Agent, request, type Dispatcher } from 'undici';
import { VitrineError, fail } from '../../../domain/errors';

/** v1 authentication (tempauth, swauth, or Keystone's v1 shim): `GET url` with X-Auth-User/X-Auth-Key. */
export interface SwiftV1Auth {
  url: string;
  /** `account:user` for tempauth. */
  user: string;
  key: string;
}

export interface SwiftSessionOptions {
  auth?: SwiftV1Auth;
  /** The account URL; overrides the X-Storage-Url that auth answers. Required with `token`. */
  storageUrl?: string;
  token?: string;
  connections: number;
  timeoutMs: number;
}

export type SwiftResponse = Dispatcher.ResponseData;

export interface SwiftRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** Below the account, already encoded: `/container` or `/container/object`; '' for the account. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  signal?: AbortSignal;
}

interface Token {
  value: string;
  storageUrl: string;
  /** When it expires (ms since the epoch), if auth said so. */
  expiresAt: number | undefined;
  /** Refresh this long before `expiresAt`. */
  marginMs: number;
}

/** Methods sent again once when the connection broke before the answer (a PUT is not: it may have landed). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'DELETE']);
/** How long before expiry a token is renewed (at most; a tenth of its life if that is less). */
const REFRESH_MARGIN_MS = 60_000;

/**
 * One Swift account seen through a keep-alive connection pool, with the token kept fresh.
 * Requests whose body can be sent again are retried once after a 401 with a new token; a
 * streamed body cannot, so `stream` first makes sure its token is valid and not about to
 * expire. Credentials and tokens live in private fields: they never reach a log line, an
 * error message or `util.inspect`.
 */
export class SwiftSession {
  private readonly agent: Agent;
  readonly #auth: SwiftV1Auth | undefined;
  readonly #storageUrl: string | undefined;
  #token: Token | undefined;
  #authenticating: Promise<Token> | undefined;

  constructor(
    /** The blob store's name, for error messages. */
    readonly store: string,
    options: SwiftSessionOptions,
  ) {
    this.#auth = options.auth;
    this.#storageUrl = options.storageUrl?.replace(/\/+$/, '');
    if (options.token !== undefined && this.#storageUrl !== undefined) {
      this.#token = { value: options.token, storageUrl: this.#storageUrl, expiresAt: undefined, marginMs: 0 };
    }
    this.agent = new Agent({ connections: options.connections, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  }

  /** The account URL (authenticating first if needed), e.g. for temp URLs. */
  async storageUrl(): Promise<string> {
    return (await this.token()).storageUrl;
  }

  /** A request whose body (if any) is in memory: retried once with a new token after a 401. */
  async request(req: SwiftRequest): Promise<SwiftResponse> {
    let token = await this.token();
    let res = await this.send(req, token);
    if (res.statusCode === 401 && this.#auth) {
      await res.body.dump();
      token = await this.renew(token);
      res = await this.send(req, token);
    }
    if (res.statusCode === 401) {
      await res.body.dump();
      this.forget(token);
      throw this.rejected();
    }
    return res;
  }

  /**
   * A request with a streamed body, sent once. Swift answers a stale token only after
   * reading (and discarding) much of the body, so the token is checked beforehand.
   */
  async stream(req: Omit<SwiftRequest, 'body'> & { body: AsyncIterable<Buffer> }): Promise<SwiftResponse> {
    let token = await this.token();
    if (token.expiresAt === undefined) {
      // A token whose lifetime nobody announced (a preset one) may have expired or never
      // been valid: try it on something cheap first, where a 401 is answered with a new
      // token. One HEAD per segment, next to a segment's upload.
      const probe = await this.request({ method: 'HEAD', path: '', signal: req.signal });
      await probe.body.dump();
      if (probe.statusCode >= 300) throw this.unexpected(probe.statusCode, 'HEAD account');
      token = await this.token();
    }
    const res = await this.send(req, token, false);
    if (res.statusCode === 401) {
      await res.body.dump();
      this.forget(token);
      throw new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" rejected its token during an upload (expired or revoked; the next request gets a new one)`, { store: this.store, status: 401 });
    }
    return res;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** UNAVAILABLE for an answer nothing here expects, naming the store and the operation, never a URL. */
  unexpected(status: number, operation: string): VitrineError {
    const kind = status >= 500 ? 'failed' : 'refused';
    return new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" ${kind} ${operation} (HTTP ${status})`, { store: this.store, status });
  }

  private rejected(): VitrineError {
    const why = this.#auth ? 'rejected a token it had just issued' : 'rejected the configured token (and no credentials are configured to get a new one)';
    return new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" ${why}`, { store: this.store, status: 401 });
  }

  private unreachable(err: unknown, operation: string): VitrineError {
    const e = err as { code?: string; message?: string };
    const why = e.code ?? e.message ?? 'unknown error';
    return new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" is unreachable (${operation}: ${why})`, { store: this.store, cause: why });
  }

  private async send(req: SwiftRequest | (Omit<SwiftRequest, 'body'> & { body: AsyncIterable<Buffer> }), token: Token, retry = true): Promise<SwiftResponse> {
    const url = new URL(token.storageUrl + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    const headers = { ...req.headers, 'x-auth-token': token.value };
    const operation = `${req.method} ${req.path.split('/').length > 2 ? 'object' : req.path ? 'container' : 'account'}`;
    // undici sends an async iterable as a chunked body; its typings only list streams.
    const options = { method: req.method, headers, body: req.body as Buffer | string | undefined, signal: req.signal, dispatcher: this.agent };
    try {
      return await request(url, options);
    } catch (err) {
      if (req.signal?.aborted) throw err;
      // A kept-alive connection the server had just closed: once more on a new one.
      if (retry && IDEMPOTENT.has(req.method)) {
        try {
          return await request(url, options);
        } catch (again) {
          if (req.signal?.aborted) throw again;
          throw this.unreachable(again, operation);
        }
      }
      throw this.unreachable(err, operation);
    }
  }

  /** The current token, fetched or renewed first when there is none or it is about to expire. */
  private async token(): Promise<Token> {
    const token = this.#token;
    if (token && (token.expiresAt === undefined || Date.now() < token.expiresAt - token.marginMs)) return token;
    if (!this.#auth) {
      if (token) return token;
      fail('CONFIG_INVALID', `the Swift blob store "${this.store}" has neither credentials nor a token`);
    }
    return this.renew(token);
  }

  /** A new token, unless another caller already replaced `stale`; one authentication at a time. */
  private renew(stale: Token | undefined): Promise<Token> {
    if (this.#token && this.#token !== stale) return Promise.resolve(this.#token);
    this.#authenticating ??= this.authenticate().finally(() => (this.#authenticating = undefined));
    return this.#authenticating;
  }

  private forget(token: Token): void {
    if (this.#token === token) this.#token = undefined;
  }

  private async authenticate(): Promise<Token> {
    const auth = this.#auth!;
    let res: SwiftResponse;
    try {
      res = await request(auth.url, { method: 'GET', headers: { 'x-auth-user': auth.user, 'x-auth-key': auth.key }, dispatcher: this.agent });
    } catch (err) {
      throw this.unreachable(err, 'authentication');
    }
    await res.body.dump();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" could not authenticate: the auth service refused its credentials`, { store: this.store, status: res.statusCode });
    }
    if (res.statusCode >= 300) throw this.unexpected(res.statusCode, 'authentication');
    const value = header(res, 'x-auth-token');
    const storageUrl = this.#storageUrl ?? header(res, 'x-storage-url')?.replace(/\/+$/, '');
    if (!value || !storageUrl) {
      throw new VitrineError('UNAVAILABLE', `the Swift blob store "${this.store}" could not authenticate: the auth service answered without X-Auth-Token or X-Storage-Url`, { store: this.store });
    }
    const seconds = Number(header(res, 'x-auth-token-expires'));
    const lifeMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
    this.#token = {
      value,
      storageUrl,
      expiresAt: lifeMs === undefined ? undefined : Date.now() + lifeMs,
      marginMs: lifeMs === undefined ? 0 : Math.min(REFRESH_MARGIN_MS, lifeMs / 10),
    };
    return this.#token;
  }
}

/** One response header as a string (undici gives repeated ones as arrays). */
export function header(res: SwiftResponse, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

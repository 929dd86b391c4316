import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { KeystoneAuthConfig } from '../config/schema';
import { VitrineError } from '../domain/errors';
import { ROLES, type Principal, type Role } from '../domain/policy';
import type { Logger } from '../observability/logger';
import { presentedToken, withToken, type Authenticate } from './auth';

/**
 * Token validation against a Keystone v3, the way keystonemiddleware does it for Glance:
 * `GET /v3/auth/tokens` with the service user's token in X-Auth-Token and the caller's in
 * X-Subject-Token. The project, user and roles come from the validated token.
 *
 * Validated tokens are cached (bounded, least recently used first out), keyed by a sha256
 * digest of the token. An entry is never served past the token's `expires_at`, and is
 * checked with Keystone again after `cacheSeconds`, so a revocation takes effect within
 * that time. A Keystone that is down or slower than `timeoutMs` fails a new token with
 * UNAVAILABLE; a cached token that is due for re-validation keeps working meanwhile, until
 * it expires.
 */
export interface KeystoneAuthenticatorOptions {
  logger?: Pick<Logger, 'warn'>;
  /** The clock (ms since the epoch); tests move it. */
  now?: () => number;
}

interface Validated {
  principal: Principal;
  /** ms since the epoch: never served at or after this. */
  expiresAt: number;
  /** ms since the epoch of the last answer from Keystone. */
  checkedAt: number;
}

/** A service token is renewed this long before it expires. */
const SERVICE_TOKEN_MARGIN_MS = 60_000;
/** Printable ASCII only: anything else cannot be a Keystone token, nor go in a header. */
const TOKEN_SHAPE = /^[\x21-\x7e]{1,8192}$/;

/**
 * Vitrine's identity in a Keystone cloud: `authenticate` validates callers' tokens;
 * `serviceToken` is the service user's own project-scoped token (renewed before it expires),
 * for what Vitrine reads as itself (a Glance backend's notifications, docs/glance-backend.md).
 */
export interface KeystoneIdentity {
  authenticate: Authenticate;
  serviceToken(): Promise<string>;
}

export function createKeystoneIdentity(config: KeystoneAuthConfig, options: KeystoneAuthenticatorOptions = {}): KeystoneIdentity {
  const validator = new KeystoneValidator(config, options);
  return { authenticate: keystoneAuthenticate(validator), serviceToken: () => validator.serviceToken() };
}

function keystoneAuthenticate(validator: KeystoneValidator): Authenticate {
  return async (headers: IncomingHttpHeaders) => {
    const token = presentedToken(headers);
    if (token === undefined) throw new VitrineError('UNAUTHENTICATED', 'no token: send Authorization: Bearer <token> or X-Auth-Token: <token>');
    const serviceToken = headerValue(headers, 'x-service-token');
    // Glance (keystonemiddleware) rejects a request whose X-Service-Token is invalid; the
    // caller stays the user token's.
    const [principal] = await Promise.all([validator.principalFor(token), serviceToken === undefined ? undefined : validator.principalFor(serviceToken, 'X-Service-Token')]);
    return withToken(principal, token);
  };
}

class KeystoneValidator {
  readonly #config: KeystoneAuthConfig;
  readonly #baseUrl: string;
  readonly #now: () => number;
  readonly #logger?: Pick<Logger, 'warn'>;
  readonly #cache = new Map<string, Validated>();
  readonly #inFlight = new Map<string, Promise<Validated>>();
  #service?: { token: string; renewAt: number };
  #serviceRequest?: Promise<string>;

  constructor(config: KeystoneAuthConfig, options: KeystoneAuthenticatorOptions) {
    this.#config = config;
    this.#baseUrl = config.url.replace(/\/+$/, '');
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
  }

  serviceToken(): Promise<string> {
    return this.#serviceToken(false);
  }

  async principalFor(token: string, what = 'the token'): Promise<Principal> {
    if (!TOKEN_SHAPE.test(token)) throw new VitrineError('UNAUTHENTICATED', `${what} is not valid`);
    const key = digest(token);
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached) {
      if (now >= cached.expiresAt) {
        this.#cache.delete(key);
        throw new VitrineError('UNAUTHENTICATED', `${what} has expired`);
      }
      if (now - cached.checkedAt < this.#config.cacheSeconds * 1000) {
        this.#touch(key, cached);
        return cached.principal;
      }
    }
    try {
      return (await this.#validateOnce(key, token, what)).principal;
    } catch (err) {
      // Keystone unreachable: a token it vouched for, and that has not expired, stays good.
      if (cached && err instanceof VitrineError && err.code === 'UNAVAILABLE' && this.#now() < cached.expiresAt) return cached.principal;
      if (cached) this.#cache.delete(key);
      throw err;
    }
  }

  /** One Keystone request per token at a time, however many requests present it. */
  #validateOnce(key: string, token: string, what: string): Promise<Validated> {
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#validate(token, what)
        .then((validated) => {
          this.#touch(key, validated);
          return validated;
        })
        .finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  #touch(key: string, entry: Validated): void {
    this.#cache.delete(key);
    this.#cache.set(key, entry);
    while (this.#cache.size > this.#config.cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async #validate(token: string, what: string, retried = false): Promise<Validated> {
    const serviceToken = await this.#serviceToken(retried);
    const response = await this.#request('GET', '/v3/auth/tokens', { 'x-auth-token': serviceToken, 'x-subject-token': token });
    if (response.status === 200) return this.#toValidated(await this.#json(response), what);
    await response.body?.cancel();
    // 401: our service token went bad (expired, revoked): get another one, once.
    if (response.status === 401 && !retried) return this.#validate(token, what, true);
    // 404: unknown, revoked or expired; 400: not even shaped like a token.
    if (response.status === 404 || response.status === 400) throw new VitrineError('UNAUTHENTICATED', `${what} is not valid`);
    this.#logger?.warn({ status: response.status }, 'keystone refused a token validation');
    throw new VitrineError('UNAVAILABLE', `the identity service answered HTTP ${response.status} to a token validation`);
  }

  #toValidated(body: unknown, what: string): Validated {
    const token = (body as { token?: KeystoneToken } | null)?.token;
    const expiresAt = Date.parse(token?.expires_at ?? '');
    if (!token || !token.user?.id || Number.isNaN(expiresAt)) throw new VitrineError('UNAVAILABLE', 'the identity service answered a token validation with an unexpected body');
    const now = this.#now();
    if (now >= expiresAt) throw new VitrineError('UNAUTHENTICATED', `${what} has expired`);
    if (!token.project?.id) throw new VitrineError('UNAUTHENTICATED', `${what} is not scoped to a project: request a project-scoped token`);
    const principal = Object.freeze({ projectId: token.project.id, userId: token.user.id, roles: Object.freeze(rolesOf(token.roles ?? [])) });
    return { principal, expiresAt, checkedAt: now };
  }

  /** The service user's project-scoped token; a new one when it nears expiry or Keystone refused it. */
  async #serviceToken(renew: boolean): Promise<string> {
    if (!renew && this.#service && this.#now() < this.#service.renewAt) return this.#service.token;
    this.#serviceRequest ??= this.#issueServiceToken().finally(() => (this.#serviceRequest = undefined));
    return this.#serviceRequest;
  }

  async #issueServiceToken(): Promise<string> {
    const c = this.#config;
    const domain = { name: c.serviceDomain };
    const body = {
      auth: {
        identity: { methods: ['password'], password: { user: { name: c.serviceUser, domain, password: c.servicePassword } } },
        scope: { project: { name: c.serviceProject, domain } },
      },
    };
    const response = await this.#request('POST', '/v3/auth/tokens', { 'content-type': 'application/json' }, JSON.stringify(body));
    const token = response.headers.get('x-subject-token');
    const payload = await this.#json(response);
    if (response.status !== 201 || !token) {
      this.#logger?.warn({ status: response.status, user: c.serviceUser }, 'keystone refused the service user');
      throw new VitrineError('UNAVAILABLE', `the identity service refused Vitrine's service user (HTTP ${response.status})`);
    }
    const expiresAt = Date.parse((payload as { token?: KeystoneToken } | null)?.token?.expires_at ?? '');
    const now = this.#now();
    // Renewed a minute before expiry, or at three quarters of a short lifetime.
    const lifetime = Number.isNaN(expiresAt) ? 0 : expiresAt - now;
    this.#service = { token, renewAt: now + Math.max(0, Math.min(lifetime - SERVICE_TOKEN_MARGIN_MS, (lifetime * 3) / 4)) };
    return token;
  }

  async #request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> {
    const signal = AbortSignal.timeout(this.#config.timeoutMs);
    const send = () => fetch(this.#baseUrl + path, { method, headers: { accept: 'application/json', ...headers }, body, signal });
    try {
      try {
        return await send();
      } catch (err) {
        // A kept-alive connection the server closed meanwhile fails at once: one more try
        // (both requests Vitrine makes are safe to repeat), within the same deadline.
        if (signal.aborted) throw err;
        return await send();
      }
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      this.#logger?.warn({ err: { name: (err as Error).name, message: (err as Error).message, cause: cause?.code ?? cause?.message } }, 'keystone request failed');
      throw new VitrineError('UNAVAILABLE', timedOut ? `the identity service did not answer within ${this.#config.timeoutMs} ms` : 'the identity service is not reachable');
    }
  }

  async #json(response: Response): Promise<unknown> {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
}

interface KeystoneToken {
  expires_at?: string;
  user?: { id?: string };
  project?: { id?: string };
  roles?: { name?: string }[];
}

/** Keystone role names Vitrine knows; `member` implies `reader` (as Keystone's implied roles do). */
function rolesOf(roles: readonly { name?: string }[]): Role[] {
  const names = new Set(roles.map((r) => (r.name ?? '').toLowerCase()));
  if (names.has('member')) names.add('reader');
  return ROLES.filter((r) => names.has(r));
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const header = headers[name];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : value.trim();
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

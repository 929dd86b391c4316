import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { VitrineError } from '../domain/errors';
import type { Principal, Role } from '../domain/policy';

/**
 * Resolves the caller from `Authorization: Bearer <token>` or `X-Auth-Token: <token>`
 * (Keystone's header, which OpenStack clients send). Tokens are kept only as sha256
 * digests: a Map lookup by digest needs no plaintext and no character-by-character compare.
 */
export interface TokenGrant {
  token: string;
  projectId: string;
  userId: string;
  roles: readonly Role[];
}

/**
 * Resolves the caller of a request, or throws UNAUTHENTICATED (UNAVAILABLE when the identity
 * service cannot be asked). Static tokens answer at once; Keystone tokens may need a round trip.
 */
export type Authenticate = (headers: IncomingHttpHeaders) => Principal | Promise<Principal>;

export function createAuthenticator(grants: readonly TokenGrant[]): (headers: IncomingHttpHeaders) => Principal {
  const byDigest = new Map<string, Principal>();
  for (const g of grants) {
    byDigest.set(digest(g.token), Object.freeze({ projectId: g.projectId, userId: g.userId, roles: Object.freeze([...g.roles]) }));
  }
  return (headers) => {
    const token = presentedToken(headers);
    if (token === undefined) throw new VitrineError('UNAUTHENTICATED', 'no token: send Authorization: Bearer <token> or X-Auth-Token: <token>');
    const principal = byDigest.get(digest(token));
    if (!principal) throw new VitrineError('UNAUTHENTICATED', 'the token is not valid');
    return withToken(principal, token);
  };
}

/** The principal carrying the presented token (non-enumerable: never logged or serialized). */
export function withToken(principal: Principal, token: string): Principal {
  const out = { projectId: principal.projectId, userId: principal.userId, roles: principal.roles };
  Object.defineProperty(out, 'token', { value: token, enumerable: false });
  return Object.freeze(out);
}

/** The Authorization bearer token if present, else X-Auth-Token. */
export function presentedToken(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) throw new VitrineError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
    return match[1];
  }
  const header = headers['x-auth-token'];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined ? undefined : value.trim();
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

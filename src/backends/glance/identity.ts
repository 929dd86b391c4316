import { VitrineError } from '../../domain/errors';
import type { Principal } from '../../domain/policy';

/**
 * How the caller's identity reaches Glance, which applies its own policy to every call.
 * `headers`: the identity headers keystonemiddleware would set after validating a token
 * (X-Project-Id, X-User-Id, X-Roles), for a Glance that sits behind a trusted auth filter
 * and accepts them from Vitrine only. `token`: the caller's own token as X-Auth-Token, for
 * a Glance that validates tokens itself (Keystone).
 */
export type IdentityMode = 'headers' | 'token';

export function identityHeaders(mode: IdentityMode, principal: Principal, backend: string): Record<string, string> {
  if (mode === 'headers') {
    return { 'x-project-id': principal.projectId, 'x-user-id': principal.userId, 'x-roles': principal.roles.join(',') };
  }
  if (!principal.token) {
    throw new VitrineError('UNAUTHENTICATED', `backend ${backend} forwards the caller's token to Glance, and this request carries none`, { backend });
  }
  return { 'x-auth-token': principal.token };
}

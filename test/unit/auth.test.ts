import { createAuthenticator } from '../../src/http/auth';

/** The presented token rides on the principal for backends that forward it, and never leaks into logs. */
it('puts the presented token on the principal, non-enumerable', () => {
  const authenticate = createAuthenticator([{ token: 'tok-1', projectId: 'p1', userId: 'u1', roles: ['member'] }]);
  const principal = authenticate({ 'x-auth-token': 'tok-1' });
  expect(principal).toEqual({ projectId: 'p1', userId: 'u1', roles: ['member'] });
  expect(principal.token).toBe('tok-1');
  expect(JSON.stringify(principal)).not.toContain('tok-1');
  expect(Object.keys(principal)).not.toContain('token');
  expect(authenticate({ authorization: 'Bearer tok-1' }).token).toBe('tok-1');
  expect(() => authenticate({ 'x-auth-token': 'other' })).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
});

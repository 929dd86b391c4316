import { VitrineError } from '../../src/domain/errors';
import { loadConfig } from '../../src/config/load';

/** The `auth` key: static by default, keystone with its service user; mistakes named, secrets never shown. */
function problems(auth: unknown): string[] {
  try {
    loadConfig({ env: {}, overrides: { auth } });
  } catch (err) {
    expect(err).toBeInstanceOf(VitrineError);
    expect((err as VitrineError).code).toBe('CONFIG_INVALID');
    return (err as Error).message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
  }
  return [];
}

const KEYSTONE = { url: 'http://127.0.0.1:5000', serviceUser: 'vitrine', servicePassword: 'a-secret-password', serviceProject: 'service' };

describe('config: auth', () => {
  it('defaults to static tokens', () => {
    expect(loadConfig({ env: {} }).auth).toEqual({ mode: 'static', tokens: [] });
  });

  it('completes a keystone section with defaults', () => {
    expect(loadConfig({ env: {}, overrides: { auth: { mode: 'keystone', keystone: KEYSTONE } } }).auth.keystone).toEqual({
      ...KEYSTONE,
      serviceDomain: 'Default',
      cacheSeconds: 300,
      cacheSize: 10_000,
      timeoutMs: 5_000,
    });
  });

  it('requires the keystone section in keystone mode', () => {
    expect(problems({ mode: 'keystone' })).toEqual([expect.stringMatching(/^auth\.keystone: expected \{ url, serviceUser, servicePassword, serviceProject \}/)]);
  });

  it('reports every bad key at once and never echoes a secret', () => {
    const found = problems({ mode: 'ldap', keystone: { ...KEYSTONE, url: 'http://127.0.0.1:5000/v3', servicePassword: 7, cacheSize: 0, pasword: 'a-secret-password' } });
    expect(found.map((l) => l.split(':')[0]).sort()).toEqual(['auth.keystone.cacheSize', 'auth.keystone.pasword', 'auth.keystone.servicePassword', 'auth.keystone.url', 'auth.mode']);
    expect(found.join('\n')).not.toContain('a-secret-password');
  });
});

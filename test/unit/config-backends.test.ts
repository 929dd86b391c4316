import { VitrineError } from '../../src/domain/errors';
import { loadConfig } from '../../src/config/load';

/** The `backends` key: defaults, what a Glance entry is completed with, and every mistake named. */
function problems(backends: unknown): string[] {
  try {
    loadConfig({ env: {}, overrides: { backends } });
  } catch (err) {
    expect(err).toBeInstanceOf(VitrineError);
    expect((err as VitrineError).code).toBe('CONFIG_INVALID');
    return (err as Error).message.split('\n').slice(1).map((l) => l.replace(/^ {2}- /, ''));
  }
  return [];
}

describe('config: backends', () => {
  it('defaults to one native backend named native', () => {
    expect(loadConfig({ env: {} }).backends).toEqual([{ name: 'native', driver: 'native' }]);
  });

  it('completes a Glance backend with defaults and keeps the order', () => {
    const config = loadConfig({ env: {}, overrides: { backends: [{ name: 'legacy', driver: 'glance', url: 'http://127.0.0.1:9292' }, { name: 'local', driver: 'native' }] } });
    expect(config.backends).toEqual([
      {
        name: 'legacy',
        driver: 'glance',
        url: 'http://127.0.0.1:9292',
        identity: 'token',
        timeouts: { connectMs: 3000, requestMs: 30000, idleMs: 60000 },
        retries: 2,
        breaker: { failures: 5, resetMs: 10000 },
        connections: 16,
        importPollIntervalMs: 1000,
        inFlightPollMs: 5000,
      },
      { name: 'local', driver: 'native' },
    ]);
    expect(Object.isFrozen(config.backends[0])).toBe(true);
  });

  it('names every bad key with what was expected', () => {
    expect(problems([])).toEqual(['backends: expected a non-empty array, got an array of 0 items (from overrides)']);
    expect(problems({ name: 'x' })).toEqual([expect.stringMatching(/^backends: expected a non-empty array, got an object/)]);
    expect(problems([{ name: 'Legacy!', driver: 'native' }])).toEqual([
      'backends[0].name: expected a name of lower-case letters, digits, _ and -, starting with a letter, got "Legacy!" (from overrides)',
    ]);
    expect(problems([{ name: 'x', driver: 'swift' }])).toEqual(['backends[0].driver: expected a backend: an object with driver "native" or "glance", got "swift" (from overrides)']);
    expect(problems([{ name: 'g', driver: 'glance', url: 'ftp://host', identity: 'magic', retries: -1, timeouts: { connectMs: 0 }, breaker: { resetMs: 'soon' }, colour: 'red' }])).toEqual(expect.arrayContaining([
      'backends[0].url: expected an http:// or https:// URL of the Glance endpoint, without /v2, got "ftp://host" (from overrides)',
      'backends[0].identity: expected one of token, headers, got "magic" (from overrides)',
      'backends[0].retries: expected an integer from 0 to 10, got -1 (from overrides)',
      'backends[0].timeouts.connectMs: expected an integer ≥ 1, got 0 (from overrides)',
      'backends[0].breaker.resetMs: expected an integer ≥ 1, got "soon" (from overrides)',
      expect.stringMatching(/^backends\[0\]\.colour: unknown key; expected one of: name, driver, url, identity, timeouts, retries, breaker, connections, importPollIntervalMs, inFlightPollMs, notifications, got "red"/),
    ]));
    expect(problems([{ name: 'g', driver: 'glance', url: 'http://glance:9292/v2' }])).toEqual([expect.stringMatching(/^backends\[0\]\.url: expected an http:\/\/ or https:\/\/ URL of the Glance endpoint, without \/v2/)]);
    expect(problems([{ name: 'g', driver: 'glance' }])).toEqual([expect.stringMatching(/^backends\[0\]\.url: expected an http/)]);
  });

  it("completes Glance's notifications with oslo.messaging's defaults, and names their mistakes", () => {
    const config = loadConfig({ env: {}, overrides: { backends: [{ name: 'legacy', driver: 'glance', url: 'http://g:9292', notifications: { url: 'amqp://guest:guest@127.0.0.1:5672/' } }] } });
    expect(config.backends[0]).toMatchObject({
      notifications: { url: 'amqp://guest:guest@127.0.0.1:5672/', exchange: 'glance', topic: 'notifications', queueExpiresMs: 3_600_000, reconnectMinMs: 500, reconnectMaxMs: 30_000 },
    });
    expect(problems([{ name: 'g', driver: 'glance', url: 'http://g', notifications: { url: 'rabbit://guest@h/', exchange: '', queue: 7 }, inFlightPollMs: -1 }])).toEqual(expect.arrayContaining([
      'backends[0].notifications.url: expected an amqp:// or amqps:// URL of the RabbitMQ that Glance notifies, got "rabbit://guest@h/" (from overrides)',
      expect.stringMatching(/^backends\[0\]\.notifications\.exchange: expected /),
      expect.stringMatching(/^backends\[0\]\.notifications\.queue: expected /),
      'backends[0].inFlightPollMs: expected an integer ≥ 0, got -1 (from overrides)',
    ]));
  });

  it('wants unique names and at most one native backend', () => {
    expect(problems([
      { name: 'a', driver: 'native' },
      { name: 'a', driver: 'glance', url: 'http://g1' },
      { name: 'b', driver: 'native' },
    ])).toEqual([
      'backends[1].name: expected a name no other backend has, got "a" (from overrides)',
      'backends[2].driver: expected at most one native backend, got "native" (from overrides)',
    ]);
  });
});

import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/load';
import { startTestApp, type TestApp } from '../helpers/app';
import { FaultProxy } from '../helpers/fault-proxy';

/**
 * The whole app with its event bus on the real Redis and the real NATS, reached through a
 * proxy that the test can cut: /readyz reports the bus, the process survives the outage,
 * and readiness returns once the bus has reconnected.
 */
const BROKERS = [
  { driver: 'redis', url: process.env.VITRINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  { driver: 'nats', url: process.env.VITRINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
] as const;

/** Asks until `check` holds; the app offers no event to await, so this polls, within a bound. */
async function eventually(check: () => Promise<boolean>, what: string, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(BROKERS)('the app with its event bus on $driver', ({ driver, url }) => {
  let proxy: FaultProxy;
  let app: TestApp;

  beforeAll(async () => {
    const target = new URL(url);
    proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port) });
    app = await startTestApp({ events: { url: proxy.urlFor(url), channel: `vitrine.test.${randomBytes(6).toString('hex')}` } });
  });

  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });

  it('reports the bus in /readyz, unavailable during an outage and ready again after it', async () => {
    expect(app.config.events.driver).toBe(driver);
    const ready = await app.http('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.dependencies.events).toEqual({ status: 'ok' });

    proxy.cut();
    const down = await app.http('GET', '/readyz');
    expect(down.status).toBe(503);
    expect(down.body.dependencies).toMatchObject({ events: { status: 'unavailable' }, metadata: { status: 'ok' } });
    expect((await app.http('GET', '/healthz')).status).toBe(200);

    proxy.restore();
    await eventually(async () => (await app.http('GET', '/readyz')).status === 200, 'ready');
  });
});

describe('events configuration', () => {
  it('keeps the in-process bus the default and picks the broker from the URL (VITRINE_EVENTS_URL)', () => {
    expect(loadConfig({ env: {} }).events).toEqual({ driver: 'memory', keep: 100_000, pruneIntervalMs: 60_000 });
    expect(loadConfig({ env: { VITRINE_EVENTS_URL: 'rediss://:pw@cache:6380/2' } }).events).toMatchObject({ driver: 'redis', url: 'rediss://:pw@cache:6380/2', channel: 'vitrine.events' });
    expect(loadConfig({ env: { VITRINE_EVENTS_URL: 'nats://bus:4222' }, overrides: { events: { channel: 'prod.vitrine' } } }).events)
      .toMatchObject({ driver: 'nats', url: 'nats://bus:4222', channel: 'prod.vitrine' });
  });

  it('names what is missing or wrong, never echoing the URL', () => {
    const load = (events: Record<string, unknown>, env: Record<string, string> = {}) => () => loadConfig({ env, overrides: { events } });
    expect(load({ driver: 'redis' })).toThrow('events.url: expected a redis:// or rediss:// URL when events.driver is "redis", got nothing');
    expect(load({ driver: 'nats' }, { VITRINE_EVENTS_URL: 'redis://:hunter2@cache' }))
      .toThrow('events.url: expected a nats:// URL when events.driver is "nats", got a string of 22 characters (from VITRINE_EVENTS_URL)');
    expect(load({ driver: 'memory', url: 'nats://bus' })).toThrow('events.driver: expected "redis" or "nats" when events.url is set (or remove the url), got "memory"');
    expect(load({}, { VITRINE_EVENTS_URL: 'amqp://u:hunter2@mq' })).toThrow('events.url: expected a redis://, rediss:// or nats:// URL, got a string of 19 characters (from VITRINE_EVENTS_URL)');
    expect(load({}, { VITRINE_EVENTS_URL: 'amqp://u:hunter2@mq' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
    expect(load({ channel: 'events.>' })).toThrow('events.channel: expected a channel name of letters, digits, _ and -, in parts joined by ".", got "events.>"');
    expect(load({ driver: 'kafka' })).toThrow('events.driver: expected one of memory, redis, nats, got "kafka"');
  });
});

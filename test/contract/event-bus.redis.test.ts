import Redis from 'ioredis';
import { RedisEventBus } from '../../src/events/redis';
import { artifactMessage, collect } from './event-bus.contract';
import { brokerBusContract, connectionEvents, freshChannel, openReal, type BrokerFixture } from './event-bus.broker';

/**
 * The EventBus contract and the broker suite against the real Redis, each test on a channel
 * of its own. An unreachable server fails every test (it is never skipped).
 */
const fixture: BrokerFixture = {
  broker: 'Redis',
  url: process.env.VITRINE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  urlVariable: 'VITRINE_TEST_REDIS_URL',
  open: (options) => RedisEventBus.connect(options),
  publishRaw: (channel, payload) => admin(async (redis) => void (await redis.publish(channel, payload))),
  oneOrderForAllPublishers: true,
};

/** A plain connection of the test's own, for what the bus does not do. */
async function admin<R>(fn: (redis: Redis) => Promise<R>): Promise<R> {
  const redis = new Redis(fixture.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

brokerBusContract(fixture);

describe('Redis bus when the server drops its connections', () => {
  it('reconnects after CLIENT KILL, resubscribes, and delivers later messages', async () => {
    const channel = freshChannel();
    const clientName = `vitrine-test-${channel.replace(/\./g, '-')}`;
    const events = connectionEvents();
    const bus = await openReal(fixture, channel, { clientName, onEvent: events.onEvent });
    const other = await openReal(fixture, channel);
    try {
      const seen = collect(bus);
      // Only this bus's two connections, found by name: other clients of the shared server stay.
      const killed = await admin(async (redis) => {
        const clients = String(await redis.client('LIST')).split('\n');
        const ids = clients.filter((line) => line.includes(` name=${clientName}:`)).map((line) => /\bid=(\d+)/.exec(line)![1]);
        for (const id of ids) await redis.client('KILL', 'ID', id);
        return ids.length;
      });
      expect(killed).toBe(2);
      await events.until('reconnected');
      await bus.ping();
      await other.publish(artifactMessage(1));
      await bus.publish(artifactMessage(2));
      await seen.until(2);
      expect(seen.seqs()).toEqual([1, 2]);
      expect(events.seen).toEqual(['disconnected', 'reconnected']);
    } finally {
      await Promise.all([bus.close(), other.close()]);
    }
  });
});

import { randomBytes } from 'node:crypto';
import type { BusConnectionEvent } from '../../src/events/broker';
import type { EventBus } from '../../src/events/port';
import { FaultProxy } from '../helpers/fault-proxy';
import { artifactMessage, collect, eventBusContract } from './event-bus.contract';

/**
 * What every broker-backed bus (Redis, NATS) promises beyond the EventBus contract: several
 * instances on one channel, an outage survived, readiness that tells the truth. Run against
 * the real broker; a fault proxy plays the outage so the shared broker is never disturbed.
 */
export interface BrokerBus extends EventBus {
  ping(): Promise<void>;
}

export interface BrokerFixture {
  /** "Redis", "NATS": used in test names and in the unreachable-broker message. */
  broker: string;
  /** The real broker's URL (from the environment, or the local default). */
  url: string;
  /** The variable that overrides `url`, named in the failure when the broker is unreachable. */
  urlVariable: string;
  open(options: { url: string; channel: string; onEvent?: (event: BusConnectionEvent) => void; clientName?: string }): Promise<BrokerBus>;
  /** Puts an arbitrary payload on the channel, as a foreign publisher would. */
  publishRaw(channel: string, payload: string): Promise<void>;
  /** Whether every instance sees messages of different publishers in the same order. */
  oneOrderForAllPublishers: boolean;
}

const RUN = randomBytes(6).toString('hex');
let channels = 0;

/** A channel of this test alone, so parallel runs on one broker never see each other. */
export function freshChannel(): string {
  return `vitrine.test.${RUN}.${++channels}`;
}

/** Opens a bus on the real broker; an unreachable broker fails the test with what to do. */
export async function openReal(fixture: BrokerFixture, channel: string, extra: { onEvent?: (event: BusConnectionEvent) => void; clientName?: string } = {}): Promise<BrokerBus> {
  try {
    return await fixture.open({ url: fixture.url, channel, ...extra });
  } catch (err) {
    throw new Error(
      `${fixture.broker} is not reachable at ${fixture.url.replace(/\/\/[^@/]*@/, '//…@')} (${(err as Error).message}). `
      + `These tests need a real server: start it, or point ${fixture.urlVariable} at one.`,
    );
  }
}

/** Connection events of a bus, with a wait for the one expected next. */
export function connectionEvents() {
  const seen: BusConnectionEvent['kind'][] = [];
  const waiters: (() => void)[] = [];
  return {
    seen,
    onEvent: (event: BusConnectionEvent) => {
      seen.push(event.kind);
      waiters.splice(0).forEach((wake) => wake());
    },
    /** Resolves once `kind` has been seen `count` times in all. */
    async until(kind: BusConnectionEvent['kind'], count = 1): Promise<void> {
      while (seen.filter((k) => k === kind).length < count) await new Promise<void>((wake) => waiters.push(wake));
    },
  };
}

export function brokerBusContract(fixture: BrokerFixture): void {
  eventBusContract(`${fixture.broker}, one instance`, async () => {
    const bus = await openReal(fixture, freshChannel());
    return { publisher: bus, subscriber: bus, close: () => bus.close() };
  });

  eventBusContract(`${fixture.broker}, two instances`, async () => {
    const channel = freshChannel();
    const publisher = await openReal(fixture, channel);
    const subscriber = await openReal(fixture, channel);
    return { publisher, subscriber, close: async () => void (await Promise.all([publisher.close(), subscriber.close()])) };
  });

  describe(`${fixture.broker} bus across instances`, () => {
    const opened: EventBus[] = [];
    const open = async (channel: string, extra?: Parameters<typeof openReal>[2]) => {
      const bus = await openReal(fixture, channel, extra);
      opened.push(bus);
      return bus;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((bus) => bus.close()));
    });

    it('delivers what A publishes to the subscribers of A and of B, in publish order, once each', async () => {
      const channel = freshChannel();
      const [a, b] = [await open(channel), await open(channel)];
      const onA = [collect(a), collect(a)];
      const onB = [collect(b)];
      for (let seq = 1; seq <= 5; seq++) await a.publish(artifactMessage(seq));
      await Promise.all([...onA, ...onB].map((c) => c.until(5)));
      // The last message is in: a duplicate of an earlier one would have come before it.
      for (const c of [...onA, ...onB]) expect(c.seqs()).toEqual([1, 2, 3, 4, 5]);
    });

    it('keeps each publisher\'s order on every instance when both publish at once', async () => {
      const channel = freshChannel();
      const [a, b] = [await open(channel), await open(channel)];
      const onA = collect(a);
      const onB = collect(b);
      const publishAll = async (bus: EventBus, seqs: number[]) => {
        for (const seq of seqs) await bus.publish(artifactMessage(seq));
      };
      await Promise.all([publishAll(a, [1, 2, 3, 4, 5]), publishAll(b, [101, 102, 103, 104, 105])]);
      await Promise.all([onA.until(10), onB.until(10)]);
      for (const seen of [onA.seqs(), onB.seqs()]) {
        expect(seen.filter((s) => s < 100)).toEqual([1, 2, 3, 4, 5]);
        expect(seen.filter((s) => s > 100)).toEqual([101, 102, 103, 104, 105]);
      }
      if (fixture.oneOrderForAllPublishers) expect(onB.seqs()).toEqual(onA.seqs());
    });

    it('ignores other channels, and discards payloads that are not bus messages', async () => {
      const channel = freshChannel();
      const events = connectionEvents();
      const bus = await open(channel, { onEvent: events.onEvent });
      const other = await open(freshChannel());
      const seen = collect(bus);
      await other.publish(artifactMessage(99));
      await fixture.publishRaw(channel, 'not json');
      await fixture.publishRaw(channel, JSON.stringify({ topic: 'gossip', event: {} }));
      await bus.publish(artifactMessage(1));
      await seen.until(1);
      expect(seen.seqs()).toEqual([1]);
      expect(events.seen).toEqual(['discarded', 'discarded']);
    });

    it('rejects publish after close, and closes twice without error', async () => {
      const bus = await open(freshChannel());
      await bus.close();
      await bus.close();
      await expect(bus.publish(artifactMessage(1))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect((bus as BrokerBus).ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    });
  });

  describe(`${fixture.broker} bus through an outage`, () => {
    let proxy: FaultProxy;
    const opened: EventBus[] = [];
    beforeEach(async () => {
      proxy = await FaultProxy.start({ host: new URL(fixture.url).hostname, port: Number(new URL(fixture.url).port) });
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((bus) => bus.close()));
      await proxy.close();
    });

    it('fails to connect with UNAVAILABLE, naming the URL without its password', async () => {
      proxy.cut();
      const url = proxy.urlFor(fixture.url).replace('//', '//vitrine:s3cret-password@');
      const attempt = fixture.open({ url, channel: freshChannel() });
      await expect(attempt).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      const message = await attempt.catch((err: Error) => err.message);
      expect(message).toContain(`the event bus cannot reach ${fixture.broker} at ${url.replace('vitrine:s3cret-password', '…')}`);
      expect(message).not.toContain('s3cret');
    });

    it('reports not ready while the broker is unreachable, reconnects, and delivers later messages', async () => {
      const channel = freshChannel();
      const events = connectionEvents();
      const proxied = await fixture.open({ url: proxy.urlFor(fixture.url), channel, onEvent: events.onEvent });
      opened.push(proxied);
      const direct = await openReal(fixture, channel);
      opened.push(direct);
      const onProxied = collect(proxied);
      const onDirect = collect(direct);
      await proxied.ping();

      proxy.cut();
      await events.until('disconnected');
      // The proxy refuses every reconnection until restored: nothing here races a reconnect.
      await expect(proxied.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await direct.publish(artifactMessage(1));

      proxy.restore();
      await events.until('reconnected');
      await proxied.ping();
      await proxied.publish(artifactMessage(2));
      await direct.publish(artifactMessage(3));
      await Promise.all([onProxied.until(2), onDirect.until(3)]);
      // Pub/sub is at-most-once: message 1, published during the outage, never reached it.
      expect(onProxied.seqs()).toEqual([2, 3]);
      expect(onDirect.seqs()).toEqual([1, 2, 3]);
      expect(events.seen).toEqual(['disconnected', 'reconnected']);
    });

    it('tells its onReconnect listeners once per reconnection (so they can re-read the log), until they unsubscribe', async () => {
      const events = connectionEvents();
      const proxied = await fixture.open({ url: proxy.urlFor(fixture.url), channel: freshChannel(), onEvent: events.onEvent });
      opened.push(proxied);
      const calls: string[] = [];
      const first = proxied.onReconnect?.(() => calls.push(`first after ${events.seen.join(',')}`));
      proxied.onReconnect?.(() => calls.push('second'));
      expect(first).toBeDefined();

      proxy.cut();
      await events.until('disconnected');
      expect(calls).toEqual([]);
      proxy.restore();
      await events.until('reconnected');
      // Listeners hear of it after the bus is subscribed again, as 'reconnected' reports.
      expect(calls).toEqual(['first after disconnected,reconnected', 'second']);

      first?.unsubscribe();
      proxy.cut();
      await events.until('disconnected', 2);
      proxy.restore();
      await events.until('reconnected', 2);
      expect(calls).toEqual(['first after disconnected,reconnected', 'second', 'second']);
    });
  });
}

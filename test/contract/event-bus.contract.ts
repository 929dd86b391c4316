import type { StoredEvent } from '../../src/storage/metadata/port';
import type { BusMessage, EventBus, ProgressEvent } from '../../src/events/port';

/**
 * The EventBus contract, run against every adapter (memory, Redis, NATS).
 * Delivery may be asynchronous and cross-process: a factory gives a publishing and a
 * subscribing bus (the same instance for the in-memory bus, two connections for a broker),
 * and the suite waits for deliveries rather than expecting them synchronously. Ordering is
 * promised per publisher; nothing is promised about messages published before subscribing.
 */
export interface BusPair {
  publisher: EventBus;
  subscriber: EventBus;
  /** Closes both (once each, if they are the same bus). */
  close(): Promise<void>;
}

export function eventBusContract(adapter: string, createPair: () => Promise<BusPair>): void {
  describe(`EventBus contract: ${adapter}`, () => {
    let pair: BusPair;
    beforeEach(async () => {
      pair = await createPair();
    });
    afterEach(async () => pair.close());

    it('delivers each message once to a subscriber, in publish order, with its payload intact', async () => {
      const seen = collect(pair.subscriber);
      const messages: BusMessage[] = [artifactMessage(1), progressMessage(10), artifactMessage(2), progressMessage(20, true)];
      for (const m of messages) await pair.publisher.publish(m);
      await seen.until(4);
      expect(seen.messages).toEqual(messages);
      seen.stop();
    });

    it('delivers every message to every subscriber', async () => {
      const first = collect(pair.subscriber);
      const second = collect(pair.subscriber);
      for (let i = 1; i <= 5; i++) await pair.publisher.publish(artifactMessage(i));
      await Promise.all([first.until(5), second.until(5)]);
      expect(first.seqs()).toEqual([1, 2, 3, 4, 5]);
      expect(second.seqs()).toEqual([1, 2, 3, 4, 5]);
      first.stop();
      second.stop();
    });

    it('stops delivering to a subscriber once it unsubscribes, and keeps delivering to the others', async () => {
      const leaving = collect(pair.subscriber);
      const staying = collect(pair.subscriber);
      await pair.publisher.publish(artifactMessage(1));
      await Promise.all([leaving.until(1), staying.until(1)]);
      leaving.stop();
      await pair.publisher.publish(artifactMessage(2));
      await pair.publisher.publish(artifactMessage(3));
      // Once the staying subscriber has the last message, an unsubscribed one would have had it too.
      await staying.until(3);
      expect(leaving.seqs()).toEqual([1]);
      expect(staying.seqs()).toEqual([1, 2, 3]);
      staying.stop();
    });

    it('keeps delivering to the others when a subscriber throws', async () => {
      let calls = 0;
      const throwing = pair.subscriber.subscribe(() => {
        calls++;
        throw new Error('subscriber failure');
      });
      const healthy = collect(pair.subscriber);
      for (let i = 1; i <= 3; i++) await pair.publisher.publish(artifactMessage(i));
      await healthy.until(3);
      expect(healthy.seqs()).toEqual([1, 2, 3]);
      expect(calls).toBeGreaterThan(0);
      throwing.unsubscribe();
      healthy.stop();
    });

    it('tolerates unsubscribing twice, and unsubscribing from within a handler', async () => {
      const seen: number[] = [];
      const sub = pair.subscriber.subscribe((m) => {
        if (m.topic === 'artifact') seen.push(m.event.seq);
        sub.unsubscribe();
      });
      const other = collect(pair.subscriber);
      await pair.publisher.publish(artifactMessage(1));
      await pair.publisher.publish(artifactMessage(2));
      await other.until(2);
      sub.unsubscribe();
      expect(seen).toEqual([1]);
      other.stop();
    });
  });
}

/** Records what a subscriber receives, with a wait for the count expected. */
export function collect(bus: EventBus) {
  const messages: BusMessage[] = [];
  const waiters: (() => void)[] = [];
  const subscription = bus.subscribe((m) => {
    messages.push(m);
    waiters.splice(0).forEach((wake) => wake());
  });
  return {
    messages,
    seqs: () => messages.map((m) => (m.topic === 'artifact' ? m.event.seq : -1)),
    async until(count: number): Promise<void> {
      while (messages.length < count) await new Promise<void>((wake) => waiters.push(wake));
    },
    stop: () => subscription.unsubscribe(),
  };
}

export function artifactMessage(seq: number): BusMessage {
  const at = '2026-01-01T00:00:00.000Z';
  const event: StoredEvent = {
    seq,
    kind: 'updated',
    artifactId: '6f1c0a8e-3b7d-4c2a-9e51-0d4b8a7c2f10',
    typeName: 'images',
    owner: 'project-a',
    visibility: 'shared',
    revision: seq,
    at,
    snapshot: {
      id: '6f1c0a8e-3b7d-4c2a-9e51-0d4b8a7c2f10',
      typeName: 'images',
      name: `image-${seq}`,
      version: '0.0.0',
      status: 'queued',
      visibility: 'shared',
      owner: 'project-a',
      tags: ['a', 'b'],
      properties: { os_distro: 'cirros' },
      fields: { min_disk: 0, stores: [] },
      createdAt: at,
      updatedAt: at,
      activatedAt: null,
      revision: seq,
    },
  };
  return { topic: 'artifact', event };
}

function progressMessage(bytes: number, done = false): BusMessage {
  const event: ProgressEvent = {
    kind: 'uploadProgress',
    artifactId: '6f1c0a8e-3b7d-4c2a-9e51-0d4b8a7c2f10',
    owner: 'project-a',
    subject: 'image',
    bytes,
    total: 20,
    ratePerSecond: 5,
    etaSeconds: done ? 0 : 2,
    done,
    ...(done && { outcome: 'succeeded' as const }),
    at: '2026-01-01T00:00:01.000Z',
  };
  return { topic: 'progress', event };
}

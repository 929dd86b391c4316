import { DeliveryQueue } from '../../src/graphql/subscriptions/delivery-queue';

/** The per-subscription queue: bounded, coalescing by key, never dropping silently. */
describe('DeliveryQueue', () => {
  it('hands out items in order, in batches of at most `max`', async () => {
    const queue = new DeliveryQueue<number>(10, () => undefined);
    [1, 2, 3].forEach((n) => queue.push(n));
    expect(await queue.take(2)).toEqual([1, 2]);
    expect(await queue.take(2)).toEqual([3]);
  });

  it('waits for an item, and resolves null once ended and drained or when closed', async () => {
    const queue = new DeliveryQueue<number>(10, () => undefined);
    const waiting = queue.take(5);
    queue.push(7);
    expect(await waiting).toEqual([7]);
    queue.push(8);
    queue.end();
    expect(queue.push(9)).toBe(false);
    expect(await queue.take(5)).toEqual([8]);
    expect(await queue.take(5)).toBeNull();
    const closed = new DeliveryQueue<number>(10, () => undefined);
    const pending = closed.take(1);
    closed.close();
    expect(await pending).toBeNull();
  });

  it('overflows once, past its limit: reports it, discards everything and accepts nothing more', async () => {
    let overflows = 0;
    const queue = new DeliveryQueue<number>(2, () => overflows++);
    expect(queue.push(1)).toBe(true);
    expect(queue.push(2)).toBe(true);
    expect(queue.push(3)).toBe(false);
    expect(queue.push(4)).toBe(false);
    expect(overflows).toBe(1);
    expect(await queue.take(5)).toBeNull();
  });

  it('coalesces pending items with the same key (newest wins, keeping its place) without growing', async () => {
    const queue = new DeliveryQueue<string>(2, () => {
      throw new Error('must not overflow');
    });
    queue.push('a1', 'a');
    queue.push('b1', 'b');
    for (let i = 2; i <= 100; i++) queue.push(`a${i}`, 'a');
    expect(queue.size).toBe(2);
    expect(await queue.take(5)).toEqual(['a100', 'b1']);
    queue.push('a101', 'a'); // taken items no longer coalesce
    expect(await queue.take(5)).toEqual(['a101']);
  });
});

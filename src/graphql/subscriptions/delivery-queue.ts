/**
 * The undelivered events of one subscription. Bounded, so a slow consumer never makes
 * memory grow without limit: an item pushed beyond `limit` makes the queue give up
 * (it calls `onOverflow` once and stops), because lifecycle events must never be dropped
 * silently. Items pushed with a coalescing key replace a pending item with the same key
 * (progress of one upload: the newest wins) and so never grow the queue.
 */
export class DeliveryQueue<T> {
  private items: { value: T; key?: string }[] = [];
  private readonly pendingByKey = new Map<string, { value: T; key?: string }>();
  private waiter: (() => void) | undefined;
  private state: 'open' | 'ending' | 'closed' = 'open';

  constructor(
    private readonly limit: number,
    private readonly onOverflow: () => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** False when the queue is closed or just overflowed; the item is then discarded. */
  push(value: T, coalesceKey?: string): boolean {
    if (this.state !== 'open') return false;
    const pending = coalesceKey === undefined ? undefined : this.pendingByKey.get(coalesceKey);
    if (pending) {
      pending.value = value;
      return true;
    }
    if (this.items.length >= this.limit) {
      this.close();
      this.onOverflow();
      return false;
    }
    const entry = { value, key: coalesceKey };
    this.items.push(entry);
    if (coalesceKey !== undefined) this.pendingByKey.set(coalesceKey, entry);
    this.wake();
    return true;
  }

  /** No more items will come; `take` returns what is left, then null. */
  end(): void {
    if (this.state !== 'open') return;
    this.state = 'ending';
    this.wake();
  }

  /** Discards everything; a pending `take` resolves to null. */
  close(): void {
    this.state = 'closed';
    this.items = [];
    this.pendingByKey.clear();
    this.wake();
  }

  /** Up to `max` items, waiting for at least one; null once ended and drained, or closed. */
  async take(max: number): Promise<T[] | null> {
    while (this.items.length === 0) {
      if (this.state !== 'open') return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const batch = this.items.splice(0, max);
    for (const entry of batch) if (entry.key !== undefined) this.pendingByKey.delete(entry.key);
    return batch.map((entry) => entry.value);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

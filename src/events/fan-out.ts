import type { BusMessage, Subscription } from './port';

/**
 * The local side of a broker bus: one broker subscription per bus instance, fanned out to
 * this process's handlers, so each message reaches each handler exactly once.
 */
export class FanOut {
  private readonly handlers = new Set<(message: BusMessage) => void>();

  add(handler: (message: BusMessage) => void): Subscription {
    // A wrapper per call, so subscribing the same function twice gives two subscriptions.
    const entry = (message: BusMessage) => handler(message);
    this.handlers.add(entry);
    return { unsubscribe: () => void this.handlers.delete(entry) };
  }

  deliver(message: BusMessage): void {
    for (const handler of [...this.handlers]) {
      try {
        handler(message);
      } catch {
        // A failing subscriber must not stop delivery to the others; it reports its own errors.
      }
    }
  }

  clear(): void {
    this.handlers.clear();
  }
}

import type { BusMessage, EventBus, Subscription } from './port';

/** The in-process bus of a single Vitrine: delivery is synchronous and in publish order. */
export class MemoryEventBus implements EventBus {
  private readonly handlers = new Set<(message: BusMessage) => void>();

  async publish(message: BusMessage): Promise<void> {
    for (const handler of [...this.handlers]) {
      try {
        handler(message);
      } catch {
        // A failing subscriber must not stop delivery to the others; it reports its own errors.
      }
    }
  }

  subscribe(handler: (message: BusMessage) => void): Subscription {
    this.handlers.add(handler);
    return { unsubscribe: () => void this.handlers.delete(handler) };
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}

import { MemoryEventBus } from '../../src/events/memory';
import { eventBusContract } from './event-bus.contract';

eventBusContract('memory', async () => {
  const bus = new MemoryEventBus();
  return { publisher: bus, subscriber: bus, close: () => bus.close() };
});

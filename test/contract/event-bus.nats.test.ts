import { connect } from 'nats';
import { NatsEventBus } from '../../src/events/nats';
import { brokerBusContract, type BrokerFixture } from './event-bus.broker';

/**
 * The EventBus contract and the broker suite against the real NATS server (core pub/sub),
 * each test on a subject of its own. An unreachable server fails every test (never skipped).
 */
const fixture: BrokerFixture = {
  broker: 'NATS',
  url: process.env.VITRINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
  urlVariable: 'VITRINE_TEST_NATS_URL',
  open: (options) => NatsEventBus.connect(options),
  publishRaw: async (subject, payload) => {
    const nc = await connect({ servers: new URL(fixture.url).host });
    try {
      nc.publish(subject, new TextEncoder().encode(payload));
      await nc.flush();
    } finally {
      await nc.close();
    }
  },
  // One server relays each publisher in order, but two publishers may interleave differently per subscriber.
  oneOrderForAllPublishers: false,
};

brokerBusContract(fixture);

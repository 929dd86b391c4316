import { connect, Events, JSONCodec, type NatsConnection, type Subscription as NatsSubscription } from 'nats';
import { brokerUnavailable, ConnectionState, DEFAULT_BROKER_TIMEOUT_MS, withDeadline, type BrokerBusOptions } from './broker';
import { FanOut } from './fan-out';
import type { BusMessage, EventBus, Subscription } from './port';
import { asBusMessage } from './wire';

/**
 * The bus over core NATS publish/subscribe on one subject, for several instances. Unlike
 * Redis, a NATS connection publishes and subscribes at once, so one connection does both;
 * the server echoes this instance's messages back to it, and they are delivered from there
 * like everyone else's, exactly once. Order is kept per publisher (NATS does not promise
 * one order across publishers).
 *
 * Core NATS is at-most-once, and JetStream is not needed: lifecycle events are durable in
 * the metadata store's log, which clients resume from.
 */
export class NatsEventBus implements EventBus {
  private readonly fanOut = new FanOut();
  private readonly codec = JSONCodec<unknown>();
  private readonly state: ConnectionState;
  private readonly timeoutMs: number;
  private closing: Promise<void> | undefined;
  private subscription: NatsSubscription | undefined;

  /** Connects and subscribes; rejects (UNAVAILABLE) when the server does not answer. */
  static async connect(options: BrokerBusOptions): Promise<NatsEventBus> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
    let connection: NatsConnection;
    try {
      connection = await connect({
        ...natsServerOf(options.url),
        ...(options.clientName !== undefined && { name: options.clientName }),
        timeout: timeoutMs,
        // Reconnect for as long as the process lives; readiness reports the outage meanwhile.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (err) {
      throw brokerUnavailable('NATS', (err as Error).message, options.url);
    }
    const bus = new NatsEventBus(connection, options, timeoutMs);
    try {
      await bus.start();
    } catch (err) {
      await bus.close();
      throw brokerUnavailable('NATS', (err as Error).message, options.url);
    }
    return bus;
  }

  private constructor(
    private readonly connection: NatsConnection,
    private readonly options: BrokerBusOptions,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    this.state = new ConnectionState(options.onEvent);
  }

  private async start(): Promise<void> {
    this.subscription = this.connection.subscribe(this.options.channel, {
      // The callback form delivers synchronously, in arrival order.
      callback: (err, msg) => {
        if (err) return;
        this.receive(msg.data);
      },
    });
    void this.watchStatus();
    // Once the server has answered, it holds the subscription: later publishes reach it.
    await withDeadline(this.connection.flush(), this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`));
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === Events.Disconnect) this.state.set(false);
      // The client resubscribes before it reports the reconnection.
      else if (status.type === Events.Reconnect) this.state.set(true);
    }
  }

  private receive(data: Uint8Array): void {
    let value: unknown;
    try {
      value = this.codec.decode(data);
    } catch {
      return this.options.onEvent?.({ kind: 'discarded', reason: 'not JSON' });
    }
    const message = asBusMessage(value);
    if ('invalid' in message) return this.options.onEvent?.({ kind: 'discarded', reason: message.invalid });
    this.fanOut.deliver(message);
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.closing || this.connection.isClosed()) throw brokerUnavailable('NATS', 'the bus is closed');
    this.connection.publish(this.options.channel, this.codec.encode(message));
    // publish() only buffers; the flush's round trip confirms the server has the message.
    try {
      await withDeadline(this.connection.flush(), this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`));
    } catch (err) {
      throw brokerUnavailable('NATS', (err as Error).message);
    }
  }

  subscribe(handler: (message: BusMessage) => void): Subscription {
    return this.fanOut.add(handler);
  }

  onReconnect(listener: () => void): Subscription {
    return this.state.onReconnect(listener);
  }

  /** Resolves on a round trip to the server; rejects at once while disconnected. */
  async ping(): Promise<void> {
    if (this.closing || this.connection.isClosed()) throw brokerUnavailable('NATS', 'the bus is closed', this.options.url);
    try {
      await withDeadline(this.connection.rtt(), this.timeoutMs, () => new Error(`no answer to PING within ${this.timeoutMs} ms`));
    } catch (err) {
      throw brokerUnavailable('NATS', (err as Error).message, this.options.url);
    }
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.fanOut.clear();
      this.state.clear();
      this.subscription?.unsubscribe();
      // close() drops what is still buffered; nothing is worth waiting for on shutdown.
      await this.connection.close();
    })();
    return this.closing;
  }
}

/** Server address and credentials from a nats://[user[:password]@]host[:port] URL. */
function natsServerOf(url: string): { servers: string; user?: string; pass?: string; token?: string } {
  const parsed = new URL(url);
  const servers = parsed.host;
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  if (user && pass) return { servers, user, pass };
  // A lone user part is a token, as in the NATS CLI's nats://token@host.
  if (user) return { servers, token: user };
  return { servers };
}

import Redis from 'ioredis';
import { brokerUnavailable, ConnectionState, DEFAULT_BROKER_TIMEOUT_MS, withDeadline, type BrokerBusOptions } from './broker';
import { FanOut } from './fan-out';
import type { BusMessage, EventBus, Subscription } from './port';
import { decodeMessage, encodeMessage } from './wire';

/**
 * The bus over Redis pub/sub, for several instances. A subscribed Redis connection can do
 * nothing but (un)subscribe and ping, hence two connections: one publishes, one listens.
 * This instance's own messages come back through Redis like everyone else's, so every
 * instance sees the channel in the same order, and each message exactly once.
 *
 * Pub/sub is at-most-once: what is published while a subscriber is disconnected is lost to
 * it. Lifecycle events are durable in the metadata store's log, which clients resume from.
 */
export class RedisEventBus implements EventBus {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly fanOut = new FanOut();
  private readonly state: ConnectionState;
  private readonly timeoutMs: number;
  private subscribed = false;
  private started = false;
  private lastError: Error | undefined;
  private closing: Promise<void> | undefined;

  /** Connects both connections and subscribes; rejects (UNAVAILABLE) when Redis does not answer. */
  static async connect(options: BrokerBusOptions): Promise<RedisEventBus> {
    const bus = new RedisEventBus(options);
    try {
      await bus.start();
    } catch (err) {
      await bus.close();
      throw brokerUnavailable('Redis', bus.lastError?.message ?? (err as Error).message, options.url);
    }
    return bus;
  }

  private constructor(private readonly options: BrokerBusOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_BROKER_TIMEOUT_MS;
    this.state = new ConnectionState(options.onEvent);
    this.publisher = this.connection('publisher');
    this.subscriber = this.connection('subscriber');
  }

  private connection(role: 'publisher' | 'subscriber'): Redis {
    const redis = new Redis(this.options.url, {
      lazyConnect: true,
      connectTimeout: this.timeoutMs,
      ...(this.options.clientName !== undefined && { connectionName: `${this.options.clientName}:${role}` }),
      // Commands wait out a reconnection in the offline queue; publish and ping bound the wait.
      maxRetriesPerRequest: null,
      // Resubscribing is done here, so that "connected" means "subscribed" (see start()).
      autoResubscribe: false,
      // A command cut off by a disconnection may have run: resending a PUBLISH could deliver
      // it twice. It is dropped instead, and its caller's deadline reports the failure.
      autoResendUnfulfilledCommands: false,
    });
    redis.on('error', (err: Error) => {
      this.lastError = err;
    });
    redis.on('close', () => {
      if (role === 'subscriber') this.subscribed = false;
      if (this.started && !this.closing) this.state.set(false, this.lastError);
    });
    return redis;
  }

  private async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, payload: string) => this.receive(channel, payload));
    const connected = Promise.all([this.publisher.connect(), this.subscriber.connect()]).then(() => this.listen());
    await withDeadline(connected, this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`));
    this.started = true;
    // Registered after the first 'ready', so these only handle reconnections.
    this.subscriber.on('ready', () => void this.listen().catch(() => undefined));
    this.publisher.on('ready', () => this.refreshState());
  }

  private async listen(): Promise<void> {
    await this.subscriber.subscribe(this.options.channel);
    this.subscribed = true;
    this.refreshState();
  }

  private refreshState(): void {
    if (!this.closing && this.subscribed && this.publisher.status === 'ready') this.state.set(true);
  }

  private receive(channel: string, payload: string): void {
    if (channel !== this.options.channel) return;
    const message = decodeMessage(payload);
    if ('invalid' in message) return this.options.onEvent?.({ kind: 'discarded', reason: message.invalid });
    this.fanOut.deliver(message);
  }

  async publish(message: BusMessage): Promise<void> {
    if (this.closing) throw brokerUnavailable('Redis', 'the bus is closed');
    await withDeadline(this.publisher.publish(this.options.channel, encodeMessage(message)), this.timeoutMs, () =>
      brokerUnavailable('Redis', `no answer within ${this.timeoutMs} ms`),
    );
  }

  subscribe(handler: (message: BusMessage) => void): Subscription {
    return this.fanOut.add(handler);
  }

  onReconnect(listener: () => void): Subscription {
    return this.state.onReconnect(listener);
  }

  /** Resolves when both connections answer; rejects at once while either is reconnecting. */
  async ping(): Promise<void> {
    if (this.closing) throw brokerUnavailable('Redis', 'the bus is closed', this.options.url);
    if (!this.subscribed || this.publisher.status !== 'ready') {
      throw brokerUnavailable('Redis', `reconnecting${this.lastError ? ` (${this.lastError.message})` : ''}`, this.options.url);
    }
    await withDeadline(Promise.all([this.publisher.ping(), this.subscriber.ping()]), this.timeoutMs, () =>
      brokerUnavailable('Redis', `no answer to PING within ${this.timeoutMs} ms`, this.options.url),
    );
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.fanOut.clear();
      this.state.clear();
      await Promise.all([this.quit(this.publisher), this.quit(this.subscriber)]);
    })();
    return this.closing;
  }

  /** QUIT when connected (the server closes cleanly); otherwise stop reconnecting at once. */
  private async quit(redis: Redis): Promise<void> {
    if (redis.status === 'ready') {
      const quitted = await withDeadline(redis.quit(), this.timeoutMs, () => new Error('QUIT timed out')).then(() => true, () => false);
      if (quitted) return;
    }
    redis.disconnect();
  }
}

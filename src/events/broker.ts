import { VitrineError } from '../domain/errors';
import type { Subscription } from './port';

/** What the Redis and NATS buses share: their options, and how they fail. */
export interface BrokerBusOptions {
  /** redis://, rediss:// or nats:// URL; may carry credentials, which never reach messages. */
  url: string;
  /** The one channel (Redis) or subject (NATS) every instance of a deployment shares. */
  channel: string;
  /** How long connecting, publishing and pinging wait for the broker. Default 5000 ms. */
  timeoutMs?: number;
  /** Shown by the broker in its client list (CLIENT LIST, connz), to tell instances apart. */
  clientName?: string;
  /** Connection lost and regained, and undecodable messages; the bus keeps running meanwhile. */
  onEvent?: (event: BusConnectionEvent) => void;
}

export type BusConnectionEvent =
  | { kind: 'disconnected'; error?: Error }
  | { kind: 'reconnected' }
  | { kind: 'discarded'; reason: string };

export const DEFAULT_BROKER_TIMEOUT_MS = 5_000;

/** The URL with its user and password replaced, fit for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//…@');
}

/**
 * The error of a bus that cannot do its work. Pass `url` only for operator-facing errors
 * (start-up, readiness): a failed publish surfaces to API clients, who need not learn where
 * the broker lives.
 */
export function brokerUnavailable(broker: string, why: string, url?: string): VitrineError {
  return new VitrineError('UNAVAILABLE', `the event bus cannot reach ${broker}${url === undefined ? '' : ` at ${redactUrl(url)}`}: ${why}`);
}

/**
 * Rejects with `onTimeout()` when `work` has not settled within `ms`. The work itself goes
 * on: a publish that timed out may still reach subscribers once the broker is back.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connection state as seen by the bus, reported once per change: to the options' `onEvent`
 * (the operator's log) and to the bus's `onReconnect` listeners (subscribers catching up).
 */
export class ConnectionState {
  private up = true;
  private readonly reconnectListeners = new Set<() => void>();

  constructor(private readonly onEvent: BrokerBusOptions['onEvent']) {}

  get isUp(): boolean {
    return this.up;
  }

  set(up: boolean, error?: Error): void {
    if (up === this.up) return;
    this.up = up;
    this.onEvent?.(up ? { kind: 'reconnected' } : { kind: 'disconnected', ...(error && { error }) });
    if (!up) return;
    for (const listener of [...this.reconnectListeners]) {
      try {
        listener();
      } catch {
        // A failing listener must not keep the others from catching up; it reports its own errors.
      }
    }
  }

  onReconnect(listener: () => void): Subscription {
    // A wrapper per call, so registering the same function twice gives two registrations.
    const entry = () => listener();
    this.reconnectListeners.add(entry);
    return { unsubscribe: () => void this.reconnectListeners.delete(entry) };
  }

  clear(): void {
    this.reconnectListeners.clear();
  }
}

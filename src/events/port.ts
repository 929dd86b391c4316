import type { StoredEvent } from '../storage/metadata/port';

/**
 * EventBus: fan-out of committed artifact events and ephemeral progress to subscribers,
 * in-process by default and through Redis or NATS when several instances serve together.
 * Lifecycle events are durable in the metadata store's event log (with their `seq`); the
 * bus only carries them live. Progress events are ephemeral and may be coalesced.
 */
export interface ProgressEvent {
  kind: 'uploadProgress' | 'importProgress';
  artifactId: string;
  owner: string;
  /** Blob field (and key) for uploads, import method for imports. */
  subject: string;
  bytes: number;
  total: number | null;
  ratePerSecond: number;
  etaSeconds: number | null;
  done: boolean;
  outcome?: 'succeeded' | 'failed';
  error?: string;
  at: string;
  /** Image imports only (filled by the Glance backend): the import's current stage, e.g. "upload" or "copy". */
  stage?: string;
  storesDone?: string[];
  storesFailed?: string[];
  /** Image imports only: the image's status once the import ended. */
  finalStatus?: string;
}

export type BusMessage = { topic: 'artifact'; event: StoredEvent } | { topic: 'progress'; event: ProgressEvent };

export interface Subscription {
  unsubscribe(): void;
}

export interface EventBus {
  publish(message: BusMessage): Promise<void>;
  subscribe(handler: (message: BusMessage) => void): Subscription;
  close(): Promise<void>;
  /**
   * Broker buses: calls `listener` each time the connection to the broker is back (and
   * resubscribed) after an outage. Whatever was published meanwhile never reaches this
   * instance, so a listener re-reads the lifecycle events it needs from the durable log.
   * The in-process bus has no outages and leaves this out.
   */
  onReconnect?(listener: () => void): Subscription;
}

/**
 * EventLog: read access to the durable log of lifecycle events (the metadata store's
 * outbox), so a subscriber that reconnects can replay what it missed. Sequence numbers grow
 * by one per committed event; the only gaps are at the old end, where the log was pruned.
 */
export interface EventLog {
  /** Events with seq > afterSeq, oldest first, at most `limit`. */
  read(afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** Seq of the oldest event still kept, or null when the log is empty. */
  oldestSeq(): Promise<number | null>;
}

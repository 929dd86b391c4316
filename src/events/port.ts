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
}

export type BusMessage = { topic: 'artifact'; event: StoredEvent } | { topic: 'progress'; event: ProgressEvent };

export interface Subscription {
  unsubscribe(): void;
}

export interface EventBus {
  publish(message: BusMessage): Promise<void>;
  subscribe(handler: (message: BusMessage) => void): Subscription;
  close(): Promise<void>;
}

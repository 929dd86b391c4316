import type { Readable } from 'node:stream';

/**
 * BlobStore: where blob bytes live (a filesystem folder by default; Swift or S3 for
 * scale-out). Every write goes to a fresh location that no other blob uses, so a retried
 * or replacing upload can never overwrite bytes an active blob points to; a write resolves
 * only once its bytes are durable, and a failed write leaves nothing behind.
 */
export interface BlobWriteOptions {
  /** Abort the write (and discard what was written) when this signal fires. */
  signal?: AbortSignal;
}

export interface BlobWriteResult {
  location: string;
  size: number;
}

export interface ByteRange {
  /** Inclusive start and end offsets. */
  start: number;
  end: number;
}

export interface BlobStore {
  readonly name: string;
  /** Streams `source` to a new location; rejects (leaving nothing) if the source errors or the signal aborts. */
  write(source: Readable, options?: BlobWriteOptions): Promise<BlobWriteResult>;
  /** The bytes at `location`, whole or a range; NOT_FOUND if absent. */
  read(location: string, range?: ByteRange): Promise<Readable>;
  /**
   * A URL that serves the bytes without Vitrine until it expires, when the store is set up
   * to hand such URLs out (Swift temp URLs); null otherwise. Optional: most stores have none.
   */
  directUrl?(location: string, expiresInSeconds: number): Promise<string | null>;
  /**
   * The URL Glance would show for bytes at `location` (e.g. `file:///…` for a folder), for
   * image `locations` and `direct_url`. Optional: Vitrine shows `vitrine://<store>/<location>` otherwise.
   */
  locationUrl?(location: string): string;
  /** Size in bytes, or null if absent. */
  stat(location: string): Promise<number | null>;
  /** Removes the bytes; absent locations are fine. */
  delete(location: string): Promise<void>;
  /** Every stored location, for garbage collection against the metadata store. */
  list(): AsyncIterable<string>;
  /** Removes leftovers of writes that never finished (a crash mid-upload); returns how many. */
  sweepIncomplete(): Promise<number>;
  /**
   * True when `sweepIncomplete` only removes leftovers older than a grace period, so any
   * instance may run it while others write; false when only a process that owns the store
   * alone, before it serves, may (it cannot tell a live write from a dead one).
   */
  readonly sweepsWhileShared: boolean;
  ping(): Promise<void>;
}

import type { Status } from '../../domain/artifact';
import type { Principal } from '../../domain/policy';
import type { ArtifactView, Lookup } from '../port';
import type { ImageEvents } from './events';

/**
 * The fallback when Glance's notifications are not configured: images Vitrine has seen in
 * flight (saving, uploading, importing) are read again every `intervalMs`, in batches per
 * caller, and their status changes become events. An image leaves the set once it lands
 * (or can no longer be read). Only status changes are seen this way, and only at the
 * polling rate; changes made in Glance to images Vitrine never saw in flight are not.
 */
export const IN_FLIGHT: ReadonlySet<Status> = new Set(['saving', 'uploading', 'importing']);

export interface InFlightOptions {
  events: ImageEvents;
  /** The backend's batched lookup (one call per 150 ids). */
  read(principal: Principal, ids: readonly string[]): Promise<Lookup[]>;
  intervalMs: number;
  /** Images followed at once; more are not followed. */
  maxImages: number;
  log?: (message: string, err?: unknown) => void;
}

export class InFlightImages {
  /** Image id → the caller whose identity reads it (the last one seen with it). */
  private readonly tracked = new Map<string, Principal>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: InFlightOptions) {}

  /** Follows the image while it is in flight; forgets it otherwise. */
  track(principal: Principal, image: ArtifactView): void {
    const id = image.id.toLowerCase();
    if (!IN_FLIGHT.has(image.status)) {
      this.tracked.delete(id);
      return;
    }
    if (this.closed || (!this.tracked.has(id) && this.tracked.size >= this.o.maxImages)) return;
    this.tracked.set(id, principal);
    this.start();
  }

  get size(): number {
    return this.tracked.size;
  }

  /** One round now (tests); the timer runs rounds by itself. */
  poll(): Promise<void> {
    this.polling ??= this.round().finally(() => (this.polling = undefined));
    return this.polling;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  private start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.o.intervalMs);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    const byPrincipal = new Map<Principal, string[]>();
    for (const [id, principal] of this.tracked) byPrincipal.set(principal, [...(byPrincipal.get(principal) ?? []), id]);
    for (const [principal, ids] of byPrincipal) {
      if (this.closed) return;
      let found: Lookup[];
      try {
        found = await this.o.read(principal, ids);
      } catch (err) {
        // Glance unavailable: the next round tries again.
        this.o.log?.(`polling ${ids.length} images in flight failed`, err);
        continue;
      }
      for (const [i, image] of found.entries()) {
        if (image instanceof Error) continue;
        if (!image) {
          this.tracked.delete(ids[i]);
          continue;
        }
        await this.o.events.report(image, { kind: 'polled' });
        this.track(principal, image);
      }
    }
    if (this.tracked.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

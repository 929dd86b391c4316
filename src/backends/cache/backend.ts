import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { fail } from '../../domain/errors';
import { IMAGE_TYPE } from '../../domain/glance-image';
import { isUuid } from '../../domain/ids';
import { isAdmin, type Principal } from '../../domain/policy';
import type { EventBus, Subscription } from '../../events/port';
import type {
  ArtifactBackend,
  BlobContent,
  BlobTarget,
  ByteSpan,
  CacheClearTarget,
  ImageCachePort,
  ImageCacheStateView,
} from '../port';
import type { CacheFiles, Expected } from './store';

/**
 * The image cache in front of any backend (native or Glance): a decorator of the
 * ArtifactBackend port. Downloads of an image's data are served from the node-local cache
 * when it holds the image's current bytes (same size and checksum), and a whole download
 * that misses fills it on the way. Admins queue images for a prefetcher that fills the
 * cache in the background at once (Glance waits for a periodic job). Deleting an image,
 * here or on any instance sharing the event bus, drops its cached bytes; changed data is
 * never served because entries are checked against the image on every download.
 *
 * Everything else passes through unchanged; the caller's policy checks stay the backend's
 * (a download still asks the backend whether the caller may read the image).
 */
export interface CachingBackendOptions {
  inner: ArtifactBackend;
  files: CacheFiles;
  bus: EventBus;
  /**
   * The prefetcher starts this long after an image is queued: a burst of queue requests is
   * fetched in one pass, and a client that lists the cache right after queueing still sees
   * the image queued (Tempest's caching test asserts exactly that).
   */
  prefetchDelayMs: number;
  log: (message: string, err?: unknown) => void;
}

const IMAGE_BLOB = 'image';
/** Whom the prefetcher reads as when the admin who queued an image is not known (queued before a restart). */
const CACHE_PRINCIPAL: Principal = Object.freeze({ projectId: 'vitrine-image-cache', userId: 'vitrine-image-cache', roles: Object.freeze(['admin'] as const) });

export function createCachingBackend(options: CachingBackendOptions): { backend: ArtifactBackend; cache: ImageCacheService } {
  const cache = new ImageCacheService(options);
  return { backend: cachingBackend(options.inner, cache), cache };
}

/** The backend as edges see it: every method the inner one's, downloads and deletions through the cache. */
function cachingBackend(inner: ArtifactBackend, cache: ImageCacheService): ArtifactBackend {
  const backend: ArtifactBackend = Object.create(null) as ArtifactBackend;
  // Every port method is forwarded bound to the inner backend (which may keep private state).
  const forwarded = new Proxy(backend, {
    get(_target, key: keyof ArtifactBackend) {
      if (key === 'openBlob') return (principal: Principal, target: BlobTarget, options?: { redirect?: boolean }) => cache.open(principal, target, options);
      if (key === 'delete') {
        return async (principal: Principal, id: string, ifRevision?: number) => {
          const deleted = await inner.delete(principal, id, ifRevision);
          if (deleted.typeName === IMAGE_TYPE) await cache.forget(deleted.id);
          return deleted;
        };
      }
      if (key === 'deleteBlob') {
        return async (principal: Principal, target: BlobTarget) => {
          const artifact = await inner.deleteBlob(principal, target);
          if (artifact.typeName === IMAGE_TYPE) await cache.forget(artifact.id, false);
          return artifact;
        };
      }
      const value = inner[key];
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(inner) : value;
    },
  });
  return forwarded;
}

export class ImageCacheService implements ImageCachePort {
  private readonly inner: ArtifactBackend;
  private readonly files: CacheFiles;
  private readonly log: CachingBackendOptions['log'];
  /** Who queued each image (kept in memory only: it may carry a token to forward). */
  private readonly queuedBy = new Map<string, Principal>();
  private readonly subscription: Subscription;
  private prefetching: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly delayMs: number;
  private current: Readable | null = null;
  private closed = false;

  constructor(options: CachingBackendOptions) {
    this.inner = options.inner;
    this.files = options.files;
    this.log = options.log;
    this.delayMs = options.prefetchDelayMs;
    // Deletions made through other instances reach this one's cache by the bus.
    this.subscription = options.bus.subscribe((message) => {
      if (message.topic === 'artifact' && message.event.kind === 'deleted' && message.event.typeName === IMAGE_TYPE) {
        void this.forget(message.event.artifactId);
      }
    });
  }

  // ---- the cache API (admins) ------------------------------------------------------------

  async state(principal: Principal): Promise<ImageCacheStateView> {
    requireAdmin(principal);
    return { cached: this.files.list(), queued: this.files.queuedIds() };
  }

  async queue(principal: Principal, imageId: string): Promise<void> {
    requireAdmin(principal);
    const image = await this.image(principal, imageId);
    if (!image) fail('NOT_FOUND', `Image ${imageId} not found.`);
    if (image.status !== 'active') fail('BAD_INPUT', 'Only images with status active can be targeted for queueing', { status: image.status });
    if (this.files.has(image.id)) return;
    await this.files.enqueue(image.id);
    this.queuedBy.set(image.id, principal);
    this.kick();
  }

  async remove(principal: Principal, imageId: string): Promise<void> {
    requireAdmin(principal);
    const id = imageId.toLowerCase();
    if (!this.files.has(id) && !this.files.isQueued(id) && !(await this.image(principal, id))) fail('NOT_FOUND', `Image ${imageId} not found.`);
    await this.forget(id);
  }

  async clear(principal: Principal, target: CacheClearTarget): Promise<{ cacheDeleted: number; queueDeleted: number }> {
    requireAdmin(principal);
    const cacheDeleted = target === 'queue' ? 0 : await this.files.clearCached();
    let queueDeleted = 0;
    if (target !== 'cache') {
      queueDeleted = await this.files.clearQueue();
      this.queuedBy.clear();
    }
    return { cacheDeleted, queueDeleted };
  }

  // ---- downloads ---------------------------------------------------------------------------

  /** The inner backend's answer, its bytes read through the cache when it is an image's data. */
  async open(principal: Principal, target: BlobTarget, options?: { redirect?: boolean }): Promise<BlobContent> {
    const content = await this.inner.openBlob(principal, target, options);
    if (content.kind !== 'stored' || content.artifact.typeName !== IMAGE_TYPE || content.blob.field !== IMAGE_BLOB || content.blob.key !== '') return content;
    const expected = expectedOf(content.blob);
    if (!expected) return content;
    const id = content.artifact.id;
    const whole = (span?: ByteSpan) => !span || (span.start === 0 && span.end === expected.size - 1);
    return {
      ...content,
      read: async (span?: ByteSpan) => {
        const cached = await this.files.read(id, expected, span);
        if (cached) return cached;
        const stream = await content.read(span);
        if (!whole(span) || this.closed) return stream;
        const tee = this.files.tee(id, expected);
        if (!tee) return stream;
        return pipeline(stream, tee, () => undefined);
      },
    };
  }

  /** Drops an image from the cache (and, unless told otherwise, from the queue). */
  async forget(imageId: string, dequeue = true): Promise<void> {
    try {
      await this.files.remove(imageId);
      if (dequeue) {
        await this.files.dequeue(imageId);
        this.queuedBy.delete(imageId);
      }
    } catch (err) {
      this.log(`dropping image ${imageId} from the cache failed`, err);
    }
  }

  // ---- the prefetcher ----------------------------------------------------------------------

  /** Starts fetching what the queue holds (also what was queued before a restart). */
  start(): void {
    this.kick();
  }

  /** Resolves once the prefetcher has nothing to do (tests). */
  async idle(): Promise<void> {
    while (this.prefetching || this.timer) await (this.prefetching ?? new Promise((r) => setTimeout(r, 10)));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.subscription.unsubscribe();
    this.current?.destroy();
    await this.prefetching;
  }

  /** Runs the prefetcher after the delay, unless it is due or running (a running pass takes what is queued meanwhile). */
  private kick(): void {
    if (this.timer || this.prefetching || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.prefetching = this.drain()
        .catch((err: unknown) => this.log('the image cache prefetcher failed', err))
        .finally(() => {
          this.prefetching = null;
        });
    }, this.delayMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    const failed = new Set<string>();
    for (;;) {
      const id = this.files.queuedIds().find((q) => !failed.has(q));
      if (id === undefined || this.closed) return;
      const ok = await this.prefetch(id).catch((err: unknown) => {
        this.log(`prefetching image ${id} into the cache failed`, err);
        return false;
      });
      if (this.closed) return;
      // An image that cannot be fetched leaves the queue (Glance's prefetcher drops it too).
      if (!ok) failed.add(id);
      await this.files.dequeue(id);
      this.queuedBy.delete(id);
    }
  }

  private async prefetch(id: string): Promise<boolean> {
    const principal = this.queuedBy.get(id) ?? CACHE_PRINCIPAL;
    const content = await this.inner.openBlob(principal, { artifactId: id, field: IMAGE_BLOB, key: '' });
    if (content.kind !== 'stored') return false;
    const expected = expectedOf(content.blob);
    if (!expected || !this.files.canFill(id, expected.size)) return this.files.has(id);
    const source = await content.read();
    this.current = source;
    try {
      return await this.files.fill(id, expected, source);
    } finally {
      this.current = null;
    }
  }

  private async image(principal: Principal, imageId: string) {
    if (!isUuid(imageId)) return null;
    const [found] = await this.inner.getMany(principal, [imageId.toLowerCase()]);
    if (found instanceof Error) throw found;
    return found && found.typeName === IMAGE_TYPE ? found : null;
  }
}

function requireAdmin(principal: Principal): void {
  if (!isAdmin(principal)) fail('FORBIDDEN', 'only admins may manage the image cache');
}

/** What cached bytes must match; null when the image does not say (no checksum): such data is not cached. */
function expectedOf(blob: { size: number; md5: string | null; sha512: string | null }): Expected | null {
  if (!blob.md5) return null;
  return { size: blob.size, md5: blob.md5, sha512: blob.sha512 };
}

import { nowIso } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { VitrineError } from '../../domain/errors';
import type { BlobStore } from '../../storage/blobs/port';
import type { StoreSet } from './stores';
import type { MetadataStore, StoredEvent, UploadRecord } from '../../storage/metadata/port';
import type { BlobSweepReport } from '../port';
import { restoreWrite } from './blob-writes';

/**
 * Crash recovery for blobs. A process that dies mid-upload leaves three things: a partial
 * write in the blob store, an upload in the ledger (its blob saving, its image saving, its
 * bytes reserved) and, if it died between the durable write and the commit, bytes no blob
 * references. The sweep removes all three.
 *
 * Without exclusive ownership the sweep cannot tell "just written, about to be committed"
 * from "orphaned" by looking once, so an unreferenced location is deleted only when it was
 * already unreferenced at the previous sweep, a full interval earlier.
 */
export interface SweeperOptions {
  types: TypeRegistry;
  store: MetadataStore;
  stores: StoreSet;
  publish: (event: StoredEvent) => Promise<void>;
  /** Uploads of this process and the locations it wrote but has not committed yet. */
  localUploads: ReadonlySet<string>;
  pendingLocations: ReadonlySet<string>;
  log?: (message: string, err?: unknown) => void;
}

const BATCH = 500;
const WRITE_ATTEMPTS = 5;

export class BlobSweeper {
  private candidates = new Set<string>();
  private running: Promise<BlobSweepReport> | undefined;

  constructor(private readonly o: SweeperOptions) {}

  /** One sweep at a time: a call during a sweep shares its result. */
  sweep(options: { exclusive: boolean }): Promise<BlobSweepReport> {
    this.running ??= this.run(options.exclusive).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(exclusive: boolean): Promise<BlobSweepReport> {
    // Partial writes of live uploads sit in the same place, so only a process that owns the
    // store alone, before it serves, may clear them all.
    let incompleteWrites = 0;
    for (const blobStore of this.o.stores.all()) {
      if (exclusive || blobStore.sweepsWhileShared) incompleteWrites += await blobStore.sweepIncomplete();
    }
    // In exclusive mode every upload in the ledger belongs to a dead process.
    const uploads = await this.o.store.listUploads(exclusive ? undefined : nowIso());
    let expiredUploads = 0;
    for (const upload of uploads) {
      if (this.o.localUploads.has(upload.id)) continue;
      if (await this.abandon(upload)) expiredUploads++;
    }
    let orphanedLocations = 0;
    const seen = new Set<string>();
    for (const blobStore of this.o.stores.all()) orphanedLocations += await this.removeOrphans(blobStore, exclusive, seen);
    this.candidates = seen;
    return { incompleteWrites, expiredUploads, orphanedLocations };
  }

  private async abandon(upload: UploadRecord): Promise<boolean> {
    const type = this.o.types.find(upload.typeName);
    for (let attempt = 1; ; attempt++) {
      try {
        const current = (await this.o.store.getArtifacts([upload.artifactId]))[0];
        const event = await this.o.store.abortUpload(upload.id, type ? restoreWrite(type, current) : undefined);
        if (event) await this.o.publish(event);
        return true;
      } catch (err) {
        const raced = err instanceof VitrineError && err.code === 'REVISION_CONFLICT';
        if (!raced || attempt >= WRITE_ATTEMPTS) {
          this.o.log?.(`sweeping upload ${upload.id} failed`, err);
          return false;
        }
      }
    }
  }

  /** Candidates are remembered as "store/location" in `seen`, for the next sweep. */
  private async removeOrphans(blobStore: BlobStore, exclusive: boolean, seen: Set<string>): Promise<number> {
    let removed = 0;
    let batch: string[] = [];
    const flush = async () => {
      const referenced = await this.o.store.referencedLocations(blobStore.name, batch);
      for (const location of batch) {
        if (referenced.has(location) || this.o.pendingLocations.has(location)) continue;
        const candidate = `${blobStore.name}/${location}`;
        if (exclusive || this.candidates.has(candidate)) {
          await blobStore.delete(location);
          removed++;
        } else {
          seen.add(candidate);
        }
      }
      batch = [];
    };
    for await (const location of blobStore.list()) {
      batch.push(location);
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length > 0) await flush();
    return removed;
  }
}

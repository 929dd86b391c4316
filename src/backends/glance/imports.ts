import { setTimeout as sleep } from 'node:timers/promises';
import { nowIso } from '../../domain/artifact';
import { isUuid } from '../../domain/ids';
import { fail } from '../../domain/errors';
import type { Principal } from '../../domain/policy';
import type { EventBus, ProgressEvent } from '../../events/port';
import { IMPORT_METHODS, type ArtifactView, type ImportMethod, type ImportRequest, type TaskView } from '../port';

/**
 * Glance's interoperable import as the Glance backend drives it: the body of
 * `POST /v2/images/{id}/import`, and the watchers that follow a running import (its task
 * and the image's `os_glance_*` properties) and publish `importProgress` events.
 */

/** Properties Glance keeps on an image while it imports (the same names as the native store). */
export const IMPORT_LOCK = 'os_glance_import_task';
export const IMPORTING_TO = 'os_glance_importing_to_stores';
export const FAILED_IMPORT = 'os_glance_failed_import';

const MIB = 1024 * 1024;

/** Checks what Glance would refuse without looking at the image, and builds Glance's body. */
export function importBody(request: ImportRequest): Record<string, unknown> {
  if (!IMPORT_METHODS.includes(request.method)) fail('BAD_INPUT', `unknown import method ${JSON.stringify(String(request.method))} (known: ${IMPORT_METHODS.join(', ')})`);
  if (request.method === 'web-download') {
    if (typeof request.uri !== 'string' || request.uri === '') fail('BAD_INPUT', 'web-download needs the uri to fetch');
  } else if (request.uri !== undefined) {
    fail('BAD_INPUT', `${request.method} takes no uri`);
  }
  if (request.method === 'glance-download') {
    // Glance's own checks (images.py import_image), answered without asking it.
    if (!request.glanceRegion) fail('BAD_INPUT', '\'glance_region\' needs to be set for glance-download import method');
    if (!request.glanceImageId) fail('BAD_INPUT', '\'glance_image_id\' needs to be set for glance-download import method');
    if (!isUuid(request.glanceImageId)) fail('BAD_INPUT', `Remote image id does not look like a UUID: ${request.glanceImageId.slice(0, 64)}`);
  }
  if (request.allStores && request.stores !== undefined && request.stores.length > 0) fail('BAD_INPUT', 'give either stores or all_stores, not both');
  // glance-download: the proxied Glance reads its own catalog and checks the id itself.
  const remote = request.method === 'glance-download' ? { glance_image_id: request.glanceImageId, glance_region: request.glanceRegion, glance_service_interface: request.glanceServiceInterface } : {};
  const body: Record<string, unknown> = { method: { name: request.method, ...(request.uri !== undefined && { uri: request.uri }), ...JSON.parse(JSON.stringify(remote)) } };
  if (request.stores !== undefined && request.stores.length > 0) body.stores = request.stores;
  if (request.allStores !== undefined) body.all_stores = request.allStores;
  if (request.allStoresMustSucceed !== undefined) body.all_stores_must_succeed = request.allStoresMustSucceed;
  return body;
}

/** Bytes of Glance's task message "Copied N MiB" (whole MiB, of the store being written), or null. */
export function copiedBytes(message: string): number | null {
  const match = /Copied (\d+) MiB/i.exec(message);
  return match ? Number(match[1]) * MIB : null;
}

/** A comma list property (`os_glance_importing_to_stores`) as names. */
export function storeList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** The stores an import targets, as its task records them (`input.backend`). */
export function targetsOf(task: TaskView): string[] {
  const backend = task.input.backend;
  return Array.isArray(backend) ? backend.filter((s): s is string => typeof s === 'string') : [];
}

export interface ImportWatchOptions {
  bus: EventBus;
  /** The image as the principal sees it (null once it is gone). */
  readImage(principal: Principal, id: string): Promise<ArtifactView | null>;
  /** The image's tasks. */
  readTasks(principal: Principal, id: string): Promise<TaskView[]>;
  /** Each image read while watching (for status events when nothing else reports them). */
  onImage?(principal: Principal, image: ArtifactView): void;
  pollIntervalMs: number;
  /** Imports watched at once; more are not watched (their progress is not published). */
  maxWatchers: number;
  /** A watch ends after this long even if the task never finishes. */
  maxWatchMs: number;
  log?: (message: string, err?: unknown) => void;
}

export interface ImportWatch {
  principal: Principal;
  image: ArtifactView;
  task: TaskView;
  method: ImportMethod;
}

/**
 * Follows imports Glance runs in the background, polling the task and the image every
 * `pollIntervalMs`, and publishes what changed as importProgress events, then a final one
 * once the task has ended. At most `maxWatchers` at a time; `close()` stops them all.
 */
export class ImportWatchers {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private closed = false;

  constructor(private readonly o: ImportWatchOptions) {}

  /** Whether an import of this image is being watched here. */
  watching(imageId: string): boolean {
    return this.running.has(imageId);
  }

  /** Starts watching; false when closed, full, or the image is already watched. */
  watch(watch: ImportWatch): boolean {
    const id = watch.image.id;
    if (this.closed || this.running.has(id)) return false;
    if (this.running.size >= this.o.maxWatchers) {
      this.o.log?.(`import of image ${id} is not watched: ${this.o.maxWatchers} imports are watched already`);
      return false;
    }
    const controller = new AbortController();
    const done = this.run(watch, controller.signal)
      .catch((err: unknown) => this.o.log?.(`watching the import of image ${id} failed`, err))
      .finally(() => this.running.delete(id));
    this.running.set(id, { controller, done });
    return true;
  }

  /** Resolves once no import is watched (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.done));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { controller } of this.running.values()) controller.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  private async run(watch: ImportWatch, signal: AbortSignal): Promise<void> {
    const { principal } = watch;
    const id = watch.image.id;
    const progress = new ImportProgress(this.o.bus, watch);
    const deadline = performance.now() + this.o.maxWatchMs;
    while (!signal.aborted && performance.now() < deadline) {
      try {
        await sleep(this.o.pollIntervalMs, undefined, { signal });
      } catch {
        return;
      }
      let task: TaskView | undefined;
      let image: ArtifactView | null;
      try {
        // The task first: once it has ended, the image read after it shows the outcome.
        task = (await this.o.readTasks(principal, id)).find((t) => t.id === watch.task.id);
        image = await this.o.readImage(principal, id);
      } catch (err) {
        // Glance unavailable for a while: keep watching until the deadline.
        this.o.log?.(`reading the import of image ${id} failed`, err);
        continue;
      }
      if (!image) return progress.finish('failed', 'deleted', 'the image was deleted during the import');
      this.o.onImage?.(principal, image);
      if (!task) {
        // Tasks expire; without it the image's properties tell the outcome.
        const failed = storeList(image.properties[FAILED_IMPORT]).length > 0 || image.status !== 'active';
        return progress.finish(failed ? 'failed' : 'succeeded', image.status, failed ? 'the import task is gone' : undefined, image);
      }
      progress.update(task, image);
      if (task.status === 'success') return progress.finish('succeeded', image.status, undefined, image);
      if (task.status === 'failure') return progress.finish('failed', image.status, task.message || 'the import failed', image);
    }
  }
}

/** The importProgress events of one import: published when something changed, then the final one. */
class ImportProgress {
  private readonly startedAt = performance.now();
  private readonly targets: string[];
  /** os_glance_importing_to_stores when the watch began: possibly left by an earlier import. */
  private readonly staleImporting: string | undefined;
  /** Whether Glance has set this import's store properties (they changed since the watch began). */
  private started = false;
  private stage = 'pending';
  private bytes = 0;
  private size: number | null;
  private done: string[] = [];
  private failed: string[] = [];
  /** The task's message when the last store finished: a "Copied" count still showing it belongs to that store. */
  private messageAtStoreEnd: string | null = null;
  private last = '';

  constructor(private readonly bus: EventBus, private readonly watch: ImportWatch) {
    this.targets = targetsOf(watch.task);
    this.size = sizeOf(watch.image);
    this.staleImporting = watch.image.properties[IMPORTING_TO];
  }

  update(task: TaskView, image: ArtifactView): void {
    this.size = sizeOf(image) ?? this.size;
    this.stage = task.status === 'pending' ? 'pending' : this.watch.method === 'copy-image' ? 'copy' : 'import';
    if (image.properties[IMPORTING_TO] !== this.staleImporting) this.started = true;
    if (this.started) {
      const finishedBefore = this.done.length;
      this.noteStores(image, false);
      if (this.done.length > finishedBefore) this.messageAtStoreEnd = task.message;
    }
    const copied = copiedBytes(task.message);
    const current = copied !== null && task.message !== this.messageAtStoreEnd ? copied : 0;
    this.bytes = Math.max(this.bytes, this.done.length * (this.size ?? 0) + current);
    const total = this.total();
    if (total !== null) this.bytes = Math.min(this.bytes, total);
    if (task.status === 'processing') this.send({ done: false }, task.message);
  }

  /** The final event; `image` (read after the task ended) tells which stores got the data. */
  finish(outcome: 'succeeded' | 'failed', finalStatus: string, error?: string, image?: ArtifactView): void {
    if (image) {
      this.size = sizeOf(image) ?? this.size;
      if (outcome === 'succeeded' || this.started || image.properties[IMPORTING_TO] !== this.staleImporting) this.noteStores(image, outcome === 'succeeded');
    }
    const total = this.total();
    if (outcome === 'succeeded' && total !== null) this.bytes = Math.max(this.bytes, total - this.failed.length * (this.size ?? 0));
    this.send({ done: true, outcome, finalStatus, ...(error && { error }) });
  }

  private noteStores(image: ArtifactView, succeeded: boolean): void {
    const importing = new Set(succeeded ? [] : storeList(image.properties[IMPORTING_TO]));
    this.failed = storeList(image.properties[FAILED_IMPORT]);
    this.done = this.targets.filter((s) => !importing.has(s) && !this.failed.includes(s));
  }

  private total(): number | null {
    return this.size === null ? null : this.size * Math.max(1, this.targets.length);
  }

  private send(fields: Pick<ProgressEvent, 'done'> & Partial<ProgressEvent>, message?: string): void {
    const key = JSON.stringify([this.stage, this.bytes, this.done, this.failed, message ?? '']);
    if (!fields.done && key === this.last) return;
    this.last = key;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.bytes / elapsed : 0;
    const total = this.total();
    const eta = fields.done ? null : total !== null && rate > 0 ? Math.max(0, (total - this.bytes) / rate) : null;
    const event: ProgressEvent = {
      kind: 'importProgress',
      artifactId: this.watch.image.id,
      owner: this.watch.image.owner,
      subject: this.watch.method,
      stage: this.stage,
      bytes: this.bytes,
      total,
      ratePerSecond: rate,
      etaSeconds: eta,
      storesDone: this.done,
      storesFailed: this.failed,
      at: nowIso(),
      ...fields,
    };
    this.bus.publish({ topic: 'progress', event }).catch(() => undefined);
  }
}

function sizeOf(image: ArtifactView): number | null {
  return typeof image.fields.size === 'number' ? image.fields.size : null;
}

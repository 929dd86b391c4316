import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ArtifactRecord, BlobCopy, BlobRecord, TaskRecord } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, VitrineError } from '../../domain/errors';
import { newId } from '../../domain/ids';
import { isAdmin, POLICY_DEFAULTS, requirePolicy, requireWrite, type Policies, type PolicyName, type Principal } from '../../domain/policy';
import type { ArtifactTypeDef } from '../../domain/types';
import type { EventBus, ProgressEvent } from '../../events/port';
import type { ArtifactWrite, MetadataStore, StoredEvent } from '../../storage/metadata/port';
import type { ArtifactView, ImportMethod, ImportRequest, TaskListRequest } from '../port';
import { artifactWrite, transitionWrite } from './blob-writes';
import { copiesOf } from './blobs';
import type { HashPool } from './hasher';
import { UploadMeter } from '../common/meter';
import type { StoreSet } from './stores';
import type { GlanceSource } from './glance-download';
import { BASE_PROPERTIES } from '../../domain/glance-image';
import { isUuid } from '../../domain/ids';
import { HEADER_BYTES, virtualSizeOf } from './virtual-size';

/**
 * Glance's interoperable image import on the native store: glance-direct (bytes staged
 * earlier), web-download (Vitrine fetches a URL) and copy-image (more stores for an active
 * image). `start` checks the request and commits the task together with the image taking
 * its import lock; a runner in every process claims tasks (at most `concurrency` at once),
 * holds a lease on each, and moves the bytes store by store. A task whose process died is
 * claimed again when its lease passes and runs from the start (writes go to fresh
 * locations, the lock names the task), so no image stays `importing` for good.
 */
export const IMPORT_LOCK = 'os_glance_import_task';
export const IMPORTING_TO = 'os_glance_importing_to_stores';
export const FAILED_IMPORT = 'os_glance_failed_import';

/** Fetches web-download sources; the real one filters URLs like Glance's import_filtering_opts. */
export interface WebFetcher {
  /** URL_FORBIDDEN when the URL does not pass the filter. */
  check(uri: string): Promise<void>;
  /** The body streams; its stream errors past `maxBytes`. */
  open(uri: string, maxBytes: number, signal: AbortSignal): Promise<{ body: Readable; size: number | null }>;
}

export interface ImportSettings {
  methods: readonly ImportMethod[];
  /** Imports one process runs at a time. */
  concurrency: number;
  leaseMs: number;
  /** How long finished tasks are kept (Glance's task_time_to_live). */
  taskTtlMs: number;
  /** A task claimed this many times (its processes died) fails instead of running again. */
  maxAttempts: number;
  /** How often to look for tasks other processes left or created. */
  pollIntervalMs: number;
  progressIntervalMs: number;
  /** Largest web-download (and glance-download), in bytes. */
  maxDownloadBytes: number;
  /** glance-download: prefixes of the remote properties copied (Glance's [glance_download_properties] extra_properties). */
  glanceDownloadProperties: readonly string[];
}

export interface ImportHost {
  loadVisible(principal: Principal, id: string): Promise<ArtifactRecord>;
  view(record: ArtifactRecord): ArtifactView;
  publish(event: StoredEvent): Promise<void>;
  /** Bytes written and not committed yet: the sweeper must leave them alone. */
  pendingLocations: Set<string>;
  releaseCopies(copies: readonly BlobCopy[]): Promise<void>;
}

export interface ImageImportsOptions {
  types: TypeRegistry;
  store: MetadataStore;
  bus: EventBus;
  stores: StoreSet;
  hashPool: HashPool;
  fetcher: WebFetcher;
  /** glance-download's remote Glance; without it glance-download is refused. */
  glance?: GlanceSource;
  host: ImportHost;
  settings: ImportSettings;
  /** Who may use each method (config `policy`); Glance's defaults when omitted. */
  policies?: Policies;
  log?: (message: string, err?: unknown) => void;
}

/** What a task asks, as recorded in its input (Glance's `{image_id, import_req, backend}`). */
interface Plan {
  method: ImportMethod;
  uri?: string;
  glance?: { imageId: string; region: string; iface: string };
  targets: string[];
  allMustSucceed: boolean;
}

const WRITE_ATTEMPTS = 5;
const IMAGE_FIELD = 'image';

export class ImageImports {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /**
   * glance-download: the caller's token per task, for the remote Glance and the catalog.
   * Held in memory only, never in the task or a log: a task run by another process (or
   * after a restart) has none and fails with a clear message.
   */
  private readonly tokens = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private claiming = false;
  private reclaimAll = false;
  private closed = false;

  constructor(private readonly o: ImageImportsOptions) {}

  // ---- the API side ----------------------------------------------------------------------

  async start(principal: Principal, imageId: string, request: ImportRequest, requestId?: string): Promise<TaskRecord> {
    const { settings, stores } = this.o;
    if (!settings.methods.includes(request.method)) fail('BAD_INPUT', `import method ${JSON.stringify(request.method)} is not enabled (enabled: ${settings.methods.join(', ') || 'none'})`);
    const image = await this.o.host.loadVisible(principal, imageId);
    const type = this.o.types.get(image.typeName);
    if (type.lifecycle !== 'image') fail('BAD_INPUT', `only images are imported; ${image.id} is a ${type.name} artifact`);
    requireImportPolicy(this.o.policies ?? POLICY_DEFAULTS, request.method, principal, image);
    await this.assertUnlocked(image);
    const missing = ['disk_format', 'container_format'].filter((f) => image.fields[f] === null || image.fields[f] === undefined);
    if (missing.length > 0) fail('TRANSITION_FORBIDDEN', `set ${missing.join(' and ')} before importing image data`, { fields: missing });
    const blob = (await this.o.store.getBlobs([image.id]))[0].find((b) => b.field === IMAGE_FIELD && b.key === '');
    checkStatus(request.method, image, blob);
    if (request.allStoresMustSucceed === false && !stores.multistore) fail('BAD_INPUT', 'all_stores_must_succeed can only be false when multiple stores are enabled');
    const held = request.method === 'copy-image' && blob ? new Set(copiesOf(blob).map((c) => c.store)) : new Set<string>();
    const targets = this.targetsOf(request, held);
    if (request.method === 'web-download') {
      if (typeof request.uri !== 'string' || request.uri === '') fail('BAD_INPUT', 'web-download needs the uri to fetch');
      await this.o.fetcher.check(request.uri);
    } else if (request.uri !== undefined) {
      fail('BAD_INPUT', `${request.method} takes no uri`);
    }
    if (request.method === 'glance-download') {
      if (!this.o.glance) fail('BAD_INPUT', 'glance-download is not available on this backend');
      // Glance's checks and messages (images.py import_image).
      if (!request.glanceRegion) fail('BAD_INPUT', '\'glance_region\' needs to be set for glance-download import method');
      if (!request.glanceImageId) fail('BAD_INPUT', '\'glance_image_id\' needs to be set for glance-download import method');
      if (!isUuid(request.glanceImageId)) fail('BAD_INPUT', `Remote image id does not look like a UUID: ${request.glanceImageId.slice(0, 64)}`);
    }

    const now = nowIso();
    const glance = request.method === 'glance-download' ? { glance_image_id: request.glanceImageId?.toLowerCase(), glance_region: request.glanceRegion, glance_service_interface: request.glanceServiceInterface ?? 'public' } : {};
    const importReq: Record<string, unknown> = { method: { name: request.method, ...(request.uri !== undefined && { uri: request.uri }), ...glance } };
    if (request.stores !== undefined) importReq.stores = request.stores;
    if (request.allStores !== undefined) importReq.all_stores = request.allStores;
    if (request.allStoresMustSucceed !== undefined) importReq.all_stores_must_succeed = request.allStoresMustSucceed;
    const task: TaskRecord = {
      id: newId(),
      type: 'api_image_import',
      status: 'pending',
      imageId: image.id,
      owner: image.owner,
      userId: principal.userId,
      requestId: requestId ?? null,
      input: { image_id: image.id, import_req: importReq, backend: targets },
      result: null,
      message: '',
      createdAt: now,
      updatedAt: now,
      expiresAt: null,
      leaseExpiresAt: null,
      attempts: 0,
    };
    const properties = { ...image.properties, [IMPORT_LOCK]: task.id, [IMPORTING_TO]: targets.join(','), [FAILED_IMPORT]: '' };
    const write = request.method === 'copy-image' ? artifactWrite(image, { properties }) : transitionWrite(type, image, 'import_start', { properties });
    if (request.method === 'glance-download' && principal.token !== undefined) this.tokens.set(task.id, principal.token);
    let event;
    try {
      event = await this.o.store.insertTask(task, write);
    } catch (err) {
      this.tokens.delete(task.id);
      throw err;
    }
    if (event) await this.o.host.publish(event);
    this.kick();
    return task;
  }

  async tasksOf(principal: Principal, imageId: string): Promise<TaskRecord[]> {
    const image = await this.o.host.loadVisible(principal, imageId);
    return this.o.store.listTasks(image.id);
  }

  /** Removes an active image's bytes from one store (never its last one). */
  async deleteFromStore(principal: Principal, imageId: string, storeName: string): Promise<ArtifactView> {
    this.o.stores.named(storeName);
    for (let attempt = 1; ; attempt++) {
      const image = await this.o.host.loadVisible(principal, imageId);
      requireWrite(principal, image, 'delete image data from a store');
      if (image.status !== 'active') fail('TRANSITION_FORBIDDEN', `image ${image.id} is ${image.status}; data is deleted from a store only while it is active`);
      await this.assertUnlocked(image);
      const blob = (await this.o.store.getBlobs([image.id]))[0].find((b) => b.field === IMAGE_FIELD && b.key === '');
      const copies = blob ? copiesOf(blob) : [];
      const gone = copies.find((c) => c.store === storeName);
      if (!blob || !gone) return fail('NOT_FOUND', `image ${image.id} has no data in store ${storeName}`);
      const kept = copies.filter((c) => c !== gone);
      if (kept.length === 0) fail('FORBIDDEN', `store ${storeName} holds the only copy of image ${image.id}'s data; delete the image instead`);
      const write = artifactWrite(image, { fields: { ...image.fields, stores: storesOf(kept) } });
      try {
        const { event } = await this.o.store.putBlob(withCopies(blob, kept), write);
        await this.o.host.publish(event);
        await this.o.host.releaseCopies([gone]);
        return this.o.host.view(write.next);
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  private async assertUnlocked(image: ArtifactRecord): Promise<void> {
    const lock = image.properties[IMPORT_LOCK];
    if (!lock) return;
    const [task] = await this.o.store.getTasks([lock]);
    if (task && (task.status === 'pending' || task.status === 'processing')) fail('IMPORT_BUSY', `image ${image.id} has an import running (task ${lock})`, { task: lock });
  }

  /** Glance's `stores` / `all_stores` semantics; copy-image skips stores that already hold the data. */
  private targetsOf(request: ImportRequest, held: ReadonlySet<string>): string[] {
    const { stores } = this.o;
    if (request.allStores) {
      if (request.stores !== undefined && request.stores.length > 0) fail('BAD_INPUT', 'give either stores or all_stores, not both');
      const targets = stores.views().map((s) => s.id).filter((s) => !held.has(s));
      if (!stores.multistore) return held.has(stores.default.name) ? fail('BAD_INPUT', 'the image is already in every store') : [stores.default.name];
      if (targets.length === 0) fail('BAD_INPUT', 'the image is already in every store');
      return targets;
    }
    if (request.stores === undefined || request.stores.length === 0) {
      if (held.has(stores.default.name)) fail('BAD_INPUT', `the image is already in store ${stores.default.name}`);
      return [stores.default.name];
    }
    const targets = [...new Set(request.stores)];
    for (const name of targets) {
      stores.named(name);
      if (held.has(name)) fail('BAD_INPUT', `the image is already in store ${name}`);
    }
    return targets;
  }

  // ---- the runner --------------------------------------------------------------------------

  /** Starts claiming tasks now and every poll interval (tasks of dead processes, of other instances). */
  startRunner(options: { exclusive: boolean }): void {
    if (this.timer || this.closed) return;
    // A process that owns the store alone knows every running task belongs to a dead process.
    this.reclaimAll = options.exclusive;
    this.timer = setInterval(() => this.kick(), this.o.settings.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Stops claiming and interrupts running imports; their tasks keep their lease and run again later (here after a restart, or elsewhere). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const { controller } of this.running.values()) controller.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  /** Waits until no import runs in this process (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.claiming) {
      await Promise.all([...[...this.running.values()].map((r) => r.done), new Promise<void>((r) => setTimeout(r, 10))]);
    }
  }

  private kick(): void {
    if (this.claiming || this.closed || !this.timer) return;
    this.claiming = true;
    this.claimAll()
      .catch((err: unknown) => this.o.log?.('claiming import tasks failed', err))
      .finally(() => (this.claiming = false));
  }

  /** Drops the tokens of tasks that ended without running here (another instance ran them). */
  private async forgetFinishedTokens(): Promise<void> {
    const waiting = [...this.tokens.keys()].filter((id) => !this.running.has(id));
    if (waiting.length === 0) return;
    const tasks = await this.o.store.getTasks(waiting);
    tasks.forEach((task, i) => {
      if (!task || task.status === 'success' || task.status === 'failure') this.tokens.delete(waiting[i]);
    });
  }

  private async claimAll(): Promise<void> {
    await this.forgetFinishedTokens();
    // At the start of a process that owns the store alone, every running task belongs to a
    // dead process whose leases end within one lease time: claiming as if it were later
    // takes them over now (with leases beyond that time, so this pass never takes one twice).
    const reclaimUntil = this.reclaimAll ? Date.now() + this.o.settings.leaseMs + 1000 : undefined;
    this.reclaimAll = false;
    while (!this.closed && this.running.size < this.o.settings.concurrency) {
      const now = reclaimUntil === undefined ? nowIso() : new Date(reclaimUntil).toISOString();
      const lease = reclaimUntil === undefined ? this.leaseEnd() : new Date(reclaimUntil + this.o.settings.leaseMs).toISOString();
      const task = await this.o.store.claimTask(now, lease);
      if (!task) return;
      const controller = new AbortController();
      const done = this.run(task, controller.signal)
        .catch((err: unknown) => this.o.log?.(`import task ${task.id} failed unexpectedly`, err))
        .finally(() => {
          this.running.delete(task.id);
          this.kick();
        });
      this.running.set(task.id, { controller, done });
    }
  }

  private leaseEnd(): string {
    return new Date(Date.now() + this.o.settings.leaseMs).toISOString();
  }

  private async run(task: TaskRecord, signal: AbortSignal): Promise<void> {
    const lost = new AbortController();
    const renewal = setInterval(() => {
      this.o.store.renewTask(task.id, this.leaseEnd()).then(
        (alive) => alive || lost.abort(),
        (err: unknown) => this.o.log?.('renewing an import lease failed', err),
      );
    }, Math.max(250, Math.floor(this.o.settings.leaseMs / 6)));
    renewal.unref();
    try {
      await this.execute(task, AbortSignal.any([signal, lost.signal]));
    } finally {
      clearInterval(renewal);
      this.tokens.delete(task.id);
    }
  }

  private async execute(task: TaskRecord, signal: AbortSignal): Promise<void> {
    const plan = planOf(task);
    const image = await this.current(task.imageId);
    if (!image) return void (await this.finishTask(task, 'failure', 'the image was deleted before the import ran'));
    if (image.properties[IMPORT_LOCK] !== task.id) {
      // An earlier run committed its outcome and died before closing the task.
      const ok = image.status === 'active' && !(image.properties[FAILED_IMPORT] ?? '');
      return void (await this.finishTask(task, ok ? 'success' : 'failure', ok ? '' : 'the import ended while its process stopped'));
    }
    const type = this.o.types.get(image.typeName);
    const progress = new ImportProgressReporter(this.o.bus, image, plan, this.o.settings.progressIntervalMs);
    if (task.attempts > this.o.settings.maxAttempts) {
      return this.conclude(task, type, plan, progress, { done: [], written: [], failed: plan.targets, reason: `the import was interrupted ${task.attempts - 1} times (its process stopped); giving up` });
    }
    await this.updateTask(task, { message: '' });

    const done: BlobCopy[] = [];
    const written: BlobCopy[] = [];
    const failed: string[] = [];
    let data: ImportedData | undefined;
    let reason: string | undefined;
    try {
      let targets = plan.targets;
      if (plan.method === 'web-download' || plan.method === 'glance-download') {
        const source = plan.method === 'web-download' ? { open: (maxBytes: number, s: AbortSignal) => this.o.fetcher.open(plan.uri ?? '', maxBytes, s) } : await this.remoteImage(task, plan, signal);
        const first = await this.download(plan, targets, signal, progress, failed, source.open);
        if (first) {
          data = { ...first.data, ...('adopt' in source && { adopt: source.adopt }) };
          done.push(first.copy);
          written.push(first.copy);
          if ('remote' in source) checkRemoteData(first.data, source.remote);
          targets = targets.filter((t) => t !== first.copy.store && !failed.includes(t));
          progress.stores(storesOf(done), failed);
          await this.noteStores(image.id, plan, done, failed);
        } else {
          targets = [];
        }
      } else {
        const blob = (await this.o.store.getBlobs([image.id]))[0].find((b) => b.field === IMAGE_FIELD && b.key === '');
        if (!blob || blob.status !== 'active' || blob.size === null) throw new VitrineError('BLOB_NOT_READY', plan.method === 'glance-direct' ? 'no staged data: stage the image data first' : 'the image has no data to copy');
        data = { size: blob.size, md5: blob.md5, sha512: blob.sha512, head: null, blob };
        if (plan.method === 'glance-direct') {
          // Staged bytes already sit in the default store: adopting them there costs no copy.
          const staged = copiesOf(blob)[0];
          if (staged && targets.includes(staged.store)) {
            done.push(staged);
            targets = targets.filter((t) => t !== staged.store);
            await this.noteStores(image.id, plan, done, failed);
          }
        }
      }
      for (const target of targets) {
        if (plan.allMustSucceed && failed.length > 0) break;
        if (!data) break;
        const source = done[0] ?? copiesOf(data.blob ?? { store: null, location: null, copies: [] })[0];
        const copy = await this.copyTo(target, source, data.size, signal, progress).catch((err: unknown) => {
          if (signal.aborted) throw err;
          failed.push(target);
          reason = describe(err);
          this.o.log?.(`import of image ${image.id} into store ${target} failed`, err);
          return null;
        });
        if (copy) {
          done.push(copy);
          written.push(copy);
        }
        progress.stores(storesOf(done), failed);
        await this.noteStores(image.id, plan, done, failed);
      }
    } catch (err) {
      if (signal.aborted) {
        // Shutdown or a lost lease: the task runs again (here after a restart, or elsewhere); drop what this run wrote.
        await this.o.host.releaseCopies(written);
        for (const c of written) this.o.host.pendingLocations.delete(c.location);
        return;
      }
      reason = describe(err);
    }
    const remaining = plan.targets.filter((t) => !done.some((c) => c.store === t) && !failed.includes(t));
    failed.push(...remaining);
    const succeeded = done.length > 0 && (!plan.allMustSucceed || failed.length === 0);
    await this.conclude(task, type, plan, progress, { done, written, failed, data: succeeded ? data : undefined, reason: succeeded ? undefined : reason ?? 'the import failed' });
  }

  /**
   * glance-download, before any byte or property moves: the endpoint, the remote image
   * (active), the formats and properties it will hand over once the data is in (the image
   * changes only when the import succeeds, so a failure leaves it as it was).
   */
  private async remoteImage(task: TaskRecord, plan: Plan, signal: AbortSignal): Promise<{ open: Opener; adopt: Adopted; remote: { size: number | null; md5: string | null } }> {
    const glance = this.o.glance ?? fail('BAD_INPUT', 'glance-download is not available on this backend');
    const source = plan.glance ?? fail('BAD_INPUT', 'the task does not name the remote image');
    const token = this.tokens.get(task.id);
    const endpoint = await glance.endpoint(source.region, source.iface, token, signal);
    const remote = await glance.image(endpoint, source.imageId, token, signal);
    if (remote.status !== 'active') fail('IMPORT_FETCH_FAILED', `the remote image is ${String(remote.status)}; only active images can be copied`);
    const fields: Record<string, string> = {};
    const type = this.o.types.get('images');
    for (const name of ['disk_format', 'container_format']) {
      const value = remote[name];
      const allowed = type.fields.find((f) => f.name === name)?.allowedValues;
      if (typeof value !== 'string' || (allowed && !allowed.includes(value))) fail('IMPORT_FETCH_FAILED', `the remote image's ${name} ${JSON.stringify(value)} is not one this Glance accepts`);
      fields[name] = value;
    }
    const properties: Record<string, string> = {};
    for (const [key, value] of Object.entries(remote)) {
      if (typeof value !== 'string' || NOT_COPIED.has(key) || key.startsWith('os_glance')) continue;
      if (this.o.settings.glanceDownloadProperties.some((prefix) => key.startsWith(prefix))) properties[key] = value;
    }
    const size = typeof remote.size === 'number' ? remote.size : null;
    const md5 = typeof remote.checksum === 'string' ? remote.checksum : null;
    return { open: (maxBytes, s) => glance.open(endpoint, source.imageId, token, maxBytes, s), adopt: { fields, properties }, remote: { size, md5 } };
  }

  /** web-download and glance-download: fetch into the first target that takes the bytes (a full store moves on to the next). */
  private async download(plan: Plan, targets: string[], signal: AbortSignal, progress: ImportProgressReporter, failed: string[], open: Opener): Promise<{ copy: BlobCopy; data: ImportedData } | null> {
    const field = this.o.types.get('images').fields.find((f) => f.name === IMAGE_FIELD);
    const maxBytes = Math.min(this.o.settings.maxDownloadBytes, field?.maxBlobSize ?? Number.MAX_SAFE_INTEGER);
    for (const target of targets) {
      if (plan.allMustSucceed && failed.length > 0) return null;
      const store = this.o.stores.get(target);
      progress.stage = 'download';
      const source = await open(maxBytes, signal);
      progress.total = source.size;
      const meter = progress.meter(maxBytes, HEADER_BYTES);
      const tap = this.o.hashPool.tap();
      let sourceFailed: unknown;
      const piping = pipeline(source.body, meter, tap).catch((err: unknown) => {
        if (isSourceError(err)) sourceFailed = err;
      });
      let location: string | undefined;
      try {
        const result = await store.write(tap, { signal });
        location = result.location;
        this.o.host.pendingLocations.add(location);
        await piping;
        if (sourceFailed) throw sourceFailed;
        const digests = await tap.result();
        return { copy: { store: target, location }, data: { size: meter.bytes, md5: digests.md5, sha512: digests.sha512, head: meter.head } };
      } catch (err) {
        source.body.destroy();
        tap.destroy();
        await piping;
        if (location) {
          await this.o.host.releaseCopies([{ store: target, location }]);
          this.o.host.pendingLocations.delete(location);
        }
        // The source failing fails the import; a store failing fails only that store.
        if (signal.aborted) throw err;
        if (sourceFailed !== undefined || isSourceError(err)) throw sourceFailed ?? err;
        failed.push(target);
        this.o.log?.(`web-download into store ${target} failed`, err);
      }
    }
    return null;
  }

  /** Copies stored bytes into another store, checking the length that arrived. */
  private async copyTo(target: string, source: BlobCopy, size: number, signal: AbortSignal, progress: ImportProgressReporter): Promise<BlobCopy> {
    progress.stage = 'copy';
    progress.total = size;
    const input = await this.o.stores.get(source.store).read(source.location);
    const meter = progress.meter(size, 0);
    const piping = pipeline(input, meter).catch(() => undefined);
    const { location } = await this.o.stores.get(target).write(meter, { signal }).catch(async (err: unknown) => {
      input.destroy();
      meter.destroy();
      await piping;
      throw err;
    });
    this.o.host.pendingLocations.add(location);
    await piping;
    if (meter.bytes !== size) {
      await this.o.host.releaseCopies([{ store: target, location }]);
      this.o.host.pendingLocations.delete(location);
      fail('SIZE_MISMATCH', `copied ${meter.bytes} of ${size} bytes into store ${target}`);
    }
    return { store: target, location };
  }

  /** Keeps os_glance_importing_to_stores / os_glance_failed_import current as stores finish. */
  private async noteStores(imageId: string, plan: Plan, done: BlobCopy[], failed: string[]): Promise<void> {
    await this.writeImage(imageId, (image) => artifactWrite(image, { properties: { ...image.properties, ...progressProperties(plan, done, failed) } }));
  }

  /** Commits the outcome: the image, its blob and the task. */
  private async conclude(task: TaskRecord, type: ArtifactTypeDef, plan: Plan, progress: ImportProgressReporter, outcome: { done: BlobCopy[]; written: BlobCopy[]; failed: string[]; data?: ImportedData; reason?: string }): Promise<void> {
    const { done, written, failed, data } = outcome;
    let staleCopies: BlobCopy[] = [];
    try {
      if (data) {
        staleCopies = await this.commitSuccess(task, type, plan, done, failed, data);
      } else {
        await this.o.host.releaseCopies(written);
        staleCopies = await this.commitFailure(task, type, plan, failed);
      }
    } catch (err) {
      // The image went away (or is no longer ours): nothing this run wrote may stay.
      await this.o.host.releaseCopies(written);
      for (const c of written) this.o.host.pendingLocations.delete(c.location);
      const message = err instanceof VitrineError && err.code === 'NOT_FOUND' ? 'the image was deleted during the import' : describe(err);
      await this.finishTask(task, 'failure', message);
      progress.finish('failed', failed, 'deleted', message);
      return;
    }
    for (const c of written) this.o.host.pendingLocations.delete(c.location);
    await this.o.host.releaseCopies(staleCopies);
    const image = await this.current(task.imageId);
    if (data) {
      await this.finishTask(task, 'success', failed.length > 0 ? `imported into ${storesOf(done).join(', ')}; failed: ${failed.join(', ')}` : '', { image_id: task.imageId });
      progress.finish('succeeded', failed, image?.status ?? 'active', undefined, storesOf(done));
    } else {
      await this.finishTask(task, 'failure', outcome.reason ?? 'the import failed');
      progress.finish('failed', failed, image?.status ?? 'queued', outcome.reason);
    }
  }

  /** Returns copies that no blob references any more (staged bytes left outside every target). */
  private async commitSuccess(task: TaskRecord, type: ArtifactTypeDef, plan: Plan, done: BlobCopy[], failed: string[], data: ImportedData): Promise<BlobCopy[]> {
    for (let attempt = 1; ; attempt++) {
      const image = await this.lockedImage(task);
      const now = nowIso();
      const existing = data.blob;
      const copies = plan.method === 'copy-image' && existing ? [...copiesOf(existing), ...done] : done;
      const blob: BlobRecord = existing
        ? withCopies({ ...existing, updatedAt: now }, copies)
        : { artifactId: image.id, field: IMAGE_FIELD, key: '', status: 'active', size: data.size, md5: data.md5, sha256: null, sha512: data.sha512, contentType: 'application/octet-stream', external: false, url: null, store: null, location: null, copies: [], createdAt: now, updatedAt: now };
      const placed = withCopies(blob, copies);
      const properties = { ...withoutLock(image.properties), ...data.adopt?.properties, ...progressProperties(plan, done, failed) };
      const fields: ArtifactRecord['fields'] = { ...image.fields, ...data.adopt?.fields, stores: storesOf(copies) };
      if (plan.method !== 'copy-image') {
        Object.assign(fields, { size: data.size, checksum: data.md5, os_hash_algo: 'sha512', os_hash_value: data.sha512 });
        if (data.head) fields.virtual_size = virtualSizeOf(image.fields.disk_format, data.head, data.size);
      }
      const write = plan.method === 'copy-image' ? artifactWrite(image, { properties, fields }) : transitionWrite(type, image, 'import_done', { properties, fields, activatedAt: now });
      try {
        const { event } = await this.o.store.putBlob(placed, write);
        await this.o.host.publish(event);
        const kept = new Set(copies.map((c) => `${c.store}/${c.location}`));
        return existing ? copiesOf(existing).filter((c) => !kept.has(`${c.store}/${c.location}`)) : [];
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /** The image returns to queued (staged bytes dropped) or, for copy-image, stays active as it was. */
  private async commitFailure(task: TaskRecord, type: ArtifactTypeDef, plan: Plan, failed: string[]): Promise<BlobCopy[]> {
    for (let attempt = 1; ; attempt++) {
      const image = await this.lockedImage(task);
      const properties = { ...withoutLock(image.properties), [IMPORTING_TO]: '', [FAILED_IMPORT]: failed.join(',') };
      try {
        if (plan.method === 'copy-image') {
          await this.publishWrite(artifactWrite(image, { properties }));
          return [];
        }
        const write = transitionWrite(type, image, 'import_failed', { properties, fields: { ...image.fields, size: null, checksum: null, os_hash_algo: null, os_hash_value: null, virtual_size: null, stores: [] } });
        const staged = (await this.o.store.getBlobs([image.id]))[0].find((b) => b.field === IMAGE_FIELD && b.key === '');
        if (!staged) {
          await this.publishWrite(write);
          return [];
        }
        const { event, removed } = await this.o.store.deleteBlob(image.id, IMAGE_FIELD, '', write);
        await this.o.host.publish(event);
        return copiesOf(removed);
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  private async lockedImage(task: TaskRecord): Promise<ArtifactRecord> {
    const image = await this.current(task.imageId);
    if (!image) fail('NOT_FOUND', `image ${task.imageId} was deleted`);
    if (image.properties[IMPORT_LOCK] !== task.id) fail('GONE', `image ${task.imageId} is no longer locked by task ${task.id}`);
    return image;
  }

  private async writeImage(imageId: string, change: (image: ArtifactRecord) => ArtifactWrite): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const image = await this.current(imageId);
      if (!image) fail('NOT_FOUND', `image ${imageId} was deleted`);
      try {
        await this.publishWrite(change(image));
        return;
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  private async publishWrite(write: ArtifactWrite): Promise<void> {
    const event = await this.o.store.replaceArtifact(write.next, write.expectedRevision, write.event, { unique: false });
    await this.o.host.publish(event);
  }

  private async current(id: string): Promise<ArtifactRecord | null> {
    const [image] = await this.o.store.getArtifacts([id]);
    return image && image.status !== 'deleted' ? image : null;
  }

  private async updateTask(task: TaskRecord, change: Partial<TaskRecord>): Promise<void> {
    Object.assign(task, change, { updatedAt: nowIso() });
    await this.o.store.updateTask(task).catch((err: unknown) => this.o.log?.(`updating import task ${task.id} failed`, err));
  }

  private async finishTask(task: TaskRecord, status: 'success' | 'failure', message: string, result: Record<string, unknown> | null = null): Promise<void> {
    const now = Date.now();
    await this.updateTask(task, { status, message, result, leaseExpiresAt: null, expiresAt: new Date(now + this.o.settings.taskTtlMs).toISOString() });
    this.o.store.pruneTasks(new Date(now).toISOString()).catch((err: unknown) => this.o.log?.('pruning expired tasks failed', err));
  }
}

interface ImportedData {
  size: number;
  md5: string | null;
  sha512: string | null;
  /** Leading bytes, when the import read the data (for virtual_size). */
  head: Buffer | null;
  /** The blob the data came from (glance-direct, copy-image). */
  blob?: BlobRecord;
  /** glance-download: what the image takes over from the remote one when the import succeeds. */
  adopt?: Adopted;
}

interface Adopted {
  fields: Record<string, string>;
  properties: Record<string, string>;
}

type Opener = (maxBytes: number, signal: AbortSignal) => Promise<{ body: Readable; size: number | null }>;

/** Remote keys never copied as properties, whatever the prefixes: Glance's base keys and links. */
const NOT_COPIED: ReadonlySet<string> = new Set<string>([...BASE_PROPERTIES, 'self', 'file', 'schema', 'stores', 'locations', 'direct_url']);

/** The bytes that arrived are the remote image's: its size (as Glance checks) and its checksum. */
function checkRemoteData(data: ImportedData, remote: { size: number | null; md5: string | null }): void {
  if (remote.size !== null && data.size !== remote.size) fail('SIZE_MISMATCH', `downloaded ${data.size} bytes; the remote image has ${remote.size}`);
  if (remote.md5 !== null && data.md5 !== null && data.md5 !== remote.md5) fail('CHECKSUM_MISMATCH', 'the downloaded data does not match the remote image\'s checksum');
}

function checkStatus(method: ImportMethod, image: ArtifactRecord, blob: BlobRecord | undefined): void {
  const s = image.status;
  if (method === 'copy-image') {
    if (s !== 'active') fail('TRANSITION_FORBIDDEN', `copy-image needs an active image; ${image.id} is ${s}`);
    return;
  }
  if (s === 'active') fail('TRANSITION_FORBIDDEN', `image ${image.id} is already active; use copy-image to add stores`);
  if ((method === 'web-download' || method === 'glance-download') && s !== 'queued') fail('TRANSITION_FORBIDDEN', `${method} needs a queued image; ${image.id} is ${s}`);
  if (method === 'glance-direct') {
    if (s !== 'uploading') fail('TRANSITION_FORBIDDEN', `image ${image.id} is ${s}: glance-direct needs its data to be staged first`);
    if (!blob || blob.status !== 'active') fail('TRANSITION_FORBIDDEN', `image ${image.id} is still being staged`);
  }
}

function planOf(task: TaskRecord): Plan {
  const req = (task.input.import_req ?? {}) as { method?: { name?: string; uri?: string; glance_image_id?: string; glance_region?: string; glance_service_interface?: string }; all_stores_must_succeed?: boolean };
  const m = req.method;
  return {
    method: m?.name as ImportMethod,
    uri: m?.uri,
    ...(m?.name === 'glance-download' && { glance: { imageId: m.glance_image_id ?? '', region: m.glance_region ?? '', iface: m.glance_service_interface ?? 'public' } }),
    targets: Array.isArray(task.input.backend) ? task.input.backend.map(String) : [],
    allMustSucceed: req.all_stores_must_succeed !== false,
  };
}

function progressProperties(plan: Plan, done: BlobCopy[], failed: string[]): Record<string, string> {
  const reached = new Set(done.map((c) => c.store));
  return {
    [IMPORTING_TO]: plan.targets.filter((t) => !reached.has(t) && !failed.includes(t)).join(','),
    [FAILED_IMPORT]: failed.join(','),
  };
}

function withoutLock(properties: Record<string, string>): Record<string, string> {
  const { [IMPORT_LOCK]: _lock, ...rest } = properties;
  return rest;
}

function withCopies(blob: BlobRecord, copies: readonly BlobCopy[]): BlobRecord {
  const [primary, ...rest] = copies;
  return { ...blob, store: primary?.store ?? null, location: primary?.location ?? null, copies: rest };
}

function storesOf(copies: readonly BlobCopy[]): string[] {
  return [...new Set(copies.map((c) => c.store))].sort();
}

/** Errors of the web-download source (the fetcher reports every failure with these codes), not of a store. */
function isSourceError(err: unknown): boolean {
  return err instanceof VitrineError && (err.code === 'IMPORT_FETCH_FAILED' || err.code === 'BLOB_TOO_LARGE' || err.code === 'URL_FORBIDDEN');
}

function isRace(err: unknown): boolean {
  return err instanceof VitrineError && err.code === 'REVISION_CONFLICT';
}

function describe(err: unknown): string {
  if (err instanceof VitrineError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC') return 'the store is full';
  return err instanceof Error && err.message ? `unexpected error: ${err.message}` : 'unexpected error';
}

/** importProgress events of one import run, throttled; best effort, never failing the import. */
class ImportProgressReporter {
  stage = 'import';
  total: number | null = null;
  private readonly startedAt = performance.now();
  /** Bytes moved by earlier stores of this run. */
  private bytes = 0;
  private done: string[] = [];
  private failed: string[] = [];

  constructor(private readonly bus: EventBus, private readonly image: ArtifactRecord, private readonly plan: Plan, private readonly intervalMs: number) {}

  /** A meter for one transfer whose progress adds to this run's bytes. */
  meter(cap: number, headBytes: number): UploadMeter {
    const base = this.bytes;
    const meter = new UploadMeter({
      cap,
      overCap: () => new VitrineError('BLOB_TOO_LARGE', `the data is larger than ${cap} bytes`, { limit: cap }),
      headBytes,
      progressIntervalMs: this.intervalMs,
      onProgress: (bytes) => {
        this.bytes = base + bytes;
        this.send({ done: false });
      },
    });
    // Progress events are throttled: the count is exact once the transfer's bytes are all through.
    meter.once('finish', () => (this.bytes = base + meter.bytes));
    return meter;
  }

  stores(done: string[], failed: string[]): void {
    this.done = done;
    this.failed = [...failed];
  }

  finish(outcome: 'succeeded' | 'failed', failed: string[], finalStatus: string, error?: string, done: string[] = this.done): void {
    this.send({ done: true, outcome, finalStatus, storesDone: done, storesFailed: failed, ...(error && { error }) });
  }

  private send(fields: Partial<ProgressEvent>): void {
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? this.bytes / elapsed : 0;
    const total = this.total === null ? null : this.total * Math.max(1, this.plan.targets.length);
    const event: ProgressEvent = {
      kind: 'importProgress',
      artifactId: this.image.id,
      owner: this.image.owner,
      subject: this.plan.method,
      stage: this.stage,
      bytes: this.bytes,
      total,
      ratePerSecond: rate,
      etaSeconds: total !== null && rate > 0 ? Math.max(0, (total - this.bytes) / rate) : null,
      done: false,
      storesDone: this.done,
      storesFailed: this.failed,
      at: nowIso(),
      ...fields,
    };
    this.bus.publish({ topic: 'progress', event }).catch(() => undefined);
  }
}

const IMPORT_POLICIES: Readonly<Record<ImportMethod, PolicyName>> = {
  'glance-direct': 'importGlanceDirect',
  'web-download': 'importWebDownload',
  'glance-download': 'importGlanceDownload',
  'copy-image': 'copyImage',
};

/**
 * Glance's checks: copy-image needs its own rule (admins by default, on any image they can
 * see); the other methods change the image, so its owner's members (by default) use them.
 */
function requireImportPolicy(policies: Policies, method: ImportMethod, principal: Principal, image: ArtifactRecord): void {
  const what = method === 'copy-image' ? 'copy image data to more stores' : `import data into this image by ${method}`;
  if (method !== 'copy-image') requireWrite(principal, image, 'import data into this image');
  requirePolicy(policies, IMPORT_POLICIES[method], principal, image, what);
}

/** One task; NOT_FOUND when absent or another project's (admins see all). A read: no import service needed. */
export async function readTask(store: MetadataStore, principal: Principal, taskId: string): Promise<TaskRecord> {
  const [task] = await store.getTasks([taskId]);
  if (!task || (!isAdmin(principal) && task.owner !== principal.projectId)) return fail('NOT_FOUND', `task ${taskId} was not found`);
  return task;
}

/** Every task, for admins (Glance's tasks_api_access); a page of `limit` read with one more to tell whether more follow. */
export async function listAllTasks(store: MetadataStore, principal: Principal, request: TaskListRequest): Promise<{ tasks: TaskRecord[]; hasNextPage: boolean }> {
  if (!isAdmin(principal)) fail('FORBIDDEN', 'only admins may list every task');
  let after: TaskRecord | undefined;
  if (request.afterId !== undefined) {
    const [marker] = isUuid(request.afterId) ? await store.getTasks([request.afterId]) : [null];
    if (!marker) fail('CURSOR_INVALID', `task ${JSON.stringify(request.afterId.slice(0, 64))} was not found`);
    after = marker;
  }
  const limit = Math.max(0, Math.floor(request.limit));
  const rows = await store.queryTasks({
    where: request.filter ?? {}, sortKey: request.sortKey ?? 'createdAt', direction: request.direction ?? 'desc', after, limit: limit + 1,
  });
  return { tasks: rows.slice(0, limit), hasNextPage: rows.length > limit };
}

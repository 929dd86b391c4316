import { lookup } from 'node:dns/promises';
import type { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream';
import type { ArtifactRecord, BlobCopy, BlobRecord } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, VitrineError, type ErrorCode } from '../../domain/errors';
import { newId } from '../../domain/ids';
import { nextStatus } from '../../domain/lifecycle';
import { isAdmin, requireWrite, type Principal } from '../../domain/policy';
import { assertEditable } from '../../domain/rules';
import { isBlobField, requireField, type ArtifactTypeDef, type FieldDef } from '../../domain/types';
import { assertPublicAddresses, hostOf, parseExternalUrl } from '../../domain/urls';
import type { EventBus } from '../../events/port';
import type { ByteLimit, MetadataStore, StoredEvent, UploadRecord } from '../../storage/metadata/port';
import type { ArtifactView, BlobContent, BlobTarget, BlobView, ExternalBlobRequest, UploadMeta, UploadResult } from '../port';
import { artifactWrite, restoreWrite, transitionWrite } from './blob-writes';
import type { Digests, HashPool } from './hasher';
import { UploadMeter } from '../common/meter';
import { checkAnnounced, MD5_HEX, SHA512_HEX } from '../common/announced';
import { ProgressReporter, subjectOf } from '../common/progress';
import { quotaLimit } from './quotas';
import type { StoreSet } from './stores';
import { HEADER_BYTES, virtualSizeOf } from './virtual-size';

/**
 * Blob uploads, downloads and external blobs of the native backend. An upload is:
 * reserve (the ledger counts the reservation against quotas atomically and marks the blob
 * saving) → meter (cap, progress) → hashing tap (md5 + sha512 in workers) → blob store
 * (durable on resolve) → verify what the client announced → commit blob and artifact
 * together. Any failure removes the bytes and the reservation and restores the artifact.
 */
export interface BlobHost {
  loadVisible(principal: Principal, id: string): Promise<ArtifactRecord>;
  view(record: ArtifactRecord): ArtifactView;
  blobView(blob: BlobRecord): BlobView;
  publish(event: StoredEvent): Promise<void>;
  quotasOf(projectId: string): Promise<Record<string, number>>;
}

/** What the native backend needs to serve blobs (its `blobs` option). */
export interface NativeBlobOptions {
  /** Where bytes live; uploads and staging write to the default store. */
  stores: StoreSet;
  hashPool: HashPool;
  /** A running upload's lease; renewed every sixth of it. */
  leaseMs: number;
  progressIntervalMs: number;
  allowPrivateUrls: boolean;
  /** Host → addresses, for the SSRF check of external URLs (DNS when omitted). */
  resolve?: (host: string) => Promise<string[]>;
  log?: (message: string, err?: unknown) => void;
}

export interface BlobServiceOptions extends NativeBlobOptions {
  types: TypeRegistry;
  store: MetadataStore;
  bus: EventBus;
  host: BlobHost;
}

/** How long a direct download URL (a Swift temp URL) stays valid: enough to start the download. */
const DIRECT_URL_SECONDS = 300;

/** Retries of an artifact write that lost a race with a metadata change during the upload. */
const WRITE_ATTEMPTS = 5;
const MAX_KEY_LENGTH = 255;

export class BlobService {
  /** Uploads running in this process, and locations written but not yet committed: the sweeper leaves them alone. */
  readonly localUploads = new Set<string>();
  readonly pendingLocations = new Set<string>();

  constructor(private readonly o: BlobServiceOptions) {}

  // ---- upload --------------------------------------------------------------------------

  async checkUploadable(principal: Principal, target: BlobTarget, mode: UploadMode = 'upload'): Promise<{ artifact: ArtifactRecord; type: ArtifactTypeDef; field: FieldDef; target: BlobTarget }> {
    const artifact = await this.o.host.loadVisible(principal, target.artifactId);
    requireWrite(principal, artifact, 'upload data to this artifact');
    const type = this.o.types.get(artifact.typeName);
    const field = blobField(type, target.field);
    const key = checkKey(field, target.key);
    if (mode === 'stage' && type.lifecycle !== 'image') fail('BAD_INPUT', 'only images are staged for import');
    if (type.lifecycle === 'image') {
      nextStatus('image', mode === 'stage' ? 'stage_start' : 'upload_start', artifact.status);
      const missing = ['disk_format', 'container_format'].filter((f) => artifact.fields[f] === null || artifact.fields[f] === undefined);
      if (missing.length > 0) fail('ACTIVATION_INCOMPLETE', `set ${missing.join(' and ')} before uploading image data`, { fields: missing });
    } else {
      assertEditable(type, artifact.status, `blob ${field.name}`, field);
    }
    return { artifact, type, field, target: { artifactId: artifact.id, field: field.name, key } };
  }

  /**
   * `stage`: glance-direct staging. The bytes become the image's blob as for an upload, but
   * the image goes queued → uploading and stays there until an import moves them to stores.
   */
  async upload(principal: Principal, requested: BlobTarget, body: Readable, meta: UploadMeta, signal?: AbortSignal, mode: UploadMode = 'upload'): Promise<UploadResult> {
    checkAnnounced(meta);
    const { artifact, type, field, target } = await this.checkUploadable(principal, requested, mode);
    const current = (await this.o.store.getBlobs([artifact.id]))[0];
    if (current.some((b) => b.field === target.field && b.key === target.key && b.status === 'saving')) fail('BLOB_BUSY', `an upload of ${subjectOf(target)} is running`);
    const limits = await this.limitsFor(artifact, field, target, current);
    const declared = meta.contentLength ?? meta.expectedSize;
    if (declared !== undefined && declared > limits.blob) fail('BLOB_TOO_LARGE', `${declared} bytes is more than ${subjectOf(target)} accepts (${limits.blob} bytes)`, { limit: limits.blob });
    if (declared !== undefined && limits.quota !== undefined && declared > limits.quota) fail('QUOTA_EXCEEDED', `${declared} bytes would exceed the project's data quota (${limits.quota} bytes left)`, { remaining: limits.quota });
    const reserved = declared ?? Math.min(limits.blob, limits.quota ?? Infinity);
    const overCapCode: ErrorCode = declared !== undefined ? 'SIZE_MISMATCH' : limits.quota !== undefined && limits.quota < limits.blob ? 'QUOTA_EXCEEDED' : 'BLOB_TOO_LARGE';

    const startedAt = nowIso();
    const upload: UploadRecord = {
      id: newId(),
      artifactId: artifact.id,
      field: target.field,
      key: target.key,
      owner: artifact.owner,
      typeName: type.name,
      reserved,
      contentType: meta.contentType,
      startedAt,
      expiresAt: this.leaseEnd(),
    };
    const start = type.lifecycle === 'image' ? transitionWrite(type, artifact, mode === 'stage' ? 'stage_start' : 'upload_start') : undefined;
    const started = await this.o.store.beginUpload(upload, limits.ledger, start);
    if (started) await this.o.host.publish(started);

    this.localUploads.add(upload.id);
    const progress = new ProgressReporter(this.o.bus, artifact, subjectOf(target), declared ?? null);
    try {
      const result = await this.transfer(type, upload, body, meta, { cap: reserved, overCapCode, declared, signal, progress, mode });
      progress.finish('succeeded', result.blob.size ?? 0);
      return result;
    } catch (err) {
      progress.finish('failed', undefined, err instanceof VitrineError ? err.message : 'unexpected error');
      throw err;
    } finally {
      this.localUploads.delete(upload.id);
    }
  }

  private async transfer(
    type: ArtifactTypeDef,
    upload: UploadRecord,
    body: Readable,
    meta: UploadMeta,
    run: { cap: number; overCapCode: ErrorCode; declared: number | undefined; signal?: AbortSignal; progress: ProgressReporter; mode: UploadMode },
  ): Promise<UploadResult> {
    let cause: Error | undefined;
    let leaseLost = false;
    const meter = new UploadMeter({
      cap: run.cap,
      overCap: () => overCapError(run.overCapCode, run.cap),
      headBytes: HEADER_BYTES,
      progressIntervalMs: this.o.progressIntervalMs,
      onProgress: (bytes, elapsedMs) => run.progress.report(bytes, elapsedMs),
    });
    const stop = (err: Error) => {
      cause ??= err;
      meter.destroy(cause);
    };
    const tap = this.o.hashPool.tap();
    // The body is piped, not pipelined: a failure must not destroy the client's request,
    // whose response (413, 400...) still has to be sent.
    body.pipe(meter);
    const unwatchBody = finished(body, (err) => {
      if (err) stop(clientGone());
    });
    pipeline(meter, tap, (err) => {
      if (err) cause ??= err;
    });
    const onAbort = () => stop(clientGone());
    run.signal?.addEventListener('abort', onAbort, { once: true });
    const renewal = setInterval(() => {
      this.o.store.renewUpload(upload.id, this.leaseEnd()).then(
        (alive) => {
          if (!alive) {
            leaseLost = true;
            stop(new VitrineError('GONE', 'the upload was cancelled (its lease expired or its artifact was deleted)'));
          }
        },
        (err: unknown) => this.o.log?.('renewing an upload lease failed', err),
      );
    }, Math.max(250, Math.floor(this.o.leaseMs / 6)));
    renewal.unref();

    let location: string | undefined;
    try {
      const written = await this.o.stores.default.write(tap, {});
      location = written.location;
      this.pendingLocations.add(location);
      if (cause) throw cause;
      const digests = await tap.result();
      verify(meter.bytes, digests, meta, run.declared);
      return await this.commit(type, upload, { location, size: meter.bytes, digests, head: meter.head }, run.mode);
    } catch (err) {
      const error = cause ?? (err as Error);
      meter.destroy();
      tap.destroy();
      if (location) await this.o.stores.default.delete(location).catch((e: unknown) => this.o.log?.('removing the bytes of a failed upload failed', e));
      await this.abort(type, upload, !leaseLost);
      throw error;
    } finally {
      clearInterval(renewal);
      unwatchBody();
      run.signal?.removeEventListener('abort', onAbort);
      if (location) this.pendingLocations.delete(location);
    }
  }

  /** Stores the blob and the artifact's new state in one write; retries lost races with metadata edits. */
  private async commit(type: ArtifactTypeDef, upload: UploadRecord, data: { location: string; size: number; digests: Digests; head: Buffer }, mode: UploadMode): Promise<UploadResult> {
    const storeName = this.o.stores.default.name;
    const now = nowIso();
    const blob: BlobRecord = {
      artifactId: upload.artifactId,
      field: upload.field,
      key: upload.key,
      status: 'active',
      size: data.size,
      md5: data.digests.md5,
      sha256: null,
      sha512: data.digests.sha512,
      contentType: upload.contentType ?? 'application/octet-stream',
      external: false,
      url: null,
      store: storeName,
      location: data.location,
      copies: [],
      createdAt: now,
      updatedAt: now,
    };
    for (let attempt = 1; ; attempt++) {
      const current = (await this.o.store.getArtifacts([upload.artifactId]))[0];
      if (!current || current.status === 'deleted') fail('GONE', `artifact ${upload.artifactId} was deleted during the upload`);
      const imageFields = {
        ...current.fields,
        size: data.size,
        checksum: data.digests.md5,
        os_hash_algo: 'sha512',
        os_hash_value: data.digests.sha512,
        virtual_size: virtualSizeOf(current.fields.disk_format, data.head, data.size),
      };
      let write;
      if (type.lifecycle !== 'image') write = artifactWrite(current);
      // Staged bytes are in no store yet as far as clients see: `stores` is set by the import.
      else if (mode === 'stage') write = current.status === 'uploading' ? artifactWrite(current, { fields: imageFields }) : fail('GONE', `image ${current.id} left the uploading status during staging`);
      else write = transitionWrite(type, current, 'upload_done', { activatedAt: now, fields: { ...imageFields, stores: [storeName] } });
      try {
        const { event, replaced } = await this.o.store.completeUpload(upload.id, blob, write);
        await this.o.host.publish(event);
        if (replaced) await this.release([replaced]);
        return { artifact: this.o.host.view(write.next), blob: this.o.host.blobView(blob) };
      } catch (err) {
        if (!(err instanceof VitrineError && err.code === 'REVISION_CONFLICT') || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /** Ends a failed upload: the reservation goes, and an image returns to queued (unless the sweeper already did it). */
  private async abort(type: ArtifactTypeDef, upload: UploadRecord, restore: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const current = restore ? (await this.o.store.getArtifacts([upload.artifactId]))[0] : null;
        const event = await this.o.store.abortUpload(upload.id, restore ? restoreWrite(type, current) : undefined);
        if (event) await this.o.host.publish(event);
        return;
      } catch (err) {
        const raced = err instanceof VitrineError && err.code === 'REVISION_CONFLICT';
        if (!raced || attempt >= WRITE_ATTEMPTS) {
          this.o.log?.('ending a failed upload failed; the sweeper will finish it', err);
          return;
        }
      }
    }
  }

  /** The tightest limits on this upload: the field's (and folder's) size, and the project's quotas. */
  private async limitsFor(artifact: ArtifactRecord, field: FieldDef, target: BlobTarget, blobs: BlobRecord[]): Promise<{ blob: number; quota: number | undefined; ledger: ByteLimit }> {
    let blob = field.maxBlobSize ?? Number.MAX_SAFE_INTEGER;
    if (field.kind === 'blobDict' && field.maxFolderSize !== undefined) {
      // The entry being replaced leaves the folder when the new one arrives.
      const others = blobs.filter((b) => b.field === field.name && b.key !== target.key && !b.external).reduce((n, b) => n + (b.size ?? 0), 0);
      blob = Math.min(blob, Math.max(0, field.maxFolderSize - others));
    }
    const quotas = await this.o.host.quotasOf(artifact.owner);
    const ledger: ByteLimit = { maxTotal: quotaLimit(quotas, 'max_uploaded_data'), maxOfType: quotaLimit(quotas, `max_uploaded_data:${artifact.typeName}`) };
    if (ledger.maxTotal === undefined && ledger.maxOfType === undefined) return { blob, quota: undefined, ledger };
    const usage = await this.o.store.usage(artifact.owner);
    const used = Object.values(usage.bytes).reduce((n, b) => n + b, 0);
    const left = [
      ledger.maxTotal === undefined ? Infinity : ledger.maxTotal - used,
      ledger.maxOfType === undefined ? Infinity : ledger.maxOfType - (usage.bytes[artifact.typeName] ?? 0),
    ];
    const quota = Math.max(0, Math.min(...left));
    if (quota === 0) fail('QUOTA_EXCEEDED', 'the project\'s data quota is used up');
    return { blob, quota, ledger };
  }

  private leaseEnd(): string {
    return new Date(Date.now() + this.o.leaseMs).toISOString();
  }

  // ---- download ------------------------------------------------------------------------

  async open(principal: Principal, requested: BlobTarget, redirect = false): Promise<BlobContent> {
    const artifact = await this.o.host.loadVisible(principal, requested.artifactId);
    const type = this.o.types.get(artifact.typeName);
    const field = blobField(type, requested.field);
    const key = checkKey(field, requested.key);
    const target = { artifactId: artifact.id, field: field.name, key };
    // Glance: only admins read the data of deactivated images.
    if (artifact.status === 'deactivated' && !isAdmin(principal)) fail('FORBIDDEN', `${type.name} ${artifact.id} is deactivated; only admins may download its data`);
    // Staged or importing bytes are not the image's data yet.
    if (type.lifecycle === 'image' && artifact.status !== 'active' && artifact.status !== 'deactivated') fail('BLOB_NOT_READY', `image ${artifact.id} is ${artifact.status}: it has no data to download`);
    const blob = await this.findBlob(target);
    if (blob.status === 'saving') fail('BLOB_NOT_READY', `${subjectOf(target)} is being uploaded`);
    const view = this.o.host.blobView(blob);
    const artifactView = this.o.host.view(artifact);
    if (blob.external) return { kind: 'external', artifact: artifactView, blob: view, url: blob.url ?? fail('BLOB_NOT_READY', 'the external blob has no URL') };
    const location = blob.location;
    if (location === null || blob.size === null) fail('BLOB_NOT_READY', `${subjectOf(target)} has no stored bytes`);
    const copy = readableCopy(blob, this.o.stores);
    const direct = redirect ? await this.o.stores.get(copy.store).directUrl?.(copy.location, DIRECT_URL_SECONDS) : null;
    if (direct) return { kind: 'external', artifact: artifactView, blob: view, url: direct };
    return { kind: 'stored', artifact: artifactView, blob: { ...view, size: blob.size }, read: (span) => this.o.stores.get(copy.store).read(copy.location, span) };
  }

  private async findBlob(target: BlobTarget): Promise<BlobRecord> {
    const blobs = (await this.o.store.getBlobs([target.artifactId]))[0];
    return blobs.find((b) => b.field === target.field && b.key === target.key) ?? fail('NOT_FOUND', `${subjectOf(target)} has no data`);
  }

  // ---- delete, external ----------------------------------------------------------------

  async remove(principal: Principal, requested: BlobTarget): Promise<ArtifactView> {
    for (let attempt = 1; ; attempt++) {
      const artifact = await this.o.host.loadVisible(principal, requested.artifactId);
      requireWrite(principal, artifact, 'remove data of this artifact');
      const type = this.o.types.get(artifact.typeName);
      const field = blobField(type, requested.field);
      const target = { artifactId: artifact.id, field: field.name, key: checkKey(field, requested.key) };
      const blob = await this.findBlob(target);
      if (blob.status === 'saving') fail('BLOB_BUSY', `an upload of ${subjectOf(target)} is running`);
      if (blob.external) assertEditable(type, artifact.status, `blob ${field.name}`, type.lifecycle === 'image' ? undefined : field);
      else if (artifact.status !== 'drafted' && artifact.status !== 'queued') fail('FIELD_IMMUTABLE', `uploaded data can only be removed while the artifact is drafted (it is ${artifact.status})`);
      const write = artifactWrite(artifact);
      try {
        const { event, removed } = await this.o.store.deleteBlob(target.artifactId, target.field, target.key, write);
        await this.o.host.publish(event);
        await this.release([removed]);
        return this.o.host.view(write.next);
      } catch (err) {
        if (!(err instanceof VitrineError && err.code === 'REVISION_CONFLICT') || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  async setExternal(principal: Principal, requested: BlobTarget, request: ExternalBlobRequest): Promise<BlobView> {
    if (!isAdmin(principal)) fail('FORBIDDEN', 'only an admin may set external blob URLs');
    const url = parseExternalUrl(request.url);
    if (!this.o.allowPrivateUrls) assertPublicAddresses(url.hostname, await this.resolve(hostOf(url)));
    const md5 = optionalDigest(request.md5, MD5_HEX, 'md5', 32);
    const sha512 = optionalDigest(request.sha512, SHA512_HEX, 'sha512', 128);
    if (request.size !== undefined && (!Number.isSafeInteger(request.size) || request.size < 0)) fail('BAD_INPUT', `size must be a non-negative integer, got ${request.size}`);
    for (let attempt = 1; ; attempt++) {
      const artifact = await this.o.host.loadVisible(principal, requested.artifactId);
      const type = this.o.types.get(artifact.typeName);
      if (type.lifecycle === 'image') fail('BAD_INPUT', 'images take their data by upload; external blobs are for artifact types');
      const field = blobField(type, requested.field);
      const target = { artifactId: artifact.id, field: field.name, key: checkKey(field, requested.key) };
      assertEditable(type, artifact.status, `blob ${field.name}`, field);
      const existing = (await this.o.store.getBlobs([artifact.id]))[0].find((b) => b.field === target.field && b.key === target.key);
      if (existing?.status === 'saving') fail('BLOB_BUSY', `an upload of ${subjectOf(target)} is running`);
      const now = nowIso();
      const blob: BlobRecord = {
        ...target,
        status: 'active',
        size: request.size ?? null,
        md5,
        sha256: null,
        sha512,
        contentType: request.contentType ?? null,
        external: true,
        url: url.toString(),
        store: null,
        location: null,
        copies: [],
        createdAt: now,
        updatedAt: now,
      };
      const write = artifactWrite(artifact);
      try {
        const { event, replaced } = await this.o.store.putBlob(blob, write);
        await this.o.host.publish(event);
        if (replaced) await this.release([replaced]);
        return this.o.host.blobView(blob);
      } catch (err) {
        if (!(err instanceof VitrineError && err.code === 'REVISION_CONFLICT') || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  private async resolve(host: string): Promise<string[]> {
    if (this.o.resolve) return this.o.resolve(host);
    try {
      return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      return fail('URL_FORBIDDEN', `host ${host} does not resolve`);
    }
  }

  /** Deletes the bytes of blobs that no longer exist (after their removal committed), in every store holding a copy. */
  async release(blobs: readonly BlobRecord[]): Promise<void> {
    for (const b of blobs) {
      if (b.external) continue;
      await this.releaseCopies(copiesOf(b));
    }
  }

  /** Deletes bytes no blob references any more; a store no longer configured is skipped (its sweep is the operator's). */
  async releaseCopies(copies: readonly BlobCopy[]): Promise<void> {
    for (const copy of copies) {
      if (!this.o.stores.has(copy.store)) continue;
      await this.o.stores.get(copy.store).delete(copy.location).catch((err: unknown) => this.o.log?.('removing released bytes failed; the sweeper will retry', err));
    }
  }
}

export type UploadMode = 'upload' | 'stage';

/** Every stored copy of a blob's bytes: the primary location first. */
export function copiesOf(blob: Pick<BlobRecord, 'store' | 'location' | 'copies'>): BlobCopy[] {
  const primary = blob.store !== null && blob.location !== null ? [{ store: blob.store, location: blob.location }] : [];
  return [...primary, ...(blob.copies ?? [])];
}

/** The first copy in a store that is still configured (the primary when it is). */
function readableCopy(blob: BlobRecord, stores: StoreSet): BlobCopy {
  const copies = copiesOf(blob);
  return copies.find((c) => stores.has(c.store)) ?? fail('UNAVAILABLE', `no configured store holds the bytes (they are in ${copies.map((c) => c.store).join(', ')})`);
}

function blobField(type: ArtifactTypeDef, name: string): FieldDef {
  const field = requireField(type, name);
  if (!isBlobField(field)) fail('FIELD_INVALID', `field ${name} of ${type.name} is not a blob`);
  return field;
}

/** '' for a plain blob; for a dictionary a key of 1..255 characters whose /-separated parts are not empty, "." or "..". */
function checkKey(field: FieldDef, key: string): string {
  if (field.kind === 'blob') {
    if (key !== '') fail('BAD_INPUT', `field ${field.name} is a plain blob: its path takes no key`);
    return '';
  }
  if (key === '') fail('BAD_INPUT', `field ${field.name} is a blob dictionary: add /<key> to the path`);
  if (key.length > MAX_KEY_LENGTH) fail('BAD_INPUT', `blob dictionary keys are at most ${MAX_KEY_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) fail('BAD_INPUT', 'blob dictionary keys may not contain control characters');
  if (key.split('/').some((part) => part === '' || part === '.' || part === '..')) fail('BAD_INPUT', `key ${JSON.stringify(key)} has an empty, "." or ".." part`);
  return key;
}


function verify(size: number, digests: Digests, meta: UploadMeta, declared: number | undefined): void {
  if (declared !== undefined && size !== declared) fail('SIZE_MISMATCH', `received ${size} bytes, ${declared} were announced`, { received: size, expected: declared });
  if (meta.expectedMd5 !== undefined && digests.md5 !== meta.expectedMd5) fail('CHECKSUM_MISMATCH', `the md5 of the received bytes is ${digests.md5}, not ${meta.expectedMd5}`, { md5: digests.md5 });
  if (meta.expectedSha512 !== undefined && digests.sha512 !== meta.expectedSha512) fail('CHECKSUM_MISMATCH', 'the sha512 of the received bytes differs from the announced one', { sha512: digests.sha512 });
}

function optionalDigest(value: string | undefined, shape: RegExp, name: string, digits: number): string | null {
  if (value === undefined) return null;
  const v = value.toLowerCase();
  if (!shape.test(v)) fail('BAD_INPUT', `${name} must be ${digits} hex digits`);
  return v;
}

function overCapError(code: ErrorCode, cap: number): VitrineError {
  if (code === 'SIZE_MISMATCH') return new VitrineError(code, `the body is longer than the ${cap} bytes announced`);
  if (code === 'QUOTA_EXCEEDED') return new VitrineError(code, `the upload passed the project's remaining data quota (${cap} bytes)`, { remaining: cap });
  return new VitrineError(code, `the upload passed the largest size this blob accepts (${cap} bytes)`, { limit: cap });
}

function clientGone(): VitrineError {
  return new VitrineError('BAD_INPUT', 'the client closed the connection before the upload finished');
}

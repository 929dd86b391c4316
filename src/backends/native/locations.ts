import type { Readable } from 'node:stream';
import type { ArtifactRecord, BlobCopy, BlobLocation, BlobRecord, FieldValue } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, VitrineError } from '../../domain/errors';
import { allows, requirePolicy, type Policies, type Principal } from '../../domain/policy';
import type { MetadataStore, StoredEvent } from '../../storage/metadata/port';
import type { AddLocationRequest, ArtifactView, ImageLocationsView, ImageLocationView, LocationValidationData } from '../port';
import { artifactWrite, transitionWrite } from './blob-writes';
import { copiesOf } from './blobs';
import type { StoreSet } from './stores';

/**
 * Image locations of the native backend (Glance's show_multiple_locations, images.py
 * `_do_add_locations` / `_do_replace_locations` / `_do_remove_locations` and location.py).
 *
 * An image's locations are its stored copies (the blob's store/location/copies, which
 * uploads and imports write and the sweeper reads) and external http(s) URLs a client
 * added. The blob's `locations` column keeps the list in the order clients see it: every
 * external URL, and each stored copy's URL with its metadata; copies that appeared since
 * (an import to another store) follow at the end, copies that went are left out.
 */
export interface LocationSettings {
  /** images.showLocations: locations shown, and changed through the API (off: FORBIDDEN). */
  show: boolean;
  /** images.showDirectUrl: the first location's URL shown as direct_url. */
  showDirectUrl: boolean;
  policies: Policies;
  /** Most locations an image may have (Glance's image_location_quota); -1: no limit. */
  maxLocations: number;
  /**
   * Opens an http(s) URL through the outbound URL filter (web-download's), checked again on
   * every redirect: URL_FORBIDDEN when refused, IMPORT_FETCH_FAILED when it does not answer 2xx.
   */
  open(url: string, signal?: AbortSignal): Promise<{ body: Readable; size: number | null }>;
}

export interface LocationHost {
  loadVisible(principal: Principal, id: string): Promise<ArtifactRecord>;
  view(record: ArtifactRecord): ArtifactView;
  publish(event: StoredEvent): Promise<void>;
  releaseCopies(copies: readonly BlobCopy[]): Promise<void>;
}

export interface ImageLocationsOptions {
  types: TypeRegistry;
  store: MetadataStore;
  stores: StoreSet;
  settings: LocationSettings;
  host: LocationHost;
}

const IMAGE_FIELD = 'image';
const WRITE_ATTEMPTS = 5;
/** Glance's schema: location URLs are at most 255 characters. */
const MAX_URL_LENGTH = 255;
const EXTERNAL_SCHEMES = new Set(['http:', 'https:']);
/** Glance's default hashing_algorithm; what Vitrine hashes uploads with. */
const HASHING_ALGORITHM = 'sha512';
const DIGEST_BYTES: Readonly<Record<string, number>> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

export class ImageLocations {
  constructor(private readonly o: ImageLocationsOptions) {}

  // ---- reads ---------------------------------------------------------------------------

  async locationsOf(principal: Principal, ids: readonly string[]): Promise<ImageLocationsView[]> {
    const { show, showDirectUrl, policies } = this.o.settings;
    const hidden: ImageLocationsView = { locations: null, directUrl: null };
    if ((!show && !showDirectUrl) || ids.length === 0) return ids.map(() => hidden);
    const [records, blobs] = await Promise.all([this.o.store.getArtifacts(ids), this.o.store.getBlobs(ids)]);
    return records.map((record, i) => {
      if (!record || !this.isImage(record) || !allows(policies.getImageLocation, principal, record.owner)) return hidden;
      const list = this.listOf(imageBlob(blobs[i]));
      return { locations: show ? list : null, directUrl: showDirectUrl ? list[0]?.url ?? null : null };
    });
  }

  /** What clients see: the kept order, stored copies that went left out, new copies at the end. */
  listOf(blob: BlobRecord | undefined): ImageLocationView[] {
    if (!blob || blob.status !== 'active') return [];
    const stored = new Map<string, BlobCopy>();
    // copiesOf is empty for an external-only blob (no store), whatever its flag says.
    for (const copy of copiesOf(blob)) stored.set(this.urlOf(copy), copy);
    const out: ImageLocationView[] = [];
    const shown = new Set<string>();
    for (const entry of blob.locations ?? []) {
      if (isExternal(entry.url)) out.push(clone(entry));
      else if (stored.has(entry.url) && !shown.has(entry.url)) {
        out.push(clone(entry));
        shown.add(entry.url);
      }
    }
    for (const [url, copy] of stored) if (!shown.has(url)) out.push({ url, metadata: this.defaultMetadata(copy) });
    // An external-only blob written before its list (none today) still shows its URL.
    if (out.length === 0 && blob.external && blob.url) out.push({ url: blob.url, metadata: {} });
    return out;
  }

  /**
   * The external URLs to stream an image from when it has no stored bytes, in order:
   * Glance's location strategy tries them one after the other.
   */
  externalUrls(blob: BlobRecord): string[] {
    return this.listOf(blob).map((l) => l.url).filter(isExternal);
  }

  /** Streams the first external location that answers, through the URL filter. */
  async openExternal(urls: readonly string[]): Promise<{ body: Readable; size: number | null }> {
    let last: unknown;
    for (const url of urls) {
      try {
        return await this.o.settings.open(url);
      } catch (err) {
        last = err;
      }
    }
    throw last ?? new VitrineError('BLOB_NOT_READY', 'the image has no location to read its data from');
  }

  // ---- writes --------------------------------------------------------------------------

  async add(principal: Principal, imageId: string, request: AddLocationRequest): Promise<ArtifactView> {
    this.requireShown('add');
    for (let attempt = 1; ; attempt++) {
      const image = await this.loadImage(principal, imageId, 'setImageLocation', 'add image locations');
      if (image.status !== 'queued' && image.status !== 'active') fail('LOCATION_CONFLICT', `It's not allowed to add locations if image status is ${image.status}.`);
      const filled = checkValidationData(image, request.validationData ? [request.validationData] : []);
      const blob = await this.imageBlobOf(image.id);
      const list = this.listOf(blob);
      const position = request.position ?? list.length;
      if (!Number.isSafeInteger(position) || position < 0) fail('LOCATION_INVALID', 'Invalid position for adding a location.');
      const entry = entryOf(request);
      this.checkQuota(list.length + 1);
      if (list.some((l) => sameLocation(l, entry))) fail('LOCATION_INVALID', `The location ${entry.url} already exists`);
      const size = await this.probe(entry.url);
      // As Python's list.insert: a position past the end appends.
      const next = [...list.slice(0, position), entry, ...list.slice(position)];
      try {
        return await this.commit(image, blob, next, filled, size);
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  async replace(principal: Principal, imageId: string, requested: readonly AddLocationRequest[]): Promise<ArtifactView> {
    this.requireShown('update');
    if (requested.length === 0) fail('FORBIDDEN', 'Cannot set locations to empty list.');
    for (let attempt = 1; ; attempt++) {
      const image = await this.loadImage(principal, imageId, 'setImageLocation', 'replace image locations');
      if (image.status !== 'queued' && image.status !== 'active') fail('LOCATION_CONFLICT', `It's not allowed to replace locations if image status is ${image.status}.`);
      const filled = checkValidationData(image, requested.flatMap((r) => (r.validationData ? [r.validationData] : [])));
      const blob = await this.imageBlobOf(image.id);
      const list = this.listOf(blob);
      const entries = requested.map(entryOf);
      this.checkQuota(entries.length);
      const before = list.map((l) => l.url).sort();
      const after = entries.map((l) => l.url).sort();
      const sameUrls = before.length === after.length && before.every((u, i) => u === after[i]);
      // Glance: a list that has locations only takes new metadata, never other URLs.
      if (list.length > 0 && !sameUrls) fail('LOCATION_INVALID', 'Original locations is not empty: the replacement must keep the same URLs (only their metadata may change)');
      let size: number | null = null;
      if (!sameUrls) {
        entries.forEach((e, i) => {
          if (entries.findIndex((o) => sameLocation(o, e)) !== i) fail('LOCATION_INVALID', `The location ${e.url} already exists`);
        });
        for (const e of entries) size ??= await this.probe(e.url);
      }
      try {
        return await this.commit(image, blob, entries, filled, size);
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  async remove(principal: Principal, imageId: string, index: number): Promise<ArtifactView> {
    this.requireShown('remove');
    for (let attempt = 1; ; attempt++) {
      const image = await this.loadImage(principal, imageId, 'deleteImageLocation', 'delete image locations');
      if (image.status !== 'active') fail('LOCATION_CONFLICT', `It's not allowed to remove locations if image status is ${image.status}.`);
      const blob = await this.imageBlobOf(image.id);
      const list = this.listOf(blob);
      if (list.length === 1) fail('FORBIDDEN', 'Cannot remove last location in the image.');
      const at = index === -1 ? list.length - 1 : index;
      if (!blob || !Number.isSafeInteger(at) || at < 0 || at >= list.length) fail('LOCATION_INVALID', 'Invalid position for removing a location.');
      const gone = list[at];
      const next = list.filter((_, i) => i !== at);
      const released = copiesOf(blob).filter((c) => this.urlOf(c) === gone.url);
      try {
        const view = await this.commit(image, blob, next, {}, null);
        // Glance deletes the data of a removed stored location from its store.
        if (released.length > 0) await this.o.host.releaseCopies(released);
        return view;
      } catch (err) {
        if (!isRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * Writes the blob with the new list and the image with what goes with it: active (and the
   * validation data) for a queued image, the size learnt from a location when it had none,
   * `stores` after a stored copy went.
   */
  private async commit(image: ArtifactRecord, blob: BlobRecord | undefined, list: ImageLocationView[], filled: Record<string, FieldValue>, size: number | null): Promise<ArtifactView> {
    const type = this.o.types.get(image.typeName);
    const byUrl = new Set(list.map((l) => l.url));
    const held = blob ? copiesOf(blob) : [];
    const kept = held.filter((c) => byUrl.has(this.urlOf(c)));
    const externals = list.filter((l) => isExternal(l.url));
    const now = nowIso();
    const base: BlobRecord = blob ?? {
      artifactId: image.id, field: IMAGE_FIELD, key: '', status: 'active', size, md5: null, sha256: null, sha512: null,
      contentType: 'application/octet-stream', external: true, url: null, store: null, location: null, copies: [], createdAt: now, updatedAt: now,
    };
    const [primary, ...rest] = kept;
    const next: BlobRecord = {
      ...base,
      // Bytes in a store are read from there; without any, from the first external URL.
      external: kept.length === 0,
      url: kept.length === 0 ? externals[0]?.url ?? null : null,
      store: primary?.store ?? null,
      location: primary?.location ?? null,
      copies: rest,
      size: base.size ?? size,
      locations: list.map(clone),
      updatedAt: now,
    };
    const fields: Record<string, FieldValue> = { ...image.fields, ...filled };
    if ((fields.size === null || fields.size === undefined) && size !== null) fields.size = size;
    if (held.length > 0) fields.stores = [...new Set(kept.map((c) => c.store))].sort();
    const write = image.status === 'queued'
      ? transitionWrite(type, image, 'location_add', { fields, activatedAt: now })
      : artifactWrite(image, { fields });
    const { event } = await this.o.store.putBlob(next, write);
    await this.o.host.publish(event);
    return this.o.host.view(write.next);
  }

  // ---- helpers -------------------------------------------------------------------------

  /** Glance's ImageLocationLimitExceeded (413). */
  private checkQuota(attempted: number): void {
    const maximum = this.o.settings.maxLocations;
    if (maximum >= 0 && attempted > maximum) fail('QUOTA_EXCEEDED', `The limit has been exceeded on the number of allowed image locations. Attempted: ${attempted}, Maximum: ${maximum}`, { maximum });
  }

  private requireShown(verb: 'add' | 'update' | 'remove'): void {
    if (!this.o.settings.show) fail('FORBIDDEN', `It's not allowed to ${verb} locations if locations are invisible.`);
  }

  private async loadImage(principal: Principal, id: string, policy: 'setImageLocation' | 'deleteImageLocation', what: string): Promise<ArtifactRecord> {
    const image = await this.o.host.loadVisible(principal, id);
    if (!this.isImage(image)) fail('BAD_INPUT', `only images have locations (${image.typeName} ${image.id} is not one)`);
    requirePolicy(this.o.settings.policies, policy, principal, image, what);
    return image;
  }

  private isImage(record: ArtifactRecord): boolean {
    return this.o.types.find(record.typeName)?.lifecycle === 'image';
  }

  private async imageBlobOf(id: string): Promise<BlobRecord | undefined> {
    const blob = imageBlob((await this.o.store.getBlobs([id]))[0]);
    if (blob?.status === 'saving') fail('BLOB_BUSY', `data of image ${id} is being uploaded`);
    return blob;
  }

  /**
   * Checks a new location as Glance does before accepting it: a scheme a store reads (only
   * http and https can be added: stored copies come from uploads and imports), through the
   * URL filter, answering 2xx. Returns its announced size; an empty one is refused.
   */
  private async probe(url: string): Promise<number | null> {
    if (!isExternal(url)) fail('LOCATION_INVALID', `Invalid location: ${describe(url)} (only http and https locations can be added)`);
    let answer;
    try {
      answer = await this.o.settings.open(url);
    } catch (err) {
      if (err instanceof VitrineError && err.code === 'IMPORT_FETCH_FAILED') fail('LOCATION_INVALID', `Invalid location: ${err.message}`);
      // The filter words its refusals for web-download, whose check this is too.
      if (err instanceof VitrineError && err.code === 'URL_FORBIDDEN') fail('URL_FORBIDDEN', err.message.replace(/^URI for web-download/, 'URI for the location'));
      throw err;
    }
    answer.body.destroy();
    if (answer.size === 0) fail('LOCATION_INVALID', `Invalid location: ${describe(url)} has no data`);
    return answer.size;
  }

  private urlOf(copy: BlobCopy): string {
    const store = this.o.stores.has(copy.store) ? this.o.stores.get(copy.store) : undefined;
    return store?.locationUrl?.(copy.location) ?? `vitrine://${copy.store}/${copy.location}`;
  }

  private defaultMetadata(copy: BlobCopy): Record<string, unknown> {
    return this.o.stores.multistore ? { store: copy.store } : {};
  }
}

function imageBlob(blobs: readonly BlobRecord[]): BlobRecord | undefined {
  return blobs.find((b) => b.field === IMAGE_FIELD && b.key === '');
}

function isExternal(url: string): boolean {
  return URL.canParse(url) && EXTERNAL_SCHEMES.has(new URL(url).protocol);
}

function entryOf(request: AddLocationRequest): BlobLocation {
  if (typeof request.url !== 'string' || request.url === '' || request.url.length > MAX_URL_LENGTH) fail('LOCATION_INVALID', `a location URL is 1 to ${MAX_URL_LENGTH} characters`);
  if (request.metadata === null || typeof request.metadata !== 'object' || Array.isArray(request.metadata)) fail('LOCATION_INVALID', 'a location\'s metadata is an object');
  return { url: request.url, metadata: structuredClone(request.metadata) };
}

/** Glance's DuplicateLocation: the same URL with the same metadata. */
function sameLocation(a: BlobLocation, b: BlobLocation): boolean {
  return a.url === b.url && JSON.stringify(a.metadata) === JSON.stringify(b.metadata);
}

function clone(l: BlobLocation): ImageLocationView {
  return { url: l.url, metadata: structuredClone(l.metadata) };
}

function describe(url: string): string {
  return JSON.stringify(url.length > 100 ? `${url.slice(0, 100)}...` : url);
}

function isRace(err: unknown): boolean {
  return err instanceof VitrineError && err.code === 'REVISION_CONFLICT';
}

/**
 * Glance's `_validate_validation_data`: values given across the locations must agree, may
 * repeat what the image has, and fill in only what it lacks, and only while it is queued;
 * the checksum is an md5 and the hash one of the configured algorithm, in hex. Returns the
 * fields to set. LOCATION_CONFLICT (409) for every refusal, as Glance.
 */
export function checkValidationData(image: Pick<ArtifactRecord, 'status' | 'fields'>, given: readonly LocationValidationData[]): Record<string, FieldValue> {
  const merged: Record<string, string> = {};
  for (const data of given) {
    for (const [key, value] of Object.entries(data) as [string, unknown][]) {
      if (value === undefined) continue;
      if (typeof value !== 'string') fail('LOCATION_CONFLICT', `${key} must be a string`);
      if (key in merged && merged[key] !== value) fail('LOCATION_CONFLICT', `Conflicting values for ${key}`);
      merged[key] = value;
    }
  }
  const fresh: Record<string, string> = {};
  for (const [key, value] of Object.entries(merged)) {
    const current = image.fields[key];
    if (value === current) continue;
    if (current !== null && current !== undefined && current !== '') fail('LOCATION_CONFLICT', `${key} is already set with a different value`);
    fresh[key] = value;
  }
  if (Object.keys(fresh).length === 0) return {};
  if (image.status !== 'queued') fail('LOCATION_CONFLICT', `New value(s) for ${Object.keys(fresh).join(', ')} may only be provided when image status is 'queued'`);
  if ('checksum' in fresh && !isHexOf(fresh.checksum, 16)) fail('LOCATION_CONFLICT', `checksum (${fresh.checksum}) is not a valid md5 in hexadecimal (16 bytes)`);
  const algo = fresh.os_hash_algo;
  if (algo !== HASHING_ALGORITHM) fail('LOCATION_CONFLICT', `os_hash_algo must be ${HASHING_ALGORITHM}, not ${algo ?? 'None'}`);
  if (!isHexOf(fresh.os_hash_value ?? '', DIGEST_BYTES[algo])) fail('LOCATION_CONFLICT', `os_hash_value (${fresh.os_hash_value ?? 'None'}) is not a valid ${algo} in hexadecimal (${DIGEST_BYTES[algo]} bytes)`);
  return fresh;
}

function isHexOf(value: string, bytes: number): boolean {
  return value.length === bytes * 2 && /^[0-9a-fA-F]*$/.test(value);
}

import type { ArtifactRecord, BlobCopy, BlobLocation, BlobRecord, Status, TaskRecord, Visibility } from '../../domain/artifact';
import type { MetadefKind, MetadefRecord, MetadefVisibility } from '../../domain/metadefs';
import type { NewEvent, StoredEvent, UploadRecord } from './port';

/**
 * Row shapes and row → record mappers shared by the SQL adapters. The engines differ only
 * in how a row holds booleans and JSON: SQLite hands back 0/1 and text, PostgreSQL
 * booleans and parsed JSONB; the mappers accept both.
 */
export interface EventRow {
  seq: number;
  kind: NewEvent['kind'];
  artifact_id: string;
  type_name: string;
  owner: string;
  visibility: Visibility;
  from_status: Status | null;
  to_status: Status | null;
  revision: number;
  at: string;
  snapshot: string | ArtifactRecord;
  backend: string | null;
}

export interface BlobRow {
  artifact_id: string;
  field: string;
  key: string;
  status: BlobRecord['status'];
  size: number | null;
  md5: string | null;
  sha256: string | null;
  sha512: string | null;
  content_type: string | null;
  external: number | boolean;
  url: string | null;
  store: string | null;
  location: string | null;
  copies: string | BlobCopy[];
  locations: string | BlobLocation[];
  created_at: string;
  updated_at: string;
}

export interface UploadRow {
  id: string;
  artifact_id: string;
  field: string;
  key: string;
  owner: string;
  type_name: string;
  reserved: number;
  content_type: string | null;
  started_at: string;
  expires_at: string;
}

export interface TaskRow {
  id: string;
  type: TaskRecord['type'];
  status: TaskRecord['status'];
  image_id: string;
  owner: string;
  user_id: string | null;
  request_id: string | null;
  input: string | Record<string, unknown>;
  result: string | Record<string, unknown> | null;
  message: string;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  lease_expires_at: string | null;
  attempts: number;
}

/** The tasks table's columns, in the order `taskValues` binds them. */
export const TASK_COLUMNS = 'id, type, status, image_id, owner, user_id, request_id, input, result, message, created_at, updated_at, expires_at, lease_expires_at, attempts';

export function eventFromRow(r: EventRow): StoredEvent {
  return {
    seq: r.seq,
    kind: r.kind,
    artifactId: r.artifact_id,
    typeName: r.type_name,
    owner: r.owner,
    visibility: r.visibility,
    ...(r.from_status !== null ? { from: r.from_status } : {}),
    ...(r.to_status !== null ? { to: r.to_status } : {}),
    revision: r.revision,
    at: r.at,
    snapshot: typeof r.snapshot === 'string' ? (JSON.parse(r.snapshot) as ArtifactRecord) : r.snapshot,
    ...(r.backend !== null && r.backend !== undefined ? { backend: r.backend } : {}),
  };
}

export function blobFromRow(r: BlobRow): BlobRecord {
  return {
    artifactId: r.artifact_id,
    field: r.field,
    key: r.key,
    status: r.status,
    size: r.size,
    md5: r.md5,
    sha256: r.sha256,
    sha512: r.sha512,
    contentType: r.content_type,
    external: Boolean(r.external),
    url: r.url,
    store: r.store,
    location: r.location,
    copies: (typeof r.copies === 'string' ? (JSON.parse(r.copies) as BlobCopy[]) : r.copies).map(({ store, location }) => ({ store, location })),
    ...locationsOf(r),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Only blobs that have locations carry the key, so records written without it read back equal. */
function locationsOf(r: BlobRow): { locations?: BlobLocation[] } {
  const raw = r.locations === undefined ? [] : typeof r.locations === 'string' ? (JSON.parse(r.locations) as BlobLocation[]) : r.locations;
  return raw.length > 0 ? { locations: raw.map(({ url, metadata }) => ({ url, metadata })) } : {};
}

/** A blob's locations as the JSON the `locations` column holds: url and metadata, in order. */
export function locationsJson(blob: BlobRecord): string {
  return JSON.stringify((blob.locations ?? []).map(({ url, metadata }) => ({ url, metadata })));
}

/** A blob's copies as the JSON the `copies` column holds: only store and location, in order. */
export function copiesJson(blob: BlobRecord): string {
  return JSON.stringify((blob.copies ?? []).map(({ store, location }) => ({ store, location })));
}

export function taskFromRow(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    imageId: r.image_id,
    owner: r.owner,
    userId: r.user_id,
    requestId: r.request_id,
    input: typeof r.input === 'string' ? (JSON.parse(r.input) as Record<string, unknown>) : r.input,
    result: typeof r.result === 'string' ? (JSON.parse(r.result) as Record<string, unknown>) : r.result,
    message: r.message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
    leaseExpiresAt: r.lease_expires_at,
    attempts: r.attempts,
  };
}

/** A task's values in the order of TASK_COLUMNS, JSON encoded for binding. */
export function taskValues(t: TaskRecord): unknown[] {
  return [
    t.id, t.type, t.status, t.imageId, t.owner, t.userId, t.requestId, JSON.stringify(t.input),
    t.result === null ? null : JSON.stringify(t.result), t.message, t.createdAt, t.updatedAt, t.expiresAt, t.leaseExpiresAt, t.attempts,
  ];
}

export function uploadFromRow(r: UploadRow): UploadRecord {
  return {
    id: r.id, artifactId: r.artifact_id, field: r.field, key: r.key, owner: r.owner, typeName: r.type_name,
    reserved: r.reserved, contentType: r.content_type, startedAt: r.started_at, expiresAt: r.expires_at,
  };
}

/**
 * Blobs per artifact as the port reports them: stored blobs, with each blob that has a
 * running upload shown once, as saving; sorted by field then key.
 */
export function blobsWithUploads(artifactIds: readonly string[], stored: BlobRow[], uploads: UploadRow[]): BlobRecord[][] {
  const saving = uploads.map(savingBlobOf);
  const busy = new Set(saving.map(blobKey));
  const all = [...stored.map(blobFromRow).filter((b) => !busy.has(blobKey(b))), ...saving].sort(byFieldAndKey);
  return groupBy(artifactIds, all, (b) => b.artifactId);
}

function savingBlobOf(r: UploadRow): BlobRecord {
  return {
    artifactId: r.artifact_id, field: r.field, key: r.key, status: 'saving', size: null, md5: null, sha256: null, sha512: null,
    contentType: r.content_type, external: false, url: null, store: null, location: null, copies: [], createdAt: r.started_at, updatedAt: r.started_at,
  };
}

const blobKey = (b: BlobRecord) => `${b.artifactId}\u0000${b.field}\u0000${b.key}`;
const byFieldAndKey = (a: BlobRecord, b: BlobRecord) => (a.field < b.field ? -1 : a.field > b.field ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** One list per key, in the order of `keys` (repeated keys get the same rows). */
export function groupBy<T>(keys: readonly string[], rows: T[], keyOf: (row: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) push(groups, keyOf(row), row);
  return keys.map((k) => [...(groups.get(k) ?? [])]);
}

export interface MetadefRow {
  namespace: string;
  kind: MetadefKind;
  name: string;
  owner: string | null;
  visibility: MetadefVisibility | null;
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  protected: number | boolean;
  /** JSON text in SQLite, parsed JSONB in PostgreSQL. */
  body: string | Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export function metadefFromRow(r: MetadefRow): MetadefRecord {
  return {
    namespace: r.namespace,
    kind: r.kind,
    name: r.name,
    owner: r.owner,
    visibility: r.visibility,
    protected: r.protected === true || r.protected === 1,
    body: typeof r.body === 'string' ? (JSON.parse(r.body) as Record<string, unknown>) : r.body,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

import type { ArtifactRecord, BlobRecord, LinkRecord, MemberRecord, Status, TaskFilter, TaskRecord, TaskSortKey, Visibility } from '../../domain/artifact';
import type { MetadefKind, MetadefRecord } from '../../domain/metadefs';

/**
 * MetadataStore: where artifact metadata lives (SQLite embedded, PostgreSQL for scale-out).
 * Every write is one atomic operation: the row changes and the event describing it are
 * committed together (the event log is the outbox that subscriptions resume from), so a
 * failed write leaves nothing behind. Adapters translate the neutral query below into
 * their SQL; they never apply policy themselves.
 */

export type { Target, Comparison, Condition, SortTarget, SortKey, Keyset } from '../../domain/query';
import type { Condition, Keyset, SortKey } from '../../domain/query';

export interface ListQuery {
  where: Condition;
  /** The store appends `id` in the direction of the last key as the final tie-breaker. */
  sort: SortKey[];
  /** Rows strictly after this position in sort order. */
  after?: Keyset;
  limit: number;
}

export interface NewEvent {
  kind: 'created' | 'updated' | 'statusChanged' | 'deleted';
  artifactId: string;
  typeName: string;
  owner: string;
  visibility: Visibility;
  from?: Status;
  to?: Status;
  revision: number;
  at: string;
  /** A JSON snapshot of the artifact after the change (before it, for deletes). */
  snapshot: ArtifactRecord;
  /**
   * The backend holding the artifact: the backends of a federation share one log, and a
   * deleted artifact can no longer be asked where it lived. Absent in events logged before
   * migration 0010.
   */
  backend?: string;
}

export interface StoredEvent extends NewEvent {
  /** Monotonic across the whole store. */
  seq: number;
}

export interface CountLimit {
  /** The store counts the owner's artifacts inside the write's transaction. */
  maxTotal?: number;
  maxOfType?: number;
}

export interface Usage {
  projectId: string;
  /** Artifacts of each type (any status but deleted). */
  counts: Record<string, number>;
  /** Blob bytes of each type (active and reserved, external blobs excluded). */
  bytes: Record<string, number>;
}

/**
 * A running upload. The blob it targets shows as `saving` while it runs, its `reserved`
 * bytes count against quotas, and its lease must be renewed: an upload whose lease has
 * passed belongs to a dead process and is swept (its artifact restored, its bytes removed).
 */
export interface UploadRecord {
  id: string;
  artifactId: string;
  field: string;
  /** '' for a plain blob field. */
  key: string;
  owner: string;
  typeName: string;
  reserved: number;
  contentType: string | null;
  startedAt: string;
  expiresAt: string;
}

/** Limits on the owner's blob bytes (active blobs plus running reservations). */
export interface ByteLimit {
  maxTotal?: number;
  maxOfType?: number;
}

/** An artifact change that commits together with a blob operation (CAS on revision, like replaceArtifact). */
export interface ArtifactWrite {
  next: ArtifactRecord;
  expectedRevision: number;
  event: NewEvent;
}

export type { MetadefKind, MetadefRecord } from '../../domain/metadefs';

/** Which catalog rows to read: one kind, optionally only some namespaces and names. */
export interface MetadefQuery {
  kind: MetadefKind;
  /** Only rows of these namespaces (GLOBAL_NAMESPACE, '', for resource types). */
  namespaces?: readonly string[];
  names?: readonly string[];
}

export interface MetadefKey {
  namespace: string;
  kind: MetadefKind;
  name: string;
}

export interface MetadefInsertOptions {
  /** Rows written in the same transaction only where their key is free (e.g. the resource type an association names). */
  ensure?: readonly MetadefRecord[];
  /** First deletes every row of this kind in this namespace (a set of tags replaced as a whole). */
  replace?: { namespace: string; kind: MetadefKind };
}

/** One page of the task list (Glance's GET /v2/tasks). */
export interface TaskQuery {
  where: TaskFilter;
  sortKey: TaskSortKey;
  direction: 'asc' | 'desc';
  /** The marker: the page starts after this task. */
  after?: TaskRecord;
  limit: number;
}

export interface MetadataStore {
  /** Creates or upgrades the schema; idempotent. */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  /** DUPLICATE_ID or DUPLICATE_VERSION (when `unique`) or QUOTA_EXCEEDED, all before anything is written. */
  insertArtifact(artifact: ArtifactRecord, event: NewEvent, options: { unique: boolean; limit?: CountLimit }): Promise<StoredEvent>;
  /**
   * Replaces the whole record (tags and properties included) if the stored revision is
   * `expectedRevision`; `next.revision` must be `expectedRevision + 1`. REVISION_CONFLICT
   * otherwise, DUPLICATE_VERSION if a unique (type, owner, name, version) is taken,
   * NOT_FOUND if the row is gone.
   */
  replaceArtifact(next: ArtifactRecord, expectedRevision: number, event: NewEvent, options: { unique: boolean }): Promise<StoredEvent>;
  /** Removes the artifact with its tags, properties, members, blobs and outgoing links (links to it from others stay, dangling). Returns the blobs it had, for byte clean-up. */
  deleteArtifact(id: string, expectedRevision: number, event: NewEvent): Promise<{ event: StoredEvent; blobs: BlobRecord[] }>;

  /** Same length and order as `ids`; null where no row exists. */
  getArtifacts(ids: readonly string[]): Promise<(ArtifactRecord | null)[]>;
  listArtifacts(query: ListQuery): Promise<ArtifactRecord[]>;
  countArtifacts(where: Condition): Promise<number>;

  /** One list per id, in the order of `ids`; members sorted by createdAt then member. */
  getMembers(artifactIds: readonly string[]): Promise<MemberRecord[][]>;
  /** MEMBER_EXISTS if present. Bumps the artifact's revision through `event`. */
  insertMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent>;
  /** MEMBER_NOT_FOUND if absent. */
  updateMember(member: MemberRecord, event: NewEvent): Promise<StoredEvent>;
  deleteMember(artifactId: string, member: string, event: NewEvent): Promise<StoredEvent>;

  /** One list per id, sorted by name then createdAt. */
  getLinks(sourceIds: readonly string[]): Promise<LinkRecord[][]>;
  /**
   * Adds a link; with `replace`, first removes the source's other links of that name.
   * LINK_INVALID when the target is not in this store, unless `foreignTarget`: the target
   * is an artifact of another backend, which the caller has checked.
   */
  insertLink(link: LinkRecord, replace: boolean, event: NewEvent, options?: { foreignTarget?: boolean }): Promise<StoredEvent>;
  /** Removes links of that name (only to `targetId` if given); returns how many went. */
  deleteLinks(sourceId: string, name: string, targetId: string | undefined, event: NewEvent): Promise<{ event: StoredEvent; removed: number }>;

  /**
   * One list per id, sorted by field then key. A blob with a running upload appears once,
   * as `saving` (its previous bytes, if any, are not downloadable meanwhile).
   */
  getBlobs(artifactIds: readonly string[]): Promise<BlobRecord[][]>;

  /**
   * Registers an upload, with an optional artifact write (an image going queued → saving),
   * atomically. BLOB_BUSY if an upload of the same blob runs; QUOTA_EXCEEDED if the owner's
   * bytes plus `reserved` would pass a limit; REVISION_CONFLICT or NOT_FOUND from the write.
   */
  beginUpload(upload: UploadRecord, limit: ByteLimit, write?: ArtifactWrite): Promise<StoredEvent | null>;
  /** Extends a running upload's lease; false if the upload is gone (swept or aborted). */
  renewUpload(uploadId: string, expiresAt: string): Promise<boolean>;
  /**
   * Ends an upload by storing its blob (replacing the previous one of that field and key)
   * together with the artifact write. GONE if the upload no longer exists. Returns the
   * replaced blob, whose bytes the caller deletes after commit.
   */
  completeUpload(uploadId: string, blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }>;
  /** Ends a failed upload, with an optional artifact write (an image going saving → queued). A missing upload is fine. */
  abortUpload(uploadId: string, write?: ArtifactWrite): Promise<StoredEvent | null>;
  /** Running uploads, or only those whose lease expired before `expiredBefore`. */
  listUploads(expiredBefore?: string): Promise<UploadRecord[]>;
  /** Stores a blob that has no upload (an external URL) together with the artifact write. */
  putBlob(blob: BlobRecord, write: ArtifactWrite): Promise<{ event: StoredEvent; replaced: BlobRecord | null }>;
  /** Removes a blob together with the artifact write; NOT_FOUND if it does not exist. */
  deleteBlob(artifactId: string, field: string, key: string, write: ArtifactWrite): Promise<{ event: StoredEvent; removed: BlobRecord }>;
  /** Which of these locations of a blob store some blob still references, as its primary location or one of its copies (the rest are orphans). */
  referencedLocations(store: string, locations: readonly string[]): Promise<Set<string>>;

  /** Inserts a task, with an optional artifact write (the image taking its import lock), atomically. */
  insertTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null>;
  /** Replaces a task's row, with an optional artifact write, atomically; NOT_FOUND if the task is gone (nothing written). */
  updateTask(task: TaskRecord, write?: ArtifactWrite): Promise<StoredEvent | null>;
  /** Same length and order as `ids`; null where absent. */
  getTasks(ids: readonly string[]): Promise<(TaskRecord | null)[]>;
  /** Tasks of one image, newest first (createdAt, then id). */
  listTasks(imageId: string): Promise<TaskRecord[]>;
  /**
   * A page of all tasks matching `where`, ordered by `sortKey`, then createdAt, then id, all
   * in `direction`, missing values lowest; only those strictly after `after` in that order.
   */
  queryTasks(query: TaskQuery): Promise<TaskRecord[]>;
  /**
   * Atomically takes the oldest task that is pending, or processing with a lease that
   * expired before `now`: sets it processing with `leaseExpiresAt` and one more attempt.
   * Null when there is none. Safe when several processes claim at once: a task goes to one.
   */
  claimTask(now: string, leaseExpiresAt: string): Promise<TaskRecord | null>;
  /** Extends a processing task's lease; false if it is no longer processing. */
  renewTask(id: string, leaseExpiresAt: string): Promise<boolean>;
  /** Deletes finished tasks whose expiresAt is before `before`; returns how many. */
  pruneTasks(before: string): Promise<number>;

  /**
   * Appends events that no row change of this store goes with: changes made elsewhere (a
   * Glance behind a Glance backend) that subscribers follow through this log. All or none,
   * in one transaction; seqs grow in the order given. The artifacts need not be in the store.
   */
  appendEvents(events: readonly NewEvent[]): Promise<StoredEvent[]>;
  /** Events with seq > afterSeq, oldest first. */
  readEvents(afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** Keeps the newest `keep` events. */
  pruneEvents(keep: number): Promise<void>;
  /**
   * A number that grows with every committed write of artifacts, members, links or blobs
   * (each appends an event) and is never used twice, so two equal marks mean nothing listed
   * changed in between. Absent where it cannot be had cheaply and safely: PostgreSQL
   * sequence values commit out of order, so a mark read there could hide a write.
   */
  writeMark?(): Promise<number>;

  /** Per-project quota overrides, by quota name (e.g. max_artifact_number:images). */
  getQuotas(projectId: string): Promise<Record<string, number>>;
  /** Replaces all of a project's overrides. */
  setQuotas(projectId: string, quotas: Record<string, number>): Promise<void>;
  usage(projectId: string): Promise<Usage>;

  // ---- metadata definitions (one table keyed by namespace, kind, name; no events) ----

  /** Rows of one kind, ordered by namespace, createdAt, then insertion (a row keeps its place when updated). */
  listMetadefs(query: MetadefQuery): Promise<MetadefRecord[]>;
  /** Inserts rows in one transaction; METADEF_EXISTS (nothing written) if a key is taken. */
  insertMetadefs(records: readonly MetadefRecord[], options?: MetadefInsertOptions): Promise<void>;
  /**
   * Replaces the row at `key` with `next`, which may rename it; a renamed namespace takes
   * its rows along. METADEF_NOT_FOUND if there is no such row, METADEF_EXISTS if the new key is taken.
   */
  updateMetadef(key: MetadefKey, next: MetadefRecord): Promise<void>;
  /**
   * Deletes one row (`name` given) or every row of `kind` in `namespace`; deleting a
   * namespace row removes everything in the namespace too, in the same transaction.
   * Returns how many rows of `kind` went.
   */
  deleteMetadefs(namespace: string, kind: MetadefKind, name?: string): Promise<number>;
  /**
   * Applies a named seed once: inserts the rows whose keys are free and records `seed`,
   * atomically. False (nothing written) if the seed was applied before, by any instance.
   */
  seedMetadefs(seed: string, records: readonly MetadefRecord[]): Promise<boolean>;
}

import type { ArtifactRecord, BlobRecord, TaskFilter, TaskRecord, TaskSortKey, LinkRecord, MemberRecord, MemberStatus, Status, Visibility } from '../domain/artifact';
import type { ErrorCode, VitrineError } from '../domain/errors';
import type {
  MetadefAssociation, MetadefNamespace, MetadefNamespaceDetail, MetadefObject, MetadefProperty, MetadefResourceType, MetadefTag, MetadefVisibility,
} from '../domain/metadefs';
import type { FilterSpec } from '../domain/filters';
import type { LifecycleAction } from '../domain/lifecycle';
import type { PageRequest } from '../domain/paging';
import type { Principal } from '../domain/policy';
import type { TypeRegistry } from '../domain/builtin-types';
import type { Readable } from 'node:stream';

/**
 * ArtifactBackend: what every edge (GraphQL, data plane, Glance facade) talks to. The
 * native backend keeps artifacts in Vitrine's stores; a Glance backend proxies a real
 * Glance. Every method applies visibility and role policy for the given principal.
 */
export interface ArtifactView extends ArtifactRecord {
  backend: string;
}

export interface BlobView extends BlobRecord {
  /** Data-plane path, or the external URL. */
  downloadUrl: string | null;
}

/** A backend that did not answer while others did: the page holds only the others' artifacts. */
export interface BackendWarning {
  backend: string;
  code: ErrorCode;
  message: string;
}

export interface ArtifactPage {
  items: ArtifactView[];
  cursors: string[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  /** Counted only when asked for: a COUNT over the whole filter. */
  totalCount(): Promise<number>;
  /** Set by a federation when some backends failed (UNAVAILABLE, UPSTREAM_*) and the rest answered. */
  warnings?: BackendWarning[];
}

/**
 * One entry of `getMany`: the artifact, null when it is missing or not visible, or the
 * error of a backend that may hold it but did not answer (a federation's partial failure).
 */
export type Lookup = ArtifactView | null | VitrineError;

export interface ListRequest extends PageRequest {
  /** One type, or every type when omitted. */
  typeName?: string;
  filter?: FilterSpec;
  sort?: { key: string; direction: 'asc' | 'desc' }[];
  /**
   * Start after this artifact's position under `sort` (Glance's `marker`), instead of a
   * cursor; forward paging only. CURSOR_INVALID when it is not visible to the principal.
   */
  afterId?: string;
}

export interface CreateRequest {
  typeName: string;
  /** Which backend keeps the new artifact (a configured name); the default backend when omitted. BACKEND_UNKNOWN otherwise. */
  backend?: string;
  id?: string;
  name: string;
  version?: string;
  visibility?: Visibility;
  owner?: string;
  tags?: string[];
  properties?: Record<string, unknown>;
  fields?: Record<string, unknown>;
}

/** One change set; edges map their own shapes (inputs, JSON patches) onto it. */
export interface UpdateRequest {
  name?: string;
  version?: string;
  owner?: string;
  fields?: Record<string, unknown>;
  unsetFields?: string[];
  setTags?: string[];
  addTags?: string[];
  removeTags?: string[];
  setProperties?: Record<string, unknown>;
  unsetProperties?: string[];
}

export interface TypeUsageView {
  typeName: string;
  count: number;
  bytes: number;
  maxCount: number | null;
  maxBytes: number | null;
}

export interface UsageView {
  projectId: string;
  totalCount: number;
  totalBytes: number;
  maxCount: number | null;
  maxBytes: number | null;
  types: TypeUsageView[];
  quotas: { name: string; value: number }[];
}

/** One blob: a plain blob field (key '') or one entry of a blob dictionary. */
export interface BlobTarget {
  artifactId: string;
  field: string;
  key: string;
}

/** What the client announced about an upload; every announced value is verified. */
export interface UploadMeta {
  contentType: string | null;
  /** Content-Length: a hard limit, and the exact size expected. */
  contentLength?: number;
  /** X-Expected-Size / x-openstack-image-size. */
  expectedSize?: number;
  /** Hex digests the bytes must match. */
  expectedMd5?: string;
  expectedSha512?: string;
}

export interface UploadResult {
  artifact: ArtifactView;
  blob: BlobView;
}

export interface ByteSpan {
  /** Inclusive offsets. */
  start: number;
  end: number;
}

/** A downloadable blob: stored bytes to stream, or an external URL to redirect to. */
export type BlobContent =
  | { kind: 'stored'; artifact: ArtifactView; blob: BlobView & { size: number }; read(span?: ByteSpan): Promise<Readable> }
  | {
      kind: 'external';
      artifact: ArtifactView;
      blob: BlobView;
      url: string;
      /**
       * Images whose data is only at external locations: the bytes streamed through
       * Vitrine (Glance's http store), each URL and redirect behind the URL filter.
       */
      open?(): Promise<{ body: Readable; size: number | null }>;
    };

export interface ExternalBlobRequest {
  url: string;
  md5?: string;
  sha512?: string;
  size?: number;
  contentType?: string;
}

export interface BlobSweepReport {
  incompleteWrites: number;
  expiredUploads: number;
  orphanedLocations: number;
}

/** Glance's interoperable import methods. */
export const IMPORT_METHODS = ['glance-direct', 'web-download', 'copy-image', 'glance-download'] as const;
export type ImportMethod = (typeof IMPORT_METHODS)[number];

/** POST /v2/images/{id}/import, as a backend sees it. */
export interface ImportRequest {
  method: ImportMethod;
  /** web-download only: the URL to fetch. */
  uri?: string;
  /** glance-download only: the image to copy, from the `image` endpoint of this region and interface (default public). */
  glanceImageId?: string;
  glanceRegion?: string;
  glanceServiceInterface?: string;
  /** Target stores; the default store when omitted (and `allStores` is false). */
  stores?: string[];
  allStores?: boolean;
  /** Glance's default: true; when false, an import that reaches at least one store succeeds. */
  allStoresMustSucceed?: boolean;
}

export type { TaskStatus } from '../domain/artifact';

/**
 * A background job (Glance's task: one image import) as backends show it; lease bookkeeping
 * stays inside. A Glance may also hold its legacy `import` tasks.
 */
export type TaskView = Omit<TaskRecord, 'leaseExpiresAt' | 'attempts' | 'type'> & { type: string };

export type { TaskFilter, TaskSortKey } from '../domain/artifact';

/** The task list (Glance's GET /v2/tasks). */
export interface TaskListRequest {
  /** Equality on task columns (Glance filters on status, type and any other column). */
  filter?: TaskFilter;
  /** Default createdAt; createdAt then id break ties (see domain/task-order.ts). */
  sortKey?: TaskSortKey;
  /** Default desc. */
  direction?: 'asc' | 'desc';
  limit: number;
  /** Start after this task (Glance's marker); CURSOR_INVALID when no such task is listed. */
  afterId?: string;
}

export interface TaskPage {
  tasks: TaskView[];
  /** More tasks follow (from a Glance: its page was full, as its `next` link says). */
  hasNextPage: boolean;
  /** Set by a federation when some backends failed and the rest answered. */
  warnings?: BackendWarning[];
}

export interface StoreView {
  id: string;
  description: string | null;
  isDefault: boolean;
  readOnly: boolean;
}

/** One entry of an image's `locations` (Glance's show_multiple_locations), in order. */
export interface ImageLocationView {
  url: string;
  metadata: Record<string, unknown>;
}

/** What an image shows of its locations: each null when not shown (switched off, or the policy refuses the caller). */
export interface ImageLocationsView {
  locations: ImageLocationView[] | null;
  /** The first location's URL (Glance's direct_url), when direct URLs are shown and there is one. */
  directUrl: string | null;
}

/** Glance's `validation_data` of a new location: fills in an image's checksum and hash, or must match them. */
export interface LocationValidationData {
  checksum?: string;
  os_hash_algo: string;
  os_hash_value: string;
}

export interface AddLocationRequest {
  url: string;
  metadata: Record<string, unknown>;
  validationData?: LocationValidationData;
  /** Where to insert it (0 is first; past the end appends); appended when omitted. */
  position?: number;
}

export type StatusAction = Extract<LifecycleAction, 'activate' | 'deactivate' | 'reactivate'>;

export interface ArtifactBackend {
  readonly name: string;
  readonly types: TypeRegistry;

  /**
   * Same order and length as ids; null where missing or not visible to the principal. Only
   * a federation puts a VitrineError where the backend that may hold an id failed (see
   * Lookup), so the other ids still resolve; callers treat it as that id's error.
   */
  getMany(principal: Principal, ids: readonly string[]): Promise<Lookup[]>;
  list(principal: Principal, request: ListRequest): Promise<ArtifactPage>;
  /**
   * Changes whenever a committed write could change what list() (or locationsOf) returns to
   * anyone; undefined when the backend cannot tell (a Glance changes behind Vitrine's back, a
   * store without a safe write mark). Read before listing, an unchanged mark means the list
   * answered then is still the answer, so an edge may reuse what it rendered.
   */
  listMark(): Promise<string | undefined>;
  create(principal: Principal, request: CreateRequest): Promise<ArtifactView>;
  update(principal: Principal, id: string, change: UpdateRequest, ifRevision?: number): Promise<ArtifactView>;
  changeStatus(principal: Principal, id: string, action: StatusAction, ifRevision?: number): Promise<ArtifactView>;
  setVisibility(principal: Principal, id: string, visibility: Visibility, ifRevision?: number): Promise<ArtifactView>;
  delete(principal: Principal, id: string, ifRevision?: number): Promise<{ id: string; typeName: string; status: Status }>;

  addLink(principal: Principal, sourceId: string, name: string, targetId: string, ifRevision?: number): Promise<ArtifactView>;
  removeLink(principal: Principal, sourceId: string, name: string, targetId?: string, ifRevision?: number): Promise<ArtifactView>;
  /** Links of visible sources, one list per id (targets are checked when resolved). */
  linksOf(principal: Principal, ids: readonly string[]): Promise<LinkRecord[][]>;

  /** Members the principal may see: all for the owner and admins, its own entry for a member. */
  membersOf(principal: Principal, ids: readonly string[]): Promise<MemberRecord[][]>;
  addMember(principal: Principal, artifactId: string, project: string): Promise<MemberRecord>;
  updateMember(principal: Principal, artifactId: string, project: string, status: MemberStatus): Promise<MemberRecord>;
  removeMember(principal: Principal, artifactId: string, project: string): Promise<void>;

  blobsOf(principal: Principal, ids: readonly string[]): Promise<BlobView[][]>;

  /**
   * Streams `body` into the blob with constant memory, hashing and metering it; the blob
   * becomes active only once its bytes are durable and verified. Never destroys `body`:
   * on failure the caller drains or closes it. `signal` aborts (a client that went away).
   */
  uploadBlob(principal: Principal, target: BlobTarget, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<UploadResult>;
  /**
   * A blob to download: NOT_FOUND if absent, BLOB_NOT_READY while saving, FORBIDDEN if
   * deactivated (non-admins). With `redirect`, stored bytes may come back as an `external`
   * URL when their store hands out direct, expiring URLs (Swift temp URLs), so the bytes
   * need not pass through Vitrine.
   */
  openBlob(principal: Principal, target: BlobTarget, options?: { redirect?: boolean }): Promise<BlobContent>;
  /** Removes an external blob, or the bytes of a drafted (or queued) artifact. */
  deleteBlob(principal: Principal, target: BlobTarget): Promise<ArtifactView>;
  /** Admins: point a blob at an external http(s) URL on a public address. */
  setExternalBlob(principal: Principal, target: BlobTarget, request: ExternalBlobRequest): Promise<BlobView>;
  /** Checks the principal may upload into the blob now (for signed upload URLs); returns the normalised target. */
  checkUploadable(principal: Principal, target: BlobTarget): Promise<BlobTarget>;
  /**
   * Crash recovery: removes leftovers of unfinished writes, expired uploads (restoring their
   * artifacts) and bytes no blob references. `exclusive`: this process owns the stores alone
   * and nothing runs yet (start-up of the embedded deployment), so every upload is dead.
   */
  sweepBlobs(options: { exclusive: boolean }): Promise<BlobSweepReport>;

  /** Named blob stores of this backend (for images: Glance's `/v2/info/stores`); empty when it has one unnamed store. */
  stores(principal: Principal): Promise<StoreView[]>;
  /** Stages image bytes for a later glance-direct import (queued → uploading); same streaming contract as uploadBlob. */
  stageImage(principal: Principal, imageId: string, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<ArtifactView>;
  /** Checks the request, takes the image's import lock and starts the import in the background; returns its task. */
  importImage(principal: Principal, imageId: string, request: ImportRequest, requestId?: string): Promise<TaskView>;
  /** Import tasks of an image, newest first (NOT_FOUND when the image is not visible). */
  tasksOf(principal: Principal, imageId: string): Promise<TaskView[]>;
  /** One task; NOT_FOUND when absent or not the principal's (admins see all). */
  getTask(principal: Principal, taskId: string): Promise<TaskView>;
  /** Every task, of every image (Glance's tasks_api_access: admins only, FORBIDDEN otherwise). */
  listTasks(principal: Principal, request: TaskListRequest): Promise<TaskPage>;
  /** Removes an active image's data from one store (`DELETE /v2/stores/{store}/{id}`); refused for its last store. */
  deleteFromStore(principal: Principal, imageId: string, store: string): Promise<ArtifactView>;

  /**
   * Image locations, one entry per id in order (ids of images the caller could read):
   * nulls where they are not shown (switched off, not an image, a backend that does not
   * manage them, or the `getImageLocation` policy refuses the principal).
   */
  locationsOf(principal: Principal, ids: readonly string[]): Promise<ImageLocationsView[]>;
  /** Adds a location (queued → active for the first one, without hashing); FORBIDDEN when locations are off. */
  addImageLocation(principal: Principal, imageId: string, request: AddLocationRequest): Promise<ArtifactView>;
  /** Replaces the list: the same URLs (metadata may change); LOCATION_INVALID when a URL goes or changes. */
  replaceImageLocations(principal: Principal, imageId: string, locations: readonly AddLocationRequest[]): Promise<ArtifactView>;
  /** Removes the location at `index` (-1: the last one); FORBIDDEN for the only one. Removing a stored copy deletes its bytes. */
  removeImageLocation(principal: Principal, imageId: string, index: number): Promise<ArtifactView>;

  usage(principal: Principal, projectId?: string): Promise<UsageView>;
  setQuotas(principal: Principal, projectId: string, quotas: { name: string; value: number }[]): Promise<UsageView>;
}

// ---- metadata definitions ----------------------------------------------------------------

export type {
  MetadefAssociation, MetadefNamespace, MetadefNamespaceDetail, MetadefObject, MetadefProperty, MetadefResourceType, MetadefTag, MetadefVisibility,
} from '../domain/metadefs';

export interface NamespaceListRequest {
  /** Only namespaces associated with at least one of these resource types. */
  resourceTypes?: readonly string[];
  visibility?: MetadefVisibility;
  /** created_at (default), updated_at or namespace. */
  sortKey?: 'created_at' | 'updated_at' | 'namespace';
  sortDir?: 'asc' | 'desc';
  /** Start after this namespace (by name), in sort order. */
  marker?: string;
  limit?: number;
}

export interface NamespaceListItem extends MetadefNamespace {
  associations: MetadefAssociation[];
}

export interface NamespacePage {
  namespaces: NamespaceListItem[];
  /** The marker of the next page when this one is full. */
  next: string | null;
}

export type NamespaceContentKind = 'object' | 'property' | 'tag';

/**
 * MetadefCatalog: Glance's metadata definitions, stored natively whatever the artifact
 * backends are. Bodies are Glance's JSON (snake_case), validated against the schemas of
 * `src/domain/metadefs.ts` (served at /v2/schemas/metadefs/*) before anything else is
 * checked, then: namespace visible (METADEF_NOT_FOUND), caller may write (FORBIDDEN: admins
 * only), then the entry itself. Deletes in a protected namespace fail METADEF_PROTECTED.
 */
export interface MetadefCatalog {
  listNamespaces(p: Principal, request?: NamespaceListRequest): Promise<NamespacePage>;
  /** With `resourceType`, properties carry that association's prefix (Glance's `resource_type` filter). */
  getNamespace(p: Principal, namespace: string, options?: { resourceType?: string }): Promise<MetadefNamespaceDetail>;
  /** Many namespaces at once (missing or invisible ones null), for batched GraphQL reads. */
  getNamespaces(p: Principal, namespaces: readonly string[], options?: { resourceType?: string }): Promise<(MetadefNamespaceDetail | null)[]>;
  /** The namespace with its associations, objects, properties and tags, written atomically. */
  createNamespace(p: Principal, body: Record<string, unknown>): Promise<MetadefNamespaceDetail>;
  /** Replaces name, display name, description, visibility, protection and owner (Glance's PUT). */
  updateNamespace(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefNamespace>;
  deleteNamespace(p: Principal, namespace: string): Promise<void>;
  /** Deletes every object, property or tag of the namespace. */
  deleteNamespaceContents(p: Principal, namespace: string, kind: NamespaceContentKind): Promise<void>;

  listObjects(p: Principal, namespace: string): Promise<MetadefObject[]>;
  getObject(p: Principal, namespace: string, name: string): Promise<MetadefObject>;
  createObject(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefObject>;
  updateObject(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefObject>;
  deleteObject(p: Principal, namespace: string, name: string): Promise<void>;

  listProperties(p: Principal, namespace: string): Promise<MetadefProperty[]>;
  /** With `resourceType`, `name` is the prefixed name and must carry that association's prefix; the answer has the stored name. */
  getProperty(p: Principal, namespace: string, name: string, options?: { resourceType?: string }): Promise<MetadefProperty>;
  createProperty(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefProperty>;
  updateProperty(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefProperty>;
  deleteProperty(p: Principal, namespace: string, name: string): Promise<void>;

  listTags(p: Principal, namespace: string): Promise<MetadefTag[]>;
  getTag(p: Principal, namespace: string, name: string): Promise<MetadefTag>;
  createTag(p: Principal, namespace: string, name: string): Promise<MetadefTag>;
  /** `{"tags": [{"name": …}, …]}`; replaces the namespace's tags unless `append`. */
  createTags(p: Principal, namespace: string, body: Record<string, unknown>, append: boolean): Promise<MetadefTag[]>;
  updateTag(p: Principal, namespace: string, name: string, body: Record<string, unknown>): Promise<MetadefTag>;
  deleteTag(p: Principal, namespace: string, name: string): Promise<void>;

  listResourceTypes(p: Principal): Promise<MetadefResourceType[]>;
  listAssociations(p: Principal, namespace: string): Promise<MetadefAssociation[]>;
  /** Creates the resource type too when it is new (as Glance does). */
  createAssociation(p: Principal, namespace: string, body: Record<string, unknown>): Promise<MetadefAssociation>;
  deleteAssociation(p: Principal, namespace: string, resourceType: string): Promise<void>;
}

/** One image whose bytes sit in a node-local cache (Glance's `cached_images` entries). */
export interface CachedImageView {
  imageId: string;
  /** Downloads served from the cache. */
  hits: number;
  /** Seconds since the epoch (fractional, as Glance reports them). */
  lastAccessed: number;
  lastModified: number;
  size: number;
}

export interface ImageCacheStateView {
  cached: CachedImageView[];
  /** Image ids waiting for the prefetcher, oldest first. */
  queued: string[];
}

/** What `clear` empties: both, only the cached bytes, or only the queue. */
export type CacheClearTarget = 'all' | 'cache' | 'queue';

/**
 * The image cache (Glance's cache API, v2.14): a node-local copy of image bytes that
 * downloads are served from. Admin only: every method fails with FORBIDDEN otherwise.
 */
export interface ImageCachePort {
  state(principal: Principal): Promise<ImageCacheStateView>;
  /** Queues an active image for the prefetcher: NOT_FOUND (unknown), TRANSITION_FORBIDDEN (not active). */
  queue(principal: Principal, imageId: string): Promise<void>;
  /** Drops the image from the cache and the queue; NOT_FOUND when it is in neither and does not exist. */
  remove(principal: Principal, imageId: string): Promise<void>;
  clear(principal: Principal, target: CacheClearTarget): Promise<{ cacheDeleted: number; queueDeleted: number }>;
}

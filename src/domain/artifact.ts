/** The shapes every layer shares: statuses, visibility, and stored records. */

export const IMAGE_STATUSES = ['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated', 'killed', 'deleted', 'pending_delete'] as const;
export const ARTIFACT_STATUSES = ['drafted', 'active', 'deactivated', 'deleted'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];
export type GlareStatus = (typeof ARTIFACT_STATUSES)[number];
export type Status = ImageStatus | GlareStatus;
export const ALL_STATUSES: readonly Status[] = [...new Set<Status>([...IMAGE_STATUSES, ...ARTIFACT_STATUSES])];

export const VISIBILITIES = ['public', 'community', 'shared', 'private'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

export type Scalar = string | number | boolean;
/** A typed field value as stored: scalars, lists and string-keyed dicts of scalars, or null. */
export type FieldValue = Scalar | null | Scalar[] | { [key: string]: Scalar };

export interface ArtifactRecord {
  id: string;
  typeName: string;
  name: string;
  /** Canonical semver string. */
  version: string;
  status: Status;
  visibility: Visibility;
  owner: string;
  tags: string[];
  /** Free-form string properties (Glance extra properties, Glare metadata). */
  properties: Record<string, string>;
  /** Values of the type's own fields (see ArtifactTypeDef), keyed by field name. */
  fields: Record<string, FieldValue>;
  /** ISO-8601 UTC timestamps with milliseconds: they sort as strings. */
  createdAt: string;
  updatedAt: string;
  activatedAt: string | null;
  /** Starts at 1 and grows by one with every committed change. */
  revision: number;
}

export interface MemberRecord {
  artifactId: string;
  member: string;
  status: MemberStatus;
  createdAt: string;
  updatedAt: string;
}

export interface LinkRecord {
  sourceId: string;
  name: string;
  targetId: string;
  createdAt: string;
}

export type BlobStatus = 'saving' | 'active';

export interface BlobCopy {
  store: string;
  location: string;
}

/**
 * An image location as a client set it (Glance's `locations` entries): an external URL the
 * image's data is read from, or, for a stored copy, the metadata shown with its URL.
 */
export interface BlobLocation {
  url: string;
  metadata: Record<string, unknown>;
}

export const TASK_STATUSES = ['pending', 'processing', 'success', 'failure'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * What a task list sorts by (Glance sorts by any column of its tasks table); `createdAt`
 * and then `id` break ties, in the same direction. Missing values sort lowest.
 */
export const TASK_SORT_KEYS = ['createdAt', 'updatedAt', 'expiresAt', 'id', 'type', 'status', 'owner', 'imageId', 'userId', 'requestId'] as const;
export type TaskSortKey = (typeof TASK_SORT_KEYS)[number];

/** Task columns a list filters on by equality. */
export type TaskFilter = Partial<Record<'id' | 'type' | 'status' | 'owner' | 'imageId' | 'userId' | 'requestId', string>>;

/**
 * A background job (Glance's task; today only image imports). A running task holds a
 * lease like an upload: a task whose lease passed belongs to a dead process and is claimed
 * again by a live one.
 */
export interface TaskRecord {
  id: string;
  type: 'api_image_import';
  status: TaskStatus;
  imageId: string;
  owner: string;
  userId: string | null;
  requestId: string | null;
  input: Record<string, unknown>;
  result: Record<string, unknown> | null;
  message: string;
  createdAt: string;
  updatedAt: string;
  /** Success or failure time plus the time to live; null until then. */
  expiresAt: string | null;
  /** Set while a process runs the task. */
  leaseExpiresAt: string | null;
  /** How many times a process claimed it. */
  attempts: number;
}

export interface BlobRecord {
  artifactId: string;
  field: string;
  /** '' for a plain blob field; the entry's key in a blob dictionary. */
  key: string;
  status: BlobStatus;
  size: number | null;
  md5: string | null;
  sha256: string | null;
  sha512: string | null;
  contentType: string | null;
  /** External blobs point to a URL instead of stored bytes. */
  external: boolean;
  url: string | null;
  /** Which blob store holds the bytes, and under which key there. */
  store: string | null;
  location: string | null;
  /** Further copies of the same bytes in other stores (images in several stores); usually empty. */
  copies: BlobCopy[];
  /**
   * Image locations set by clients (absent when none): external URLs in order, and the
   * metadata of stored copies keyed by their URL. Stored copies stay in store/location/copies.
   */
  locations?: BlobLocation[];
  createdAt: string;
  updatedAt: string;
}

export function nowIso(): string {
  return new Date().toISOString();
}

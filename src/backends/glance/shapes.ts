import { MEMBER_STATUSES, type MemberRecord, type MemberStatus } from '../../domain/artifact';
import { fromGlanceImage, type GlanceImage } from '../../domain/glance-image';
import type { ArtifactView, BlobView, ImageLocationsView, ImageLocationView, StoreView, TaskStatus, TaskView } from '../port';
import { upstreamRejected } from './errors';

/**
 * Glance's JSON (images, members, tasks, stores) as the port's views. Answers that do not
 * have the expected shape are UPSTREAM_REJECTED, never half-read.
 */

/** Revisions count seconds from this instant (an Int in GraphQL: good until 2068). */
const REVISION_EPOCH_MS = Date.UTC(2000, 0, 1);

/**
 * Glance has no revisions: the revision is derived from `updated_at` (whole seconds since
 * 2000-01-01Z), which Glance bumps on every change. Monotonic, but not strictly: two changes
 * within one second share a revision.
 */
export function revisionOf(updatedAt: string): number {
  const t = Date.parse(updatedAt);
  return Number.isNaN(t) ? 1 : Math.max(1, Math.floor((t - REVISION_EPOCH_MS) / 1000));
}

/**
 * What Glance showed of each image view's locations, beside the view rather than in it:
 * views travel further (event snapshots, subscriptions) than the getImageLocation policy
 * lets location URLs go, so only `locationsShown` reads them back.
 */
const SHOWN_LOCATIONS = new WeakMap<ArtifactView, ImageLocationsView>();
const NOT_SHOWN: ImageLocationsView = Object.freeze({ locations: null, directUrl: null });

export function imageView(backend: string, value: unknown): ArtifactView {
  if (!isObject(value) || typeof value.id !== 'string' || typeof value.status !== 'string') throw upstreamRejected(backend, 'Glance answered with something that is not an image');
  const image = value as GlanceImage;
  const view = fromGlanceImage(image, { backend, revision: revisionOf(String(image.updated_at ?? image.created_at)) });
  SHOWN_LOCATIONS.set(view, locationsOf(backend, value));
  return view;
}

/** The locations and direct URL Glance showed with this view (null where it showed none). */
export function locationsShown(view: ArtifactView): ImageLocationsView {
  return SHOWN_LOCATIONS.get(view) ?? NOT_SHOWN;
}

/** Glance's `locations` (shown when show_multiple_locations is on) and `direct_url` (show_image_direct_url, when there is a location). */
function locationsOf(backend: string, image: Record<string, unknown>): ImageLocationsView {
  let locations: ImageLocationView[] | null = null;
  if (image.locations !== undefined && image.locations !== null) {
    if (!Array.isArray(image.locations)) throw upstreamRejected(backend, `Glance answered image ${String(image.id)} with locations that are not a list`);
    locations = image.locations.map((l) => {
      if (!isObject(l) || typeof l.url !== 'string') throw upstreamRejected(backend, `Glance answered image ${String(image.id)} with a location without a URL`);
      return { url: l.url, metadata: isObject(l.metadata) ? l.metadata : {} };
    });
  }
  return { locations, directUrl: typeof image.direct_url === 'string' ? image.direct_url : null };
}

export function imagesOf(backend: string, value: unknown): ArtifactView[] {
  if (!isObject(value) || !Array.isArray(value.images)) throw upstreamRejected(backend, 'Glance answered an image list without `images`');
  return value.images.map((image) => imageView(backend, image));
}

/**
 * The image data as a blob, described as the native backend describes an image's: field
 * `image`, md5 and sha512 digests, the stores holding it. None while no data arrived.
 */
export function imageBlob(view: ArtifactView, downloadUrl: string): BlobView | null {
  const saving = view.status === 'saving' || view.status === 'importing';
  const stored = (view.status === 'active' || view.status === 'deactivated') && typeof view.fields.size === 'number';
  if (!saving && !stored) return null;
  const stores = Array.isArray(view.fields.stores) ? view.fields.stores.map(String) : [];
  return {
    artifactId: view.id,
    field: 'image',
    key: '',
    status: stored ? 'active' : 'saving',
    copies: [],
    size: typeof view.fields.size === 'number' ? view.fields.size : null,
    md5: typeof view.fields.checksum === 'string' ? view.fields.checksum : null,
    sha256: null,
    sha512: view.fields.os_hash_algo === 'sha512' && typeof view.fields.os_hash_value === 'string' ? view.fields.os_hash_value : null,
    contentType: 'application/octet-stream',
    external: false,
    url: null,
    store: stores.length > 0 ? stores.join(',') : null,
    location: null,
    createdAt: view.createdAt,
    updatedAt: view.updatedAt,
    downloadUrl,
  };
}

export function memberOf(backend: string, value: unknown): MemberRecord {
  if (!isObject(value) || typeof value.member_id !== 'string' || typeof value.image_id !== 'string' || !MEMBER_STATUSES.includes(value.status as MemberStatus)) {
    throw upstreamRejected(backend, 'Glance answered with something that is not an image member');
  }
  return { artifactId: value.image_id, member: value.member_id, status: value.status as MemberStatus, createdAt: isoTime(value.created_at), updatedAt: isoTime(value.updated_at ?? value.created_at) };
}

export function membersOf(backend: string, value: unknown): MemberRecord[] {
  if (!isObject(value) || !Array.isArray(value.members)) throw upstreamRejected(backend, 'Glance answered a member list without `members`');
  return value.members.map((m) => memberOf(backend, m));
}

const TASK_STATUSES: readonly TaskStatus[] = ['pending', 'processing', 'success', 'failure'];

export function taskOf(backend: string, value: unknown): TaskView {
  if (!isObject(value) || typeof value.id !== 'string' || !TASK_STATUSES.includes(value.status as TaskStatus)) throw upstreamRejected(backend, 'Glance answered with something that is not a task');
  const input = isObject(value.input) ? value.input : {};
  return {
    id: value.id,
    type: typeof value.type === 'string' ? value.type : 'api_image_import',
    status: value.status as TaskStatus,
    imageId: typeof value.image_id === 'string' ? value.image_id : typeof input.image_id === 'string' ? input.image_id : '',
    owner: typeof value.owner === 'string' ? value.owner : '',
    userId: typeof value.user_id === 'string' ? value.user_id : null,
    requestId: typeof value.request_id === 'string' ? value.request_id : null,
    input,
    result: isObject(value.result) ? value.result : null,
    message: typeof value.message === 'string' ? value.message : '',
    createdAt: isoTime(value.created_at),
    updatedAt: isoTime(value.updated_at ?? value.created_at),
    expiresAt: value.expires_at ? isoTime(value.expires_at) : null,
  };
}

export function tasksOf(backend: string, value: unknown): TaskView[] {
  if (!isObject(value) || !Array.isArray(value.tasks)) throw upstreamRejected(backend, 'Glance answered a task list without `tasks`');
  return value.tasks.map((t) => taskOf(backend, t));
}

export function storesOf(backend: string, value: unknown): StoreView[] {
  if (!isObject(value) || !Array.isArray(value.stores)) throw upstreamRejected(backend, 'Glance answered a store list without `stores`');
  return value.stores.map((s) => {
    if (!isObject(s) || typeof s.id !== 'string') throw upstreamRejected(backend, 'Glance answered a store without an id');
    return {
      id: s.id,
      description: typeof s.description === 'string' ? s.description : null,
      // Glance writes the flags as strings ("true") in /v2/info/stores; an http store is "read-only".
      isDefault: s.default === true || s.default === 'true',
      readOnly: [s['read-only'], s.read_only].some((flag) => flag === true || flag === 'true'),
    };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Glance's times ("…Z" or, in task lists, microseconds without a zone) as ISO-8601 UTC with milliseconds. */
function isoTime(value: unknown): string {
  if (typeof value !== 'string') return new Date(0).toISOString();
  const withZone = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value}Z`;
  const t = Date.parse(withZone);
  return Number.isNaN(t) ? new Date(0).toISOString() : new Date(t).toISOString();
}

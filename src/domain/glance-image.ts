import type { ArtifactRecord, FieldValue, ImageStatus, Visibility } from './artifact';

/**
 * The one mapping between Vitrine's image records and Glance's image JSON (Glance
 * images.py ResponseSerializer._format_image). The facade serializes with
 * `toGlanceImage`; the Glance backend proxy reads Glance's answers with `fromGlanceImage`.
 *
 * Lossy corners, on purpose: Glance's `name: null` is stored as '' (Vitrine names are
 * strings) and shown as null again. `locations` and `direct_url` are shown only as the
 * caller passes them (images.showLocations / showDirectUrl, Glance's
 * show_multiple_locations / show_image_direct_url), and never read back into the record:
 * the Glance backend keeps what Glance showed beside each view (backends/glance/shapes.ts),
 * so location URLs stay behind the getImageLocation policy rather than travel with the image.
 */
export const IMAGE_TYPE = 'images';

/** Typed fields of the `images` artifact type that Glance shows as base properties. */
export const IMAGE_FIELDS = [
  'disk_format', 'container_format', 'size', 'virtual_size', 'checksum', 'os_hash_algo', 'os_hash_value',
  'min_disk', 'min_ram', 'protected', 'os_hidden',
] as const;
export type ImageFieldName = (typeof IMAGE_FIELDS)[number];

/** Every key Glance always shows (null when unset), besides the links. */
export const BASE_PROPERTIES = [
  'id', 'name', 'status', 'visibility', 'owner', 'tags', 'created_at', 'updated_at', ...IMAGE_FIELDS,
] as const;

/** Server-side bookkeeping Glance keeps as properties but never shows. */
export const HIDDEN_PROPERTIES: ReadonlySet<string> = new Set(['os_glance_stage_host', 'os_glance_hash_op_host']);

/** Keys of Glance's JSON that are neither base properties nor extra properties. */
const LINK_KEYS: ReadonlySet<string> = new Set(['self', 'file', 'schema', 'stores', 'locations', 'direct_url']);

/** Defaults of the non-nullable fields, for records written before a field existed. */
const FIELD_DEFAULTS: Partial<Record<ImageFieldName, FieldValue>> = { min_disk: 0, min_ram: 0, protected: false, os_hidden: false };

export type GlanceImage = Record<string, unknown>;

export interface GlanceImageOptions {
  /** Show `stores` (only a multi-store Glance does). */
  multistore?: boolean;
  /** Show `locations` (Glance's show_multiple_locations): `[]` when the caller may not see them. */
  showLocations?: boolean;
  /** The image's locations and direct URL as the backend gives them to this caller. */
  locations?: { locations: { url: string; metadata: Record<string, unknown> }[] | null; directUrl: string | null };
}

export function imageHref(id: string, sub?: 'file'): string {
  return sub ? `/v2/images/${id}/${sub}` : `/v2/images/${id}`;
}

/** Stored times as nowIso() writes them: UTC, `Z`, optional fraction. */
const UTC_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** Glance's timeutils.isotime: whole seconds, `Z`. */
export function glanceTime(iso: string): string {
  // Cutting is exact for UTC strings and spares a Date parse per field of every listed image.
  if (UTC_ISO.test(iso)) return `${iso.slice(0, 19)}Z`;
  return `${new Date(iso).toISOString().slice(0, 19)}Z`;
}

export function toGlanceImage(record: ArtifactRecord, options: GlanceImageOptions = {}): GlanceImage {
  const out: GlanceImage = {};
  // Extra properties first, so a base property can never be shadowed by one.
  for (const [key, value] of Object.entries(record.properties)) {
    if (!HIDDEN_PROPERTIES.has(key)) out[key] = value;
  }
  out.id = record.id;
  out.name = record.name === '' ? null : record.name;
  out.status = record.status;
  out.visibility = record.visibility;
  out.owner = record.owner;
  for (const field of IMAGE_FIELDS) out[field] = fieldOf(record, field);
  if (options.showLocations) out.locations = (options.locations?.locations ?? []).map((l) => ({ url: l.url, metadata: l.metadata }));
  if (options.locations?.directUrl) out.direct_url = options.locations.directUrl;
  out.tags = [...record.tags];
  out.created_at = glanceTime(record.createdAt);
  out.updated_at = glanceTime(record.updatedAt);
  out.self = imageHref(record.id);
  out.file = imageHref(record.id, 'file');
  out.schema = '/v2/schemas/image';
  if (options.multistore) {
    const stores = record.fields.stores;
    if (Array.isArray(stores) && stores.length > 0) out.stores = [...stores].map(String).sort().join(',');
  }
  return out;
}

function fieldOf(record: ArtifactRecord, field: ImageFieldName): FieldValue {
  const value = record.fields[field];
  return value === undefined ? FIELD_DEFAULTS[field] ?? null : value;
}

export interface FromGlanceOptions {
  backend: string;
  /** Glance has no revisions; the proxy supplies one (e.g. derived from updated_at). */
  revision?: number;
}

/** The inverse of `toGlanceImage`, for images read from a real Glance. */
export function fromGlanceImage(image: GlanceImage, options: FromGlanceOptions): ArtifactRecord & { backend: string } {
  const fields: Record<string, FieldValue> = {};
  for (const field of IMAGE_FIELDS) {
    const value = image[field];
    fields[field] = value === undefined ? FIELD_DEFAULTS[field] ?? null : (value as FieldValue);
  }
  fields.stores = typeof image.stores === 'string' && image.stores !== '' ? image.stores.split(',').sort() : [];
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(image)) {
    if ((BASE_PROPERTIES as readonly string[]).includes(key) || LINK_KEYS.has(key)) continue;
    // Only kernel_id/ramdisk_id may be null in Glance; the facade treats null as unset.
    if (typeof value === 'string') properties[key] = value;
  }
  const createdAt = isoMillis(image.created_at);
  const updatedAt = isoMillis(image.updated_at ?? image.created_at);
  return {
    id: String(image.id),
    typeName: IMAGE_TYPE,
    name: typeof image.name === 'string' ? image.name : '',
    version: '0.0.0',
    status: image.status as ImageStatus,
    visibility: image.visibility as Visibility,
    owner: typeof image.owner === 'string' ? image.owner : '',
    tags: Array.isArray(image.tags) ? image.tags.map(String) : [],
    properties,
    fields,
    createdAt,
    updatedAt,
    activatedAt: null,
    revision: options.revision ?? 1,
    backend: options.backend,
  };
}

function isoMillis(value: unknown): string {
  const t = typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isNaN(t) ? new Date(0).toISOString() : new Date(t).toISOString();
}

import type { AddLocationRequest, UpdateRequest } from '../../backends/port';
import type { Visibility } from '../../domain/artifact';
import { asDetail, badRequest, conflict, forbidden, glanceError } from './errors';
import { isObject } from './body';
import type { GlanceImage } from '../../domain/glance-image';
import { pyRepr } from '../../domain/json-values';
import { checkAgainstSchema } from './schema-check';
import type { JsonSchema } from './schemas';

/**
 * `PATCH /v2/images/{id}` in both JSON-patch dialects Glance accepts (images.py
 * RequestDeserializer.update and ImagesController._do_add/_do_replace/_do_remove):
 * parse and validate the operations first (415, 400, 403, as Glance does before loading
 * the image), then apply them to the image as Glance shows it, then diff the result into
 * one backend update plus, when it changed, a visibility change.
 */
export const PATCH_MEDIA_TYPES: Readonly<Record<string, 'v2.0' | 'v2.1'>> = {
  'application/openstack-images-v2.0-json-patch': 'v2.0',
  'application/openstack-images-v2.1-json-patch': 'v2.1',
};
export const ACCEPT_PATCH = Object.keys(PATCH_MEDIA_TYPES).sort().join(', ');

export type PatchOp = 'add' | 'remove' | 'replace';
export interface PatchOperation {
  op: PatchOp;
  /** The property the operation names (depth 1, but for `/locations/<position>`). */
  property: string;
  /** add and remove on locations: the second segment (`-` or a number, unchecked). */
  position?: string;
  value?: unknown;
  dialect: 'v2.0' | 'v2.1';
}

/** Glance's `_path_depth_limits`: only locations go one level deeper, for add and remove. */
function depthOf(property: string, op: PatchOp): number {
  return property === 'locations' && op !== 'replace' ? 2 : 1;
}

const OPERATIONS: readonly PatchOp[] = ['add', 'remove', 'replace'];
const READ_ONLY = new Set(['created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self', 'file', 'schema', 'id', 'os_hash_algo', 'os_hash_value']);
const RESERVED = new Set(['location', 'deleted', 'deleted_at']);
const RESERVED_PREFIX = 'os_glance';
/** Attributes of Glance's domain Image that clients may write: "base" for add/remove. */
export const WRITABLE_BASE = ['name', 'visibility', 'protected', 'os_hidden', 'owner', 'disk_format', 'container_format', 'min_disk', 'min_ram', 'tags'] as const;
const WRITABLE_BASE_SET: ReadonlySet<string> = new Set(WRITABLE_BASE);

export function patchDialect(mediaType: string): 'v2.0' | 'v2.1' {
  const dialect = PATCH_MEDIA_TYPES[mediaType];
  if (!dialect) throw glanceError(415, `The request media type ${mediaType || 'None'} is not supported by this server.`, { 'Accept-Patch': ACCEPT_PATCH });
  return dialect;
}

export function parsePatch(body: unknown, dialect: 'v2.0' | 'v2.1', schema: JsonSchema): PatchOperation[] {
  if (body === undefined) throw badRequest('Body expected in request.');
  if (!Array.isArray(body)) throw badRequest('Request body must be a JSON array of operation objects.');
  return body.map((raw) => {
    if (!isObject(raw)) throw badRequest('Operations must be JSON objects.');
    const op = dialect === 'v2.1' ? operationV21(raw) : operationV20(raw);
    const pointer = dialect === 'v2.1' ? pathV21(raw) : raw[op];
    const path = decodePointer(pointer);
    if (path.length !== depthOf(path[0], op)) throw badRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    const property = path[0];
    const operation: PatchOperation = { op, property, dialect, ...(path.length === 2 && { position: path[1] }) };
    if (op !== 'remove') {
      if (!Object.prototype.hasOwnProperty.call(raw, 'value')) throw badRequest(`Operation "${op}" requires a member named "value".`);
      operation.value = raw.value;
    }
    checkWritable(operation, schema);
    return operation;
  });
}

function operationV21(raw: Record<string, unknown>): PatchOp {
  const op = raw.op;
  if (op === undefined) throw badRequest(`Unable to find \`op\` in JSON Schema change. It must be one of the following: ${OPERATIONS.join(', ')}.`);
  if (!OPERATIONS.includes(op as PatchOp)) throw badRequest(`Invalid operation: \`${String(op)}\`. It must be one of the following: ${OPERATIONS.join(', ')}.`);
  return op as PatchOp;
}

function operationV20(raw: Record<string, unknown>): PatchOp {
  const present = OPERATIONS.filter((op) => Object.prototype.hasOwnProperty.call(raw, op));
  if (present.length > 1) throw badRequest('Operation objects must contain only one member named "add", "remove", or "replace".');
  if (present.length === 0) throw badRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
  return present[0];
}

function pathV21(raw: Record<string, unknown>): unknown {
  if (!Object.prototype.hasOwnProperty.call(raw, 'path')) throw badRequest("Unable to find 'path' in JSON Schema change");
  return raw.path;
}

/** Glance's restricted JSON pointer: leading '/', no empty or trailing segment, ~0 ~1 only. */
function decodePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string') throw badRequest(`Pointer \`${String(pointer)}\` does not start with "/".`);
  if (!pointer.startsWith('/')) throw badRequest(`Pointer \`${pointer}\` does not start with "/".`);
  if (/\/\s*?\//.test(pointer.slice(1))) throw badRequest(`Pointer \`${pointer}\` contains adjacent "/".`);
  if (pointer.length > 1 && pointer.endsWith('/')) throw badRequest(`Pointer \`${pointer}\` end with "/".`);
  if (/~[^01]/.test(pointer) || pointer.endsWith('~')) throw badRequest(`Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`);
  return pointer.slice(1).split('/').map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~').trim());
}

function checkWritable(operation: PatchOperation, schema: JsonSchema): void {
  const { property } = operation;
  if (READ_ONLY.has(property)) throw forbidden(`Attribute '${property}' is read-only.`);
  if (RESERVED.has(property) || property.startsWith(RESERVED_PREFIX)) throw forbidden(`Attribute '${property}' is reserved.`);
  if (operation.op === 'remove') return;
  if (property === 'locations') {
    // Glance checks `/locations/N` values as a one-item list.
    const list = operation.position === undefined ? operation.value : [operation.value];
    checkAgainstSchema(schema, { locations: list });
    if (Array.isArray(list)) list.forEach((item) => checkLocation(schema, item));
  } else {
    checkAgainstSchema(schema, { [property]: operation.value });
  }
}

/**
 * What Glance's schema says of a location beyond what checkAgainstSchema reads: url and
 * metadata required, and the write-only validation_data (md5 checksum, hash algorithm and
 * value, nothing else).
 */
function checkLocation(schema: JsonSchema, item: unknown): void {
  const refuse = (reason: string) => badRequest(`Provided object does not match schema '${String(schema.name)}': ${reason}`);
  if (!isObject(item)) return;
  for (const key of ['url', 'metadata']) if (!(key in item)) throw refuse(`'${key}' is a required property`);
  if (typeof item.url !== 'string') throw refuse(`${pyRepr(item.url)} is not of type 'string'`);
  if ([...item.url].length > 255) throw refuse(`${pyRepr(item.url)} is too long`);
  if (!isObject(item.metadata)) throw refuse(`${pyRepr(item.metadata)} is not of type 'object'`);
  if (!('validation_data' in item)) return;
  const data = item.validation_data;
  if (!isObject(data)) throw refuse(`${pyRepr(data)} is not of type 'object'`);
  for (const key of Object.keys(data)) {
    if (!VALIDATION_DATA_LIMITS[key]) throw refuse(`Additional properties are not allowed (${pyRepr(key)} was unexpected)`);
  }
  for (const key of ['os_hash_algo', 'os_hash_value']) if (!(key in data)) throw refuse(`'${key}' is a required property`);
  for (const [key, [min, max]] of Object.entries(VALIDATION_DATA_LIMITS)) {
    if (!(key in data)) continue;
    const value = data[key];
    if (typeof value !== 'string') throw refuse(`${pyRepr(value)} is not of type 'string'`);
    if ([...value].length > max) throw refuse(`${pyRepr(value)} is too long`);
    if ([...value].length < min) throw refuse(`${pyRepr(value)} is too short`);
  }
}

/** validation_data's string lengths in Glance's schema: [min, max]. */
const VALIDATION_DATA_LIMITS: Readonly<Record<string, [number, number]>> = {
  checksum: [32, 32],
  os_hash_algo: [0, 64],
  os_hash_value: [0, 128],
};

/** A location as the backend takes it, from a value checkLocation accepted. */
export function locationRequest(value: unknown, position?: number): AddLocationRequest {
  const item = value as { url: string; metadata: Record<string, unknown>; validation_data?: Record<string, string> };
  const data = item.validation_data;
  return {
    url: item.url,
    metadata: item.metadata,
    ...(data && { validationData: { checksum: data.checksum, os_hash_algo: data.os_hash_algo, os_hash_value: data.os_hash_value } }),
    ...(position !== undefined && { position }),
  };
}

/**
 * Glance's `_get_locations_op_pos`: `-` is the end (add) or the last one (remove, -1 here);
 * digits are a position; anything else is none (NaN: the backend answers LOCATION_INVALID).
 */
export function locationPosition(segment: string | undefined, op: 'add' | 'remove'): number | undefined {
  if (segment === '-' || segment === undefined) return op === 'add' ? undefined : -1;
  return /^\d+$/.test(segment) ? Number(segment) : Number.NaN;
}

/** What the image should become: base properties and extra properties as Glance shows them. */
export interface PatchedImage {
  base: Record<string, unknown>;
  extra: Record<string, string | null>;
}

export interface PatchContext {
  isAdmin: boolean;
}

/** Applies the operations in order, with Glance's 403/409 rules; the image is not written. */
export function applyPatch(image: GlanceImage, operations: readonly PatchOperation[], ctx: PatchContext): PatchedImage {
  const base: Record<string, unknown> = Object.fromEntries(WRITABLE_BASE.map((k) => [k, image[k]]));
  const extra: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(image)) {
    if (!WRITABLE_BASE_SET.has(key) && !READ_ONLY.has(key) && key !== 'stores' && typeof value === 'string') extra[key] = value;
  }
  for (const { op, property, value, dialect } of operations) {
    // Locations are changed through the backend's location calls (see images.ts).
    if (property === 'locations') continue;
    const isBase = WRITABLE_BASE_SET.has(property);
    const exists = isBase || Object.prototype.hasOwnProperty.call(extra, property);
    // Glance's domain setters refuse any write of these (even of the same value) once the
    // image has left queued/importing.
    if (op !== 'remove' && (property === 'disk_format' || property === 'container_format') && image.status !== 'queued' && image.status !== 'importing') {
      throw forbidden(`Attribute ${property} can be only replaced for a queued image.`);
    }
    switch (op) {
      case 'replace':
        if (property === 'owner' && !ctx.isAdmin) throw asDetail(403, "Owner can't be updated by non admin.");
        if (!exists) throw asDetail(409, `Property ${property} does not exist.`);
        break;
      case 'add':
        if (exists && dialect === 'v2.0') throw asDetail(409, `Property ${property} already present.`);
        if (property === 'owner' && !ctx.isAdmin && value !== base.owner) throw forbidden("Owner can't be updated by non admin.");
        break;
      case 'remove':
        if (isBase) throw asDetail(403, `Property ${property} may not be removed.`);
        if (!exists) throw asDetail(409, `Property ${property} does not exist.`);
        delete extra[property];
        continue;
    }
    if (isBase) base[property] = property === 'tags' ? [...new Set(value as string[])] : value;
    else extra[property] = value as string | null;
  }
  return { base, extra };
}

/** The difference between the image and its patched form, as one backend change. */
export function patchToChange(image: GlanceImage, patched: PatchedImage): { change: UpdateRequest; visibility?: Visibility } {
  const change: UpdateRequest = {};
  const { base, extra } = patched;
  if (base.name !== image.name) change.name = (base.name as string | null) ?? '';
  if (base.owner !== image.owner && typeof base.owner === 'string') change.owner = base.owner;
  const fields: Record<string, unknown> = {};
  for (const key of ['disk_format', 'container_format', 'min_disk', 'min_ram', 'protected', 'os_hidden']) {
    if (base[key] !== image[key]) fields[key] = base[key];
  }
  if (Object.keys(fields).length > 0) change.fields = fields;
  const tagsBefore = new Set(image.tags as string[]);
  const tagsAfter = base.tags as string[];
  if (tagsAfter.length !== tagsBefore.size || tagsAfter.some((t) => !tagsBefore.has(t))) change.setTags = tagsAfter;

  const setProperties: Record<string, string> = {};
  const unsetProperties: string[] = [];
  for (const [key, value] of Object.entries(extra)) {
    // kernel_id / ramdisk_id may be null in Glance's schema; Vitrine keeps no null properties.
    if (value === null) {
      if (typeof image[key] === 'string') unsetProperties.push(key);
    } else if (image[key] !== value) {
      setProperties[key] = value;
    }
  }
  for (const key of Object.keys(image)) {
    if (typeof image[key] === 'string' && !Object.prototype.hasOwnProperty.call(extra, key) && isExtraKey(key)) unsetProperties.push(key);
  }
  if (Object.keys(setProperties).length > 0) change.setProperties = setProperties;
  if (unsetProperties.length > 0) change.unsetProperties = unsetProperties;
  const visibility = base.visibility !== image.visibility ? (base.visibility as Visibility) : undefined;
  return { change, visibility };
}

function isExtraKey(key: string): boolean {
  return !WRITABLE_BASE_SET.has(key) && !READ_ONLY.has(key) && key !== 'stores';
}

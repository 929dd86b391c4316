import type { UpdateRequest } from '../../backends/port';
import type { Visibility } from '../../domain/artifact';
import { asDetail, badRequest, conflict, forbidden, glanceError } from './errors';
import { isObject } from './body';
import type { GlanceImage } from '../../domain/glance-image';
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
  /** The property the operation names (depth 1: Glance's only allowed depth). */
  property: string;
  value?: unknown;
  dialect: 'v2.0' | 'v2.1';
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
    // Depth 1 everywhere; locations would allow /locations/N, but the facade has none.
    if (path.length !== 1) throw badRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    const property = path[0];
    const operation: PatchOperation = { op, property, dialect };
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
  if (operation.op !== 'remove') checkAgainstSchema(schema, { [property]: operation.value });
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
    if (property === 'locations') throw forbidden("It's not allowed to update locations if locations are invisible.");
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

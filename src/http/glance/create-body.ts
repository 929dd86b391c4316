import type { CreateRequest } from '../../backends/port';
import type { Visibility } from '../../domain/artifact';
import { asDetail, badRequest, forbidden } from './errors';
import { isObject } from './body';
import { IMAGE_TYPE } from '../../domain/glance-image';
import { checkAgainstSchema } from './schema-check';
import type { JsonSchema } from './schemas';

/**
 * `POST /v2/images` bodies, checked in Glance's order (images.py RequestDeserializer.create,
 * then ImageFactory.new_image): keys clients may never send (403), the schema (400),
 * reserved extra properties (403), then read-only base properties (403). Base keys become
 * the record's own fields; every other key is an extra property with a string value.
 */
const DISALLOWED = ['direct_url', 'self', 'file', 'schema', 'stores', 'locations'];
const READ_ONLY_BASE = ['status', 'checksum', 'size', 'virtual_size', 'created_at', 'updated_at', 'os_hash_algo', 'os_hash_value'];
const RESERVED = new Set(['location', 'deleted', 'deleted_at']);
const FIELD_KEYS = ['disk_format', 'container_format', 'min_disk', 'min_ram', 'protected', 'os_hidden'] as const;
const BASE_KEYS = new Set<string>(['id', 'name', 'visibility', 'owner', 'tags', ...FIELD_KEYS, ...READ_ONLY_BASE]);

export function parseCreateBody(body: unknown, schema: JsonSchema): CreateRequest {
  // No body at all creates an image with every default (tempest does this).
  const image = body === undefined ? {} : body;
  if (!isObject(image)) throw badRequest(`Provided object does not match schema 'image': ${JSON.stringify(image)} is not of type 'object'`);
  for (const key of DISALLOWED) {
    if (key in image) throw forbidden(`Attribute '${key}' is read-only.`);
  }
  checkAgainstSchema(schema, image);
  for (const key of Object.keys(image)) {
    if (BASE_KEYS.has(key)) continue;
    if (key.length > 255) throw badRequest('Custom property should not be greater than 255 characters.');
    if (RESERVED.has(key) || key.startsWith('os_glance')) throw asDetail(403, `Attribute '${key}' is reserved.`);
  }
  for (const key of READ_ONLY_BASE) {
    if (key in image) throw forbidden(`Attribute '${key}' is read-only.`);
  }

  const fields: Record<string, unknown> = {};
  for (const key of FIELD_KEYS) {
    if (image[key] !== undefined) fields[key] = image[key];
  }
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(image)) {
    // kernel_id / ramdisk_id may be null in the schema: Vitrine keeps no null properties.
    if (!BASE_KEYS.has(key) && typeof value === 'string') properties[key] = value;
  }
  const request: CreateRequest = {
    typeName: IMAGE_TYPE,
    name: typeof image.name === 'string' ? image.name : '',
    tags: Array.isArray(image.tags) ? (image.tags as string[]) : [],
    properties,
    fields,
  };
  if (typeof image.id === 'string') request.id = image.id;
  if (typeof image.visibility === 'string') request.visibility = image.visibility as Visibility;
  // owner: null means "no particular owner" in Glance; Vitrine always has one, the caller's.
  if (typeof image.owner === 'string') request.owner = image.owner;
  return request;
}

import type { ArtifactTypeDef } from '../../domain/types';
import { IMAGE_STATUSES, MEMBER_STATUSES, VISIBILITIES } from '../../domain/artifact';
import { METADEF_SCHEMAS, type MetadefSchemas } from '../../domain/metadefs';

/**
 * The JSON schemas Glance serves under /v2/schemas. They are load-bearing: glanceclient
 * builds warlock models from `image` and validates create responses and pre-update GETs
 * against it; Nova splits base fields from properties with `is_base`; Nova picks the
 * snapshot disk format from the `disk_format` enum. Texts and shapes follow Glance 25.1
 * (`glance/api/v2/images.py` get_base_properties, `etc/schema-image.json`), with the
 * format enums taken from the `images` type so the facade accepts exactly what it stores.
 */
export type JsonSchema = Record<string, unknown>;

const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';

// Glance lists statuses in this order; keep it (clients print the enum in errors).
const GLANCE_STATUS_ORDER = ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'];

function allowedValues(type: ArtifactTypeDef, field: string): (string | null)[] {
  const values = type.fields.find((f) => f.name === field)?.allowedValues ?? [];
  return [null, ...values.map(String)];
}

function baseProperties(type: ArtifactTypeDef): Record<string, JsonSchema> {
  return {
    id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    name: { type: ['null', 'string'], description: 'Descriptive name for the image', maxLength: 255 },
    status: { type: 'string', readOnly: true, description: 'Status of the image', enum: GLANCE_STATUS_ORDER.filter((s) => (IMAGE_STATUSES as readonly string[]).includes(s)) },
    visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'].filter((v) => (VISIBILITIES as readonly string[]).includes(v)) },
    protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
    os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
    checksum: { type: ['null', 'string'], readOnly: true, description: 'md5 hash of image contents.', maxLength: 32 },
    os_hash_algo: { type: ['null', 'string'], readOnly: true, description: 'Algorithm to calculate the os_hash_value', maxLength: 64 },
    os_hash_value: { type: ['null', 'string'], readOnly: true, description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo', maxLength: 128 },
    owner: { type: ['null', 'string'], description: 'Owner of the image', maxLength: 255 },
    size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
    virtual_size: { type: ['null', 'integer'], readOnly: true, description: 'Virtual size of image in bytes' },
    container_format: { type: ['null', 'string'], description: 'Format of the container', enum: allowedValues(type, 'container_format') },
    disk_format: { type: ['null', 'string'], description: 'Format of the disk', enum: allowedValues(type, 'disk_format') },
    created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
    updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
    tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
    direct_url: { type: 'string', readOnly: true, description: 'URL to access the image file kept in external store' },
    min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
    min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
    self: { type: 'string', readOnly: true, description: 'An image self url' },
    file: { type: 'string', readOnly: true, description: 'An image file url' },
    stores: { type: 'string', readOnly: true, description: 'Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.' },
    schema: { type: 'string', readOnly: true, description: 'An image schema url' },
    locations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          url: { type: 'string', maxLength: 255 },
          metadata: { type: 'object' },
          // Write-only: accepted on PATCH (see patch.ts checkLocation), never shown.
          validation_data: {
            description: "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
            type: 'object',
            writeOnly: true,
            additionalProperties: false,
            properties: {
              checksum: { type: 'string', minLength: 32, maxLength: 32 },
              os_hash_algo: { type: 'string', maxLength: 64 },
              os_hash_value: { type: 'string', maxLength: 128 },
            },
            required: ['os_hash_algo', 'os_hash_value'],
          },
        },
        required: ['url', 'metadata'],
      },
      description: 'A set of URLs to access the image file kept in external store',
    },
  };
}

/** Glance's etc/schema-image.json as Debian ships it; merged in with is_base: false. */
const CUSTOM_PROPERTIES: Record<string, JsonSchema> = {
  kernel_id: { type: ['null', 'string'], pattern: UUID_PATTERN, description: 'ID of the kernel image of an AMI-style image.' },
  ramdisk_id: { type: ['null', 'string'], pattern: UUID_PATTERN, description: 'ID of the ramdisk image of an AMI-style image.' },
  instance_uuid: { type: 'string', description: 'Instance this image is associated with (informational).' },
  architecture: { type: 'string', description: 'Operating system architecture.' },
  os_distro: { type: 'string', description: 'Common name of the operating system distribution.' },
  os_version: { type: 'string', description: 'Operating system version.' },
  description: { type: 'string', description: 'A human-readable description of the image.' },
};

export const IMAGE_LINKS = [
  { rel: 'self', href: '{self}' },
  { rel: 'enclosure', href: '{file}' },
  { rel: 'describedby', href: '{schema}' },
];

const MEMBER_PROPERTIES: Record<string, JsonSchema> = {
  member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
  image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
  created_at: { type: 'string', description: 'Date and time of image member creation' },
  updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
  status: { type: 'string', description: 'The status of this image member', enum: [...MEMBER_STATUSES] },
  schema: { readOnly: true, type: 'string' },
};

/** Glance's task schema (api/v2/tasks.py): its keys, types and enums; Vitrine's descriptions. */
const TASK_PROPERTIES: Record<string, JsonSchema> = {
  id: { description: 'The task id (a UUID)', pattern: UUID_PATTERN, type: 'string' },
  type: { description: 'What kind of job this is', enum: ['import', 'api_image_import'], type: 'string' },
  status: { description: 'Where the job stands', enum: ['pending', 'processing', 'success', 'failure'], type: 'string' },
  input: { description: 'What the job was asked to do', type: ['null', 'object'] },
  result: { description: 'What the job produced', type: ['null', 'object'] },
  owner: { description: 'The project the job belongs to', type: 'string' },
  message: { description: 'Progress, or why the job failed', type: 'string' },
  image_id: { description: 'The image the job works on', type: 'string' },
  request_id: { description: 'The request that started the job', type: 'string' },
  user_id: { description: 'The user who started the job', type: 'string' },
  expires_at: { description: 'When the finished job stops being listed', type: ['null', 'string'] },
  created_at: { description: 'When the job was created', type: 'string' },
  updated_at: { description: 'When the job last changed', type: 'string' },
  self: { readOnly: true, type: 'string' },
  schema: { readOnly: true, type: 'string' },
};

/** The list shows stubs: no input, result or message. */
const TASK_STUB_PROPERTIES = Object.fromEntries(Object.entries(TASK_PROPERTIES).filter(([key]) => !['input', 'result', 'message'].includes(key)));

export interface GlanceSchemas {
  image: JsonSchema;
  images: JsonSchema;
  member: JsonSchema;
  members: JsonSchema;
  task: JsonSchema;
  tasks: JsonSchema;
  /** /v2/schemas/metadefs/*: the very documents the metadef catalog validates bodies with. */
  metadefs: Readonly<MetadefSchemas>;
}

/** Built once per facade: Nova fetches /v2/schemas/image for every client it makes. */
export function buildSchemas(imageType: ArtifactTypeDef): GlanceSchemas {
  const customProperties = Object.fromEntries(Object.entries(CUSTOM_PROPERTIES).map(([k, v]) => [k, { ...v, is_base: false }]));
  const image = {
    name: 'image',
    properties: { ...baseProperties(imageType), ...customProperties },
    additionalProperties: { type: 'string' },
    links: IMAGE_LINKS,
  };
  const member = { name: 'member', properties: MEMBER_PROPERTIES };
  return {
    image,
    images: {
      name: 'images',
      properties: { images: { type: 'array', items: image }, first: { type: 'string' }, next: { type: 'string' }, schema: { type: 'string' } },
      links: [{ rel: 'first', href: '{first}' }, { rel: 'next', href: '{next}' }, { rel: 'describedby', href: '{schema}' }],
    },
    // Served in minimal form (no links, no additionalProperties), as Glance does.
    member,
    members: {
      name: 'members',
      properties: { members: { type: 'array', items: member }, schema: { type: 'string' } },
      links: [{ rel: 'describedby', href: '{schema}' }],
    },
    task: { name: 'task', properties: TASK_PROPERTIES },
    tasks: {
      name: 'tasks',
      properties: { tasks: { type: 'array', items: { name: 'task', properties: TASK_STUB_PROPERTIES } }, schema: { type: 'string' } },
      links: [{ rel: 'describedby', href: '{schema}' }],
    },
    metadefs: METADEF_SCHEMAS,
  };
}

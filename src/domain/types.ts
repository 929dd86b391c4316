import { fail } from './errors';
import type { FieldValue, Scalar, Status } from './artifact';

/**
 * Artifact types are data. Each type declares typed fields with Glare's flags (system,
 * mutable, required on activation, sortable, filter operators) plus validators; the GraphQL
 * schema, the validation of writes and the filters are all derived from these declarations.
 */
export type ScalarKind = 'string' | 'integer' | 'float' | 'boolean';
export type FieldKind = ScalarKind | 'blob' | 'blobDict';
export type Container = 'none' | 'list' | 'dict';
export type FilterOp = 'eq' | 'neq' | 'in' | 'like' | 'gt' | 'gte' | 'lt' | 'lte';
export type Lifecycle = 'image' | 'artifact';

export interface FieldDef {
  name: string;
  kind: FieldKind;
  container: Container;
  description: string;
  /** Set by the server only. */
  system: boolean;
  /** May change after activation (Glare). Drafts and queued images are always editable. */
  mutable: boolean;
  /** If set, the statuses in which the field may change (overrides `mutable`). */
  editableIn?: readonly Status[];
  requiredOnActivate: boolean;
  nullable: boolean;
  default: FieldValue;
  sortable: boolean;
  filterOps: readonly FilterOp[];
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  allowedValues?: readonly Scalar[];
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  /** Blobs: largest accepted upload for one blob or folder entry, in bytes. */
  maxBlobSize?: number;
  /** Blob dictionaries: largest total of all entries, in bytes. */
  maxFolderSize?: number;
}

export interface LinkDef {
  name: string;
  many: boolean;
  mutable: boolean;
  description: string;
}

export interface ArtifactTypeDef {
  /** Glare-style name used in APIs and storage, e.g. heat_templates. */
  name: string;
  /** GraphQL object type name, e.g. HeatTemplate. */
  graphqlName: string;
  displayName: string;
  lifecycle: Lifecycle;
  /** Whether (type, owner, name, version) must be unique. Glance images allow duplicates. */
  uniqueVersions: boolean;
  fields: readonly FieldDef[];
  links: readonly LinkDef[];
  /** Built into Vitrine, as opposed to declared by the operator. */
  builtin: boolean;
}

export const ALLOWED_OPS: Record<ScalarKind, readonly FilterOp[]> = {
  string: ['eq', 'neq', 'in', 'like'],
  integer: ['eq', 'neq', 'in', 'gt', 'gte', 'lt', 'lte'],
  float: ['eq', 'neq', 'in', 'gt', 'gte', 'lt', 'lte'],
  boolean: ['eq', 'neq'],
};

export const DEFAULT_MAX_BLOB_SIZE = 10 * 1024 * 1024;
export const DEFAULT_MAX_FOLDER_SIZE = 2_673_868_800;
export const MAX_STRING_LENGTH = 255;

export type FieldSpec = Partial<Omit<FieldDef, 'name' | 'kind'>> & { kind: FieldKind };

/** Fills Glare's defaults for a field declaration and checks it is coherent. */
export function defineField(name: string, spec: FieldSpec): FieldDef {
  const container = spec.container ?? 'none';
  const isBlob = spec.kind === 'blob' || spec.kind === 'blobDict';
  const scalar = isBlob ? undefined : (spec.kind as ScalarKind);
  const field: FieldDef = {
    name,
    kind: spec.kind,
    container: isBlob ? 'none' : container,
    description: spec.description ?? '',
    system: spec.system ?? false,
    mutable: spec.mutable ?? false,
    editableIn: spec.editableIn,
    requiredOnActivate: spec.requiredOnActivate ?? !isBlob,
    nullable: spec.nullable ?? true,
    default: spec.default ?? (container === 'list' ? [] : container === 'dict' ? {} : null),
    sortable: spec.sortable ?? false,
    filterOps: spec.filterOps ?? (scalar ? (scalar === 'string' ? ['eq', 'neq', 'in'] : ALLOWED_OPS[scalar]) : []),
    maxLength: spec.maxLength ?? (scalar === 'string' && !spec.allowedValues ? MAX_STRING_LENGTH : undefined),
    minLength: spec.minLength,
    pattern: spec.pattern,
    allowedValues: spec.allowedValues,
    minimum: spec.minimum,
    maximum: spec.maximum,
    maxItems: spec.maxItems ?? (container !== 'none' ? 255 : undefined),
    maxBlobSize: isBlob ? spec.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE : undefined,
    maxFolderSize: spec.kind === 'blobDict' ? spec.maxFolderSize ?? DEFAULT_MAX_FOLDER_SIZE : undefined,
  };
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(name)) fail('CONFIG_INVALID', `field name ${JSON.stringify(name)} must match [a-z][a-z0-9_]* (at most 64 characters)`);
  if (field.sortable && (container !== 'none' || isBlob)) fail('CONFIG_INVALID', `field ${name}: only scalar fields can be sortable`);
  if (field.sortable && scalar === 'string' && (field.maxLength ?? 0) > MAX_STRING_LENGTH) {
    fail('CONFIG_INVALID', `field ${name}: a sortable string must have maxLength ≤ ${MAX_STRING_LENGTH}`);
  }
  const allowed = scalar ? ALLOWED_OPS[scalar] : [];
  const bad = field.filterOps.filter((op) => !allowed.includes(op));
  if (bad.length) fail('CONFIG_INVALID', `field ${name}: filter operators ${bad.join(', ')} are not allowed for ${spec.kind} (allowed: ${allowed.join(', ') || 'none'})`);
  if (field.default !== null && !isBlob) validateFieldValue(field, field.default, 'CONFIG_INVALID');
  return Object.freeze(field);
}

/** Checks a value against a field's declaration; returns it normalised (e.g. "yes" → true). */
export function validateFieldValue(field: FieldDef, value: unknown, code: 'FIELD_INVALID' | 'CONFIG_INVALID' = 'FIELD_INVALID'): FieldValue {
  const where = `field ${field.name}`;
  if (value === null || value === undefined) {
    if (!field.nullable) fail(code, `${where} cannot be null`);
    return null;
  }
  if (field.kind === 'blob' || field.kind === 'blobDict') fail(code, `${where} is a blob: upload its bytes through the data plane`);
  const kind = field.kind as ScalarKind;
  if (field.container === 'list') {
    if (!Array.isArray(value)) fail(code, `${where} expects a list of ${kind}, got ${describe(value)}`);
    if (field.maxItems !== undefined && value.length > field.maxItems) fail(code, `${where} accepts at most ${field.maxItems} items, got ${value.length}`);
    return value.map((item, i) => checkScalar(field, kind, item, `${where}[${i}]`, code));
  }
  if (field.container === 'dict') {
    if (typeof value !== 'object' || Array.isArray(value)) fail(code, `${where} expects an object of ${kind} values, got ${describe(value)}`);
    const entries = Object.entries(value as Record<string, unknown>);
    if (field.maxItems !== undefined && entries.length > field.maxItems) fail(code, `${where} accepts at most ${field.maxItems} keys, got ${entries.length}`);
    const out: Record<string, Scalar> = {};
    for (const [k, item] of entries) {
      if (k.length < 1 || k.length > MAX_STRING_LENGTH) fail(code, `${where}: keys must be 1 to ${MAX_STRING_LENGTH} characters`);
      out[k] = checkScalar(field, kind, item, `${where}.${k}`, code);
    }
    return out;
  }
  return checkScalar(field, kind, value, where, code);
}

function checkScalar(field: FieldDef, kind: ScalarKind, value: unknown, where: string, code: 'FIELD_INVALID' | 'CONFIG_INVALID'): Scalar {
  let v: Scalar;
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') fail(code, `${where} expects a string, got ${describe(value)}`);
      v = value;
      if (field.maxLength !== undefined && v.length > field.maxLength) fail(code, `${where} is longer than ${field.maxLength} characters`);
      if (field.minLength !== undefined && v.length < field.minLength) fail(code, `${where} is shorter than ${field.minLength} characters`);
      if (field.pattern !== undefined && !new RegExp(field.pattern).test(v)) fail(code, `${where} does not match ${field.pattern}`);
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(code, `${where} expects an integer, got ${describe(value)}`);
      v = value;
      break;
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(code, `${where} expects a number, got ${describe(value)}`);
      v = value;
      break;
    case 'boolean':
      v = coerceBoolean(value, where, code);
      break;
  }
  if (typeof v === 'number') {
    if (field.minimum !== undefined && v < field.minimum) fail(code, `${where} must be at least ${field.minimum}, got ${v}`);
    if (field.maximum !== undefined && v > field.maximum) fail(code, `${where} must be at most ${field.maximum}, got ${v}`);
  }
  if (field.allowedValues && !field.allowedValues.includes(v)) {
    fail(code, `${where} must be one of ${field.allowedValues.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Glare's flexible booleans: true/false and the usual spellings of them. */
function coerceBoolean(value: unknown, where: string, code: 'FIELD_INVALID' | 'CONFIG_INVALID'): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const s = value.toLowerCase();
    if (['true', 'yes', 'on', '1', 't', 'y'].includes(s)) return true;
    if (['false', 'no', 'off', '0', 'f', 'n'].includes(s)) return false;
  }
  return fail(code, `${where} expects a boolean, got ${describe(value)}`);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

export function findField(type: ArtifactTypeDef, name: string): FieldDef | undefined {
  return type.fields.find((f) => f.name === name);
}

export function requireField(type: ArtifactTypeDef, name: string): FieldDef {
  return findField(type, name) ?? fail('FIELD_UNKNOWN', `type ${type.name} has no field ${JSON.stringify(name)} (fields: ${type.fields.map((f) => f.name).join(', ')})`);
}

export function isBlobField(field: FieldDef): boolean {
  return field.kind === 'blob' || field.kind === 'blobDict';
}

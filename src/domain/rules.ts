import type { ArtifactRecord, FieldValue, Status, Visibility } from './artifact';
import { VISIBILITIES } from './artifact';
import { BASE_FIELD_NAMES } from './builtin-types';
import { fail } from './errors';
import { EDITABLE_STATUSES, FROZEN_UNLESS_MUTABLE } from './lifecycle';
import { canonicalVersion } from './semver';
import { describe, isBlobField, requireField, validateFieldValue, type ArtifactTypeDef, type FieldDef } from './types';
import { resolveField } from './filters';

/**
 * What a create or an update may contain, and what it turns an artifact into. Pure: the
 * backend loads, calls these, and writes the result with a revision check.
 */
export const LIMITS = {
  nameLength: 255,
  tagLength: 255,
  tagsPerArtifact: 128,
  propertyKeyLength: 255,
  propertyValueLength: 65535,
  propertiesPerArtifact: 128,
  membersPerArtifact: 128,
} as const;

const RESERVED_PROPERTY_PREFIX = 'os_glance';

export function validateName(type: ArtifactTypeDef, name: unknown): string {
  if (typeof name !== 'string') fail('FIELD_INVALID', `name expects a string, got ${describe(name)}`);
  if (name.length > LIMITS.nameLength) fail('FIELD_INVALID', `name is longer than ${LIMITS.nameLength} characters`);
  if (type.lifecycle === 'artifact' && name.trim() === '') fail('FIELD_INVALID', 'name must not be empty');
  return name;
}

export function validateTag(tag: unknown): string {
  if (typeof tag !== 'string') fail('FIELD_INVALID', `a tag must be a string, got ${describe(tag)}`);
  if (tag.length < 1 || tag.length > LIMITS.tagLength) fail('FIELD_INVALID', `tags must be 1 to ${LIMITS.tagLength} characters`);
  if (/[,/]/.test(tag)) fail('FIELD_INVALID', `tag ${JSON.stringify(tag.slice(0, 40))} may not contain "," or "/"`);
  return tag;
}

/** Tags are a set: duplicates collapse, order of first appearance is kept. */
export function normalizeTags(tags: readonly unknown[]): string[] {
  const out = [...new Set(tags.map(validateTag))];
  if (out.length > LIMITS.tagsPerArtifact) fail('QUOTA_EXCEEDED', `at most ${LIMITS.tagsPerArtifact} tags per artifact`);
  return out;
}

export function validatePropertyKey(type: ArtifactTypeDef, key: string): string {
  if (key.length < 1 || key.length > LIMITS.propertyKeyLength) fail('FIELD_INVALID', `property names must be 1 to ${LIMITS.propertyKeyLength} characters`);
  if (key.startsWith(RESERVED_PROPERTY_PREFIX)) fail('PROPERTY_RESERVED', `property ${JSON.stringify(key)} is reserved (os_glance* belongs to the server)`);
  if ((BASE_FIELD_NAMES as readonly string[]).includes(key) || resolveField(type, key)) {
    fail('FIELD_INVALID', `property ${JSON.stringify(key)} has the name of a field of ${type.name}; set the field instead`);
  }
  return key;
}

export function mergeProperties(type: ArtifactTypeDef, current: Record<string, string>, set: Record<string, unknown> = {}, unset: readonly string[] = []): Record<string, string> {
  const out = { ...current };
  for (const key of unset) {
    validatePropertyKey(type, key);
    delete out[key];
  }
  for (const [key, value] of Object.entries(set)) {
    validatePropertyKey(type, key);
    if (typeof value !== 'string') fail('FIELD_INVALID', `property ${key} expects a string value, got ${describe(value)}`);
    if (value.length > LIMITS.propertyValueLength) fail('FIELD_INVALID', `property ${key} is longer than ${LIMITS.propertyValueLength} characters`);
    out[key] = value;
  }
  if (Object.keys(out).length > LIMITS.propertiesPerArtifact) fail('QUOTA_EXCEEDED', `at most ${LIMITS.propertiesPerArtifact} properties per artifact`);
  return out;
}

export function validateVisibility(v: unknown): Visibility {
  if (!VISIBILITIES.includes(v as Visibility)) fail('FIELD_INVALID', `visibility must be one of ${VISIBILITIES.join(', ')}, got ${describe(v)}`);
  return v as Visibility;
}

/** Typed field values for a new artifact: given ones validated, others defaulted. */
export function initialFields(type: ArtifactTypeDef, given: Record<string, unknown> = {}): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const key of Object.keys(given)) {
    const field = requireField(type, resolveField(type, key)?.name ?? key);
    if (field.system) fail('FIELD_READ_ONLY', `field ${field.name} is set by the server`);
  }
  for (const field of type.fields) {
    if (isBlobField(field)) continue;
    const raw = pick(type, given, field);
    out[field.name] = raw === undefined ? field.default : validateFieldValue(field, raw);
  }
  return out;
}

function pick(type: ArtifactTypeDef, given: Record<string, unknown>, field: FieldDef): unknown {
  for (const [key, value] of Object.entries(given)) {
    if (resolveField(type, key) === field) return value;
  }
  return undefined;
}

/** FIELD_IMMUTABLE unless `field` (or a base attribute when undefined) may change in `status`. */
export function assertEditable(type: ArtifactTypeDef, status: Status, what: string, field?: Pick<FieldDef, 'mutable' | 'editableIn'>): void {
  if (!EDITABLE_STATUSES[type.lifecycle].includes(status)) fail('FIELD_IMMUTABLE', `${type.name} in status ${status} cannot be edited`);
  if (field?.editableIn) {
    if (!field.editableIn.includes(status)) fail('FIELD_IMMUTABLE', `${what} can only change while ${field.editableIn.join(' or ')}`);
    return;
  }
  const mutable = field?.mutable ?? false;
  if (!mutable && FROZEN_UNLESS_MUTABLE[type.lifecycle].includes(status)) {
    fail('FIELD_IMMUTABLE', `${what} cannot change once the artifact is ${status}`);
  }
}

export interface Change {
  name?: unknown;
  version?: unknown;
  owner?: string;
  fields?: Record<string, unknown>;
  unsetFields?: string[];
  setTags?: unknown[];
  addTags?: unknown[];
  removeTags?: unknown[];
  setProperties?: Record<string, unknown>;
  unsetProperties?: string[];
}

/** The record after `change`, or the same object when nothing effectively changes. */
export function applyChange(type: ArtifactTypeDef, current: ArtifactRecord, change: Change): ArtifactRecord {
  const next: ArtifactRecord = { ...current, fields: { ...current.fields }, properties: { ...current.properties }, tags: [...current.tags] };
  const status = current.status;
  // Base name and version follow Glare: frozen after activation, except for images.
  const baseMutable = { mutable: type.lifecycle === 'image' };

  if (change.name !== undefined) {
    const name = validateName(type, change.name);
    if (name !== current.name) {
      assertEditable(type, status, 'name', baseMutable);
      next.name = name;
    }
  }
  if (change.version !== undefined) {
    if (typeof change.version !== 'string') fail('VERSION_INVALID', `version expects a string, got ${describe(change.version)}`);
    const version = canonicalVersion(change.version);
    if (version !== current.version) {
      assertEditable(type, status, 'version', baseMutable);
      next.version = version;
    }
  }
  if (change.owner !== undefined && change.owner !== current.owner) {
    if (change.owner.length < 1 || change.owner.length > 255) fail('FIELD_INVALID', 'owner must be 1 to 255 characters');
    assertEditable(type, status, 'owner', { mutable: true });
    next.owner = change.owner;
  }
  for (const [key, raw] of Object.entries(change.fields ?? {})) {
    setField(type, next, key, raw);
  }
  for (const key of change.unsetFields ?? []) {
    const field = resolveField(type, key) ?? requireField(type, key);
    setField(type, next, field.name, field.default);
  }
  const tagsBefore = JSON.stringify(current.tags);
  if (change.setTags !== undefined) next.tags = normalizeTags(change.setTags);
  if (change.addTags !== undefined) next.tags = normalizeTags([...next.tags, ...change.addTags]);
  if (change.removeTags !== undefined) {
    const drop = new Set(change.removeTags.map(validateTag));
    next.tags = next.tags.filter((t) => !drop.has(t));
  }
  if (JSON.stringify(next.tags) !== tagsBefore) assertEditable(type, status, 'tags', { mutable: true });
  if (change.setProperties !== undefined || change.unsetProperties !== undefined) {
    next.properties = mergeProperties(type, next.properties, change.setProperties, change.unsetProperties);
    if (JSON.stringify(next.properties) !== JSON.stringify(current.properties)) assertEditable(type, status, 'properties', { mutable: true });
  }
  return sameContent(current, next) ? current : next;
}

function setField(type: ArtifactTypeDef, next: ArtifactRecord, key: string, raw: unknown): void {
  const field = resolveField(type, key) ?? requireField(type, key);
  if (field.system) fail('FIELD_READ_ONLY', `field ${field.name} is set by the server`);
  if (isBlobField(field)) fail('FIELD_INVALID', `field ${field.name} is a blob: upload its bytes through the data plane`);
  const value = validateFieldValue(field, raw);
  if (JSON.stringify(value) === JSON.stringify(next.fields[field.name] ?? null)) return;
  assertEditable(type, next.status, `field ${field.name}`, field);
  next.fields[field.name] = value;
}

function sameContent(a: ArtifactRecord, b: ArtifactRecord): boolean {
  return a.name === b.name && a.version === b.version && a.owner === b.owner
    && JSON.stringify(a.fields) === JSON.stringify(b.fields)
    && JSON.stringify(a.tags) === JSON.stringify(b.tags)
    && JSON.stringify(sortKeys(a.properties)) === JSON.stringify(sortKeys(b.properties));
}

function sortKeys(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/** Fields required on activation that are still unset (scalars only; blobs are checked by the backend). */
export function missingOnActivate(type: ArtifactTypeDef, record: ArtifactRecord): string[] {
  return type.fields
    .filter((f) => f.requiredOnActivate && !isBlobField(f) && f.container === 'none')
    .filter((f) => record.fields[f.name] === null || record.fields[f.name] === undefined)
    .map((f) => f.name);
}

import type { ArtifactRecord } from '../../domain/artifact';
import { fail } from '../../domain/errors';
import { resolveField } from '../../domain/filters';
import { IMAGE_FIELDS } from '../../domain/glance-image';
import { parseId } from '../../domain/ids';
import { applyChange, initialFields, mergeProperties, normalizeTags, validateName, validateVisibility } from '../../domain/rules';
import { canonicalVersion } from '../../domain/semver';
import type { ArtifactTypeDef } from '../../domain/types';
import type { CreateRequest, UpdateRequest } from '../port';

/**
 * Vitrine's create and update requests as Glance bodies. Validation is the domain's (the
 * same rules and codes as the native backend), so a mistake is refused before Glance sees
 * it; Glance then applies its own policy and schema on top.
 */
export const JSON_PATCH = 'application/openstack-images-v2.1-json-patch';

export type PatchOp = { op: 'add' | 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

/** The body of `POST /v2/images`: base properties, the fields the caller gave, extra properties. */
export function createBody(type: ArtifactTypeDef, request: CreateRequest): Record<string, unknown> {
  noVersion(request.version);
  const fields = initialFields(type, request.fields);
  const body: Record<string, unknown> = { ...mergeProperties(type, {}, request.properties ?? {}) };
  for (const key of Object.keys(request.fields ?? {})) {
    const name = resolveField(type, key)!.name;
    if (name === 'image') fail('FIELD_INVALID', 'field image is a blob: upload its bytes through the data plane');
    body[name] = fields[name];
  }
  body.name = validateName(type, request.name);
  if (request.id !== undefined) body.id = parseId(request.id);
  if (request.visibility !== undefined) body.visibility = validateVisibility(request.visibility);
  if (request.owner !== undefined) body.owner = request.owner;
  if (request.tags !== undefined) body.tags = normalizeTags(request.tags);
  return body;
}

/**
 * The JSON patch turning `current` into what `change` asks for: only what differs, tags
 * as one replacement (Glance has no `/tags/-`), removals only of properties that exist
 * (Glance answers 409 for the others).
 */
export function patchFor(type: ArtifactTypeDef, current: ArtifactRecord, change: UpdateRequest): PatchOp[] {
  noVersion(change.version);
  const next = applyChange(type, current, change);
  if (next === current) return [];
  const ops: PatchOp[] = [];
  if (next.name !== current.name) ops.push({ op: 'replace', path: '/name', value: next.name });
  if (next.owner !== current.owner) ops.push({ op: 'replace', path: '/owner', value: next.owner });
  for (const field of IMAGE_FIELDS) {
    if (JSON.stringify(next.fields[field] ?? null) !== JSON.stringify(current.fields[field] ?? null)) {
      ops.push({ op: 'replace', path: `/${field}`, value: next.fields[field] ?? null });
    }
  }
  if ([...next.tags].sort().join('\n') !== [...current.tags].sort().join('\n')) ops.push({ op: 'replace', path: '/tags', value: next.tags });
  for (const key of Object.keys(current.properties)) {
    if (!(key in next.properties)) ops.push({ op: 'remove', path: pointer(key) });
  }
  for (const [key, value] of Object.entries(next.properties)) {
    if (current.properties[key] !== value) ops.push({ op: 'add', path: pointer(key), value });
  }
  return ops;
}

/** A one-level JSON pointer (RFC 6901 escapes). */
function pointer(key: string): string {
  return `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function noVersion(version: string | undefined): void {
  if (version !== undefined && canonicalVersion(version) !== '0.0.0') fail('FIELD_INVALID', 'Glance images have no version (it is always 0.0.0)');
}

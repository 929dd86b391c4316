import type { MemberStatus, Scalar } from './artifact';

/**
 * The neutral query language between backends and stores: a condition tree, sort keys and
 * keyset positions. Pure data; each store compiles it to its own SQL.
 */
/** What a condition compares. `field` reads a typed field value, `property` a string property. */
export type Target =
  | { kind: 'column'; name: 'id' | 'typeName' | 'name' | 'owner' | 'status' | 'visibility' | 'createdAt' | 'updatedAt' | 'activatedAt' }
  | { kind: 'version' }
  | { kind: 'field'; name: string; valueType: 'string' | 'number' | 'boolean' }
  | { kind: 'property'; name: string };

export type Comparison = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte';

export type Condition =
  /** For version targets the value is a canonical semver string compared by precedence (build metadata ignored, except by eq/neq). */
  | { op: Comparison; target: Target; value: Scalar }
  | { op: 'in'; target: Target; values: Scalar[] }
  /** SQL LIKE with % and _ wildcards, case-sensitive where the engine allows it. */
  | { op: 'like'; target: Target; pattern: string }
  | { op: 'isNull'; target: Target }
  /** A `field` list contains the value (list fields), or a `property` exists (no value). */
  | { op: 'contains'; target: Target; value: Scalar }
  | { op: 'hasProperty'; name: string }
  | { op: 'tagsAll'; tags: string[] }
  | { op: 'tagsAny'; tags: string[] }
  /** The artifact has a member row for `project` with one of `statuses`. */
  | { op: 'memberOf'; project: string; statuses: MemberStatus[] }
  /** Only the highest version (by precedence) of each (typeName, owner, name) among rows matching `within`. */
  | { op: 'latest'; within: Condition }
  | { op: 'and'; conditions: Condition[] }
  | { op: 'or'; conditions: Condition[] }
  | { op: 'not'; condition: Condition }
  | { op: 'true' };

export type SortTarget = Exclude<Target, { kind: 'property' }>;

export interface SortKey {
  target: SortTarget;
  direction: 'asc' | 'desc';
}

/** A keyset position: the sort-key values of a row and its id (the last tie-breaker). */
export interface Keyset {
  values: (Scalar | null)[];
  id: string;
}


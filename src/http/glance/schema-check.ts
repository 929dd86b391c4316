import { hasJsonType, pyRepr } from '../../domain/json-values';
import { badRequest } from './errors';
import type { JsonSchema } from './schemas';

/**
 * The part of JSON Schema that Glance's image schema uses (type, enum, maxLength,
 * pattern, array items, additionalProperties), so create bodies and PATCH values are
 * refused with 400 exactly where Glance's jsonschema check refuses them. Messages follow
 * python-jsonschema's wording, values in Python's repr, as Glance shows them.
 */
export function checkAgainstSchema(schema: JsonSchema, object: Record<string, unknown>): void {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const additional = schema.additionalProperties as JsonSchema | false | undefined;
  for (const [key, value] of Object.entries(object)) {
    const rule = Object.prototype.hasOwnProperty.call(properties, key) ? properties[key] : additional;
    if (rule === false) throw mismatch(schema, `Additional properties are not allowed (${pyRepr(key)} was unexpected)`);
    if (rule) checkValue(schema, rule, value);
  }
}

function checkValue(root: JsonSchema, rule: JsonSchema, value: unknown): void {
  const types = rule.type === undefined ? undefined : ([] as string[]).concat(rule.type as string | string[]);
  if (types && !types.some((t) => hasJsonType(value, t))) {
    throw mismatch(root, `${pyRepr(value)} is not of type ${types.map((t) => pyRepr(t)).join(', ')}`);
  }
  if (Array.isArray(rule.enum) && !rule.enum.some((allowed) => allowed === value)) {
    throw mismatch(root, `${pyRepr(value)} is not one of ${pyRepr(rule.enum)}`);
  }
  if (typeof value === 'string') {
    if (typeof rule.maxLength === 'number' && [...value].length > rule.maxLength) throw mismatch(root, `${pyRepr(value)} is too long`);
    if (typeof rule.pattern === 'string' && !new RegExp(rule.pattern).test(value)) throw mismatch(root, `${pyRepr(value)} does not match ${pyRepr(rule.pattern)}`);
  }
  if (Array.isArray(value) && rule.items) {
    for (const item of value) checkValue(root, rule.items as JsonSchema, item);
  }
}

function mismatch(schema: JsonSchema, reason: string) {
  return badRequest(`Provided object does not match schema '${String(schema.name)}': ${reason}`);
}

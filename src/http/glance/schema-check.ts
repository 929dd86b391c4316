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
  if (types && !types.some((t) => hasType(value, t))) {
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

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null': return value === null;
    case 'string': return typeof value === 'string';
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number';
    case 'boolean': return typeof value === 'boolean';
    case 'array': return Array.isArray(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
    default: return true;
  }
}

function mismatch(schema: JsonSchema, reason: string) {
  return badRequest(`Provided object does not match schema '${String(schema.name)}': ${reason}`);
}

/** Python's repr of a JSON value, for messages that match Glance's. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  return String(value);
}

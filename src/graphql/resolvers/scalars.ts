import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

/** Custom scalars. Invalid literals and variables are reported as BAD_USER_INPUT by graphql-js. */
function invalid(message: string): never {
  throw new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

function literalToJs(node: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map((v) => literalToJs(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, literalToJs(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[node.name.value];
    default:
      return invalid(`unsupported literal ${node.kind}`);
  }
}

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value) || Number.isNaN(Date.parse(value))) {
    invalid(`DateTime expects an ISO-8601 timestamp with a zone, e.g. 2026-11-23T12:00:00Z; got ${JSON.stringify(value)}`);
  }
  return new Date(value).toISOString();
}

function parseSafeInt(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) invalid(`SafeInt expects an integer within ±(2^53 - 1), got ${JSON.stringify(value)}`);
  return value;
}

function parseObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`JSONObject expects an object, got ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

export const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (v) => v,
  parseValue: parseDateTime,
  parseLiteral: (node) => parseDateTime(node.kind === Kind.STRING ? node.value : invalid('DateTime literals must be strings')),
});

export const SafeInt = new GraphQLScalarType({
  name: 'SafeInt',
  serialize: (v) => v,
  parseValue: parseSafeInt,
  parseLiteral: (node) => parseSafeInt(node.kind === Kind.INT ? Number(node.value) : invalid('SafeInt literals must be integers')),
});

export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (node, variables) => literalToJs(node, variables),
});

export const JSONObject = new GraphQLScalarType({
  name: 'JSONObject',
  serialize: (v) => v,
  parseValue: parseObject,
  parseLiteral: (node, variables) => parseObject(literalToJs(node, variables)),
});

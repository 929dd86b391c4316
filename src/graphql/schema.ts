import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSchema,
  GraphQLBoolean,
  GraphQLFloat,
  GraphQLInterfaceType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  isInterfaceType,
  isObjectType,
  isScalarType,
  type GraphQLFieldConfigMap,
  type GraphQLOutputType,
} from 'graphql';
import type { ArtifactView } from '../backends/port';
import type { TypeRegistry } from '../domain/builtin-types';
import { camelCase } from '../domain/filters';
import type { ArtifactTypeDef, FieldDef } from '../domain/types';
import type { GraphQLContext } from './context';
import { artifactFields, imageFields, relatedResolvers, typedFieldResolver } from './resolvers/artifact';
import { cacheResolvers } from './resolvers/cache';
import { dataPlaneResolvers } from './resolvers/dataplane';
import { importResolvers } from './resolvers/import';
import { locationResolvers } from './resolvers/location';
import { metadefResolvers } from './resolvers/metadefs';
import { mutationResolvers } from './resolvers/mutation';
import { queryResolvers } from './resolvers/query';
import * as scalars from './resolvers/scalars';
import { typeResolvers } from './resolvers/types';
import { subscriptionResolvers } from './subscriptions/resolvers';

/** schema/ sits at the package root, beside src/ and dist/. */
const SCHEMA_DIR = join(__dirname, '..', '..', 'schema');

export function loadSchemaSource(dir = SCHEMA_DIR): string {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

/**
 * The executable schema: the static contract from schema/*.graphql, plus one object type
 * per artifact type other than images (Glare's built-ins and the operator's), generated
 * from the type declarations so each carries its own typed fields.
 */
export function buildExecutableSchema(types: TypeRegistry): GraphQLSchema {
  const base = buildSchema(loadSchemaSource());
  const generated = types.all().filter((t) => t.name !== 'images').map((t) => artifactObjectType(base, t));
  const config = base.toConfig();
  const schema = new GraphQLSchema({ ...config, types: [...config.types, ...generated] });
  attachResolvers(schema, types);
  return schema;
}

function artifactObjectType(base: GraphQLSchema, type: ArtifactTypeDef): GraphQLObjectType<ArtifactView, GraphQLContext> {
  const artifact = base.getType('Artifact') as GraphQLInterfaceType;
  const node = base.getType('Node') as GraphQLInterfaceType;
  const shared = artifact.toConfig().fields;
  return new GraphQLObjectType<ArtifactView, GraphQLContext>({
    name: type.graphqlName,
    description: `${type.displayName} (artifact type ${type.name}).`,
    interfaces: [node, artifact],
    fields: () => {
      const fields: GraphQLFieldConfigMap<ArtifactView, GraphQLContext> = {};
      for (const [name, cfg] of Object.entries(shared)) fields[name] = { ...cfg };
      for (const field of type.fields) {
        const name = camelCase(field.name);
        if (fields[name]) throw new Error(`type ${type.name}: field ${field.name} collides with the Artifact field ${name}`);
        fields[name] = { type: outputType(base, field), description: field.description || undefined, resolve: typedFieldResolver(field.name, field.kind) };
      }
      return fields;
    },
  });
}

function outputType(base: GraphQLSchema, field: FieldDef): GraphQLOutputType {
  const blob = base.getType('Blob') as GraphQLObjectType;
  if (field.kind === 'blob') return blob;
  if (field.kind === 'blobDict') return new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(blob)));
  if (field.container === 'dict') return base.getType('JSONObject') as GraphQLScalarType;
  const scalar = {
    string: GraphQLString,
    integer: base.getType('SafeInt') as GraphQLScalarType,
    float: GraphQLFloat,
    boolean: GraphQLBoolean,
  }[field.kind];
  const element = field.container === 'list' ? new GraphQLList(new GraphQLNonNull(scalar)) : scalar;
  return field.nullable || field.container === 'list' ? element : new GraphQLNonNull(element);
}

type Resolve = (...args: never[]) => unknown;
/** A plain resolver, or a subscription root field's pair. */
type FieldResolvers = Record<string, Resolve | { subscribe: Resolve; resolve?: Resolve } | undefined>;

/** Wires resolver maps, scalar implementations and interface type resolution onto the schema. */
function attachResolvers(schema: GraphQLSchema, types: TypeRegistry): void {
  const maps: Record<string, FieldResolvers>[] = [queryResolvers, mutationResolvers, importResolvers, locationResolvers, metadefResolvers, relatedResolvers, typeResolvers, subscriptionResolvers, dataPlaneResolvers, cacheResolvers] as never;
  for (const map of maps) {
    for (const [typeName, resolvers] of Object.entries(map)) {
      const type = schema.getType(typeName);
      if (!isObjectType(type)) throw new Error(`resolvers given for ${typeName}, which is not an object type`);
      setResolvers(type, resolvers);
    }
  }
  setResolvers(schema.getType('Image') as GraphQLObjectType, imageFields as FieldResolvers);
  for (const t of types.all()) {
    if (t.name !== 'images') setResolvers(schema.getType(t.graphqlName) as GraphQLObjectType, artifactFields as FieldResolvers);
  }
  const resolveType = (value: ArtifactView) => types.find(value.typeName)?.graphqlName;
  for (const name of ['Node', 'Artifact']) {
    const iface = schema.getType(name);
    if (isInterfaceType(iface)) iface.resolveType = resolveType;
  }
  for (const impl of [scalars.DateTime, scalars.SafeInt, scalars.JSONScalar, scalars.JSONObject]) {
    const target = schema.getType(impl.name);
    if (!isScalarType(target)) throw new Error(`scalar ${impl.name} is missing from the schema`);
    target.serialize = impl.serialize;
    target.parseValue = impl.parseValue;
    target.parseLiteral = impl.parseLiteral;
  }
}

function setResolvers(type: GraphQLObjectType, resolvers: FieldResolvers): void {
  const fields = type.getFields();
  for (const [fieldName, resolve] of Object.entries(resolvers)) {
    const field = fields[fieldName];
    if (!field) throw new Error(`resolver for ${type.name}.${fieldName}, which the schema does not define`);
    if (resolve && typeof resolve === 'object') {
      field.subscribe = resolve.subscribe as never;
      field.resolve = resolve.resolve as never;
    } else {
      field.resolve = resolve as never;
    }
  }
}

import { IMAGE_STATUSES, ARTIFACT_STATUSES } from '../../domain/artifact';
import { camelCase } from '../../domain/filters';
import type { ArtifactStatus, FieldKind, FilterOp, Resolvers } from '../__generated__/resolvers';

/** Artifact type introspection: what dashboards read to build forms and filters. */
const upper = <T extends string>(v: string) => v.toUpperCase() as T;

export const typeResolvers: Resolvers = {
  ArtifactType: {
    graphqlTypeName: (t) => t.graphqlName,
    lifecycle: (t) => (t.lifecycle === 'image' ? 'IMAGE' : 'ARTIFACT'),
    statuses: (t) => (t.lifecycle === 'image' ? IMAGE_STATUSES : ARTIFACT_STATUSES).map((s) => upper<ArtifactStatus>(s)),
    fields: (t) => [...t.fields],
    links: (t) => [...t.links],
  },
  FieldDefinition: {
    graphqlName: (f) => camelCase(f.name),
    kind: (f) => (f.kind === 'blobDict' ? 'BLOB_DICT' : upper<FieldKind>(f.kind)),
    container: (f) => upper<'NONE' | 'LIST' | 'DICT'>(f.container),
    editableIn: (f) => (f.editableIn ? f.editableIn.map((s) => upper<ArtifactStatus>(s)) : null),
    filterOps: (f) => f.filterOps.map((op) => upper<FilterOp>(op)),
    allowedValues: (f) => (f.allowedValues ? [...f.allowedValues] : null),
  },
};

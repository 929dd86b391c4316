import type { GraphQLFieldResolver } from 'graphql';
import type { BlobView, ArtifactView } from '../../backends/port';
import type { GraphQLContext } from '../context';
import type { ArtifactStatus, BlobStatus, MemberStatus, Resolvers, Visibility } from '../__generated__/resolvers';

type FieldResolver = GraphQLFieldResolver<ArtifactView, GraphQLContext, Record<string, unknown>>;

const upper = <T extends string>(v: string) => v.toUpperCase() as T;

/**
 * Resolvers of the fields every artifact type shares (the Artifact interface); generated
 * types and Image reuse them. Related data goes through the request's DataLoaders.
 */
export const artifactFields: Record<string, FieldResolver> = {
  status: (a) => upper<ArtifactStatus>(a.status),
  visibility: (a) => upper<Visibility>(a.visibility),
  blobs: (a, _args, ctx) => ctx.loaders.blobs.load(a.id),
  links: async (a, args, ctx) => {
    const links = await ctx.loaders.links.load(a.id);
    return typeof args.name === 'string' ? links.filter((l) => l.name === args.name) : links;
  },
  members: (a, _args, ctx) => ctx.loaders.members.load(a.id),
};

/** A typed field of the type's own, read from `fields` (scalars) or the blob list (blobs). */
export function typedFieldResolver(fieldName: string, kind: string): FieldResolver {
  if (kind === 'blob') return async (a, _args, ctx) => (await ctx.loaders.blobs.load(a.id)).find((b) => b.field === fieldName && b.key === '') ?? null;
  if (kind === 'blobDict') return async (a, _args, ctx) => (await ctx.loaders.blobs.load(a.id)).filter((b) => b.field === fieldName);
  return (a) => a.fields[fieldName] ?? null;
}

const imageOwn: Record<string, [string, string]> = {
  diskFormat: ['disk_format', 'string'],
  containerFormat: ['container_format', 'string'],
  size: ['size', 'integer'],
  virtualSize: ['virtual_size', 'integer'],
  checksum: ['checksum', 'string'],
  osHashAlgo: ['os_hash_algo', 'string'],
  osHashValue: ['os_hash_value', 'string'],
  minDisk: ['min_disk', 'integer'],
  minRam: ['min_ram', 'integer'],
  protected: ['protected', 'boolean'],
  osHidden: ['os_hidden', 'boolean'],
  data: ['image', 'blob'],
};

export const imageFields: Record<string, FieldResolver> = {
  ...artifactFields,
  ...Object.fromEntries(Object.entries(imageOwn).map(([gql, [field, kind]]) => [gql, typedFieldResolver(field, kind)])),
  stores: (a) => (Array.isArray(a.fields.stores) ? [...(a.fields.stores as string[])].sort() : []),
  locations: async (a, _args, ctx) => (await ctx.loaders.locations.load(a.id)).locations,
  directUrl: async (a, _args, ctx) => (await ctx.loaders.locations.load(a.id)).directUrl,
};

export const relatedResolvers: Resolvers = {
  Blob: {
    key: (b: BlobView) => (b.key === '' ? null : b.key),
    status: (b: BlobView) => upper<BlobStatus>(b.status),
    url: (b: BlobView) => b.downloadUrl,
  },
  ArtifactLink: {
    target: (l, _args, ctx) => ctx.loaders.artifact.load(l.targetId),
  },
  Member: {
    project: (m) => m.member,
    status: (m) => upper<MemberStatus>(m.status),
    artifact: (m, _args, ctx) => ctx.loaders.artifact.load(m.artifactId),
  },
};

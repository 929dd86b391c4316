import type { GraphQLResolveInfo } from 'graphql';
import type { ArtifactPage, ArtifactView } from '../../backends/port';
import { parseId } from '../../domain/ids';
import type { GraphQLContext } from '../context';
import { warningError } from '../errors';
import type { Resolvers } from '../__generated__/resolvers';
import { artifactFilter, imageFilter, sortKeys } from './inputs';

const IMAGES = 'images';

/**
 * Pages warm the per-request loader, so fields of listed artifacts need no second lookup;
 * backends that did not answer are reported beside the data.
 */
function primed(ctx: GraphQLContext, page: ArtifactPage, info: GraphQLResolveInfo): ArtifactPage {
  for (const item of page.items) ctx.loaders.artifact.prime(item.id, item);
  for (const warning of page.warnings ?? []) ctx.warnings.push(warningError(warning, info.path));
  return page;
}

function load(ctx: GraphQLContext, id: string): Promise<ArtifactView | null> {
  return ctx.loaders.artifact.load(parseId(id));
}

export const queryResolvers: Resolvers = {
  Query: {
    node: (_root, { id }, ctx) => load(ctx, id),
    nodes: (_root, { ids }, ctx) => {
      const canonical = ids.map((id) => parseId(id));
      // graphql-js completes list items one by one: an id whose backend did not answer
      // errors alone, at its index (the codegen types know only resolved lists).
      return canonical.map((id) => ctx.loaders.artifact.load(id)) as unknown as (ArtifactView | null)[];
    },
    artifact: (_root, { id }, ctx) => load(ctx, id),
    image: async (_root, { id }, ctx) => {
      const found = await load(ctx, id);
      return found?.typeName === IMAGES ? found : null;
    },
    artifacts: async (_root, args, ctx, info) =>
      primed(ctx, await ctx.backend.list(ctx.principal, {
        typeName: args.typeName ?? undefined,
        filter: artifactFilter(args.filter),
        sort: sortKeys(args.sort),
        first: args.first, after: args.after, last: args.last, before: args.before,
      }), info),
    images: async (_root, args, ctx, info) =>
      primed(ctx, await ctx.backend.list(ctx.principal, {
        typeName: IMAGES,
        filter: imageFilter(args.filter),
        sort: sortKeys(args.sort),
        first: args.first, after: args.after, last: args.last, before: args.before,
      }), info),
    latestArtifact: async (_root, { typeName, name, owner }, ctx, info) => {
      const page = await ctx.backend.list(ctx.principal, {
        typeName,
        filter: { name: { eq: name }, latest: true, ...(owner ? { owner: { eq: owner } } : {}) },
        sort: [{ key: 'version', direction: 'desc' }, { key: 'createdAt', direction: 'desc' }],
        first: 1,
      });
      return primed(ctx, page, info).items[0] ?? null;
    },
    artifactTypes: (_root, _args, ctx) => ctx.backend.types.all(),
    artifactType: (_root, { name }, ctx) => ctx.backend.types.find(name) ?? null,
    usage: (_root, { projectId }, ctx) => ctx.backend.usage(ctx.principal, projectId ?? undefined),
    viewer: (_root, _args, ctx) => ctx.principal,
  },
  ArtifactConnection: connection(),
  ImageConnection: connection(),
};

function connection() {
  return {
    edges: (page: ArtifactPage) => page.items.map((node, i) => ({ cursor: page.cursors[i], node })),
    nodes: (page: ArtifactPage) => page.items,
    pageInfo: (page: ArtifactPage) => ({
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.hasPreviousPage,
      startCursor: page.cursors[0] ?? null,
      endCursor: page.cursors[page.cursors.length - 1] ?? null,
    }),
    totalCount: (page: ArtifactPage) => page.totalCount(),
  };
}

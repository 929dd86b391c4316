import type { CachedImageView, CacheClearTarget, ImageCachePort } from '../../backends/port';
import { fail } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import type { GraphQLContext } from '../context';
import type { ImageCacheClearTarget, Resolvers } from '../__generated__/resolvers';

/** The image cache, for admins (docs/glance-compat.md, "Image cache"). */
const TARGETS: Record<ImageCacheClearTarget, CacheClearTarget> = { ALL: 'all', CACHE: 'cache', QUEUE: 'queue' };

function cacheOf(ctx: GraphQLContext): ImageCachePort {
  return ctx.imageCache ?? fail('CACHE_DISABLED', 'the image cache is not enabled on this instance (imageCache.enabled)');
}

/** Glance reports seconds since the epoch; GraphQL shows DateTime. */
function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

export const cacheResolvers: Resolvers = {
  Query: {
    imageCache: (_root, _args, ctx) => cacheOf(ctx).state(ctx.principal),
  },
  Mutation: {
    queueImageForCache: async (_root, { id }, ctx) => {
      const cache = cacheOf(ctx);
      await cache.queue(ctx.principal, parseId(id));
      return cache.state(ctx.principal);
    },
    removeImageFromCache: async (_root, { id }, ctx) => {
      const cache = cacheOf(ctx);
      await cache.remove(ctx.principal, parseId(id));
      return cache.state(ctx.principal);
    },
    clearImageCache: (_root, { target }, ctx) => cacheOf(ctx).clear(ctx.principal, TARGETS[target]),
  },
  ImageCacheState: {
    cachedImages: (state) => state.cached,
    queuedImageIds: (state) => state.queued,
  },
  CachedImage: {
    lastAccessed: (image: CachedImageView) => iso(image.lastAccessed),
    lastModified: (image: CachedImageView) => iso(image.lastModified),
  },
};

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CacheClearTarget, ImageCachePort } from '../../backends/port';
import { isUuid } from '../../domain/ids';
import { isAdmin } from '../../domain/policy';
import { badRequest, forbidden, notFound } from './errors';
import { param, type FacadeContext } from './context';
import { principalOf, resource } from './router';

/**
 * Glance's cache API (v2.14, cached_images.py): `GET /v2/cache` lists cached and queued
 * images, `PUT /v2/cache/{id}` queues an active image for the prefetcher, `DELETE
 * /v2/cache/{id}` drops one, `DELETE /v2/cache` clears the cache, the queue or both
 * (`x-image-cache-clear-target`). Admins only, as Glance's default policy.
 */
export function registerCacheRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  resource(scope, '/cache', {
    GET: async (request) => {
      const state = await cacheOf(ctx, request).state(principalOf(request));
      return {
        cached_images: state.cached.map((c) => ({ image_id: c.imageId, hits: c.hits, last_accessed: c.lastAccessed, last_modified: c.lastModified, size: c.size })),
        queued_images: state.queued,
      };
    },
    DELETE: async (request, reply) => {
      const cache = cacheOf(ctx, request);
      await cache.clear(principalOf(request), clearTarget(request));
      return reply.code(204).send();
    },
  });
  resource(scope, '/cache/:imageId', {
    PUT: async (request, reply) => {
      const cache = cacheOf(ctx, request);
      await cache.queue(principalOf(request), imageIdOf(request));
      return reply.code(202).send();
    },
    DELETE: async (request, reply) => {
      const cache = cacheOf(ctx, request);
      await cache.remove(principalOf(request), imageIdOf(request));
      return reply.code(204).send();
    },
  });
}

/** Glance checks the policy first, then whether this site caches at all. */
function cacheOf(ctx: FacadeContext, request: FastifyRequest): ImageCachePort {
  if (!isAdmin(principalOf(request))) throw forbidden('You are not authorized to complete this action.');
  if (!ctx.imageCache) throw notFound('Caching via API is not supported at this site.');
  return ctx.imageCache;
}

function imageIdOf(request: FastifyRequest): string {
  const id = param(request, 'imageId');
  if (!isUuid(id)) throw notFound(`Image ${id} not found.`);
  return id.toLowerCase();
}

function clearTarget(request: FastifyRequest): CacheClearTarget {
  const header = request.headers['x-image-cache-clear-target'];
  const value = (Array.isArray(header) ? header[0] : header ?? '').trim().toLowerCase();
  if (value === '') return 'all';
  if (value === 'cache' || value === 'queue') return value;
  throw badRequest("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.");
}

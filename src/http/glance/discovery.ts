import type { FastifyInstance } from 'fastify';
import { notFound } from './errors';
import type { FacadeContext } from './context';
import { IMAGE_TYPE } from '../../domain/glance-image';
import { principalOf, resource } from './router';

/** Schemas and the /v2/info documents (Glance schemas.py, discovery.py). */
export function registerDiscoveryRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  for (const name of ['image', 'images', 'member', 'members', 'task', 'tasks'] as const) {
    resource(scope, `/schemas/${name}`, { GET: async () => ctx.schemas[name] });
  }
  for (const name of Object.keys(ctx.schemas.metadefs) as (keyof typeof ctx.schemas.metadefs)[]) {
    resource(scope, `/schemas/metadefs/${name}`, { GET: async () => ctx.schemas.metadefs[name] });
  }

  resource(scope, '/info/import', {
    GET: async () => ({ 'import-methods': { description: 'Import methods available.', type: 'array', value: [...ctx.importMethods] } }),
  });

  // A single-store Glance answers 404 here; glanceclient and tempest read that as "one store".
  resource(scope, '/info/stores', {
    GET: async (request) => {
      const stores = await ctx.backend.stores(principalOf(request));
      if (stores.length === 0) throw notFound('The resource could not be found.');
      // Glance's flags are strings, and present only when set.
      return { stores: stores.map((s) => ({ id: s.id, ...(s.description && { description: s.description }), ...(s.isDefault && { default: 'true' }), ...(s.readOnly && { 'read-only': 'true' }) })) };
    },
  });

  resource(scope, '/info/usage', {
    GET: async (request) => {
      const usage = await ctx.backend.usage(principalOf(request));
      const images = usage.types.find((t) => t.typeName === IMAGE_TYPE);
      const lowest = (...limits: (number | null | undefined)[]) => {
        const set = limits.filter((l): l is number => typeof l === 'number' && l >= 0);
        return set.length > 0 ? Math.min(...set) : -1;
      };
      const mib = (bytes: number) => Math.ceil(bytes / (1024 * 1024));
      const sizeLimit = lowest(images?.maxBytes, usage.maxBytes);
      // Glance's unified-limits names, sizes in MiB, -1 for unlimited (oslo.limit).
      return {
        usage: {
          image_size_total: { limit: sizeLimit < 0 ? -1 : Math.floor(sizeLimit / (1024 * 1024)), usage: mib(images?.bytes ?? 0) },
          image_count_total: { limit: lowest(images?.maxCount, usage.maxCount), usage: images?.count ?? 0 },
        },
      };
    },
  });
}

import type { FastifyRequest } from 'fastify';
import type { ArtifactBackend, ArtifactView, ImageCachePort } from '../../backends/port';
import { isUuid } from '../../domain/ids';
import type { Policies, Principal } from '../../domain/policy';
import { imageNotFound } from './errors';
import { IMAGE_TYPE } from '../../domain/glance-image';
import type { ListLimits } from './listing';
import type { PageCache } from '../page-cache';
import type { GlanceSchemas } from './schemas';

/** What the facade's route modules share; built once in index.ts. */
export interface FacadeContext {
  backend: ArtifactBackend;
  schemas: GlanceSchemas;
  /** Largest JSON body accepted, in bytes. */
  bodyLimit: number;
  paging: ListLimits;
  /** Import methods advertised (header on create, /v2/info/import); only ones that work. */
  importMethods: readonly string[];
  multistore: boolean;
  /** The image cache (Glance's cache API); absent when imageCache is not enabled. */
  imageCache?: ImageCachePort;
  /** images.showLocations: every image shows `locations` (Glance's show_multiple_locations). */
  showLocations: boolean;
  /** The overridable policy rules (config `policy`). */
  policies: Policies;
  /** Rendered image list pages (config images.listCache). */
  listPages: PageCache;
}

/**
 * The image with this id as the caller may see it, or Glance's 404: ids that are not
 * UUIDs, missing and invisible images, and artifacts of other types all look the same.
 */
export async function loadImage(ctx: FacadeContext, principal: Principal, id: string): Promise<ArtifactView> {
  if (!isUuid(id)) throw imageNotFound(id);
  const [found] = await ctx.backend.getMany(principal, [id.toLowerCase()]);
  // A backend that may hold the image did not answer: its error (503/504/502), not a 404.
  if (found instanceof Error) throw found;
  if (!found || found.typeName !== IMAGE_TYPE) throw imageNotFound(id);
  return found;
}

/** scheme://host[:port] of this request, for absolute links (Location, versions). */
export function baseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export function param(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string>)[name] ?? '';
}

export function rawQuery(request: FastifyRequest): string {
  const url = request.raw.url ?? '';
  const i = url.indexOf('?');
  return i < 0 ? '' : url.slice(i + 1);
}

import type { FastifyInstance } from 'fastify';
import type { ArtifactBackend, ImageCachePort, MetadefCatalog } from '../../backends/port';
import type { Authenticate } from '../auth';
import type { FacadeContext } from './context';
import { registerCacheRoutes } from './cache';
import { registerDataRoutes } from './data';
import { registerDiscoveryRoutes } from './discovery';
import { notFound } from './errors';
import { IMAGE_TYPE } from '../../domain/glance-image';
import { POLICY_DEFAULTS, type Policies } from '../../domain/policy';
import { registerImageRoutes } from './images';
import { registerImportRoutes } from './imports';
import { registerTaskListRoute } from './tasks';
import type { ListLimits } from './listing';
import { registerMemberRoutes } from './members';
import { registerMetadefRoutes } from './metadefs';
import { sendError, setUpScope } from './router';
import { PageCache, type PageCacheLimits } from '../page-cache';
import { buildSchemas } from './schemas';
import { registerVersionRoutes } from './versions';

/**
 * The Glance v2 REST facade: `/`, `/versions` and `/v2/...`, served from the
 * ArtifactBackend port so glanceclient, openstackclient, Nova and tempest work unchanged.
 * docs/glance-compat.md lists what is served and how it differs from Glance.
 */
export interface GlanceFacadeOptions {
  backend: ArtifactBackend;
  /** Metadata definitions (/v2/metadefs/...), kept natively whatever the backends are. */
  metadefs: MetadefCatalog;
  authenticate: Authenticate;
  bodyLimitBytes: number;
  paging: ListLimits;
  /** Import methods the backend runs (advertised on create and in /v2/info/import). */
  importMethods: readonly string[];
  /** Several named stores: `stores` on images, /v2/info/stores, the multistore API versions. */
  multistore: boolean;
  /** The image cache behind `/v2/cache`; without it those routes answer 404, as a Glance without a cache. */
  imageCache?: ImageCachePort;
  /** images.showLocations: `locations` on every image (the backend decides what each caller sees). */
  showLocations?: boolean;
  /** The overridable policy rules the facade checks before writing (Glance's defaults when omitted). */
  policies?: Policies;
  /** Rendered image list pages kept for reuse (config images.listCache); off when omitted. */
  listCache?: PageCacheLimits;
}

export async function registerGlanceFacade(app: FastifyInstance, options: GlanceFacadeOptions): Promise<void> {
  const ctx: FacadeContext = {
    backend: options.backend,
    schemas: buildSchemas(options.backend.types.get(IMAGE_TYPE)),
    bodyLimit: options.bodyLimitBytes,
    paging: options.paging,
    importMethods: options.importMethods,
    multistore: options.multistore,
    ...(options.imageCache && { imageCache: options.imageCache }),
    showLocations: options.showLocations ?? false,
    policies: options.policies ?? POLICY_DEFAULTS,
    listPages: new PageCache(options.listCache ?? { entries: 0, bytes: 0 }),
  };

  // Version documents need no token: discovery runs before clients authenticate.
  await app.register(async (root) => {
    setUpScope(root, {});
    registerVersionRoutes(root, ctx.multistore, ctx.imageCache !== undefined);
  });

  await app.register(async (v2) => {
    setUpScope(v2, { authenticate: options.authenticate });
    v2.setNotFoundHandler(async (request, reply) => sendError(request, reply, notFound('The resource could not be found.')));
    registerImageRoutes(v2, ctx);
    registerMemberRoutes(v2, ctx);
    registerDataRoutes(v2, ctx);
    registerDiscoveryRoutes(v2, ctx);
    registerImportRoutes(v2, ctx);
    registerTaskListRoute(v2, ctx);
    registerMetadefRoutes(v2, { metadefs: options.metadefs, bodyLimit: ctx.bodyLimit, paging: ctx.paging });
    registerCacheRoutes(v2, ctx);
  }, { prefix: '/v2' });
}

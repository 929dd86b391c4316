import type { FastifyInstance, FastifyRequest } from 'fastify';
import { baseUrl } from './context';
import { resource } from './router';

/**
 * The versions document (Glance api/versions.py). Clients read it to pick an API version
 * and to decide features: keystoneauth and the SDK follow the `href`s (so they point back
 * at this server), glanceclient checks for 2.12 (image tasks) and 2.17 (new locations
 * API), Nova for 2.17. So only versions whose features the facade serves are listed, as
 * a single-store Glance lists them: 2.15 (usage) is current; 2.17 (locations API) is left
 * out. With the image cache on, Glance makes 2.16 current and adds 2.14 (cache API); with
 * multiple stores it adds 2.13-2.10 and 2.8 (stores, image tasks); the facade does the same.
 */
export const API_VERSIONS: readonly { id: string; status: 'CURRENT' | 'SUPPORTED' }[] = [
  { id: 'v2.15', status: 'CURRENT' },
  { id: 'v2.9', status: 'SUPPORTED' },
  { id: 'v2.7', status: 'SUPPORTED' },
  { id: 'v2.6', status: 'SUPPORTED' },
  { id: 'v2.5', status: 'SUPPORTED' },
  { id: 'v2.4', status: 'SUPPORTED' },
  { id: 'v2.3', status: 'SUPPORTED' },
  { id: 'v2.2', status: 'SUPPORTED' },
  { id: 'v2.1', status: 'SUPPORTED' },
  { id: 'v2.0', status: 'SUPPORTED' },
];

const MULTISTORE_VERSIONS = ['v2.13', 'v2.12', 'v2.11', 'v2.10', 'v2.8'].map((id) => ({ id, status: 'SUPPORTED' as const }));

const CACHE_VERSIONS = [{ id: 'v2.16', status: 'CURRENT' as const }, { id: 'v2.15', status: 'SUPPORTED' as const }, { id: 'v2.14', status: 'SUPPORTED' as const }];

function apiVersions(multistore: boolean, cache: boolean) {
  const base = cache ? [...CACHE_VERSIONS, ...API_VERSIONS.slice(1)] : API_VERSIONS;
  if (!multistore) return base;
  const byNumber = (v: { id: string }) => Number(v.id.slice(3));
  return [...base, ...MULTISTORE_VERSIONS].sort((a, b) => byNumber(b) - byNumber(a));
}

export function versionsDocument(request: FastifyRequest, multistore = false, cache = false) {
  const href = `${baseUrl(request)}/v2/`;
  return { versions: apiVersions(multistore, cache).map((v) => ({ id: v.id, status: v.status, links: [{ rel: 'self', href }] })) };
}

/** `GET /` → 300 Multiple Choices (tempest asserts it), `GET /versions` → 200. */
export function registerVersionRoutes(scope: FastifyInstance, multistore: boolean, cache = false): void {
  resource(scope, '/', { GET: async (request, reply) => reply.code(300).send(versionsDocument(request, multistore, cache)) });
  resource(scope, '/versions', { GET: async (request) => versionsDocument(request, multistore, cache) });
}

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { baseUrl } from './context';
import { resource } from './router';

/**
 * The versions document (Glance api/versions.py). Clients read it to pick an API version
 * and to decide features: keystoneauth and the SDK follow the `href`s (so they point back
 * at this server), glanceclient checks for 2.12 (image tasks) and 2.17 (new locations
 * API), Nova for 2.17. So only versions whose features the facade serves are listed, as
 * a single-store Glance lists them: 2.15 (usage) is current; 2.16/2.14 (cache API) and
 * 2.17 (locations API) are left out. With multiple stores Glance adds 2.13-2.10 and 2.8
 * (stores, image tasks), and so does the facade.
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

function apiVersions(multistore: boolean) {
  if (!multistore) return API_VERSIONS;
  const byNumber = (v: { id: string }) => Number(v.id.slice(3));
  return [...API_VERSIONS, ...MULTISTORE_VERSIONS].sort((a, b) => byNumber(b) - byNumber(a));
}

export function versionsDocument(request: FastifyRequest, multistore = false) {
  const href = `${baseUrl(request)}/v2/`;
  return { versions: apiVersions(multistore).map((v) => ({ id: v.id, status: v.status, links: [{ rel: 'self', href }] })) };
}

/** `GET /` → 300 Multiple Choices (tempest asserts it), `GET /versions` → 200. */
export function registerVersionRoutes(scope: FastifyInstance, multistore: boolean): void {
  resource(scope, '/', { GET: async (request, reply) => reply.code(300).send(versionsDocument(request, multistore)) });
  resource(scope, '/versions', { GET: async (request) => versionsDocument(request, multistore) });
}

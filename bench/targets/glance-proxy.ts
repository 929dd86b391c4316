// Vitrine in front of the run's real Glance: a Vitrine process whose only
// backend is that Glance (driver "glance", identity "headers"), so every /v2
// facade and GraphQL request it serves becomes calls to Glance. The proxy.*
// scenarios compare it with the same requests sent to Glance directly.
import { randomBytes } from 'node:crypto';
import type { BenchContext } from '../lib/context';
import type { GlanceTarget } from './glance';
import { spawnVitrine } from './vitrine';

export interface GlanceProxyTarget {
  url: string;
  pid: number;
  token: string;
  /** For GraphQL requests. */
  headers: Record<string, string>;
  /** For /v2 facade requests (Keystone-style header, as glanceclient sends). */
  facadeHeaders: Record<string, string>;
  /**
   * The identity headers Vitrine sends Glance for this token; direct requests
   * carry the same, so Glance applies the same policy to both sides.
   */
  identity: Record<string, string>;
  glance: GlanceTarget;
  stop(): Promise<void>;
}

export const PROXY_BACKEND = 'legacy';

/**
 * The identity scripts/glance-dev gives requests without headers (project
 * 1111…, user 2222…, all roles): the images the harness seeded into Glance
 * belong to this project, whichever side reads them.
 */
const IDENTITY = { projectId: '1'.repeat(32), userId: '2'.repeat(32), roles: ['admin', 'member', 'reader'] };

export async function startGlanceProxy(ctx: BenchContext, port = ctx.opts.vitrinePort + 5): Promise<GlanceProxyTarget> {
  const glance = await ctx.glance();
  const token = randomBytes(24).toString('hex');
  ctx.log(`starting Vitrine in front of Glance on 127.0.0.1:${port} (backend "${PROXY_BACKEND}", driver glance, identity headers)`);
  const { svc } = await spawnVitrine(ctx, 'vitrine-proxy', port, {
    // Only the Glance backend: every image is Glance's. Its pool, timeouts, retries and
    // breaker keep their defaults (docs/configuration.md).
    backends: [{ name: PROXY_BACKEND, driver: 'glance', url: glance.url, identity: 'headers' }],
    auth: { tokens: [{ token, ...IDENTITY }] },
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: svc.pid,
    token,
    headers: { authorization: `Bearer ${token}` },
    facadeHeaders: { 'x-auth-token': token, accept: 'application/json' },
    identity: { 'x-project-id': IDENTITY.projectId, 'x-user-id': IDENTITY.userId, 'x-roles': IDENTITY.roles.join(','), accept: 'application/json' },
    glance,
    stop: () => svc.stop(),
  };
}

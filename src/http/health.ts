import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics';

/**
 * Liveness (`/healthz`: the process answers), readiness (`/readyz`: every dependency
 * answers its ping) and Prometheus metrics. Unauthenticated, like most probes.
 */
export type DependencyCheck = () => Promise<void>;

export interface HealthOptions {
  /** Named dependency pings, e.g. `{ metadata: () => store.ping() }`. */
  checks: Readonly<Record<string, DependencyCheck>>;
  metrics: Metrics;
}

export async function registerHealthRoutes(app: FastifyInstance, options: HealthOptions): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request, reply) => {
    const results = await Promise.all(
      Object.entries(options.checks).map(async ([name, check]) => {
        try {
          await check();
          return [name, { status: 'ok' }] as const;
        } catch (err) {
          request.log.warn({ err, dependency: name }, 'readiness check failed');
          return [name, { status: 'unavailable' }] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r.status === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', dependencies: Object.fromEntries(results) });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(text);
  });
}

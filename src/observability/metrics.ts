import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of one app instance. Each app owns its registry (not prom-client's
 * global one), so several apps can live in one process, as they do in tests.
 */
export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'route' | 'method' | 'status'>;
  graphqlOperations: Counter<'type' | 'outcome'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vitrine_' });
  const httpRequestDuration = new Histogram({
    name: 'vitrine_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const graphqlOperations = new Counter({
    name: 'vitrine_graphql_operations_total',
    help: 'GraphQL operations by type (query, mutation, subscription, unknown) and outcome (success, error).',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  return { registry, httpRequestDuration, graphqlOperations };
}

/** Times every response by its route pattern (not the raw URL, which would explode label cardinality). */
export function observeHttpRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequestDuration.observe(
      { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}

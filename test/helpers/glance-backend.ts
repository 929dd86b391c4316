import type { GlanceBackendOptions } from '../../src/backends/glance/backend';
import { TypeRegistry } from '../../src/domain/builtin-types';
import type { EventBus } from '../../src/events/port';

/**
 * Options of a GlanceBackend in tests: short connects, generous request time on a loaded
 * machine, a breaker that does not open by accident, progress on every chunk. Each test
 * file adds what it exercises.
 */
export function testGlanceOptions(url: string, bus: EventBus, overrides: Partial<GlanceBackendOptions> = {}): GlanceBackendOptions {
  return {
    name: 'legacy',
    url,
    types: new TypeRegistry(),
    bus,
    identity: 'headers',
    timeouts: { connectMs: 2_000, requestMs: 30_000, idleMs: 30_000 },
    retries: 2,
    breaker: { failures: 50, resetMs: 1_000 },
    connections: 4,
    progressIntervalMs: 1,
    blobPathPrefix: '/v1/artifacts',
    allowPrivateUrls: false,
    ...overrides,
  };
}

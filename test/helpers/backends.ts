import { join } from 'node:path';
import type { BackendParts } from '../../src/app/compose';
import { NativeBackend } from '../../src/backends/native/backend';
import type { ArtifactBackend, ListRequest } from '../../src/backends/port';
import { VitrineError, type ErrorCode } from '../../src/domain/errors';
import { SqliteMetadataStore } from '../../src/storage/metadata/sqlite';

/**
 * Backends for federation tests: real native backends, each on a SQLite file of its own,
 * and a wrapper that injects faults into a real backend (the only fake allowed).
 */
export interface NativeMember {
  backend: NativeBackend;
  store: SqliteMetadataStore;
}

/** A native backend named `name` on `<dir>/<name>.sqlite`, built from an app's parts (or a test's own). */
export async function openNativeMember(parts: BackendParts, dir: string, name: string): Promise<NativeMember> {
  const store = new SqliteMetadataStore({ path: join(dir, `${name}.sqlite`) });
  await store.migrate();
  const backend = new NativeBackend({
    name,
    types: parts.types,
    store,
    bus: parts.bus,
    paging: parts.paging,
    quotaDefaults: {},
    blobPathPrefix: parts.blobPathPrefix,
    ...(parts.lookup && { lookup: parts.lookup }),
  });
  return { backend, store };
}

/** What a faulty backend does wrong; change the fields while it runs. */
export interface Faults {
  /** Every call fails with `code` (UPSTREAM_UNAVAILABLE by default). */
  down?: boolean;
  code?: ErrorCode;
  /** `list` with an afterId this backend does not hold fails with CURSOR_INVALID (as a Glance would). */
  refuseForeignMarkers?: boolean;
  /** `list` answers at most this many items, however many were asked (a backend with a smaller page limit). */
  maxPage?: number;
  /** How many calls reached the wrapper, by method. */
  calls?: Record<string, number>;
}

export function faulty(inner: ArtifactBackend, faults: Faults): ArtifactBackend {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const method = String(prop);
        if (faults.calls) faults.calls[method] = (faults.calls[method] ?? 0) + 1;
        if (faults.down) throw new VitrineError(faults.code ?? 'UPSTREAM_UNAVAILABLE', `backend ${target.name} is down (injected)`, { backend: target.name });
        if (method === 'list') {
          const request = { ...(args[1] as ListRequest) };
          if (faults.refuseForeignMarkers && request.afterId !== undefined) {
            const [marker] = await target.getMany(args[0] as never, [request.afterId]);
            if (!marker) throw new VitrineError('CURSOR_INVALID', `no image ${request.afterId} here (injected)`);
          }
          if (faults.maxPage !== undefined) {
            if (request.first != null) request.first = Math.min(request.first, faults.maxPage);
            if (request.last != null) request.last = Math.min(request.last, faults.maxPage);
          }
          return target.list(args[0] as never, request);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

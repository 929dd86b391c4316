import type { FastifyRequest } from 'fastify';
import type { Principal } from '../../domain/policy';

/**
 * Rendered `GET /v2/images` pages, reused while the backend's list mark stays the same
 * (ArtifactBackend.listMark: it moves with every committed write that could change a list).
 * Dashboards and clients poll the same few pages; between writes the answer is the same
 * bytes, so a hit costs one mark lookup instead of a query, 100 image mappings and the JSON.
 *
 * A page is keyed by what decides its content: the caller's project and roles (visibility,
 * member status, location policy) and the exact query string. A request with
 * `Cache-Control: no-cache` (or `Pragma: no-cache`) is answered fresh and refreshes the entry.
 * Bounded by entries and bytes, least recently used first out.
 */
export interface PageCacheLimits {
  entries: number;
  bytes: number;
}

interface Entry {
  mark: string;
  body: string;
}

export class PageCache {
  private readonly pages = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly limits: PageCacheLimits) {}

  get enabled(): boolean {
    return this.limits.entries > 0 && this.limits.bytes > 0;
  }

  static key(principal: Principal, query: string): string {
    return `${principal.projectId}\n${[...principal.roles].sort().join(',')}\n${query}`;
  }

  /** The page rendered under this mark, if still held (and marks it recently used). */
  get(key: string, mark: string): string | undefined {
    const entry = this.pages.get(key);
    if (!entry) return undefined;
    if (entry.mark !== mark) {
      this.drop(key, entry);
      return undefined;
    }
    this.pages.delete(key);
    this.pages.set(key, entry);
    return entry.body;
  }

  set(key: string, mark: string, body: string): void {
    const old = this.pages.get(key);
    if (old) this.drop(key, old);
    // A page larger than a quarter of the budget would evict most others for one caller.
    if (!this.enabled || body.length > this.limits.bytes / 4) return;
    this.pages.set(key, { mark, body });
    this.bytes += body.length;
    for (const [oldest, entry] of this.pages) {
      if (this.pages.size <= this.limits.entries && this.bytes <= this.limits.bytes) break;
      this.drop(oldest, entry);
    }
  }

  get size(): number {
    return this.pages.size;
  }

  private drop(key: string, entry: Entry): void {
    this.pages.delete(key);
    this.bytes -= entry.body.length;
  }
}

/** True when the client asked for a fresh answer (RFC 9111 request directives). */
export function wantsFresh(request: FastifyRequest): boolean {
  const cacheControl = request.headers['cache-control'];
  if (cacheControl && /(?:^|,)\s*(?:no-cache|no-store|max-age\s*=\s*0)\s*(?:,|$)/i.test(cacheControl)) return true;
  return /no-cache/i.test(String(request.headers.pragma ?? ''));
}

import type { FastifyRequest } from 'fastify';
import type { Principal } from '../domain/policy';

/**
 * Rendered answers (the facade's `GET /v2/images` pages, GraphQL query results), reused
 * while the backend's list mark stays the same (ArtifactBackend.listMark: it moves with
 * every committed write of artifacts, members, links and blobs). Dashboards and clients poll
 * the same few pages; between writes the answer is the same bytes, so a hit costs one mark
 * lookup instead of a query, 100 image mappings and the JSON.
 *
 * A page is keyed by what decides its content: the caller's project and roles (visibility,
 * member status, location policy) and the exact request. A request with
 * `Cache-Control: no-cache` (or `Pragma: no-cache`) is answered fresh and refreshes the entry.
 * Bounded by entries and bytes, least recently used first out.
 */
export interface PageCacheLimits {
  entries: number;
  bytes: number;
}

interface Entry<Page> {
  mark: string;
  page: Page;
  size: number;
}

/** A page is a string (its length counts as its size) unless `sizeOf` says otherwise. */
export class PageCache<Page = string> {
  private readonly pages = new Map<string, Entry<Page>>();
  private bytes = 0;

  constructor(
    private readonly limits: PageCacheLimits,
    private readonly sizeOf: (page: Page) => number = (page) => String(page).length,
  ) {}

  get enabled(): boolean {
    return this.limits.entries > 0 && this.limits.bytes > 0;
  }

  static key(principal: Principal, query: string): string {
    return `${principal.projectId}\n${[...principal.roles].sort().join(',')}\n${query}`;
  }

  /** Whether a page is held for this key, under whatever mark. */
  has(key: string): boolean {
    return this.pages.has(key);
  }

  /** The page rendered under this mark, if still held (and marks it recently used). */
  get(key: string, mark: string): Page | undefined {
    const entry = this.pages.get(key);
    if (!entry) return undefined;
    if (entry.mark !== mark) {
      this.drop(key, entry);
      return undefined;
    }
    this.pages.delete(key);
    this.pages.set(key, entry);
    return entry.page;
  }

  set(key: string, mark: string, page: Page): void {
    const old = this.pages.get(key);
    if (old) this.drop(key, old);
    const size = this.sizeOf(page);
    // A page larger than a quarter of the budget would evict most others for one caller.
    if (!this.enabled || size > this.limits.bytes / 4) return;
    this.pages.set(key, { mark, page, size });
    this.bytes += size;
    for (const [oldest, entry] of this.pages) {
      if (this.pages.size <= this.limits.entries && this.bytes <= this.limits.bytes) break;
      this.drop(oldest, entry);
    }
  }

  get size(): number {
    return this.pages.size;
  }

  private drop(key: string, entry: Entry<Page>): void {
    this.pages.delete(key);
    this.bytes -= entry.size;
  }
}

/** True when the client asked for a fresh answer (RFC 9111 request directives). */
export function wantsFresh(request: FastifyRequest): boolean {
  const cacheControl = request.headers['cache-control'];
  if (cacheControl && /(?:^|,)\s*(?:no-cache|no-store|max-age\s*=\s*0)\s*(?:,|$)/i.test(cacheControl)) return true;
  return /no-cache/i.test(String(request.headers.pragma ?? ''));
}

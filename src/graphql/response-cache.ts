import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import {
  getNamedType,
  isInterfaceType,
  isObjectType,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  BREAK,
  type DocumentNode,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import type { ArtifactBackend } from '../backends/port';
import type { Principal } from '../domain/policy';
import { PageCache, wantsFresh, type PageCacheLimits } from '../http/page-cache';

/**
 * GraphQL query results reused while the backend's list mark stays the same, as the facade
 * reuses its image pages (src/http/page-cache.ts): a dashboard polling the same page of
 * images costs one mark lookup instead of a query and the execution of 100 x 20 fields.
 *
 * Only documents that read nothing but artifacts are kept: every field they select lies on
 * an artifact type, its blobs, links, members, locations or the connections that page them,
 * reached from the artifact and image queries. Those are exactly what the mark covers;
 * anything else (usage and quotas, tasks, types, the image cache, metadefs, the viewer)
 * changes without moving it. Only single POSTed JSON operations without errors are kept,
 * keyed by the caller's project and roles and a digest of the Accept header (it decides the
 * content type) and the operation name, text and variables. `Cache-Control: no-cache`
 * answers afresh.
 *
 * A result is kept from the second time its request comes: the mark costs a read of the
 * store, and most one-off requests (one image of thousands, by id) never come again; the
 * keys seen once are remembered in a bounded list of their own.
 */
export interface CachedResult {
  body: string;
  contentType: string;
}

/** What a request carries from the lookup to the execution. */
export interface ResultSlot {
  /** The caller, authenticated once for both. */
  principal: Principal;
  /** Where and under which mark the result would be kept; absent when it is not to be kept. */
  keep?: { key: string; mark: string };
  /** Set when the executed document may be kept (see cacheableDocument). */
  cacheable: boolean;
}

/** Keys of requests seen once, oldest forgotten first. */
class SeenOnce {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** True when the key was seen before; remembers it otherwise. */
  check(key: string): boolean {
    if (this.keys.has(key)) return true;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value as string);
    return false;
  }
}

const ROOT_FIELDS = new Set(['image', 'images', 'artifact', 'artifacts', 'latestArtifact']);
const ARTIFACT_PARTS = new Set(['Blob', 'ArtifactLink', 'Member', 'ImageLocation', 'PageInfo', 'ImageConnection', 'ImageEdge', 'ArtifactConnection', 'ArtifactEdge']);
const HARMLESS_DIRECTIVES = new Set(['include', 'skip']);

export class ResponseCache {
  private readonly results: PageCache<CachedResult>;
  private readonly verdicts = new WeakMap<DocumentNode, boolean>();
  private readonly slots = new WeakMap<FastifyRequest, ResultSlot>();
  private readonly seen: SeenOnce;

  constructor(
    limits: PageCacheLimits,
    private readonly schema: GraphQLSchema,
    private readonly backend: ArtifactBackend,
  ) {
    this.results = new PageCache<CachedResult>(limits, (r) => r.body.length + r.contentType.length);
    this.seen = new SeenOnce(4 * limits.entries);
  }

  /**
   * The stored result for this request, or undefined (and a slot that execution reads and,
   * when the result could be kept, fills). The mark is read before anything executes: a write
   * that lands meanwhile moves it, so a result can only be stored under a mark already out of date.
   */
  async lookup(request: FastifyRequest, authenticate: () => Principal | Promise<Principal>): Promise<CachedResult | undefined> {
    if (!this.results.enabled || request.method !== 'POST') return undefined;
    const body = request.body as { query?: unknown; operationName?: unknown; variables?: unknown; extensions?: unknown } | null;
    if (!body || typeof body !== 'object' || Array.isArray(body) || typeof body.query !== 'string' || body.extensions !== undefined) return undefined;
    if (!String(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) return undefined;
    let principal: Principal;
    try {
      principal = await authenticate();
    } catch {
      // Apollo's own context creation answers the failure in GraphQL's shape.
      return undefined;
    }
    const slot: ResultSlot = { principal, cacheable: false };
    this.slots.set(request, slot);
    // A digest: a request body may be up to the body limit, and keys are held in memory.
    const operation = createHash('sha256').update(`${request.headers.accept ?? ''}\n`).update(JSON.stringify([body.operationName ?? null, body.query, body.variables ?? null])).digest('base64');
    const key = PageCache.key(principal, operation);
    const fresh = wantsFresh(request);
    if (!fresh && !this.results.has(key) && !this.seen.check(key)) return undefined;
    // A store that cannot tell its mark now is left to answer (or fail) through execution.
    const mark = await this.backend.listMark().catch(() => undefined);
    if (mark === undefined) return undefined;
    const hit = fresh ? undefined : this.results.get(key, mark);
    if (!hit) slot.keep = { key, mark };
    return hit;
  }

  slotOf(request: FastifyRequest): ResultSlot | undefined {
    return this.slots.get(request);
  }

  /** Keeps what Apollo sent for a request whose slot was marked cacheable. */
  keep(request: FastifyRequest, status: number, contentType: unknown, body: unknown): void {
    const slot = this.slots.get(request);
    if (!slot?.keep || !slot.cacheable || status !== 200 || typeof body !== 'string' || typeof contentType !== 'string') return;
    this.results.set(slot.keep.key, slot.keep.mark, { body, contentType });
  }

  /** True when every field the document selects reads artifacts only (memoised per parsed document). */
  cacheableDocument(document: DocumentNode): boolean {
    let verdict = this.verdicts.get(document);
    if (verdict === undefined) {
      verdict = readsArtifactsOnly(this.schema, document);
      this.verdicts.set(document, verdict);
    }
    return verdict;
  }
}

function readsArtifactsOnly(schema: GraphQLSchema, document: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let covered = true;
  const refuse = (): typeof BREAK => {
    covered = false;
    return BREAK;
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      OperationDefinition: (node) => (node.operation === 'query' ? undefined : refuse()),
      Directive: (node) => (HARMLESS_DIRECTIVES.has(node.name.value) ? undefined : refuse()),
      Field: (node) => {
        if (node.name.value === '__typename') return undefined;
        const parent = typeInfo.getParentType();
        if (!parent || !typeInfo.getFieldDef()) return refuse();
        if (parent === schema.getQueryType()) return ROOT_FIELDS.has(node.name.value) ? undefined : refuse();
        return isArtifactPart(schema, getNamedType(parent)) ? undefined : refuse();
      },
    }),
  );
  return covered;
}

function isArtifactPart(schema: GraphQLSchema, type: GraphQLNamedType): boolean {
  if (ARTIFACT_PARTS.has(type.name)) return true;
  const artifact = schema.getType('Artifact');
  if (type === artifact) return true;
  return isObjectType(type) && isInterfaceType(artifact) && type.getInterfaces().includes(artifact);
}

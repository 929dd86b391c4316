import { fail, isUnavailability, VitrineError } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import { compareKeysets, keysetOf } from '../../domain/ordering';
import type { PageLimits, PageShape } from '../../domain/paging';
import type { Principal } from '../../domain/policy';
import type { Keyset, SortKey } from '../../domain/query';
import type { ArtifactBackend, ArtifactPage, ArtifactView, BackendWarning, ListRequest, Lookup } from '../port';
import { decodeFederatedCursor, encodeFederatedCursor, queryFingerprint, type Boundary, type ItemPosition, type LastMark } from './cursor';

/**
 * One listing merged from several backends. Each backend is asked for one more item than
 * the page holds, from its own position (see cursor.ts); the page takes the smallest of the
 * backends' next items in turn, so it always takes a prefix of each backend's answer,
 * whatever order that backend keeps, and no item is skipped or repeated across pages. A
 * backend that answered fewer items than asked is asked for more before its next item is
 * needed. The order is the one a single store holding every row would give
 * (domain/ordering.ts); the same id held by two backends (a migration in progress) is
 * ordered by backend rank.
 */
export interface ListingMember {
  /** Position in the federation. */
  rank: number;
  backend: ArtifactBackend;
}

export interface MergedListRequest {
  principal: Principal;
  /** At least two, in federation order. */
  members: readonly ListingMember[];
  /** What each backend is asked (filter without `backend`), with the caller's paging arguments. */
  request: ListRequest;
  /** `request.sort` resolved: what the merge compares. */
  sort: readonly SortKey[];
  shape: PageShape;
  limits: PageLimits;
  /** Finds an `afterId` marker in whichever backend holds it. */
  lookup(principal: Principal, ids: readonly string[]): Promise<Lookup[]>;
}

/** What one backend answered for this page, and where the page leaves it. */
interface Run {
  member: ListingMember;
  start: Boundary;
  /** Whether the backend was asked at all (a backend with nothing on that side is not). */
  asked: boolean;
  error?: VitrineError;
  /** The backend's answer, for its count. */
  page?: ArtifactPage;
  items: ArtifactView[];
  cursors: string[];
  keys: Keyset[];
  /** More items beyond those fetched, in the direction of the fetch. */
  more: boolean;
  /** Forward: the mark before the first fetched item. */
  before: LastMark;
  /** How many of `items` the page took (a prefix forward, a suffix backward). */
  taken: number;
}

export async function listMerged(input: MergedListRequest): Promise<ArtifactPage> {
  const { members, request, sort, shape } = input;
  const query = queryFingerprint(sort, members.map((m) => m.backend.name), request.typeName);
  const marker = request.afterId !== undefined ? await findMarker(input) : undefined;
  const starts = startingBoundaries(input, query, marker);

  const runs = await Promise.all(members.map((member, i) => fetchRun(input, member, starts[i], marker)));
  const failed = runs.filter((r) => r.error);
  if (failed.length > 0 && !runs.some((r) => r.asked && !r.error)) throw failed[0].error!;

  const order = await take(input, runs);
  const remaining = runs.some((r) => !r.error && r.taken < r.items.length);
  const hadPosition = marker !== undefined || shape.cursor !== undefined;

  const counts = runs.map(() => 0);
  const positions = order.map((runIndex): ItemPosition => {
    counts[runIndex]++;
    return { boundaries: runs.map((run, i) => boundaryAt(run, counts[i], shape.backward)), owner: runIndex };
  });
  const warnings: BackendWarning[] = failed.map((r) => ({ backend: r.member.backend.name, code: r.error!.code, message: r.error!.message }));
  return {
    items: pageItems(runs, order, shape.backward),
    // Each cursor carries every backend's boundary: built only when read (pageInfo reads two).
    cursors: lazyList(positions.length, (i) => encodeFederatedCursor(query, positions[i])),
    hasNextPage: shape.backward ? hadPosition : remaining,
    hasPreviousPage: shape.backward ? remaining : hadPosition,
    totalCount: () => countAll(input, runs),
    ...(warnings.length > 0 && { warnings }),
  };
}

/** The items the page took, in page order: a prefix of each run forward, a suffix backward. */
function pageItems(runs: Run[], order: number[], backward: boolean): ArtifactView[] {
  const next = runs.map((r) => (backward ? r.items.length - r.taken : 0));
  return order.map((r) => runs[r].items[next[r]++]);
}

/**
 * Where each backend starts: the start or the end of the listing, just after an `afterId`
 * marker, or at a cursor's item: after it going forward; before it going backward, which
 * for the item's own backend means before the item itself.
 */
function startingBoundaries(input: MergedListRequest, query: string, marker: { view: ArtifactView } | undefined): Boundary[] {
  const { members, shape } = input;
  if (marker) return members.map(() => ({ last: { id: marker.view.id }, next: null }));
  if (shape.cursor === undefined) return members.map(() => (shape.backward ? { last: 'end', next: null } : { last: null, next: null }));
  const { boundaries, owner } = decodeFederatedCursor(query, shape.cursor, members.length);
  if (!shape.backward) return boundaries;
  // The item's own backend is read before the item. Should it fail, the boundary kept for it
  // counts the item as passed: paging forward from this page later resumes after the item.
  const own = boundaries[owner];
  return boundaries.map((b, i) => (i === owner && own.last !== null && typeof own.last === 'object' && 'c' in own.last ? { last: own.last, next: own.last.c } : b));
}

async function findMarker(input: MergedListRequest): Promise<{ view: ArtifactView; rank: number }> {
  const { request } = input;
  if (request.after != null || request.before != null || request.last != null) fail('CURSOR_INVALID', 'afterId pages forward only: pass it without after, before or last');
  const [found] = await input.lookup(input.principal, [parseId(request.afterId!, 'afterId')]);
  if (found instanceof VitrineError) throw found;
  if (!found) fail('CURSOR_INVALID', `no artifact ${request.afterId} to continue after`);
  const owner = input.members.find((m) => m.backend.name === found.backend);
  return { view: found, rank: owner?.rank ?? -1 };
}

function emptyRun(member: ListingMember, start: Boundary, asked: boolean, error?: VitrineError): Run {
  return { member, start, asked, error, items: [], cursors: [], keys: [], more: false, before: start.last, taken: 0 };
}

function runOf(input: MergedListRequest, member: ListingMember, start: Boundary, page: ArtifactPage, more: boolean, before: LastMark): Run {
  const keys = page.items.map((item) => keysetOf(input.sort, item));
  return { member, start, asked: true, page, items: [...page.items], cursors: [...page.cursors], keys, more, before, taken: 0 };
}

function baseRequest(request: ListRequest): ListRequest {
  return { typeName: request.typeName, filter: request.filter, sort: request.sort };
}

/** One backend's candidates: `size + 1` items from its boundary, or its failure. */
async function fetchRun(input: MergedListRequest, member: ListingMember, start: Boundary, marker?: { view: ArtifactView; rank: number }): Promise<Run> {
  const { principal, shape } = input;
  const base = baseRequest(input.request);
  try {
    if (shape.backward) {
      if (start.last === null) return emptyRun(member, start, false);
      const page = await member.backend.list(principal, { ...base, last: shape.size + 1, ...(start.next !== null && { before: start.next }) });
      return runOf(input, member, start, page, page.hasPreviousPage, null);
    }
    const last = start.last;
    if (last === 'end') return emptyRun(member, start, false);
    const position = last === null ? {} : 'c' in last ? { after: last.c } : { afterId: last.id };
    try {
      const page = await member.backend.list(principal, { ...base, first: shape.size + 1, ...position });
      return runOf(input, member, start, page, page.hasNextPage, last);
    } catch (err) {
      // A backend that cannot start after another backend's artifact is scanned instead.
      const foreign = marker !== undefined && marker.view.backend !== member.backend.name;
      if (foreign && err instanceof VitrineError && err.code === 'CURSOR_INVALID') return await scanAfter(input, member, start, marker);
      throw err;
    }
  } catch (err) {
    if (isUnavailability(err)) return emptyRun(member, start, true, err);
    throw err;
  }
}

/**
 * The items of `member` after a marker it does not hold, found by reading it from the
 * start: costs one request per `maxPageSize` items before the marker's position.
 */
async function scanAfter(input: MergedListRequest, member: ListingMember, start: Boundary, marker: { view: ArtifactView; rank: number }): Promise<Run> {
  const markerKey = keysetOf(input.sort, marker.view);
  let before: LastMark = null;
  let after: string | undefined;
  for (;;) {
    const page = await member.backend.list(input.principal, { ...baseRequest(input.request), first: input.limits.maxPageSize, ...(after !== undefined && { after }) });
    const i = page.items.findIndex((item) => (compareKeysets(input.sort, keysetOf(input.sort, item), markerKey) || member.rank - marker.rank) > 0);
    if (i >= 0) {
      const rest: ArtifactPage = { ...page, items: page.items.slice(i), cursors: page.cursors.slice(i) };
      return runOf(input, member, start, rest, page.hasNextPage, i > 0 ? { c: page.cursors[i - 1] } : before);
    }
    if (page.cursors.length > 0) before = { c: page.cursors[page.cursors.length - 1] };
    if (!page.hasNextPage || page.cursors.length === 0) return { ...emptyRun(member, start, true), before };
    after = page.cursors[page.cursors.length - 1];
  }
}

function compareAt(sort: readonly SortKey[], a: Run, i: number, b: Run, j: number): number {
  return compareKeysets(sort, a.keys[i], b.keys[j]) || a.member.rank - b.member.rank;
}

/**
 * The page: forward, the `size` smallest items, taking the smallest next item of all runs in
 * turn; backward, the `size` largest, from the runs' ends. Returns run indexes in page order.
 */
async function take(input: MergedListRequest, runs: Run[]): Promise<number[]> {
  const { sort, shape } = input;
  const order: number[] = [];
  const left = (run: Run) => run.items.length - run.taken;
  const at = (run: Run) => (shape.backward ? run.items.length - 1 - run.taken : run.taken);
  for (;;) {
    // A run that has more than it fetched shows its next item before any comparison; once the
    // page is full, that next item is where the page leaves it.
    const short = runs.filter((run) => left(run) === 0 && run.more);
    if (short.length > 0) await Promise.all(short.map((run) => extend(input, run, shape.size - order.length + 1)));
    if (order.length >= shape.size) break;
    let best = -1;
    runs.forEach((run, r) => {
      if (left(run) === 0) return;
      const c = best < 0 ? 0 : compareAt(sort, run, at(run), runs[best], at(runs[best]));
      if (best < 0 || (shape.backward ? c > 0 : c < 0)) best = r;
    });
    if (best < 0) break;
    runs[best].taken++;
    order.push(best);
  }
  return shape.backward ? order.reverse() : order;
}

/** Fetches up to `size` more items of a run beyond those it holds (after them forward, before them backward). */
async function extend(input: MergedListRequest, run: Run, size: number): Promise<void> {
  const base = baseRequest(input.request);
  if (run.items.length === 0) {
    run.more = false;
    return;
  }
  const page = input.shape.backward
    ? await run.member.backend.list(input.principal, { ...base, last: size, before: run.cursors[0] })
    : await run.member.backend.list(input.principal, { ...base, first: size, after: run.cursors[run.cursors.length - 1] });
  const keys = page.items.map((item) => keysetOf(input.sort, item));
  if (input.shape.backward) {
    run.items.unshift(...page.items);
    run.cursors.unshift(...page.cursors);
    run.keys.unshift(...keys);
    run.more = page.hasPreviousPage && page.items.length > 0;
  } else {
    run.items.push(...page.items);
    run.cursors.push(...page.cursors);
    run.keys.push(...keys);
    run.more = page.hasNextPage && page.items.length > 0;
  }
}

/** Where the page leaves `run` after the position that follows its `seen`-th taken item. */
function boundaryAt(run: Run, seen: number, backward: boolean): Boundary {
  if (run.error) return run.start;
  const { cursors, taken } = run;
  // take() left every run that has more items with at least one beyond the page.
  if (!backward) {
    return {
      last: seen > 0 ? { c: cursors[seen - 1] } : run.before,
      next: seen < cursors.length ? cursors[seen] : null,
    };
  }
  const first = cursors.length - taken;
  return {
    last: seen > 0 ? { c: cursors[first + seen - 1] } : first > 0 ? { c: cursors[first - 1] } : null,
    next: seen < taken ? cursors[first + seen] : run.start.next,
  };
}

/** The sum over the backends that answered; one not asked for this page is counted on its own. */
async function countAll(input: MergedListRequest, runs: Run[]): Promise<number> {
  const counts = await Promise.all(runs.filter((r) => !r.error).map(async (run) => {
    if (run.page) return run.page.totalCount();
    return (await run.member.backend.list(input.principal, { ...baseRequest(input.request), first: 0 })).totalCount();
  }));
  return counts.reduce((a, b) => a + b, 0);
}

/** An array whose items are computed on first read, then kept. */
function lazyList(length: number, make: (i: number) => string): string[] {
  const out = new Array<string>(length);
  for (let i = 0; i < length; i++) {
    Object.defineProperty(out, i, {
      configurable: true,
      enumerable: true,
      get() {
        const value = make(i);
        Object.defineProperty(out, i, { value, configurable: true, enumerable: true, writable: true });
        return value;
      },
    });
  }
  return out;
}

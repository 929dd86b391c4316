import { fail, isUnavailability, VitrineError } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import { compareKeysets, keysetOf } from '../../domain/ordering';
import type { PageLimits, PageShape } from '../../domain/paging';
import type { Principal } from '../../domain/policy';
import type { Keyset, SortKey } from '../../domain/query';
import type { ArtifactBackend, ArtifactPage, ArtifactView, BackendWarning, ListRequest, Lookup } from '../port';
import { decodeFederatedCursor, encodeFederatedCursor, queryFingerprint, type Boundary, type LastMark } from './cursor';

/**
 * One listing merged from several backends. Each backend is asked for one more item than
 * the page holds, from its own position (see cursor.ts); the page takes the smallest items
 * of all heads in turn, so it always takes a prefix of each backend's answer, whatever order
 * that backend keeps, and no item is skipped or repeated across pages. The order is the one
 * a single store holding every row would give (domain/ordering.ts); the same id held by two
 * backends (a migration in progress) is ordered by backend rank.
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
  /** The backend cursor just beyond the fetched items, looked up when the page took them all. */
  beyond: string | null;
}

export async function listMerged(input: MergedListRequest): Promise<ArtifactPage> {
  const { members, request, sort, shape } = input;
  const query = queryFingerprint(sort, members.map((m) => m.backend.name), request.typeName);
  const marker = request.afterId !== undefined ? await findMarker(input) : undefined;
  const starts: Boundary[] = marker
    ? members.map(() => ({ last: { id: marker.view.id }, next: null }))
    : shape.cursor !== undefined
      ? decodeFederatedCursor(query, shape.cursor, members.length)
      : members.map(() => (shape.backward ? { last: 'end', next: null } : { last: null, next: null }));

  const runs = await Promise.all(members.map((member, i) => fetchRun(input, member, starts[i], marker)));
  const failed = runs.filter((r) => r.error);
  if (failed.length > 0 && !runs.some((r) => r.asked && !r.error)) throw failed[0].error!;

  const order = shape.backward ? takeLast(runs, shape.size, sort) : takeFirst(runs, shape.size, sort);
  await Promise.all(runs.map((run) => resolveBeyond(input, run)));
  const remaining = runs.some((r) => !r.error && (r.taken < r.items.length || r.beyond !== null));
  const hadPosition = marker !== undefined || shape.cursor !== undefined;

  const counts = runs.map(() => 0);
  const positions = order.map((runIndex) => {
    counts[runIndex]++;
    return runs.map((run, i) => boundaryAt(run, counts[i], shape.backward));
  });
  let cursors: string[] | undefined;
  const warnings: BackendWarning[] = failed.map((r) => ({ backend: r.member.backend.name, code: r.error!.code, message: r.error!.message }));
  return {
    items: (() => {
      const seen = runs.map((r) => (shape.backward ? r.items.length - r.taken : 0));
      return order.map((runIndex) => runs[runIndex].items[seen[runIndex]++]);
    })(),
    // Each cursor carries every backend's boundary: built only when a client asks for one.
    get cursors() {
      cursors ??= positions.map((boundaries) => encodeFederatedCursor(query, boundaries));
      return cursors;
    },
    hasNextPage: shape.backward ? hadPosition : remaining,
    hasPreviousPage: shape.backward ? remaining : hadPosition,
    totalCount: () => countAll(input, runs),
    ...(warnings.length > 0 && { warnings }),
  };
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
  return { member, start, asked, error, items: [], cursors: [], keys: [], more: false, before: start.last, taken: 0, beyond: null };
}

function runOf(input: MergedListRequest, member: ListingMember, start: Boundary, page: ArtifactPage, more: boolean, before: LastMark): Run {
  const keys = page.items.map((item) => keysetOf(input.sort, item));
  return { member, start, asked: true, page, items: page.items, cursors: page.cursors, keys, more, before, taken: 0, beyond: null };
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

function compareHeads(sort: readonly SortKey[], a: Run, i: number, b: Run, j: number): number {
  return compareKeysets(sort, a.keys[i], b.keys[j]) || a.member.rank - b.member.rank;
}

/** Forward: the `size` smallest items, taking each run's head in turn. Returns run indexes in page order. */
function takeFirst(runs: Run[], size: number, sort: readonly SortKey[]): number[] {
  const order: number[] = [];
  while (order.length < size) {
    let best = -1;
    runs.forEach((run, r) => {
      if (run.taken < run.items.length && (best < 0 || compareHeads(sort, run, run.taken, runs[best], runs[best].taken) < 0)) best = r;
    });
    if (best < 0) break;
    runs[best].taken++;
    order.push(best);
  }
  return order;
}

/** Backward: the `size` largest items, taking each run's tail in turn, then put in page order. */
function takeLast(runs: Run[], size: number, sort: readonly SortKey[]): number[] {
  const order: number[] = [];
  const tail = (run: Run) => run.items.length - 1 - run.taken;
  while (order.length < size) {
    let best = -1;
    runs.forEach((run, r) => {
      if (tail(run) >= 0 && (best < 0 || compareHeads(sort, run, tail(run), runs[best], tail(runs[best])) > 0)) best = r;
    });
    if (best < 0) break;
    runs[best].taken++;
    order.push(best);
  }
  return order.reverse();
}

/**
 * When the page took every fetched item of a backend that has more (it answered with fewer
 * than asked), the next boundary needs its following item: one extra request of one item.
 */
async function resolveBeyond(input: MergedListRequest, run: Run): Promise<void> {
  if (run.error || !run.more || run.taken < run.items.length || run.items.length === 0) return;
  const base = baseRequest(input.request);
  const page = input.shape.backward
    ? await run.member.backend.list(input.principal, { ...base, last: 1, before: run.cursors[0] })
    : await run.member.backend.list(input.principal, { ...base, first: 1, after: run.cursors[run.cursors.length - 1] });
  run.beyond = page.cursors[0] ?? null;
}

/** Where the page leaves `run` after the position that follows its `seen`-th taken item. */
function boundaryAt(run: Run, seen: number, backward: boolean): Boundary {
  if (run.error) return run.start;
  const { cursors, taken } = run;
  if (!backward) {
    return {
      last: seen > 0 ? { c: cursors[seen - 1] } : run.before,
      next: seen < cursors.length ? cursors[seen] : run.beyond,
    };
  }
  const first = cursors.length - taken;
  return {
    last: seen > 0 ? { c: cursors[first + seen - 1] } : first > 0 ? { c: cursors[first - 1] } : run.beyond !== null ? { c: run.beyond } : null,
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

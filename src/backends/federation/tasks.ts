import { fail, isUnavailability, VitrineError } from '../../domain/errors';
import { isAdmin, type Principal } from '../../domain/policy';
import { compareTasks } from '../../domain/task-order';
import type { ArtifactBackend, TaskListRequest, TaskPage, TaskView } from '../port';

interface Ranked {
  task: TaskView;
  rank: number;
}

interface Run {
  tasks: TaskView[];
  hasNextPage: boolean;
  error?: VitrineError;
}

/**
 * The task lists of several backends merged into one order (the key, createdAt, id; then the
 * backend's rank; to the second for a Glance's tasks, which show no finer times). A marker is found in whichever backend holds it; the others cannot start
 * after a task they do not hold, so they are read from the start up to its position, as
 * image listings do with a foreign marker. A backend that does not answer is left out with a
 * warning while others answer.
 */
export async function listMergedTasks(backends: readonly ArtifactBackend[], principal: Principal, request: TaskListRequest, scanPageSize: number): Promise<TaskPage> {
  if (backends.length === 1) return backends[0].listTasks(principal, request);
  if (!isAdmin(principal)) fail('FORBIDDEN', 'only admins may list every task');
  const key = request.sortKey ?? 'createdAt';
  const direction = request.direction ?? 'desc';
  const limit = Math.max(0, Math.floor(request.limit));
  const marker = request.afterId !== undefined ? await findTask(backends, principal, request.afterId) : undefined;
  const after = (item: Ranked, position: Ranked) => (compareTasks(item.task, position.task, key, direction) || item.rank - position.rank) > 0;

  const runs = await Promise.all(backends.map(async (backend, rank): Promise<Run> => {
    try {
      if (marker === undefined || marker.rank === rank) return await backend.listTasks(principal, { ...request, limit: limit + 1 });
      return await scanAfter(backend, principal, { ...request, afterId: undefined }, (task) => after({ task, rank }, marker), limit + 1, scanPageSize);
    } catch (err) {
      if (isUnavailability(err)) return { tasks: [], hasNextPage: false, error: err };
      throw err;
    }
  }));
  const failed = backends.map((backend, i) => ({ backend, run: runs[i] })).filter(({ run }) => run.error);
  if (failed.length === backends.length) throw failed[0].run.error!;

  const merged = mergeRuns(runs.map((run) => run.tasks), limit + 1, (a, b) => compareTasks(a.task, b.task, key, direction) || a.rank - b.rank);
  const warnings = failed.map(({ backend, run }) => ({ backend: backend.name, code: run.error!.code, message: run.error!.message }));
  return {
    tasks: merged.slice(0, limit).map((r) => r.task),
    hasNextPage: merged.length > limit || runs.some((run) => run.hasNextPage),
    ...(warnings.length > 0 && { warnings }),
  };
}

async function findTask(backends: readonly ArtifactBackend[], principal: Principal, id: string): Promise<Ranked> {
  let failure: VitrineError | undefined;
  for (const [rank, backend] of backends.entries()) {
    try {
      return { task: await backend.getTask(principal, id), rank };
    } catch (err) {
      if (isUnavailability(err)) failure ??= err;
      else if (!(err instanceof VitrineError && err.code === 'NOT_FOUND')) throw err;
    }
  }
  throw failure ?? new VitrineError('CURSOR_INVALID', `task ${JSON.stringify(id.slice(0, 64))} was not found`);
}

/** Up to `want` tasks of `backend` that `isAfter` accepts, read from the start in pages of `pageSize`. */
async function scanAfter(backend: ArtifactBackend, principal: Principal, request: TaskListRequest, isAfter: (task: TaskView) => boolean, want: number, pageSize: number): Promise<Run> {
  const tasks: TaskView[] = [];
  let afterId: string | undefined;
  for (;;) {
    const page = await backend.listTasks(principal, { ...request, limit: pageSize, ...(afterId !== undefined && { afterId }) });
    tasks.push(...page.tasks.filter(isAfter));
    if (tasks.length >= want) return { tasks: tasks.slice(0, want), hasNextPage: true };
    if (!page.hasNextPage || page.tasks.length === 0) return { tasks, hasNextPage: false };
    afterId = page.tasks[page.tasks.length - 1].id;
  }
}

/**
 * The first `count` tasks of sorted runs, merged. Each run keeps its backend's own order: a
 * Glance orders by times in microseconds but shows them in seconds, so its tasks are never
 * re-sorted against each other, only against other backends' tasks.
 */
function mergeRuns(runs: TaskView[][], count: number, compare: (a: Ranked, b: Ranked) => number): Ranked[] {
  const heads = runs.map(() => 0);
  const out: Ranked[] = [];
  while (out.length < count) {
    let best: Ranked | undefined;
    runs.forEach((run, rank) => {
      if (heads[rank] >= run.length) return;
      const candidate = { task: run[heads[rank]], rank };
      if (best === undefined || compare(candidate, best) < 0) best = candidate;
    });
    if (best === undefined) break;
    heads[best.rank]++;
    out.push(best);
  }
  return out;
}

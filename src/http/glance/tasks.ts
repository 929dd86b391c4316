import type { FastifyInstance } from 'fastify';
import type { TaskFilter, TaskListRequest, TaskSortKey, TaskView } from '../../backends/port';
import { TASK_STATUSES } from '../../domain/artifact';
import { VitrineError } from '../../domain/errors';
import { glanceTime } from '../../domain/glance-image';
import { isAdmin } from '../../domain/policy';
import { rawQuery, type FacadeContext } from './context';
import { badRequest, forbidden } from './errors';
import type { ListLimits } from './listing';
import { principalOf, resource } from './router';

/**
 * `GET /v2/tasks` with Glance 25.1's semantics (api/v2/tasks.py RequestDeserializer.index,
 * TasksController.index, the stub view of ResponseSerializer; db task_get_all), checked in
 * Glance's order: access, sort_dir, status, type, marker format, limit, then the marker
 * itself and the sort key.
 */
export function registerTaskListRoute(scope: FastifyInstance, ctx: FacadeContext): void {
  resource(scope, '/tasks', {
    GET: async (request) => {
      const principal = principalOf(request);
      // tasks_api_access ("role:admin" by default) is enforced before anything is read.
      if (!isAdmin(principal)) throw forbidden('You are not authorized to complete tasks_api_access action.');
      const query = parseTaskListQuery(rawQuery(request), ctx.paging);
      if (query.badSortKey) {
        // Glance reads the marker before it builds the order.
        if (query.marker !== undefined) await ctx.backend.getTask(principal, query.marker).catch(markerError(query.marker));
        throw badRequest('Sort key supplied was not valid.');
      }
      const page = await ctx.backend.listTasks(principal, query.request).catch(markerError(query.marker ?? ''));
      if (page.warnings) request.log.warn({ warnings: page.warnings }, 'Glance facade: task list without the backends that did not answer');
      const body: Record<string, unknown> = { tasks: page.tasks.map(taskStubJson), first: query.first, schema: '/v2/schemas/tasks' };
      // Glance links a next page whenever this one is full, even if it turns out empty.
      const last = page.tasks.at(-1);
      if (last && page.tasks.length === query.request.limit) body.next = query.next(last.id);
      return body;
    },
  });
}

/** An unknown marker is Glance's 400 (TaskNotFound), whatever the backend called it. */
function markerError(marker: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof VitrineError && (err.code === 'CURSOR_INVALID' || err.code === 'NOT_FOUND')) throw badRequest(`Task with the given id ${marker} was not found`);
    throw err;
  };
}

export interface TaskListQuery {
  request: TaskListRequest;
  /** The marker as given (for Glance's message). */
  marker?: string;
  /** sort_key names no task column: 400 once the marker has been looked up. */
  badSortKey: boolean;
  first: string;
  next(lastId: string): string;
}

/** Glance's task columns by the names its list takes; `deleted`/`deleted_at` sort as constants (nothing listed is deleted). */
const COLUMNS: Record<string, TaskSortKey | null> = {
  id: 'id', type: 'type', status: 'status', owner: 'owner', image_id: 'imageId', user_id: 'userId', request_id: 'requestId',
  created_at: 'createdAt', updated_at: 'updatedAt', expires_at: 'expiresAt', deleted: null, deleted_at: null,
};
const TIME_COLUMNS = new Set(['created_at', 'updated_at', 'expires_at', 'deleted_at']);
/** Glance's deserializer accepts only the legacy type in the filter. */
const FILTER_TYPES = ['import'];

export function parseTaskListQuery(raw: string, limits: ListLimits): TaskListQuery {
  const params = new URLSearchParams(raw);
  // webob: pop() takes the first value of a repeated parameter, get() the last.
  const first = (key: string) => params.get(key) ?? undefined;
  const last = (key: string) => params.getAll(key).at(-1);

  const sortDir = first('sort_dir') ?? 'desc';
  if (sortDir !== 'asc' && sortDir !== 'desc') throw badRequest(`Invalid sort direction: ${sortDir}`);
  const status = last('status');
  if (status && !(TASK_STATUSES as readonly string[]).includes(status)) throw badRequest(`Invalid status value: ${status}`);
  const type = last('type');
  if (type && !FILTER_TYPES.includes(type)) throw badRequest(`Invalid type value: ${type}`);
  const marker = first('marker');
  if (marker && !isUuidLike(marker)) throw badRequest('Invalid marker format');
  const limit = parseLimit(first('limit'), limits);

  // Every other parameter naming a task column filters by equality (an empty value too).
  const filter: TaskFilter = {};
  let matchesNothing = false;
  for (const key of new Set(params.keys())) {
    if (['limit', 'marker', 'sort_key', 'sort_dir', 'deleted'].includes(key) || !(key in COLUMNS)) continue;
    // Glance compares a time column with the text as given: nothing it shows ever matches.
    if (TIME_COLUMNS.has(key)) matchesNothing = true;
    else filter[COLUMNS[key] as keyof TaskFilter] = last(key)!;
  }
  if (matchesNothing) filter.id = '';

  const sortKeyName = first('sort_key') ?? 'created_at';
  const sortKey = Object.prototype.hasOwnProperty.call(COLUMNS, sortKeyName) ? COLUMNS[sortKeyName] ?? 'createdAt' : undefined;
  const request: TaskListRequest = { filter, sortKey: sortKey ?? 'createdAt', direction: sortDir, limit };
  // An empty marker is looked up too (and not found), as in Glance.
  if (marker !== undefined) request.afterId = marker;
  return {
    request,
    marker,
    badSortKey: sortKey === undefined,
    first: link(params, undefined),
    next: (lastId) => link(params, lastId),
  };
}

function parseLimit(raw: string | undefined, limits: ListLimits): number {
  const max = Math.min(limits.maxPageSize, 1000);
  if (raw === undefined) return Math.min(limits.defaultPageSize, max);
  // Python's int(): surrounding blanks, a sign, digits (underscores between them).
  if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(raw)) throw badRequest('limit param must be an integer');
  const n = Number(raw.trim().replace(/_/g, ''));
  if (n < 0) throw badRequest('limit param must be positive');
  return Math.min(n, max);
}

/** oslo's is_uuid_like: what uuid.UUID reads once `urn:`, `uuid:`, outer braces and hyphens are dropped. */
function isUuidLike(value: string): boolean {
  const hex = value.split('urn:').join('').split('uuid:').join('').replace(/^[{}]+|[{}]+$/g, '').replace(/-/g, '');
  return /^[0-9a-f]{32}$/i.test(hex);
}

/**
 * Glance's links: the query as a dict (one value per key, the last, in first-seen order)
 * without `marker`, urlencoded as Python does, then the new marker.
 */
function link(params: URLSearchParams, marker: string | undefined): string {
  const pairs = new Map<string, string>();
  for (const [key, value] of params) if (key !== 'marker') pairs.set(key, value);
  if (marker !== undefined) pairs.set('marker', marker);
  const text = [...pairs].map(([k, v]) => `${pyQuote(k)}=${pyQuote(v)}`).join('&');
  return text ? `/v2/tasks?${text}` : '/v2/tasks';
}

/** urllib.parse.quote_plus: like encodeURIComponent, but also escapes !'()* and writes spaces as '+'. */
function pyQuote(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The list's stub of a task (Glance's partial task schema: no input, result or message). */
export function taskStubJson(task: TaskView): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: task.id,
    type: task.type,
    status: task.status,
    owner: task.owner,
    created_at: glanceTime(task.createdAt),
    updated_at: glanceTime(task.updatedAt),
    self: `/v2/tasks/${task.id}`,
    schema: '/v2/schemas/task',
  };
  if (task.expiresAt) json.expires_at = glanceTime(task.expiresAt);
  return json;
}

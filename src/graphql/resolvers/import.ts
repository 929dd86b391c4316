import type { ImportMethod as PortImportMethod, TaskPage, TaskSortKey as PortTaskSortKey, TaskView } from '../../backends/port';
import { fail, VitrineError } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import { warningError } from '../errors';
import type { ImportMethod, ImportTaskStatus, Resolvers, TaskSortKey } from '../__generated__/resolvers';

/** Image import: start one, follow its tasks, manage stores (docs/import.md). */
const METHODS: Record<ImportMethod, PortImportMethod> = { GLANCE_DIRECT: 'glance-direct', WEB_DOWNLOAD: 'web-download', COPY_IMAGE: 'copy-image', GLANCE_DOWNLOAD: 'glance-download' };

const SORT_KEYS: Record<TaskSortKey, PortTaskSortKey> = {
  CREATED_AT: 'createdAt', UPDATED_AT: 'updatedAt', EXPIRES_AT: 'expiresAt', ID: 'id', STATUS: 'status', OWNER: 'owner', IMAGE_ID: 'imageId',
};
/** Glance's limit_param_default and api_limit_max. */
const TASK_PAGE = { default: 25, max: 1000 };

/** A page of the task list as the connection resolves it. */
export interface TaskConnectionPage extends TaskPage {
  startedAfterCursor: boolean;
}

/** Task cursors name the task the next page starts after (the backends page by marker). */
function taskCursor(id: string): string {
  return Buffer.from(JSON.stringify({ task: id })).toString('base64url');
}

function taskOfCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { task?: unknown };
    if (typeof parsed.task === 'string') return parsed.task;
  } catch {
    // falls through to the error below
  }
  return fail('CURSOR_INVALID', 'the cursor is not one this server issued');
}

export const importResolvers: Resolvers = {
  Query: {
    stores: (_root, _args, ctx) => ctx.backend.stores(ctx.principal),
    imageTasks: (_root, { imageId }, ctx) => ctx.backend.tasksOf(ctx.principal, parseId(imageId)),
    tasks: async (_root, { filter, sortKey, direction, first, after }, ctx, info) => {
      const limit = first ?? TASK_PAGE.default;
      if (!Number.isInteger(limit) || limit < 0 || limit > TASK_PAGE.max) fail('PAGE_SIZE_INVALID', `first must be between 0 and ${TASK_PAGE.max}, got ${limit}`);
      const page = await ctx.backend.listTasks(ctx.principal, {
        filter: {
          ...(filter?.status && { status: filter.status.toLowerCase() }),
          ...(filter?.imageId && { imageId: parseId(filter.imageId) }),
          ...(filter?.owner != null && { owner: filter.owner }),
        },
        sortKey: SORT_KEYS[sortKey ?? 'CREATED_AT'],
        direction: direction === 'ASC' ? 'asc' : 'desc',
        limit,
        ...(after != null && { afterId: taskOfCursor(after) }),
      });
      for (const warning of page.warnings ?? []) ctx.warnings.push(warningError(warning, info.path));
      return { ...page, startedAfterCursor: after != null };
    },
    importTask: async (_root, { id }, ctx) => {
      try {
        return await ctx.backend.getTask(ctx.principal, parseId(id));
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'NOT_FOUND') return null;
        throw err;
      }
    },
  },
  Mutation: {
    importImage: (_root, { id, input }, ctx) =>
      ctx.backend.importImage(ctx.principal, parseId(id), {
        method: METHODS[input.method],
        uri: input.uri ?? undefined,
        glanceImageId: input.glanceImageId ?? undefined,
        glanceRegion: input.glanceRegion ?? undefined,
        glanceServiceInterface: input.glanceServiceInterface ?? undefined,
        stores: input.stores ?? undefined,
        allStores: input.allStores ?? undefined,
        allStoresMustSucceed: input.allStoresMustSucceed ?? undefined,
      }),
    deleteImageFromStore: async (_root, { id, store }, ctx) => {
      const image = await ctx.backend.deleteFromStore(ctx.principal, parseId(id), store);
      ctx.loaders.artifact.clear(image.id).prime(image.id, image);
      return image;
    },
  },
  ImportTaskConnection: {
    edges: (page) => page.tasks.map((node) => ({ cursor: taskCursor(node.id), node })),
    nodes: (page) => page.tasks,
    pageInfo: (page) => ({
      hasNextPage: page.hasNextPage,
      hasPreviousPage: page.startedAfterCursor,
      startCursor: page.tasks.length > 0 ? taskCursor(page.tasks[0].id) : null,
      endCursor: page.tasks.length > 0 ? taskCursor(page.tasks[page.tasks.length - 1].id) : null,
    }),
  },
  ImportTask: {
    status: (task: TaskView) => task.status.toUpperCase() as ImportTaskStatus,
  },
};

import type { ImportMethod as PortImportMethod, TaskView } from '../../backends/port';
import { VitrineError } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import type { ImportMethod, ImportTaskStatus, Resolvers } from '../__generated__/resolvers';

/** Image import: start one, follow its tasks, manage stores (docs/import.md). */
const METHODS: Record<ImportMethod, PortImportMethod> = { GLANCE_DIRECT: 'glance-direct', WEB_DOWNLOAD: 'web-download', COPY_IMAGE: 'copy-image', GLANCE_DOWNLOAD: 'glance-download' };

export const importResolvers: Resolvers = {
  Query: {
    stores: (_root, _args, ctx) => ctx.backend.stores(ctx.principal),
    imageTasks: (_root, { imageId }, ctx) => ctx.backend.tasksOf(ctx.principal, parseId(imageId)),
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
  ImportTask: {
    status: (task: TaskView) => task.status.toUpperCase() as ImportTaskStatus,
  },
};

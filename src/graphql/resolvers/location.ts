import type { ArtifactView } from '../../backends/port';
import { parseId } from '../../domain/ids';
import type { GraphQLContext } from '../context';
import type { Resolvers } from '../__generated__/resolvers';

/** Image locations (docs/glance-compat.md, "Locations"): the same backend calls and error codes as the Glance facade's PATCH. */
export const locationResolvers: Resolvers = {
  Mutation: {
    addImageLocation: async (_root, { id, input }, ctx) => {
      const data = input.validationData;
      const image = await ctx.backend.addImageLocation(ctx.principal, parseId(id), {
        url: input.url,
        metadata: input.metadata ?? {},
        ...(data && { validationData: { ...(data.checksum != null && { checksum: data.checksum }), os_hash_algo: data.osHashAlgo, os_hash_value: data.osHashValue } }),
        ...(input.position != null && { position: input.position }),
      });
      return refreshed(ctx, image);
    },
    removeImageLocation: async (_root, { id, index }, ctx) => refreshed(ctx, await ctx.backend.removeImageLocation(ctx.principal, parseId(id), index)),
  },
};

/** The request's loaders forget what they read of the image before the change. */
function refreshed(ctx: GraphQLContext, image: ArtifactView): ArtifactView {
  ctx.loaders.artifact.clear(image.id).prime(image.id, image);
  ctx.loaders.locations.clear(image.id);
  ctx.loaders.blobs.clear(image.id);
  return image;
}

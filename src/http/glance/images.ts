import type { FastifyInstance } from 'fastify';
import type { ArtifactView, StatusAction } from '../../backends/port';
import { VitrineError } from '../../domain/errors';
import { isUuid } from '../../domain/ids';
import { isAdmin, requireVisibilityChange, requireWrite, type Principal } from '../../domain/policy';
import { mediaType, readJson } from './body';
import { baseUrl, loadImage, param, rawQuery, type FacadeContext } from './context';
import { parseCreateBody } from './create-body';
import { badRequest, forbidden, GlanceHttpError, notFound } from './errors';
import { imageHref, toGlanceImage, type GlanceImage } from '../../domain/glance-image';
import { parseImageListQuery } from './listing';
import { PageCache, wantsFresh } from '../page-cache';
import { applyPatch, locationPosition, locationRequest, parsePatch, patchDialect, patchToChange, type PatchOperation } from './patch';
import { principalOf, resource } from './router';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Images: list, create, show, update (JSON patch), delete, de/reactivate, tags. */
export function registerImageRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  const { backend } = ctx;

  resource(scope, '/images', {
    GET: async (request, reply) => {
      const principal = principalOf(request);
      const raw = rawQuery(request);
      const query = parseImageListQuery(raw, ctx.paging);
      // The mark is read before listing: a write that lands in between moves it, so what is
      // rendered below can only be stored under a mark that is already out of date.
      const mark = ctx.listPages.enabled ? await backend.listMark() : undefined;
      const key = PageCache.key(principal, raw);
      if (mark !== undefined && !wantsFresh(request)) {
        const cached = ctx.listPages.get(key, mark);
        if (cached !== undefined) return reply.type(JSON_TYPE).send(cached);
      }
      if (query.marker !== undefined) {
        // Glance answers an unknown (or invisible) marker with 400, not with an empty page.
        const [marker] = isUuid(query.marker) ? await backend.getMany(principal, [query.marker.toLowerCase()]) : [null];
        if (marker instanceof Error) throw marker;
        if (!marker) throw badRequest(`No image found with ID ${query.marker}`);
      }
      const page = await backend.list(principal, { ...query.request, afterId: query.marker?.toLowerCase() });
      // Glance clients cannot show a partial failure: they get what the other backends hold
      // (the operator gets the log line). When every backend fails, list() throws: 503.
      if (page.warnings) request.log.warn({ warnings: page.warnings }, 'Glance facade: image list without the backends that did not answer');
      const body: Record<string, unknown> = {
        images: await render(ctx, principal, page.items),
        first: query.first,
        schema: '/v2/schemas/images',
      };
      // Glance links a next page whenever this one is full, even if it turns out empty.
      const last = page.items.at(-1);
      if (last && page.items.length === query.limit) body.next = query.next(last.id);
      // A partial federated page is never kept: the missing backend may answer next time.
      if (mark === undefined || page.warnings) return body;
      const json = JSON.stringify(body);
      ctx.listPages.set(key, mark, json);
      return reply.type(JSON_TYPE).send(json);
    },

    POST: async (request, reply) => {
      const principal = principalOf(request);
      const create = parseCreateBody(await readJson(request, ctx.bodyLimit), ctx.schemas.image);
      const image = await backend.create(principal, create);
      if (ctx.multistore) reply.header('openstack-image-store-ids', (await backend.stores(principal)).map((s) => s.id).join(','));
      return reply
        .code(201)
        .header('location', `${baseUrl(request)}${imageHref(image.id)}`)
        // openstacksdk reads the import methods from this header.
        .header('openstack-image-import-methods', ctx.importMethods.join(','))
        .send((await render(ctx, principal, [image]))[0]);
    },
  });

  resource(scope, '/images/:imageId', {
    GET: async (request) => {
      const principal = principalOf(request);
      return (await render(ctx, principal, [await loadImage(ctx, principal, param(request, 'imageId'))]))[0];
    },

    PATCH: async (request) => {
      // Glance judges the media type and the operations before it looks the image up.
      const dialect = patchDialect(mediaType(request));
      const operations = parsePatch(await readJson(request, ctx.bodyLimit), dialect, ctx.schemas.image);
      const principal = principalOf(request);
      const current = await loadImage(ctx, principal, param(request, 'imageId'));
      // Location operations answer to their own policies (the backend's), as in Glance.
      const locationOps = operations.filter((o) => o.property === 'locations');
      if (locationOps.length < operations.length || operations.length === 0) requireWrite(principal, current, 'change this image');
      // What the patch is judged against: the image without its locations (applied apart).
      const shown = toGlanceImage(current, { multistore: ctx.multistore });
      const { change, visibility } = patchToChange(shown, applyPatch(shown, operations, { isAdmin: isAdmin(principal) }));
      // Checked before anything is written, so a refused visibility leaves no half-applied patch.
      if (visibility) requireVisibilityChange(principal, 'image', current, visibility, ctx.policies);
      let updated = current;
      // Locations first, in order, each its own write (Glance changes them on the image
      // as it walks the patch, and a removed stored location's data goes at once).
      for (const op of locationOps) updated = await applyLocationOperation(ctx, principal, current.id, op);
      if (Object.keys(change).length > 0) updated = await backend.update(principal, current.id, change, locationOps.length > 0 ? undefined : current.revision);
      if (visibility) updated = await backend.setVisibility(principal, current.id, visibility, updated.revision);
      return (await render(ctx, principal, [updated]))[0];
    },

    DELETE: async (request, reply) => {
      const principal = principalOf(request);
      const id = param(request, 'imageId');
      // Glance words a missing image differently on DELETE.
      const current = await loadImage(ctx, principal, id).catch((err: unknown) => {
        throw err instanceof GlanceHttpError && err.status === 404 ? notFound(`Failed to find image ${id} to delete`) : err;
      });
      try {
        await backend.delete(principal, current.id);
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'PROTECTED') throw forbidden(`Image ${current.id} is protected and cannot be deleted.`);
        throw err;
      }
      return reply.code(204).send();
    },
  });

  for (const action of ['deactivate', 'reactivate'] as const satisfies readonly StatusAction[]) {
    resource(scope, `/images/:imageId/actions/${action}`, {
      POST: async (request, reply) => {
        const principal = principalOf(request);
        const current = await loadImage(ctx, principal, param(request, 'imageId'));
        try {
          await backend.changeStatus(principal, current.id, action);
        } catch (err) {
          // Glance's domain raises Forbidden (403) for these, not a conflict.
          if (err instanceof VitrineError && err.code === 'TRANSITION_FORBIDDEN') throw forbidden(`Not allowed to ${action} image in status '${current.status}'`);
          throw err;
        }
        return reply.code(204).send();
      },
    });
  }

  resource(scope, '/images/:imageId/tags/:tag', {
    PUT: async (request, reply) => {
      const principal = principalOf(request);
      const current = await loadImage(ctx, principal, param(request, 'imageId'));
      await backend.update(principal, current.id, { addTags: [param(request, 'tag')] });
      return reply.code(204).send();
    },
    DELETE: async (request, reply) => {
      const principal = principalOf(request);
      const current = await loadImage(ctx, principal, param(request, 'imageId'));
      const tag = param(request, 'tag');
      if (!current.tags.includes(tag)) throw notFound('The resource could not be found.');
      await backend.update(principal, current.id, { removeTags: [tag] });
      return reply.code(204).send();
    },
  });
}

/** Images as Glance shows them, with their locations (one backend call for the whole page). */
async function render(ctx: FacadeContext, principal: Principal, images: readonly ArtifactView[]): Promise<GlanceImage[]> {
  if (images.length === 0) return [];
  const locations = await ctx.backend.locationsOf(principal, images.map((i) => i.id));
  return images.map((image, i) => toGlanceImage(image, { multistore: ctx.multistore, showLocations: ctx.showLocations, locations: locations[i] }));
}

async function applyLocationOperation(ctx: FacadeContext, principal: Principal, id: string, op: PatchOperation): Promise<ArtifactView> {
  switch (op.op) {
    case 'add':
      return ctx.backend.addImageLocation(principal, id, locationRequest(op.value, locationPosition(op.position, 'add')));
    case 'replace':
      // Glance refuses an empty list before anything else, whatever the switch says.
      if (Array.isArray(op.value) && op.value.length === 0) throw forbidden('Cannot set locations to empty list.');
      return ctx.backend.replaceImageLocations(principal, id, (op.value as unknown[]).map((v) => locationRequest(v)));
    case 'remove':
      return ctx.backend.removeImageLocation(principal, id, locationPosition(op.position, 'remove') ?? -1);
  }
}

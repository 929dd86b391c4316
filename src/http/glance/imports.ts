import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IMPORT_METHODS, type ImportMethod, type ImportRequest, type TaskView } from '../../backends/port';
import { VitrineError } from '../../domain/errors';
import { isUuid } from '../../domain/ids';
import { isObject, mediaType, readJson } from './body';
import { loadImage, param, type FacadeContext } from './context';
import { discardBeforeAnswer } from '../drain';
import { uploadMeta } from './data';
import { badRequest, conflict, glanceError, notFound } from './errors';
import { glanceTime } from '../../domain/glance-image';
import { principalOf, requestIdOf, resource } from './router';

/**
 * Interoperable import (Glance images.py import_image, image_data.py stage, tasks.py):
 * stage, import, an image's tasks, one task, and deleting data from one store. The backend
 * runs the import; the facade maps Glance's request and status codes onto the port.
 */
export function registerImportRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  resource(scope, '/images/:imageId/stage', { PUT: (request, reply) => stage(ctx, request, reply) });
  resource(scope, '/images/:imageId/import', { POST: (request, reply) => startImport(ctx, request, reply) });
  resource(scope, '/images/:imageId/tasks', {
    GET: async (request) => {
      const principal = principalOf(request);
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      return { tasks: (await ctx.backend.tasksOf(principal, image.id)).map(taskJson) };
    },
  });
  resource(scope, '/tasks/:taskId', {
    GET: async (request) => {
      const id = param(request, 'taskId');
      if (!isUuid(id)) throw notFound(`Task with the given id ${id} was not found`);
      return taskJson(await ctx.backend.getTask(principalOf(request), id.toLowerCase()).catch((err: unknown) => {
        throw err instanceof VitrineError && err.code === 'NOT_FOUND' ? notFound(`Task with the given id ${id} was not found`) : err;
      }));
    },
  });
  resource(scope, '/stores/:store/:imageId', {
    DELETE: async (request, reply) => {
      const principal = principalOf(request);
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      try {
        await ctx.backend.deleteFromStore(principal, image.id, param(request, 'store'));
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'STORE_UNKNOWN') throw badRequest(err.message);
        if (err instanceof VitrineError && (err.code === 'TRANSITION_FORBIDDEN' || err.code === 'IMPORT_BUSY')) throw conflict(err.message);
        throw err;
      }
      return reply.code(204).send();
    },
  });
}

async function stage(ctx: FacadeContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  try {
    // Glance serves no stage call when glance-direct is off.
    if (!ctx.importMethods.includes('glance-direct')) throw notFound('The resource could not be found.');
    const type = mediaType(request);
    if (type !== 'application/octet-stream') throw glanceError(415, `The request media type ${type || 'None'} is not supported by this server.`);
    const meta = uploadMeta(request);
    const principal = principalOf(request);
    const image = await loadImage(ctx, principal, param(request, 'imageId'));
    const aborted = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) aborted.abort();
    });
    try {
      await ctx.backend.stageImage(principal, image.id, request.raw, meta, aborted.signal);
    } catch (err) {
      if (err instanceof VitrineError && (err.code === 'TRANSITION_FORBIDDEN' || err.code === 'BLOB_BUSY')) throw conflict(`Image status transition from ${image.status} to uploading is not allowed`);
      throw err;
    }
    return reply.code(204).send();
  } catch (err) {
    await discardBeforeAnswer(request, reply);
    throw err;
  }
}

async function startImport(ctx: FacadeContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const principal = principalOf(request);
  const image = await loadImage(ctx, principal, param(request, 'imageId'));
  const body = await readJson(request, ctx.bodyLimit);
  const importRequest = parseImportBody(body, request.headers['x-image-meta-store']);
  if (!ctx.importMethods.includes(importRequest.method)) throw badRequest(`Import method ${importRequest.method} is not enabled`);
  try {
    await ctx.backend.importImage(principal, image.id, importRequest, requestIdOf(request));
  } catch (err) {
    if (!(err instanceof VitrineError)) throw err;
    switch (err.code) {
      // Glance answers 409 for every import precondition, unknown stores included.
      case 'TRANSITION_FORBIDDEN':
      case 'IMPORT_BUSY':
      case 'STORE_UNKNOWN':
      case 'BLOB_BUSY':
        throw conflict(err.message);
      case 'URL_FORBIDDEN':
        throw badRequest(err.message.startsWith(FILTER_PREFIX) ? err.message : `${FILTER_PREFIX}: ${err.message}`);
      default:
        throw err;
    }
  }
  return reply.code(202).send();
}

const FILTER_PREFIX = 'URI for web-download does not pass filtering';

/** Glance's import body: `{method: {name, uri?}, stores?, all_stores?, all_stores_must_succeed?}`. */
export function parseImportBody(body: unknown, storeHeader: string | string[] | undefined): ImportRequest {
  if (!isObject(body) || !isObject(body.method) || typeof body.method.name !== 'string') throw badRequest('Import request requires a \'method\' field with a \'name\'.');
  const name = body.method.name;
  if (!(IMPORT_METHODS as readonly string[]).includes(name)) throw badRequest(`Unknown import method name '${name}'.`);
  const request: ImportRequest = { method: name as ImportMethod };
  if (body.method.uri !== undefined) {
    if (typeof body.method.uri !== 'string') throw badRequest('uri must be a string');
    request.uri = body.method.uri;
  }
  if (name === 'glance-download') {
    for (const [key, field] of [['glance_image_id', 'glanceImageId'], ['glance_region', 'glanceRegion'], ['glance_service_interface', 'glanceServiceInterface']] as const) {
      const value = body.method[key];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw badRequest(`'${key}' must be a string`);
      request[field] = value;
    }
  }
  for (const [key, field] of [['all_stores', 'allStores'], ['all_stores_must_succeed', 'allStoresMustSucceed']] as const) {
    const value = body[key];
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw badRequest(`'${key}' must be a boolean`);
    request[field] = value;
  }
  const stores = body.stores ?? (typeof storeHeader === 'string' && storeHeader !== '' ? [storeHeader] : undefined);
  if (stores !== undefined) {
    if (!Array.isArray(stores) || stores.some((s) => typeof s !== 'string')) throw badRequest('\'stores\' must be a list of store names');
    request.stores = stores as string[];
  }
  return request;
}

/** Glance's task JSON (tasks.py ResponseSerializer, image tasks use request_id and user_id). */
export function taskJson(task: TaskView): Record<string, unknown> {
  return {
    id: task.id,
    type: task.type,
    status: task.status,
    owner: task.owner,
    input: task.input,
    result: task.result,
    message: task.message,
    image_id: task.imageId,
    request_id: task.requestId,
    user_id: task.userId,
    expires_at: task.expiresAt ? glanceTime(task.expiresAt) : null,
    created_at: glanceTime(task.createdAt),
    updated_at: glanceTime(task.updatedAt),
    self: `/v2/tasks/${task.id}`,
    schema: '/v2/schemas/task',
  };
}

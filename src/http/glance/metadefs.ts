import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {
  MetadefAssociation, MetadefCatalog, MetadefNamespace, MetadefNamespaceDetail, MetadefObject, MetadefProperty, MetadefResourceType, MetadefTag,
  NamespaceListItem, NamespaceListRequest,
} from '../../backends/port';
import { glanceTime } from '../../domain/glance-image';
import { isObject, readJson } from './body';
import { param } from './context';
import { badRequest } from './errors';
import type { ListLimits } from './listing';
import { principalOf, resource } from './router';

/**
 * Glance's metadata definitions API (/v2/metadefs/..., Glance metadef_*.py and router.py),
 * served from the MetadefCatalog port. The catalog validates and authorises; this module
 * reads requests and renders Glance's JSON, which leaves out what is unset and differs
 * between a create's echo and a later read (e.g. timestamps of nested entries).
 */
export interface MetadefRouteOptions {
  metadefs: MetadefCatalog;
  bodyLimit: number;
  paging: ListLimits;
}

const NAMESPACES = '/v2/metadefs/namespaces';
const NAMESPACE_SCHEMA = '/v2/schemas/metadefs/namespace';
const OBJECT_SCHEMA = '/v2/schemas/metadefs/object';

const ns = (name: string) => `${NAMESPACES}/${name}`;

function times(x: { createdAt: string; updatedAt: string }): { created_at: string; updated_at: string } {
  return { created_at: glanceTime(x.createdAt), updated_at: glanceTime(x.updatedAt) };
}

export function namespaceJson(n: MetadefNamespace): Record<string, unknown> {
  return {
    namespace: n.namespace,
    ...(n.displayName !== null && { display_name: n.displayName }),
    ...(n.description !== null && { description: n.description }),
    visibility: n.visibility,
    protected: n.protected,
    ...(n.owner !== null && { owner: n.owner }),
    ...times(n),
  };
}

function links(n: { namespace: string }) {
  return { self: ns(n.namespace), schema: NAMESPACE_SCHEMA };
}

/** Object fields without timestamps or links: how a namespace's create echoes them. */
function objectFields(o: MetadefObject, prefixedProperties = o.properties): Record<string, unknown> {
  return {
    name: o.name,
    ...(o.description !== null && { description: o.description }),
    ...(o.required.length > 0 && { required: o.required }),
    ...(Object.keys(prefixedProperties).length > 0 && { properties: prefixedProperties }),
  };
}

/**
 * An object as read back: `required` and `properties` always present (Glance rebuilds them
 * from its row); as a create or update answers it (`written`), only what is set, since
 * Glance echoes the request's model there.
 */
export function objectJson(o: MetadefObject, written = false): Record<string, unknown> {
  const fields = written ? objectFields(o) : { ...objectFields(o), required: o.required, properties: o.properties };
  return { ...fields, ...times(o), self: `${ns(o.namespace)}/objects/${o.name}`, schema: OBJECT_SCHEMA };
}

export function propertyJson(p: MetadefProperty): Record<string, unknown> {
  return { ...p.schema, name: p.name };
}

function propertiesDict(list: readonly MetadefProperty[]): Record<string, unknown> {
  return Object.fromEntries(list.map((p) => [p.name, p.schema]));
}

export function tagJson(t: MetadefTag): Record<string, unknown> {
  return { name: t.name, ...times(t) };
}

function associationFields(a: MetadefAssociation): Record<string, unknown> {
  return { name: a.name, ...(a.prefix !== null && { prefix: a.prefix }), ...(a.propertiesTarget !== null && { properties_target: a.propertiesTarget }) };
}

export function associationJson(a: MetadefAssociation): Record<string, unknown> {
  return { ...associationFields(a), ...times(a) };
}

export function resourceTypeJson(r: MetadefResourceType): Record<string, unknown> {
  return { name: r.name, ...times(r) };
}

/** A namespace with its contents, as a show answers it (or, with `echo`, as its create does). */
export function namespaceDetailJson(d: MetadefNamespaceDetail, echo = false): Record<string, unknown> {
  return {
    ...namespaceJson(d),
    ...(d.associations.length > 0 && { resource_type_associations: d.associations.map(echo ? associationFields : associationJson) }),
    ...(d.properties.length > 0 && { properties: propertiesDict(d.properties) }),
    ...(d.objects.length > 0 && { objects: d.objects.map((o) => (echo ? objectFields(o) : objectJson(o))) }),
    ...(d.tags.length > 0 && { tags: d.tags.map((t) => ({ name: t.name })) }),
    ...links(d),
  };
}

function listItemJson(n: NamespaceListItem): Record<string, unknown> {
  return { ...namespaceJson(n), ...(n.associations.length > 0 && { resource_type_associations: n.associations.map(associationJson) }), ...links(n) };
}

async function jsonBody(request: FastifyRequest, limit: number): Promise<Record<string, unknown>> {
  const body = await readJson(request, limit);
  if (body === undefined) throw badRequest('Body expected in request.');
  // The schemas describe objects; anything else fails their check as Glance's jsonschema would.
  if (!isObject(body)) throw badRequest(`Provided object does not match schema: ${JSON.stringify(body)} is not of type 'object'`);
  return body;
}

function query(request: FastifyRequest): Record<string, string> {
  const q = request.query as Record<string, string | string[] | undefined>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined) out[k] = Array.isArray(v) ? v[v.length - 1] : v;
  return out;
}

/** Glance's namespace index parameters (metadef_namespaces.RequestDeserializer.index). */
function listRequest(params: Record<string, string>, paging: ListLimits): NamespaceListRequest {
  const sortDir = params.sort_dir ?? 'desc';
  if (sortDir !== 'asc' && sortDir !== 'desc') throw badRequest(`Invalid sort direction: ${sortDir}`);
  const sortKey = params.sort_key ?? 'created_at';
  if (sortKey !== 'created_at' && sortKey !== 'updated_at' && sortKey !== 'namespace') throw badRequest(`Invalid sort key: ${sortKey}`);
  const visibility = params.visibility;
  if (visibility !== undefined && visibility !== '' && visibility !== 'public' && visibility !== 'private') throw badRequest(`Invalid visibility value: ${visibility}`);
  let limit = paging.defaultPageSize;
  if (params.limit !== undefined) {
    if (!/^-?\d+$/.test(params.limit.trim())) throw badRequest('limit param must be an integer');
    limit = Number(params.limit);
    if (limit < 0) throw badRequest('limit param must be positive');
  }
  return {
    sortKey,
    sortDir,
    ...(visibility && { visibility }),
    ...(params.resource_types && { resourceTypes: params.resource_types.split(',') }),
    ...(params.marker !== undefined && { marker: params.marker }),
    limit: Math.min(limit, paging.maxPageSize),
  };
}

/** webob's truth values for X-Openstack-Append (oslo bool_from_string). */
function truthy(value: string | string[] | undefined): boolean {
  const v = (Array.isArray(value) ? value[0] : value)?.trim().toLowerCase();
  return v === '1' || v === 't' || v === 'true' || v === 'on' || v === 'y' || v === 'yes';
}

export function registerMetadefRoutes(scope: FastifyInstance, options: MetadefRouteOptions): void {
  const { metadefs, bodyLimit, paging } = options;
  const body = (request: FastifyRequest) => jsonBody(request, bodyLimit);

  resource(scope, '/metadefs/resource_types', {
    GET: async (request) => ({ resource_types: (await metadefs.listResourceTypes(principalOf(request))).map(resourceTypeJson) }),
  });

  resource(scope, '/metadefs/namespaces', {
    GET: async (request) => {
      const params = query(request);
      const page = await metadefs.listNamespaces(principalOf(request), listRequest(params, paging));
      const { marker: _marker, ...rest } = params;
      const search = new URLSearchParams(rest).toString();
      return {
        namespaces: page.namespaces.map(listItemJson),
        schema: '/v2/schemas/metadefs/namespaces',
        first: search ? `${NAMESPACES}?${search}` : NAMESPACES,
        ...(page.next !== null && { next: `${NAMESPACES}?${new URLSearchParams({ ...rest, marker: page.next }).toString()}` }),
      };
    },
    POST: async (request, reply) => {
      const created = await metadefs.createNamespace(principalOf(request), await body(request));
      return reply.code(201).header('location', ns(created.namespace)).send(namespaceDetailJson(created, true));
    },
  });

  resource(scope, '/metadefs/namespaces/:namespace', {
    GET: async (request) => {
      const resourceType = query(request).resource_type;
      return namespaceDetailJson(await metadefs.getNamespace(principalOf(request), param(request, 'namespace'), resourceType ? { resourceType } : {}));
    },
    PUT: async (request) => {
      const b = await body(request);
      const updated = await metadefs.updateNamespace(principalOf(request), param(request, 'namespace'), b);
      return { ...namespaceJson(updated), ...links(updated) };
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteNamespace(principalOf(request), param(request, 'namespace'));
      return reply.code(204).send();
    },
  });

  // ---- objects ---------------------------------------------------------------------------

  resource(scope, '/metadefs/namespaces/:namespace/objects', {
    GET: async (request) => ({
      objects: (await metadefs.listObjects(principalOf(request), param(request, 'namespace'))).map((o) => objectJson(o)),
      // Glance's link here lacks the leading slash; clients ignore it, we keep it as Glance sends it.
      schema: 'v2/schemas/metadefs/objects',
    }),
    POST: async (request, reply) => {
      const b = await body(request);
      return reply.code(201).send(objectJson(await metadefs.createObject(principalOf(request), param(request, 'namespace'), b), true));
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteNamespaceContents(principalOf(request), param(request, 'namespace'), 'object');
      return reply.code(204).send();
    },
  });

  resource(scope, '/metadefs/namespaces/:namespace/objects/:name', {
    GET: async (request) => objectJson(await metadefs.getObject(principalOf(request), param(request, 'namespace'), param(request, 'name'))),
    PUT: async (request) => {
      const b = await body(request);
      return objectJson(await metadefs.updateObject(principalOf(request), param(request, 'namespace'), param(request, 'name'), b), true);
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteObject(principalOf(request), param(request, 'namespace'), param(request, 'name'));
      return reply.code(204).send();
    },
  });

  // ---- properties ------------------------------------------------------------------------

  resource(scope, '/metadefs/namespaces/:namespace/properties', {
    // Unlike a namespace's properties, this listing repeats each name inside its entry.
    GET: async (request) => ({
      properties: Object.fromEntries((await metadefs.listProperties(principalOf(request), param(request, 'namespace'))).map((p) => [p.name, propertyJson(p)])),
    }),
    POST: async (request, reply) => {
      const b = await body(request);
      return reply.code(201).send(propertyJson(await metadefs.createProperty(principalOf(request), param(request, 'namespace'), b)));
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteNamespaceContents(principalOf(request), param(request, 'namespace'), 'property');
      return reply.code(204).send();
    },
  });

  resource(scope, '/metadefs/namespaces/:namespace/properties/:name', {
    GET: async (request) => {
      const resourceType = query(request).resource_type;
      return propertyJson(await metadefs.getProperty(principalOf(request), param(request, 'namespace'), param(request, 'name'), resourceType ? { resourceType } : {}));
    },
    PUT: async (request) => {
      const b = await body(request);
      return propertyJson(await metadefs.updateProperty(principalOf(request), param(request, 'namespace'), param(request, 'name'), b));
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteProperty(principalOf(request), param(request, 'namespace'), param(request, 'name'));
      return reply.code(204).send();
    },
  });

  // ---- tags ------------------------------------------------------------------------------

  resource(scope, '/metadefs/namespaces/:namespace/tags', {
    GET: async (request) => ({ tags: (await metadefs.listTags(principalOf(request), param(request, 'namespace'))).map((t) => ({ name: t.name })) }),
    POST: async (request, reply) => {
      const b = await body(request);
      const tags = await metadefs.createTags(principalOf(request), param(request, 'namespace'), b, truthy(request.headers['x-openstack-append']));
      return reply.code(201).send({ tags: tags.map((t) => ({ name: t.name })) });
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteNamespaceContents(principalOf(request), param(request, 'namespace'), 'tag');
      return reply.code(204).send();
    },
  });

  resource(scope, '/metadefs/namespaces/:namespace/tags/:name', {
    GET: async (request) => tagJson(await metadefs.getTag(principalOf(request), param(request, 'namespace'), param(request, 'name'))),
    // Creates the tag named in the path; any body is ignored, as in Glance.
    POST: async (request, reply) => reply.code(201).send(tagJson(await metadefs.createTag(principalOf(request), param(request, 'namespace'), param(request, 'name')))),
    PUT: async (request) => {
      const b = await body(request);
      return tagJson(await metadefs.updateTag(principalOf(request), param(request, 'namespace'), param(request, 'name'), b));
    },
    DELETE: async (request, reply) => {
      await metadefs.deleteTag(principalOf(request), param(request, 'namespace'), param(request, 'name'));
      return reply.code(204).send();
    },
  });

  // ---- resource type associations --------------------------------------------------------

  resource(scope, '/metadefs/namespaces/:namespace/resource_types', {
    GET: async (request) => ({
      resource_type_associations: (await metadefs.listAssociations(principalOf(request), param(request, 'namespace'))).map(associationJson),
    }),
    POST: async (request, reply) => {
      const b = await body(request);
      return reply.code(201).send(associationJson(await metadefs.createAssociation(principalOf(request), param(request, 'namespace'), b)));
    },
  });

  resource(scope, '/metadefs/namespaces/:namespace/resource_types/:name', {
    DELETE: async (request, reply) => {
      await metadefs.deleteAssociation(principalOf(request), param(request, 'namespace'), param(request, 'name'));
      return reply.code(204).send();
    },
  });
}

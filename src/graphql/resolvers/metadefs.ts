import type { MetadefCatalog, MetadefProperty } from '../../backends/port';
import { fail, VitrineError } from '../../domain/errors';
import type { GraphQLContext } from '../context';
import type {
  CreateMetadefNamespaceInput, InputMaybe, MetadefAssociationInput, MetadefObjectInput, MetadefPropertyInput, MetadefVisibility, Resolvers,
} from '../__generated__/resolvers';

/**
 * Metadata definitions in GraphQL. Inputs are turned into Glance's JSON bodies so the
 * catalog validates them against the very schemas the facade serves (one set of rules,
 * one set of messages); reads resolve whole namespaces (contents included, prefixed for
 * the requested resource type) in a constant number of catalog reads.
 */
function catalog(ctx: GraphQLContext): MetadefCatalog {
  if (!ctx.metadefs) fail('UNAVAILABLE', 'metadata definitions are not served here');
  return ctx.metadefs;
}

const present = <T>(v: InputMaybe<T> | undefined): v is T => v !== undefined && v !== null;

function propertyBody(input: MetadefPropertyInput, withName = true): Record<string, unknown> {
  // Explicit fields win over the same keys in the free-form schema.
  return {
    ...(input.schema ?? {}),
    ...(withName && { name: input.name }),
    title: input.title,
    type: input.type,
    ...(present(input.description) && { description: input.description }),
    ...(present(input.enumValues) && { enum: input.enumValues }),
    ...(input.default !== undefined && input.default !== null && { default: input.default }),
    ...(present(input.readonly) && { readonly: input.readonly }),
  };
}

function objectBody(input: MetadefObjectInput): Record<string, unknown> {
  return {
    name: input.name,
    ...(present(input.description) && { description: input.description }),
    ...(present(input.required) && { required: input.required }),
    ...(present(input.properties) && { properties: Object.fromEntries(input.properties.map((p) => [p.name, propertyBody(p, false)])) }),
  };
}

function associationBody(input: MetadefAssociationInput): Record<string, unknown> {
  return { name: input.name, ...(present(input.prefix) && { prefix: input.prefix }), ...(present(input.propertiesTarget) && { properties_target: input.propertiesTarget }) };
}

const visibility = (v: MetadefVisibility) => v.toLowerCase() as 'public' | 'private';

function namespaceBody(input: CreateMetadefNamespaceInput): Record<string, unknown> {
  return {
    namespace: input.namespace,
    ...(present(input.displayName) && { display_name: input.displayName }),
    ...(present(input.description) && { description: input.description }),
    ...(present(input.visibility) && { visibility: visibility(input.visibility) }),
    ...(present(input.protected) && { protected: input.protected }),
    ...(present(input.owner) && { owner: input.owner }),
    ...(present(input.resourceTypeAssociations) && { resource_type_associations: input.resourceTypeAssociations.map(associationBody) }),
    ...(present(input.properties) && { properties: Object.fromEntries(input.properties.map((p) => [p.name, propertyBody(p, false)])) }),
    ...(present(input.objects) && { objects: input.objects.map(objectBody) }),
    ...(present(input.tags) && { tags: input.tags.map((name) => ({ name })) }),
  };
}

const schemaOf = (p: MetadefProperty) => p.schema;

export const metadefResolvers: Resolvers = {
  Query: {
    metadefNamespaces: async (_root, { resourceType, visibility: v }, ctx) => {
      const metadefs = catalog(ctx);
      const page = await metadefs.listNamespaces(ctx.principal, {
        sortKey: 'created_at',
        sortDir: 'asc',
        ...(present(resourceType) && { resourceTypes: [resourceType] }),
        ...(present(v) && { visibility: visibility(v) }),
      });
      const details = await metadefs.getNamespaces(ctx.principal, page.namespaces.map((n) => n.namespace), present(resourceType) ? { resourceType } : {});
      // A namespace deleted between the two reads is left out.
      return details.filter((d) => d !== null);
    },
    metadefNamespace: async (_root, { namespace, resourceType }, ctx) => {
      try {
        return await catalog(ctx).getNamespace(ctx.principal, namespace, present(resourceType) ? { resourceType } : {});
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'METADEF_NOT_FOUND') return null;
        throw err;
      }
    },
    metadefResourceTypes: (_root, _args, ctx) => catalog(ctx).listResourceTypes(ctx.principal),
  },

  Mutation: {
    createMetadefNamespace: (_root, { input }, ctx) => catalog(ctx).createNamespace(ctx.principal, namespaceBody(input)),
    updateMetadefNamespace: async (_root, { namespace, input }, ctx) => {
      const metadefs = catalog(ctx);
      const current = await metadefs.getNamespace(ctx.principal, namespace);
      // The catalog replaces (Glance's PUT); GraphQL callers send only what changes.
      const keep = <T>(given: InputMaybe<T> | undefined, old: T) => (given === undefined ? old : given);
      const displayName = keep(input.displayName, current.displayName);
      const description = keep(input.description, current.description);
      const owner = keep(input.owner, current.owner);
      const renamed = keep(input.namespace, current.namespace) ?? current.namespace;
      await metadefs.updateNamespace(ctx.principal, namespace, {
        namespace: renamed,
        ...(displayName !== null && { display_name: displayName }),
        ...(description !== null && { description }),
        visibility: present(input.visibility) ? visibility(input.visibility) : current.visibility,
        protected: keep(input.protected, current.protected) ?? current.protected,
        ...(owner !== null && { owner }),
      });
      return metadefs.getNamespace(ctx.principal, renamed);
    },
    deleteMetadefNamespace: async (_root, { namespace }, ctx) => {
      await catalog(ctx).deleteNamespace(ctx.principal, namespace);
      return true;
    },

    createMetadefProperty: (_root, { namespace, input }, ctx) => catalog(ctx).createProperty(ctx.principal, namespace, propertyBody(input)),
    updateMetadefProperty: (_root, { namespace, name, input }, ctx) => catalog(ctx).updateProperty(ctx.principal, namespace, name, propertyBody(input)),
    deleteMetadefProperty: async (_root, { namespace, name }, ctx) => {
      await catalog(ctx).deleteProperty(ctx.principal, namespace, name);
      return true;
    },

    createMetadefObject: (_root, { namespace, input }, ctx) => catalog(ctx).createObject(ctx.principal, namespace, objectBody(input)),
    updateMetadefObject: (_root, { namespace, name, input }, ctx) => catalog(ctx).updateObject(ctx.principal, namespace, name, objectBody(input)),
    deleteMetadefObject: async (_root, { namespace, name }, ctx) => {
      await catalog(ctx).deleteObject(ctx.principal, namespace, name);
      return true;
    },

    createMetadefTags: (_root, { namespace, names, append }, ctx) =>
      catalog(ctx).createTags(ctx.principal, namespace, { tags: names.map((name) => ({ name })) }, append !== false),
    renameMetadefTag: (_root, { namespace, name, newName }, ctx) => catalog(ctx).updateTag(ctx.principal, namespace, name, { name: newName }),
    deleteMetadefTag: async (_root, { namespace, name }, ctx) => {
      await catalog(ctx).deleteTag(ctx.principal, namespace, name);
      return true;
    },

    associateMetadefResourceType: (_root, { namespace, input }, ctx) => catalog(ctx).createAssociation(ctx.principal, namespace, associationBody(input)),
    dissociateMetadefResourceType: async (_root, { namespace, resourceType }, ctx) => {
      await catalog(ctx).deleteAssociation(ctx.principal, namespace, resourceType);
      return true;
    },
  },

  MetadefNamespace: {
    visibility: (n) => n.visibility.toUpperCase() as MetadefVisibility,
    resourceTypeAssociations: (n) => n.associations,
  },

  MetadefProperty: {
    title: (p) => (typeof p.schema.title === 'string' ? p.schema.title : null),
    description: (p) => (typeof p.schema.description === 'string' ? p.schema.description : null),
    type: (p) => (typeof p.schema.type === 'string' ? p.schema.type : null),
    enumValues: (p) => (Array.isArray(p.schema.enum) ? p.schema.enum : null),
    default: (p) => p.schema.default ?? null,
    readonly: (p) => (typeof p.schema.readonly === 'boolean' ? p.schema.readonly : null),
    schema: schemaOf,
  },

  MetadefObject: {
    properties: (o) => Object.entries(o.properties).map(([name, schema]) => ({ namespace: o.namespace, name, schema })),
  },
};

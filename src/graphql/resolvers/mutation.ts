import type { CreateRequest, UpdateRequest } from '../../backends/port';
import type { MemberStatus, Visibility } from '../../domain/artifact';
import type { GraphQLContext } from '../context';
import type { CreateImageInput, InputMaybe, Resolvers, UpdateImageInput } from '../__generated__/resolvers';

const lower = <T extends string>(v: string) => v.toLowerCase() as T;
const opt = <T>(v: InputMaybe<T> | undefined): T | undefined => (v === null ? undefined : v);
const revision = (v: InputMaybe<number> | undefined) => opt(v);

/** Image inputs name Glance's fields in camelCase; the images type stores them snake_case. */
const IMAGE_FIELDS = [
  ['diskFormat', 'disk_format'],
  ['containerFormat', 'container_format'],
  ['minDisk', 'min_disk'],
  ['minRam', 'min_ram'],
  ['protected', 'protected'],
  ['osHidden', 'os_hidden'],
] as const;

function imageFields(input: CreateImageInput | UpdateImageInput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // An explicit null is kept: it clears a nullable field (and is refused for others).
  for (const [gql, field] of IMAGE_FIELDS) if (input[gql] !== undefined) out[field] = input[gql];
  return out;
}

function createImage(input: CreateImageInput, backend: InputMaybe<string> | undefined): CreateRequest {
  return {
    typeName: 'images',
    backend: opt(backend),
    id: opt(input.id),
    name: input.name ?? '',
    visibility: input.visibility ? lower<Visibility>(input.visibility) : undefined,
    owner: opt(input.owner),
    tags: opt(input.tags),
    properties: opt(input.properties),
    fields: imageFields(input),
  };
}

function updateImage(input: UpdateImageInput): UpdateRequest {
  return { name: input.name === undefined ? undefined : (input.name as string), owner: opt(input.owner), fields: imageFields(input) };
}

async function deleted(ctx: GraphQLContext, id: string, ifRevision?: number) {
  const { id: gone, typeName } = await ctx.backend.delete(ctx.principal, id, ifRevision);
  ctx.loaders.artifact.clear(gone);
  return { id: gone, typeName };
}

export const mutationResolvers: Resolvers = {
  Mutation: {
    createImage: (_r, { input, backend }, ctx) => ctx.backend.create(ctx.principal, createImage(input, backend)),
    createArtifact: (_r, { input, backend }, ctx) =>
      ctx.backend.create(ctx.principal, {
        typeName: input.typeName,
        backend: opt(backend),
        name: input.name,
        version: opt(input.version),
        visibility: input.visibility ? lower<Visibility>(input.visibility) : undefined,
        owner: opt(input.owner),
        tags: opt(input.tags),
        properties: opt(input.properties),
        fields: opt(input.fields),
      }),
    updateImage: (_r, { id, input, ifRevision }, ctx) => ctx.backend.update(ctx.principal, id, updateImage(input), revision(ifRevision)),
    updateArtifact: (_r, { id, input, ifRevision }, ctx) =>
      ctx.backend.update(ctx.principal, id, {
        name: input.name === undefined ? undefined : (input.name as string),
        version: input.version === undefined ? undefined : (input.version as string),
        fields: opt(input.fields),
        unsetFields: opt(input.unsetFields),
      }, revision(ifRevision)),
    addTags: (_r, { id, tags, ifRevision }, ctx) => ctx.backend.update(ctx.principal, id, { addTags: tags }, revision(ifRevision)),
    removeTags: (_r, { id, tags, ifRevision }, ctx) => ctx.backend.update(ctx.principal, id, { removeTags: tags }, revision(ifRevision)),
    setProperties: (_r, { id, properties, ifRevision }, ctx) => ctx.backend.update(ctx.principal, id, { setProperties: properties }, revision(ifRevision)),
    unsetProperties: (_r, { id, keys, ifRevision }, ctx) => ctx.backend.update(ctx.principal, id, { unsetProperties: keys }, revision(ifRevision)),
    activateArtifact: (_r, { id, ifRevision }, ctx) => ctx.backend.changeStatus(ctx.principal, id, 'activate', revision(ifRevision)),
    deactivateArtifact: (_r, { id, ifRevision }, ctx) => ctx.backend.changeStatus(ctx.principal, id, 'deactivate', revision(ifRevision)),
    reactivateArtifact: (_r, { id, ifRevision }, ctx) => ctx.backend.changeStatus(ctx.principal, id, 'reactivate', revision(ifRevision)),
    setVisibility: (_r, { id, visibility, ifRevision }, ctx) => ctx.backend.setVisibility(ctx.principal, id, lower<Visibility>(visibility), revision(ifRevision)),
    publishArtifact: (_r, { id, ifRevision }, ctx) => ctx.backend.setVisibility(ctx.principal, id, 'public', revision(ifRevision)),
    deleteArtifact: (_r, { id, ifRevision }, ctx) => deleted(ctx, id, revision(ifRevision)),
    addLink: (_r, { sourceId, name, targetId, ifRevision }, ctx) => ctx.backend.addLink(ctx.principal, sourceId, name, targetId, revision(ifRevision)),
    removeLink: (_r, { sourceId, name, targetId, ifRevision }, ctx) => ctx.backend.removeLink(ctx.principal, sourceId, name, opt(targetId), revision(ifRevision)),
    addMember: (_r, { artifactId, project }, ctx) => ctx.backend.addMember(ctx.principal, artifactId, project),
    updateMemberStatus: (_r, { artifactId, project, status }, ctx) => ctx.backend.updateMember(ctx.principal, artifactId, project, lower<MemberStatus>(status)),
    removeMember: async (_r, { artifactId, project }, ctx) => {
      await ctx.backend.removeMember(ctx.principal, artifactId, project);
      return true;
    },
    setQuotas: (_r, { projectId, quotas }, ctx) => ctx.backend.setQuotas(ctx.principal, projectId, quotas),
  },
};

import type { GraphQLFieldResolver } from 'graphql';
import { fail } from '../../domain/errors';
import { parseId } from '../../domain/ids';
import type { GraphQLContext } from '../context';
import { artifactEventSource, type ArtifactEventFilter, type ArtifactEventKind, type ArtifactEventPayload } from './artifact-events';
import { asSubscriptionContext } from './context';
import { decodeEventCursor, encodeEventCursor } from './cursor';
import { progressSource, splitUploadSubject, type ProgressPayload } from './progress';

/**
 * Resolvers of schema/subscription.graphql. Each root field's `subscribe` builds the
 * event source; its `resolve` passes the payload through, and the payload types read the
 * artifact through the per-event loaders (primed with the view authorised at delivery).
 */
type Args = Record<string, unknown>;
type Resolver<P> = GraphQLFieldResolver<P, GraphQLContext, Args>;

const KIND_TO_ENUM: Record<ArtifactEventKind, string> = { created: 'CREATED', updated: 'UPDATED', statusChanged: 'STATUS_CHANGED', deleted: 'DELETED' };
const ENUM_TO_KIND = Object.fromEntries(Object.entries(KIND_TO_ENUM).map(([kind, name]) => [name, kind])) as Record<string, ArtifactEventKind>;

const upperOrNull = (value: string | undefined) => (value === undefined ? null : value.toUpperCase());
const passThrough = <P>(payload: P) => payload;

interface FilterInput {
  ids?: string[] | null;
  typeNames?: string[] | null;
  owners?: string[] | null;
  names?: string[] | null;
  kinds?: string[] | null;
}

function eventFilter(input: FilterInput | null | undefined): ArtifactEventFilter {
  if (!input) return {};
  const list = <T>(values: T[] | null | undefined, max = 1000): T[] | undefined => {
    if (values === null || values === undefined) return undefined;
    if (values.length > max) fail('FILTER_INVALID', `a filter list may hold at most ${max} values, got ${values.length}`);
    return values;
  };
  return {
    ids: list(input.ids)?.map((id) => parseId(id)),
    typeNames: list(input.typeNames),
    owners: list(input.owners),
    names: list(input.names),
    kinds: list(input.kinds)?.map((k) => ENUM_TO_KIND[k]),
  };
}

/** The artifact must be readable when subscribing; NOT_FOUND otherwise (never reveal existence). */
async function requireReadable(ctx: GraphQLContext, id: string): Promise<string> {
  const artifactId = parseId(id);
  if (!(await ctx.loaders.artifact.load(artifactId))) fail('NOT_FOUND', `artifact ${id} not found`);
  return artifactId;
}

const deliveredArtifact: Resolver<ProgressPayload | ArtifactEventPayload> = (payload, _args, ctx) =>
  payload.snapshot || !payload.artifact ? payload.artifact : ctx.loaders.artifact.load(payload.artifact.id);

export const subscriptionResolvers = {
  Subscription: {
    artifactEvents: {
      subscribe: async (_root: unknown, args: Args, context: GraphQLContext) => {
        const ctx = asSubscriptionContext(context);
        const filter = eventFilter(args.filter as FilterInput | null);
        const afterSeq = typeof args.after === 'string' ? decodeEventCursor(args.after) : undefined;
        const { feed, operation } = ctx;
        // Over WebSocket: delivered with every identical subscriber at once.
        if (feed.fanout && operation) return feed.fanout.join({ principal: ctx.principal, filter, afterSeq, operation, connection: ctx.connection });
        return artifactEventSource({
          principal: ctx.principal,
          backend: ctx.backend,
          bus: feed.events ?? feed.bus,
          log: feed.log,
          connection: ctx.connection,
          filter,
          afterSeq,
          queueLimit: feed.queueLimit,
        });
      },
      resolve: passThrough,
    },
    uploadProgress: {
      subscribe: async (_root: unknown, args: Args, context: GraphQLContext) => {
        const ctx = asSubscriptionContext(context);
        const artifactId = await requireReadable(ctx, args.artifactId as string);
        const field = typeof args.field === 'string' ? args.field : undefined;
        const key = typeof args.key === 'string' ? args.key : undefined;
        return progressSource({
          principal: ctx.principal,
          backend: ctx.backend,
          bus: ctx.feed.bus,
          connection: ctx.connection,
          kind: 'uploadProgress',
          artifactId,
          subject: field === undefined && key === undefined ? undefined : (subject) => {
            const target = splitUploadSubject(subject);
            return (field === undefined || target.field === field) && (key === undefined || target.key === key);
          },
          queueLimit: ctx.feed.queueLimit,
        });
      },
      resolve: passThrough,
    },
    importProgress: {
      subscribe: async (_root: unknown, args: Args, context: GraphQLContext) => {
        const ctx = asSubscriptionContext(context);
        const artifactId = await requireReadable(ctx, args.imageId as string);
        return progressSource({
          principal: ctx.principal,
          backend: ctx.backend,
          bus: ctx.feed.bus,
          connection: ctx.connection,
          kind: 'importProgress',
          artifactId,
          queueLimit: ctx.feed.queueLimit,
        });
      },
      resolve: passThrough,
    },
  },
  ArtifactEvent: {
    cursor: (p: ArtifactEventPayload) => encodeEventCursor(p.event.seq),
    kind: (p: ArtifactEventPayload) => KIND_TO_ENUM[p.event.kind],
    artifactId: (p: ArtifactEventPayload) => p.event.artifactId,
    typeName: (p: ArtifactEventPayload) => p.event.typeName,
    artifact: deliveredArtifact,
    from: (p: ArtifactEventPayload) => upperOrNull(p.event.from),
    to: (p: ArtifactEventPayload) => upperOrNull(p.event.to),
    revision: (p: ArtifactEventPayload) => p.event.revision,
    at: (p: ArtifactEventPayload) => p.event.at,
  },
  UploadProgress: {
    artifactId: (p: ProgressPayload) => p.progress.artifactId,
    field: (p: ProgressPayload) => splitUploadSubject(p.progress.subject).field,
    key: (p: ProgressPayload) => splitUploadSubject(p.progress.subject).key || null,
    ...progressFields(),
    artifact: deliveredArtifact,
  },
  ImportProgress: {
    imageId: (p: ProgressPayload) => p.progress.artifactId,
    method: (p: ProgressPayload) => p.progress.subject,
    stage: (p: ProgressPayload) => p.progress.stage ?? null,
    storesDone: (p: ProgressPayload) => p.progress.storesDone ?? [],
    storesFailed: (p: ProgressPayload) => p.progress.storesFailed ?? [],
    finalStatus: (p: ProgressPayload) => upperOrNull(p.progress.finalStatus),
    ...progressFields(),
    image: deliveredArtifact,
  },
};

function progressFields() {
  return {
    bytes: (p: ProgressPayload) => p.progress.bytes,
    total: (p: ProgressPayload) => p.progress.total,
    rate: (p: ProgressPayload) => p.progress.ratePerSecond,
    etaSeconds: (p: ProgressPayload) => p.progress.etaSeconds,
    done: (p: ProgressPayload) => p.progress.done,
    outcome: (p: ProgressPayload) => upperOrNull(p.progress.outcome),
    error: (p: ProgressPayload) => p.progress.error ?? null,
    at: (p: ProgressPayload) => p.progress.at,
  };
}

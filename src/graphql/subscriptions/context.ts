import type { DocumentNode } from 'graphql';
import type { ArtifactView } from '../../backends/port';
import { fail } from '../../domain/errors';
import type { Principal } from '../../domain/policy';
import type { EventBus, EventLog } from '../../events/port';
import type { StoredEvent } from '../../storage/metadata/port';
import type { GraphQLContext } from '../context';

/**
 * What a subscription resolver needs beyond a query's context: the event sources and a
 * handle on its connection (to end it when the consumer falls behind).
 */
export interface EventFeed {
  bus: EventBus;
  log: EventLog;
  /** Undelivered events one subscription (or one group of identical ones) may hold. */
  queueLimit: number;
  /** The lifecycle events of this process, gap-free and in seq order (an EventSequencer). */
  events?: Pick<EventBus, 'subscribe'>;
  /** Shared delivery of `artifactEvents` to identical subscribers (an ArtifactEventFanout). */
  fanout?: ArtifactEventDelivery;
}

export type ArtifactEventKind = StoredEvent['kind'];

export interface ArtifactEventFilter {
  ids?: readonly string[];
  typeNames?: readonly string[];
  owners?: readonly string[];
  names?: readonly string[];
  kinds?: readonly ArtifactEventKind[];
}

export interface JoinRequest {
  principal: Principal;
  filter: ArtifactEventFilter;
  afterSeq?: number;
  operation: OperationRef;
  connection: SocketHandle;
}

export interface ArtifactEventDelivery {
  /**
   * Adds a subscriber; the returned iterator yields nothing (frames go straight to the
   * socket) and ends when the subscription does. CURSOR_EXPIRED for a pruned cursor.
   */
  join(request: JoinRequest): Promise<AsyncIterableIterator<never>>;
}

export interface ConnectionHandle {
  /** Whether the socket's send buffer is above the configured limit. */
  congested(): boolean;
  /** Closes the socket with SLOW_CONSUMER (4420); the client resumes with its last cursor. */
  closeTooSlow(): void;
}

/** The connection as the WebSocket transport hands it out: frames can be written to it. */
export interface SocketHandle extends ConnectionHandle {
  /**
   * Queues a text frame (a string, or its UTF-8 bytes) on the socket, dropped once the socket
   * is closing; `sent` is called once the frame was handed to the operating system, or with
   * an error.
   */
  send(frame: string | Buffer, sent?: (err?: Error) => void): void;
}

/**
 * The graphql-ws operation a subscription context belongs to: its id, which `next` frames
 * written straight to the socket carry, and what determines its results (the document's
 * text, operation name and variables), so identical subscriptions can share one execution.
 */
export interface OperationRef {
  id: string;
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  document: DocumentNode;
}

export interface SubscriptionContext extends GraphQLContext {
  feed: EventFeed;
  connection: SocketHandle;
  /** Set by the WebSocket transport; without it, each subscription executes on its own. */
  operation?: OperationRef;
}

/**
 * What every subscription payload carries so each event runs with fresh loaders: the
 * artifact as loaded at delivery time (primed into the per-event loader), or a snapshot of
 * a deleted one (never primed: it must not pass for a live artifact).
 */
export interface Delivery {
  artifact: ArtifactView | null;
  snapshot: boolean;
}

export function asSubscriptionContext(ctx: GraphQLContext): SubscriptionContext {
  if (!('feed' in ctx)) fail('BAD_REQUEST', 'subscriptions are served over WebSocket (graphql-transport-ws) at /graphql');
  return ctx as SubscriptionContext;
}

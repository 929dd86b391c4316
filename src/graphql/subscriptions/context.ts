import type { ArtifactView } from '../../backends/port';
import { fail } from '../../domain/errors';
import type { EventBus, EventLog } from '../../events/port';
import type { GraphQLContext } from '../context';

/**
 * What a subscription resolver needs beyond a query's context: the event sources and a
 * handle on its connection (to end it when the consumer falls behind).
 */
export interface EventFeed {
  bus: EventBus;
  log: EventLog;
  /** Undelivered events one subscription may hold. */
  queueLimit: number;
}

export interface ConnectionHandle {
  /** Whether the socket's send buffer is above the configured limit. */
  congested(): boolean;
  /** Closes the socket with SLOW_CONSUMER (4420); the client resumes with its last cursor. */
  closeTooSlow(): void;
}

export interface SubscriptionContext extends GraphQLContext {
  feed: EventFeed;
  connection: ConnectionHandle;
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

import type { ArtifactBackend, ArtifactView } from '../../backends/port';
import { fail } from '../../domain/errors';
import { canRead, type Principal } from '../../domain/policy';
import type { EventBus, EventLog } from '../../events/port';
import type { StoredEvent } from '../../storage/metadata/port';
import { BatchStream } from './batch-stream';
import type { ArtifactEventFilter, ConnectionHandle, Delivery } from './context';
import { DeliveryQueue } from './delivery-queue';

/**
 * The source of `artifactEvents` for one subscriber on its own: live events, preceded (with
 * a cursor) by a replay of the durable log, filtered and authorised at delivery time, i.e.
 * when the consumer pulls them. The WebSocket transport delivers through `fanout.ts`
 * instead, which shares that work between identical subscribers; this is the plain
 * graphql-js `subscribe` path, and the reference for the semantics both keep.
 *
 * No gaps, no duplicates: the live subscription starts before the log is read, so an event
 * committed meanwhile is either in the log or in the queue (the backend publishes after
 * commit); queued events the replay already covered (seq ≤ the last replayed seq) are skipped.
 */
export type { ArtifactEventFilter, ArtifactEventKind } from './context';

export interface ArtifactEventPayload extends Delivery {
  event: StoredEvent;
}

export interface ArtifactEventSourceOptions {
  principal: Principal;
  backend: ArtifactBackend;
  /** Live events: the bus, or better the process's EventSequencer (gap-free, in seq order). */
  bus: Pick<EventBus, 'subscribe'>;
  log: EventLog;
  connection: ConnectionHandle;
  filter: ArtifactEventFilter;
  /** Replay events after this seq first. */
  afterSeq?: number;
  queueLimit: number;
}

/** Events per log read and per access check. */
export const BATCH = 200;

export function matchesFilter(filter: ArtifactEventFilter, event: StoredEvent): boolean {
  return (
    (!filter.ids || filter.ids.includes(event.artifactId)) &&
    (!filter.typeNames || filter.typeNames.includes(event.typeName)) &&
    (!filter.owners || filter.owners.includes(event.owner)) &&
    (!filter.names || filter.names.includes(event.snapshot.name)) &&
    (!filter.kinds || filter.kinds.includes(event.kind))
  );
}

export async function artifactEventSource(options: ArtifactEventSourceOptions): Promise<AsyncIterableIterator<ArtifactEventPayload>> {
  const { filter, connection } = options;
  const queue = new DeliveryQueue<StoredEvent>(options.queueLimit, () => connection.closeTooSlow());
  const subscription = options.bus.subscribe((message) => {
    if (message.topic !== 'artifact' || !matchesFilter(filter, message.event)) return;
    // A socket that cannot take what it already has is too slow, however short its queue.
    if (connection.congested()) return connection.closeTooSlow();
    queue.push(message.event);
  });
  const release = () => {
    subscription.unsubscribe();
    queue.close();
  };

  let replayedUpTo = -1;
  let replaying = options.afterSeq !== undefined;
  try {
    if (options.afterSeq !== undefined) {
      replayedUpTo = options.afterSeq;
      await requireReplayable(options.log, options.afterSeq);
    }
  } catch (err) {
    release();
    throw err;
  }

  // A subscription to fixed ids ends once each of them has been deleted.
  const remaining = filter.ids ? new Set(filter.ids) : undefined;

  const produce = async (): Promise<ArtifactEventPayload[] | null> => {
    if (remaining && remaining.size === 0) return null;
    let events: StoredEvent[];
    if (replaying) {
      const page = await options.log.read(replayedUpTo, BATCH);
      if (page.length === 0) {
        replaying = false;
        return [];
      }
      replayedUpTo = page[page.length - 1].seq;
      events = page.filter((e) => matchesFilter(filter, e));
    } else {
      const batch = await queue.take(BATCH);
      if (batch === null) return null;
      events = batch.filter((e) => e.seq > replayedUpTo);
    }
    if (connection.congested()) {
      connection.closeTooSlow();
      return null;
    }
    for (const e of events) if (e.kind === 'deleted') remaining?.delete(e.artifactId);
    return authorize(options.principal, options.backend, events);
  };

  return new BatchStream(produce, release);
}

/** CURSOR_EXPIRED when the log no longer holds every event after `afterSeq`. */
export async function requireReplayable(log: EventLog, afterSeq: number): Promise<void> {
  const oldest = await log.oldestSeq();
  if (oldest !== null && afterSeq < oldest - 1) {
    fail('CURSOR_EXPIRED', `the event log no longer holds the events after this cursor (oldest kept: ${oldest}); subscribe again without \`after\``);
  }
}

/**
 * Keeps the events the subscriber may read now: live artifacts through one batched
 * `getMany`; deleted ones by their snapshot (members are gone with the artifact, so only
 * owner, public and community visibility, and admins, qualify).
 */
export async function authorize(principal: Principal, backend: ArtifactBackend, events: StoredEvent[]): Promise<ArtifactEventPayload[]> {
  const liveIds = [...new Set(events.filter((e) => e.kind !== 'deleted').map((e) => e.artifactId))];
  const views = new Map<string, ArtifactView>();
  if (liveIds.length > 0) {
    const found = await backend.getMany(principal, liveIds);
    liveIds.forEach((id, i) => {
      const view = found[i];
      // An artifact whose backend does not answer cannot be authorised now: its event is left out, as an invisible one.
      if (view && !(view instanceof Error)) views.set(id, view);
    });
  }
  const out: ArtifactEventPayload[] = [];
  for (const event of events) {
    if (event.kind === 'deleted') {
      if (canRead(principal, event.snapshot)) out.push({ event, artifact: { ...event.snapshot, backend: event.backend ?? backend.name }, snapshot: true });
    } else {
      const view = views.get(event.artifactId);
      if (view) out.push({ event, artifact: view, snapshot: false });
    }
  }
  return out;
}

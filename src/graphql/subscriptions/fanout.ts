import type { DocumentNode } from 'graphql';
import type { ArtifactBackend } from '../../backends/port';
import type { Principal } from '../../domain/policy';
import type { BusMessage, EventLog, Subscription } from '../../events/port';
import type { StoredEvent } from '../../storage/metadata/port';
import { authorize, BATCH, matchesFilter, requireReplayable, type ArtifactEventPayload } from './artifact-events';
import type { ArtifactEventDelivery, ArtifactEventFilter, JoinRequest, OperationRef, SocketHandle } from './context';
import type { EventSequencer } from './sequencer';

/**
 * `artifactEvents` delivery for many subscribers at once. Subscribers whose results are
 * the same bytes, namely the same visibility class (project and roles: what the policy
 * looks at) and the same document, operation name and variables (hence the same filter),
 * form one group. Per batch of events a group authorises once (one `getMany`, at delivery
 * time), executes and serialises each event once, and writes that text to every member's
 * socket in one synchronous pass, each frame carrying the member's own operation id.
 *
 * An idle member is a few fields: no queue, no loaders, no pending work of its own. The
 * group's queue is bounded by `queueLimit` like a subscriber's own used to be: a group that
 * falls that far behind closes its members with 4420, and they resume with their cursors.
 * A socket that cannot take what it was sent (its buffer above `maxBufferedBytes`) is closed
 * alone; writes never wait for a socket, so one slow client never holds up the others.
 *
 * A member that subscribes with `after` first replays the log on its own, at its socket's
 * pace, then joins the group's live stream once the log has nothing newer than what the
 * group already handled; the seq watermark `from` keeps the switch free of gaps and
 * duplicates.
 */
export interface GroupExecution {
  principal: Principal;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

/** Executes the operation for one event and returns the JSON text of the `next` payload. */
export type RenderEvent = (execution: GroupExecution, payload: ArtifactEventPayload) => Promise<string>;

export interface FanoutOptions {
  backend: ArtifactBackend;
  log: EventLog;
  events: EventSequencer;
  queueLimit: number;
  render: RenderEvent;
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ value: undefined, done: true });

export class ArtifactEventFanout implements ArtifactEventDelivery {
  private readonly groups = new Map<string, SubscriberGroup>();
  private readonly lost: Subscription;

  constructor(private readonly options: FanoutOptions) {
    // Events pruned before this process delivered them: members resume from their cursors
    // and learn it from CURSOR_EXPIRED, rather than silently missing events.
    this.lost = options.events.onLost(() => {
      for (const group of [...this.groups.values()]) group.closeAllTooSlow();
    });
  }

  /** Subscribers currently served, live or replaying (for tests and metrics). */
  get size(): { groups: number; members: number } {
    let members = 0;
    for (const group of this.groups.values()) members += group.memberCount;
    return { groups: this.groups.size, members };
  }

  async join(request: JoinRequest): Promise<GroupMember> {
    await this.options.events.start();
    if (request.afterSeq !== undefined) await requireReplayable(this.options.log, request.afterSeq);
    const key = groupKey(request.principal, request.operation);
    let group = this.groups.get(key);
    if (!group) {
      const { principal, filter, operation } = request;
      const execution: GroupExecution = { principal, document: operation.document, operationName: operation.operationName, variables: operation.variables };
      const created: SubscriberGroup = new SubscriberGroup(filter, execution, this.options, () => {
        if (this.groups.get(key) === created) this.groups.delete(key);
      });
      this.groups.set(key, (group = created));
    }
    return group.add(request.operation.id, request.connection, request.afterSeq);
  }

  close(): void {
    this.lost.unsubscribe();
    for (const group of [...this.groups.values()]) group.endAll();
  }
}

/**
 * Subscribers with the same key receive the same bytes. The roles are sorted: their order in
 * a token's grant does not change what it may see. (The principal's userId is not part of
 * it: no policy decision reads it.)
 */
export function groupKey(principal: Principal, operation: OperationRef): string {
  const visibility = `${principal.projectId}\u0000${[...principal.roles].sort().join(',')}`;
  return JSON.stringify([visibility, operation.query, operation.operationName ?? null, operation.variables ?? null]);
}

class SubscriberGroup {
  /** Members receiving live frames, in the order they joined. */
  private readonly members = new Set<GroupMember>();
  private replaying = 0;
  private queue: StoredEvent[] = [];
  /** First seq of the batch being authorised and rendered, if any. */
  private inFlight: number | undefined;
  /** Seq of the last event the sequencer handed this group, matching or not. */
  private seen: number;
  private working = false;
  private released = false;
  private readonly subscription: Subscription;

  constructor(
    private readonly filter: ArtifactEventFilter,
    private readonly execution: GroupExecution,
    private readonly options: FanoutOptions,
    private readonly onEmpty: () => void,
  ) {
    this.seen = options.events.lastSeq;
    this.subscription = options.events.subscribe((message) => this.receive(message));
  }

  get memberCount(): number {
    return this.members.size + this.replaying;
  }

  /** Every event up to this seq has been written to the live members, or skipped. */
  private get handledUpTo(): number {
    if (this.inFlight !== undefined) return this.inFlight - 1;
    return this.queue.length > 0 ? this.queue[0].seq - 1 : this.seen;
  }

  add(id: string, connection: SocketHandle, afterSeq: number | undefined): GroupMember {
    const member = new GroupMember(this, id, connection, this.filter.ids ? new Set(this.filter.ids) : undefined);
    // A subscription to fixed ids ends once each of them has been deleted; to none, at once.
    if (member.remaining?.size === 0) {
      member.end();
    } else if (afterSeq === undefined) {
      // Live from now on: what the group was handed before this subscriber came is not for it.
      member.from = this.seen;
      this.members.add(member);
    } else {
      void this.replay(member, afterSeq);
    }
    return member;
  }

  leave(member: GroupMember): void {
    this.members.delete(member);
    this.releaseIfEmpty();
  }

  closeAllTooSlow(): void {
    for (const member of [...this.members]) member.tooSlow();
  }

  endAll(): void {
    for (const member of [...this.members]) member.end();
  }

  private releaseIfEmpty(): void {
    if (this.released || this.members.size > 0 || this.replaying > 0) return;
    this.released = true;
    this.subscription.unsubscribe();
    this.queue = [];
    this.onEmpty();
  }

  private receive(message: BusMessage): void {
    if (message.topic !== 'artifact') return;
    const event = message.event;
    this.seen = event.seq;
    // Nobody to deliver to yet (members still replaying read the log instead).
    if (this.members.size === 0 || !matchesFilter(this.filter, event)) return;
    if (this.queue.length >= this.options.queueLimit) {
      // Lifecycle events are never dropped silently: the members resume with their cursors.
      this.queue = [];
      this.closeAllTooSlow();
      return;
    }
    this.queue.push(event);
    if (!this.working) void this.work();
  }

  private async work(): Promise<void> {
    this.working = true;
    try {
      while (this.queue.length > 0 && this.members.size > 0) {
        const batch = this.queue.splice(0, BATCH);
        this.inFlight = batch[0].seq;
        await this.deliver(batch);
        this.inFlight = undefined;
      }
    } catch (err) {
      for (const member of [...this.members]) member.end(err);
    } finally {
      this.inFlight = undefined;
      this.working = false;
      if (this.members.size === 0) this.queue = [];
    }
  }

  private async deliver(batch: StoredEvent[]): Promise<void> {
    const { principal } = this.execution;
    const payloads = await authorize(principal, this.options.backend, batch);
    const bodies = await Promise.all(payloads.map((payload) => this.options.render(this.execution, payload)));
    // One synchronous pass: no member sees the frames of a later batch before these.
    const seqs = payloads.map((p) => p.event.seq);
    const frames = new FrameCache(bodies);
    for (const member of this.members) {
      if (member.connection.congested()) {
        member.tooSlow();
        continue;
      }
      for (let i = 0; i < bodies.length; i++) if (seqs[i] > member.from) member.connection.send(frames.get(member.prefix, i));
    }
    if (this.filter.ids) this.settleDeletions(batch);
  }

  /** Ends the fixed-ids members whose last artifact was deleted, after its event went out. */
  private settleDeletions(events: readonly StoredEvent[]): void {
    const deleted = events.filter((e) => e.kind === 'deleted');
    if (deleted.length === 0) return;
    for (const member of [...this.members]) {
      if (member.countDeletions(deleted)) member.end();
    }
  }

  /**
   * Sends the log after `afterSeq` to this member alone, page by page at the socket's pace,
   * then makes it live. It goes live only when a read of the log came back empty and the
   * group has not handled anything past what the member got: everything the group still
   * has to write is then either already in the member's past (skipped by `from`) or new to it.
   */
  private async replay(member: GroupMember, afterSeq: number): Promise<void> {
    this.replaying++;
    try {
      let upTo = afterSeq;
      let emptyReads = 0;
      while (!member.ended) {
        const page = await this.options.log.read(upTo, BATCH);
        if (member.ended) return;
        if (page.length === 0) {
          // A second empty read past the group's mark: those events are gone from the log.
          if (this.handledUpTo <= upTo || ++emptyReads > 1) {
            member.from = Math.max(upTo, this.handledUpTo);
            this.members.add(member);
            return;
          }
          continue;
        }
        emptyReads = 0;
        upTo = page[page.length - 1].seq;
        const events = page.filter((e) => matchesFilter(this.filter, e));
        const payloads = await authorize(this.execution.principal, this.options.backend, events);
        const bodies = await Promise.all(payloads.map((payload) => this.options.render(this.execution, payload)));
        if (member.ended) return;
        if (member.connection.congested()) return member.tooSlow();
        await member.sendAll(bodies);
        if (member.countDeletions(events.filter((e) => e.kind === 'deleted'))) return member.end();
      }
    } catch (err) {
      member.end(err);
    } finally {
      this.replaying--;
      if (member.ended) this.releaseIfEmpty();
    }
  }
}

/**
 * The frames of one batch, built once per distinct operation id (often all the same: one id
 * per client library convention). Encoded once as UTF-8, rather than by each socket's write.
 */
class FrameCache {
  private prefix: string | undefined;
  private frames: Buffer[] = [];

  constructor(private readonly bodies: readonly string[]) {}

  get(prefix: string, index: number): Buffer {
    if (prefix !== this.prefix) {
      this.prefix = prefix;
      this.frames = [];
    }
    return (this.frames[index] ??= Buffer.from(`${prefix}${this.bodies[index]}}`, 'utf8'));
  }
}

/**
 * One subscriber of a group, handed to graphql-ws as the subscription's iterator: it never
 * yields (the group writes the frames), and its `next()` settles when the subscription ends,
 * after which graphql-ws sends `complete` (or `error`) behind the frames already written.
 * `return()` (the client's `complete`, a closed socket) leaves the group at once.
 */
export class GroupMember implements AsyncIterableIterator<never> {
  /** Events up to this seq are not for this member (before it subscribed, or replayed). */
  from = -1;
  ended = false;
  /** `{"id":…,"type":"next","payload":`: the start of each of its frames. */
  readonly prefix: string;
  private error: unknown;
  private settle: ((result: IteratorResult<never, undefined>) => void) | undefined;
  private reject: ((err: unknown) => void) | undefined;

  constructor(
    private readonly group: SubscriberGroup,
    id: string,
    readonly connection: SocketHandle,
    /** With an ids filter: the ids not deleted yet. */
    readonly remaining: Set<string> | undefined,
  ) {
    this.prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  }

  next(): Promise<IteratorResult<never, undefined>> {
    if (this.ended) return this.error === undefined ? Promise.resolve(DONE) : Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.settle = resolve;
      this.reject = reject;
    });
  }

  async return(): Promise<IteratorResult<never, undefined>> {
    this.end();
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<never, undefined>> {
    this.end();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the subscription: normally (graphql-ws then sends `complete`) or with an error. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.group.leave(this);
    if (error === undefined) this.settle?.(DONE);
    else {
      this.error = error;
      this.reject?.(error);
    }
    this.settle = this.reject = undefined;
  }

  /** Closes the socket with 4420: the client resubscribes with its last cursor. */
  tooSlow(): void {
    this.connection.closeTooSlow();
    this.end();
  }

  /** Whether these deletions leave no id of its filter alive (always false without ids). */
  countDeletions(deleted: readonly StoredEvent[]): boolean {
    if (!this.remaining) return false;
    for (const e of deleted) if (e.seq > this.from) this.remaining.delete(e.artifactId);
    return this.remaining.size === 0;
  }

  /** Writes frames to this member alone; resolves once the last one reached the OS. */
  sendAll(bodies: readonly string[]): Promise<void> {
    if (bodies.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      bodies.forEach((body, i) => this.connection.send(`${this.prefix}${body}}`, i === bodies.length - 1 ? () => resolve() : undefined));
    });
  }
}

import type { BusMessage, EventBus, EventLog, Subscription } from '../../events/port';
import type { StoredEvent } from '../../storage/metadata/port';

/**
 * This process's view of the lifecycle events, made reliable: every committed event once,
 * in `seq` order, whatever the bus lost or reordered. The bus is only a fast path; the
 * durable log is the truth. An event whose seq is not the next one (a broker outage, a
 * publish that failed after commit, two instances' messages crossing) makes the sequencer
 * read the log from the last seq it delivered until the log has nothing newer, and a bus
 * that reconnects after an outage does the same at once. Events the log already gave are
 * then dropped when the bus brings them late.
 *
 * Reading the log up to an event is enough to fill every gap before it: stores commit events
 * in seq order (PostgreSQL appends them under a lock held until commit), so once an event is
 * visible, every smaller seq that will ever exist is visible too; what is still missing is a
 * hole (a rolled-back append) or was pruned.
 */
export interface EventSequencerOptions {
  bus: EventBus;
  log: EventLog;
  /** A log read failed; the sequencer retries after `retryMs`. */
  onError?: (err: unknown) => void;
  /** Events were pruned from the log before this process could deliver them. */
  onLost?: (afterSeq: number, oldestSeq: number) => void;
  retryMs?: number;
}

/** Events per log read while catching up. */
const PAGE = 500;

export class EventSequencer {
  private readonly handlers = new Set<(message: BusMessage) => void>();
  private readonly lostListeners = new Set<() => void>();
  private subscriptions: Subscription[] = [];
  /** Seq of the last event delivered; -1 until the log's newest seq is known. */
  private delivered = -1;
  /** The largest seq the bus announced while it could not be delivered at once. */
  private wanted = -1;
  private catchingUp: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: EventSequencerOptions) {}

  /** Seq of the last event handed to subscribers (-1 before start). */
  get lastSeq(): number {
    return this.delivered;
  }

  /**
   * Subscribes to the bus, then learns where the log ends: events up to there happened
   * before this process listened. Resolves once live; a failed start is retried by the next
   * call.
   */
  start(): Promise<void> {
    this.starting ??= this.begin().catch((err: unknown) => {
      this.starting = undefined;
      for (const s of this.subscriptions.splice(0)) s.unsubscribe();
      throw err;
    });
    return this.starting;
  }

  /** Artifact messages, each once, in seq order. Same shape as the bus's `subscribe`. */
  subscribe(handler: (message: BusMessage) => void): Subscription {
    // A wrapper per call, so subscribing the same function twice gives two subscriptions.
    const entry = (message: BusMessage) => handler(message);
    this.handlers.add(entry);
    return { unsubscribe: () => void this.handlers.delete(entry) };
  }

  /** Called when events were lost for good (pruned before they could be delivered). */
  onLost(listener: () => void): Subscription {
    const entry = () => listener();
    this.lostListeners.add(entry);
    return { unsubscribe: () => void this.lostListeners.delete(entry) };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.handlers.clear();
    this.lostListeners.clear();
  }

  private async begin(): Promise<void> {
    const { bus } = this.options;
    this.subscriptions.push(bus.subscribe((message) => this.receive(message)));
    if (bus.onReconnect) this.subscriptions.push(bus.onReconnect(() => this.catchUp()));
    const newest = await newestSeq(this.options.log);
    if (this.stopped) return;
    this.delivered = newest;
    // Anything the bus brought meanwhile is in the log (or was before the start).
    if (this.wanted > this.delivered) this.catchUp();
  }

  private receive(message: BusMessage): void {
    if (message.topic !== 'artifact' || this.stopped) return;
    const { seq } = message.event;
    if (!Number.isSafeInteger(seq)) return;
    if (this.delivered < 0 || this.catchingUp) {
      // Not started, or reading the log: the log will hold this event too.
      this.wanted = Math.max(this.wanted, seq);
      return;
    }
    if (seq <= this.delivered) return; // the log gave it already
    if (seq === this.delivered + 1) return this.deliver(message.event, message);
    this.wanted = Math.max(this.wanted, seq);
    this.catchUp();
  }

  /** Reads the log until it has nothing newer, and nothing older than what the bus announced. */
  private catchUp(): void {
    if (this.catchingUp || this.stopped || this.delivered < 0) return;
    this.catchingUp = this.readLog().then(
      () => {
        this.catchingUp = undefined;
        // An announcement that came after the last read.
        if (this.wanted > this.delivered) this.catchUp();
      },
      (err: unknown) => {
        this.catchingUp = undefined;
        if (this.stopped) return;
        this.options.onError?.(err);
        this.retryTimer = setTimeout(() => this.catchUp(), this.options.retryMs ?? 1000);
        this.retryTimer.unref();
      },
    );
  }

  private async readLog(): Promise<void> {
    const { log } = this.options;
    while (!this.stopped) {
      const page = await log.read(this.delivered, PAGE);
      if (this.stopped) return;
      if (page.length > 0 && page[0].seq > this.delivered + 1) await this.checkPruned(page[0].seq);
      for (const event of page) this.deliver(event);
      if (page.length === PAGE) continue;
      // The log has nothing newer: an announced seq it does not hold is foreign; the log wins.
      if (page.length === 0 || this.wanted <= this.delivered) {
        this.wanted = this.delivered;
        return;
      }
    }
  }

  /** A gap at the start of a page is a rolled-back append, or events pruned before delivery. */
  private async checkPruned(next: number): Promise<void> {
    const oldest = await this.options.log.oldestSeq();
    if (oldest !== null && oldest > this.delivered + 1 && oldest <= next) {
      this.options.onLost?.(this.delivered, oldest);
      for (const listener of [...this.lostListeners]) listener();
    }
  }

  private deliver(event: StoredEvent, message: BusMessage = { topic: 'artifact', event }): void {
    this.delivered = event.seq;
    for (const handler of [...this.handlers]) {
      try {
        handler(message);
      } catch {
        // A failing subscriber must not stop delivery to the others; it reports its own errors.
      }
    }
  }
}

/**
 * The log's newest seq (0 when empty), found with reads of one event: the EventLog port
 * has no "newest", and this runs once per process. Doubling steps find a seq past the end,
 * then halving narrows down; about 2·log2(events kept) indexed reads.
 */
export async function newestSeq(log: EventLog): Promise<number> {
  const oldest = await log.oldestSeq();
  if (oldest === null) return 0;
  const after = async (seq: number) => (await log.read(seq, 1))[0]?.seq;
  let known = oldest;
  let step = 1024;
  for (let next = await after(known + step); next !== undefined; next = await after(known + step)) {
    known = next;
    step *= 2;
  }
  // `known` exists and nothing lies after known + step.
  let high = known + step;
  while (known < high) {
    const middle = Math.floor((known + high) / 2);
    const next = await after(middle);
    if (next === undefined) high = middle;
    else known = next;
  }
  return known;
}

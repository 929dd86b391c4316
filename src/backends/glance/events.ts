import type { ArtifactRecord, FieldValue, MemberStatus, Status } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import { TRANSITIONS } from '../../domain/lifecycle';
import type { EventBus } from '../../events/port';
import type { NewEvent, StoredEvent } from '../../storage/metadata/port';
import type { ArtifactView } from '../port';

/**
 * Lifecycle events of a Glance backend's images. Glance has no event log, so the events go
 * to a sink (the native metadata store's log, which gives them their `seq`) and then on the
 * bus, as the native backend's do after commit.
 *
 * Several sources report the same changes: Vitrine's own writes, and Glance's side
 * (its notifications, or polling). Every report goes through one `ImageEvents`, which
 * remembers per image (bounded, least recently reported first out) the state it logged last
 * and the states one source logged that the other is still expected to report. A change is
 * logged once: the state logged last, or one the other source logged and this one was
 * expected to report, is a duplicate; a state older than the one logged last is late.
 *
 * Glance's notifications do not carry every field (os_hidden, os_hash_*, stores): a
 * snapshot leaves out what its source could not tell (see `EXTRA_FIELDS`), and two reports
 * are of the same state when their common fields match and the extra fields both know agree.
 */

/** Where the events are logged: append only, one transaction, seqs in order. */
export interface EventSink {
  append(events: NewEvent[]): Promise<StoredEvent[]>;
}

/** What a report says about an image. */
export type Report =
  /** It was created (by Vitrine, or Glance's image.create). */
  | { kind: 'created' }
  /** It changed (an update, a status change); `from` is its status before, when the reporter knows it. */
  | { kind: 'changed'; from?: Status; statusChange?: boolean }
  /** It was deleted; the image is its last state. */
  | { kind: 'deleted'; from?: Status }
  /** A member change, which the image itself does not show: one `updated` event per change, whichever source reports it first. */
  | { kind: 'members'; change: MemberChange }
  /** Polling saw it: only a status change is logged; the first sighting only seeds the memory. */
  | { kind: 'polled' };

/** One change of an image's members: the member's new status, or its removal. */
export interface MemberChange {
  member: string;
  status: MemberStatus | 'removed';
}

/** Who reports: Vitrine after its own writes, or Glance's side (notifications, polling). */
export type Source = 'vitrine' | 'glance';

export interface ImageEventsOptions {
  /** The Glance backend's name, on every event (its log may be shared with other backends). */
  backend: string;
  sink: EventSink;
  bus: EventBus;
  /** Images remembered (their last logged state), the least recently reported dropped first. */
  maxImages?: number;
  log?: (message: string, err?: unknown) => void;
}

interface Known {
  status: Status;
  updatedAt: number;
  /** Fingerprint of the state logged last. */
  latest: string;
  /** The same without updated_at: what a subscriber can tell apart. */
  latestContent: string;
  /** The extra fields known of that state. */
  latestExtras: Extras;
  /** States (and member changes) one source logged that the other is expected to report too (each report absorbs one). */
  expected: { fingerprint: string; extras: Extras; by: Source }[];
}

/**
 * Fields Glance's notification payload does not carry (format_image_notification): a
 * snapshot holds them only when they are known (Vitrine's reads, or a read of the image
 * that shows the notified state).
 */
export const EXTRA_FIELDS = ['os_hidden', 'os_hash_algo', 'os_hash_value', 'stores'] as const;

/** The known extra fields of a state, each as JSON. */
type Extras = Record<string, string>;

/** Expected reports kept per image (the oldest go first). */
const EXPECTED_PER_IMAGE = 16;

export class ImageEvents {
  private readonly known = new Map<string, Known>();
  private readonly maxImages: number;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ImageEventsOptions) {
    this.maxImages = o.maxImages ?? 10_000;
  }

  /** The status last logged for an image, if it is remembered. */
  statusOf(id: string): Status | undefined {
    return this.known.get(id.toLowerCase())?.status;
  }

  /**
   * Logs the event a report stands for, if it is news, and publishes it. Never fails: a
   * sink or bus that fails loses the event (logged), not the change that already happened.
   * Resolves once the event is logged and published (or dropped).
   */
  async report(image: ArtifactRecord | ArtifactView, report: Report, source: Source = 'vitrine'): Promise<StoredEvent | null> {
    const decided = this.decide(snapshotOf(image), report, report.kind === 'polled' ? 'glance' : source);
    if (!decided) return null;
    const event: NewEvent = { ...decided, backend: this.o.backend };
    // One append at a time, so the log's order is the order of the decisions.
    const appended = this.tail.then(() => this.o.sink.append([event]));
    this.tail = appended.catch(() => undefined);
    let stored: StoredEvent;
    try {
      [stored] = await appended;
    } catch (err) {
      this.o.log?.(`the ${event.kind} event of image ${event.artifactId} was not logged`, err);
      return null;
    }
    try {
      await this.o.bus.publish({ topic: 'artifact', event: stored });
    } catch (err) {
      this.o.log?.(`event ${stored.seq} (${stored.kind} of image ${stored.artifactId}) was logged but not published`, err);
    }
    return stored;
  }

  /** The event to log, updating the memory at once (so a concurrent report of the same state is a duplicate). */
  private decide(image: ArtifactRecord, report: Report, source: Source): NewEvent | null {
    const id = image.id.toLowerCase();
    const known = this.known.get(id);
    const fingerprint = fingerprintOf(image);
    const content = contentOf(fingerprint);
    const extras = extrasOf(image);
    const updatedAt = Date.parse(image.updatedAt);
    if (known?.status === 'deleted') {
      if (report.kind === 'deleted') this.absorb(known, fingerprint, extras, source);
      return null;
    }
    const log = (status: Status, expect = fingerprint): void => {
      const expected = [...(known?.expected ?? []), { fingerprint: expect, extras, by: source }];
      this.remember(id, { status, updatedAt: Math.max(updatedAt, known?.updatedAt ?? 0), latest: fingerprint, latestContent: content, latestExtras: extras, expected: expected.slice(-EXPECTED_PER_IMAGE) });
    };

    if (report.kind === 'deleted') {
      const from = known?.status ?? report.from ?? (image.status === 'deleted' ? undefined : image.status);
      // The snapshot is the image before its deletion.
      let before: ArtifactRecord = { ...image, status: from ?? image.status };
      // A deletion notified by Glance lacks the extra fields: the state logged last tells them when nothing else changed since.
      if (known && contentOf(fingerprintOf(before)) === known.latestContent) before = withExtras(before, known.latestExtras);
      log('deleted');
      return eventOf('deleted', before, { from, to: 'deleted', revision: image.revision + 1 });
    }
    if (report.kind === 'members') {
      const change = memberFingerprint(report.change);
      if (known && this.absorb(known, change, {}, source)) return null;
      // The image read for the event may be newer than the state logged last: that state stays the one to compare with.
      if (known) this.remember(id, { ...known, expected: [...known.expected, { fingerprint: change, extras: {}, by: source }].slice(-EXPECTED_PER_IMAGE) });
      else log(image.status, change);
      return eventOf('updated', image);
    }
    if (!known) {
      if (report.kind === 'polled') {
        this.remember(id, { status: image.status, updatedAt, latest: fingerprint, latestContent: content, latestExtras: extras, expected: [] });
        return null;
      }
      log(image.status);
      if (report.kind === 'created') return eventOf('created', image);
      if (report.from !== undefined && report.from !== image.status) return eventOf('statusChanged', image, { from: report.from, to: image.status });
      // Nothing tells the status before: a report that stands for a status change says so.
      if (report.statusChange) return eventOf('statusChanged', image, { to: image.status });
      return eventOf('updated', image);
    }
    const sameAsLatest = fingerprint === known.latest && agree(known.latestExtras, extras);
    if (sameAsLatest || this.absorb(known, fingerprint, extras, source)) {
      if (sameAsLatest) {
        this.absorb(known, fingerprint, extras, source);
        known.latestExtras = { ...known.latestExtras, ...extras };
      }
      return null;
    }
    if (report.kind === 'created' || isLate(known, image.status, updatedAt)) return null;
    if (content === known.latestContent && agree(known.latestExtras, extras)) {
      // Only updated_at moved (Glance saves again after an upload or import): no change to tell.
      this.remember(id, { ...known, updatedAt: Math.max(updatedAt, known.updatedAt), latest: fingerprint, latestExtras: { ...known.latestExtras, ...extras } });
      return null;
    }
    const moved = image.status !== known.status;
    if (report.kind === 'polled' && !moved) return null;
    log(image.status);
    return moved ? eventOf('statusChanged', image, { from: known.status, to: image.status }) : eventOf('updated', image);
  }

  /** Whether the other source logged this state and this report was expected; the expectation is used up. */
  private absorb(known: Known, fingerprint: string, extras: Extras, source: Source): boolean {
    const i = known.expected.findIndex((e) => e.fingerprint === fingerprint && e.by !== source && agree(e.extras, extras));
    if (i < 0) return false;
    known.expected.splice(i, 1);
    return true;
  }

  private remember(id: string, state: Known): void {
    this.known.delete(id);
    this.known.set(id, state);
    if (this.known.size > this.maxImages) this.known.delete(this.known.keys().next().value as string);
  }
}

/**
 * A state older than the one logged: its updated_at is earlier, or (Glance shows whole
 * seconds) the same second but a status the logged one cannot lead to.
 */
function isLate(known: Known, status: Status, updatedAt: number): boolean {
  if (updatedAt < known.updatedAt) return true;
  return updatedAt === known.updatedAt && status !== known.status && !reachable(known.status, status);
}

const IMAGE_MOVES: ReadonlyMap<Status, Status[]> = (() => {
  const moves = new Map<Status, Status[]>();
  for (const t of TRANSITIONS) {
    if (t.lifecycle !== 'image') continue;
    for (const from of t.from) moves.set(from, [...(moves.get(from) ?? []), t.to]);
  }
  return moves;
})();

/** Whether the image lifecycle leads from one status to the other in one or more steps. */
export function reachable(from: Status, to: Status): boolean {
  const seen = new Set<Status>([from]);
  const queue: Status[] = [from];
  while (queue.length > 0) {
    for (const next of IMAGE_MOVES.get(queue.shift()!) ?? []) {
      if (next === to) return true;
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return false;
}

/**
 * What identifies a state of an image in both of Glance's shapes (its API's JSON and its
 * notifications' payload): the fields both carry. Left out: the os_glance_* bookkeeping of
 * imports (lists in notifications, strings in the API), and the `EXTRA_FIELDS`, which
 * notifications do not carry (compared apart, when known: `agree`).
 */
export function fingerprintOf(image: ArtifactRecord): string {
  const f = image.fields;
  const properties = Object.entries(image.properties).filter(([key]) => !key.startsWith('os_glance_')).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    Date.parse(image.updatedAt), image.status, image.name, image.visibility, image.owner, [...image.tags].sort(), properties,
    f.disk_format ?? null, f.container_format ?? null, f.size ?? null, f.virtual_size ?? null, f.checksum ?? null, f.min_disk ?? 0, f.min_ram ?? 0, f.protected ?? false,
  ]);
}

/** The extra fields the snapshot knows. */
function extrasOf(image: ArtifactRecord): Extras {
  const out: Extras = {};
  for (const field of EXTRA_FIELDS) {
    const value = image.fields[field];
    if (value !== undefined) out[field] = JSON.stringify(Array.isArray(value) ? [...value].sort() : value);
  }
  return out;
}

/** Whether two states agree on every extra field both know. */
function agree(a: Extras, b: Extras): boolean {
  for (const [field, value] of Object.entries(b)) if (field in a && a[field] !== value) return false;
  return true;
}

/** The snapshot with the extra fields it lacks taken from `extras`. */
function withExtras(image: ArtifactRecord, extras: Extras): ArtifactRecord {
  const fields: Record<string, FieldValue> = { ...image.fields };
  for (const [field, value] of Object.entries(extras)) if (fields[field] === undefined) fields[field] = JSON.parse(value) as FieldValue;
  return { ...image, fields };
}

/** A member change as an expectation: never equal to an image state's fingerprint. */
function memberFingerprint(change: MemberChange): string {
  return JSON.stringify(['member', change.member, change.status]);
}

/** A fingerprint without its updated_at (its first element). */
function contentOf(fingerprint: string): string {
  return fingerprint.slice(fingerprint.indexOf(','));
}

/** The record without the view's backend name. */
function snapshotOf(image: ArtifactRecord | ArtifactView): ArtifactRecord {
  const { backend: _backend, ...record } = image as ArtifactView;
  return record;
}

function eventOf(kind: NewEvent['kind'], image: ArtifactRecord, extra: Partial<NewEvent> = {}): NewEvent {
  return {
    kind,
    artifactId: image.id,
    typeName: image.typeName,
    owner: image.owner,
    visibility: image.visibility,
    revision: image.revision,
    at: nowIso(),
    snapshot: image,
    ...extra,
  };
}

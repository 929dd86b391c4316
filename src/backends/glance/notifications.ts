import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type { FieldValue, Status } from '../../domain/artifact';
import { MEMBER_STATUSES, nowIso } from '../../domain/artifact';
import { BASE_PROPERTIES, fromGlanceImage, IMAGE_FIELDS, type GlanceImage } from '../../domain/glance-image';
import type { EventBus, ProgressEvent } from '../../events/port';
import type { ArtifactView, ImportMethod } from '../port';
import { EXTRA_FIELDS, fingerprintOf, type ImageEvents, type MemberChange, type Report } from './events';
import { FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO, storeList } from './imports';
import { revisionOf } from './shapes';

/**
 * Glance's own notifications (oslo.messaging, driver `messagingv2`, over RabbitMQ) as
 * lifecycle events, so changes made in Glance directly (glanceclient, Nova snapshots, other
 * services) reach `artifactEvents`. Glance 25.1 publishes to the topic exchange `glance`
 * (not durable) with routing key `<topic>.<priority>` (`notifications.info`), each message
 * an envelope `{"oslo.version": "2.0", "oslo.message": "<JSON>"}` whose message has
 * `event_type`, `payload` (the image, in Glance's v1-like notification shape), `timestamp`.
 *
 * The consumer reads through a queue of its own bound to `<topic>.*` and reconnects with
 * backoff when RabbitMQ drops. The queue is named (default `vitrine-<backend>`) and outlives
 * a connection by `queueExpiresMs`, so what Glance sends during a short outage is read
 * afterwards; several instances naming the same queue share its messages.
 */
export interface NotificationSettings {
  /** amqp://user:password@host:port/vhost */
  url: string;
  /** Glance's control_exchange. Default `glance`. */
  exchange: string;
  /** oslo.messaging's notification topic; messages arrive with routing key `<topic>.<priority>`. Default `notifications`. */
  topic: string;
  /** The queue Vitrine reads from. */
  queue: string;
  /** RabbitMQ deletes the queue after this long without a consumer. */
  queueExpiresMs: number;
  /** Reconnection backoff: first wait and longest wait (full jitter). */
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

/** One notification, out of its envelope. */
export interface GlanceNotification {
  eventType: string;
  payload: unknown;
  timestamp: string | null;
}

/** The message inside an oslo envelope (or a message sent without one); null when it is not a notification. */
export function parseNotification(content: Buffer): GlanceNotification | null {
  let message: unknown;
  try {
    message = JSON.parse(content.toString('utf8'));
    if (isObject(message) && typeof message['oslo.message'] === 'string') message = JSON.parse(message['oslo.message']);
  } catch {
    return null;
  }
  if (!isObject(message) || typeof message.event_type !== 'string') return null;
  return { eventType: message.event_type, payload: message.payload, timestamp: typeof message.timestamp === 'string' ? message.timestamp : null };
}

/**
 * The image of an `image.*` notification, as the backend's view. The payload
 * (format_image_notification) flattens differently from the API (extra properties under
 * `properties`, `is_public`, `deleted`) and lacks os_hidden, os_hash_algo, os_hash_value
 * and stores: the view leaves out every field the payload does not carry, rather than
 * show a default that may be wrong. One is inferred: without a checksum there is no data,
 * so no os_hash_* either (Glance sets them together, on upload or with a location's
 * validation data).
 */
export function imageFromPayload(backend: string, payload: unknown): ArtifactView | null {
  if (!isObject(payload) || typeof payload.id !== 'string' || typeof payload.status !== 'string') return null;
  const image: GlanceImage = {};
  if (isObject(payload.properties)) {
    for (const [key, value] of Object.entries(payload.properties)) if (typeof value === 'string') image[key] = value;
  }
  for (const key of BASE_PROPERTIES) if (key in payload) image[key] = payload[key];
  if ('stores' in payload) image.stores = payload.stores;
  const view = fromGlanceImage(image, { backend, revision: revisionOf(String(payload.updated_at ?? payload.created_at)) });
  for (const field of [...IMAGE_FIELDS, 'stores']) if (!(field in payload)) delete view.fields[field];
  if (payload.checksum === null) for (const field of ['os_hash_algo', 'os_hash_value']) view.fields[field] ??= null;
  return view;
}

/**
 * The notified image completed with the fields its payload lacks, from a read of the image
 * made after the notification: all of them when the read shows the same state (same
 * updated_at and the same fields), only os_hash_* when it shows a later state with the same
 * checksum (image data never changes once set). Otherwise they stay unknown: a later
 * os_hidden or stores may not be the notified state's.
 */
export function completeImage(notified: ArtifactView, read: ArtifactView | null): ArtifactView {
  if (!read || read.id.toLowerCase() !== notified.id.toLowerCase()) return notified;
  const missing = EXTRA_FIELDS.filter((field) => notified.fields[field] === undefined);
  if (missing.length === 0) return notified;
  const sameState = fingerprintOf(read) === fingerprintOf(notified);
  const sameData = notified.fields.checksum != null && read.fields.checksum === notified.fields.checksum;
  const fields: Record<string, FieldValue> = { ...notified.fields };
  for (const field of missing) {
    if (sameState || (sameData && field.startsWith('os_hash_'))) fields[field] = read.fields[field] ?? null;
  }
  return { ...notified, fields };
}

/** What each image notification reports; image.member.* are MEMBER_REPORTS, the others (image.send, metadef_*, ...) report nothing. */
const IMAGE_REPORTS: Readonly<Record<string, (image: ArtifactView) => Report>> = {
  'image.create': () => ({ kind: 'created' }),
  'image.update': () => ({ kind: 'changed' }),
  'image.prepare': () => ({ kind: 'changed' }),
  'image.upload': (image) => ({ kind: 'changed', statusChange: image.status === 'active' }),
  'image.activate': () => ({ kind: 'changed', statusChange: true }),
  'image.delete': () => ({ kind: 'deleted' }),
};

/** Member notifications (format_image_member_notification: image_id, member_id, status, no image) as member changes. */
const MEMBER_REPORTS: Readonly<Record<string, (member: string, status: string) => MemberChange | null>> = {
  'image.member.create': (member, status) => memberChange(member, status),
  'image.member.update': (member, status) => memberChange(member, status),
  'image.member.delete': (member) => ({ member, status: 'removed' }),
};

function memberChange(member: string, status: string): MemberChange | null {
  return (MEMBER_STATUSES as readonly string[]).includes(status) ? { member, status: status as MemberChange['status'] } : null;
}

export interface NotificationHandlerOptions {
  backend: string;
  events: ImageEvents;
  bus: EventBus;
  /** Whether this instance watches the image's import itself (then it publishes its progress). */
  watching(imageId: string): boolean;
  /** Imports remembered at once (their task → image). */
  maxImports?: number;
  /**
   * Reads an image as Glance shows it now (null when Glance does not show it): completes
   * what payloads lack, and gives member changes their image. Without it, those fields stay
   * unknown and member notifications are dropped.
   */
  readImage?(imageId: string): Promise<ArtifactView | null>;
  log?: (message: string, err?: unknown) => void;
}

interface ExternalImport {
  imageId: string;
  owner: string;
  method: ImportMethod | 'unknown';
  lastStatus: Status;
  /** Every store seen in os_glance_importing_to_stores. */
  targets: Set<string>;
  done: string[];
  failed: string[];
}

/**
 * Turns notifications into reports to ImageEvents, and imports that this instance does
 * not watch into importProgress events: `task.*` payloads carry no image, so the import
 * task named by an image's `os_glance_import_task` links them, and the task's end is the
 * final event.
 */
export class NotificationHandler {
  private readonly imports = new Map<string, ExternalImport>();
  private readonly maxImports: number;

  constructor(private readonly o: NotificationHandlerOptions) {
    this.maxImports = o.maxImports ?? 1000;
  }

  async handle(n: GlanceNotification): Promise<void> {
    const report = IMAGE_REPORTS[n.eventType];
    if (report) {
      const notified = imageFromPayload(this.o.backend, n.payload);
      if (!notified) return;
      // A deleted image can no longer be read; ImageEvents completes its snapshot from what it logged last.
      const image = n.eventType === 'image.delete' ? notified : completeImage(notified, await this.read(notified.id));
      const before = this.o.events.statusOf(image.id);
      await this.o.events.report(image, report(image), 'glance');
      this.noteImport(image, before);
      return;
    }
    const member = MEMBER_REPORTS[n.eventType];
    if (member) {
      const p = n.payload;
      if (!isObject(p) || typeof p.image_id !== 'string' || typeof p.member_id !== 'string') return;
      const change = member(p.member_id, String(p.status ?? ''));
      // The image itself, as the event's snapshot (a subscriber sees the image whose members changed).
      const image = change && (await this.read(p.image_id));
      if (image) await this.o.events.report(image, { kind: 'members', change }, 'glance');
      return;
    }
    if (n.eventType.startsWith('task.') && isObject(n.payload) && typeof n.payload.id === 'string') this.noteTask(n.payload.id, String(n.payload.status ?? ''), typeof n.payload.message === 'string' ? n.payload.message : '');
  }

  /** The image as Glance shows it now; null when it cannot be read (the event then goes without what the read would add). */
  private async read(imageId: string): Promise<ArtifactView | null> {
    if (!this.o.readImage) return null;
    try {
      return await this.o.readImage(imageId);
    } catch (err) {
      this.o.log?.(`reading image ${imageId} for its notification failed`, err);
      return null;
    }
  }

  private noteImport(image: ArtifactView, before: Status | undefined): void {
    const task = image.properties[IMPORT_LOCK];
    if (!task || this.o.watching(image.id)) return;
    let entry = this.imports.get(task);
    if (!entry) {
      // A task seen for the first time: its method follows from where the image was.
      const from = before ?? image.status;
      const method = from === 'uploading' ? 'glance-direct' : from === 'queued' ? 'web-download' : from === 'active' ? 'copy-image' : 'unknown';
      entry = { imageId: image.id, owner: image.owner, method, lastStatus: image.status, targets: new Set(), done: [], failed: [] };
      this.imports.set(task, entry);
      if (this.imports.size > this.maxImports) this.imports.delete(this.imports.keys().next().value as string);
    }
    entry.lastStatus = image.status;
    const importing = storeList(image.properties[IMPORTING_TO]);
    for (const store of importing) entry.targets.add(store);
    entry.failed = storeList(image.properties[FAILED_IMPORT]);
    entry.done = [...entry.targets].filter((s) => !importing.includes(s) && !entry!.failed.includes(s)).sort();
    this.progress(entry, { done: false });
  }

  private noteTask(taskId: string, status: string, message: string): void {
    const entry = this.imports.get(taskId);
    if (!entry || this.o.watching(entry.imageId)) return;
    if (status !== 'success' && status !== 'failure') return;
    this.imports.delete(taskId);
    const outcome = status === 'success' ? 'succeeded' : 'failed';
    this.progress(entry, { done: true, outcome, finalStatus: this.o.events.statusOf(entry.imageId) ?? entry.lastStatus, ...(outcome === 'failed' && { error: message || 'the import failed' }) });
  }

  private progress(entry: ExternalImport, fields: Pick<ProgressEvent, 'done'> & Partial<ProgressEvent>): void {
    const event: ProgressEvent = {
      kind: 'importProgress',
      artifactId: entry.imageId,
      owner: entry.owner,
      subject: entry.method,
      stage: fields.done ? 'done' : 'import',
      bytes: 0,
      total: null,
      ratePerSecond: 0,
      etaSeconds: null,
      storesDone: entry.done,
      storesFailed: entry.failed,
      at: nowIso(),
      ...fields,
    };
    this.o.bus.publish({ topic: 'progress', event }).catch(() => undefined);
  }
}

/** Longest wait for RabbitMQ to confirm a close. */
const CLOSE_WAIT_MS = 2_000;

export interface ConsumerOptions {
  settings: NotificationSettings;
  handle(n: GlanceNotification): Promise<void>;
  log?: (message: string, err?: unknown) => void;
}

/**
 * Reads notifications from RabbitMQ: one connection and channel, a bounded prefetch,
 * messages handled one after the other (in Glance's order) and acknowledged once handled.
 * A dropped connection is opened again with jittered exponential backoff; messages
 * handled but not yet acknowledged come again, which the dedupe of ImageEvents absorbs.
 */
export class NotificationConsumer {
  private closed = false;
  private readonly stopping = new AbortController();
  private model: ChannelModel | undefined;
  /** Resolves when the current connection has closed. */
  private gone: Promise<void> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly readyListeners = new Set<() => void>();
  /** Connections that reached consuming (for health reports and tests). */
  connections = 0;

  constructor(private readonly o: ConsumerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Whether the consumer is connected and consuming now. */
  get consuming(): boolean {
    return this.model !== undefined;
  }

  /** Calls `listener` each time consumption (re)starts. */
  onReady(listener: () => void): { unsubscribe(): void } {
    this.readyListeners.add(listener);
    return { unsubscribe: () => this.readyListeners.delete(listener) };
  }

  /** Resolves once every message received so far has been handled (tests). */
  drained(): Promise<void> {
    return this.chain;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    if (this.model) await this.shut(this.model);
    await this.loop;
    await this.chain;
  }

  /** Closes a connection; one whose socket already died may never answer the close, so its end counts too. */
  private async shut(model: ChannelModel): Promise<void> {
    await Promise.race([model.close().catch(() => undefined), this.gone, sleep(CLOSE_WAIT_MS)]);
  }

  private async run(): Promise<void> {
    const { settings } = this.o;
    let delay = settings.reconnectMinMs;
    while (!this.closed) {
      let model: ChannelModel | undefined;
      try {
        model = await connect(settings.url, { timeout: 10_000 });
        const gone = new Promise<void>((resolve) => model!.once('close', () => resolve()));
        this.gone = gone;
        model.on('error', (err: unknown) => this.o.log?.('the connection to RabbitMQ failed', err));
        const channel = await model.createChannel();
        channel.on('error', (err: unknown) => this.o.log?.('the RabbitMQ channel failed', err));
        await channel.prefetch(100);
        // As oslo.messaging declares it: a topic exchange, not durable by default.
        await channel.assertExchange(settings.exchange, 'topic', { durable: false });
        await channel.assertQueue(settings.queue, { durable: false, autoDelete: false, arguments: { 'x-expires': settings.queueExpiresMs } });
        await channel.bindQueue(settings.queue, settings.exchange, `${settings.topic}.*`);
        await channel.consume(settings.queue, (message) => this.receive(channel, message), { noAck: false });
        if (this.closed) {
          await this.shut(model);
          return;
        }
        this.model = model;
        this.connections++;
        delay = settings.reconnectMinMs;
        for (const listener of this.readyListeners) listener();
        await gone;
        if (!this.closed) this.o.log?.('the connection to RabbitMQ closed; reconnecting');
      } catch (err) {
        if (!this.closed) this.o.log?.(`connecting to RabbitMQ for Glance's notifications failed; retrying in about ${delay} ms`, err);
        if (model) await this.shut(model);
      } finally {
        this.model = undefined;
      }
      if (this.closed) return;
      await sleep(Math.floor(delay / 2 + Math.random() * (delay / 2)), undefined, { signal: this.stopping.signal }).catch(() => undefined);
      delay = Math.min(settings.reconnectMaxMs, delay * 2);
    }
  }

  private receive(channel: Channel, message: ConsumeMessage | null): void {
    if (!message) return; // the queue was deleted: the connection loop starts over when the channel closes
    this.chain = this.chain.then(async () => {
      const notification = parseNotification(message.content);
      if (!notification) this.o.log?.('a message that is not an oslo notification was dropped');
      else {
        try {
          await this.o.handle(notification);
        } catch (err) {
          this.o.log?.(`handling Glance's ${notification.eventType} notification failed`, err);
        }
      }
      try {
        channel.ack(message);
      } catch {
        // The channel closed meanwhile: the message comes again after reconnecting.
      }
    });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LinkRecord, MemberRecord, MemberStatus, Status, Visibility } from '../../domain/artifact';
import { MEMBER_STATUSES } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, VitrineError } from '../../domain/errors';
import { resolveSort } from '../../domain/filters';
import { IMAGE_TYPE } from '../../domain/glance-image';
import { isUuid, parseId } from '../../domain/ids';
import { nextStatus } from '../../domain/lifecycle';
import { cursorEncoder, planPage, type PageLimits } from '../../domain/paging';
import { isAdmin, requireWrite, type Principal } from '../../domain/policy';
import { validateVisibility } from '../../domain/rules';
import { requireField, type ArtifactTypeDef } from '../../domain/types';
import type { EventBus } from '../../events/port';
import type {
  AddLocationRequest, ArtifactBackend, ArtifactPage, ArtifactView, BlobContent, BlobSweepReport, BlobTarget, BlobView, ByteSpan, CreateRequest, ExternalBlobRequest,
  ImageLocationsView, ImportRequest, ListRequest, StatusAction, StoreView, TaskListRequest, TaskPage, TaskSortKey, TaskView, UpdateRequest, UploadMeta, UploadResult, UsageView,
} from '../port';
import { checkImportUrl, type UrlFilter } from '../native/web-download';
import { ProgressReporter } from '../common/progress';
import { createBody, JSON_PATCH, patchFor } from './changes';
import type { StatusCodes } from './errors';
import { GlanceClient, headerValue, type GlanceRequest, type GlanceTimeouts, type Method } from './client';
import { ImageEvents, type EventSink, type MemberChange } from './events';
import { identityHeaders, type IdentityMode } from './identity';
import { InFlightImages } from './in-flight';
import { IMPORT_LOCK, importBody, ImportWatchers } from './imports';
import { NotificationConsumer, NotificationHandler, type NotificationSettings } from './notifications';
import { glanceFilter, glanceSort, keysetOf, MAX_IDS_PER_QUERY, reverseGlanceSort } from './query';
import { imageBlob, imagesOf, imageView, locationsShown, memberOf, membersOf, storesOf, taskOf, tasksOf } from './shapes';
import { checkAnnounced } from '../common/announced';
import { outgoingUpload } from './upload';

/** Glance's task columns, as its list sorts and filters by them. */
const GLANCE_TASK_COLUMN: Record<TaskSortKey, string> = {
  id: 'id', type: 'type', status: 'status', owner: 'owner', imageId: 'image_id', userId: 'user_id', requestId: 'request_id',
  createdAt: 'created_at', updatedAt: 'updated_at', expiresAt: 'expires_at',
};

export interface GlanceBackendOptions {
  /** The backend's name in configuration, e.g. 'legacy'; ArtifactView.backend carries it. */
  name: string;
  /** http://host:port of the Glance API (without /v2). */
  url: string;
  /** The registry; this backend serves its `images` type only. */
  types: TypeRegistry;
  /** Where upload progress (and later import progress) events go. */
  bus: EventBus;
  /** How the caller's identity reaches Glance (see identity.ts). */
  identity: IdentityMode;
  /**
   * With identity `token`: Vitrine's own Keystone token (the service user's), to read an image
   * as itself for what Glance's notifications leave out. Glance must let it read every image
   * (an admin role); without it those fields stay unknown and member changes go unevented.
   */
  serviceToken?: () => Promise<string>;
  timeouts: GlanceTimeouts;
  /** Extra attempts for idempotent reads (GET), with jittered backoff. */
  retries: number;
  /** Consecutive upstream failures that open the circuit breaker, and how long it stays open. */
  breaker: { failures: number; resetMs: number };
  /** Keep-alive connections to Glance. */
  connections: number;
  progressIntervalMs: number;
  /** Where the data plane serves blobs (BlobView.downloadUrl), as for the native backend. */
  blobPathPrefix: string;
  /** The web-download pre-check of imports lets private and loopback addresses through. */
  allowPrivateUrls: boolean;
  /**
   * images.showLocations / images.showDirectUrl: Vitrine's own switches in front of Glance's
   * show_multiple_locations / show_image_direct_url. Off (the default): no locations shown,
   * location changes FORBIDDEN before Glance is asked; on: Glance decides what each caller sees and may change.
   */
  locations?: { show: boolean; showDirectUrl: boolean };
  /** Page sizes; Glance itself caps a page at 1000. Default 25 and 1000. */
  paging?: PageLimits;
  /** How often a running import's task and image are read for importProgress events. Default 1000. */
  pollIntervalMs?: number;
  /** Imports watched at once (more run unwatched: no progress events). Default 32. */
  maxImportWatchers?: number;
  /** A watch that sees no end of its task stops after this long. Default 2 hours (Glance's import lock lasts 1 to 2). */
  maxImportWatchMs?: number;
  /**
   * Where lifecycle events of images go (the native metadata store's log, which numbers
   * them); without it this backend publishes no lifecycle events, only progress.
   */
  events?: EventSink;
  /** Glance's notifications over RabbitMQ, turned into events (needs `events`). */
  notifications?: NotificationSettings;
  /** Without notifications: how often images seen in flight are read again for status events (needs `events`; 0: never). Default 5000. */
  inFlightPollMs?: number;
  /** Images followed by that polling at once. Default 1000. */
  maxInFlight?: number;
  /** Background failures (watchers, events, notifications) that no caller sees. */
  log?: (message: string, err?: unknown) => void;
}

/** How often a failed upload's image is read while Glance rolls it back, and how long Glance may take to start on it. */
const ROLLBACK_POLL_MS = 25;
const ROLLBACK_START_MS = 2_000;
/**
 * The pre-check of web-download URLs: syntax, http(s), and (unless allowed) no private or
 * loopback address. Host and port lists are left to Glance's own [import_filtering_opts].
 */
const PERMISSIVE_URL_FILTER: UrlFilter = Object.freeze({
  allowedSchemes: Object.freeze(['http', 'https']),
  disallowedSchemes: Object.freeze([]),
  allowedHosts: Object.freeze([]),
  disallowedHosts: Object.freeze([]),
  allowedPorts: Object.freeze([]),
  disallowedPorts: Object.freeze([]),
  allowPrivate: false,
});
/** Glance's refusals of location changes (images.py _do_*_locations, location.py) as the native store's codes. */
const LOCATION_CODES: StatusCodes = { 400: 'LOCATION_INVALID', 409: 'LOCATION_CONFLICT', 413: 'QUOTA_EXCEEDED' };
const NO_LOCATIONS: ImageLocationsView = Object.freeze({ locations: null, directUrl: null });
/** Glance's api_limit_max. */
const GLANCE_MAX_LIMIT = 1000;
const IMAGE_BLOB = 'image';

/**
 * An ArtifactBackend that proxies a real Glance v2: every image of that Glance, read and
 * written through Glance's own API with the caller's identity, so Glance's policy and
 * visibility rules apply. Reads are batched (`id=in:`), filters and sorts pushed down,
 * image data streamed both ways without buffering. Costs, caveats and the error mapping:
 * docs/glance-backend.md.
 */
export class GlanceBackend implements ArtifactBackend {
  readonly name: string;
  readonly types: TypeRegistry;
  private readonly client: GlanceClient;
  private readonly imageType: ArtifactTypeDef;
  private readonly paging: PageLimits;
  private readonly watchers: ImportWatchers;
  private closing: Promise<void> | undefined;
  /** Lifecycle events, when a sink is configured. */
  private readonly events: ImageEvents | undefined;
  /** Without notifications: the images in flight that are polled. */
  private readonly inFlight: InFlightImages | undefined;
  /** Glance's notifications, when configured. */
  readonly notifications: NotificationConsumer | undefined;
  /** What Vitrine refuses itself before Glance sees a web-download; Glance's own filter applies after it. */
  private readonly urlFilter: UrlFilter;

  constructor(private readonly options: GlanceBackendOptions) {
    this.name = options.name;
    this.types = options.types;
    this.imageType = options.types.get(IMAGE_TYPE);
    this.paging = options.paging ?? { defaultPageSize: 25, maxPageSize: GLANCE_MAX_LIMIT };
    if (this.paging.maxPageSize > GLANCE_MAX_LIMIT) fail('CONFIG_INVALID', `backend ${options.name}: Glance pages hold at most ${GLANCE_MAX_LIMIT} images`);
    this.client = new GlanceClient({
      backend: options.name,
      url: options.url,
      timeouts: options.timeouts,
      retries: options.retries,
      breaker: options.breaker,
      connections: options.connections,
    });
    this.urlFilter = { ...PERMISSIVE_URL_FILTER, allowPrivate: options.allowPrivateUrls };
    this.watchers = new ImportWatchers({
      bus: options.bus,
      readImage: (principal, id) => this.getImage(principal, id),
      readTasks: (principal, id) => this.tasksOf(principal, id),
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      maxWatchers: options.maxImportWatchers ?? 32,
      maxWatchMs: options.maxImportWatchMs ?? 2 * 3600_000,
      log: options.log,
      // Without notifications, what a watcher reads is also a status report.
      onImage: (principal, image) => {
        if (!this.inFlight) return;
        void this.events?.report(image, { kind: 'polled' });
        this.inFlight.track(principal, image);
      },
    });
    if (options.events) {
      const events = new ImageEvents({ backend: this.name, sink: options.events, bus: options.bus, log: options.log });
      this.events = events;
      if (options.notifications) {
        const readAs = this.notificationReads(options);
        const handler = new NotificationHandler({
          backend: this.name,
          events,
          bus: options.bus,
          watching: (id) => this.watchers.watching(id),
          // Vitrine reads as itself: by identity headers, or with its service token where tokens are forwarded.
          ...(readAs && { readImage: async (id: string) => this.getImage(await readAs(), id) }),
          log: options.log,
        });
        this.notifications = new NotificationConsumer({ settings: options.notifications, handle: (n) => handler.handle(n), log: options.log });
        this.notifications.start();
      } else if ((options.inFlightPollMs ?? 5000) > 0) {
        this.inFlight = new InFlightImages({
          events,
          read: (principal, ids) => this.getMany(principal, ids),
          intervalMs: options.inFlightPollMs ?? 5000,
          maxImages: options.maxInFlight ?? 1000,
          log: options.log,
        });
      }
    }
  }

  /** Who reads images for notifications, or undefined when Vitrine has no identity of its own here. */
  private notificationReads(options: GlanceBackendOptions): (() => Promise<Principal>) | undefined {
    const reader = notificationReader(this.name);
    if (options.identity === 'headers') return async () => reader;
    const serviceToken = options.serviceToken;
    return serviceToken && (async () => ({ ...reader, token: await serviceToken() }));
  }

  /** The circuit breaker's state, for health reports. */
  get breakerState(): 'closed' | 'open' | 'halfOpen' {
    return this.client.breaker.state;
  }

  /** Stops the notifications, the polling and the import watchers, then closes the connection pool (at shutdown). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.notifications?.close();
      await this.inFlight?.close();
      await this.watchers.close();
      await this.client.close();
    })();
    return this.closing;
  }

  /** Resolves once no import is watched any more (tests). */
  importsIdle(): Promise<void> {
    return this.watchers.idle();
  }

  /** One round of in-flight polling now (tests); false when polling is off. */
  async pollInFlight(): Promise<boolean> {
    if (!this.inFlight) return false;
    await this.inFlight.poll();
    return true;
  }

  // ---- reads ---------------------------------------------------------------------------

  /**
   * One `GET /v2/images?id=in:…` per 150 ids (with visibility=all and member_status=all, so
   * everything the caller may see by id is listed), one more for os_hidden images if some
   * ids are still missing, then `GET /v2/images/{id}` for what no list shows (killed images,
   * ids that do not exist), a few at a time. A single id goes straight to `GET /v2/images/{id}`.
   */
  async getMany(principal: Principal, ids: readonly string[]): Promise<(ArtifactView | null)[]> {
    const found = new Map<string, ArtifactView>();
    const missing = () => [...new Set(ids.filter((id) => isUuid(id)).map((id) => id.toLowerCase()))].filter((id) => !found.has(id));
    // One image: Glance's own show is one call and cheaper for Glance than a filtered list.
    for (const hidden of missing().length === 1 ? [] : [false, true]) {
      const wanted = missing();
      if (wanted.length === 0) break;
      const batches = chunks(wanted, MAX_IDS_PER_QUERY);
      const pages = await mapLimit(batches, this.options.connections, (batch) => this.listImages(principal, [
        ['id', `in:${batch.join(',')}`], ['visibility', 'all'], ['member_status', 'all'], ['os_hidden', String(hidden)], ['limit', String(batch.length)],
      ]));
      for (const view of pages.flat()) found.set(view.id.toLowerCase(), view);
    }
    const rest = missing();
    const single = await mapLimit(rest, this.options.connections, (id) => this.getImage(principal, id));
    single.forEach((view) => view && found.set(view.id.toLowerCase(), view));
    if (this.inFlight) for (const view of found.values()) this.inFlight.track(principal, view);
    return ids.map((id) => found.get(id.toLowerCase()) ?? null);
  }

  /** Glance's images change without Vitrine seeing every write (notifications are optional and late). */
  async listMark(): Promise<undefined> {
    return undefined;
  }

  async list(principal: Principal, request: ListRequest): Promise<ArtifactPage> {
    const type = this.imageType;
    const sort = resolveSort(type, request.sort);
    const sortParam = glanceSort(sort, this.name);
    const plan = planPage(sort, request, this.paging);
    let marker = plan.position?.id;
    if (request.afterId !== undefined) {
      if (request.after != null || request.before != null || request.last != null) fail('CURSOR_INVALID', 'afterId pages forward only: pass it without after, before or last');
      marker = parseId(request.afterId, 'afterId');
    }
    const otherType = request.typeName !== undefined && this.types.get(request.typeName).name !== type.name;
    const filter = glanceFilter(type, request.filter, this.name);
    const hadPosition = marker !== undefined;
    if (otherType || filter.nothing) {
      return { items: [], cursors: [], hasNextPage: plan.backward && hadPosition, hasPreviousPage: !plan.backward && hadPosition, totalCount: async () => 0 };
    }
    const { rows, more } = await this.page(principal, filter.params, plan.backward ? reverseGlanceSort(sortParam) : sortParam, plan.size, marker);
    if (plan.backward) rows.reverse();
    const encode = cursorEncoder(sort);
    return {
      items: rows,
      cursors: rows.map((r) => encode(keysetOf(sort, r))),
      hasNextPage: plan.backward ? hadPosition : more,
      hasPreviousPage: plan.backward ? more : hadPosition,
      totalCount: () => this.count(principal, filter.params),
    };
  }

  /** One page after `marker` (Glance's keyset marker), and whether more follow. */
  private async page(principal: Principal, params: [string, string][], sort: string, size: number, marker: string | undefined): Promise<{ rows: ArtifactView[]; more: boolean }> {
    const after: [string, string][] = marker !== undefined ? [['marker', marker]] : [];
    const rows = await this.listImages(principal, [...params, ['sort', sort], ['limit', String(Math.min(size + 1, GLANCE_MAX_LIMIT))], ...after]);
    if (rows.length > size) return { rows: rows.slice(0, size), more: true };
    if (size + 1 > GLANCE_MAX_LIMIT && size > 0 && rows.length === size) {
      // A full page of Glance's largest size: one more image tells whether another page exists.
      const probe = await this.listImages(principal, [...params, ['sort', sort], ['limit', '1'], ['marker', rows[rows.length - 1].id]]);
      return { rows, more: probe.length > 0 };
    }
    return { rows, more: false };
  }

  /**
   * Glance has no count: page through the whole filter at Glance's largest page size
   * (one call per 1000 images, each costing Glance about as much as listing them).
   */
  private async count(principal: Principal, params: [string, string][]): Promise<number> {
    let total = 0;
    let marker: string | undefined;
    for (;;) {
      const rows = await this.listImages(principal, [...params, ['sort', 'created_at:desc,id:desc'], ['limit', String(GLANCE_MAX_LIMIT)], ...(marker ? [['marker', marker] as [string, string]] : [])]);
      total += rows.length;
      if (rows.length < GLANCE_MAX_LIMIT) return total;
      marker = rows[rows.length - 1].id;
    }
  }

  private async listImages(principal: Principal, params: [string, string][]): Promise<ArtifactView[]> {
    const withMarker = params.some(([k]) => k === 'marker');
    try {
      return imagesOf(this.name, await this.client.json(this.request(principal, 'GET', '/v2/images', { query: new URLSearchParams(params) }), [200], { 400: 'FILTER_INVALID' }));
    } catch (err) {
      if (withMarker && err instanceof VitrineError && err.code === 'FILTER_INVALID' && /No image found with ID/i.test(err.message)) {
        fail('CURSOR_INVALID', 'the image this page continues after no longer exists or is not visible (Glance pages after an image)', { backend: this.name });
      }
      throw err;
    }
  }

  /** The image, or null when Glance does not show it to the principal. */
  private getImage(principal: Principal, id: string): Promise<ArtifactView | null> {
    return this.client.exchange(this.request(principal, 'GET', imagePath(id)), async (answer) => {
      if (answer.status === 404) {
        await answer.body.dump();
        return null;
      }
      if (answer.status !== 200) throw await this.client.answerError(answer);
      return imageView(this.name, await this.client.readJson(answer));
    });
  }

  private async loadImage(principal: Principal, id: string): Promise<ArtifactView> {
    const image = await this.getImage(principal, parseId(id));
    return image ?? fail('NOT_FOUND', `image ${id} not found`, { backend: this.name });
  }

  // ---- writes --------------------------------------------------------------------------

  async create(principal: Principal, request: CreateRequest): Promise<ArtifactView> {
    const type = this.types.get(request.typeName);
    if (type.name !== this.imageType.name) fail('BAD_INPUT', `backend ${this.name} (a Glance) holds images only, not ${type.name}`, { backend: this.name });
    const body = createBody(type, request);
    const created = imageView(this.name, await this.client.json(this.request(principal, 'POST', '/v2/images', { json: body }), [201]));
    await this.events?.report(created, { kind: 'created' });
    return created;
  }

  /**
   * Reads the image (for ifRevision, and to patch only what differs), then one JSON patch.
   * The revision check and the patch are two calls: a change by someone else in between is
   * not detected (docs/glance-backend.md, "Revisions").
   */
  async update(principal: Principal, id: string, change: UpdateRequest, ifRevision?: number): Promise<ArtifactView> {
    const current = await this.loadImage(principal, id);
    this.checkRevision(current, ifRevision);
    const ops = patchFor(this.imageType, current, change);
    if (ops.length === 0) return current;
    const updated = await this.patch(principal, current.id, ops);
    await this.events?.report(updated, { kind: 'changed', from: current.status });
    return updated;
  }

  async setVisibility(principal: Principal, id: string, visibility: Visibility, ifRevision?: number): Promise<ArtifactView> {
    const to = validateVisibility(visibility);
    if (ifRevision !== undefined) {
      const current = await this.loadImage(principal, id);
      this.checkRevision(current, ifRevision);
      if (current.visibility === to) return current;
    }
    const updated = await this.patch(principal, parseId(id), [{ op: 'replace', path: '/visibility', value: to }]);
    await this.events?.report(updated, { kind: 'changed' });
    return updated;
  }

  private async patch(principal: Principal, id: string, ops: unknown[], codes?: StatusCodes): Promise<ArtifactView> {
    const request = this.request(principal, 'PATCH', imagePath(id), { json: ops, contentType: JSON_PATCH });
    return imageView(this.name, await this.client.json(request, [200], codes));
  }

  /** deactivate / reactivate are Glance actions; an image becomes active only when its data arrives. */
  async changeStatus(principal: Principal, id: string, action: StatusAction, ifRevision?: number): Promise<ArtifactView> {
    if (action === 'activate') fail('TRANSITION_FORBIDDEN', 'Glance images become active when their data is uploaded or imported, not by request');
    const imageId = parseId(id);
    // The status before, for the event, unless it is remembered.
    const needBefore = ifRevision !== undefined || (this.events !== undefined && this.events.statusOf(imageId) === undefined);
    const before = needBefore ? await this.loadImage(principal, imageId) : undefined;
    if (before) this.checkRevision(before, ifRevision);
    await this.client.empty(this.request(principal, 'POST', `${imagePath(imageId)}/actions/${action}`), [204]);
    const after = await this.loadImage(principal, imageId);
    await this.events?.report(after, { kind: 'changed', from: before?.status });
    return after;
  }

  async delete(principal: Principal, id: string, ifRevision?: number): Promise<{ id: string; typeName: string; status: Status }> {
    const imageId = parseId(id);
    // The event's snapshot is the image before its deletion.
    const before = ifRevision !== undefined || this.events ? await this.loadImage(principal, imageId) : undefined;
    if (before) this.checkRevision(before, ifRevision);
    await this.client.empty(this.request(principal, 'DELETE', imagePath(imageId)), [204]);
    if (before) await this.events?.report(before, { kind: 'deleted', from: before.status });
    return { id: imageId, typeName: this.imageType.name, status: 'deleted' };
  }

  private checkRevision(current: ArtifactView, ifRevision: number | undefined): void {
    if (ifRevision !== undefined && ifRevision !== current.revision) {
      fail('REVISION_CONFLICT', `image ${current.id} is at revision ${current.revision}, not ${ifRevision}`, { revision: current.revision, backend: this.name });
    }
  }

  // ---- links (Glance images have none) ---------------------------------------------------

  async addLink(): Promise<ArtifactView> {
    return fail('BAD_INPUT', `backend ${this.name} holds Glance images, which have no links`, { backend: this.name });
  }

  async removeLink(): Promise<ArtifactView> {
    return fail('BAD_INPUT', `backend ${this.name} holds Glance images, which have no links`, { backend: this.name });
  }

  async linksOf(_principal: Principal, ids: readonly string[]): Promise<LinkRecord[][]> {
    return ids.map(() => []);
  }

  // ---- members -------------------------------------------------------------------------

  /** One batched read for the images, then one members call per `shared` image (others have none), concurrently. */
  async membersOf(principal: Principal, ids: readonly string[]): Promise<MemberRecord[][]> {
    const images = await this.getMany(principal, ids);
    const shared = [...new Set(images.filter((i): i is ArtifactView => i?.visibility === 'shared').map((i) => i.id))];
    const lists = await mapLimit(shared, this.options.connections, (id) => this.client.exchange(this.request(principal, 'GET', `${imagePath(id)}/members`), async (answer) => {
      if (answer.status === 404) {
        // Deleted (or unshared) since it was read.
        await answer.body.dump();
        return [];
      }
      if (answer.status !== 200) throw await this.client.answerError(answer);
      return membersOf(this.name, await this.client.readJson(answer));
    }));
    const byId = new Map(shared.map((id, i) => [id, lists[i]]));
    return images.map((image) => (image ? byId.get(image.id) ?? [] : []));
  }

  async addMember(principal: Principal, artifactId: string, project: string): Promise<MemberRecord> {
    const id = parseId(artifactId);
    if (project.length < 1 || project.length > 255) fail('FIELD_INVALID', 'member project must be 1 to 255 characters');
    try {
      const member = memberOf(this.name, await this.client.json(this.request(principal, 'POST', `${imagePath(id)}/members`, { json: { member: project } }), [200]));
      await this.membersChanged(principal, id, { member: member.member, status: member.status });
      return member;
    } catch (err) {
      // Glance says "Not allowed to create members" both for policy and for images that are not shared.
      if (err instanceof VitrineError && err.code === 'FORBIDDEN') {
        const image = await this.getImage(principal, id);
        if (image && image.visibility !== 'shared') fail('NOT_SHARED', `only images with shared visibility have members (this one is ${image.visibility})`, { backend: this.name });
      }
      throw err;
    }
  }

  async updateMember(principal: Principal, artifactId: string, project: string, status: MemberStatus): Promise<MemberRecord> {
    if (!MEMBER_STATUSES.includes(status)) fail('FIELD_INVALID', `member status must be one of ${MEMBER_STATUSES.join(', ')}`);
    const id = parseId(artifactId);
    const request = this.request(principal, 'PUT', `${imagePath(id)}/members/${encodeURIComponent(project)}`, { json: { status } });
    const member = memberOf(this.name, await this.client.json(request, [200]));
    await this.membersChanged(principal, id, { member: member.member, status: member.status });
    return member;
  }

  async removeMember(principal: Principal, artifactId: string, project: string): Promise<void> {
    const id = parseId(artifactId);
    await this.client.empty(this.request(principal, 'DELETE', `${imagePath(id)}/members/${encodeURIComponent(project)}`), [204]);
    await this.membersChanged(principal, id, { member: project, status: 'removed' });
  }

  /**
   * Members are not part of the image Glance shows: their change is one `updated` event with
   * the image read afresh (Glance's image.member.* notification of the same change adds none).
   */
  private async membersChanged(principal: Principal, id: string, change: MemberChange): Promise<void> {
    if (!this.events) return;
    const image = await this.getImage(principal, id).catch((err: unknown) => {
      this.options.log?.(`reading image ${id} for its members' event failed`, err);
      return null;
    });
    if (image) await this.events.report(image, { kind: 'members', change });
  }

  // ---- image data ----------------------------------------------------------------------

  /** One batched read: the data of an image is described by the image itself. */
  async blobsOf(principal: Principal, ids: readonly string[]): Promise<BlobView[][]> {
    const images = await this.getMany(principal, ids);
    return images.map((image) => {
      const blob = image && imageBlob(image, this.downloadUrl(image.id));
      return blob ? [blob] : [];
    });
  }

  async checkUploadable(principal: Principal, target: BlobTarget): Promise<BlobTarget> {
    return (await this.uploadable(principal, target)).target;
  }

  private async uploadable(principal: Principal, requested: BlobTarget): Promise<{ image: ArtifactView; target: BlobTarget }> {
    const target = this.imageTarget(requested);
    const image = await this.loadImage(principal, target.artifactId);
    requireWrite(principal, image, 'upload data to this image');
    if (image.status === 'saving') fail('BLOB_BUSY', `an upload of image ${image.id} is running`, { backend: this.name });
    nextStatus('image', 'upload_start', image.status);
    const missing = ['disk_format', 'container_format'].filter((f) => image.fields[f] === null || image.fields[f] === undefined);
    if (missing.length > 0) fail('ACTIVATION_INCOMPLETE', `set ${missing.join(' and ')} before uploading image data`, { fields: missing });
    return { image, target: { ...target, artifactId: image.id } };
  }

  /**
   * Streams the body to `PUT /v2/images/{id}/file` with constant memory (the meter caps it
   * and reports progress; a size or digest the client announced is verified before the last
   * chunk leaves), then reads the image back. Never destroys `body`.
   */
  async uploadBlob(principal: Principal, requested: BlobTarget, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<UploadResult> {
    const declared = checkAnnounced(meta);
    const { image } = await this.uploadable(principal, requested);
    return this.putData(principal, image, 'file', body, meta, declared, signal, async () => {
      const after = await this.loadImage(principal, image.id);
      const blob = imageBlob(after, this.downloadUrl(after.id)) ?? fail('UPSTREAM_REJECTED', `backend ${this.name}: Glance accepted the data but the image shows none (status ${after.status})`, { backend: this.name });
      await this.events?.report(after, { kind: 'changed', from: image.status });
      return { artifact: after, blob };
    });
  }

  /**
   * One data transfer to Glance (`file`: upload, `stage`: glance-direct staging), streamed
   * through the upload meter with progress events; `then` reads the outcome once Glance
   * took the data. A failure of our side after bytes went out waits for Glance's rollback.
   */
  private async putData<T>(principal: Principal, image: ArtifactView, kind: 'file' | 'stage', body: Readable, meta: UploadMeta, declared: number | undefined, signal: AbortSignal | undefined, then: () => Promise<T>): Promise<T> {
    const field = requireField(this.imageType, IMAGE_BLOB);
    const limit = field.maxBlobSize ?? Number.MAX_SAFE_INTEGER;
    if (declared !== undefined && declared > limit) fail('BLOB_TOO_LARGE', `${declared} bytes is more than an image accepts (${limit} bytes)`, { limit });
    const progress = new ProgressReporter(this.options.bus, image, IMAGE_BLOB, declared ?? null);
    const outgoing = outgoingUpload(body, meta, declared, declared ?? limit, {
      progressIntervalMs: this.options.progressIntervalMs,
      onProgress: (bytes, elapsedMs) => progress.report(bytes, elapsedMs),
      signal,
    });
    try {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (declared !== undefined) headers['x-openstack-image-size'] = String(declared);
      // Chunked, even when the size is known: the wire must be able to stop short without ending.
      const put = this.client.empty(this.request(principal, 'PUT', `${imagePath(image.id)}/${kind}`, { headers, body: outgoing.stream, upload: true }), [204]);
      const outcome = await Promise.race([put.then(() => 'done' as const, (err: unknown) => ({ err })), outgoing.failed.then((cause) => ({ cause }))]);
      if (outcome !== 'done') {
        const cause = outgoing.cause();
        if (cause) {
          if (outgoing.sent()) await this.rollBack(principal, image.id, kind === 'file' ? 'saving' : 'uploading', () => outgoing.abort());
          outgoing.abort();
          await put.catch(() => undefined);
          // Our side's reason (client gone, over the cap, mismatch) explains the upstream failure it caused.
          throw cause;
        }
        throw 'err' in outcome ? outcome.err : outcome.cause;
      }
      const result = await then();
      progress.finish('succeeded', outgoing.bytes());
      return result;
    } catch (err) {
      outgoing.stop();
      outgoing.abort();
      progress.finish('failed', outgoing.bytes(), err instanceof VitrineError ? err.message : 'unexpected error');
      throw err;
    }
  }

  /**
   * Our side of an upload failed after bytes went out to Glance: wait until Glance is
   * working on it (the image is `busy`: saving, or uploading for staging), break it off, and
   * wait until Glance has put the image back, so the caller's error means "nothing
   * happened", as with the native backend. Best effort and bounded (a failing read ends the wait).
   */
  private async rollBack(principal: Principal, id: string, busy: Status, abort: () => void): Promise<void> {
    const started = performance.now();
    const deadline = started + this.options.timeouts.requestMs;
    const status = () => this.getImage(principal, id).then((image) => image?.status, () => undefined);
    try {
      const startBy = Math.min(deadline, started + ROLLBACK_START_MS);
      for (let s = await status(); s === 'queued' && performance.now() < startBy; s = await status()) await sleep(ROLLBACK_POLL_MS);
    } finally {
      abort();
    }
    for (let s = await status(); s === busy && performance.now() < deadline; s = await status()) await sleep(ROLLBACK_POLL_MS);
  }

  async openBlob(principal: Principal, requested: BlobTarget): Promise<BlobContent> {
    const target = this.imageTarget(requested);
    const image = await this.loadImage(principal, target.artifactId);
    if (image.status === 'deactivated' && !isAdmin(principal)) fail('FORBIDDEN', `image ${image.id} is deactivated; only admins may download its data`);
    const blob = imageBlob(image, this.downloadUrl(image.id));
    if (!blob || blob.status === 'saving' || blob.size === null) fail('BLOB_NOT_READY', `image ${image.id} has no data yet (status ${image.status})`);
    const size = blob.size;
    return { kind: 'stored', artifact: image, blob: { ...blob, size }, read: (span) => this.download(principal, image.id, size, span) };
  }

  /** `GET /v2/images/{id}/file`, streamed; a byte range is passed through as Range. */
  private download(principal: Principal, id: string, size: number, span?: ByteSpan): Promise<Readable> {
    const headers: Record<string, string> = span ? { range: `bytes=${span.start}-${span.end}` } : {};
    return this.client.exchange(this.request(principal, 'GET', `${imagePath(id)}/file`, { headers, accept: 'application/octet-stream' }), async (answer) => {
      if (answer.status === 204) {
        await answer.body.dump();
        fail('BLOB_NOT_READY', `image ${id} has no data`);
      }
      const whole = !span || (span.start === 0 && span.end === size - 1);
      if (answer.status === 206 || (answer.status === 200 && whole)) return answer.body;
      if (answer.status === 200) {
        answer.body.destroy();
        fail('UPSTREAM_REJECTED', `backend ${this.name}: Glance ignored the byte range`, { backend: this.name });
      }
      throw await this.client.answerError(answer);
    });
  }

  async deleteBlob(): Promise<ArtifactView> {
    return fail('BAD_INPUT', `backend ${this.name} (a Glance) cannot remove an image's data; delete the image instead`, { backend: this.name });
  }

  async setExternalBlob(): Promise<BlobView> {
    return fail('BAD_INPUT', 'images take their data by upload; external blobs are for artifact types');
  }

  async sweepBlobs(): Promise<BlobSweepReport> {
    // Glance cleans up after its own failed uploads; nothing of ours is left behind.
    return { incompleteWrites: 0, expiredUploads: 0, orphanedLocations: 0 };
  }

  private imageTarget(target: BlobTarget): BlobTarget {
    const field = requireField(this.imageType, target.field);
    if (field.name !== IMAGE_BLOB) fail('FIELD_INVALID', `field ${field.name} of images is not a blob`);
    if (target.key !== '') fail('BAD_INPUT', `field ${IMAGE_BLOB} is a plain blob: its path takes no key`);
    return { artifactId: parseId(target.artifactId), field: IMAGE_BLOB, key: '' };
  }

  private downloadUrl(id: string): string {
    return `${this.options.blobPathPrefix}/${id}/blobs/${IMAGE_BLOB}`;
  }

  // ---- stores, import, tasks -------------------------------------------------------------

  async stores(principal: Principal): Promise<StoreView[]> {
    return this.client.exchange(this.request(principal, 'GET', '/v2/info/stores'), async (answer) => {
      // 404: a Glance without multiple stores.
      if (answer.status === 404) {
        await answer.body.dump();
        return [];
      }
      if (answer.status !== 200) throw await this.client.answerError(answer);
      return storesOf(this.name, await this.client.readJson(answer));
    });
  }

  /**
   * Streams the body to `PUT /v2/images/{id}/stage` (queued → uploading), as uploads go to
   * `/file`: constant memory, upload progress events, Glance's rollback awaited on failure.
   */
  async stageImage(principal: Principal, imageId: string, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<ArtifactView> {
    const declared = checkAnnounced(meta);
    const image = await this.loadImage(principal, imageId);
    requireWrite(principal, image, 'stage data for this image');
    nextStatus('image', 'stage_start', image.status);
    return this.putData(principal, image, 'stage', body, meta, declared, signal, async () => {
      const after = await this.loadImage(principal, image.id);
      await this.events?.report(after, { kind: 'changed', from: image.status });
      this.inFlight?.track(principal, after);
      return after;
    });
  }

  /**
   * `POST /v2/images/{id}/import`, after Vitrine's own checks: the request's shape, and a
   * web-download URL through the same filter as the native store's fetcher (private and
   * loopback addresses refused unless `allowPrivateUrls`), so a refused URL never reaches
   * Glance. Returns the task Glance created (the one carrying the request id) and
   * watches the import in the background for importProgress events.
   */
  async importImage(principal: Principal, imageId: string, request: ImportRequest, requestId?: string): Promise<TaskView> {
    const id = parseId(imageId);
    const body = importBody(request);
    if (request.method === 'web-download') await this.checkForwardedUrl(request.uri!, 'web-download');
    // Glance adopts a caller's req-<uuid>, so its task names the request the client saw.
    const headers = requestId ? { 'x-openstack-request-id': requestId } : undefined;
    const call = this.request(principal, 'POST', `${imagePath(id)}/import`, { json: body, headers });
    const answered = await this.client.exchange(call, async (answer) => {
      if (answer.status !== 202) throw await this.client.answerError(answer);
      await answer.body.dump();
      return headerValue(answer.headers['x-openstack-request-id']);
    });
    const [tasks, image] = await Promise.all([this.tasksOf(principal, id), this.getImage(principal, id)]);
    const lock = image?.properties[IMPORT_LOCK];
    const task = tasks.find((t) => answered !== undefined && t.requestId === answered) ?? tasks.find((t) => t.id === lock) ?? tasks[0];
    if (!task) fail('UPSTREAM_REJECTED', `backend ${this.name}: Glance accepted the import of image ${id} but lists no task for it`, { backend: this.name });
    if (image && (task.status === 'pending' || task.status === 'processing')) {
      this.watchers.watch({ principal, image, task, method: request.method });
      // A copy-image leaves the image active: the polling follows it only once it shows importing.
      this.inFlight?.track(principal, image);
    }
    return task;
  }

  async tasksOf(principal: Principal, imageId: string): Promise<TaskView[]> {
    const tasks = tasksOf(this.name, await this.client.json(this.request(principal, 'GET', `${imagePath(parseId(imageId))}/tasks`), [200]));
    return tasks.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** Glance's tasks API is admin-only by default: anything else is NOT_FOUND, as the port asks. */
  async getTask(principal: Principal, taskId: string): Promise<TaskView> {
    if (!isUuid(taskId)) fail('NOT_FOUND', `no task ${JSON.stringify(taskId.slice(0, 64))}`);
    return taskOf(this.name, await this.client.json(this.request(principal, 'GET', `/v2/tasks/${taskId.toLowerCase()}`), [200], { 403: 'NOT_FOUND' }));
  }

  /**
   * Glance's GET /v2/tasks, one page of `limit` plus one to tell whether more follow. Glance
   * applies its own tasks_api_access (403 → FORBIDDEN); an unknown marker is its 400.
   */
  async listTasks(principal: Principal, request: TaskListRequest): Promise<TaskPage> {
    const limit = Math.max(0, Math.floor(request.limit));
    const query = new URLSearchParams({ limit: String(limit + 1), sort_key: GLANCE_TASK_COLUMN[request.sortKey ?? 'createdAt'], sort_dir: request.direction ?? 'desc' });
    for (const [key, value] of Object.entries(request.filter ?? {}) as [TaskSortKey, string | undefined][]) {
      if (value !== undefined) query.set(GLANCE_TASK_COLUMN[key], value);
    }
    if (request.afterId !== undefined) {
      if (!isUuid(request.afterId)) fail('CURSOR_INVALID', `task ${JSON.stringify(request.afterId.slice(0, 64))} was not found`);
      query.set('marker', request.afterId);
    }
    const body = await this.client.json(this.request(principal, 'GET', '/v2/tasks', { query }), [200], request.afterId !== undefined ? { 400: 'CURSOR_INVALID' } : undefined);
    const tasks = tasksOf(this.name, body);
    // Glance links `next` whenever its page is full, also when it capped the size at its api_limit_max.
    const next = typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>).next === 'string';
    return { tasks: tasks.slice(0, limit), hasNextPage: tasks.length > limit || next };
  }

  async deleteFromStore(principal: Principal, imageId: string, store: string): Promise<ArtifactView> {
    const id = parseId(imageId);
    await this.client.empty(this.request(principal, 'DELETE', `/v2/stores/${encodeURIComponent(store)}/${id}`), [204]);
    return this.loadImage(principal, id);
  }

  // ---- locations -----------------------------------------------------------------------

  /**
   * What Glance shows each caller of the images' locations and direct URL (it applies its
   * show_multiple_locations, show_image_direct_url and get_image_location policy), within
   * Vitrine's own switches. One batched read (getMany): Glance serves locations only with the image.
   */
  async locationsOf(principal: Principal, ids: readonly string[]): Promise<ImageLocationsView[]> {
    const { show, showDirectUrl } = this.options.locations ?? { show: false, showDirectUrl: false };
    if ((!show && !showDirectUrl) || ids.length === 0) return ids.map(() => NO_LOCATIONS);
    const images = await this.getMany(principal, ids);
    return images.map((image) => {
      if (!image) return NO_LOCATIONS;
      const shown = locationsShown(image);
      return { locations: show ? shown.locations : null, directUrl: showDirectUrl ? shown.directUrl : null };
    });
  }

  /** `add /locations/-` (or `/locations/N`), after Vitrine's URL check; Glance checks the location (it asks the store for its size) and activates a queued image. */
  async addImageLocation(principal: Principal, imageId: string, request: AddLocationRequest): Promise<ArtifactView> {
    this.requireLocations('add');
    const id = parseId(imageId);
    const position = request.position;
    if (position !== undefined && (!Number.isSafeInteger(position) || position < 0)) fail('LOCATION_INVALID', 'Invalid position for adding a location.');
    await this.checkLocationUrl(request.url);
    return this.patchLocations(principal, id, [{ op: 'add', path: `/locations/${position ?? '-'}`, value: locationValue(request) }]);
  }

  /** `replace /locations`; URLs the image does not have yet pass Vitrine's URL check first (Glance accepts new ones only on a queued image). */
  async replaceImageLocations(principal: Principal, imageId: string, locations: readonly AddLocationRequest[]): Promise<ArtifactView> {
    this.requireLocations('update');
    if (locations.length === 0) fail('FORBIDDEN', 'Cannot set locations to empty list.');
    const current = await this.loadImage(principal, imageId);
    const known = new Set((locationsShown(current).locations ?? []).map((l) => l.url));
    for (const location of locations) if (!known.has(location.url)) await this.checkLocationUrl(location.url);
    return this.patchLocations(principal, current.id, [{ op: 'replace', path: '/locations', value: locations.map(locationValue) }]);
  }

  /** `remove /locations/N` (`-`: the last one); Glance refuses to remove the only one (403) and deletes a stored copy's data. */
  async removeImageLocation(principal: Principal, imageId: string, index: number): Promise<ArtifactView> {
    this.requireLocations('remove');
    const id = parseId(imageId);
    if (index !== -1 && (!Number.isSafeInteger(index) || index < 0)) fail('LOCATION_INVALID', 'Invalid position for removing a location.');
    return this.patchLocations(principal, id, [{ op: 'remove', path: `/locations/${index === -1 ? '-' : index}` }]);
  }

  private requireLocations(what: 'add' | 'update' | 'remove'): void {
    // Glance's own words when show_multiple_locations is off.
    if (!this.options.locations?.show) fail('FORBIDDEN', `It's not allowed to ${what} locations if locations are invisible.`, { backend: this.name });
  }

  /**
   * http(s) URLs through the web-download pre-check (syntax; private and loopback addresses
   * unless allowPrivateUrls), so a refused URL never reaches Glance. Other schemes name
   * Glance's own stores (rbd, swift, cinder, ...): Glance alone knows which it reads, and it
   * refuses file:// and unknown schemes itself.
   */
  private async checkLocationUrl(url: string): Promise<void> {
    const scheme = /^\s*([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    if (scheme === undefined || scheme === 'http' || scheme === 'https') await this.checkForwardedUrl(url, 'a location');
  }

  /**
   * The pre-check of a URL that Glance, not Vitrine, will fetch. Glance gets the URL as the
   * client wrote it, so it must name the same host to every parser: a backslash is a path
   * separator to WHATWG URL (what the filter judged) and to urllib3, but part of the
   * authority to Python's urlsplit, which Glance's own filter and its web-download fetcher
   * (urllib) use (`http://a\@b/` is host b there), so such URLs are refused outright.
   */
  private async checkForwardedUrl(url: string, what: string): Promise<void> {
    if (url.includes('\\')) fail('URL_FORBIDDEN', `URI for ${what} does not pass filtering: the URL contains a backslash`);
    await checkImportUrl(url, this.urlFilter);
  }

  private async patchLocations(principal: Principal, id: string, ops: unknown[]): Promise<ArtifactView> {
    const updated = await this.patch(principal, id, ops, LOCATION_CODES);
    // A first location activates a queued image; a removed one may change its stores.
    await this.events?.report(updated, { kind: 'changed' });
    return updated;
  }

  // ---- usage and quotas ----------------------------------------------------------------

  async usage(): Promise<UsageView> {
    return fail('BAD_INPUT', `backend ${this.name} (a Glance) keeps its usage and quotas in Glance (Keystone unified limits); Vitrine does not report them`, { backend: this.name });
  }

  async setQuotas(): Promise<UsageView> {
    return fail('BAD_INPUT', `backend ${this.name} (a Glance): set image quotas in Keystone unified limits, not through Vitrine`, { backend: this.name });
  }

  // ---- helpers -------------------------------------------------------------------------

  private request(principal: Principal, method: Method, path: string, extra: {
    query?: URLSearchParams;
    json?: unknown;
    contentType?: string;
    headers?: Record<string, string>;
    body?: Readable;
    upload?: boolean;
    signal?: AbortSignal;
    accept?: string;
  } = {}): GlanceRequest {
    const headers: Record<string, string> = { accept: extra.accept ?? 'application/json', ...identityHeaders(this.options.identity, principal, this.name), ...extra.headers };
    let body: string | Readable | undefined = extra.body;
    if (extra.json !== undefined) {
      body = JSON.stringify(extra.json);
      headers['content-type'] = extra.contentType ?? 'application/json';
    }
    return { method, path, query: extra.query, headers, body, upload: extra.upload, signal: extra.signal };
  }
}

/** A location as Glance's image schema takes it (validation_data only when given). */
function locationValue(request: AddLocationRequest): Record<string, unknown> {
  return { url: request.url, metadata: request.metadata, ...(request.validationData && { validation_data: request.validationData }) };
}

/**
 * Who reads images for notifications (identity headers only): an admin reader, so Glance
 * shows any image, hidden or not. What is read only completes events; subscribers still see
 * an event only when they may read its image.
 */
function notificationReader(backend: string): Principal {
  return { projectId: `vitrine-${backend}`, userId: `vitrine-${backend}-notifications`, roles: ['admin', 'reader'] };
}

function imagePath(id: string): string {
  return `/v2/images/${id}`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** `fn` over `items` with at most `limit` running at once; results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}

import type { ArtifactRecord, BlobRecord, LinkRecord, MemberRecord, MemberStatus, Status, TaskRecord, Visibility } from '../../domain/artifact';
import { MEMBER_STATUSES, nowIso } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, VitrineError } from '../../domain/errors';
import { accessCondition, and, compileFilter, resolveSort, selectBackends } from '../../domain/filters';
import { newId, parseId } from '../../domain/ids';
import { INITIAL_STATUS, nextStatus } from '../../domain/lifecycle';
import { cursorEncoder, planPage, reverseSort, type PageLimits } from '../../domain/paging';
import { canRead, isAdmin, POLICY_DEFAULTS, requireCreate, requireDelete, requireMemberStatusChange, requirePolicy, requireStatusAdmin, requireVisibilityChange, requireWrite, type Policies, type Principal } from '../../domain/policy';
import { keysetOf } from '../../domain/ordering';
import type { Condition, Keyset, SortKey } from '../../domain/query';
import { applyChange, assertEditable, initialFields, LIMITS, mergeProperties, missingOnActivate, normalizeTags, validateName, validateVisibility } from '../../domain/rules';
import { canonicalVersion } from '../../domain/semver';
import { isBlobField, type ArtifactTypeDef } from '../../domain/types';
import type { EventBus } from '../../events/port';
import type { MetadataStore, NewEvent, StoredEvent } from '../../storage/metadata/port';
import type { AddLocationRequest, ArtifactBackend, ArtifactPage, ArtifactView, BlobContent, BlobSweepReport, BlobTarget, BlobView, CreateRequest, ExternalBlobRequest, ImageLocationsView, ImportRequest, ListRequest, Lookup, StatusAction, StoreView, TaskListRequest, TaskPage, TaskView, UpdateRequest, UploadMeta, UploadResult, UsageView } from '../port';
import type { Readable } from 'node:stream';
import { BlobService, type NativeBlobOptions } from './blobs';
import { effectiveQuotas, quotaLimit, validateQuotas } from './quotas';
import { BlobSweeper } from './sweeper';
import type { GlanceSource } from './glance-download';
import { ImageImports, listAllTasks, readTask, type ImportSettings, type WebFetcher } from './imports';
import { ImageLocations, type LocationSettings } from './locations';

export interface NativeBackendOptions {
  name: string;
  types: TypeRegistry;
  store: MetadataStore;
  bus: EventBus;
  paging: PageLimits;
  /** Configured quota defaults by name (max_artifact_number[:type], max_uploaded_data[:type]). */
  quotaDefaults: Readonly<Record<string, number>>;
  /** Where the data plane serves blobs, e.g. /v1/artifacts. */
  blobPathPrefix: string;
  /** Called with the blobs of a deleted artifact, so their bytes can be removed. */
  onBlobsReleased?: (blobs: BlobRecord[]) => void;
  /** The data plane: where bytes go, how they are hashed, and its limits. */
  blobs?: NativeBlobOptions;
  /** The overridable policy rules (config `policy`); Glance's defaults when omitted. */
  policies?: Policies;
  /** Image locations (needs `blobs`): Glance's show_multiple_locations and show_image_direct_url, and their policies. */
  locations?: LocationSettings;
  /** Image import (needs `blobs`): its limits and how web-download sources are fetched. */
  imports?: { settings: ImportSettings; fetcher: WebFetcher; glance?: GlanceSource };
  /** Where problems that must not fail a request go (an event bus that is down after commit). */
  log?: (message: string, err?: unknown) => void;
  /**
   * Finds artifacts this backend may not hold: link targets and `afterId` markers. In a
   * federation it is the federation's getMany, so links and markers may name artifacts of
   * other backends; this backend's own getMany otherwise.
   */
  lookup?: (principal: Principal, ids: readonly string[]) => Promise<Lookup[]>;
}


/** Retries of a read-modify-write that lost a race, when the caller did not pin a revision. */
const WRITE_ATTEMPTS = 5;

/**
 * The native backend: artifacts in Vitrine's own MetadataStore. Every write is
 * load → check policy and rules → write with a revision check → publish the event
 * the store committed with it.
 */
export class NativeBackend implements ArtifactBackend {
  readonly name: string;
  readonly types: TypeRegistry;
  private readonly store: MetadataStore;
  private readonly bus: EventBus;
  private readonly blobService: BlobService | undefined;
  private readonly sweeper: BlobSweeper | undefined;
  private readonly importService: ImageImports | undefined;
  private readonly locationService: ImageLocations | undefined;

  private readonly policies: Policies;

  constructor(private readonly options: NativeBackendOptions) {
    this.policies = options.policies ?? POLICY_DEFAULTS;
    this.name = options.name;
    this.types = options.types;
    this.store = options.store;
    this.bus = options.bus;
    if (options.blobs) {
      const blobs = options.blobs;
      this.blobService = new BlobService({
        ...blobs,
        types: this.types,
        store: this.store,
        bus: this.bus,
        host: {
          loadVisible: (principal, id) => this.loadVisible(principal, id),
          view: (record) => this.view(record),
          blobView: (blob) => ({ ...blob, downloadUrl: this.downloadUrl(blob) }),
          publish: (event) => this.publish(event),
          quotasOf: (projectId) => this.quotasOf(projectId),
        },
      });
      if (options.imports) {
        const blobService = this.blobService;
        this.importService = new ImageImports({
          types: this.types,
          store: this.store,
          bus: this.bus,
          stores: blobs.stores,
          hashPool: blobs.hashPool,
          fetcher: options.imports.fetcher,
          ...(options.imports.glance && { glance: options.imports.glance }),
          settings: options.imports.settings,
          policies: this.policies,
          log: blobs.log,
          host: {
            loadVisible: (principal, id) => this.loadVisible(principal, id),
            view: (record) => this.view(record),
            publish: (event) => this.publish(event),
            pendingLocations: blobService.pendingLocations,
            releaseCopies: (copies) => blobService.releaseCopies(copies),
          },
        });
      }
      if (options.locations) {
        const blobService = this.blobService;
        this.locationService = new ImageLocations({
          types: this.types,
          store: this.store,
          stores: blobs.stores,
          settings: options.locations,
          host: {
            loadVisible: (principal, id) => this.loadVisible(principal, id),
            view: (record) => this.view(record),
            publish: (event) => this.publish(event),
            releaseCopies: (copies) => blobService.releaseCopies(copies),
          },
        });
      }
      this.sweeper = new BlobSweeper({
        types: this.types,
        store: this.store,
        stores: blobs.stores,
        publish: (event) => this.publish(event),
        localUploads: this.blobService.localUploads,
        pendingLocations: this.blobService.pendingLocations,
        log: blobs.log,
      });
    }
  }

  // ---- reads ---------------------------------------------------------------------------

  async getMany(principal: Principal, ids: readonly string[]): Promise<(ArtifactView | null)[]> {
    const records = await this.store.getArtifacts(ids);
    const needMembers = records.filter((r): r is ArtifactRecord => !!r && !isAdmin(principal) && r.owner !== principal.projectId && r.visibility === 'shared');
    const members = new Map<string, MemberRecord[]>();
    if (needMembers.length > 0) {
      const rows = await this.store.getMembers(needMembers.map((r) => r.id));
      needMembers.forEach((r, i) => members.set(r.id, rows[i]));
    }
    return records.map((r) => (r && canRead(principal, r, members.get(r.id)) ? this.view(r) : null));
  }

  async listMark(): Promise<string | undefined> {
    const mark = await this.store.writeMark?.();
    return mark === undefined ? undefined : `${this.name}:${mark}`;
  }

  async list(principal: Principal, request: ListRequest): Promise<ArtifactPage> {
    const type = request.typeName !== undefined ? this.types.get(request.typeName) : undefined;
    const typeCondition: Condition = type ? { op: 'eq', target: { kind: 'column', name: 'typeName' }, value: type.name } : { op: 'true' };
    // A `backend` filter that leaves this backend out matches nothing (an empty `in`).
    const excluded: Condition = selectBackends(request.filter, [this.name]).length === 0 ? { op: 'in', target: { kind: 'column', name: 'id' }, values: [] } : { op: 'true' };
    let where = and(typeCondition, excluded, compileFilter(type, request.filter), accessCondition(principal, request.filter));
    if (request.filter?.latest) where = { op: 'latest', within: where };
    const sort = resolveSort(type, request.sort);
    const plan = planPage(sort, request, this.options.paging);
    if (request.afterId !== undefined) plan.position = await this.positionAfter(principal, request, sort);
    const rows = await this.store.listArtifacts({
      where,
      sort: plan.backward ? reverseSort(sort) : sort,
      after: plan.position,
      limit: plan.size + 1,
    });
    const more = rows.length > plan.size;
    const page = rows.slice(0, plan.size);
    if (plan.backward) page.reverse();
    const hadPosition = plan.position !== undefined;
    const encodeCursor = cursorEncoder(sort);
    return {
      items: page.map((r) => this.view(r)),
      cursors: page.map((r) => encodeCursor(keysetOf(sort, r))),
      hasNextPage: plan.backward ? hadPosition : more,
      hasPreviousPage: plan.backward ? more : hadPosition,
      totalCount: () => this.store.countArtifacts(where),
    };
  }

  /** The keyset position of `afterId` (Glance's marker): any visible artifact, even one the filter excludes. */
  private async positionAfter(principal: Principal, request: ListRequest, sort: readonly SortKey[]): Promise<Keyset> {
    if (request.after != null || request.before != null || request.last != null) fail('CURSOR_INVALID', 'afterId pages forward only: pass it without after, before or last');
    const [marker] = await this.lookup(principal, [parseId(request.afterId!, 'afterId')]);
    if (marker instanceof VitrineError) throw marker;
    if (!marker) fail('CURSOR_INVALID', `no artifact ${request.afterId} to continue after`);
    return keysetOf(sort, marker);
  }

  // ---- writes --------------------------------------------------------------------------

  async create(principal: Principal, request: CreateRequest): Promise<ArtifactView> {
    if (request.backend !== undefined && request.backend !== this.name) fail('BACKEND_UNKNOWN', `no backend ${JSON.stringify(request.backend.slice(0, 64))} (backends: ${this.name})`);
    const type = this.types.get(request.typeName);
    const owner = request.owner ?? principal.projectId;
    requireCreate(principal, owner);
    const visibility = request.visibility === undefined ? (type.lifecycle === 'image' ? 'shared' : 'private') : validateVisibility(request.visibility);
    const status = INITIAL_STATUS[type.lifecycle];
    if (visibility === 'public') requireVisibilityChange(principal, type.lifecycle, { owner, visibility: 'private', status }, 'public', this.policies);
    const now = nowIso();
    const record: ArtifactRecord = {
      id: request.id !== undefined ? parseId(request.id) : newId(),
      typeName: type.name,
      name: validateName(type, request.name),
      version: canonicalVersion(request.version ?? '0.0.0'),
      status,
      visibility,
      owner,
      tags: normalizeTags(request.tags ?? []),
      properties: mergeProperties(type, {}, request.properties ?? {}),
      fields: initialFields(type, request.fields),
      createdAt: now,
      updatedAt: now,
      activatedAt: null,
      revision: 1,
    };
    const quotas = await this.quotasOf(owner);
    const event = await this.store.insertArtifact(record, eventFor('created', record, now), {
      unique: type.uniqueVersions,
      limit: { maxTotal: quotaLimit(quotas, 'max_artifact_number'), maxOfType: quotaLimit(quotas, `max_artifact_number:${type.name}`) },
    });
    await this.publish(event);
    return this.view(record);
  }

  update(principal: Principal, id: string, change: UpdateRequest, ifRevision?: number): Promise<ArtifactView> {
    return this.rewrite(principal, id, ifRevision, (current, type) => {
      if (change.owner !== undefined && !isAdmin(principal)) fail('FORBIDDEN', 'only an admin may change the owner');
      return applyChange(type, current, change);
    });
  }

  changeStatus(principal: Principal, id: string, action: StatusAction, ifRevision?: number): Promise<ArtifactView> {
    return this.rewrite(principal, id, ifRevision, async (current, type) => {
      if (action === 'activate') requireWrite(principal, current, 'activate this artifact');
      else requireStatusAdmin(principal, type.lifecycle, current, action);
      const target = nextStatusOrSame(type, action, current.status);
      if (target === current.status) return current;
      const blobs = (await this.store.getBlobs([current.id]))[0];
      if (blobs.some((b) => b.status === 'saving')) fail('TRANSITION_FORBIDDEN', 'a blob of this artifact is still uploading');
      if (action === 'activate') assertActivatable(type, current, blobs);
      const now = nowIso();
      return { ...current, status: target, activatedAt: target === 'active' ? now : current.activatedAt, updatedAt: now };
    });
  }

  setVisibility(principal: Principal, id: string, visibility: Visibility, ifRevision?: number): Promise<ArtifactView> {
    const to = validateVisibility(visibility);
    return this.rewrite(principal, id, ifRevision, (current, type) => {
      if (current.visibility === to) return current;
      requireVisibilityChange(principal, type.lifecycle, current, to, this.policies);
      assertEditable(type, current.status, 'visibility', { mutable: true });
      return { ...current, visibility: to };
    });
  }

  async delete(principal: Principal, id: string, ifRevision?: number): Promise<{ id: string; typeName: string; status: Status }> {
    const current = await this.loadVisible(principal, id);
    const type = this.types.get(current.typeName);
    requireDelete(principal, type.lifecycle, { ...current, protected: current.fields.protected === true }, this.policies);
    checkRevision(current, ifRevision);
    const now = nowIso();
    const { event, blobs } = await this.store.deleteArtifact(current.id, current.revision, {
      ...eventFor('deleted', current, now),
      from: current.status,
      to: 'deleted',
      revision: current.revision + 1,
    });
    await this.publish(event);
    if (blobs.length > 0) {
      this.options.onBlobsReleased?.(blobs);
      await this.blobService?.release(blobs);
    }
    return { id: current.id, typeName: current.typeName, status: 'deleted' };
  }

  // ---- links ---------------------------------------------------------------------------

  async addLink(principal: Principal, sourceId: string, name: string, targetId: string, ifRevision?: number): Promise<ArtifactView> {
    const source = await this.loadVisible(principal, sourceId);
    requireWrite(principal, source, 'link this artifact');
    checkRevision(source, ifRevision);
    const type = this.types.get(source.typeName);
    const def = this.linkRule(type, source, name);
    const target = parseId(targetId, 'targetId');
    if (target === source.id) fail('LINK_INVALID', 'an artifact cannot link to itself');
    const [visibleTarget] = await this.lookup(principal, [target]);
    if (visibleTarget instanceof VitrineError) throw visibleTarget;
    if (!visibleTarget) fail('LINK_INVALID', `link target ${target} does not exist or is not visible`);
    const now = nowIso();
    const link: LinkRecord = { sourceId: source.id, name, targetId: target, createdAt: now };
    const next = bumped(source, now);
    // A target of another backend (in a federation) is not in this store: the lookup checked it.
    const foreignTarget = visibleTarget.backend !== this.name;
    const event = await this.store.insertLink(link, !def.many, eventFor('updated', next, now), { foreignTarget });
    await this.publish(event);
    return this.view(next);
  }

  async removeLink(principal: Principal, sourceId: string, name: string, targetId?: string, ifRevision?: number): Promise<ArtifactView> {
    const source = await this.loadVisible(principal, sourceId);
    requireWrite(principal, source, 'unlink this artifact');
    checkRevision(source, ifRevision);
    this.linkRule(this.types.get(source.typeName), source, name);
    const target = targetId === undefined ? undefined : parseId(targetId, 'targetId');
    const now = nowIso();
    const next = bumped(source, now);
    const existing = (await this.store.getLinks([source.id]))[0].filter((l) => l.name === name && (target === undefined || l.targetId === target));
    if (existing.length === 0) fail('NOT_FOUND', `no link ${JSON.stringify(name)}${target ? ` to ${target}` : ''}`);
    const { event } = await this.store.deleteLinks(source.id, name, target, eventFor('updated', next, now));
    await this.publish(event);
    return this.view(next);
  }

  /** Declared link names follow their declaration; others are free-form, many-valued and mutable. */
  private linkRule(type: ArtifactTypeDef, source: ArtifactRecord, name: string): { many: boolean } {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(name)) fail('LINK_INVALID', `link name ${JSON.stringify(name.slice(0, 70))} must match [a-z][a-z0-9_]* (at most 64 characters)`);
    const def = type.links.find((l) => l.name === name);
    assertEditable(type, source.status, `link ${name}`, { mutable: def?.mutable ?? true });
    return { many: def?.many ?? true };
  }

  async linksOf(principal: Principal, ids: readonly string[]): Promise<LinkRecord[][]> {
    void principal; // callers resolve links of artifacts they already could read; targets are checked on resolution
    return this.store.getLinks(ids);
  }

  // ---- members -------------------------------------------------------------------------

  async membersOf(principal: Principal, ids: readonly string[]): Promise<MemberRecord[][]> {
    const [records, members] = await Promise.all([this.store.getArtifacts(ids), this.store.getMembers(ids)]);
    return members.map((rows, i) => {
      const owner = records[i]?.owner;
      if (isAdmin(principal) || owner === principal.projectId) return rows;
      return rows.filter((m) => m.member === principal.projectId);
    });
  }

  async addMember(principal: Principal, artifactId: string, project: string): Promise<MemberRecord> {
    const artifact = await this.loadVisible(principal, artifactId);
    requireWrite(principal, artifact, 'share this artifact');
    requirePolicy(this.policies, 'manageMembers', principal, artifact, 'share this artifact');
    if (artifact.visibility !== 'shared') fail('NOT_SHARED', `only artifacts with shared visibility have members (this one is ${artifact.visibility})`);
    if (project.length < 1 || project.length > 255) fail('FIELD_INVALID', 'member project must be 1 to 255 characters');
    const existing = (await this.store.getMembers([artifact.id]))[0];
    if (existing.some((m) => m.member === project)) fail('MEMBER_EXISTS', `project ${project} is already a member`);
    if (existing.length >= LIMITS.membersPerArtifact) fail('QUOTA_EXCEEDED', `at most ${LIMITS.membersPerArtifact} members per artifact`);
    const now = nowIso();
    const member: MemberRecord = { artifactId: artifact.id, member: project, status: 'pending', createdAt: now, updatedAt: now };
    await this.publish(await this.store.insertMember(member, eventFor('updated', bumped(artifact, now), now)));
    return member;
  }

  async updateMember(principal: Principal, artifactId: string, project: string, status: MemberStatus): Promise<MemberRecord> {
    if (!MEMBER_STATUSES.includes(status)) fail('FIELD_INVALID', `member status must be one of ${MEMBER_STATUSES.join(', ')}`);
    const artifact = await this.loadVisible(principal, artifactId);
    requireMemberStatusChange(principal, project);
    const current = (await this.store.getMembers([artifact.id]))[0].find((m) => m.member === project);
    if (!current) fail('MEMBER_NOT_FOUND', `project ${project} is not a member`);
    if (current.status === status) return current;
    const now = nowIso();
    const member: MemberRecord = { ...current, status, updatedAt: now };
    await this.publish(await this.store.updateMember(member, eventFor('updated', bumped(artifact, now), now)));
    return member;
  }

  async removeMember(principal: Principal, artifactId: string, project: string): Promise<void> {
    const artifact = await this.loadVisible(principal, artifactId);
    requireWrite(principal, artifact, 'change the members of this artifact');
    requirePolicy(this.policies, 'manageMembers', principal, artifact, 'change the members of this artifact');
    const current = (await this.store.getMembers([artifact.id]))[0].find((m) => m.member === project);
    if (!current) fail('MEMBER_NOT_FOUND', `project ${project} is not a member`);
    const now = nowIso();
    await this.publish(await this.store.deleteMember(artifact.id, project, eventFor('updated', bumped(artifact, now), now)));
  }

  // ---- blobs, usage, quotas ------------------------------------------------------------

  async blobsOf(principal: Principal, ids: readonly string[]): Promise<BlobView[][]> {
    void principal; // resolved only for artifacts the caller could read
    const rows = await this.store.getBlobs(ids);
    return rows.map((blobs) => blobs.map((b) => ({ ...b, downloadUrl: this.downloadUrl(b) })));
  }

  private downloadUrl(b: BlobRecord): string | null {
    // Image locations are shown only to whom getImageLocation allows: the data plane streams them.
    if (b.external && !b.locations?.length) return b.url;
    const key = b.key ? `/${b.key.split('/').map(encodeURIComponent).join('/')}` : '';
    return `${this.options.blobPathPrefix}/${b.artifactId}/blobs/${b.field}${key}`;
  }

  uploadBlob(principal: Principal, target: BlobTarget, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<UploadResult> {
    return this.dataPlane().upload(principal, target, body, meta, signal);
  }

  async openBlob(principal: Principal, target: BlobTarget, options?: { redirect?: boolean }): Promise<BlobContent> {
    const content = await this.dataPlane().open(principal, target, options?.redirect ?? false);
    // An image whose data is only at external locations streams from them through Vitrine
    // (Glance's http store), behind the URL filter; the data plane may still redirect.
    const locations = this.locationService;
    if (content.kind === 'external' && content.blob.external && locations && this.types.find(content.artifact.typeName)?.lifecycle === 'image') {
      const urls = locations.externalUrls(content.blob);
      return { ...content, open: () => locations.openExternal(urls) };
    }
    return content;
  }

  deleteBlob(principal: Principal, target: BlobTarget): Promise<ArtifactView> {
    return this.dataPlane().remove(principal, target);
  }

  setExternalBlob(principal: Principal, target: BlobTarget, request: ExternalBlobRequest): Promise<BlobView> {
    return this.dataPlane().setExternal(principal, target, request);
  }

  async checkUploadable(principal: Principal, target: BlobTarget): Promise<BlobTarget> {
    return (await this.dataPlane().checkUploadable(principal, target)).target;
  }

  sweepBlobs(options: { exclusive: boolean }): Promise<BlobSweepReport> {
    if (!this.sweeper) return Promise.resolve({ incompleteWrites: 0, expiredUploads: 0, orphanedLocations: 0 });
    return this.sweeper.sweep(options);
  }

  private dataPlane(): BlobService {
    return this.blobService ?? fail('UNAVAILABLE', 'this backend has no blob store configured');
  }

  // ---- stores and image import -------------------------------------------------------

  async stores(): Promise<StoreView[]> {
    return this.options.blobs?.stores.views() ?? [];
  }

  async stageImage(principal: Principal, imageId: string, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<ArtifactView> {
    return (await this.dataPlane().upload(principal, { artifactId: imageId, field: 'image', key: '' }, body, meta, signal, 'stage')).artifact;
  }

  async importImage(principal: Principal, imageId: string, request: ImportRequest, requestId?: string): Promise<TaskView> {
    return taskView(await this.imports().start(principal, imageId, request, requestId));
  }

  async tasksOf(principal: Principal, imageId: string): Promise<TaskView[]> {
    return (await this.imports().tasksOf(principal, imageId)).map(taskView);
  }

  async getTask(principal: Principal, taskId: string): Promise<TaskView> {
    return taskView(await readTask(this.store, principal, taskId));
  }

  async listTasks(principal: Principal, request: TaskListRequest): Promise<TaskPage> {
    const page = await listAllTasks(this.store, principal, request);
    return { tasks: page.tasks.map(taskView), hasNextPage: page.hasNextPage };
  }

  async deleteFromStore(principal: Principal, imageId: string, store: string): Promise<ArtifactView> {
    return this.imports().deleteFromStore(principal, imageId, store);
  }

  /** Starts running import tasks (also those a dead process left: all of them when `exclusive`). */
  startImports(options: { exclusive: boolean }): void {
    this.importService?.startRunner(options);
  }

  /** Stops the import runner; running imports resume after a restart. */
  async close(): Promise<void> {
    await this.importService?.close();
  }

  /** Resolves once no import runs in this process (tests). */
  async importsIdle(): Promise<void> {
    await this.importService?.idle();
  }

  private imports(): ImageImports {
    return this.importService ?? fail('BAD_INPUT', 'image import is not enabled on this backend');
  }

  // ---- image locations -----------------------------------------------------------------

  async locationsOf(principal: Principal, ids: readonly string[]): Promise<ImageLocationsView[]> {
    if (!this.locationService) return ids.map(() => ({ locations: null, directUrl: null }));
    return this.locationService.locationsOf(principal, ids);
  }

  addImageLocation(principal: Principal, imageId: string, request: AddLocationRequest): Promise<ArtifactView> {
    return this.locations().add(principal, imageId, request);
  }

  replaceImageLocations(principal: Principal, imageId: string, locations: readonly AddLocationRequest[]): Promise<ArtifactView> {
    return this.locations().replace(principal, imageId, locations);
  }

  removeImageLocation(principal: Principal, imageId: string, index: number): Promise<ArtifactView> {
    return this.locations().remove(principal, imageId, index);
  }

  private locations(): ImageLocations {
    return this.locationService ?? fail('FORBIDDEN', "It's not allowed to change locations if locations are invisible.");
  }

  async usage(principal: Principal, projectId?: string): Promise<UsageView> {
    const project = projectId ?? principal.projectId;
    if (project !== principal.projectId && !isAdmin(principal)) fail('FORBIDDEN', 'only an admin may read another project\'s usage');
    const [usage, quotas] = await Promise.all([this.store.usage(project), this.quotasOf(project)]);
    const types = this.types.all().map((t) => ({
      typeName: t.name,
      count: usage.counts[t.name] ?? 0,
      bytes: usage.bytes[t.name] ?? 0,
      maxCount: quotaLimit(quotas, `max_artifact_number:${t.name}`) ?? null,
      maxBytes: quotaLimit(quotas, `max_uploaded_data:${t.name}`) ?? null,
    }));
    return {
      projectId: project,
      totalCount: types.reduce((n, t) => n + t.count, 0),
      totalBytes: types.reduce((n, t) => n + t.bytes, 0),
      maxCount: quotaLimit(quotas, 'max_artifact_number') ?? null,
      maxBytes: quotaLimit(quotas, 'max_uploaded_data') ?? null,
      types,
      quotas: Object.entries(quotas).sort(([a], [b]) => a.localeCompare(b)).map(([name, value]) => ({ name, value })),
    };
  }

  async setQuotas(principal: Principal, projectId: string, quotas: { name: string; value: number }[]): Promise<UsageView> {
    if (!isAdmin(principal)) fail('FORBIDDEN', 'only an admin may set quotas');
    if (projectId.length < 1 || projectId.length > 255) fail('FIELD_INVALID', 'projectId must be 1 to 255 characters');
    await this.store.setQuotas(projectId, validateQuotas(this.types, quotas));
    return this.usage(principal, projectId);
  }

  private async quotasOf(projectId: string): Promise<Record<string, number>> {
    return effectiveQuotas(this.options.quotaDefaults, await this.store.getQuotas(projectId));
  }

  // ---- helpers -------------------------------------------------------------------------

  private lookup(principal: Principal, ids: readonly string[]): Promise<Lookup[]> {
    return this.options.lookup ? this.options.lookup(principal, ids) : this.getMany(principal, ids);
  }

  private view(record: ArtifactRecord): ArtifactView {
    return { ...record, backend: this.name };
  }

  /** The artifact if the principal may read it; NOT_FOUND otherwise (never reveal existence). */
  private async loadVisible(principal: Principal, id: string): Promise<ArtifactRecord> {
    const [found] = await this.getMany(principal, [parseId(id)]);
    return found ?? fail('NOT_FOUND', `artifact ${id} not found`);
  }

  /**
   * Read-modify-write with a revision check. A pinned revision (ifRevision) that is stale
   * fails at once; otherwise a lost race re-reads and re-applies the change.
   */
  private async rewrite(
    principal: Principal,
    id: string,
    ifRevision: number | undefined,
    change: (current: ArtifactRecord, type: ArtifactTypeDef) => ArtifactRecord | Promise<ArtifactRecord>,
  ): Promise<ArtifactView> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.loadVisible(principal, id);
      requireWrite(principal, current);
      checkRevision(current, ifRevision);
      const type = this.types.get(current.typeName);
      const changed = await change(current, type);
      if (changed === current) return this.view(current);
      const now = nowIso();
      const next: ArtifactRecord = { ...changed, revision: current.revision + 1, updatedAt: now };
      const statusChanged = next.status !== current.status;
      const event: NewEvent = statusChanged
        ? { ...eventFor('statusChanged', next, now), from: current.status, to: next.status }
        : eventFor('updated', next, now);
      try {
        const stored = await this.store.replaceArtifact(next, current.revision, event, { unique: type.uniqueVersions });
        await this.publish(stored);
        return this.view(next);
      } catch (err) {
        const raced = err instanceof VitrineError && err.code === 'REVISION_CONFLICT';
        if (!raced || ifRevision !== undefined || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * Publishes a committed change. The change and its event are already durable, so a bus
   * that is down must not turn a successful write into an error: subscribers recover
   * the event from the log when they resume with their cursor.
   */
  private async publish(event: StoredEvent): Promise<void> {
    try {
      await this.bus.publish({ topic: 'artifact', event });
    } catch (err) {
      this.options.log?.(`event ${event.seq} (${event.kind} of ${event.artifactId}) was committed but not published`, err);
    }
  }
}

function checkRevision(current: ArtifactRecord, ifRevision: number | undefined): void {
  if (ifRevision !== undefined && ifRevision !== current.revision) {
    fail('REVISION_CONFLICT', `artifact ${current.id} is at revision ${current.revision}, not ${ifRevision}`, { revision: current.revision });
  }
}

function nextStatusOrSame(type: ArtifactTypeDef, action: StatusAction, current: Status): Status {
  // Asking for the status the artifact already has is a no-op, as in Glance and Glare.
  const same: Record<StatusAction, Status> = { activate: 'active', deactivate: 'deactivated', reactivate: 'active' };
  if (current === same[action] && action !== 'activate') return current;
  return nextStatus(type.lifecycle, action, current);
}

function assertActivatable(type: ArtifactTypeDef, record: ArtifactRecord, blobs: BlobRecord[]): void {
  const missing = missingOnActivate(type, record);
  for (const field of type.fields) {
    if (!isBlobField(field) || !field.requiredOnActivate) continue;
    if (!blobs.some((b) => b.field === field.name && b.status === 'active')) missing.push(field.name);
  }
  if (missing.length > 0) fail('ACTIVATION_INCOMPLETE', `cannot activate: required fields are not set: ${missing.join(', ')}`, { fields: missing });
}

function bumped(record: ArtifactRecord, now: string): ArtifactRecord {
  return { ...record, revision: record.revision + 1, updatedAt: now };
}

function eventFor(kind: NewEvent['kind'], snapshot: ArtifactRecord, at: string): NewEvent {
  return {
    kind,
    artifactId: snapshot.id,
    typeName: snapshot.typeName,
    owner: snapshot.owner,
    visibility: snapshot.visibility,
    revision: snapshot.revision,
    at,
    snapshot,
  };
}
/** A task as backends show it: the lease bookkeeping stays inside. */
function taskView(task: TaskRecord): TaskView {
  const { leaseExpiresAt: _lease, attempts: _attempts, ...view } = task;
  return view;
}

import type { LinkRecord, MemberRecord, MemberStatus, Status, Visibility } from '../../domain/artifact';
import type { TypeRegistry } from '../../domain/builtin-types';
import { fail, isUnavailability, VitrineError } from '../../domain/errors';
import { resolveSort, selectBackends, type FilterSpec } from '../../domain/filters';
import { parseId } from '../../domain/ids';
import { pageShape, type PageLimits } from '../../domain/paging';
import type { Principal } from '../../domain/policy';
import type {
  AddLocationRequest,
  ArtifactBackend,
  ArtifactPage,
  ArtifactView,
  BlobContent,
  BlobSweepReport,
  BlobTarget,
  BlobView,
  CreateRequest,
  ExternalBlobRequest,
  ImageLocationsView,
  ImportRequest,
  ListRequest,
  Lookup,
  StatusAction,
  StoreView,
  TaskListRequest,
  TaskPage,
  TaskView,
  UpdateRequest,
  UploadMeta,
  UploadResult,
  UsageView,
} from '../port';
import type { Readable } from 'node:stream';
import { listMerged } from './listing';
import { Locations } from './locations';
import { listMergedTasks } from './tasks';
import { IMAGE_TYPE } from '../../domain/glance-image';

/**
 * Several backends served as one (docs/federation.md). Reads ask the backends in order;
 * writes go to the backend that holds the artifact; listings merge the backends' pages into
 * one order with cursors of their own. A backend that does not answer (UNAVAILABLE,
 * UPSTREAM_*) leaves the others working: listings carry a warning naming it, lookups an
 * error for the ids only it could hold.
 */
export interface FederationMember {
  backend: ArtifactBackend;
  /** The types it keeps; every type of the federation's registry when omitted (a Glance keeps only images). */
  typeNames?: readonly string[];
}

export interface FederatedBackendOptions {
  /** In order: lookups ask them in this order, and the first is the default for creates. */
  members: readonly FederationMember[];
  /** Every type any member keeps; a type kept by several members has one definition. */
  types: TypeRegistry;
  /** Page sizes as clients see them; members must accept one more (the merge reads one item ahead). */
  paging: PageLimits;
  /** The member that keeps quotas and usage and sweeps blobs (the native backend); the first when omitted. */
  home?: string;
}

export class FederatedBackend implements ArtifactBackend {
  /**
   * The home member's name, shown on snapshots of deleted artifacts whose event names no
   * backend: a Glance backend names itself on its events, so those are the home's (native) own.
   */
  readonly name: string;
  readonly types: TypeRegistry;
  private readonly members: readonly FederationMember[];
  private readonly rankByName = new Map<string, number>();
  private readonly home: ArtifactBackend;
  private readonly locations = new Locations();

  constructor(private readonly options: FederatedBackendOptions) {
    const { members, types } = options;
    if (members.length === 0) fail('CONFIG_INVALID', 'a federation needs at least one backend');
    members.forEach((m, rank) => {
      if (this.rankByName.has(m.backend.name)) fail('CONFIG_INVALID', `two backends are named ${JSON.stringify(m.backend.name)}`);
      this.rankByName.set(m.backend.name, rank);
      for (const t of m.typeNames ?? []) types.get(t);
    });
    this.members = members;
    this.types = types;
    this.home = options.home === undefined ? members[0].backend : this.member(options.home);
    this.name = this.home.name;
  }

  // ---- reads ---------------------------------------------------------------------------

  async getMany(principal: Principal, ids: readonly string[]): Promise<Lookup[]> {
    return (await this.resolve(principal, ids)).lookups;
  }

  /**
   * Asks each member in turn for the ids still missing. An id no healthy member holds while
   * another member failed gets that failure, not null: the artifact may well exist.
   */
  private async resolve(principal: Principal, ids: readonly string[]): Promise<{ lookups: Lookup[]; ranks: (number | undefined)[] }> {
    const lookups: Lookup[] = ids.map(() => null);
    const ranks: (number | undefined)[] = ids.map(() => undefined);
    const failures: { name: string; error: VitrineError }[] = [];
    let missing = ids.map((_, i) => i);
    for (const [rank, { backend }] of this.members.entries()) {
      if (missing.length === 0) break;
      let found: Lookup[];
      try {
        found = await backend.getMany(principal, missing.map((i) => ids[i]));
      } catch (err) {
        if (!isUnavailability(err)) throw err;
        failures.push({ name: backend.name, error: err });
        continue;
      }
      const still: number[] = [];
      missing.forEach((i, k) => {
        const entry = found[k];
        if (entry instanceof VitrineError) {
          if (!failures.some((f) => f.name === backend.name)) failures.push({ name: backend.name, error: entry });
          still.push(i);
        } else if (entry) {
          lookups[i] = entry;
          ranks[i] = rank;
          this.locations.remember(entry.id, rank);
        } else {
          still.push(i);
        }
      });
      missing = still;
    }
    if (failures.length > 0) for (const i of missing) lookups[i] = unresolved(ids[i], failures);
    return { lookups, ranks };
  }

  /** Defined only when every member backend can tell; a failing member means no mark. */
  async listMark(): Promise<string | undefined> {
    const marks = await Promise.all(this.members.map((m) => m.backend.listMark().catch(() => undefined)));
    return marks.every((m) => m !== undefined) ? marks.join(' ') : undefined;
  }

  async list(principal: Principal, request: ListRequest): Promise<ArtifactPage> {
    const type = request.typeName !== undefined ? this.types.get(request.typeName) : undefined;
    const sort = resolveSort(type, request.sort);
    const shape = pageShape(request, this.options.paging);
    const wanted = selectBackends(request.filter, this.members.map((m) => m.backend.name));
    const chosen = this.members
      .map((member, rank) => ({ ...member, rank }))
      .filter((m) => wanted.includes(m.backend.name) && (type === undefined || this.keeps(m, type.name)));
    const forMembers: ListRequest = { ...request, filter: withoutBackend(request.filter) };

    if (chosen.length === 0) {
      if (request.afterId !== undefined) parseId(request.afterId, 'afterId');
      return { items: [], cursors: [], hasNextPage: false, hasPreviousPage: false, totalCount: async () => 0 };
    }
    // One backend needs no merge: its own page and cursors, as if it were alone.
    const page = chosen.length === 1
      ? await chosen[0].backend.list(principal, forMembers)
      : await listMerged({
        principal,
        members: chosen.map(({ backend, rank }) => ({ backend, rank })),
        request: forMembers,
        sort,
        shape,
        limits: this.options.paging,
        lookup: (p, ids) => this.getMany(p, ids),
      });
    for (const item of page.items) this.remember(item);
    return page;
  }

  async linksOf(principal: Principal, ids: readonly string[]): Promise<LinkRecord[][]> {
    return this.related(principal, ids, (b, some) => b.linksOf(principal, some), () => []);
  }

  async membersOf(principal: Principal, ids: readonly string[]): Promise<MemberRecord[][]> {
    return this.related(principal, ids, (b, some) => b.membersOf(principal, some), () => []);
  }

  async blobsOf(principal: Principal, ids: readonly string[]): Promise<BlobView[][]> {
    return this.related(principal, ids, (b, some) => b.blobsOf(principal, some), () => []);
  }

  /**
   * Related rows of artifacts the caller has just read: each id goes to the member it was
   * found in (remembered from lookups and listings; looked up again when forgotten).
   */
  private async related<R>(principal: Principal, ids: readonly string[], read: (backend: ArtifactBackend, ids: string[]) => Promise<R[]>, empty: () => R): Promise<R[]> {
    const ranks = ids.map((id) => this.locations.rankOf(id));
    const unknown = ids.flatMap((id, i) => (ranks[i] === undefined ? [i] : []));
    if (unknown.length > 0) {
      const found = await this.resolve(principal, unknown.map((i) => ids[i]));
      unknown.forEach((i, k) => (ranks[i] = found.ranks[k]));
    }
    const out: R[] = ids.map(empty);
    await Promise.all(this.members.map(async ({ backend }, rank) => {
      const mine = ids.flatMap((_, i) => (ranks[i] === rank ? [i] : []));
      if (mine.length === 0) return;
      const rows = await read(backend, mine.map((i) => ids[i]));
      mine.forEach((i, k) => (out[i] = rows[k]));
    }));
    return out;
  }

  // ---- writes --------------------------------------------------------------------------

  async create(principal: Principal, request: CreateRequest): Promise<ArtifactView> {
    const type = this.types.get(request.typeName);
    let target: FederationMember | undefined;
    if (request.backend !== undefined) {
      target = this.members[this.rankOf(request.backend)];
      if (!this.keeps(target, type.name)) fail('TYPE_UNKNOWN', `backend ${target.backend.name} does not keep artifacts of type ${type.name}`);
    } else {
      target = this.members.find((m) => this.keeps(m, type.name)) ?? fail('TYPE_UNKNOWN', `no backend keeps artifacts of type ${type.name}`);
    }
    return this.remember(await target.backend.create(principal, { ...request, backend: target.backend.name }));
  }

  async update(principal: Principal, id: string, change: UpdateRequest, ifRevision?: number): Promise<ArtifactView> {
    return (await this.owner(principal, id)).update(principal, id, change, ifRevision);
  }

  async changeStatus(principal: Principal, id: string, action: StatusAction, ifRevision?: number): Promise<ArtifactView> {
    return (await this.owner(principal, id)).changeStatus(principal, id, action, ifRevision);
  }

  async setVisibility(principal: Principal, id: string, visibility: Visibility, ifRevision?: number): Promise<ArtifactView> {
    return (await this.owner(principal, id)).setVisibility(principal, id, visibility, ifRevision);
  }

  async delete(principal: Principal, id: string, ifRevision?: number): Promise<{ id: string; typeName: string; status: Status }> {
    const deleted = await (await this.owner(principal, id)).delete(principal, id, ifRevision);
    this.locations.forget(deleted.id);
    return deleted;
  }

  async addLink(principal: Principal, sourceId: string, name: string, targetId: string, ifRevision?: number): Promise<ArtifactView> {
    return (await this.owner(principal, sourceId)).addLink(principal, sourceId, name, targetId, ifRevision);
  }

  async removeLink(principal: Principal, sourceId: string, name: string, targetId?: string, ifRevision?: number): Promise<ArtifactView> {
    return (await this.owner(principal, sourceId)).removeLink(principal, sourceId, name, targetId, ifRevision);
  }

  async addMember(principal: Principal, artifactId: string, project: string): Promise<MemberRecord> {
    return (await this.owner(principal, artifactId)).addMember(principal, artifactId, project);
  }

  async updateMember(principal: Principal, artifactId: string, project: string, status: MemberStatus): Promise<MemberRecord> {
    return (await this.owner(principal, artifactId)).updateMember(principal, artifactId, project, status);
  }

  async removeMember(principal: Principal, artifactId: string, project: string): Promise<void> {
    return (await this.owner(principal, artifactId)).removeMember(principal, artifactId, project);
  }

  // ---- blobs and images ----------------------------------------------------------------

  async uploadBlob(principal: Principal, target: BlobTarget, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<UploadResult> {
    return (await this.owner(principal, target.artifactId)).uploadBlob(principal, target, body, meta, signal);
  }

  async openBlob(principal: Principal, target: BlobTarget, options?: { redirect?: boolean }): Promise<BlobContent> {
    return (await this.owner(principal, target.artifactId)).openBlob(principal, target, options);
  }

  async deleteBlob(principal: Principal, target: BlobTarget): Promise<ArtifactView> {
    return (await this.owner(principal, target.artifactId)).deleteBlob(principal, target);
  }

  async setExternalBlob(principal: Principal, target: BlobTarget, request: ExternalBlobRequest): Promise<BlobView> {
    return (await this.owner(principal, target.artifactId)).setExternalBlob(principal, target, request);
  }

  async checkUploadable(principal: Principal, target: BlobTarget): Promise<BlobTarget> {
    return (await this.owner(principal, target.artifactId)).checkUploadable(principal, target);
  }

  /** The home member's sweep: only it keeps blobs in Vitrine's stores. */
  sweepBlobs(options: { exclusive: boolean }): Promise<BlobSweepReport> {
    return this.home.sweepBlobs(options);
  }

  /** The stores of the default member, where new images go. */
  stores(principal: Principal): Promise<StoreView[]> {
    return this.members[0].backend.stores(principal);
  }

  async stageImage(principal: Principal, imageId: string, body: Readable, meta: UploadMeta, signal?: AbortSignal): Promise<ArtifactView> {
    return (await this.owner(principal, imageId)).stageImage(principal, imageId, body, meta, signal);
  }

  async importImage(principal: Principal, imageId: string, request: ImportRequest, requestId?: string): Promise<TaskView> {
    return (await this.owner(principal, imageId)).importImage(principal, imageId, request, requestId);
  }

  async tasksOf(principal: Principal, imageId: string): Promise<TaskView[]> {
    return (await this.owner(principal, imageId)).tasksOf(principal, imageId);
  }

  /** Tasks have ids of their own, not artifact ids: each member is asked in turn. */
  async getTask(principal: Principal, taskId: string): Promise<TaskView> {
    let failure: VitrineError | undefined;
    for (const { backend } of this.members) {
      try {
        return await backend.getTask(principal, taskId);
      } catch (err) {
        if (isUnavailability(err)) failure ??= err;
        else if (!(err instanceof VitrineError && err.code === 'NOT_FOUND')) throw err;
      }
    }
    throw failure ?? new VitrineError('NOT_FOUND', 'no such task');
  }

  /** Merged from the members that keep images (tasks are image imports). */
  async listTasks(principal: Principal, request: TaskListRequest): Promise<TaskPage> {
    const backends = this.members.filter((m) => m.typeNames === undefined || m.typeNames.includes(IMAGE_TYPE)).map((m) => m.backend);
    return listMergedTasks(backends.length > 0 ? backends : [this.home], principal, request, this.options.paging.maxPageSize);
  }

  async deleteFromStore(principal: Principal, imageId: string, store: string): Promise<ArtifactView> {
    return (await this.owner(principal, imageId)).deleteFromStore(principal, imageId, store);
  }

  async locationsOf(principal: Principal, ids: readonly string[]): Promise<ImageLocationsView[]> {
    return this.related(principal, ids, (b, some) => b.locationsOf(principal, some), () => ({ locations: null, directUrl: null }));
  }

  async addImageLocation(principal: Principal, imageId: string, request: AddLocationRequest): Promise<ArtifactView> {
    return (await this.owner(principal, imageId)).addImageLocation(principal, imageId, request);
  }

  async replaceImageLocations(principal: Principal, imageId: string, locations: readonly AddLocationRequest[]): Promise<ArtifactView> {
    return (await this.owner(principal, imageId)).replaceImageLocations(principal, imageId, locations);
  }

  async removeImageLocation(principal: Principal, imageId: string, index: number): Promise<ArtifactView> {
    return (await this.owner(principal, imageId)).removeImageLocation(principal, imageId, index);
  }

  usage(principal: Principal, projectId?: string): Promise<UsageView> {
    return this.home.usage(principal, projectId);
  }

  setQuotas(principal: Principal, projectId: string, quotas: { name: string; value: number }[]): Promise<UsageView> {
    return this.home.setQuotas(principal, projectId, quotas);
  }

  // ---- helpers -------------------------------------------------------------------------

  /** The member holding the artifact, found by one lookup; NOT_FOUND, or the failure of a member that may hold it. */
  private async owner(principal: Principal, id: string): Promise<ArtifactBackend> {
    const { lookups, ranks } = await this.resolve(principal, [parseId(id)]);
    const [found] = lookups;
    if (found instanceof VitrineError) throw found;
    if (!found) fail('NOT_FOUND', `artifact ${id} not found`);
    return this.members[ranks[0]!].backend;
  }

  private keeps(member: FederationMember, typeName: string): boolean {
    return member.typeNames === undefined ? member.backend.types.find(typeName) !== undefined : member.typeNames.includes(typeName);
  }

  private rankOf(name: string): number {
    return this.rankByName.get(name) ?? fail('BACKEND_UNKNOWN', `no backend ${JSON.stringify(name.slice(0, 64))} (backends: ${[...this.rankByName.keys()].join(', ')})`);
  }

  private member(name: string): ArtifactBackend {
    return this.members[this.rankOf(name)].backend;
  }

  private remember(view: ArtifactView): ArtifactView {
    const rank = this.rankByName.get(view.backend);
    if (rank !== undefined) this.locations.remember(view.id, rank);
    return view;
  }
}

function withoutBackend(filter: FilterSpec | undefined): FilterSpec | undefined {
  if (filter?.backend === undefined) return filter;
  const { backend: _chosen, ...rest } = filter;
  return rest;
}

/** The error of an id that no healthy member holds while `failures` did not answer. */
function unresolved(id: string, failures: { name: string; error: VitrineError }[]): VitrineError {
  const [first] = failures;
  const names = failures.map((f) => f.name).join(', ');
  return new VitrineError(first.error.code, `artifact ${id} could not be looked up: backend ${names} did not answer (${first.error.message})`, { backend: first.name });
}

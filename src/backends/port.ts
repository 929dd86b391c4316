import type { ArtifactRecord, BlobRecord, LinkRecord, MemberRecord, MemberStatus, Status, Visibility } from '../domain/artifact';
import type { FilterSpec } from '../domain/filters';
import type { LifecycleAction } from '../domain/lifecycle';
import type { PageRequest } from '../domain/paging';
import type { Principal } from '../domain/policy';
import type { TypeRegistry } from '../domain/builtin-types';

/**
 * ArtifactBackend: what every edge (GraphQL, data plane, Glance facade) talks to. The
 * native backend keeps artifacts in Vitrine's stores; a Glance backend proxies a real
 * Glance. Every method applies visibility and role policy for the given principal.
 */
export interface ArtifactView extends ArtifactRecord {
  backend: string;
}

export interface BlobView extends BlobRecord {
  /** Data-plane path, or the external URL. */
  downloadUrl: string | null;
}

export interface ArtifactPage {
  items: ArtifactView[];
  cursors: string[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  /** Counted only when asked for: a COUNT over the whole filter. */
  totalCount(): Promise<number>;
}

export interface ListRequest extends PageRequest {
  /** One type, or every type when omitted. */
  typeName?: string;
  filter?: FilterSpec;
  sort?: { key: string; direction: 'asc' | 'desc' }[];
}

export interface CreateRequest {
  typeName: string;
  id?: string;
  name: string;
  version?: string;
  visibility?: Visibility;
  owner?: string;
  tags?: string[];
  properties?: Record<string, unknown>;
  fields?: Record<string, unknown>;
}

/** One change set; edges map their own shapes (inputs, JSON patches) onto it. */
export interface UpdateRequest {
  name?: string;
  version?: string;
  owner?: string;
  fields?: Record<string, unknown>;
  unsetFields?: string[];
  setTags?: string[];
  addTags?: string[];
  removeTags?: string[];
  setProperties?: Record<string, unknown>;
  unsetProperties?: string[];
}

export interface TypeUsageView {
  typeName: string;
  count: number;
  bytes: number;
  maxCount: number | null;
  maxBytes: number | null;
}

export interface UsageView {
  projectId: string;
  totalCount: number;
  totalBytes: number;
  maxCount: number | null;
  maxBytes: number | null;
  types: TypeUsageView[];
  quotas: { name: string; value: number }[];
}

export type StatusAction = Extract<LifecycleAction, 'activate' | 'deactivate' | 'reactivate'>;

export interface ArtifactBackend {
  readonly name: string;
  readonly types: TypeRegistry;

  /** Same order and length as ids; null where missing or not visible to the principal. */
  getMany(principal: Principal, ids: readonly string[]): Promise<(ArtifactView | null)[]>;
  list(principal: Principal, request: ListRequest): Promise<ArtifactPage>;
  create(principal: Principal, request: CreateRequest): Promise<ArtifactView>;
  update(principal: Principal, id: string, change: UpdateRequest, ifRevision?: number): Promise<ArtifactView>;
  changeStatus(principal: Principal, id: string, action: StatusAction, ifRevision?: number): Promise<ArtifactView>;
  setVisibility(principal: Principal, id: string, visibility: Visibility, ifRevision?: number): Promise<ArtifactView>;
  delete(principal: Principal, id: string, ifRevision?: number): Promise<{ id: string; typeName: string; status: Status }>;

  addLink(principal: Principal, sourceId: string, name: string, targetId: string, ifRevision?: number): Promise<ArtifactView>;
  removeLink(principal: Principal, sourceId: string, name: string, targetId?: string, ifRevision?: number): Promise<ArtifactView>;
  /** Links of visible sources, one list per id (targets are checked when resolved). */
  linksOf(principal: Principal, ids: readonly string[]): Promise<LinkRecord[][]>;

  /** Members the principal may see: all for the owner and admins, its own entry for a member. */
  membersOf(principal: Principal, ids: readonly string[]): Promise<MemberRecord[][]>;
  addMember(principal: Principal, artifactId: string, project: string): Promise<MemberRecord>;
  updateMember(principal: Principal, artifactId: string, project: string, status: MemberStatus): Promise<MemberRecord>;
  removeMember(principal: Principal, artifactId: string, project: string): Promise<void>;

  blobsOf(principal: Principal, ids: readonly string[]): Promise<BlobView[][]>;

  usage(principal: Principal, projectId?: string): Promise<UsageView>;
  setQuotas(principal: Principal, projectId: string, quotas: { name: string; value: number }[]): Promise<UsageView>;
}

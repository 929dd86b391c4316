import type { ArtifactRecord, MemberRecord, Visibility } from './artifact';
import { fail } from './errors';
import type { Lifecycle } from './types';

/**
 * Who may do what, following Glance's default policy (admin, member, reader; project
 * scoping) for images and Glare's for other artifacts where they differ. Pure functions:
 * the caller passes the membership rows it loaded.
 */
export const ROLES = ['admin', 'member', 'reader'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  projectId: string;
  userId: string;
  roles: readonly Role[];
  /**
   * The token the caller presented, for backends that forward it upstream (a Glance in
   * `token` identity mode). Set by the HTTP edge as a non-enumerable property, so logging
   * or serializing a principal never writes it out.
   */
  readonly token?: string;
}

export function isAdmin(p: Principal): boolean {
  return p.roles.includes('admin');
}

/** May write in its own project: admins and members; readers only read. */
export function canWriteOwnProject(p: Principal): boolean {
  return isAdmin(p) || p.roles.includes('member');
}

/** Read access by id: Glance lets members of a shared image see it whatever their status. */
export function canRead(p: Principal, a: Pick<ArtifactRecord, 'owner' | 'visibility'>, members: readonly MemberRecord[] = []): boolean {
  if (isAdmin(p) || a.owner === p.projectId) return true;
  if (a.visibility === 'public' || a.visibility === 'community') return true;
  return a.visibility === 'shared' && members.some((m) => m.member === p.projectId);
}

export function requireWrite(p: Principal, a: Pick<ArtifactRecord, 'owner'>, what = 'change this artifact'): void {
  if (isAdmin(p)) return;
  if (a.owner !== p.projectId) fail('FORBIDDEN', `only the owning project or an admin may ${what}`);
  if (!canWriteOwnProject(p)) fail('FORBIDDEN', `the reader role may not ${what}`);
}

export function requireCreate(p: Principal, owner: string): void {
  if (!canWriteOwnProject(p)) fail('FORBIDDEN', 'the reader role may not create artifacts');
  if (owner !== p.projectId && !isAdmin(p)) fail('FORBIDDEN', 'only an admin may create artifacts for another project');
}

export function requireVisibilityChange(p: Principal, lifecycle: Lifecycle, a: Pick<ArtifactRecord, 'owner' | 'visibility' | 'status'>, to: Visibility, policies: Policies): void {
  requireWrite(p, a, 'change visibility');
  if (to === 'public') requirePolicy(policies, 'publicizeImage', p, a, 'make an artifact public');
  if (a.visibility === 'public' && to !== 'public') requirePolicy(policies, 'publicizeImage', p, a, 'withdraw a public artifact');
  if (to === 'public' && lifecycle === 'artifact' && a.status !== 'active') fail('FORBIDDEN', 'only active artifacts can be published');
}

/** Deactivation is a project member's right for images (Glance) and an admin's for Glare types. */
export function requireStatusAdmin(p: Principal, lifecycle: Lifecycle, a: Pick<ArtifactRecord, 'owner'>, action: string): void {
  if (lifecycle === 'artifact' && !isAdmin(p)) fail('FORBIDDEN', `only an admin may ${action} artifacts`);
  requireWrite(p, a, action);
}

export function requireDelete(p: Pick<Principal, 'roles' | 'projectId'> & Principal, lifecycle: Lifecycle, a: Pick<ArtifactRecord, 'owner' | 'visibility' | 'status'> & { protected: boolean }, policies: Policies): void {
  requireWrite(p, a, 'delete this artifact');
  requirePolicy(policies, 'deleteImage', p, a, 'delete this artifact');
  if (a.protected) fail('PROTECTED', 'the artifact is protected and cannot be deleted');
  if (lifecycle === 'artifact' && !isAdmin(p) && (a.visibility === 'public' || a.status === 'deactivated')) {
    fail('FORBIDDEN', 'only an admin may delete public or deactivated artifacts');
  }
}

/** Only the member project itself (or an admin) answers an invitation; the owner may not. */
export function requireMemberStatusChange(p: Principal, member: string): void {
  if (isAdmin(p)) return;
  if (p.projectId !== member) fail('FORBIDDEN', 'only the member project may accept or reject a share');
  if (!canWriteOwnProject(p)) fail('FORBIDDEN', 'the reader role may not accept or reject a share');
}

/**
 * Rules an operator may override (Glance's policy.yaml, reduced to the choices that make
 * sense here): each names who may act on an artifact besides admins. `admin`: admins only;
 * `member`: admins and members of the owning project; `reader`: admins and anyone of the
 * owning project. More rules join by adding a name and its Glance default to POLICY_DEFAULTS.
 */
export const POLICY_RULES = ['admin', 'member', 'reader'] as const;
export type PolicyRule = (typeof POLICY_RULES)[number];

/**
 * Glance 25.1's defaults (enforce_new_defaults = False, which lets the owner's members
 * delete locations). The import rules are Vitrine's names for Glance's per-method checks:
 * copy-image is Glance's `copy_image` (admins, on any image they can see), the others its
 * `modify_image` on the image.
 */
export const POLICY_DEFAULTS = {
  getImageLocation: 'reader',
  setImageLocation: 'member',
  deleteImageLocation: 'member',
  /** Making an artifact public, or withdrawing a public one (Glance's publicize_image). */
  publicizeImage: 'admin',
  /** Deleting an artifact (Glance's delete_image; Glare types also keep their own rules). */
  deleteImage: 'member',
  /** Adding and removing members of a shared artifact (Glance's add_member, delete_member). */
  manageMembers: 'member',
  importGlanceDirect: 'member',
  importWebDownload: 'member',
  importGlanceDownload: 'member',
  copyImage: 'admin',
} as const satisfies Record<string, PolicyRule>;
export type PolicyName = keyof typeof POLICY_DEFAULTS;
export type Policies = Readonly<Record<PolicyName, PolicyRule>>;

/** The defaults with the configured overrides applied. */
export function policiesOf(overrides: Partial<Record<PolicyName, PolicyRule>> = {}): Policies {
  return Object.freeze({ ...POLICY_DEFAULTS, ...overrides });
}

/** Whether `rule` lets the principal act on an artifact of `owner`. */
export function allows(rule: PolicyRule, p: Principal, owner: string): boolean {
  if (isAdmin(p)) return true;
  if (rule === 'admin' || owner !== p.projectId) return false;
  return rule === 'reader' || canWriteOwnProject(p);
}

const POLICY_WORDS: Record<PolicyRule, string> = {
  admin: 'only an admin',
  member: 'only an admin or a member of the owning project',
  reader: 'only an admin or the owning project',
};

/** FORBIDDEN unless the named rule allows it; the message names who may. */
export function requirePolicy(policies: Policies, name: PolicyName, p: Principal, a: Pick<ArtifactRecord, 'owner'>, what: string): void {
  const rule = policies[name];
  if (!allows(rule, p, a.owner)) fail('FORBIDDEN', `${POLICY_WORDS[rule]} may ${what} (policy ${name})`);
}

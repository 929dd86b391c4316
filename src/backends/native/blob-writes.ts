import type { ArtifactRecord, Status } from '../../domain/artifact';
import { nowIso } from '../../domain/artifact';
import { nextStatus, type LifecycleAction } from '../../domain/lifecycle';
import type { ArtifactTypeDef } from '../../domain/types';
import type { ArtifactWrite, NewEvent } from '../../storage/metadata/port';

/**
 * The artifact writes that commit together with blob operations: each bumps the revision
 * (a CAS on the one read) and carries exactly one event, statusChanged when the status moves.
 */
export function artifactWrite(current: ArtifactRecord, changes: Partial<ArtifactRecord> = {}): ArtifactWrite {
  const at = nowIso();
  const next: ArtifactRecord = { ...current, ...changes, revision: current.revision + 1, updatedAt: at };
  const moved = next.status !== current.status;
  const event: NewEvent = {
    kind: moved ? 'statusChanged' : 'updated',
    artifactId: next.id,
    typeName: next.typeName,
    owner: next.owner,
    visibility: next.visibility,
    revision: next.revision,
    at,
    snapshot: next,
    ...(moved && { from: current.status, to: next.status }),
  };
  return { next, expectedRevision: current.revision, event };
}

/** A status change along the lifecycle table, with extra field changes. */
export function transitionWrite(type: ArtifactTypeDef, current: ArtifactRecord, action: LifecycleAction, changes: Partial<ArtifactRecord> = {}): ArtifactWrite {
  const status: Status = nextStatus(type.lifecycle, action, current.status);
  return artifactWrite(current, { ...changes, status });
}

/** An image whose upload or staging failed or died goes back to queued (Glance); other artifacts are untouched. */
export function restoreWrite(type: ArtifactTypeDef, current: ArtifactRecord | null): ArtifactWrite | undefined {
  if (!current || type.lifecycle !== 'image') return undefined;
  if (current.status === 'saving') return transitionWrite(type, current, 'upload_failed');
  if (current.status === 'uploading') return transitionWrite(type, current, 'stage_failed');
  return undefined;
}

import { fail } from './errors';
import type { Status } from './artifact';
import type { Lifecycle } from './types';

/**
 * The one transition table. Glance images and Glare artifacts have their own lifecycles;
 * every status change in Vitrine is one of these named actions, and each committed
 * transition emits exactly one event.
 */
export type LifecycleAction =
  | 'activate' | 'deactivate' | 'reactivate' | 'delete'
  | 'upload_start' | 'upload_done' | 'upload_failed'
  | 'stage_start' | 'stage_failed'
  | 'import_start' | 'import_done' | 'import_failed'
  | 'location_add';

interface Transition {
  lifecycle: Lifecycle;
  action: LifecycleAction;
  from: readonly Status[];
  to: Status;
}

export const TRANSITIONS: readonly Transition[] = Object.freeze([
  // Glance images (glance/domain Image.valid_state_targets)
  { lifecycle: 'image', action: 'upload_start', from: ['queued'], to: 'saving' },
  { lifecycle: 'image', action: 'upload_done', from: ['saving'], to: 'active' },
  { lifecycle: 'image', action: 'upload_failed', from: ['saving'], to: 'queued' },
  { lifecycle: 'image', action: 'stage_start', from: ['queued'], to: 'uploading' },
  { lifecycle: 'image', action: 'stage_failed', from: ['uploading'], to: 'queued' },
  { lifecycle: 'image', action: 'import_start', from: ['queued', 'uploading'], to: 'importing' },
  { lifecycle: 'image', action: 'import_done', from: ['importing'], to: 'active' },
  { lifecycle: 'image', action: 'import_failed', from: ['importing'], to: 'queued' },
  // The first location a client adds (show_multiple_locations): active without data or hashing.
  { lifecycle: 'image', action: 'location_add', from: ['queued'], to: 'active' },
  { lifecycle: 'image', action: 'deactivate', from: ['active'], to: 'deactivated' },
  { lifecycle: 'image', action: 'reactivate', from: ['deactivated'], to: 'active' },
  { lifecycle: 'image', action: 'delete', from: ['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated', 'killed', 'pending_delete'], to: 'deleted' },
  // Glare artifacts (glare/common/utils.py validate_status_transition)
  { lifecycle: 'artifact', action: 'activate', from: ['drafted'], to: 'active' },
  { lifecycle: 'artifact', action: 'deactivate', from: ['active'], to: 'deactivated' },
  { lifecycle: 'artifact', action: 'reactivate', from: ['deactivated'], to: 'active' },
  { lifecycle: 'artifact', action: 'delete', from: ['drafted', 'active', 'deactivated'], to: 'deleted' },
] satisfies Transition[]);

export const INITIAL_STATUS: Record<Lifecycle, Status> = { image: 'queued', artifact: 'drafted' };

/** Statuses in which an artifact's metadata may be edited at all. */
export const EDITABLE_STATUSES: Record<Lifecycle, readonly Status[]> = {
  image: ['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated'],
  artifact: ['drafted', 'active'],
};

/** Statuses in which only fields declared mutable may change. */
export const FROZEN_UNLESS_MUTABLE: Record<Lifecycle, readonly Status[]> = {
  image: [],
  artifact: ['active'],
};

export function findTransition(lifecycle: Lifecycle, action: LifecycleAction): Transition | undefined {
  return TRANSITIONS.find((t) => t.lifecycle === lifecycle && t.action === action);
}

/** The status an action leads to from `from`, or TRANSITION_FORBIDDEN naming both. */
export function nextStatus(lifecycle: Lifecycle, action: LifecycleAction, from: Status): Status {
  const t = findTransition(lifecycle, action);
  if (!t) fail('TRANSITION_FORBIDDEN', `${action} does not apply to ${lifecycle === 'image' ? 'images' : 'artifacts of this type'}`);
  if (!t.from.includes(from)) {
    fail('TRANSITION_FORBIDDEN', `cannot ${action.replace('_', ' ')} from status ${from} (allowed from: ${t.from.join(', ')})`, { from, action });
  }
  return t.to;
}

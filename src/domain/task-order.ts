import type { TaskRecord, TaskSortKey } from './artifact';

/** Glance's task order: the key, then created_at, then id (a key already among those is not repeated). */
export function taskSortKeys(key: TaskSortKey): TaskSortKey[] {
  return key === 'createdAt' || key === 'id' ? ['createdAt', 'id'] : [key, 'createdAt', 'id'];
}

/** A task's sortable values (a Glance backend's tasks may have other types). */
type Sortable = Omit<Pick<TaskRecord, TaskSortKey>, 'type'> & { type: string };

/**
 * Compares two tasks in list order (negative: `a` comes first), every key in `direction`,
 * a missing value as '' (lowest), strings by UTF-16 code unit as the stores compare them.
 */
export function compareTasks(a: Sortable, b: Sortable, key: TaskSortKey, direction: 'asc' | 'desc'): number {
  for (const k of taskSortKeys(key)) {
    const x = a[k] ?? '';
    const y = b[k] ?? '';
    if (x !== y) return (x < y ? -1 : 1) * (direction === 'asc' ? 1 : -1);
  }
  return 0;
}

import type { TaskRecord, TaskSortKey } from './artifact';
import { compareText } from './ordering';

/** Glance's task order: the key, then created_at, then id (a key already among those is not repeated). */
export function taskSortKeys(key: TaskSortKey): TaskSortKey[] {
  return key === 'createdAt' || key === 'id' ? ['createdAt', 'id'] : [key, 'createdAt', 'id'];
}

/** A task's sortable values (a Glance backend's tasks may have other types). */
type Sortable = Omit<Pick<TaskRecord, TaskSortKey>, 'type'> & { type: string };

/**
 * Compares two tasks in list order (negative: `a` comes first), every key in `direction`,
 * a missing value as '' (lowest), text in code point order as the stores compare it.
 */
export function compareTasks(a: Sortable, b: Sortable, key: TaskSortKey, direction: 'asc' | 'desc'): number {
  for (const k of taskSortKeys(key)) {
    const order = compareText(a[k] ?? '', b[k] ?? '');
    if (order !== 0) return direction === 'asc' ? order : -order;
  }
  return 0;
}

import type { TaskRecord, TaskSortKey } from '../../domain/artifact';
import { taskSortKeys } from '../../domain/task-order';
import type { TaskQuery } from './port';
import { SqlBuilder, type SqlDialect } from './sql';

/** The tasks table's columns behind the record's names; filters and sorts splice only these. */
const TASK_COLUMN_OF: Record<TaskSortKey, string> = {
  id: 'id',
  type: 'type',
  status: 'status',
  owner: 'owner',
  imageId: 'image_id',
  userId: 'user_id',
  requestId: 'request_id',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  expiresAt: 'expires_at',
};

const NULLABLE = new Set<TaskSortKey>(['userId', 'requestId', 'expiresAt']);

/**
 * The `queryTasks` statement for both engines. A missing value sorts as '' (lowest, below
 * every time and id), so the keyset comparison needs no NULL cases; PostgreSQL compares in
 * byte order, as SQLite does.
 */
export function compileTaskQuery(dialect: SqlDialect, query: TaskQuery, columns: string): { sql: string; params: unknown[] } {
  const b = new SqlBuilder(dialect);
  const collate = dialect.name === 'postgres' ? ' COLLATE "C"' : '';
  const term = (key: TaskSortKey) => (NULLABLE.has(key) ? `COALESCE(${TASK_COLUMN_OF[key]}, '')${collate}` : `${TASK_COLUMN_OF[key]}${collate}`);
  const conditions: string[] = [];
  for (const [key, value] of Object.entries(query.where) as [TaskSortKey, string | undefined][]) {
    if (value !== undefined) conditions.push(`${TASK_COLUMN_OF[key]} = ${b.bind(value)}`);
  }
  const keys = taskSortKeys(query.sortKey);
  if (query.after) {
    const after = query.after;
    const beyond = query.direction === 'asc' ? '>' : '<';
    // The leading bound on the first key lets the engine range-scan an index on it. Bound
    // before the alternatives: placeholders are positional.
    const bound = `${term(keys[0])} ${beyond}= ${b.bind(sortValue(after, keys[0]))}`;
    const alternatives = keys.map((key, i) => {
      const equal = keys.slice(0, i).map((k) => `${term(k)} = ${b.bind(sortValue(after, k))}`);
      return `(${[...equal, `${term(key)} ${beyond} ${b.bind(sortValue(after, key))}`].join(' AND ')})`;
    });
    conditions.push(`${bound} AND (${alternatives.join(' OR ')})`);
  }
  const orderBy = keys.map((key) => `${term(key)} ${query.direction.toUpperCase()}`).join(', ');
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const limit = b.bind(Math.max(0, Math.floor(query.limit)));
  return { sql: `SELECT ${columns} FROM tasks ${where} ORDER BY ${orderBy} LIMIT ${limit}`, params: b.params };
}

function sortValue(task: TaskRecord, key: TaskSortKey): string {
  return task[key] ?? '';
}

import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { TestApp } from './app';

/**
 * A second connection to a test app's SQLite file, for changing an artifact behind
 * Vitrine's back (no event, no write mark): an answer that still shows the old value was
 * reused, one that shows the new value was read afresh.
 */
export interface Backdoor {
  rename(id: string, name: string): void;
  close(): void;
}

export function openBackdoor(app: TestApp): Backdoor {
  const db = new Database(join(app.dataDir, 'vitrine.sqlite'));
  const rename = db.prepare('UPDATE artifacts SET name = ? WHERE id = ?');
  return {
    rename(id, name) {
      if (rename.run(name, id).changes !== 1) throw new Error(`no artifact ${id} to rename`);
    },
    close: () => db.close(),
  };
}

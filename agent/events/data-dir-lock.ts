/**
 * One agent per data directory. A second `greenlight run` on the same directory (a duplicated
 * systemd unit, a container started twice on one volume) would write its own events under ids
 * the first is about to use: one of them is lost and the stream no longer matches the history.
 *
 * The lock is SQLite's own file lock on `greenlight.lock`, held by a connection in exclusive
 * locking mode for as long as the agent runs. The operating system releases it when the process
 * ends, even by kill -9, so a crash leaves nothing stale to clean up; an agent that is still
 * stopping (a restart by its supervisor) is waited for a moment.
 */

import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './store.js';
import { makeDirectory, whyUnusable } from './make-directory.js';

export const LOCK_FILE = 'greenlight.lock';
/** How long a start waits for an agent still stopping to let the directory go. */
const WAIT_MS = 3_000;

export class DataDirLock {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Take the directory, or throw StoreError naming it when another agent holds it. */
  static acquire(dataDir: string): DataDirLock {
    const dir = resolve(dataDir);
    const path = join(dir, LOCK_FILE);
    let db: Database.Database | undefined;
    try {
      makeDirectory(dir);
      db = new Database(path, { timeout: WAIT_MS });
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write takes the exclusive lock; in this locking mode it is kept after the commit.
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since TEXT NOT NULL)');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
      db.exec('COMMIT');
      return new DataDirLock(db);
    } catch (error) {
      db?.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY')
        throw new StoreError(
          `another greenlight agent is using the data directory ${dir} (it holds ${LOCK_FILE}): stop it first, or give this one its own GREENLIGHT_DATA_DIR (dataDir)`,
          { cause: error },
        );
      const why = whyUnusable(error);
      throw new StoreError(`cannot lock the data directory ${dir}: ${why}. Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory.`, { cause: error });
    }
  }

  release(): void {
    this.#db.close();
  }
}

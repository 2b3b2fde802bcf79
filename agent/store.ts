/**
 * greenlight's durable state: an SQLite database (better-sqlite3, WAL) in the data directory.
 * It holds what a restart must not lose: the live environment, the flag sets and the incidents
 * that were firing, so a restarted agent neither forgets a switch nor repeats an action it
 * completed, and still sends the resolved notice. Writes are synchronous and small; each is one
 * transaction, committed before the caller goes on.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { GreenlightError } from '../config/errors.js';

export class StoreError extends GreenlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GL_ERR_STORE', message, options);
  }
}

export class Store {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], { value: string }>;
  readonly #set: Database.Statement<[string, string, number]>;
  readonly #delete: Database.Statement<[string]>;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.#db = db;
    db.exec(`CREATE TABLE IF NOT EXISTS state (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
    this.#get = db.prepare('SELECT value FROM state WHERE key = ?');
    this.#set = db.prepare('INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at');
    this.#delete = db.prepare('DELETE FROM state WHERE key = ?');
  }

  /** Open (or create) `<dataDir>/greenlight.db`. Throws StoreError saying what to fix. */
  static open(dataDir: string): Store {
    const dir = resolve(dataDir);
    const path = join(dir, 'greenlight.db');
    try {
      mkdirSync(dir, { recursive: true });
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      // FULL: a committed switch or incident survives a power cut, not just a crash.
      db.pragma('synchronous = FULL');
      return new Store(path, db);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EACCES' || code === 'EROFS' || code === 'SQLITE_CANTOPEN' ? 'it is not writable by this user' : (error as Error).message;
      throw new StoreError(`cannot open the state database ${path}: ${why}. Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory.`, { cause: error });
    }
  }

  get<T>(key: string): T | undefined {
    const row = this.#get.get(key);
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  set(key: string, value: unknown, now = Date.now()): void {
    this.#set.run(key, JSON.stringify(value), now);
  }

  delete(key: string): void {
    this.#delete.run(key);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

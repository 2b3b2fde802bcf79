/**
 * Create a data directory and its missing parents, one level at a time. Node's
 * `mkdirSync(dir, { recursive: true })` retries a level whose mkdir says ENOENT, and under /proc
 * or /sys every mkdir says so: a data directory given there made the agent spin at start for ever.
 * Here each missing level is made once, and the first that cannot be made throws its error
 * (ENOENT, EACCES, EROFS, ENOTDIR), which the caller turns into a message naming the directory.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeDirectory(dir: string): void {
  // A file where the directory should be: said as such, not as whatever SQLite makes of it next.
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  const missing: string[] = [];
  for (let path = resolve(dir); !existsSync(path); path = dirname(path)) {
    missing.push(path);
    if (dirname(path) === path) break;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (error) {
      // Made meanwhile by another process (two agents starting on one volume): that is what was asked.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Why a database in the data directory could not be opened, for a message that says what to do:
 * the three stores (journal, rollups, the directory lock) put it the same way.
 */
export function whyUnusable(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOTDIR') return 'it is a file, or under a file, not a directory';
  if (code === 'EACCES' || code === 'EROFS' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') return 'it is not writable by this user';
  return (error as Error).message;
}

/** Whether SQLite found a database file damaged (a torn write, a bad restore, another file in its place). */
export function isCorrupt(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/**
 * What to say of a database in the data directory that cannot be used, and what to do: a damaged
 * file is restored or moved aside (another directory would not help); anything else is about the
 * directory.
 */
export function unusableDatabase(what: string, path: string, error: unknown): string {
  if (isCorrupt(error))
    return `the ${what} ${path} is damaged (${(error as Error).message}): restore it from a backup, or move it aside (with any -wal and -shm files beside it) to start without what it held`;
  return `cannot open the ${what} ${path}: ${whyUnusable(error)}. Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory.`;
}

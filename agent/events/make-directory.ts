/**
 * Create a data directory and its missing parents, one level at a time. Node's
 * `mkdirSync(dir, { recursive: true })` retries a level whose mkdir says ENOENT, and under /proc
 * or /sys every mkdir says so: a data directory given there made the agent spin at start for ever.
 * Here each missing level is made once, and the first that cannot be made throws its error
 * (ENOENT, EACCES, EROFS, ENOTDIR), which the caller turns into a message naming the directory.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeDirectory(dir: string): void {
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

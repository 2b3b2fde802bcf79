/**
 * Reading the files a config names (the config itself, its rule files, CA bundles) only when they
 * are regular files. A named pipe in their place would block the read until something writes to
 * it: `validate` hung, and a reload held the switch lock for ever (every rollback waited behind
 * it) in a thread that even the agent's exit waits for. A character device (`/dev/zero`) would
 * be read without end.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/** Opening for reading never waits: a FIFO without a writer opens at once, and is then refused by its type. */
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** What a path that is not a regular file is, for the message; undefined for a regular file. */
function notRegular(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function refusal(path: string, kind: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`it is ${kind}, not a regular file`);
  error.path = path;
  error.code = 'ENOTREG';
  return error;
}

/** The bytes of the regular file at `path` (a symlink is followed); rejects anything else without reading it. */
export async function readRegularFile(path: string): Promise<Buffer> {
  const handle = await open(path, FLAGS);
  try {
    const kind = notRegular(await handle.stat());
    if (kind) throw refusal(path, kind);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** readRegularFile, synchronously: for checks that run inside a synchronous validation. */
export function readRegularFileSync(path: string): Buffer {
  const fd = openSync(path, FLAGS);
  try {
    const kind = notRegular(fstatSync(fd));
    if (kind) throw refusal(path, kind);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

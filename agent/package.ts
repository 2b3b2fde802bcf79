/** What greenlight knows of its own package: where it is installed and its version. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory of greenlight's package.json, found from this file whether it runs from the
 * sources (agent/) or the build (dist/agent/). The default config and the version live there.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'greenlight') return dir;
  }
  throw new Error(`bug: greenlight's package.json not found above ${fileURLToPath(import.meta.url)}`);
}

/** greenlight's version, from its package.json. */
export const VERSION: string = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

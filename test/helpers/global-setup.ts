import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One temporary directory for the whole run, removed when it ends. Test files, the agents and
 * servers they start, and the CLI all make their directories through `os.tmpdir()`, which reads
 * TMPDIR; without this a run left some 250 directories in /tmp, and a run killed half way more.
 * Vitest builds its workers' environment from this process's after the global setup.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'greenlight-tests-'));
  // PostgreSQL (as postgres) and nginx's workers (as nobody) must reach what the tests make here.
  chmodSync(dir, 0o755);
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

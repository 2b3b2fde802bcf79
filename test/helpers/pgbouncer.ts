/**
 * PgBouncer (Debian's pgbouncer) in session mode in front of a test PostgreSQL, as a managed
 * database often sits behind one: on 127.0.0.1 at a free port, trusting every user. It refuses to
 * run as root, so as root it runs as the postgres user. It is stopped by `close()`, and also when
 * the process exits any other way: no pooler outlives the test that started it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './agent-harness.js';
import { freePort } from './tools.js';

export interface TestPgBouncer {
  /** `url` (a database of the server behind it) with PgBouncer's port in place of the server's. */
  via(url: string): string;
  close(): void;
}

const running = new Set<() => void>();
process.once('exit', () => {
  for (const stop of running) stop();
});

/** The pgbouncer program: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
export function pgbouncerBin(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin']) if (dir && existsSync(join(dir, 'pgbouncer'))) return join(dir, 'pgbouncer');
  return undefined;
}

export async function startPgBouncer(serverPort: number): Promise<TestPgBouncer> {
  const bin = pgbouncerBin();
  if (!bin) throw new Error('pgbouncer is not installed (.ci/run installs Debian pgbouncer)');
  const dir = mkdtempSync(join(tmpdir(), 'greenlight-pgbouncer-'));
  // As root: the postgres user's ids, which the process itself takes (no runuser between: killing
  // that would leave pgbouncer running).
  const user = userInfo().uid === 0 ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) } : {};
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    `[databases]
* = host=127.0.0.1 port=${serverPort}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'users.txt')}
pool_mode = session
logfile = ${join(dir, 'log')}
`,
  );
  writeFileSync(join(dir, 'users.txt'), '"greenlight" ""\n');
  const child = spawn(bin, [ini], { stdio: 'ignore', ...user });
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  running.add(stop);
  const log = () => (existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '');
  await waitUntil(
    () => {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${log()}`);
      return accepts(port);
    },
    'pgbouncer to listen',
    10_000,
  );
  return {
    via: (url) => {
      const target = new URL(url);
      target.port = String(port);
      return target.toString();
    },
    close: () => {
      stop();
      running.delete(stop);
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

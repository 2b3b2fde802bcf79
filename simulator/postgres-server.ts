/**
 * A throwaway PostgreSQL server for tests and benches: `initdb` into a temporary folder and
 * `pg_ctl` as the unprivileged `postgres` user (initdb refuses root), listening on 127.0.0.1 on a
 * free port with its unix socket in the folder. It is stopped by `close()`, and also when the
 * process exits any other way (a timeout, a crash): no server outlives the process that started it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** The folder holding initdb and pg_ctl: /usr/local/bin, Debian's /usr/lib/postgresql/<n>/bin, or PATH. */
export function postgresBin(): string | undefined {
  const candidates = ['/usr/local/bin'];
  if (existsSync('/usr/lib/postgresql'))
    for (const version of readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  for (const dir of [...candidates, ...(process.env.PATH ?? '').split(':')])
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  return undefined;
}

export interface TestPostgres {
  port: number;
  /** A fresh, empty database on the server: `postgres://greenlight@127.0.0.1:<port>/<name>`. */
  database(name?: string): Promise<string>;
  /** Stop the server (fast shutdown: connections are cut) and start it again on the same port. */
  restart(): Promise<void>;
  stop(): void;
  start(): void;
  /** Stop the server for good and delete its folder. */
  close(): void;
}

const running = new Set<() => void>();
process.once('exit', () => {
  for (const stop of running) stop();
});

/** Start a server now; `stop()` ends it. */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  if (!bin)
    throw new Error('PostgreSQL is not installed: no initdb/pg_ctl in /usr/local/bin, /usr/lib/postgresql/*/bin or PATH (.ci/run installs Debian postgresql)');
  const root = mkdtempSync(join(tmpdir(), 'greenlight-pg-'));
  const data = join(root, 'data');
  const asRoot = userInfo().uid === 0;
  if (asRoot) chownSync(root, uid('postgres'), gid('postgres'));
  const run = (program: string, args: string[]) =>
    asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', join(bin, program), ...args], { stdio: 'pipe' })
      : execFileSync(join(bin, program), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'greenlight', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200`;
  let up = false;
  const start = () => {
    run('pg_ctl', ['-D', data, '-o', options, '-l', join(root, 'log'), '-w', '-t', '30', 'start']);
    up = true;
  };
  const stopNow = (mode: 'fast' | 'immediate') => {
    if (!up) return;
    up = false;
    const args = ['-D', data, '-m', mode, '-w', 'stop'];
    if (asRoot) spawnSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args], { stdio: 'ignore' });
    else spawnSync(join(bin, 'pg_ctl'), args, { stdio: 'ignore' });
  };
  const cleanup = () => {
    stopNow('immediate');
    rmSync(root, { recursive: true, force: true });
  };
  running.add(cleanup);
  start();
  let databases = 0;
  return {
    port,
    database: async (name = `test_${++databases}`) => {
      const admin = new pg.Client({ connectionString: `postgres://greenlight@127.0.0.1:${port}/postgres` });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://greenlight@127.0.0.1:${port}/${name}`;
    },
    restart: async () => {
      stopNow('fast');
      start();
    },
    stop: () => stopNow('fast'),
    start,
    close: () => {
      cleanup();
      running.delete(cleanup);
    },
  };
}

function uid(name: string): number {
  return Number(execFileSync('id', ['-u', name]).toString().trim());
}

function gid(name: string): number {
  return Number(execFileSync('id', ['-g', name]).toString().trim());
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

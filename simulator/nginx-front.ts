/**
 * A real nginx (Debian's) on 127.0.0.1 in front of two local environments, for the tests and
 * benchmarks of the nginx traffic adapter: its own prefix, config, upstream include file and
 * pid file in a temporary directory, nothing of the system's nginx touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NginxFront {
  /** The port clients use. */
  readonly port: number;
  readonly url: string;
  readonly upstreamFile: string;
  /** The `traffic:` block of a greenlight config that switches this nginx. */
  adapterBlock(servers: Record<string, string>, verifyTimeout?: string): Record<string, unknown>;
  close(): Promise<void>;
}

/** nginx's path, or undefined when it is not installed (Debian puts it in /usr/sbin). */
export function findNginx(): string | undefined {
  if (existsSync('/usr/sbin/nginx')) return '/usr/sbin/nginx';
  const found = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : undefined;
}

/**
 * Start nginx proxying to `initial` (host:port); resolves once it answers. nginx cannot listen on
 * port 0 and say which port it got, so a port found free is handed to it; should another process
 * take that port first, nginx exits with "Address already in use" and another port is tried.
 */
export async function startNginxFront(initial: string): Promise<NginxFront> {
  const nginx = findNginx();
  if (!nginx) throw new Error('nginx is not installed (apt-get install nginx)');
  const dir = mkdtempSync(join(tmpdir(), 'greenlight-nginx-'));
  // Workers run as nobody when started as root; they must reach the temp directories.
  chmodSync(dir, 0o755);
  const conf = join(dir, 'nginx.conf');
  const upstreamFile = join(dir, 'upstream.conf');
  writeFileSync(upstreamFile, `upstream alphastack {\n    server ${initial};\n    keepalive 16;\n}\n`);
  const base = [nginx, '-e', join(dir, 'error.log'), '-p', dir, '-c', conf];
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(conf, nginxConf(dir, upstreamFile, port));
    const master: ChildProcess = spawn(base[0]!, [...base.slice(1), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    master.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = `http://127.0.0.1:${port}`;
    const started = await answers(url, master);
    if (!started) {
      if (/Address already in use/.test(stderr) && attempt < 5) continue;
      master.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${stderr}`);
    }
    return front(port, url, upstreamFile, dir, base, master);
  }
}

/** Whether nginx answers through `url` (its own Server header: not some other process on the port) before it exits or 5 s pass. */
async function answers(url: string, master: ChildProcess): Promise<boolean> {
  for (let i = 0; i <= 100; i++) {
    if (master.exitCode !== null || master.signalCode !== null) return false;
    try {
      const response = await fetch(`${url}/api/health`);
      await response.arrayBuffer();
      if (/^nginx/.test(response.headers.get('server') ?? '')) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function nginxConf(dir: string, upstreamFile: string, port: number): string {
  return [
    'worker_processes 1;',
    `error_log ${dir}/error.log notice;`,
    `pid ${dir}/nginx.pid;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/client_body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    `  include ${upstreamFile};`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    location / { proxy_pass http://alphastack; proxy_http_version 1.1; proxy_set_header Connection ""; }',
    '  }',
    '}',
    '',
  ].join('\n');
}

function front(port: number, url: string, upstreamFile: string, dir: string, base: string[], master: ChildProcess): NginxFront {
  return {
    port,
    url,
    upstreamFile,
    adapterBlock: (servers, verifyTimeout = '5s') => ({
      type: 'nginx',
      upstreamFile,
      servers,
      testCommand: [...base, '-t'],
      reloadCommand: [...base, '-s', 'reload'],
      verifyUrl: `${url}/api/health`,
      verifyTimeout,
    }),
    close: async () => {
      if (master.exitCode === null) {
        const exited = new Promise((resolve) => master.once('exit', resolve));
        master.kill('SIGQUIT');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3_000))]);
        if (master.exitCode === null) master.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pino } from 'pino';
import { Agent, Pool } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sleep, type PluginDeps } from '../../../agent/plugins/plugin.js';
import { NginxTrafficSchema, nginxTraffic } from '../../../agent/traffic/nginx-traffic.js';
import { TrafficError, type SwitchRequest } from '../../../agent/traffic/traffic-adapter.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { findNginx, startNginxFront, type NginxFront } from '../../../simulator/nginx-front.js';
import { tempDir } from '../../helpers/tools.js';
import { Redactor } from '../../../config/redactor.js';

const NGINX = findNginx();
if (!NGINX && process.env.CI) throw new Error('nginx is not installed; .ci/run must apt-get install nginx');

function request(from: string, to: string): SwitchRequest {
  return { from, to, reason: `test: ${from} → ${to}`, rule: null, incident: `inc-${from}-${to}`, fencingToken: 1 };
}

async function waitFor(condition: () => boolean): Promise<void> {
  const until = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(20, new AbortController().signal);
  }
}

describe.skipIf(!NGINX)('nginx traffic adapter against a real nginx', () => {
  const dispatcher = new Agent();
  const deps: PluginDeps = { logger: pino({ level: 'silent' }), dispatcher, now: Date.now, sleep, redactor: new Redactor() };
  let blue: Simulator;
  let green: Simulator;
  let front: NginxFront;
  let dir: string;
  let upstreamFile: string;
  let port: number;
  let client: Pool;

  /** The environment answering /api/health through nginx, on a fresh connection. */
  async function answeringEnv(): Promise<string> {
    const response = await dispatcher.request({ origin: `http://127.0.0.1:${port}`, path: '/api/health', method: 'GET', reset: true });
    const body = (await response.body.json()) as { environment: string };
    return body.environment;
  }

  /** The adapter's block for this nginx: the fixture's -e/-p/-c on every command, so `-t` checks its config and `-s reload` finds its pid file. */
  function adapterBlock(servers: Record<string, string>) {
    return NginxTrafficSchema.parse(front.adapterBlock(servers));
  }

  beforeAll(async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    front = await startNginxFront(`127.0.0.1:${blue.port}`);
    ({ upstreamFile, port } = front);
    dir = dirname(upstreamFile);
    client = new Pool(`http://127.0.0.1:${port}`, { connections: 16, keepAliveTimeout: 30_000 });
  });

  // Every test starts with nginx serving blue, whichever ran before it (vitest may shuffle them).
  beforeEach(async () => {
    if ((await answeringEnv()) === 'blue' && readFileSync(upstreamFile, 'utf8').includes(`server 127.0.0.1:${blue.port};`)) return;
    const adapter = nginxTraffic.create(adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` }), deps);
    await adapter.switchTo(request('green', 'blue'), new AbortController().signal);
    // Until nginx's retiring workers are gone: a test must not meet one answering for the last test's side.
    let row = 0;
    for (const until = Date.now() + 10_000; row < 5 && Date.now() < until; await sleep(50, new AbortController().signal))
      row = (await answeringEnv()) === 'blue' ? row + 1 : 0;
  });

  afterAll(async () => {
    await client?.close();
    await front?.close();
    await Promise.all([blue?.close(), green?.close()]);
    await dispatcher.close();
  });

  it('proxies to blue to begin with', async () => {
    expect(await answeringEnv()).toBe('blue');
  });

  it('puts the previous upstream file back and does not reload when nginx -t rejects the new one', async () => {
    const before = readFileSync(upstreamFile);
    const adapter = nginxTraffic.create(adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: '127.0.0.1:99999' }), deps);
    const error = await adapter.switchTo(request('blue', 'green'), new AbortController().signal).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    const message = (error as Error).message;
    expect(message).toMatch(/^nginx rejected the upstream for green \(nginx exited with code 1: /);
    expect(message).toContain('invalid port in upstream "127.0.0.1:99999"');
    expect(message).toContain(`${upstreamFile} was put back as it was, and nginx was not reloaded`);
    expect(readFileSync(upstreamFile)).toEqual(before);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(await answeringEnv()).toBe('blue');
  });

  it('switches blue → green under continuous keep-alive load without a single failed request', async () => {
    const adapter = nginxTraffic.create(adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` }), deps);
    const mode = statSync(upstreamFile).mode & 0o777;
    const failures: string[] = [];
    const resent: string[] = [];
    const answers: { at: number; env: string }[] = [];
    const workers = 10;
    const periodMs = 50; // 10 workers × 20/s = 200 requests a second
    const end = Date.now() + 4_000;

    /**
     * One GET, sent again once if the kept-alive connection it went out on was closed (FIN or RST)
     * before any answer: the old workers close their idle connections when nginx reloads, and a
     * request crossing that close on the wire is lost. HTTP lets a client re-send an idempotent
     * request then (RFC 9112 §9.3.1), and browsers and proxies do; undici does not on its own.
     * Without this, about one run in four lost one or two of its 800 requests this way.
     */
    async function get(): Promise<{ status: number; text: string }> {
      const once = async () => {
        const response = await client.request({ path: '/api/health', method: 'GET' });
        return { status: response.statusCode, text: await response.body.text() };
      };
      try {
        return await once();
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (!['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes(code)) throw error;
        resent.push(`${code} ${(error as Error).message}`);
        return once();
      }
    }

    async function worker(): Promise<void> {
      for (let next = Date.now(); next < end; next += periodMs) {
        try {
          const { status, text } = await get();
          if (status !== 200) failures.push(`HTTP ${status}: ${text.slice(0, 100)}`);
          else answers.push({ at: Date.now(), env: (JSON.parse(text) as { environment: string }).environment });
        } catch (error) {
          failures.push(`${(error as { code?: string }).code ?? ''} ${(error as Error).message}`);
        }
        await sleep(Math.max(0, next + periodMs - Date.now()));
      }
    }

    const load = Promise.all(Array.from({ length: workers }, worker));
    await sleep(1_500);
    const switchedAt = Date.now();
    const outcome = await adapter.switchTo(request('blue', 'green'), new AbortController().signal);
    const switchDone = Date.now();
    await load;

    const sent = failures.length + answers.length;
    console.log(
      `nginx switch under load: ${sent} requests, ${failures.length} failed, ${resent.length} re-sent after a keep-alive close (${resent.join('; ') || 'none'}), switch took ${switchDone - switchedAt}ms`,
    );
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(700);
    // At most one lost race per kept-alive connection and reload.
    expect(resent.length).toBeLessThanOrEqual(workers);
    expect(answers.filter((a) => a.at < switchedAt).every((a) => a.env === 'blue')).toBe(true);
    expect(answers.filter((a) => a.at > switchDone).every((a) => a.env === 'green')).toBe(true);
    expect(answers.filter((a) => a.env === 'green').length).toBeGreaterThan(300);
    expect(outcome.detail).toBe(
      `nginx upstream alphastack now 127.0.0.1:${green.port} (green), verified: $.environment is "green" through nginx 3 times in a row`,
    );
    expect(outcome.data).toMatchObject({ upstream: 'alphastack', server: `127.0.0.1:${green.port}`, verified: true });
    expect(readFileSync(upstreamFile, 'utf8')).toMatch(new RegExp(`^upstream alphastack \\{\\n    server 127\\.0\\.0\\.1:${green.port};\\n\\}$`, 'm'));
    expect(statSync(upstreamFile).mode & 0o777).toBe(mode);
    for (let i = 0; i < 10; i++) expect(await answeringEnv()).toBe('green');
  });

  it('switches back to blue', async () => {
    const adapter = nginxTraffic.create(adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` }), deps);
    await adapter.switchTo(request('blue', 'green'), new AbortController().signal);
    expect(await answeringEnv()).toBe('green');
    const outcome = await adapter.switchTo(request('green', 'blue'), new AbortController().signal);
    expect(outcome.detail).toMatch(/\(blue\), verified/);
    for (let i = 0; i < 10; i++) expect(await answeringEnv()).toBe('blue');
  });

  it('after a crash between writing the upstream file and the reload, says what nginx serves and puts the file back (regression: it recorded a switch that never happened)', async () => {
    const block = adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const reached = join(dir, 'test-command-reached');
    rmSync(reached, { force: true });
    // The test command marks that the file is written, then waits: the moment a crash would find.
    const slow = nginxTraffic.create({ ...block, testCommand: ['sh', '-c', `touch ${reached}; sleep 30`] }, deps);
    const stop = new AbortController();
    const cut = slow.switchTo(request('blue', 'green'), stop.signal).catch((error: unknown) => error);
    await waitFor(() => existsSync(reached));
    const crashed = Object.fromEntries(
      readdirSync(dir)
        .filter((name) => name.includes(basename(upstreamFile)))
        .map((name) => [name, readFileSync(join(dir, name))]),
    );
    expect(Object.keys(crashed).some((name) => name.endsWith('greenlight-pending'))).toBe(true);
    stop.abort();
    await cut;
    // Put the directory back as the killed agent left it: the new upstream file, and its marker.
    for (const [name, bytes] of Object.entries(crashed)) writeFileSync(join(dir, name), bytes);
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${green.port};`);

    // Without verifyUrl nothing tells what nginx serves: it says it cannot tell.
    const { verifyUrl: _unused, ...blind } = block;
    expect(await nginxTraffic.create(blind, deps).current!(new AbortController().signal)).toBeUndefined();
    // With it: blue, as nginx never reloaded; the file names blue again, so no later reload moves traffic.
    expect(await nginxTraffic.create(block, deps).current!(new AbortController().signal)).toBe('blue');
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${blue.port};`);
    expect(readdirSync(dir).filter((name) => name.includes('greenlight-pending'))).toEqual([]);
    expect(await answeringEnv()).toBe('blue');
  });

  /** A reloadCommand that reloads nginx, then hangs (`systemctl reload` on a loaded host, a wrapper): the reload took, the command is cut off. */
  function reloadThenHang(block: ReturnType<typeof adapterBlock>, marker: string): ReturnType<typeof adapterBlock> {
    const reload = block.reloadCommand.map((arg) => `'${arg}'`).join(' ');
    return { ...block, reloadCommand: ['sh', '-c', `${reload} && touch ${marker} && exec sleep 30`] };
  }

  it('a reload command that times out after reloading nginx: nginx is reloaded back, so it serves what greenlight watches (regression: the file was put back alone, and nginx served green while greenlight guarded blue)', async () => {
    const reached = join(dir, 'reload-reached');
    rmSync(reached, { force: true });
    const block = adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const hanging = nginxTraffic.create({ ...reloadThenHang(block, reached), commandTimeout: 1_500 }, deps);
    const error = await hanging.switchTo(request('blue', 'green'), new AbortController().signal).catch((e: unknown) => e);
    expect(existsSync(reached)).toBe(true);
    expect(error).toBeInstanceOf(TrafficError);
    expect((error as Error).message).toMatch(/^nginx reload failed \(sh did not finish within 1\.5s\): nginx may have reloaded onto green before; /);
    // Its reload back hangs too, as the same command: which side nginx serves is unknown until verifyUrl says.
    expect((error as Error).message).toContain('which environment nginx serves is unknown until verifyUrl says');
    // What traffic control asks next: verifyUrl, through nginx, settles it; the file follows.
    // (Right after a reload nginx's retiring workers may still answer: no clear answer leaves the marker, and asking again settles it.)
    let served = await hanging.current!(new AbortController().signal);
    for (const until = Date.now() + 5_000; served === undefined && Date.now() < until; served = await hanging.current!(new AbortController().signal))
      await sleep(100, new AbortController().signal);
    expect(served).toBe(await answeringEnv());
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${served === 'green' ? green.port : blue.port};`);
    expect(readdirSync(dir).filter((name) => name.includes('greenlight-pending'))).toEqual([]);
    // With a reload back that works, nginx is on blue again and the file is as it was.
    const reload = block.reloadCommand.map((arg) => `'${arg}'`).join(' ');
    const onceHanging = nginxTraffic.create(
      {
        ...block,
        reloadCommand: ['sh', '-c', `if [ -e ${reached}.2 ]; then exec ${reload}; fi; ${reload} && touch ${reached}.2 && exec sleep 30`],
        commandTimeout: 1_500,
      },
      deps,
    );
    rmSync(`${reached}.2`, { force: true });
    await nginxTraffic
      .create(block, deps)
      .switchTo(request(served!, 'blue'), new AbortController().signal)
      .catch(() => undefined);
    const second = await onceHanging.switchTo(request('blue', 'green'), new AbortController().signal).catch((e: unknown) => e);
    expect((second as Error).message).toContain('and nginx reloaded on it, so traffic stays on blue');
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${blue.port};`);
    let answering = await answeringEnv();
    for (const until = Date.now() + 5_000; answering !== 'blue' && Date.now() < until; answering = await answeringEnv())
      await sleep(50, new AbortController().signal);
    expect(answering).toBe('blue');
    expect(await onceHanging.current!(new AbortController().signal)).toBe('blue');
  });

  it('a stop while the reload command hangs after reloading nginx: the file and its marker stay, and the next start finds nginx on green (regression: the file was put back, and the restart confirmed blue)', async () => {
    const reached = join(dir, 'reload-reached-stop');
    rmSync(reached, { force: true });
    const block = adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const stop = new AbortController();
    const cut = nginxTraffic
      .create(reloadThenHang(block, reached), deps)
      .switchTo(request('blue', 'green'), stop.signal)
      .catch((e: unknown) => e);
    await waitFor(() => existsSync(reached));
    stop.abort();
    const error = await cut;
    expect((error as Error).message).toMatch(/^nginx reload failed \(sh was cancelled\): nginx may have reloaded onto green before; .* its marker stays/);
    expect(readdirSync(dir).some((name) => name.includes('greenlight-pending'))).toBe(true);
    // The next start, once nginx's old workers are gone (a row of answers from green): nginx serves green, and so says the adapter.
    let row = 0;
    for (const until = Date.now() + 10_000; row < 5 && Date.now() < until; await sleep(50, new AbortController().signal))
      row = (await answeringEnv()) === 'green' ? row + 1 : 0;
    expect(row).toBe(5);
    // A new process: connections of its own, none left over to the workers nginx retired.
    const restarted = new Agent();
    try {
      const next = nginxTraffic.create(block, { ...deps, dispatcher: restarted });
      let served = await next.current!(new AbortController().signal);
      for (const until = Date.now() + 5_000; served === undefined && Date.now() < until; served = await next.current!(new AbortController().signal))
        await sleep(100, new AbortController().signal);
      expect(served).toBe('green');
    } finally {
      await restarted.close();
    }
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${green.port};`);
  });

  it('fails verification when the reload reaches no nginx, naming what it saw', async () => {
    const block = adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const adapter = nginxTraffic.create({ ...block, reloadCommand: ['/bin/true'], verifyTimeout: 400 }, deps);
    const error = await adapter.switchTo(request('blue', 'green'), new AbortController().signal).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    expect((error as Error).message).toMatch(
      /^nginx was reloaded for green but verifyUrl did not report it 3 times in a row within 400ms \(last: \$\.environment is "blue"\)/,
    );
    expect((error as Error).message).toContain(`${upstreamFile} was put back as it was and nginx reloaded on it, so traffic stays on blue`);
    expect(readFileSync(upstreamFile, 'utf8')).toContain(`server 127.0.0.1:${blue.port};`);
  });

  it('puts nginx back on the old side when the switch took but cannot be verified (regression: nginx served green while greenlight watched blue as live)', async () => {
    const before = readFileSync(upstreamFile);
    const block = adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    // nginx reloads onto green, but verifyUrl never names it where the adapter looks.
    const adapter = nginxTraffic.create({ ...block, verifyJsonPath: NginxTrafficSchema.shape.verifyJsonPath.parse('$.nothing'), verifyTimeout: 400 }, deps);
    const error = await adapter.switchTo(request('blue', 'green'), new AbortController().signal).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    expect((error as Error).message).toMatch(/^nginx was reloaded for green but verifyUrl did not report it 3 times in a row within 400ms/);
    expect((error as Error).message).toContain('and nginx reloaded on it, so traffic stays on blue');
    expect(readFileSync(upstreamFile)).toEqual(before);
    // nginx takes a reload in a moment after the signal: its new workers answer from blue again.
    let answering = await answeringEnv();
    for (const until = Date.now() + 5_000; answering !== 'blue' && Date.now() < until; answering = await answeringEnv())
      await sleep(50, new AbortController().signal);
    expect(answering).toBe('blue');
    expect(readdirSync(dir).filter((name) => name.includes('greenlight-pending') || name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('nginx traffic adapter config', () => {
  it.each([
    [{ servers: { blue: '127.0.0.1:8081', green: '127.0.0.1:8082; }\nserver { listen 80' } }, 'is not a server address'],
    [{ servers: { blue: '127.0.0.1:8081' } }, 'needs an address per environment'],
    [{ servers: { blue: 'a:1', green: 'b:1' }, upstreamName: 'alpha stack' }, 'is not an upstream name'],
    [{ servers: { blue: 'a:1', green: 'b:1' }, verifyJsonPath: 'environment' }, 'is not a JSON path'],
    [{ servers: { blue: 'a:1', green: 'b:1' }, testCommand: [] }, 'needs a program'],
  ])('refuses %j', (block, message) => {
    const result = NginxTrafficSchema.safeParse({ type: 'nginx', upstreamFile: '/etc/nginx/greenlight/upstream.conf', ...block });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });

  it('fills in the defaults', () => {
    const config = NginxTrafficSchema.parse({ type: 'nginx', upstreamFile: '/etc/nginx/greenlight/upstream.conf', servers: { blue: 'a:1', green: 'b:1' } });
    expect(config).toMatchObject({
      upstreamName: 'alphastack',
      testCommand: ['nginx', '-t'],
      reloadCommand: ['nginx', '-s', 'reload'],
      commandTimeout: 10_000,
      verifyJsonPath: { text: '$.environment', segments: ['environment'] },
      verifyTimeout: 5_000,
    });
    expect(config.verifyUrl).toBeUndefined();
  });

  it('refuses to switch to an environment without an address, touching nothing', async () => {
    const dir = tempDir('greenlight-nginx-');
    const upstreamFile = join(dir, 'upstream.conf');
    writeFileSync(upstreamFile, 'upstream alphastack { server a:1; }\n');
    const config = NginxTrafficSchema.parse({ type: 'nginx', upstreamFile, servers: { blue: 'a:1', green: 'b:1' }, testCommand: ['/bin/false'] });
    const adapter = nginxTraffic.create(config, { logger: pino({ level: 'silent' }), dispatcher: new Agent(), now: Date.now, sleep, redactor: new Redactor() });
    await expect(adapter.switchTo(request('blue', 'canary'), new AbortController().signal)).rejects.toThrow('nginx traffic has no address for "canary"');
    expect(readFileSync(upstreamFile, 'utf8')).toBe('upstream alphastack { server a:1; }\n');
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes a new upstream file again when there was none before and the test fails', async () => {
    const dir = tempDir('greenlight-nginx-');
    const upstreamFile = join(dir, 'upstream.conf');
    const config = NginxTrafficSchema.parse({
      type: 'nginx',
      upstreamFile,
      servers: { blue: 'a:1', green: 'b:1' },
      testCommand: ['/bin/sh', '-c', 'echo "emerg: no" >&2; exit 1'],
    });
    const adapter = nginxTraffic.create(config, { logger: pino({ level: 'silent' }), dispatcher: new Agent(), now: Date.now, sleep, redactor: new Redactor() });
    await expect(adapter.switchTo(request('blue', 'green'), new AbortController().signal)).rejects.toThrow(
      /sh exited with code 1: emerg: no\); .* was put back as it was/,
    );
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});

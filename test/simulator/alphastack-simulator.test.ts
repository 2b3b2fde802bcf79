import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FAULTS, startSimulator, type Simulator, type SimulatorOptions } from '../../simulator/alphastack-simulator.js';

const started: Simulator[] = [];

async function start(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator({ name: 'blue', ...options });
  started.push(sim);
  return sim;
}

async function getJson(sim: Simulator, path: string): Promise<{ status: number; body: any; contentType: string | null }> {
  const res = await fetch(`${sim.url}${path}`);
  return { status: res.status, body: await res.json(), contentType: res.headers.get('content-type') };
}

async function postFaults(sim: Simulator, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${sim.url}/__faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: await res.json() };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

describe('startSimulator', () => {
  it('listens on a random port with a url without a trailing slash', async () => {
    const sim = await start();
    expect(sim.name).toBe('blue');
    expect(sim.port).toBeGreaterThan(0);
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`);
    expect(sim.faults()).toEqual(DEFAULT_FAULTS);
  });

  it('rejects with a clear error when the port is in use', async () => {
    const first = await start();
    const attempt = startSimulator({ port: first.port });
    await expect(attempt).rejects.toThrow(`port ${first.port} on 127.0.0.1 is already in use`);
    await expect(attempt).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('rejects invalid initial faults and ports', async () => {
    await expect(startSimulator({ faults: { errorRatio: 2 } })).rejects.toThrow(RangeError);
    await expect(startSimulator({ faults: { errorRatio: 2 } })).rejects.toThrow(/errorRatio/);
    await expect(startSimulator({ port: 70_000 })).rejects.toThrow(/port/);
  });

  it('applies initial faults from options', async () => {
    const sim = await start({ faults: { status: 'degraded', cpuPercent: 90 } });
    const { body } = await getJson(sim, '/api/health');
    expect(body.status).toBe('degraded');
    expect(body.cpu.percent).toBe(90);
  });
});

describe('endpoints', () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await start();
  });

  it('GET /api/health has the contract fields', async () => {
    const { status, body, contentType } = await getJson(sim, '/api/health');
    expect(status).toBe(200);
    expect(contentType).toMatch(/^application\/json/);
    expect(body).toMatchObject({
      status: 'healthy',
      environment: 'blue',
      version: '3.2.1',
      database: { connected: true },
      memory: { percent: 41.5 },
      cpu: { percent: 12.0 },
    });
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(body.memory.totalMb).toBeGreaterThan(body.memory.usedMb);
    expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
  });

  it('GET /api/alphastack/universe lists a non-empty universe', async () => {
    const { status, body } = await getJson(sim, '/api/alphastack/universe');
    expect(status).toBe(200);
    expect(body.universe.length).toBeGreaterThanOrEqual(10);
    expect(body.count).toBe(body.universe.length);
    expect(body.universe).toContainEqual(expect.objectContaining({ symbol: 'AAPL', sector: 'Technology' }));
    for (const ticker of body.universe) {
      expect(typeof ticker.symbol).toBe('string');
      expect(typeof ticker.score).toBe('number');
      expect(typeof ticker.sector).toBe('string');
    }
    expect(Number.isNaN(Date.parse(body.generatedAt))).toBe(false);
  });

  it('GET /api/discoveries lists signals', async () => {
    const { status, body } = await getJson(sim, '/api/discoveries');
    expect(status).toBe(200);
    expect(body.discoveries.length).toBeGreaterThan(0);
    for (const d of body.discoveries) {
      expect(typeof d.symbol).toBe('string');
      expect(typeof d.signal).toBe('string');
      expect(d.confidence).toBeGreaterThan(0);
      expect(d.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('GET /api/portfolio/positions lists positions with consistent market values', async () => {
    const { status, body } = await getJson(sim, '/api/portfolio/positions');
    expect(status).toBe(200);
    expect(body.positions.length).toBeGreaterThan(0);
    for (const p of body.positions) {
      expect(typeof p.symbol).toBe('string');
      expect(p.quantity).toBeGreaterThan(0);
      expect(p.avgPrice).toBeGreaterThan(0);
      expect(p.marketValue).toBeCloseTo(p.quantity * p.currentPrice, 1);
    }
  });

  it('ignores the query string when routing', async () => {
    const { status, body } = await getJson(sim, '/api/health?probe=1');
    expect(status).toBe(200);
    expect(body.status).toBe('healthy');
  });

  it('answers 404 for unknown paths', async () => {
    const { status, body } = await getJson(sim, '/api/nope');
    expect(status).toBe(404);
    expect(body).toEqual({ error: 'not found' });
  });

  it('answers 405 for non-GET methods on app endpoints', async () => {
    const res = await fetch(`${sim.url}/api/health`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
    await res.arrayBuffer();
  });

  it('counts app requests but not fault API requests', async () => {
    expect(sim.requestCount()).toBe(0);
    await getJson(sim, '/api/health');
    await getJson(sim, '/api/discoveries');
    await getJson(sim, '/missing');
    await getJson(sim, '/__faults');
    await postFaults(sim, '{"cpuPercent":50}');
    expect(sim.requestCount()).toBe(3);
  });
});

describe('faults', () => {
  it('latencyMs delays app answers but not the fault API', async () => {
    const sim = await start({ faults: { latencyMs: 1_000 } });
    const t0 = performance.now();
    const { status } = await getJson(sim, '/api/health');
    const elapsed = performance.now() - t0;
    expect(status).toBe(200);
    // libuv timers have millisecond granularity and may fire up to ~1ms early.
    expect(elapsed).toBeGreaterThanOrEqual(998);

    // Asked after an app request, the fault API answers first: by order, not by a time bound.
    const answered: string[] = [];
    await Promise.all([getJson(sim, '/api/health').then(() => answered.push('app')), getJson(sim, '/__faults').then(() => answered.push('faults'))]);
    expect(answered).toEqual(['faults', 'app']);
  });

  it('errorRatio 1 answers 500 simulated failure', async () => {
    const sim = await start({ faults: { errorRatio: 1 } });
    for (const path of ['/api/health', '/api/alphastack/universe', '/api/discoveries', '/api/portfolio/positions']) {
      const { status, body } = await getJson(sim, path);
      expect(status).toBe(500);
      expect(body).toEqual({ error: 'simulated failure' });
    }
  });

  it('errorRatio uses the injected random source', async () => {
    const draws = [0.1, 0.9, 0.49, 0.5, 0.7];
    let i = 0;
    const sim = await start({ faults: { errorRatio: 0.5 }, random: () => draws[i++ % draws.length]! });
    const statuses: number[] = [];
    for (let n = 0; n < draws.length; n++) statuses.push((await getJson(sim, '/api/health')).status);
    expect(statuses).toEqual([500, 200, 500, 200, 200]);
  });

  it('hang never answers; close() still resolves promptly with hung sockets open', async () => {
    const sim = await startSimulator({ faults: { hang: true } });
    const aborted = fetch(`${sim.url}/api/health`, { signal: AbortSignal.timeout(300) });
    await expect(aborted).rejects.toMatchObject({ name: 'TimeoutError' });

    const hung = new Promise<string>((resolve) => {
      const req = httpRequest(`${sim.url}/api/alphastack/universe`, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end();
    });
    while (sim.requestCount() < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sim.requestCount()).toBe(2);
    // The fault API keeps working while the app hangs.
    expect((await getJson(sim, '/__faults')).body.hang).toBe(true);

    // A close() that waited for the hung socket would never resolve: the test's timeout is the bound.
    await sim.close();
    expect(await hung).toBe('ECONNRESET');
  });

  it('close() resolves promptly while a latency delay is pending', async () => {
    const sim = await startSimulator({ faults: { latencyMs: 600_000 } });
    const pending = fetch(`${sim.url}/api/health`).then(
      () => 'answered',
      () => 'failed',
    );
    while (sim.requestCount() < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    // A close() that waited for the delayed answer would take ten minutes: the test's timeout is the bound.
    await sim.close();
    expect(await pending).toBe('failed');
  });

  it('memoryPercent and cpuPercent are reflected in health', async () => {
    const sim = await start();
    sim.setFaults({ memoryPercent: 93.2, cpuPercent: 88 });
    const { body } = await getJson(sim, '/api/health');
    expect(body.memory.percent).toBe(93.2);
    expect(body.cpu.percent).toBe(88);
  });

  it('emptyUniverse empties the universe only', async () => {
    const sim = await start({ faults: { emptyUniverse: true } });
    const { status, body } = await getJson(sim, '/api/alphastack/universe');
    expect(status).toBe(200);
    expect(body.universe).toEqual([]);
    expect((await getJson(sim, '/api/discoveries')).body.discoveries.length).toBeGreaterThan(0);
  });

  it('invalidJson answers 200 application/json with a truncated body', async () => {
    const sim = await start({ faults: { invalidJson: true } });
    for (const path of ['/api/health', '/api/alphastack/universe', '/api/discoveries', '/api/portfolio/positions']) {
      const res = await fetch(`${sim.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      expect(text.length).toBeGreaterThan(0);
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
    }
    const res = await fetch(`${sim.url}/api/health`);
    expect(await res.text()).toBe('{"status":"heal');
  });

  it('status degraded and databaseConnected false are reflected in health', async () => {
    const sim = await start();
    sim.setFaults({ status: 'degraded', databaseConnected: false });
    const { status, body } = await getJson(sim, '/api/health');
    expect(status).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.database.connected).toBe(false);
  });

  it('fault changes take effect immediately despite body caching', async () => {
    const sim = await start();
    expect((await getJson(sim, '/api/health')).body.status).toBe('healthy');
    sim.setFaults({ status: 'unhealthy' });
    expect((await getJson(sim, '/api/health')).body.status).toBe('unhealthy');
    sim.resetFaults();
    expect((await getJson(sim, '/api/health')).body.status).toBe('healthy');
  });

  it('applies faults in order: hang beats errorRatio, errorRatio beats invalidJson', async () => {
    const sim = await start({ faults: { errorRatio: 1, invalidJson: true } });
    expect((await getJson(sim, '/api/health')).status).toBe(500);
    sim.setFaults({ hang: true });
    await expect(fetch(`${sim.url}/api/health`, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
  });
});

describe('setFaults / resetFaults', () => {
  it('merges, returns copies, and resets', async () => {
    const sim = await start();
    const merged = sim.setFaults({ latencyMs: 5 });
    expect(merged).toEqual({ ...DEFAULT_FAULTS, latencyMs: 5 });
    merged.latencyMs = 999;
    expect(sim.faults().latencyMs).toBe(5);
    expect(sim.setFaults({ errorRatio: 0.25 })).toMatchObject({ latencyMs: 5, errorRatio: 0.25 });
    expect(sim.resetFaults()).toEqual(DEFAULT_FAULTS);
    expect(sim.faults()).toEqual(DEFAULT_FAULTS);
  });

  it('throws a RangeError naming the bad field and changes nothing', async () => {
    const sim = await start();
    sim.setFaults({ latencyMs: 7 });
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ errorRatio: 1.5 }, /errorRatio/],
      [{ errorRatio: -0.1 }, /errorRatio/],
      [{ memoryPercent: 101 }, /memoryPercent/],
      [{ latencyMs: -1 }, /latencyMs/],
      [{ latencyMs: 'slow' }, /latencyMs/],
      [{ hang: 'yes' }, /hang/],
      [{ status: 'broken' }, /status/],
      [{ latencyMs: 10, bogus: 1 }, /bogus/],
    ];
    for (const [patch, field] of bad) {
      expect(() => sim.setFaults(patch as never)).toThrow(RangeError);
      expect(() => sim.setFaults(patch as never)).toThrow(field);
    }
    expect(sim.faults()).toEqual({ ...DEFAULT_FAULTS, latencyMs: 7 });
  });
});

describe('fault API', () => {
  let sim: Simulator;
  beforeEach(async () => {
    sim = await start();
  });

  it('GET returns the current faults', async () => {
    const { status, body } = await getJson(sim, '/__faults');
    expect(status).toBe(200);
    expect(body).toEqual(DEFAULT_FAULTS);
  });

  it('POST merges a partial patch and answers the new faults', async () => {
    const first = await postFaults(sim, '{"latencyMs":25,"status":"degraded"}');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ ...DEFAULT_FAULTS, latencyMs: 25, status: 'degraded' });
    const second = await postFaults(sim, '{"memoryPercent":77}');
    expect(second.body).toEqual({ ...DEFAULT_FAULTS, latencyMs: 25, status: 'degraded', memoryPercent: 77 });
    expect(sim.faults()).toEqual(second.body);
  });

  it('DELETE resets to the defaults', async () => {
    await postFaults(sim, '{"hang":true,"errorRatio":0.3}');
    const res = await fetch(`${sim.url}/__faults`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(DEFAULT_FAULTS);
    expect(sim.faults()).toEqual(DEFAULT_FAULTS);
  });

  it('is not affected by faults', async () => {
    sim.setFaults({ errorRatio: 1, invalidJson: true, hang: true });
    const { status, body } = await getJson(sim, '/__faults');
    expect(status).toBe(200);
    expect(body.hang).toBe(true);
    expect((await fetch(`${sim.url}/__faults`, { method: 'DELETE' })).status).toBe(200);
    expect((await getJson(sim, '/api/health')).status).toBe(200);
  });

  it.each([
    ['invalid JSON', '{"latencyMs":', /JSON/],
    ['an empty body', '', /JSON/],
    ['a non-object', '[1,2]', /object/],
    ['an unknown key', '{"latencyMs":10,"explode":true}', /explode/],
    ['a wrong type', '{"latencyMs":10,"hang":"true"}', /hang/],
    ['errorRatio above 1', '{"errorRatio":1.01}', /errorRatio/],
    ['errorRatio below 0', '{"errorRatio":-0.5}', /errorRatio/],
    ['memoryPercent above 100', '{"memoryPercent":150}', /memoryPercent/],
    ['memoryPercent below 0', '{"memoryPercent":-1}', /memoryPercent/],
    ['an unknown status', '{"status":"on fire"}', /status/],
  ])('POST with %s answers 400 and changes nothing', async (_label, body, field) => {
    await postFaults(sim, '{"cpuPercent":33}');
    const res = await postFaults(sim, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(field);
    expect(sim.faults()).toEqual({ ...DEFAULT_FAULTS, cpuPercent: 33 });
  });

  it('rejects bodies over 64 KiB with 413', async () => {
    const huge = JSON.stringify({ status: 'degraded', padding: 'x'.repeat(70 * 1024) });
    const res = await fetch(`${sim.url}/__faults`, { method: 'POST', body: huge }).catch((error: unknown) => error);
    if (res instanceof Response) {
      expect(res.status).toBe(413);
      await res.arrayBuffer();
    } else {
      // The server may drop the connection before the client finished uploading.
      expect(res).toBeInstanceOf(Error);
    }
    expect(sim.faults()).toEqual(DEFAULT_FAULTS);
  });

  it('answers 405 for other methods', async () => {
    const res = await fetch(`${sim.url}/__faults`, { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
    await res.arrayBuffer();
  });
});

describe('script mode', () => {
  const script = fileURLToPath(new URL('../../simulator/alphastack-simulator.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

  function run(args: string[]) {
    const child = spawn(tsx, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // 'close', not 'exit': what it wrote last may still be in the pipe when it exits.
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return { child, exited, out: () => stdout, err: () => stderr };
  }

  it('prints the listening line, serves requests, and exits 0 on SIGTERM', async () => {
    const proc = run(['--name', 'green', '--port', '0']);
    const deadline = Date.now() + 15_000;
    while (!proc.out().includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const match = /^alphastack simulator "green" listening on (http:\/\/127\.0\.0\.1:\d+) \(faults: POST \/__faults\)\n$/.exec(proc.out());
    expect(match, proc.out() + proc.err()).not.toBeNull();
    const res = await fetch(`${match![1]}/api/health`);
    expect(((await res.json()) as { environment: string }).environment).toBe('green');
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });

  it('exits 2 on unknown arguments', async () => {
    const proc = run(['--colour', 'blue']);
    expect(await proc.exited).toBe(2);
    expect(proc.err()).toMatch(/colour/);
    expect(proc.err()).toMatch(/usage/);
  });
});

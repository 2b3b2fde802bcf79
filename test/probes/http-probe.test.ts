import { gzipSync } from 'node:zlib';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import type { Config } from '../../config/schema.js';
import { classifyError, MAX_BODY_PIECES, MAX_INTERIM_ANSWERS, ProbeCompiler, runProbe, type ProbeTarget } from '../../probes/http-probe.js';
import { ProbeCanceller } from '../../probes/probe-canceller.js';
import { REASON_CODES, type ProbeResult, type ReasonCode } from '../../probes/probe-result.js';
import { Redactor } from '../../config/redactor.js';

const NOW = 1_760_000_000_000;
const now = () => NOW;
const MiB = 1_048_576;

// ---------------------------------------------------------------------------------------------
// Config helpers: every target is compiled from YAML text through parseConfig, as the agent does.

function dedent(text: string): string {
  const lines = text
    .replace(/^\s*\n/, '')
    .replace(/\s+$/, '')
    .split('\n');
  const margin = Math.min(...lines.filter((line) => line.trim() !== '').map((line) => /^ */.exec(line)![0].length));
  return lines.map((line) => line.slice(margin)).join('\n');
}

function indent(text: string, spaces: number): string {
  return dedent(text)
    .split('\n')
    .map((line) => ' '.repeat(spaces) + line)
    .join('\n');
}

interface ConfigOptions {
  /** Extra YAML under environments.blue (e.g. headers). */
  envYaml?: string;
  /** YAML under probeDefaults. */
  defaultsYaml?: string;
}

/** A config whose `blue` environment is `url` and whose single probe `health` is `probeYaml`. */
function configFor(url: string, probeYaml: string, options: ConfigOptions = {}): Config {
  const text = [
    'environments:',
    '  blue:',
    `    url: ${JSON.stringify(url)}`,
    ...(options.envYaml ? [indent(options.envYaml, 4)] : []),
    '  green:',
    '    url: "http://127.0.0.1:9"',
    ...(options.defaultsYaml ? ['probeDefaults:', indent(options.defaultsYaml, 2)] : []),
    'probes:',
    '  - name: health',
    indent(probeYaml, 4),
  ].join('\n');
  return parseConfig(text, {});
}

function targetFor(url: string, probeYaml: string, options: ConfigOptions = {}): ProbeTarget {
  const config = configFor(url, probeYaml, options);
  return new ProbeCompiler(config, Redactor.of(config)).target(config.probes[0]!, 'blue');
}

// ---------------------------------------------------------------------------------------------
// Local servers, all closed after each test.

const cleanups: (() => Promise<void> | void)[] = [];

async function listen(server: Server | NetServer): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface HttpServer {
  port: number;
  url: string;
  server: Server;
}

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<HttpServer> {
  // A handler that throws ends its connection, so the probe sees a reset, not a hang.
  const server = createServer((req, res) => void Promise.resolve(handler(req, res)).catch((error: Error) => res.destroy(error)));
  const port = await listen(server);
  return { port, url: `http://127.0.0.1:${port}`, server };
}

/** A port on 127.0.0.1 that was just bound and released: nothing listens there. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function json(res: ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readRequestBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work;
  return { value, ms: performance.now() - start };
}

let agent: Agent;

/**
 * Errors that escaped as uncaught exceptions while a test ran (in the agent they would crash the
 * process). Every test must leave this empty: afterEach fails the test otherwise.
 */
let uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);
const describeUncaught = (error: unknown) => `${(error as { code?: string } | null)?.code ?? ''} ${String(error)}`.trim();

beforeEach(() => {
  agent = new Agent();
  uncaught = [];
  process.on('uncaughtException', onUncaught);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await agent.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  process.off('uncaughtException', onUncaught);
  expect(uncaught.map(describeUncaught), 'uncaught exceptions during the test').toEqual([]);
});

function expectFailure(result: ProbeResult, reason: ReasonCode): void {
  expect({ ok: result.ok, reason: result.reason }).toEqual({ ok: false, reason });
}

// ---------------------------------------------------------------------------------------------

describe('runProbe: a healthy answer', () => {
  const HEALTH = {
    status: 'healthy',
    database: { connected: true },
    memory: { percent: 63.2 },
    cpu: { percent: '41.5' },
    universe: [{ symbol: 'AAPL' }],
  };
  let server: HttpServer;
  let requests: number;

  beforeEach(async () => {
    requests = 0;
    server = await httpServer((req, res) => {
      requests++;
      if (req.url === '/api/health') json(res, HEALTH, 200, { 'x-version': '3.4.1' });
      else json(res, { error: 'not found' }, 404);
    });
  });

  it('is ok with every check passing, numbers extracted and a missing path left out', async () => {
    const target = targetFor(
      server.url,
      `
      path: /api/health
      expect:
        status: [200]
        json:
          - path: $.status
            in: [healthy, ok]
          - path: $.database.connected
            equals: true
          - path: $.universe
            nonEmpty: true
      extract:
        memory_percent:
          path: $.memory.percent
          lines: [80, 90]
        cpu_percent: $.cpu.percent
        disk_percent: $.disk.percent
      `,
    );
    const result = await runProbe(target, agent, now);
    expect(result.ok).toBe(true);
    expect(result.reason).toBeUndefined();
    expect(result.error).toBeUndefined();
    expect(result.probe).toBe('health');
    expect(result.env).toBe('blue');
    expect(result.status).toBe(200);
    expect(result.startedAt).toBe(NOW);
    expect(result.durationMs).toBeGreaterThan(0);
    expect(result.checks).toEqual([
      { ok: true, text: 'status 200 in [200]' },
      { ok: true, text: '$.status ("healthy") in [healthy, ok]' },
      { ok: true, text: '$.database.connected (true) == true' },
      { ok: true, text: '$.universe (1 item) is non-empty' },
    ]);
    expect(result.extracted).toEqual({ memory_percent: 63.2, cpu_percent: 41.5 });
    expect(Object.hasOwn(result.extracted, 'disk_percent')).toBe(false);
    expect(requests).toBe(1);
  });

  it('uses 2xx when the probe names no status, and passes a generous maxLatency', async () => {
    const result = await runProbe(targetFor(server.url, 'path: /api/health\nexpect:\n  maxLatency: 5s'), agent, now);
    expect(result.ok).toBe(true);
    expect(result.checks[0]).toEqual({ ok: true, text: 'status 200 in [2xx]' });
    expect(result.checks[1]!.ok).toBe(true);
    expect(result.checks[1]!.text).toMatch(/^latency \d+ms <= 5000ms$/);
    expect(result.checks).toHaveLength(2);
    expect(result.extracted).toEqual({});
  });

  it('reports status for a 404 with the default 2xx expectation', async () => {
    const result = await runProbe(targetFor(server.url, 'path: /nope'), agent, now);
    expectFailure(result, 'status');
    expect(result.status).toBe(404);
    expect(result.checks).toEqual([{ ok: false, text: 'status 404 not in [2xx]' }]);
  });

  it('passes header assertions', async () => {
    const target = targetFor(
      server.url,
      `
      path: /api/health
      expect:
        headers:
          - name: X-Version
            equals: "3.4.1"
          - name: content-type
            matches: ^application/json
          - name: x-debug
            exists: false
      `,
    );
    const result = await runProbe(target, agent, now);
    expect(result.ok).toBe(true);
    expect(result.checks).toEqual([
      { ok: true, text: 'status 200 in [2xx]' },
      { ok: true, text: 'header x-version ("3.4.1") == "3.4.1"' },
      { ok: true, text: 'header content-type ("application/json") matches /^application/json/' },
      { ok: true, text: 'header x-debug (missing) is absent' },
    ]);
  });

  it('reports durationMs > 0 and startedAt from the injected clock on every probe', async () => {
    let clock = 1_000;
    const target = targetFor(server.url, 'path: /api/health');
    for (let i = 0; i < 3; i++) {
      clock += 5_000;
      const result = await runProbe(target, agent, () => clock);
      expect(result.startedAt).toBe(clock);
      expect(result.durationMs).toBeGreaterThan(0);
    }
  });
});

describe('ProbeCompiler', () => {
  const PROBES = `
environments:
  blue: { url: "%URL%" }
  green: { url: "%URL%/green" }
probes:
  - name: up
    path: /api/health
    expect: { json: [{ path: $.status, in: [healthy] }, { path: $.universe, nonEmpty: true }] }
  - name: down
    path: /api/health
    expect: { json: [{ path: $.status, equals: down }, { path: $.universe, nonEmpty: true }] }
  - name: other
    path: /api/health
    environments: [blue]
    expect: { json: [{ path: $.database.connected, equals: true }] }
  - name: plain
    path: /api/health
    environments: [green]
`;

  it('shares one selector among the targets it compiles that read the same paths, and keeps their checks apart', async () => {
    const server = await httpServer((req, res) => json(res, { status: 'healthy', universe: [1], database: { connected: true } }));
    try {
      const config = parseConfig(PROBES.replaceAll('%URL%', server.url), {});
      const compiler = new ProbeCompiler(config, Redactor.of(config));
      const blue = compiler.targetsOn('blue');
      expect(blue.map((target) => target.probe)).toEqual(['up', 'down', 'other']);
      expect(compiler.targetsOn('green').map((target) => target.probe)).toEqual(['up', 'down', 'plain']);
      const [up, down, other] = blue as [ProbeTarget, ProbeTarget, ProbeTarget];
      expect(up.json!.selector).toBe(down.json!.selector);
      expect(compiler.target(config.probes[0]!, 'green').json!.selector).toBe(up.json!.selector);
      expect(other.json!.selector).not.toBe(up.json!.selector);
      expect(new ProbeCompiler(config, Redactor.of(config)).target(config.probes[0]!, 'blue').json!.selector).not.toBe(up.json!.selector);

      const [a, b, c] = await Promise.all([up, down, other].map((target) => runProbe(target, agent, now)));
      expect([a!.ok, b!.ok, c!.ok]).toEqual([true, false, true]);
      expect(b!.checks).toContainEqual({ ok: false, text: '$.status ("healthy") != "down"' });
      expect(a!.checks).toContainEqual({ ok: true, text: '$.status ("healthy") in [healthy]' });
    } finally {
      server.server.closeAllConnections();
      await new Promise<void>((resolve) => server.server.close(() => resolve()));
    }
  });
});

describe('runProbe: status and assertion failures', () => {
  interface Route {
    status?: number;
    body: unknown;
    headers?: Record<string, string | string[]>;
    delayMs?: number;
  }
  const routes = new Map<string, Route>([
    ['/degraded', { body: { status: 'degraded', database: { connected: true } } }],
    ['/empty-universe', { body: { universe: [] } }],
    ['/metrics', { body: { cpu: 91.5, memory: '72', positions: [1, 2], symbol: 'AAPL', version: 'v3.4.1', error: 'boom' } }],
    ['/headers', { body: {}, headers: { 'x-version': '3.4.0', 'set-cookie': ['a=1', 'b=2'] } }],
    ['/slow', { body: { status: 'healthy' }, delayMs: 200 }],
    ['/error', { status: 500, body: '<html>Internal Server Error</html>', headers: { 'content-type': 'text/html' } }],
    ['/unavailable', { status: 503, body: { status: 'down' } }],
  ]);
  let server: HttpServer;

  beforeAll(async () => {
    // A server for this block only: registered outside `cleanups`, closed in afterAll.
    const created = createServer((req, res) => {
      const route = routes.get(req.url ?? '');
      if (!route) return json(res, { error: 'no route' }, 404);
      const send = () => {
        const text = typeof route.body === 'string' ? route.body : JSON.stringify(route.body);
        res.writeHead(route.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...route.headers });
        res.end(text);
      };
      if (route.delayMs) setTimeout(send, route.delayMs);
      else send();
    });
    await new Promise<void>((resolve) => created.listen(0, '127.0.0.1', () => resolve()));
    const { port } = created.address() as { port: number };
    server = { server: created, port, url: `http://127.0.0.1:${port}` };
  });

  afterAll(async () => {
    server.server.closeAllConnections();
    await new Promise<void>((resolve) => server.server.close(() => resolve()));
  });

  // [name, probe YAML, expected reason, expected checks (all of them, in order)]
  const cases: [string, string, ReasonCode, { ok: boolean; text: string }[]][] = [
    ['a 500 against status [200]', 'path: /error\nexpect:\n  status: [200]', 'status', [{ ok: false, text: 'status 500 not in [200]' }]],
    ['a 503 against the default 2xx', 'path: /unavailable', 'status', [{ ok: false, text: 'status 503 not in [2xx]' }]],
    [
      'a 500 with an HTML body and JSON assertions stays a status failure',
      'path: /error\nexpect:\n  status: [200]\n  json:\n    - path: $.status\n      equals: healthy',
      'status',
      [
        { ok: false, text: 'status 500 not in [200]' },
        { ok: false, text: expect.stringMatching(/^body is not JSON: .* \(34 bytes: "<html>Internal Server Error<\/html>"\)$/) as unknown as string },
      ],
    ],
    [
      'a status failure wins over failing assertions',
      'path: /unavailable\nexpect:\n  status: [200]\n  json:\n    - path: $.status\n      in: [healthy, ok]',
      'status',
      [
        { ok: false, text: 'status 503 not in [200]' },
        { ok: false, text: '$.status ("down") not in [healthy, ok]' },
      ],
    ],
    [
      'in: a degraded status',
      'path: /degraded\nexpect:\n  status: [200]\n  json:\n    - path: $.status\n      in: [healthy, ok]\n    - path: $.database.connected\n      equals: true',
      'assertion',
      [
        { ok: true, text: 'status 200 in [200]' },
        { ok: false, text: '$.status ("degraded") not in [healthy, ok]' },
        { ok: true, text: '$.database.connected (true) == true' },
      ],
    ],
    [
      'nonEmpty on []',
      'path: /empty-universe\nexpect:\n  json:\n    - path: $.universe\n      nonEmpty: true',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: '$.universe ([]) is empty' },
      ],
    ],
    [
      'gt / lt on a number and a numeric string',
      'path: /metrics\nexpect:\n  json:\n    - path: $.cpu\n      lt: 90\n    - path: $.memory\n      gt: 70\n    - path: $.cpu\n      gt: 95',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: '$.cpu (91.5) not < 90' },
        { ok: true, text: '$.memory ("72") > 70' },
        { ok: false, text: '$.cpu (91.5) not > 95' },
      ],
    ],
    [
      'length as a number and as a comparison',
      'path: /metrics\nexpect:\n  json:\n    - path: $.positions\n      length: 3\n    - path: $.symbol\n      length: { gte: 1, lte: 5 }\n    - path: $.positions\n      length: { gte: 3 }',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: 'length of $.positions (2) not == 3' },
        { ok: true, text: 'length of $.symbol (4) >= 1 and <= 5' },
        { ok: false, text: 'length of $.positions (2) not >= 3' },
      ],
    ],
    [
      'matches a regex',
      "path: /metrics\nexpect:\n  json:\n    - path: $.version\n      matches: '^\\d+\\.\\d+\\.\\d+$'",
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: '$.version ("v3.4.1") does not match /^\\d+\\.\\d+\\.\\d+$/' },
      ],
    ],
    [
      'exists: false on a present key',
      'path: /metrics\nexpect:\n  json:\n    - path: $.error\n      exists: false',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: '$.error ("boom") exists' },
      ],
    ],
    [
      'header equals',
      'path: /headers\nexpect:\n  headers:\n    - name: X-Version\n      equals: "3.4.1"',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: 'header x-version ("3.4.0") != "3.4.1"' },
      ],
    ],
    [
      'header matches (a repeated header is joined)',
      "path: /headers\nexpect:\n  headers:\n    - name: set-cookie\n      matches: '^a=1, b=2$'\n    - name: content-type\n      matches: '^text/'",
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: true, text: 'header set-cookie ("a=1, b=2") matches /^a=1, b=2$/' },
        { ok: false, text: 'header content-type ("application/json") does not match /^text//' },
      ],
    ],
    [
      'header exists',
      'path: /headers\nexpect:\n  headers:\n    - name: x-request-id\n      exists: true',
      'assertion',
      [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: false, text: 'header x-request-id (missing) does not exist' },
      ],
    ],
  ];

  it.each(cases)('%s', async (_name, probeYaml, reason, checks) => {
    const result = await runProbe(targetFor(server.url, probeYaml), agent, now);
    expectFailure(result, reason);
    expect(result.checks).toEqual(checks);
    expect(result.error).toBeUndefined();
  });

  it('maxLatency exceeded: a 200ms answer against maxLatency 50ms', async () => {
    const target = targetFor(server.url, 'path: /slow\nexpect:\n  maxLatency: 50ms\n  json:\n    - path: $.status\n      equals: healthy');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'assertion');
    expect(result.status).toBe(200);
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    const latency = result.checks.find((check) => check.text.startsWith('latency'));
    expect(latency).toBeDefined();
    expect(latency!.ok).toBe(false);
    expect(latency!.text).toMatch(/^latency \d+ms > 50ms$/);
    expect(Number(/^latency (\d+)ms/.exec(latency!.text)![1])).toBeGreaterThanOrEqual(150);
    // the body assertion itself passed
    expect(result.checks).toContainEqual({ ok: true, text: '$.status ("healthy") == "healthy"' });
  });
});

// These probes have a 10 s timeout: a result that names another reason than `timeout` is the
// proof that they did not wait for it (no bound on elapsed time, which a loaded machine stretches).
// The timeout tests bound elapsed time from below only, which no machine's noise can break.
describe('runProbe: transport failures', () => {
  it('refused: a port that was bound then closed, quickly and without waiting for the timeout', async () => {
    const port = await closedPort();
    const target = targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 10s');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'refused');
    expect(result.error).toContain('ECONNREFUSED');
    expect(result.status).toBeUndefined();
    expect(result.checks).toEqual([]);
    expect(result.startedAt).toBe(NOW);
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it('timeout: a server that accepts and never answers', async () => {
    const server = await httpServer(() => {
      /* never answers */
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 300ms');
    const { value: result, ms } = await timed(runProbe(target, agent, now));
    expectFailure(result, 'timeout');
    expect(result.error).toBe('no complete answer within 300ms');
    expect(result.status).toBeUndefined();
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(ms).toBeGreaterThanOrEqual(250);
  });

  it('timeout: the deadline covers the body, not just the gap between bytes', async () => {
    const timers = new Set<NodeJS.Timeout>();
    cleanups.push(() => timers.forEach((timer) => clearInterval(timer)));
    let bytesSent = 0;
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        bytesSent++;
        res.write(' ');
      }, 100);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 500ms');
    const { value: result, ms } = await timed(runProbe(target, agent, now));
    expectFailure(result, 'timeout');
    expect(result.error).toBe('no complete answer within 500ms');
    expect(bytesSent).toBeGreaterThan(0); // the body really was trickling when the deadline hit
    expect(ms).toBeGreaterThanOrEqual(450);
  });

  it('an answer that came in while the agent itself was stalled past the deadline is read, not a timeout', async () => {
    let answered = false;
    const server = await httpServer((_req, res) => {
      json(res, { status: 'ok' });
      answered = true;
      // The whole process stalls (the server is in it): the answer waits in the probe's socket while its deadline passes.
      const until = performance.now() + 400;
      while (performance.now() < until);
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 150ms');
    const result = await runProbe(target, agent, now);
    expect(answered).toBe(true);
    expect({ ok: result.ok, reason: result.reason, status: result.status }).toEqual({ ok: true, reason: undefined, status: 200 });
    expect(result.durationMs).toBeGreaterThanOrEqual(400);
  });

  it('a stall past the deadline with no answer waiting is still a timeout', async () => {
    const server = await httpServer(() => {
      const until = performance.now() + 400;
      while (performance.now() < until);
      /* never answers */
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 150ms');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'timeout');
    expect(result.error).toBe('no complete answer within 150ms');
  });

  it('reset: headers and part of a content-length body, then the socket is destroyed', async () => {
    const server = await httpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"status":"healthy","padding":"', () => req.socket.destroy());
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 10s\nexpect:\n  json:\n    - path: $.status\n      equals: healthy');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'reset');
    expect(result.error).toBeTruthy();
  });

  it('reset: a raw TCP server that destroys every connection on accept', async () => {
    const server = createNetServer((socket) => socket.destroy());
    const port = await listen(server);
    const target = targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 10s');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'reset');
    expect(result.status).toBeUndefined();
  });

  it('an interim 100 Continue nobody asked for: still a failure (undici refuses it), but one that says why (regression: "bad response" alone)', async () => {
    const server = createNetServer((socket) =>
      socket.once('data', () =>
        socket.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"status":"healthy"}'),
      ),
    );
    const port = await listen(server);
    const result = await runProbe(targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 5s'), agent, now);
    expectFailure(result, 'reset');
    expect(result.error).toContain('an interim 100 Continue the request did not ask for');
  });
});

describe('runProbe: answers undici cannot take as HTTP/1.1', () => {
  it.each([
    {
      what: 'a 101 Switching Protocols nobody asked for',
      answer: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      says: 'bad upgrade: the target answered 101 Switching Protocols to a request that asked for no protocol switch',
    },
    {
      what: 'a 101 without an Upgrade header (regression: "The expression evaluated to a falsy value:\\n\\n  assert(upgrade)\\n")',
      answer: 'HTTP/1.1 101 Switching Protocols\r\n\r\n',
      says: "undici's internal check (upgrade) failed on the answer: the target answered 101 Switching Protocols (without an Upgrade header) to a request that asked for no protocol switch",
    },
    {
      what: 'status 000 (regression: "assert(statusCode >= 100)" over three lines)',
      answer: 'HTTP/1.1 000 Zero\r\ncontent-length: 2\r\n\r\n{}',
      says: "undici's internal check (statusCode >= 100) failed on the answer: the target answered with a status code below 100, which HTTP does not have",
    },
    {
      what: "an HTTP/2 server's preface",
      answer: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      says: 'Response does not match the HTTP/1.1 protocol (Expected HTTP/, RTSP/ or ICE/): the answer has no HTTP/1.x status line: an HTTP/2-only server (its preface), HTTP/0.9, or another protocol on that port',
    },
  ])('$what: reset, saying what the target did on one line', async ({ answer, says }) => {
    const server = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.write(answer));
    });
    const port = await listen(server);
    const result = await runProbe(targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 10s'), agent, now);
    expectFailure(result, 'reset');
    expect(result.error).toBe(says);
  });
});

describe('runProbe: body limits', () => {
  it('body_too_large: a 50 MB chunked answer is cut off at maxBodyBytes without buffering it', async () => {
    const TOTAL = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    let sentWhenClosed = -1;
    let closed!: Promise<void>;
    const server = await httpServer((req, res) => {
      closed = new Promise<void>((resolve) =>
        req.socket.on('close', () => {
          sentWhenClosed = sent;
          resolve();
        }),
      );
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no content-length: chunked
      const pump = () => {
        while (sent < TOTAL && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      pump();
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 20s\nmaxBodyBytes: 1MiB');

    const result = await runProbe(target, agent, now);
    await closed;

    expectFailure(result, 'body_too_large');
    expect(result.status).toBe(200);
    expect(result.checks).toHaveLength(2);
    expect(result.checks[0]).toEqual({ ok: true, text: 'status 200 in [2xx]' });
    expect(result.checks[1]!.ok).toBe(false);
    expect(result.checks[1]!.text).toMatch(/^body \(\d+ bytes or more\) larger than 1048576 bytes$/);
    const seen = Number(/^body \((\d+)/.exec(result.checks[1]!.text)![1]);
    // What the reader took off the socket (and so all it can have held) is the limit plus one
    // chunk: asserted on that count, not on RSS or array buffers, which move with the GC's timing.
    expect(seen).toBeGreaterThan(MiB);
    expect(seen).toBeLessThan(2 * MiB);
    // the connection was dropped, not drained: the server saw it close long before 50 MB
    expect(sentWhenClosed).toBeGreaterThan(0);
    expect(sentWhenClosed).toBeLessThan(TOTAL / 2);
  });

  it('an answer in many small pieces is read whole and right, and one flushed a byte at a time is cut at MAX_BODY_PIECES (regression: a million pieces held 0.5 GB and seconds of CPU)', async () => {
    // Raw chunked framing, written straight to the socket: each piece its own chunk, as a server that flushes per write sends it.
    const pieces = (count: number, text: (i: number) => string) => {
      let out = '';
      for (let i = 0; i < count; i++) {
        const piece = text(i);
        out += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`;
      }
      return out;
    };
    const json = JSON.stringify({ status: 'healthy', universe: Array.from({ length: 300 }, (_, i) => ({ symbol: `S${i}` })) });
    const server = await httpServer((req, res) => {
      const socket = res.socket!;
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
      // Many small pieces in a few socket writes: undici hands them over one by one.
      if (req.url === '/small') socket.write(`${pieces(json.length, (i) => json[i]!)}0\r\n\r\n`);
      else socket.write(pieces(MAX_BODY_PIECES + 10, () => ' '));
    });
    const small = await runProbe(
      targetFor(server.url, 'path: /small\nexpect:\n  json:\n    - path: $.status\n      equals: healthy\n    - path: $.universe\n      length: 300'),
      agent,
      now,
    );
    expect(json.length).toBeLessThan(MAX_BODY_PIECES);
    expect(small.checks.map((check) => check.ok)).toEqual([true, true, true]);
    expect(small.ok).toBe(true);

    const result = await runProbe(targetFor(server.url, 'path: /bytes\ntimeout: 10s'), agent, now);
    expectFailure(result, 'body_too_large');
    expect(result.checks.at(-1)!.text).toMatch(
      new RegExp(
        `^body sent in more than ${MAX_BODY_PIECES} pieces \\(\\d+ bytes so far, 1\\.0 bytes a piece\\): greenlight stops reading an answer flushed a few bytes at a time$`,
      ),
    );
  });

  it('interim answers without end: body_too_large past MAX_INTERIM_ANSWERS, not a timeout (regression: each went through undici callbacks, seconds of CPU a probe)', async () => {
    const interim = Buffer.from('HTTP/1.1 102 Processing\r\n\r\n'.repeat(256));
    const server = createNetServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        const more = () => {
          while (!socket.destroyed && socket.write(interim));
        };
        socket.on('drain', more);
        more();
      });
    });
    const port = await listen(server);
    const result = await runProbe(targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 10s'), agent, now);
    expectFailure(result, 'body_too_large');
    expect(result.status).toBeUndefined();
    expect(result.error).toBe(
      `more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers before the final one: greenlight stops reading a target that sends without end`,
    );
  });

  it(`up to MAX_INTERIM_ANSWERS interim answers (103 Early Hints, 102 Processing) before the answer: read as usual`, async () => {
    const interim = 'HTTP/1.1 103 Early Hints\r\nlink: </app.css>; rel=preload\r\n\r\n' + 'HTTP/1.1 102 Processing\r\n\r\n'.repeat(MAX_INTERIM_ANSWERS - 1);
    const server = createNetServer((socket) =>
      socket.once('data', () => socket.write(`${interim}HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"status":"healthy"}`)),
    );
    const port = await listen(server);
    const result = await runProbe(
      targetFor(`http://127.0.0.1:${port}`, 'path: /api/health\ntimeout: 10s\nexpect:\n  json:\n    - path: $.status\n      equals: healthy'),
      agent,
      now,
    );
    expect({ ok: result.ok, status: result.status, reason: result.reason }).toEqual({ ok: true, status: 200, reason: undefined });
  });

  it('body_too_large: a declared content-length above the limit fails without reading the body', async () => {
    // The server announces 2 MB and never sends a byte: reading would hang until the timeout.
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2_000_000) });
      res.flushHeaders();
    });
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 10s\nmaxBodyBytes: 1MiB\nexpect:\n  json:\n    - path: $.status\n      exists: true');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'body_too_large');
    expect(result.checks).toEqual([
      { ok: true, text: 'status 200 in [2xx]' },
      { ok: false, text: 'body (2000000 bytes or more) larger than 1048576 bytes' },
    ]);
  });

  it('a declared content-length above the limit whose body already arrived leaves no unhandled stream error', async () => {
    // readBody destroys the unread body without an error; undici then emits RequestAbortedError
    // on a stream nobody listens to, which is an uncaught exception: it would crash the agent.
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2000' });
      res.end('x'.repeat(2000));
    });
    const result = await runProbe(targetFor(server.url, 'path: /api/health\nmaxBodyBytes: 1KiB'), agent, now);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expectFailure(result, 'body_too_large');
    const escaped = uncaught.splice(0).map(describeUncaught); // reported here rather than by afterEach
    expect(escaped).toEqual([]);
  });

  // [name, body bytes, send content-length?, expected reason or ok]
  const boundary: [string, number, boolean, ReasonCode | 'ok'][] = [
    ['exactly maxBodyBytes, chunked', 100, false, 'ok'],
    ['exactly maxBodyBytes, with content-length', 100, true, 'ok'],
    ['one byte over, chunked', 101, false, 'body_too_large'],
    ['one byte over, with content-length', 101, true, 'body_too_large'],
  ];
  it.each(boundary)('maxBodyBytes boundary: %s', async (_name, size, withLength, expected) => {
    const server = await httpServer((_req, res) => {
      res.writeHead(200, withLength ? { 'content-length': String(size) } : {});
      res.end('x'.repeat(size));
    });
    const result = await runProbe(targetFor(server.url, 'path: /api/health\nmaxBodyBytes: 100'), agent, now);
    if (expected === 'ok') {
      expect(result.ok).toBe(true);
      expect(result.reason).toBeUndefined();
    } else {
      expectFailure(result, expected);
      expect(result.checks.at(-1)).toEqual({ ok: false, text: `body (${size} bytes or more) larger than 100 bytes` });
    }
  });

  it('a body limit failure with a bad status is reported as status', async () => {
    const server = await httpServer((_req, res) => {
      res.writeHead(500, { 'content-length': String(5_000_000) });
      res.flushHeaders();
    });
    const result = await runProbe(targetFor(server.url, 'path: /api/health\ntimeout: 10s\nmaxBodyBytes: 1KiB'), agent, now);
    expectFailure(result, 'status');
    expect(result.checks[0]).toEqual({ ok: false, text: 'status 500 not in [2xx]' });
  });

  it('a redirect says where it leads, and an answer compressed unasked says so (regression: "status 302 not in [2xx]" and "found byte 0x1f" alone)', async () => {
    const server = await httpServer((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: 'https://login.example/sso?next=/api/health' }).end();
      else res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync('{"status":"healthy"}'));
    });
    const moved = await runProbe(targetFor(server.url, 'path: /moved'), agent, now);
    expectFailure(moved, 'status');
    expect(moved.checks[0]).toEqual({
      ok: false,
      text: 'status 302 not in [2xx]: a redirect to "https://login.example/sso?next=/api/health" (greenlight does not follow redirects: probe the address it ends at)',
    });
    const compressed = await runProbe(targetFor(server.url, 'path: /api/health\nexpect:\n  json:\n    - path: $.status\n      equals: healthy'), agent, now);
    expectFailure(compressed, 'invalid_json');
    expect(compressed.checks[1]!.text).toMatch(
      /; it came as content-encoding: gzip, which greenlight does not decode \(it sends no Accept-Encoding\): have the app answer this path uncompressed$/,
    );
  });

  it('HEAD: a large content-length on a bodiless answer is not a too-large body', async () => {
    // A HEAD answer carries the content-length of the GET it describes, but no body at all.
    const server = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(5_000_000) });
      res.end();
    });
    const result = await runProbe(targetFor(server.url, 'path: /download\nmethod: HEAD\nmaxBodyBytes: 1MiB'), agent, now);
    expect(result.reason).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.checks).toEqual([{ ok: true, text: 'status 200 in [2xx]' }]);
  });
});

describe('runProbe: invalid JSON', () => {
  let server: HttpServer;
  beforeEach(async () => {
    server = await httpServer((_req, res) => json(res, '{"status":"heal'));
  });

  it('invalid_json when the probe has JSON assertions', async () => {
    const target = targetFor(server.url, 'path: /api/health\nexpect:\n  json:\n    - path: $.status\n      in: [healthy, ok]');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'invalid_json');
    expect(result.checks).toHaveLength(2);
    expect(result.checks[0]).toEqual({ ok: true, text: 'status 200 in [2xx]' });
    expect(result.checks[1]!.ok).toBe(false);
    expect(result.checks[1]!.text).toMatch(/^body is not JSON: .+ \(15 bytes: ".+"\)$/);
    expect(result.extracted).toEqual({});
  });

  it('invalid_json when the probe only extracts numbers', async () => {
    const result = await runProbe(targetFor(server.url, 'path: /api/health\nextract:\n  cpu_percent: $.cpu.percent'), agent, now);
    expectFailure(result, 'invalid_json');
    expect(result.extracted).toEqual({});
  });

  it('ok when the probe neither asserts on nor extracts from the body (it is not parsed)', async () => {
    const result = await runProbe(targetFor(server.url, 'path: /api/health\nexpect:\n  status: [200]'), agent, now);
    expect(result.ok).toBe(true);
    expect(result.reason).toBeUndefined();
    expect(result.checks).toEqual([{ ok: true, text: 'status 200 in [200]' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// TLS

const HAS_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

describe('runProbe: tls', () => {
  it('tls: an https URL pointing at a plain-HTTP server', async () => {
    const server = await httpServer((_req, res) => json(res, { status: 'healthy' }));
    const target = targetFor(`https://127.0.0.1:${server.port}`, 'path: /api/health\ntimeout: 10s');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'tls');
    expect(result.error).toBeTruthy();
  });

  it.skipIf(!HAS_OPENSSL)('tls: an https server with a self-signed certificate (skipped when openssl is missing)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'greenlight-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'],
      { stdio: 'ignore' },
    );
    let answered = 0;
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
      answered++;
      json(res, { status: 'healthy' });
    });
    const port = await listen(server);
    const target = targetFor(`https://localhost:${port}`, 'path: /api/health\ntimeout: 10s');
    // undici resolves localhost; make sure it reaches the IPv4 listener by using a fixed lookup.
    const pinned = new Agent({ connect: { lookup: (_host, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]) } });
    cleanups.push(() => pinned.close());
    const result = await runProbe(target, pinned, now);
    expectFailure(result, 'tls');
    expect(result.error).toMatch(/self[- ]signed/i);
    expect(answered).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('classifyError', () => {
  const cases: [string, unknown, ReasonCode][] = [
    ['ENOTFOUND', { code: 'ENOTFOUND' }, 'dns'],
    ['EAI_AGAIN', { code: 'EAI_AGAIN' }, 'dns'],
    ['EAI_FAIL', { code: 'EAI_FAIL' }, 'dns'],
    ['ENOTFOUND under cause', { message: 'fetch failed', cause: { code: 'ENOTFOUND' } }, 'dns'],
    ['UND_ERR_SOCKET caused by ECONNRESET', { code: 'UND_ERR_SOCKET', cause: { code: 'ECONNRESET' } }, 'reset'],
    ['UND_ERR_SOCKET alone', { code: 'UND_ERR_SOCKET' }, 'reset'],
    ['ECONNRESET', { code: 'ECONNRESET' }, 'reset'],
    ['EPIPE', { code: 'EPIPE' }, 'reset'],
    ['ECONNREFUSED', { code: 'ECONNREFUSED' }, 'refused'],
    ['ECONNREFUSED under cause', { cause: { code: 'ECONNREFUSED' } }, 'refused'],
    ['ECONNREFUSED two causes deep', { code: 'X', cause: { code: 'Y', cause: { code: 'ECONNREFUSED' } } }, 'refused'],
    ['EHOSTUNREACH', { code: 'EHOSTUNREACH' }, 'refused'],
    ['ENETUNREACH', { code: 'ENETUNREACH' }, 'refused'],
    ['UND_ERR_HEADERS_TIMEOUT', { code: 'UND_ERR_HEADERS_TIMEOUT' }, 'timeout'],
    ['UND_ERR_BODY_TIMEOUT', { code: 'UND_ERR_BODY_TIMEOUT' }, 'timeout'],
    ['UND_ERR_CONNECT_TIMEOUT', { code: 'UND_ERR_CONNECT_TIMEOUT' }, 'timeout'],
    ['ETIMEDOUT under cause', { cause: { code: 'ETIMEDOUT' } }, 'timeout'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'tls'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'tls'],
    ['CERT_HAS_EXPIRED', { code: 'CERT_HAS_EXPIRED' }, 'tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'tls'],
    ['EPROTO', { code: 'EPROTO' }, 'tls'],
    ['self-signed under cause', { code: 'UND_ERR_SOCKET', cause: { code: 'SELF_SIGNED_CERT_IN_CHAIN' } }, 'tls'],
    ['the outermost known code wins', { code: 'UND_ERR_HEADERS_TIMEOUT', cause: { code: 'ECONNREFUSED' } }, 'timeout'],
    ['unknown code', { code: 'E_SOMETHING_NEW' }, 'reset'],
    ['no code', new Error('boom'), 'reset'],
    ['a real Error with a code', Object.assign(new Error('getaddrinfo ENOTFOUND blue.internal'), { code: 'ENOTFOUND' }), 'dns'],
    ['null', null, 'reset'],
    ['undefined', undefined, 'reset'],
    ['a string', 'socket hang up', 'reset'],
  ];

  it.each(cases)('%s', (_name, error, expected) => {
    expect(classifyError(error)).toBe(expected);
  });

  it('stops following a cyclic cause chain', () => {
    const error: { code: string; cause?: unknown } = { code: 'UND_ERR_SOCKET' };
    error.cause = error;
    expect(classifyError(error)).toBe('reset');
  });

  it('never throws, whatever the error looks like (a DOMException has a numeric code)', () => {
    const odd: unknown[] = [new DOMException('This operation was aborted', 'AbortError'), { code: 20 }, { cause: { code: 42 } }, { code: null }, 7];
    for (const error of odd) {
      expect(() => classifyError(error)).not.toThrow();
      expect(REASON_CODES).toContain(classifyError(error));
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('runProbe: request shape', () => {
  interface Seen {
    method: string;
    url: string;
    headers: IncomingHttpHeaders;
    body: string;
  }
  let seen: Seen[];
  let server: HttpServer;
  let answerStatus: number;

  beforeEach(async () => {
    seen = [];
    answerStatus = 200;
    server = await httpServer(async (req, res) => {
      const body = await readRequestBody(req);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      json(res, { status: 'healthy' }, answerStatus);
    });
  });

  it('POST with a YAML mapping body sends JSON with content-type application/json', async () => {
    const target = targetFor(
      server.url,
      `
      path: /api/orders/preview
      method: POST
      body:
        symbol: AAPL
        qty: 3
        tags: [probe, greenlight]
      `,
    );
    const result = await runProbe(target, agent, now);
    expect(result.ok).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/api/orders/preview');
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0]!.body)).toEqual({ symbol: 'AAPL', qty: 3, tags: ['probe', 'greenlight'] });
  });

  it('a string body is sent as is, with the content-type the probe gives', async () => {
    const target = targetFor(server.url, 'path: /api/echo\nmethod: PUT\nheaders:\n  Content-Type: text/plain\nbody: "ping"');
    const result = await runProbe(target, agent, now);
    expect(result.ok).toBe(true);
    expect(seen[0]!.method).toBe('PUT');
    expect(seen[0]!.body).toBe('ping');
    expect(seen[0]!.headers['content-type']).toBe('text/plain');
  });

  it('sends probe headers, environment headers and the user agent; the probe wins on a clash', async () => {
    const target = targetFor(server.url, 'path: /api/health\nheaders:\n  X-Probe: health-check\n  x-team: probe-team', {
      envYaml: 'headers:\n  X-Env: blue-env\n  X-Team: env-team',
    });
    const result = await runProbe(target, agent, now);
    expect(result.ok).toBe(true);
    const headers = seen[0]!.headers;
    expect(headers['x-probe']).toBe('health-check');
    expect(headers['x-env']).toBe('blue-env');
    expect(headers['x-team']).toBe('probe-team');
    expect(headers['user-agent']).toMatch(/^greenlight\//);
    expect(headers.authorization).toBeUndefined();
    expect(seen[0]!.method).toBe('GET');
  });

  it('credentials in the environment URL become a Basic authorization header and never appear in the result', async () => {
    const url = `http://user:s3cret@127.0.0.1:${server.port}/base`;
    const target = targetFor(url, 'path: /api/health\nexpect:\n  json:\n    - path: $.status\n      equals: healthy');
    expect(target.origin).toBe(`http://127.0.0.1:${server.port}`);
    const ok = await runProbe(target, agent, now);
    expect(ok.ok).toBe(true);
    expect(seen[0]!.url).toBe('/base/api/health');
    expect(seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('user:s3cret').toString('base64')}`);
    expect(JSON.stringify(ok)).not.toContain('s3cret');

    answerStatus = 500;
    const failed = await runProbe(target, agent, now);
    expectFailure(failed, 'status');
    expect(JSON.stringify(failed)).not.toContain('s3cret');
    expect(JSON.stringify(failed)).not.toContain(Buffer.from('user:s3cret').toString('base64'));
  });

  it('credentials never appear in the result of a transport failure either', async () => {
    const port = await closedPort();
    const target = targetFor(`http://user:s3cret@127.0.0.1:${port}`, 'path: /api/health');
    const result = await runProbe(target, agent, now);
    expectFailure(result, 'refused');
    expect(result.error).toBeTruthy();
    expect(JSON.stringify(result)).not.toContain('s3cret');
    expect(JSON.stringify(result)).not.toContain('user:');
  });

  it('percent-encoded credentials are decoded before encoding the header', async () => {
    const target = targetFor(`http://ops%40desk:p%3Ass@127.0.0.1:${server.port}`, 'path: /api/health');
    await runProbe(target, agent, now);
    expect(seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('ops@desk:p:ss').toString('base64')}`);
  });

  it('an explicit authorization header is not replaced by URL credentials', async () => {
    const target = targetFor(`http://user:s3cret@127.0.0.1:${server.port}`, 'path: /api/health\nheaders:\n  Authorization: Bearer token-1');
    await runProbe(target, agent, now);
    expect(seen[0]!.headers.authorization).toBe('Bearer token-1');
  });
});

describe('runProbe: its owner cancels it', () => {
  let server: HttpServer;
  let requests: number;
  /** Until the hanging server has seen `count` requests. */
  const received = (count: number) => vi.waitFor(() => expect(requests).toBeGreaterThanOrEqual(count), { timeout: 10_000, interval: 5 });
  beforeEach(async () => {
    requests = 0;
    server = await httpServer(() => {
      requests++; // and hangs
    });
  });

  it('a cancel while the probe hangs ends it as a timeout, before its deadline', async () => {
    const canceller = new ProbeCanceller();
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 60s');
    const running = runProbe(target, agent, now, canceller);
    await received(1);
    canceller.cancel();
    const result = await running;
    expectFailure(result, 'timeout');
    expect(result.error).toBe('cancelled: agent stopping');
  });

  it('a probe started under a cancelled canceller ends at once, without a request', async () => {
    const canceller = new ProbeCanceller();
    canceller.cancel();
    const result = await runProbe(targetFor(server.url, 'path: /api/health\ntimeout: 60s'), agent, now, canceller);
    expectFailure(result, 'timeout');
    expect(result.error).toBe('cancelled: agent stopping');
    expect(requests).toBe(0);
  });

  it('one cancel ends every probe in flight under it, and none under another canceller', async () => {
    const canceller = new ProbeCanceller();
    const other = new ProbeCanceller();
    const target = targetFor(server.url, 'path: /api/health\ntimeout: 60s');
    const cancelled = [1, 2, 3].map(() => runProbe(target, agent, now, canceller));
    let otherSettled = false;
    const kept = runProbe({ ...target, timeoutMs: 1_500 }, agent, now, other).then((result) => ((otherSettled = true), result));
    await received(4);
    canceller.cancel();
    for (const result of await Promise.all(cancelled)) expect(result.error).toBe('cancelled: agent stopping');
    expect(otherSettled).toBe(false);
    expect((await kept).error).toBe('no complete answer within 1500ms');
  });

  it('following a signal: an abort cancels; once released, the signal holds no listener of it', async () => {
    const shutdown = new AbortController();
    const following = ProbeCanceller.following(shutdown.signal);
    const running = runProbe(targetFor(server.url, 'path: /api/health\ntimeout: 60s'), agent, now, following);
    await received(1);
    shutdown.abort();
    expect((await running).error).toBe('cancelled: agent stopping');

    const longLived = new AbortController();
    const released = ProbeCanceller.following(longLived.signal);
    released.release();
    longLived.abort();
    expect(released.cancelled).toBe(false);
    expect(ProbeCanceller.following(AbortSignal.abort()).cancelled).toBe(true);
  });
});

describe('runProbe: connection reuse', () => {
  it('20 sequential probes to one server reuse keep-alive connections', async () => {
    let connections = 0;
    const server = await httpServer((_req, res) => json(res, { status: 'healthy', padding: 'x'.repeat(2_000) }));
    server.server.on('connection', () => connections++);
    const target = targetFor(server.url, 'path: /api/health\nexpect:\n  json:\n    - path: $.status\n      equals: healthy');
    for (let i = 0; i < 20; i++) {
      const result = await runProbe(target, agent, now);
      expect(result.ok).toBe(true);
    }
    expect(connections).toBeGreaterThanOrEqual(1);
    expect(connections).toBeLessThanOrEqual(3);
  });

  it('a probe that times out waiting for a connection is never sent, and the connection stays open for the next', async () => {
    // One connection, held by a first probe until the test lets it answer; a second probe waits
    // for it in undici's queue and times out there. Its request then reaches the connection
    // unsent: dropping it must not close the connection (it used to: each such probe cost a
    // reconnect, which under overload turned into timeouts of healthy targets).
    const paths: string[] = [];
    let connections = 0;
    let release: (() => void) | undefined;
    const server = await httpServer((req, res) => {
      paths.push(req.url!);
      if (req.url === '/hold') release = () => json(res, { status: 'healthy' });
      else json(res, { status: 'healthy' });
    });
    server.server.on('connection', () => connections++);
    const single = new Agent({ connections: 1 });
    cleanups.push(() => single.close());
    const held = runProbe(targetFor(server.url, 'path: /hold\ntimeout: 60s'), single, now);
    await vi.waitFor(() => expect(release).toBeDefined(), { timeout: 10_000, interval: 5 });
    const queued = await runProbe(targetFor(server.url, 'path: /queued\ntimeout: 50ms'), single, now);
    expectFailure(queued, 'timeout');
    release!();
    expect((await held).ok).toBe(true);
    const next = await runProbe(targetFor(server.url, 'path: /next'), single, now);
    expect(next.ok).toBe(true);
    expect(paths).toEqual(['/hold', '/next']);
    expect(connections).toBe(1);
  });
});

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { pairConfig, waitUntil } from '../helpers/agent-harness.js';
import { tempDir, writeTempFile } from '../helpers/tools.js';
import { BIN, cli, ROOT } from '../helpers/cli.js';



let blue: Simulator;
let green: Simulator;
beforeAll(async () => {
  blue = await startSimulator({ name: 'blue' });
  green = await startSimulator({ name: 'green' });
});
afterAll(async () => {
  await blue.close();
  await green.close();
});

describe('greenlight validate', () => {
  it('accepts the default config and says what it holds', async () => {
    const run = await cli(['validate']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('config/greenlight.yaml is valid: 4 probes on blue and green (blue live');
  });

  it('exits 2 naming the key path and line of every problem', async () => {
    const file = writeTempFile('bad.yaml', pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:2').replace('every: 200ms', 'every: 5x').replace('    path: /api/health', '    path: /api/health\n    evry: 5s'));
    const run = await cli(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid configuration (2 problems)');
    expect(run.stderr).toContain('probeDefaults.every: "5x" is not a duration such as 500ms, 5s or 2m (line 9)');
    expect(run.stderr).toContain('probes[0].evry: unknown key; did you mean every? (line ');
  });

  it('exits 2 for a missing file', async () => {
    const run = await cli(['validate', '/nonexistent/greenlight.yaml']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot read config /nonexistent/greenlight.yaml: file not found');
  });
});

describe('greenlight schema', () => {
  it('prints the committed JSON Schema', async () => {
    const run = await cli(['schema']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(readFileSync(new URL('../../config/greenlight.schema.json', import.meta.url), 'utf8')));
  });
});

describe('greenlight check', () => {
  const configFile = () => writeTempFile('pair.yaml', pairConfig(blue.url, green.url));

  it('exits 0 with a table when every probe passes', async () => {
    const run = await cli(['check', '--env', 'green', '--config', configFile()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^PROBE\s+RESULT\s+STATUS\s+LATENCY\s+DETAIL/);
    expect(run.stdout).toMatch(/health\s+ok\s+200/);
    expect(run.stdout).toContain('✅ green: all 2 probes pass');
  });

  it('exits 1 and names the failing figure, as JSON with --json', async () => {
    green.setFaults({ emptyUniverse: true });
    try {
      const run = await cli(['check', '--env', 'green', '--json', '--config', configFile()]);
      expect(run.code).toBe(1);
      const report = JSON.parse(run.stdout);
      expect(report).toMatchObject({ env: 'green', ok: false });
      const universe = report.results.find((r: { probe: string }) => r.probe === 'universe');
      expect(universe).toMatchObject({ ok: false, reason: 'assertion', status: 200 });
      expect(universe.checks).toContainEqual({ ok: false, text: '$.universe ([]) is empty' });
      expect(report.results.find((r: { probe: string }) => r.probe === 'health').ok).toBe(true);
    } finally {
      green.resetFaults();
    }
  });

  it('exits 1 when the environment refuses connections', async () => {
    const file = writeTempFile('down.yaml', pairConfig(blue.url, 'http://127.0.0.1:1'));
    const run = await cli(['check', '--env', 'green', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('refused');
    expect(run.stdout).toContain('❌ green: 2 of 2 probes fail');
  });

  it.each([
    [['check'], 'check needs --env NAME'],
    [['check', '--env', 'purple'], '--env purple is not an environment of config/greenlight.yaml; choose blue or green'],
    [['check', '--env', 'blue', '--bogus'], "Unknown option '--bogus'"],
    [['frobnicate'], 'unknown command "frobnicate"'],
  ])('exits 2 for %j', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });
});

describe('greenlight run', () => {
  it('exits 2 on a bad config and starts nothing', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1_000);
    const file = writeTempFile('bad.yaml', pairConfig(blue.url, green.url).replace('127.0.0.1:0', `127.0.0.1:${port}`).replace('every: 200ms', 'every: soon'));
    const run = await cli(['run', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('probeDefaults.every: "soon" is not a duration');
    expect(await isListening(port)).toBe(false);
  });

  it('exits 1 with a clear message when the data directory cannot be used', async () => {
    const notADirectory = writeTempFile('plain-file', 'x');
    const file = writeTempFile('run.yaml', pairConfig(blue.url, green.url).replace(/^dataDir: .*$/m, `dataDir: ${notADirectory}/state`));
    const run = await cli(['run', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain(`cannot open the state database ${notADirectory}/state/greenlight.db`);
    expect(run.stdout + run.stderr).toContain('Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops cleanly on %s within a few seconds, even with probes hanging', async (signal) => {
    const port = 20_000 + Math.floor(Math.random() * 1_000);
    const file = writeTempFile('run.yaml', pairConfig(blue.url, 'http://127.0.0.1:1').replace('127.0.0.1:0', `127.0.0.1:${port}`).replace('timeout: 500ms', 'timeout: 30s'));
    blue.setFaults({ hang: true });
    const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env: { PATH: process.env.PATH } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await waitUntil(() => output.includes('agent.started'), 'the agent to start');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const stoppedAt = Date.now();
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(5_000);
      expect(output).toContain(`received ${signal}, stopping`);
      expect(output).toContain('"msg":"stopped"');
      expect(await isListening(port)).toBe(false);
    } finally {
      blue.resetFaults();
      child.kill('SIGKILL');
    }
  });
});

describe('secrets', () => {
  /**
   * Every secret the agent can hold, as known values. Path and query secrets are as long as real
   * ones (Slack's and Discord's webhook paths, PagerDuty's 32-character key).
   */
  const SECRETS = {
    ADMIN_TOKEN: 'adm-7f3c9e21d4b84a0f9c1e6b2d',
    ROLLBACK_TOKEN: 'rbk-5e8a1c47f02d4b9e8a3c6f10',
    STREAM_TOKEN: 'str-9b2d6f18c3e74a50b1d8e4f7',
    API_TOKEN: 'tok-hunter2-header-secret',
    blueUrlPassword: 'blue-pass-3c7e91f2a6d8',
    greenUrlPassword: 'green-pass-8d1f4b6e2c9a',
    slackPath: 'XsLaCkS3cr3tWebh00kPath7Q',
    discordPath: 'dIsCoRdS3cr3tWebh00kTokenZ9',
    PAGERDUTY_ROUTING_KEY: 'R0UT1NGk3yPagerDutyS3cr3t0123456',
    alertUrlPassword: 'am-pass-6a2f9d3e1b7c',
    alertQueryToken: 'am-query-4e8b2d7f1a9c',
    RENDER_API_KEY: 'rnd_S3cr3tR3nd3rAp1K3y9f8e7d',
    trafficUrlPassword: 'tw-pass-2b9e6c1f8d3a',
    trafficPath: 'TrAfF1cS3cr3tHookPathK4',
  };

  /**
   * Stands in for Slack, Discord, PagerDuty, the Alertmanager webhook, the traffic webhook and
   * Render, and is as unhelpful as a service can be: while `failing`, it answers 500 (Render: 401)
   * with a body that echoes the Authorization header, the URL and the body it got, secrets included.
   */
  async function startEchoServices() {
    const received: string[] = [];
    const state = { failing: true };
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        // Secrets first: error messages keep only the start of a body.
        const echo = JSON.stringify({ authorization: req.headers.authorization ?? null, url: req.url, body: Buffer.concat(chunks).toString('utf8').replace(/^.*?"routing_key":/, '"routing_key":'), headers: req.headers });
        received.push(req.url ?? '');
        if (req.url?.startsWith('/render')) return void res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `unauthorized: ${echo}` }));
        if (state.failing) return void res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error handling ${echo}`);
        if (req.url?.startsWith('/discord')) return void res.writeHead(204).end();
        if (req.url?.startsWith('/pd')) return void res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success","message":"Event processed","dedup_key":"k"}');
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { origin, received, state, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
  }

  it.each(['webhook', 'render'] as const)('never show in logs, events, the stream, the API, metrics or the database (%s traffic, receivers failing then delivering)', async (traffic) => {
    const echo = await startEchoServices();
    const port = 21_000 + Math.floor(Math.random() * 1_000);
    const dataDir = tempDir('greenlight-secrets-');
    const env: Record<string, string> = {
      PATH: process.env.PATH!,
      ADMIN_TOKEN: SECRETS.ADMIN_TOKEN,
      ROLLBACK_TOKEN: SECRETS.ROLLBACK_TOKEN,
      STREAM_TOKEN: SECRETS.STREAM_TOKEN,
      API_TOKEN: SECRETS.API_TOKEN,
      BLUE_URL: blue.url.replace('http://', `http://ops:${SECRETS.blueUrlPassword}@`),
      GREEN_URL: green.url.replace('http://', `http://ops:${SECRETS.greenUrlPassword}@`),
      SLACK_WEBHOOK_URL: `http://${echo.origin}/slack/services/T0123ABCD/B0123ABCD/${SECRETS.slackPath}`,
      DISCORD_WEBHOOK_URL: `http://${echo.origin}/discord/api/webhooks/112233445566778899/${SECRETS.discordPath}`,
      PAGERDUTY_ROUTING_KEY: SECRETS.PAGERDUTY_ROUTING_KEY,
      PAGERDUTY_URL: `http://${echo.origin}/pd/v2/enqueue`,
      ALERT_WEBHOOK_URL: `http://alertmanager:${SECRETS.alertUrlPassword}@${echo.origin}/am/hook?token=${SECRETS.alertQueryToken}`,
      TRAFFIC_WEBHOOK_URL: `http://switch:${SECRETS.trafficUrlPassword}@${echo.origin}/traffic/${SECRETS.trafficPath}`,
      RENDER_API_KEY: SECRETS.RENDER_API_KEY,
    };
    const trafficBlock =
      traffic === 'webhook'
        ? 'traffic: { type: webhook, url: "${TRAFFIC_WEBHOOK_URL}", retries: 0 }'
        : `traffic: { type: render, apiKey: "\${RENDER_API_KEY}", services: { blue: srv-blue1, green: srv-green1 }, domain: app.example.com, baseUrl: "http://${echo.origin}/render", retries: 0, verifyTimeout: 0s }`;
    const text = pairConfig('${BLUE_URL}', '${GREEN_URL}', {
      extra: `api: { adminToken: "\${ADMIN_TOKEN}", rollbackToken: "\${ROLLBACK_TOKEN}", streamToken: "\${STREAM_TOKEN}" }
${trafficBlock}
alerts:
  receivers:
    - { type: slack, url: "\${SLACK_WEBHOOK_URL}", retries: 1 }
    - { type: discord, url: "\${DISCORD_WEBHOOK_URL}", retries: 1 }
    - { type: pagerduty, routingKey: "\${PAGERDUTY_ROUTING_KEY}", url: "\${PAGERDUTY_URL}", retries: 1, severities: [warning, critical] }
    - { type: webhook, name: alertmanager, url: "\${ALERT_WEBHOOK_URL}", retries: 1 }
actions:
  rollback: { type: rollback }
  safe-mode: { type: flags }
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    keepFiringFor: 300ms
    actions: [rollback, safe-mode, page]
`,
    })
      .replace('127.0.0.1:0', `127.0.0.1:${port}`)
      .replace(/^dataDir: .*$/m, `dataDir: ${dataDir}`)
      .replace('    path: /api/health\n', '    path: /api/health\n    headers:\n      authorization: Bearer ${API_TOKEN}\n');
    const child = spawn(process.execPath, [BIN, 'run', '--config', writeTempFile('secret.yaml', text)], { cwd: ROOT, env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const base = `http://127.0.0.1:${port}`;
    const answers: string[] = [];
    const streamed: string[] = [];
    try {
      await waitUntil(() => output.includes('agent.started'), 'the agent to start', 15_000);
      await waitUntil(async () => (await fetch(`${base}/readyz`)).status === 200, 'the first probe round');
      const stream = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?since=0`, { headers: { authorization: `Bearer ${SECRETS.STREAM_TOKEN}` } });
      stream.on('message', (data) => streamed.push(String(data)));
      await new Promise((resolve, reject) => (stream.once('open', resolve), stream.once('error', reject)));
      const types = () => streamed.map((message) => (JSON.parse(message) as { type: string }).type);

      // The incident: receivers fail (echoing what they got), the rollback fails (render) or not.
      blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => types().filter((t) => t === 'alert.failed').length >= 4, 'every receiver to fail', 20_000);
      await waitUntil(() => types().includes('action.failed'), 'the rollback to fail', 20_000);
      // Then they recover, and the resolved notices are delivered.
      echo.state.failing = false;
      blue.resetFaults();
      await waitUntil(() => types().filter((t) => t === 'alert.sent').length >= 4, 'every receiver to deliver', 20_000);

      // Bad tokens, wrong roles, near misses and the stream without its token.
      const call = async (method: string, path: string, token: string | undefined, body?: unknown) => {
        const response = await fetch(`${base}${path}`, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
        const answer = await response.text();
        answers.push(answer);
        return response.status;
      };
      expect(await call('POST', '/api/v1/rollback', `${SECRETS.ROLLBACK_TOKEN}x`, { reason: 'x' })).toBe(401);
      expect(await call('POST', '/api/v1/rollback', SECRETS.ROLLBACK_TOKEN.slice(0, -1), { reason: 'x' })).toBe(401);
      expect(await call('PUT', '/api/v1/flags', SECRETS.ROLLBACK_TOKEN, { set: { READ_ONLY_MODE: true }, reason: 'x' })).toBe(403);
      expect(await call('PUT', '/api/v1/flags', SECRETS.STREAM_TOKEN, { set: { READ_ONLY_MODE: true }, reason: 'x' })).toBe(401);
      expect(await call('PUT', '/api/v1/flags', SECRETS.ADMIN_TOKEN, { set: { ALPHASTACK_PROTECTION: false }, reason: `set by ${'someone'}` })).toBe(409);
      expect(await call('PUT', '/api/v1/flags', SECRETS.ADMIN_TOKEN, { set: { NO_SUCH_FLAG: true }, reason: 'x' })).toBe(400);
      expect(await call('POST', '/api/v1/flags/emergency-rollback', SECRETS.ADMIN_TOKEN.toUpperCase(), {})).toBe(401);
      const unauthorized = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?token=${SECRETS.STREAM_TOKEN}x`);
      answers.push(await new Promise<string>((resolve) => unauthorized.once('unexpected-response', (_req, res) => { let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => resolve(`${res.statusCode} ${body}`)); })));
      expect(answers.at(-1)).toMatch(/^401 /);

      for (const path of ['/api/v1/state', '/metrics', '/api/v1/flags', '/readyz']) answers.push(await (await fetch(`${base}${path}`)).text());
      for (let since = 0; ; ) {
        // api.streamToken covers the history as well as the stream.
        const page = (await (await fetch(`${base}/api/v1/events?since=${since}&limit=1000`, { headers: { authorization: `Bearer ${SECRETS.STREAM_TOKEN}` } })).json()) as { events: unknown[]; next: number };
        answers.push(JSON.stringify(page));
        if (page.events.length < 1_000) break;
        since = page.next;
      }
      stream.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));

      // The services did get the secrets (so they were in play), and the echoes were noticed.
      expect(echo.received.some((url) => url.includes(SECRETS.slackPath))).toBe(true);
      expect(types()).toEqual(expect.arrayContaining(['rule.firing', 'action.failed', 'alert.failed', 'alert.sent', 'flag.changed', 'flag.rejected']));
      const database = ['greenlight.db', 'greenlight.db-wal'].map((name) => (existsSync(join(dataDir, name)) ? readFileSync(join(dataDir, name)).toString('latin1') : '')).join('\n');
      expect(database).toContain('universe-failing');
      const places = { 'the log': output, 'the stream': streamed.join('\n'), 'API answers': answers.join('\n'), 'the database': database };
      const leaks: string[] = [];
      for (const [name, secret] of Object.entries(SECRETS)) {
        for (const form of new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64').slice(0, 16)])) {
          for (const [place, text] of Object.entries(places)) if (text.includes(form)) leaks.push(`${name} (${form}) in ${place}`);
        }
      }
      expect(leaks).toEqual([]);
      expect(answers.join('\n')).toContain('redacted@127.0.0.1');
    } finally {
      blue.resetFaults();
      child.kill('SIGKILL');
      await echo.close();
    }
  }, 60_000);
});

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

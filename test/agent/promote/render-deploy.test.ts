/**
 * The Render deploy path and env diff against a local fake of Render's documented API: deploy
 * statuses from created to live (or build_failed), 429 answers with Ratelimit-Reset, env-var
 * listing by cursor pages. Values of environment variables must never come out.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { startAgent } from '../../helpers/agent-harness.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';
import { writeTempFile } from '../../helpers/tools.js';
import { cli } from '../../helpers/cli.js';

const KEY = 'rnd_FakeRenderKey0123456789abcdef';
const BLUE = 'srv-blue0000000000000001';
const GREEN = 'srv-green000000000000002';
const SECRET_VALUE = 'postgres://user:hunter2-very-secret@db/alphastack';

/** Render's deploy and env-var endpoints, as documented, with scripted statuses and 429s. */
class FakeRender {
  calls: string[] = [];
  /** Statuses a new deploy goes through, one per read. */
  script = ['created', 'build_in_progress', 'update_in_progress', 'live'];
  /** 429s to answer first, per `METHOD path`. */
  limited = new Map<string, number>();
  envVars: Record<string, Record<string, string>> = {};
  deploys = new Map<string, { id: string; reads: number; script: string[] }>();

  handle(method: string, url: URL, auth: string | undefined): { status: number; body?: unknown; headers?: Record<string, string> } {
    const key = `${method} ${url.pathname}`;
    this.calls.push(key);
    if (auth !== `Bearer ${KEY}`) return { status: 401, body: { id: 'unauthorized', message: 'Authorization information is missing or invalid.' } };
    const limit = this.limited.get(key) ?? 0;
    if (limit > 0) {
      this.limited.set(key, limit - 1);
      return {
        status: 429,
        headers: { 'ratelimit-limit': '30', 'ratelimit-remaining': '0', 'ratelimit-reset': '1' },
        body: { id: 'rate_limited', message: 'rate limit exceeded' },
      };
    }
    let match = /^\/v1\/services\/([^/]+)\/deploys$/.exec(url.pathname);
    if (match && method === 'POST') {
      const id = `dep-${String(this.deploys.size + 1).padStart(20, '0')}`;
      this.deploys.set(id, { id, reads: 0, script: [...this.script] });
      return { status: 201, body: deploy(id, this.script[0]!) };
    }
    match = /^\/v1\/services\/([^/]+)\/deploys\/([^/]+)$/.exec(url.pathname);
    if (match && method === 'GET') {
      const found = this.deploys.get(match[2]!);
      if (!found) return { status: 404, body: { id: 'not_found', message: 'deploy not found' } };
      found.reads = Math.min(found.reads + 1, found.script.length - 1);
      return { status: 200, body: deploy(found.id, found.script[found.reads]!) };
    }
    match = /^\/v1\/services\/([^/]+)\/env-vars$/.exec(url.pathname);
    if (match && method === 'GET') {
      const vars = Object.entries(this.envVars[match[1]!] ?? {});
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const cursor = url.searchParams.get('cursor');
      const from = cursor === null ? 0 : vars.findIndex(([k]) => k === cursor) + 1;
      return { status: 200, body: vars.slice(from, from + limit).map(([k, value]) => ({ cursor: k, envVar: { key: k, value } })) };
    }
    return { status: 404, body: { id: 'not_found', message: 'Not Found' } };
  }
}

function deploy(id: string, status: string) {
  return {
    id,
    status,
    trigger: 'api',
    commit: { id: 'a1b2c3d4e5f6', message: 'release 3.2.1', createdAt: '2026-11-27T21:00:00Z' },
    createdAt: '2026-11-27T21:01:00Z',
    updatedAt: '2026-11-27T21:01:00Z',
    finishedAt: null,
  };
}

const fake = new FakeRender();
let server: Server;
let renderUrl: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = fake.handle(req.method!, new URL(req.url!, 'http://render.test'), req.headers.authorization);
      res
        .writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', ...answer.headers })
        .end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  renderUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
// Every test counts the calls it caused, whichever ran before it.
beforeEach(() => {
  fake.calls = [];
  fake.limited.clear();
});

const renderBlock = () => `render: { apiKey: ${KEY}, services: { blue: ${BLUE}, green: ${GREEN} }, baseUrl: ${renderUrl}, pollInterval: 50ms }\n`;

describe('promote --deploy (Render)', () => {
  let blue: Simulator;
  let green: Simulator;
  let agent: Agent;
  let events: GreenlightEvent[];

  beforeAll(async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    const text = promoteConfig(
      blue.url,
      green.url,
      `${FAST_GATES.replace('watch: 1s', 'watch: 200ms').replace('load: { rps: 20, duration: 1s, maxP95: 2s }', 'load: { enabled: false }')}deployWindows: { enabled: false }\n${renderBlock()}`,
    );
    ({ agent, events } = await startAgent(parseAgentConfig(text), { processMetrics: false, ready: true }));
  });
  afterAll(async () => {
    await agent?.close();
    await Promise.all([blue?.close(), green?.close()]);
  });
  async function promote(to: string): Promise<Record<string, unknown>[]> {
    const response = await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ to, deploy: true }),
    });
    return (await response.text())
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('deploys the idle service, follows it to live through a 429, then gates and promotes', async () => {
    expect(agent.activeEnvironment).toBe('blue');
    const stepsBefore = events.filter((e) => e.type === 'promote.step').length;
    fake.script = ['created', 'build_in_progress', 'update_in_progress', 'live'];
    fake.limited.set(`POST /v1/services/${GREEN}/deploys`, 1);
    const lines = await promote('green');
    expect(lines.at(-1)).toMatchObject({ type: 'result', ok: true, live: 'green' });
    const progress = lines.filter((l) => l.type === 'progress' && l.step === 'deploy').map((l) => (l.data as { status: string }).status);
    expect(progress).toEqual(['created', 'build_in_progress', 'update_in_progress', 'live']);
    // The 429 was waited out and the POST sent again; only green's service was deployed.
    expect(fake.calls.filter((c) => c === `POST /v1/services/${GREEN}/deploys`)).toHaveLength(2);
    expect(fake.calls.some((c) => c.includes(BLUE))).toBe(false);
    const steps = events.filter((e) => e.type === 'promote.step').slice(stepsBefore);
    const step = steps.find((e) => e.type === 'promote.step' && e.data.step === 'deploy')!;
    expect(step.data).toMatchObject({ ok: true, figures: { service: GREEN, statuses: ['created', 'build_in_progress', 'update_in_progress', 'live'] } });
    expect(steps.map((e) => (e.data as { step: string }).step)).toEqual(['window', 'deploy', 'preflight', 'probes', 'switch', 'verify', 'watch']);
    // Blue live again for whichever test runs next (a manual rollback: the gates are for promotions).
    expect((await agent.manualRollback('test: back to blue', 'test')).outcome).toBe('succeeded');
  });

  it('a deploy that fails to build stops the promotion before any gate: traffic stays', async () => {
    fake.script = ['created', 'build_in_progress', 'build_failed'];
    const live = agent.activeEnvironment;
    const lines = await promote(live === 'blue' ? 'green' : 'blue');
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'deploy', switched: false, live });
    expect(String(lines.at(-1)!.reason)).toMatch(/ended build_failed \(created → build_in_progress → build_failed\)/);
    expect(JSON.stringify(lines)).not.toContain(KEY);
  });
});

describe('greenlight env diff (built CLI)', () => {
  const config = () => writeTempFile('render.yaml', promoteConfig('http://127.0.0.1:1', 'http://127.0.0.1:2', renderBlock()));

  it('names what one service has and the other lacks, over several pages, never a value (exit 1)', async () => {
    const shared = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`SHARED_${String(i).padStart(3, '0')}`, `value-${i}`]));
    fake.envVars = {
      [BLUE]: { ...shared, DATABASE_URL: SECRET_VALUE, LEGACY_FLAG: 'x' },
      [GREEN]: { ...shared, DATABASE_URL: SECRET_VALUE, NEW_CACHE_URL: SECRET_VALUE },
    };
    fake.limited.set(`GET /v1/services/${GREEN}/env-vars`, 1);
    const run = await cli(['env', 'diff', '--config', config()]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`❌ environment drift between blue (${BLUE}, 132 variables) and green (${GREEN}, 132 variables)`);
    expect(run.stdout).toContain('only on blue: LEGACY_FLAG');
    expect(run.stdout).toContain('only on green: NEW_CACHE_URL');
    expect(`${run.stdout}${run.stderr}`).not.toContain('hunter2');
    expect(`${run.stdout}${run.stderr}`).not.toContain('value-');
    expect(fake.calls.filter((c) => c === `GET /v1/services/${BLUE}/env-vars`)).toHaveLength(2);
  });

  it('exit 0 when the names match; --json lists them; exit 2 without Render configured', async () => {
    fake.envVars = { [BLUE]: { A: '1', B: '2' }, [GREEN]: { B: '3', A: '4' } };
    const same = await cli(['env', 'diff', '--json', '--config', config()]);
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ same: true, shared: 2, environments: { blue: { only: [] }, green: { only: [] } } });
    const unconfigured = await cli(['env', 'diff', '--config', writeTempFile('plain.yaml', promoteConfig('http://127.0.0.1:1', 'http://127.0.0.1:2'))]);
    expect(unconfigured.code).toBe(2);
    expect(unconfigured.stderr).toContain('set RENDER_API_KEY');
  });
});

import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentState } from '../../agent/http/state-view.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { hasTool, promtoolCheckMetrics, tempDir } from '../helpers/tools.js';
import { pairConfig, startAgent, startPair, useSimulatorPair, waitUntil, type Harness } from '../helpers/agent-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const seriesOf = (h: Harness, probe: string, env: string) => h.agent.state().series.find((s) => s.probe === probe && s.env === env)!;

describe('the agent', () => {
  it('becomes ready after the first probe round and serves health, state and metrics', async () => {
    harness = await startPair();
    const h = harness;
    // No API token in this config: the start says so, loudly (regression: a silent start with every control off).
    expect(h.events[0]).toMatchObject({
      id: 1,
      type: 'agent.started',
      severity: 'warning',
      env: null,
      probe: null,
      rule: null,
      data: { activeEnvironment: 'blue', probes: 2, series: 4, controls: 'none' },
    });
    expect(h.events[0]!.message).toContain('CONTROLS DISABLED');
    expect(h.logs.some((line) => line.includes('"level":40') && line.includes('controls disabled: api.adminToken and api.rollbackToken are not set'))).toBe(
      true,
    );
    await waitUntil(() => h.agent.ready, 'the first probe round');

    expect(await (await fetch(`${h.base}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${h.base}/readyz`);
    expect(ready.status).toBe(200);

    const state = (await (await fetch(`${h.base}/api/v1/state`)).json()) as AgentState;
    expect(state.activeEnvironment).toBe('blue');
    expect(state.environments.blue).toMatchObject({
      url: h.blue.url,
      active: true,
      up: true,
      health: { healthy: true, failing: [], unknown: [] },
      rolledBackFromAt: null,
    });
    const health = state.series.find((s) => s.probe === 'health' && s.env === 'blue')!;
    expect(health.up).toBe(true);
    expect(health.windows['1m']!.count).toBeGreaterThan(0);
    expect(health.extracted.memory_percent!.value).toBe(41.5);

    const metrics = await fetch(`${h.base}/metrics`);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await metrics.text();
    expect(text).toContain('greenlight_probe_success{probe="health",env="blue"} 1');
    expect(text).toContain('greenlight_active_environment{env="blue"} 1');
    expect(text).toContain('process_cpu_seconds_total');
    if (hasTool('promtool')) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });

    const open = await fetch(`${h.base}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(open.headers.get('content-type')).toContain('application/openmetrics-text');
    expect((await open.text()).endsWith('# EOF\n')).toBe(true);

    // What a Prometheus sends: its preferences weighed, gzip asked for (regression: q was ignored, gzip never given).
    const scrape = (accept: string) =>
      new Promise<{ type: string; encoding: string | undefined; body: string }>((resolve, reject) => {
        const req = httpRequest(`${h.base}/metrics`, { headers: { accept, 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              type: String(res.headers['content-type']),
              encoding: res.headers['content-encoding'],
              body: gunzipSync(Buffer.concat(chunks)).toString(),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const prometheus = await scrape(
      'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
    );
    expect(prometheus).toMatchObject({ type: expect.stringContaining('application/openmetrics-text'), encoding: 'gzip' });
    expect(prometheus.body.endsWith('# EOF\n')).toBe(true);
    expect((await scrape('application/openmetrics-text;q=0, text/plain')).type).toContain('text/plain');
    expect((await scrape('text/plain;q=0.5, APPLICATION/OPENMETRICS-TEXT;q=0.1')).type).toContain('text/plain');
    expect((await scrape('APPLICATION/OPENMETRICS-TEXT')).type).toContain('application/openmetrics-text');
  });

  it('answers 404 and 405 with the routes it has', async () => {
    harness = await startPair();
    const missing = await fetch(`${harness.base}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toContain('GET /metrics');
    const post = await fetch(`${harness.base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it.each([
    ['an error status', { errorRatio: 1 }, 'health', 'status'],
    ['a hang', { hang: true }, 'health', 'timeout'],
    ['invalid JSON', { invalidJson: true }, 'health', 'invalid_json'],
    ['an empty universe', { emptyUniverse: true }, 'universe', 'assertion'],
    ['a degraded status', { status: 'degraded' as const }, 'health', 'assertion'],
  ])('publishes probe.down with the reason for %s, and probe.up once it recovers', async (_name, faults, probe, reason) => {
    harness = await startPair();
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    h.blue.setFaults(faults);
    await waitUntil(() => h.events.some((e) => e.type === 'probe.down' && e.env === 'blue' && e.probe === probe), `probe.down for ${probe}@blue`);
    const down = h.events.find((e) => e.type === 'probe.down' && e.env === 'blue' && e.probe === probe)!;
    expect(down).toMatchObject({ severity: 'warning', data: { reason, active: true } });
    expect(down.message).toContain(`${probe} on blue (live) is failing: ${reason}`);
    expect(h.events.filter((e) => e.type === 'probe.down' && e.env === 'green')).toEqual([]);
    // The agent keeps serving while its target misbehaves.
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);

    h.blue.resetFaults();
    await waitUntil(() => h.events.some((e) => e.type === 'probe.up' && e.env === 'blue' && e.probe === probe), `probe.up for ${probe}@blue`);
    const up = h.events.find((e) => e.type === 'probe.up' && e.env === 'blue' && e.probe === probe)!;
    expect(up.id).toBeGreaterThan(down.id);
    expect(up.data).toMatchObject({ active: true });
    // State changes only: one down and one up, however many probes failed in between.
    expect(h.events.filter((e) => e.probe === probe && e.env === 'blue').map((e) => e.type)).toEqual(['probe.down', 'probe.up']);
  });

  it('counts a tick as skipped while the previous probe is still in flight', async () => {
    harness = await startPair({ every: '100ms', timeout: '1s' });
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    h.green.setFaults({ hang: true });
    await waitUntil(() => seriesOf(h, 'health', 'green').skipped >= 3, 'skipped ticks');
    const text = await (await fetch(`${h.base}/metrics`)).text();
    expect(Number(/greenlight_probes_total\{probe="health",env="green",result="skipped"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('closes promptly with probes hanging in flight', async () => {
    // Probes that would hang for ten minutes: a close() that waited for them would outlive the test's timeout.
    harness = await startPair({ every: '100ms', timeout: '10m' });
    const h = harness;
    h.blue.setFaults({ hang: true });
    h.green.setFaults({ hang: true });
    const before = h.blue.requestCount() + h.green.requestCount();
    await waitUntil(() => h.blue.requestCount() + h.green.requestCount() >= before + 2, 'probes hanging in flight');
    await h.close();
    harness = undefined;
    expect(h.events.at(-1)).toMatchObject({ type: 'agent.stopping' });
    // Probes cut short by the shutdown are not reported as target failures.
    expect(h.events.filter((e) => e.type === 'probe.down')).toEqual([]);
  });

  it('assigns strictly increasing event ids', async () => {
    harness = await startPair();
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    h.green.setFaults({ errorRatio: 1 });
    await waitUntil(() => h.events.filter((e) => e.type === 'probe.down').length >= 2, 'two probe.down events');
    const ids = h.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('manual rollbacks', () => {
  const pair = useSimulatorPair();

  it('get unique, readable incident ids even within one millisecond (regression: manual-<time> twice)', async () => {
    // A clock that stands still: both rollbacks happen in the same millisecond.
    const now = Date.parse('2026-03-14T12:00:00.000Z');
    const dataDir = tempDir('greenlight-manual-');
    const config = parseAgentConfig(pairConfig(pair.blue.url, pair.green.url).replace(/^dataDir: .*$/m, `dataDir: ${dataDir}`));
    const { agent, events } = await startAgent(config, { now: () => now });
    try {
      await waitUntil(() => agent.ready, 'the first probe round');
      expect((await agent.manualRollback('first', 'api:rollback')).outcome).toBe('succeeded');
      expect((await agent.manualRollback('second', 'api:rollback')).outcome).toBe('succeeded');
      const incidents = events.filter((e) => e.type === 'action.started').map((e) => (e.data as { incident: string }).incident);
      expect(incidents).toHaveLength(2);
      expect(new Set(incidents).size).toBe(2);
      for (const incident of incidents) expect(incident).toMatch(/^manual-2026-03-14T12:00:00\.000Z-\d+$/);
    } finally {
      await agent.close();
    }
    // Both are in the action journal: the second did not overwrite the first.
    const db = new Database(join(dataDir, 'greenlight.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT incident FROM actions').all()).toHaveLength(2);
    } finally {
      db.close();
    }
  });
});

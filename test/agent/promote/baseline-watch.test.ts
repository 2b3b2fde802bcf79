/**
 * The idle environment as a live baseline, end to end with the stock config: green is three times
 * slower than blue but under every fixed line (mean 2 s, 5 s); promoted, it is rolled back during
 * the watch by the stock rule watch-latency-regression, which compares it with blue over the same
 * window. Before the promotion the same difference fires nothing: the comparison judges only a
 * promotion's watch.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil } from '../../helpers/agent-harness.js';
import { ADMIN as PROMOTE_ADMIN, promoteConfig } from '../../helpers/promote.js';
import { tempDir } from '../../helpers/tools.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const STOCK = readFileSync(new URL('../../../config/greenlight.yaml', import.meta.url), 'utf8');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(blue: Simulator, green: Simulator) {
  // The stock config as shipped, with a 1 s load gate instead of 10 s.
  const text = STOCK.replace(/(load:[^\n]*\n\s+rps: 20\n\s+duration: )10s/, '$11s');
  expect(text).not.toBe(STOCK);
  const config = parseAgentConfig(text, {
    BLUE_URL: blue.url,
    GREEN_URL: green.url,
    GREENLIGHT_LISTEN: '127.0.0.1:0',
    GREENLIGHT_DATA_DIR: tempDir('greenlight-baseline-'),
    GREENLIGHT_PROBE_INTERVAL: '100ms',
    ADMIN_TOKEN: ADMIN,
  });
  const started = await startAgent(config, { processMetrics: false });
  cleanups.push(() => started.agent.close());
  return started;
}

/** Every series holds at least `n` probes in its 5 m window. */
function filled(agent: Agent, n: number): boolean {
  const series = agent.state().series;
  return series.length === 8 && series.every((s) => (s.windows['5m']?.count ?? 0) >= n);
}

describe('the idle environment as a live baseline during a promotion watch', () => {
  it('green 3x slower than blue, under every fixed threshold, is rolled back in the watch by watch-latency-regression', async () => {
    const [blue, green] = await Promise.all([
      startSimulator({ name: 'blue', faults: { latencyMs: 40 } }),
      startSimulator({ name: 'green', faults: { latencyMs: 120 } }),
    ]);
    cleanups.push(() => Promise.all([blue.close(), green.close()]));
    const { agent, events, base } = await start(blue, green);
    await waitUntil(() => filled(agent, 60), '60 probes of every series in the 5m window', 30_000);

    // Outside a watch the difference judges nothing: green is idle and nobody is promoting it.
    expect(events.filter((e) => e.type === 'rule.firing')).toEqual([]);
    const green95 = Math.max(
      ...agent
        .state()
        .series.filter((s) => s.env === 'green')
        .map((s) => s.windows['5m']!.p95LatencyMs!),
    );
    expect(green95).toBeLessThan(2_000); // under every fixed line

    const response = await fetch(`${base}/api/v1/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'green', emergency: true, reason: 'release 3.3.0 (test: outside the deploy windows)', watch: '2m' }),
    });
    const result = (await response.json()) as Record<string, unknown>;
    expect(result).toMatchObject({ ok: false, switched: true, rolledBack: true, live: 'blue' });
    expect(['verify', 'watch']).toContain(result.failedStep);
    expect(agent.activeEnvironment).toBe('blue');

    const firing = events.find((e) => e.type === 'rule.firing' && e.rule === 'watch-latency-regression');
    expect(firing).toBeDefined();
    expect(firing!.env).toBe('green');
    const facts = (firing!.data as { figures: { facts: { fact: string; observed: number }[] } }).figures.facts;
    expect(facts.find((f) => f.fact === 'latencyRatio')!.observed).toBeGreaterThan(2);
    expect(facts.find((f) => f.fact === 'latencyRegressionP')!.observed).toBeLessThan(0.01);
    const back = events.find((e) => e.type === 'traffic.switched' && e.data.from === 'green');
    expect(back).toMatchObject({ rule: 'watch-latency-regression', data: { to: 'blue' } });
    // No fixed-line rule had a part in it.
    expect(events.filter((e) => e.type === 'rule.firing').map((e) => e.rule)).toEqual(['watch-latency-regression']);
  });
});

describe('a rollback between the switch and the watch', () => {
  it('ends the promotion as rolled back (regression: the watch, started after it, waited its whole length and reported success)', async () => {
    const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green', faults: { latencyMs: 200 } })]);
    cleanups.push(() => Promise.all([blue.close(), green.close()]));
    // A rule that rolls back as soon as a promotion watches: it fires while the slow verification
    // (three rounds of 200 ms answers, 300 ms apart) is still running.
    const text = promoteConfig(
      blue.url,
      green.url,
      'promote: { healthyRounds: 1, load: { enabled: false }, verifyRounds: 3, roundInterval: 300ms, watch: 20s, validation: { settle: 100ms } }\ndeployWindows: { enabled: false }\n',
    ).replace(
      'rules:\n',
      'rules:\n  - name: no-promotions\n    severity: critical\n    when: { all: [ { fact: promotionWatch, operator: equal, value: true } ] }\n    actions: [rollback]\n',
    );
    const { agent, events, api } = await startAgent(parseAgentConfig(text), { processMetrics: false, ready: true });
    cleanups.push(() => agent.close());
    const result = (await api<Record<string, unknown>>('POST', '/api/v1/promote', { token: PROMOTE_ADMIN, body: { to: 'green' } })).body;
    expect(result).toMatchObject({ ok: false, switched: true, rolledBack: true, live: 'blue', failedStep: 'watch' });
    expect(String(result.reason)).toMatch(/^rolled back to blue after .*no-promotions|rolled back to blue/);
    const order = events.flatMap((e) => {
      if (e.type === 'traffic.switched') return [`${e.data.from}>${e.data.to}`];
      if (e.type === 'promote.step' && ['verify', 'watch'].includes(e.data.step)) return [`${e.data.step}:${e.data.ok ? 'ok' : 'fail'}`];
      return [];
    });
    expect(order).toEqual(['blue>green', 'green>blue', 'verify:ok', 'watch:fail']);
  });
});

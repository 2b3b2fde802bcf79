/**
 * The built CLI as a child process against an agent in this process: `greenlight promote`
 * streams the steps and exits 1 naming the failing figure when a gate fails; `rollback validate`,
 * `loadtest` and the untouched `rollback --reason`.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil } from '../../helpers/agent-harness.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';
import { writeTempFile } from '../../helpers/tools.js';
import { cli } from '../../helpers/cli.js';

let blue: Simulator;
let green: Simulator;
let agent: Agent;
let base: string;
let configFile: string;
let events: GreenlightEvent[];

beforeAll(async () => {
  [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const text = promoteConfig(blue.url, green.url, `${FAST_GATES.replace('maxP95: 2s', 'maxP95: 150ms')}deployWindows: { enabled: false }\n`);
  configFile = writeTempFile('promote.yaml', text);
  ({ agent, base, events } = await startAgent(parseAgentConfig(text), { processMetrics: false, ready: true }));
});

afterAll(async () => {
  await agent?.close();
  await Promise.all([blue?.close(), green?.close()]);
});

describe('greenlight promote (built CLI)', () => {
  it('a slow green fails the load gate: exit 1 naming the figure, traffic never moves', async () => {
    green.setFaults({ latencyMs: 300 });
    const switchesBefore = events.filter((e) => e.type === 'traffic.switched').length;
    try {
      const run = await cli(['promote', '--to', 'green', '--url', base], { ADMIN_TOKEN: ADMIN }, 60_000);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/✅ window/);
      expect(run.stdout).toMatch(/✅ probes .* 2 rounds of 2 probes passed in a row on green/);
      // Every answer took at least the injected 300 ms (more on a loaded machine).
      const p95 = Number(/❌ load .* p95 latency (\d+)ms >= 150ms/.exec(run.stdout)?.[1]);
      expect(p95).toBeGreaterThanOrEqual(300);
      expect(run.stdout).toContain(`summary: ❌ not promoted: load failed: p95 latency ${p95}ms >= 150ms`);
      expect(run.stdout).toContain('traffic never moved: blue is still live');
      expect(run.stdout).not.toMatch(/switch/);
      expect(events.filter((e) => e.type === 'traffic.switched')).toHaveLength(switchesBefore);
      expect(agent.activeEnvironment).toBe('blue');
    } finally {
      green.resetFaults();
    }
  }, 60_000);

  it('needs ADMIN_TOKEN, and --reason with --emergency (exit 2)', async () => {
    const noToken = await cli(['promote', '--to', 'green', '--url', base], {}, 60_000);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('ADMIN_TOKEN');
    const noReason = await cli(['promote', '--to', 'green', '--emergency', '--url', base], { ADMIN_TOKEN: ADMIN }, 60_000);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--emergency needs --reason TEXT');
  });

  it('greenlight loadtest reports the quantiles and judges them (exit 0 within, 1 over)', async () => {
    // A probe path that carries a key in its query: its value is never printed.
    const keyed = writeTempFile('keyed.yaml', readFileSync(configFile, 'utf8').replace('path: /api/health', 'path: "/api/health?api_key=${PROBE_KEY}"'));
    const ok = await cli(
      ['loadtest', '--env', 'blue', '--rps', '50', '--duration', '1s', '--max-p95', '1s', '--config', keyed],
      { PROBE_KEY: 'probe-key-0123456789' },
      60_000,
    );
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('over [redacted], /api/alphastack/universe');
    expect(ok.stdout + ok.stderr).not.toContain('probe-key-0123456789');
    expect(ok.stdout).toMatch(/p50 [\d.]+ms p95 [\d.]+ms p99 [\d.]+ms, errors 0\.0 % \(0 of 50\)/);
    expect(ok.stdout).toContain('✅ blue: within p95 < 1.00s');
    green.setFaults({ errorRatio: 0.5 });
    try {
      const bad = await cli(['loadtest', '--env', 'green', '--rps', '50', '--duration', '1s', '--json', '--config', configFile], {}, 60_000);
      expect(bad.code).toBe(1);
      const report = JSON.parse(bad.stdout) as { ok: boolean; failures: string[]; report: { errorRatio: number; errorsByReason: Record<string, number> } };
      expect(report.ok).toBe(false);
      expect(report.failures.join()).toMatch(/error ratio \d+\.\d % >= 5\.0 %/);
      expect(report.report.errorsByReason['status 500']).toBeGreaterThan(0);
    } finally {
      green.resetFaults();
    }
  });

  it('promotes the healthy green (exit 0), and rollback validate reports on blue after a rollback', async () => {
    expect(agent.activeEnvironment).toBe('blue');
    const validatedBefore = events.filter((e) => e.type === 'rollback.validated').length;
    const run = await cli(['promote', '--to', 'green', '--url', base], { ADMIN_TOKEN: ADMIN }, 60_000);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/✅ switch .* blue → green/);
    expect(run.stdout).toMatch(/✅ watch .* green held for 1s with no rollback/);
    expect(run.stdout).toMatch(/summary: ✅ promoted blue → green/);

    const rollback = await cli(['rollback', '--reason', 'test the validation', '--url', base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    expect(rollback.code).toBe(0);
    await waitUntil(() => events.filter((e) => e.type === 'rollback.validated').length > validatedBefore, 'the automatic validation');
    const auto = events.filter((e) => e.type === 'rollback.validated')[validatedBefore]!;
    // A manual rollback applies no flag preset: the idle green is not in safe mode, and the validation says so.
    expect(auto.data).toMatchObject({ ok: false, live: 'blue', idle: 'green' });
    const validate = await cli(['rollback', 'validate', '--url', base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    expect(validate.code).toBe(1);
    expect(validate.stdout).toMatch(/✅ health\s+\/api\/health on blue answered 200/);
    expect(validate.stdout).toMatch(/✅ database\s+\$\.database\.connected on blue is true/);
    expect(validate.stdout).toMatch(/✅ protection\s+ALPHASTACK_PROTECTION on blue is on/);
    expect(validate.stdout).toMatch(/❌ safe-mode\s+green: FORCE_V2_FALLBACK off/);
    expect(validate.stdout).toMatch(/✅ error-ratio/);
    const greenBefore = { ...agent.flags.get('green') };
    agent.flags.applyPreset('emergency-rollback', ['green'], { actor: 'test', reason: 'safe mode' });
    try {
      const again = await cli(['rollback', 'validate', '--url', base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('✅ rollback validated: blue is live and safe');
    } finally {
      // Green leaves safe mode again: the other tests start from the agent as it began.
      const changed = Object.fromEntries(Object.entries(greenBefore).filter(([flag, value]) => agent.flags.get('green')[flag] !== value));
      agent.flags.set(['green'], changed, { actor: 'test', reason: 'reset between tests' });
    }
  }, 60_000);
});

/**
 * SLOs in the agent: the live environment's probes fill the count windows (the idle one's do
 * not), the state and /metrics show burn rates and the budget, the counts are written to the
 * store every minute of the agent's clock and at stop, and a restart goes on from them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { Store } from '../../agent/events/store.js';
import type { SloState } from '../../probes/slo-window.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil } from '../helpers/agent-harness.js';
import { hasTool, promtoolCheckMetrics, tempDir } from '../helpers/tools.js';

function configText(blue: string, green: string, dataDir: string): string {
  return `listen: 127.0.0.1:0
dataDir: ${dataDir}
environments:
  blue: { url: "${blue}" }
  green: { url: "${green}" }
probeDefaults: { every: 50ms, timeout: 1s, jitter: 0 }
slo:
  availability: { objective: 0.99, period: 30d }
rules:
  - name: burning
    severity: warning
    when: { all: [ { fact: burnRate, params: { window: 1h }, operator: greaterThan, value: 14.4 } ] }
probes:
  - { name: health, path: /api/health }
`;
}

const blueOf = (agent: Agent, windowMs: number) => agent.state().slo[0]!.environments.blue!.find((w) => w.windowMs === windowMs)!;

describe('SLOs in the agent', () => {
  let blue: Simulator;
  let green: Simulator;
  beforeAll(async () => {
    // Blue (live) fails half its probes; green (idle) fails all of them and must not count.
    [blue, green] = await Promise.all([
      startSimulator({ name: 'blue', faults: { errorRatio: 0.5 } }),
      startSimulator({ name: 'green', faults: { errorRatio: 1 } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([blue.close(), green.close()]);
  });

  it('counts the live environment only, shows burn rates and the budget, survives a restart', async () => {
    const dataDir = tempDir('greenlight-slo-');
    const config = parseAgentConfig(configText(blue.url, green.url, dataDir));
    const first = await startAgent(config, { processMetrics: false });
    try {
      await waitUntil(() => blueOf(first.agent, 3_600_000).total >= 40, '40 probes of blue in the SLO');
      const state = first.agent.state().slo[0]!;
      expect(state).toMatchObject({ name: 'availability', objective: 0.99, periodMs: 30 * 86_400_000 });
      expect(state.environments.blue!.map((w) => w.windowMs)).toEqual([3_600_000, 30 * 86_400_000]);
      expect(state.environments.green!.every((w) => w.total === 0)).toBe(true);
      const hour = blueOf(first.agent, 3_600_000);
      expect(hour.bad).toBeGreaterThan(0);
      expect(hour.burnRate).toBeCloseTo(hour.bad / hour.total / 0.01, 10);
      expect(state.budgetRemaining).toBeLessThan(0);

      const text = (await first.agent.metrics.render(false)).body;
      expect(text).toMatch(/greenlight_slo_burn_rate\{slo="availability",env="blue",window="1h"\} \d/);
      expect(text).toContain('greenlight_slo_burn_rate{slo="availability",env="green",window="1h"} NaN');
      expect(text).toMatch(/greenlight_slo_budget_remaining_ratio\{slo="availability"\} -\d/);
      if (hasTool('promtool')) expect(promtoolCheckMetrics(text).status).toBe(0);
    } finally {
      await first.agent.close();
    }
    // Written at stop.
    const store = Store.open(dataDir);
    const stored = store.get<Record<string, SloState>>('slo')!;
    store.close();
    const sum = (key: 'total' | 'bad') => stored.availability!.environments.blue!.find((w) => w.windowMs === 3_600_000)![key].reduce((a, b) => a + b, 0);
    const saved = { total: sum('total'), bad: sum('bad') };
    expect(saved.total).toBeGreaterThanOrEqual(40);

    const second = await startAgent(config, { processMetrics: false });
    try {
      // Before or after the first new probes: never fewer than were saved.
      const resumed = blueOf(second.agent, 3_600_000);
      expect(resumed.total).toBeGreaterThanOrEqual(saved.total);
      expect(resumed.bad).toBeGreaterThanOrEqual(saved.bad);
    } finally {
      await second.agent.close();
    }
  });

  it('writes the counts to the store once a minute of its clock has passed, not on every probe', async () => {
    const dataDir = tempDir('greenlight-slo-');
    let clock = Date.now();
    const { agent } = await startAgent(parseAgentConfig(configText(blue.url, green.url, dataDir)), { processMetrics: false, now: () => clock });
    const read = () => {
      const store = Store.open(dataDir);
      try {
        return store.get<Record<string, SloState>>('slo');
      } finally {
        store.close();
      }
    };
    try {
      await waitUntil(() => blueOf(agent, 3_600_000).total >= 10, 'probes of blue');
      expect(read()).toBeUndefined();
      clock += 61_000;
      await waitUntil(() => read() !== undefined, 'the periodic save');
      expect(
        read()!
          .availability!.environments.blue!.find((w) => w.windowMs === 3_600_000)!
          .total.reduce((a, b) => a + b, 0),
      ).toBeGreaterThanOrEqual(10);
    } finally {
      await agent.close();
    }
  });

  it('a reload keeps the counts of the windows it did not change and adds the new ones', async () => {
    const dataDir = tempDir('greenlight-slo-');
    const text = configText(blue.url, green.url, dataDir);
    const next = parseAgentConfig(
      text.replace(
        'probes:\n',
        '  - name: burning-6h\n    severity: warning\n    when: { all: [ { fact: burnRate, params: { window: 6h }, operator: greaterThan, value: 6 } ] }\nprobes:\n',
      ),
    );
    const { agent } = await startAgent(parseAgentConfig(text), { processMetrics: false, reloadConfig: async () => next });
    try {
      await waitUntil(() => blueOf(agent, 3_600_000).total >= 20, 'probes of blue');
      const before = blueOf(agent, 3_600_000).total;
      expect((await agent.reload('test')).ok).toBe(true);
      expect(blueOf(agent, 3_600_000).total).toBeGreaterThanOrEqual(before);
      expect(agent.state().slo[0]!.environments.blue!.map((w) => w.windowMs)).toEqual([3_600_000, 6 * 3_600_000, 30 * 86_400_000]);
    } finally {
      await agent.close();
    }
  });
});

/**
 * A restart picks up where the last run left off (agent/events/store.ts): the live environment and the
 * flags are what they were, and a rule that was firing goes on firing without repeating its
 * actions — and still tells the receivers when it resolves.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { Store } from '../../agent/events/store.js';
import { startAgent, useSimulatorPair, waitUntil } from '../helpers/agent-harness.js';
import { startRecorder } from '../helpers/recorder.js';
import { tempDir } from '../helpers/tools.js';

describe('a restarted agent', () => {
  const pair = useSimulatorPair();
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  const dataDir = tempDir('greenlight-data-');

  beforeAll(async () => {
    recorder = await startRecorder();
  });
  afterAll(async () => {
    await recorder.close();
  });

  async function boot(dir = dataDir, failures = 3): Promise<{ agent: Agent; events: GreenlightEvent[] }> {
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${dir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 100ms, timeout: 500ms, jitter: 0 }
traffic: { type: webhook, url: ${recorder.url}/traffic }
alerts: { receivers: [ { type: webhook, name: recorder, url: ${recorder.url}/alerts } ] }
actions:
  rollback: { type: rollback }
  safe-mode: { type: flags }
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: ${failures} } ] }
    keepFiringFor: 300ms
    actions: [rollback, safe-mode, page]
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`);
    const { agent, events } = await startAgent(config);
    return { agent, events };
  }

  it('keeps the live environment, the flags and the firing incident, and does not repeat the actions', async () => {
    // The rule reads blue explicitly, so it stays firing after the switch while blue is broken.
    const trafficAtStart = recorder.requests.filter((r) => r.path === '/traffic').length;
    const first = await boot();
    pair.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => first.events.filter((e) => e.type === 'action.succeeded').length >= 3, 'the three actions');
    await first.agent.settled();
    expect(first.agent.activeEnvironment).toBe('green');
    const leftBlueAt = first.agent.state(false).environments.blue!.rolledBackFromAt;
    expect(leftBlueAt).not.toBeNull();
    await first.agent.close();
    const trafficBefore = recorder.requests.filter((r) => r.path === '/traffic').length;
    const alertsBefore = recorder.requests.filter((r) => r.path === '/alerts').length;
    expect(trafficBefore - trafficAtStart).toBe(1);

    const second = await boot();
    try {
      // Event ids go on from the journal: strictly increasing across the restart.
      const lastOfFirst = first.events.at(-1)!.id;
      expect(second.events[0]!.id).toBe(lastOfFirst + 1);
      const base = `http://127.0.0.1:${second.agent.address!.port}`;
      const history = (await (await fetch(`${base}/api/v1/events?since=0&limit=1000`)).json()) as { events: GreenlightEvent[]; next: number };
      // The second agent goes on probing: events published after the journal was read are not in this page.
      expect(history.events.map((e) => e.id)).toEqual([...first.events, ...second.events].map((e) => e.id).filter((id) => id <= history.next));
      expect(history.next).toBeGreaterThanOrEqual(second.events[0]!.id);
      expect(history.events.find((e) => e.type === 'traffic.switched')).toMatchObject({ env: 'green', data: { from: 'blue', to: 'green' } });
      const switches = (await (await fetch(`${base}/api/v1/events?type=traffic`)).json()) as { events: GreenlightEvent[] };
      expect(switches.events.map((e) => e.type)).toEqual(['traffic.switched']);
      // The stream's filters, on the history too (regression: env= was ignored there).
      const onGreen = (await (await fetch(`${base}/api/v1/events?env=green&limit=1000`)).json()) as { events: GreenlightEvent[] };
      expect(onGreen.events.map((e) => e.type)).toContain('traffic.switched');
      expect(onGreen.events.every((e) => e.env === 'green')).toBe(true);
      expect(onGreen.events.length).toBeLessThan(history.events.length);
      const { severity } = onGreen.events.find((e) => e.type === 'traffic.switched')!;
      const bySeverity = (await (await fetch(`${base}/api/v1/events?env=green&severity=${severity}&limit=1000`)).json()) as { events: GreenlightEvent[] };
      expect(bySeverity.events.map((e) => e.type)).toContain('traffic.switched');
      expect(bySeverity.events.every((e) => e.env === 'green' && e.severity === severity)).toBe(true);
      const page = (await (await fetch(`${base}/api/v1/events?since=2&limit=3`)).json()) as { events: GreenlightEvent[]; next: number };
      expect(page.events.map((e) => e.id)).toEqual([3, 4, 5]);
      expect(page.next).toBe(5);
      expect((await fetch(`${base}/api/v1/events?limit=0`)).status).toBe(400);
      expect((await fetch(`${base}/api/v1/events?since=-1`)).status).toBe(400);
      expect((await fetch(`${base}/api/v1/events?type=probe;drop`)).status).toBe(400);
      // A misspelt filter or one given twice is refused, naming it, not ignored (regression: both answered every event).
      const misspelt = await fetch(`${base}/api/v1/events?enviroment=green`);
      expect([misspelt.status, ((await misspelt.json()) as { error: string }).error]).toEqual([
        400,
        '/api/v1/events takes no query parameter "enviroment"; it takes since, type, env, severity, probe, limit',
      ]);
      expect((await fetch(`${base}/api/v1/events?env=blue&env=green`)).status).toBe(400);

      expect(second.agent.activeEnvironment).toBe('green');
      // The anti-flap's "recently rolled away" survives the restart (regression: a restart inside the cooldown let traffic straight back).
      expect(second.agent.state(false).environments.blue!.rolledBackFromAt).toBe(leftBlueAt);
      expect(second.agent.flags.get('blue')).toMatchObject({ FORCE_V2_FALLBACK: true, ALPHASTACK_V3_ENABLED: false, ALPHASTACK_PROTECTION: true });
      expect(second.agent.rules.statuses()).toEqual([expect.objectContaining({ rule: 'universe-failing', state: 'firing', incident: 1 })]);
      expect(await (await fetch(`http://127.0.0.1:${second.agent.address!.port}/metrics`)).text()).toContain('greenlight_active_environment{env="green"} 1');

      // Blue is still broken: the rule holds, and nothing runs again.
      // Judged over rounds, not time: blue must answer six more probes (three rounds of its two).
      const servedBefore = pair.blue.requestCount();
      await waitUntil(() => pair.blue.requestCount() >= servedBefore + 6, 'three more probe rounds on blue');
      expect(second.events.filter((e) => e.type === 'rule.firing' || e.type.startsWith('action.'))).toEqual([]);
      expect(recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(trafficBefore);

      // Blue recovers: the incident from before the restart resolves, and the receivers hear it.
      pair.blue.resetFaults();
      await waitUntil(() => second.events.some((e) => e.type === 'rule.resolved'), 'the rule to resolve');
      await waitUntil(() => recorder.requests.filter((r) => r.path === '/alerts').length > alertsBefore, 'the resolved notice');
      const resolved = recorder.requests.filter((r) => r.path === '/alerts').at(-1)!.body as { status: string; alerts: { labels: Record<string, string> }[] };
      expect(resolved).toMatchObject({ status: 'resolved', alerts: [{ labels: { alertname: 'universe-failing' } }] });
      expect(second.events.find((e) => e.type === 'rule.resolved')!.data).toMatchObject({ incident: 'universe-failing#1' });
    } finally {
      await second.agent.close();
    }

    // A third start: nothing firing any more.
    const third = await boot();
    try {
      expect(third.agent.activeEnvironment).toBe('green');
      expect(third.agent.rules.statuses()[0]!.state).toBe('inactive');
    } finally {
      await third.agent.close();
    }
  });

  it('does not resolve a resumed incident (and fire it again) while the rounds after the restart are slower than the interval', async () => {
    const dir = tempDir('greenlight-data-');
    const first = await boot(dir, 5);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => first.events.some((e) => e.type === 'rule.firing'), 'the rule to fire');
      await first.agent.settled();
    } finally {
      await first.agent.close();
    }
    // After the restart blue hangs: each universe probe fails only at its 500 ms timeout, five
    // times the interval. The hold used to be twelve intervals of time (1.2 s): three failures in,
    // the rule (five in a row) read "not holding", resolved, and fired again at five, repeating
    // its actions.
    pair.blue.setFaults({ hang: true });
    const second = await boot(dir, 5);
    try {
      const failures = () => second.agent.state().series.find((s) => s.probe === 'universe' && s.env === 'blue')!.consecutiveFailures;
      await waitUntil(() => failures() >= 13, 'thirteen failed rounds of the universe probe on blue', 20_000);
      await second.agent.settled();
      expect(second.events.filter((e) => e.type.startsWith('rule.') || e.type.startsWith('action.'))).toEqual([]);
      expect(second.agent.rules.statuses()).toEqual([expect.objectContaining({ rule: 'universe-failing', state: 'firing', incident: 1 })]);
    } finally {
      pair.blue.resetFaults();
      await second.agent.close();
    }
  }, 40_000);

  it('says so, loudly, when the stored live environment is no environment of the config any more (regression: a rename was taken silently)', async () => {
    const dir = tempDir('greenlight-data-');
    const first = await boot(dir);
    pair.blue.setFaults({ emptyUniverse: true });
    try {
      await waitUntil(() => first.agent.activeEnvironment === 'green', 'the rollback to green');
      await first.agent.settled();
    } finally {
      pair.blue.resetFaults();
      await first.agent.close();
    }
    const lines: string[] = [];
    const renamed = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${dir}
environments: { blue: { url: ${pair.blue.url} }, teal: { url: ${pair.green.url} } }
probes:
  - { name: universe, path: /api/alphastack/universe }
`);
    const { agent } = await startAgent(renamed, { logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }) });
    try {
      expect(agent.activeEnvironment).toBe('blue');
      expect(lines.join('\n')).toContain('says green is live, but the config has no environment green (renamed?): starting with blue live as the config says');
    } finally {
      await agent.close();
    }
  });

  it('starts the actions of a resumed incident that no run recorded starting (regression: killed between opening the incident and starting them, it fired on with no page and no safe mode)', async () => {
    // The store as a kill -9 leaves it a few fsyncs after the rule fired: the incident written,
    // the rollback's start written, the flags and the alert not yet.
    const dir = tempDir('greenlight-data-');
    const startedAt = Date.now() - 2_000;
    const context = {
      rule: 'universe-failing',
      incident: 'universe-failing#1',
      env: 'blue',
      severity: 'critical' as const,
      message: 'blue has no universe',
      actor: 'rule:universe-failing',
      startedAt,
    };
    const store = Store.open(dir);
    store.set('activeEnvironment', 'blue');
    store.set('switchesSent', {});
    const { rule, ...stored } = context;
    store.set('incidents', { [rule]: stored });
    store.recordAction({ incident: context.incident, action: 'rollback', type: 'rollback', state: 'started', context, startedAt });
    store.close();
    const alerts = () =>
      recorder.requests.filter((r) => r.path === '/alerts').map((r) => r.body as { alerts: { status: string; labels: Record<string, string> }[] });
    const alertsBefore = alerts().length;
    const trafficBefore = recorder.requests.filter((r) => r.path === '/traffic').length;
    const data = (e: GreenlightEvent) => e.data as Record<string, unknown>;

    pair.blue.setFaults({ emptyUniverse: true });
    const second = await boot(dir);
    try {
      await waitUntil(
        () => ['safe-mode', 'page', 'rollback'].every((name) => second.events.some((e) => e.type === 'action.succeeded' && data(e).action === name)),
        'the three actions settled',
      );
      await waitUntil(
        () =>
          alerts()
            .slice(alertsBefore)
            .some((body) => body.alerts.some((a) => a.status === 'firing' && a.labels.alertname === 'universe-failing')),
        'the page',
      );
      expect(second.agent.flags.get('blue')).toMatchObject({ FORCE_V2_FALLBACK: true, ALPHASTACK_V3_ENABLED: false, ALPHASTACK_PROTECTION: true });
      // The rollback it had started is settled as a crash's (never sent: judged again, owed until
      // blue's probes show the fault again, then retried), not started afresh beside it.
      const rollbacks = second.events.filter((e) => e.type.startsWith('action.') && data(e).action === 'rollback');
      expect(rollbacks[0]!.data).toMatchObject({ reconciled: true });
      expect(rollbacks.slice(1).every((e) => data(e).retryOf === 'universe-failing#1')).toBe(true);
      expect(recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(trafficBefore + 1);
      expect(second.events.filter((e) => e.type === 'rule.firing')).toEqual([]);
    } finally {
      pair.blue.resetFaults();
      await second.agent.close();
    }
  });

  it('numbers the next incident after the last one, across a restart with nothing firing (regression: every restart began again at #1)', async () => {
    const dir = tempDir('greenlight-data-');
    const firingIds = (events: GreenlightEvent[]) => events.filter((e) => e.type === 'rule.firing').map((e) => e.data.incident);
    const first = await boot(dir);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => first.events.some((e) => e.type === 'rule.firing'), 'the first incident');
      pair.blue.resetFaults();
      await waitUntil(() => first.events.some((e) => e.type === 'rule.resolved'), 'the first incident to resolve');
      await first.agent.settled();
      expect(firingIds(first.events)).toEqual(['universe-failing#1']);
    } finally {
      await first.agent.close();
    }
    const second = await boot(dir);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => second.events.some((e) => e.type === 'rule.firing'), 'an incident after the restart');
      await second.agent.settled();
      expect(firingIds(second.events)).toEqual(['universe-failing#2']);
    } finally {
      pair.blue.resetFaults();
      await second.agent.close();
    }
  }, 40_000);
});

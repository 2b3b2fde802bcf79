/**
 * Promotion end to end in one process: two simulators, an agent on them (traffic `none`), and
 * promotions asked over the HTTP API. Assertions are on event order and figures, never on time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil, type ApiClient } from '../../helpers/agent-harness.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';

interface Started {
  agent: Agent;
  blue: Simulator;
  green: Simulator;
  events: GreenlightEvent[];
  base: string;
  api: ApiClient;
}

const open: Started[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    await s.agent.close();
    await Promise.all([s.blue.close(), s.green.close()]);
  }
});

async function start(extra: string, edit: (text: string) => string = (text) => text): Promise<Started> {
  const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const { agent, events, base, api } = await startAgent(parseAgentConfig(edit(promoteConfig(blue.url, green.url, extra))), {
    processMetrics: false,
    ready: true,
  });
  const started = { agent, blue, green, events, base, api };
  open.push(started);
  return started;
}

async function promote(base: string, body: Record<string, unknown>): Promise<{ status: number; lines: Record<string, unknown>[] }> {
  const response = await fetch(`${base}/api/v1/promote`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    lines: text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const kinds = (events: GreenlightEvent[]) =>
  events
    .filter((e) => e.type.startsWith('promote.') || e.type === 'traffic.switched' || e.type === 'rule.firing' || e.type === 'rollback.validated')
    .map((e) =>
      e.type === 'promote.step'
        ? `step:${e.data.step}:${e.data.ok ? 'ok' : 'fail'}`
        : e.type === 'traffic.switched'
          ? `switched:${e.data.from}>${e.data.to}`
          : e.type,
    );

/** A deploy-window block that is closed now: every day but today (in New York) is allowed. */
function closedWindows(): string {
  const today = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short' }).format(Date.now()).toLowerCase().slice(0, 3);
  const others = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'].filter((d) => d !== today);
  return `deployWindows:\n  feature: [ { days: [${others.join(', ')}], from: "00:00", to: "24:00" } ]\n`;
}

describe('greenlight promote (agent API)', () => {
  it('promotes a healthy green through every gate, streaming each step, and the switch holds', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`);
    const { status, lines } = await promote(s.base, { to: 'green', reason: 'release 3.2.1' });
    expect(status).toBe(200);
    const result = lines.at(-1)!;
    expect(result).toMatchObject({ type: 'result', ok: true, from: 'blue', to: 'green', live: 'green', switched: true, rolledBack: false });
    expect(lines.filter((l) => l.type === 'progress').map((l) => l.step)).toEqual(expect.arrayContaining(['probes', 'load', 'verify']));
    expect(s.agent.activeEnvironment).toBe('green');
    expect(kinds(s.events)).toEqual([
      'promote.started',
      'step:window:ok',
      'step:preflight:ok',
      'step:probes:ok',
      'step:load:ok',
      'switched:blue>green',
      'step:switch:ok',
      'step:verify:ok',
      'step:watch:ok',
      'promote.succeeded',
    ]);
    const load = s.events.find((e) => e.type === 'promote.step' && e.data.step === 'load')!;
    expect(load.data).toMatchObject({ figures: { rps: 20, errorRatio: 0, maxP95Ms: 2_000 } });
    expect((load.data as unknown as { figures: { p95Ms: number } }).figures.p95Ms).toBeGreaterThan(0);
    const preflight = s.events.find((e) => e.type === 'promote.step' && e.data.step === 'preflight')!;
    expect(preflight.data).toMatchObject({ figures: { ALPHASTACK_PROTECTION: true } });
  });

  it('a green that fails a gate never takes traffic: the failing figure is named', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`);
    s.green.setFaults({ errorRatio: 1 });
    const { lines } = await promote(s.base, { to: 'green' });
    const result = lines.at(-1)!;
    expect(result).toMatchObject({ ok: false, failedStep: 'probes', switched: false, live: 'blue' });
    expect(String(result.reason)).toMatch(/round 1 of 2: health status: status 500/);
    expect(s.events.some((e) => e.type === 'traffic.switched')).toBe(false);
    expect(s.agent.activeEnvironment).toBe('blue');
  });

  it('a failing preflight command stops the promotion before any probe, naming the command and its output', async () => {
    const s = await start(
      `${FAST_GATES.replace('promote:\n', 'promote:\n  preflight:\n    - { name: critical-files, command: [test, -d, /] }\n    - { name: clean-tree, command: [sh, -c, "echo M backend/app/main.py >&2; exit 3"] }\n')}deployWindows: { enabled: false }\n`,
    );
    const { lines } = await promote(s.base, { to: 'green' });
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'preflight', switched: false, live: 'blue' });
    expect(String(lines.at(-1)!.reason)).toBe('clean-tree: exited 3 (M backend/app/main.py)');
    expect(lines.some((l) => l.type === 'progress' && l.step === 'preflight' && String(l.message).includes('critical-files'))).toBe(true);
    expect(kinds(s.events)).toEqual(['promote.started', 'step:window:ok', 'step:preflight:fail', 'promote.failed']);
  });

  it('refuses to promote while a critical rule is firing (the watch could not roll back), unless an emergency', async () => {
    // A critical rule that pages and puts blue in safe mode but does not roll back: it stays firing
    // while green is healthy (a rule's held rollback would be retried and switch by itself).
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`, (text) =>
      text.replace(
        'rules:\n',
        'rules:\n  - name: live-universe-empty\n    severity: critical\n    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }\n    actions: [safe-mode]\n',
      ),
    );
    s.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => s.events.some((e) => e.type === 'rule.firing' && e.rule === 'live-universe-empty'), 'the critical rule to fire');
    const refused = await promote(s.base, { to: 'green' });
    expect(refused.lines.at(-1)).toMatchObject({ ok: false, failedStep: 'preflight', switched: false, live: 'blue' });
    expect(String(refused.lines.at(-1)!.reason)).toContain('critical rules are firing (live-universe-empty)');
    expect(s.events.some((e) => e.type === 'traffic.switched')).toBe(false);

    const emergency = await promote(s.base, { to: 'green', emergency: true, reason: 'blue is down, green is fixed' });
    const preflight = s.events.filter((e) => e.type === 'promote.step' && e.data.step === 'preflight').at(-1)!;
    expect(preflight.data).toMatchObject({ ok: true, figures: { criticalFiring: ['live-universe-empty'] } });
    expect(emergency.lines.at(-1)).toMatchObject({ switched: true });
  });

  it('refuses a target where a critical rule that rolls back already holds: the watch would roll it back at once (regression: it switched, and 200 ms later back, with a page and safe mode)', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`, (text) =>
      text
        .replace(
          '    expect: { json: [ { path: $.status, in: [healthy] } ] }\n',
          '    expect: { json: [ { path: $.status, in: [healthy] } ] }\n    extract: { memory_percent: { path: $.memory.percent, lines: [90] } }\n',
        )
        .replace(
          'rules:\n',
          'rules:\n  - name: live-memory-critical\n    severity: critical\n    when: { all: [ { fact: aboveFor, params: { probe: health, name: memory_percent, line: 90 }, operator: longerThan, value: 300ms } ] }\n    actions: [rollback]\n',
        ),
    );
    s.green.setFaults({ memoryPercent: 95 });
    await waitUntil(async () => (await s.agent.controller.criticalRulesHoldingOn('green')).length > 0, 'the memory rule to hold on green');
    const refused = await promote(s.base, { to: 'green' });
    expect(refused.lines.at(-1)).toMatchObject({ ok: false, failedStep: 'preflight', switched: false, live: 'blue' });
    expect(String(refused.lines.at(-1)!.reason)).toMatch(/^live-memory-critical already holds on green \(.*\): it would fire as soon as green took traffic/);
    expect(s.events.some((e) => e.type === 'traffic.switched')).toBe(false);
    // Once it no longer holds, the promotion goes through.
    s.green.resetFaults();
    await waitUntil(async () => (await s.agent.controller.criticalRulesHoldingOn('green')).length === 0, 'the memory rule to stop holding on green');
    expect((await promote(s.base, { to: 'green' })).lines.at(-1)).toMatchObject({ ok: true, live: 'green' });
  });

  it('a critical rule still firing on the target at the end of the watch, its rollback held, fails the promotion (regression: "promoted", exit 0, mid-incident)', async () => {
    const s = await start(`${FAST_GATES.replace('watch: 1s', 'watch: 2s')}deployWindows: { enabled: false }\n`);
    // As the watch begins both environments fail alike: the rollback is held (no healthy side to go to).
    const stop = s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'verify' && event.data.ok) {
        s.blue.setFaults({ errorRatio: 1 });
        s.green.setFaults({ errorRatio: 1 });
      }
    });
    const { lines } = await promote(s.base, { to: 'green' });
    stop();
    expect(lines.at(-1), JSON.stringify(lines.at(-1))).toMatchObject({ ok: false, failedStep: 'watch', live: 'green' });
    expect(String(lines.at(-1)!.reason)).toContain('critical rules are firing on it at the end of the watch (live-health-failing)');
    expect(s.events.some((e) => e.type === 'promote.succeeded')).toBe(false);
  });

  it('a load gate the agent\'s stop cut short is no pass (regression: journaled "✅ load" after 21 of its 60 requests)', async () => {
    const s = await start(`${FAST_GATES.replace('duration: 1s', 'duration: 3s')}deployWindows: { enabled: false }\n`);
    let closing: Promise<void> | undefined;
    s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'probes')
        setTimeout(() => {
          closing = s.agent.close();
        }, 500);
    });
    void promote(s.base, { to: 'green' }).catch(() => undefined);
    await waitUntil(() => closing !== undefined, 'the stop');
    await closing;
    const load = s.events.find((e) => e.type === 'promote.step' && e.data.step === 'load')!;
    expect(load.data).toMatchObject({ ok: false, detail: 'the agent stopped during the load check, before it finished' });
    expect(s.events.some((e) => e.type === 'traffic.switched')).toBe(false);
  });

  it('looks again right before the switch: a window that closed during the gates refuses it (regression: a 75 s load gate switched traffic past the close)', async () => {
    // The agent's clock, moved on a day while the load gate runs: today is the only day of the window.
    let offset = 0;
    const today = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', weekday: 'short' }).format(Date.now()).toLowerCase().slice(0, 3);
    const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    const windows = `deployWindows:\n  timezone: UTC\n  feature: [ { days: [${today}], from: "00:00", to: "24:00" } ]\n`;
    const { agent, events, base, api } = await startAgent(parseAgentConfig(promoteConfig(blue.url, green.url, `${FAST_GATES}${windows}`)), {
      processMetrics: false,
      ready: true,
      now: () => Date.now() + offset,
    });
    open.push({ agent, blue, green, events, base, api });
    const stop = agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'probes') offset = 86_400_000;
    });
    const { lines } = await promote(base, { to: 'green' });
    stop();
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'switch', switched: false, live: 'blue' });
    expect(String(lines.at(-1)!.reason)).toMatch(/^the deploy window closed during the gates: outside the feature release windows/);
    expect(kinds(events)).toEqual([
      'promote.started',
      'step:window:ok',
      'step:preflight:ok',
      'step:probes:ok',
      'step:load:ok',
      'step:switch:fail',
      'promote.failed',
    ]);
  });

  it('looks again right before the switch: a reload that pointed the target elsewhere during the gates refuses it (what was load-tested is not what would go live)', async () => {
    const [blue, green, other] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' }), startSimulator({ name: 'green' })]);
    const text = (greenUrl: string) => promoteConfig(blue.url, greenUrl, `${FAST_GATES}deployWindows: { enabled: false }\n`);
    let next = text(green.url);
    const { agent, events, base, api } = await startAgent(parseAgentConfig(next), {
      processMetrics: false,
      ready: true,
      reloadConfig: () => Promise.resolve(parseAgentConfig(next)),
    });
    open.push({ agent, blue, green, events, base, api });
    let reloaded: Promise<unknown> | undefined;
    const stop = agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'probes') {
        next = text(other.url);
        reloaded = agent.reload('test');
      }
    });
    try {
      const { lines } = await promote(base, { to: 'green' });
      stop();
      expect(await reloaded).toMatchObject({ ok: true });
      expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'switch', switched: false, live: 'blue' });
      expect(String(lines.at(-1)!.reason)).toMatch(/^a reload changed green's address during the gates: what they tested is not what would go live/);
      expect(events.some((e) => e.type === 'traffic.switched')).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('outside the deploy window it refuses, unless an emergency with a reason, which is recorded', async () => {
    const s = await start(`${FAST_GATES}${closedWindows()}`);
    const refused = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green' } });
    expect(refused.status).toBe(409);
    const body = refused.body as { failedStep: string; reason: string };
    expect(body.failedStep).toBe('window');
    expect(body.reason).toMatch(/outside the feature release windows .* the next opens \w{3} \d{4}-\d{2}-\d{2} 00:00 America\/New_York/);
    expect(s.agent.activeEnvironment).toBe('blue');

    const noReason = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green', emergency: true } });
    expect(noReason.status).toBe(400);
    // A watch longer than a timer can wait would end at once, and call the promotion watched.
    const longWatch = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green', emergency: true, reason: 'x', watch: '30d' } });
    expect(longWatch.status).toBe(400);
    expect(JSON.stringify(longWatch.body)).toContain('30d is longer than 24d');
    expect(s.agent.activeEnvironment).toBe('blue');

    const { lines } = await promote(s.base, { to: 'green', emergency: true, reason: 'hotfix: order book crash' });
    expect(lines.at(-1)).toMatchObject({ ok: true, live: 'green' });
    const started = s.events.filter((e) => e.type === 'promote.started').at(-1)!;
    expect(started.data).toMatchObject({ emergency: true, reason: 'hotfix: order book crash' });
    const window = s.events.filter((e) => e.type === 'promote.step' && e.data.step === 'window').at(-1)!;
    expect(window.data).toMatchObject({ ok: true, figures: { emergency: true, reason: 'hotfix: order book crash' } });
    expect(String((window.data as { detail?: string }).detail)).toContain('allowed as an emergency: hotfix: order book crash');

    // Emergency rollbacks are never held by a window.
    const rollback = await s.api('POST', '/api/v1/rollback', { token: ADMIN, body: { reason: 'back out the hotfix' } });
    expect(rollback.status).toBe(200);
    expect(s.agent.activeEnvironment).toBe('blue');
  });

  it("judges the error ratio of a rollback's target on its time as live: a failure over before the rollback chose it raises no critical (regression: 25 % from before the switch failed the validation)", async () => {
    const s = await start('', (text) => text.replace('cooldown: 10m }', 'cooldown: 10m, settle: 1s }'));
    // Green fails for a while, then recovers; then blue fails, and the rule rolls back to green.
    s.green.setFaults({ status: 'unhealthy' });
    await waitUntil(() => s.agent.state().series.some((x) => x.env === 'green' && x.probe === 'health' && x.consecutiveFailures >= 10), 'green to fail');
    s.green.resetFaults();
    await waitUntil(() => s.agent.state().series.some((x) => x.env === 'green' && x.probe === 'health' && x.consecutiveSuccesses >= 3), 'green to recover');
    s.blue.setFaults({ status: 'unhealthy' });
    await waitUntil(() => s.events.some((e) => e.type === 'rollback.validated'), 'the rollback and its validation');
    expect(s.agent.activeEnvironment).toBe('green');
    const validated = s.events.find((e) => e.type === 'rollback.validated')!;
    const errorRatio = (validated.data.checks as { name: string; ok: boolean; detail: string }[]).find((c) => c.name === 'error-ratio')!;
    expect(errorRatio).toMatchObject({ ok: true });
    expect(errorRatio.detail).toMatch(/^error ratio on green since it went live \S+ ago 0\.0 % \(0 of [1-9]\d* probes\)/);
    expect(validated.severity).toBe('info');
  }, 30_000);

  it('still fails the validation of a target that fails once it is live: it waits for every probe to answer there first', async () => {
    const s = await start('');
    // Its universe probe fails from the switch on, every time; its health probe passes, so the
    // rule on health does not roll back again, and about half of what it answers fails.
    const unsubscribe = s.agent.bus.subscribe((event) => {
      if (event.type === 'traffic.switched') s.green.setFaults({ emptyUniverse: true });
    });
    const rollback = await s.api('POST', '/api/v1/rollback', { token: ADMIN, body: { reason: 'test the validation' } });
    unsubscribe();
    expect(rollback.status).toBe(200);
    await waitUntil(() => s.events.some((e) => e.type === 'rollback.validated'), 'the validation');
    const validated = s.events.find((e) => e.type === 'rollback.validated')!;
    const errorRatio = (validated.data.checks as { name: string; ok: boolean; detail: string }[]).find((c) => c.name === 'error-ratio')!;
    expect(s.agent.activeEnvironment).toBe('green');
    expect(errorRatio.ok).toBe(false);
    expect(errorRatio.detail).toMatch(/^error ratio on green since it went live .* >= 5\.0 %$/);
    expect(validated.severity).toBe('critical');
  }, 30_000);

  it('an environment that degrades during the watch is rolled back by the rules at once, even right after another rollback (no cooldown or settle holds the way back)', async () => {
    const s = await start(`${FAST_GATES.replace('watch: 1s', 'watch: 30s')}deployWindows: { enabled: false }\n`);
    // First an incident on blue: the rule fires and rolls back to green, leaving a 10-minute action cooldown and a 5-minute rule cooldown.
    s.blue.setFaults({ errorRatio: 1 });
    await waitUntil(() => s.agent.activeEnvironment === 'green', 'the first rollback');
    s.blue.resetFaults();
    await waitUntil(
      () => s.events.some((e) => e.type === 'rule.resolved') && s.events.some((e) => e.type === 'rollback.validated'),
      'the incident to resolve and its rollback validated',
    );
    s.agent.flags.set(['blue'], { FORCE_V2_FALLBACK: false, ALPHASTACK_V3_ENABLED: true, ALPHASTACK_V3_DISABLED: false }, { actor: 'test', reason: 'mended' });
    const before = s.events.length;

    // Promote the mended blue; it degrades once it is live.
    const unsubscribe = s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'verify') s.blue.setFaults({ errorRatio: 1 });
    });
    const { lines } = await promote(s.base, { to: 'blue' });
    unsubscribe();
    const result = lines.at(-1)!;
    expect(result).toMatchObject({ ok: false, failedStep: 'watch', switched: true, rolledBack: true, live: 'green' });
    expect(String(result.reason)).toMatch(/rolled back to green after .*live-health-failing/);
    await waitUntil(() => s.events.slice(before).some((e) => e.type === 'rollback.validated'), 'the rollback validation');
    const order = kinds(s.events.slice(before));
    expect(order.slice(0, order.indexOf('promote.failed') + 1)).toEqual([
      'promote.started',
      'step:window:ok',
      'step:preflight:ok',
      'step:probes:ok',
      'step:load:ok',
      'switched:green>blue',
      'step:switch:ok',
      'step:verify:ok',
      'rule.firing',
      'switched:blue>green',
      'step:watch:fail',
      'promote.failed',
    ]);
    expect(order.at(-1)).toBe('rollback.validated');
    expect(s.events.slice(before).some((e) => e.type === 'action.skipped')).toBe(false);
  }, 30_000);

  it('failures of a deploy on the idle environment, before its gates passed, do not roll back its promotion (regression: the 5 m error ratio fired at the switch)', async () => {
    const errorRatioRule = `  - name: live-error-ratio
    severity: critical
    when: { all: [ { fact: errorRatio, params: { probe: [health, universe], window: 1m }, operator: greaterThan, value: 0.10 } ] }
    minSamples: 20
    actions: [rollback]
`;
    const s = await start(`${FAST_GATES.replace('watch: 1s', 'watch: 3s')}deployWindows: { enabled: false }\n`, (text) =>
      text.replace('probes:\n', `${errorRatioRule}probes:\n`),
    );
    // The deploy: green fails every probe for a while (about 40 failed of its next probes), then comes up.
    s.green.setFaults({ errorRatio: 1 });
    const failed = () => s.events.filter((e) => e.type === 'probe.down' && e.env === 'green').length;
    await waitUntil(() => failed() >= 2, 'green to fail while it deploys');
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    s.green.resetFaults();
    await waitUntil(() => s.events.some((e) => e.type === 'probe.up' && e.env === 'green'), 'green to come up');
    const { lines } = await promote(s.base, { to: 'green' });
    expect(lines.at(-1), JSON.stringify(lines.at(-1))).toMatchObject({ ok: true, live: 'green', switched: true });
    expect(s.events.filter((e) => e.type === 'rule.firing')).toEqual([]);
    expect(s.agent.activeEnvironment).toBe('green');
    // The window rule still judges green on what it does once live: half its probes fail (the
    // universe, which the consecutive-failure rule does not read), and it is rolled back.
    s.green.setFaults({ emptyUniverse: true });
    await waitUntil(() => s.agent.activeEnvironment === 'blue', 'the rollback of a green that fails while live');
    expect(s.events.filter((e) => e.type === 'rule.firing').map((e) => [e.env, e.rule])).toEqual([['green', 'live-error-ratio']]);
  }, 30_000);

  it('a target that fails the post-switch verification is switched straight back', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`);
    const unsubscribe = s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'switch') s.green.setFaults({ status: 'degraded' });
    });
    const { lines } = await promote(s.base, { to: 'green' });
    unsubscribe();
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'verify', switched: true, rolledBack: true, live: 'blue' });
    expect(String(lines.at(-1)!.reason)).toContain('$.status ("degraded") not in [healthy]');
    expect(kinds(s.events).slice(5, 11)).toEqual([
      'switched:blue>green',
      'step:switch:ok',
      'step:verify:fail',
      'switched:green>blue',
      'step:revert:ok',
      'promote.failed',
    ]);
  });

  it('a target that stops answering after its gates is refused at the switch by the fresh verification: traffic never moves', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`);
    const unsubscribe = s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'load') s.green.setFaults({ hang: true });
    });
    const { lines } = await promote(s.base, { to: 'green' });
    unsubscribe();
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'switch', switched: false, live: 'blue' });
    expect(String(lines.at(-1)!.reason)).toMatch(/switch refused: green failed its fresh verification \(.*unknown: timeout: no complete answer within 1000ms/);
    expect(s.events.some((e) => e.type === 'traffic.switched')).toBe(false);
    expect(s.agent.activeEnvironment).toBe('blue');
  });

  it('a revert onto an old environment that fails its fresh verification is refused and pages: nothing switches blind', async () => {
    const s = await start(`${FAST_GATES}deployWindows: { enabled: false }\n`);
    const unsubscribe = s.agent.bus.subscribe((event) => {
      if (event.type === 'promote.step' && event.data.step === 'switch') {
        s.green.setFaults({ status: 'degraded' });
        s.blue.setFaults({ hang: true });
      }
    });
    const { lines } = await promote(s.base, { to: 'green' });
    unsubscribe();
    expect(lines.at(-1)).toMatchObject({ ok: false, failedStep: 'verify', switched: true, rolledBack: false, live: 'green' });
    const revert = s.events.find((e) => e.type === 'promote.step' && e.data.step === 'revert')!;
    expect(revert).toMatchObject({ severity: 'critical', data: { ok: false } });
    expect(revert.message).toMatch(/switch back to blue refused: blue failed its fresh verification/);
    expect(s.events.filter((e) => e.type === 'traffic.switched')).toHaveLength(1);
    expect(s.agent.activeEnvironment).toBe('green');
    const refused = s.agent.alerts.firing().find((notice) => notice.rule === 'promote-revert-refused');
    // Nothing ends a promotion's revert: the page resolves by itself, 5 minutes on, rather than fire for ever.
    expect(Date.parse(refused!.expiresAt!) - Date.parse(refused!.startsAt)).toBe(300_000);
  });

  it('without wait, answers once the switch is verified; the watch goes on and ends in promote.succeeded', async () => {
    const s = await start(`${FAST_GATES.replace('watch: 1s', 'watch: 2s')}deployWindows: { enabled: false }\n`);
    const response = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green', wait: false } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ ok: true, live: 'green', switched: true, detached: true });
    expect(s.events.some((e) => e.type === 'promote.succeeded')).toBe(false);
    await waitUntil(() => s.events.some((e) => e.type === 'promote.succeeded'), 'the watch to end');
    expect(kinds(s.events).slice(-3)).toEqual(['step:verify:ok', 'step:watch:ok', 'promote.succeeded']);
  });

  it('refuses a second promotion while one is in flight, and a promotion to the live environment', async () => {
    const s = await start(`${FAST_GATES.replace('watch: 1s', 'watch: 5s')}deployWindows: { enabled: false }\n`);
    const first = promote(s.base, { to: 'green' });
    await waitUntil(() => s.events.some((e) => e.type === 'promote.started'), 'the first promotion');
    const second = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green' } });
    expect(second.status).toBe(409);
    expect(await first).toMatchObject({ status: 200 });
    const same = await s.api('POST', '/api/v1/promote', { token: ADMIN, body: { to: 'green' } });
    expect(same.status).toBe(409);
    expect(JSON.stringify(same.body)).toContain('green is already live');
    const unauthorized = await fetch(`${s.base}/api/v1/promote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'blue' }),
    });
    expect(unauthorized.status).toBe(401);
  });
});

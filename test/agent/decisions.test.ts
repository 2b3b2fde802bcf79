/**
 * The decision half end to end: a real agent probing two simulators, a rule that fires, the
 * rollback through the webhook traffic adapter, flags to safe mode, an alert to a recording
 * receiver — and the judgement that keeps greenlight from making things worse.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil } from '../helpers/agent-harness.js';
import { startRecorder } from '../helpers/recorder.js';
import { tempDir } from '../helpers/tools.js';

const ADMIN = 'admin-token-for-tests';
const ROLLBACK = 'rollback-token-for-tests';

interface World {
  blue: Simulator;
  green: Simulator;
  recorder: Awaited<ReturnType<typeof startRecorder>>;
  agent: Agent;
  events: GreenlightEvent[];
  base: string;
  types: () => string[];
  api: (method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number; body: any }>;
}

let world: World | undefined;
afterEach(async () => {
  if (!world) return;
  await world.agent.close();
  await Promise.all([world.blue.close(), world.green.close(), world.recorder.close()]);
  world = undefined;
});

async function start(options: { dryRun?: boolean; trafficTimeout?: string; rule?: string } = {}): Promise<World> {
  const blue = await startSimulator({ name: 'blue' });
  const green = await startSimulator({ name: 'green' });
  const recorder = await startRecorder();
  const text = `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: ${blue.url} }
  green: { url: ${green.url} }
probeDefaults: { every: 100ms, timeout: 2s, jitter: 0 }
api: { adminToken: ${ADMIN}, rollbackToken: ${ROLLBACK} }
traffic: { type: webhook, url: ${recorder.url}/traffic, timeout: ${options.trafficTimeout ?? '2s'}, retries: 1 }
alerts:
  group: { wait: 500ms, interval: 200ms }
  receivers:
    - { type: webhook, name: recorder, url: ${recorder.url}/alerts, retries: 1, timeout: 1s }
actions:
  rollback: { type: rollback, cooldown: 10m }
  safe-mode: { type: flags, preset: emergency-rollback }
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    when:
      all:
        - ${options.rule ?? '{ fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 }'}
    keepFiringFor: 300ms
    actions: [rollback, safe-mode, page]
probes:
  - name: health
    path: /api/health
    expect: { json: [ { path: $.status, in: [healthy] } ] }
  - name: universe
    path: /api/alphastack/universe
    expect: { json: [ { path: $.universe, nonEmpty: true } ] }
`;
  const { agent, events, base, api: client } = await startAgent(parseAgentConfig(text), { dryRun: options.dryRun, ready: true });
  const api = (method: string, path: string, body?: unknown, token?: string) => client(method, path, { body, token });
  world = { blue, green, recorder, agent, events, base, types: () => events.map((e) => e.type), api };
  return world;
}

const firstIndex = (events: GreenlightEvent[], predicate: (e: GreenlightEvent) => boolean) => events.findIndex(predicate);

describe('a firing critical rule', () => {
  it('rolls back through the adapter, puts the failing environment in safe mode and pages, in that order of evidence', async () => {
    const w = await start();
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.types().includes('traffic.switched'), 'the switch');
    await waitUntil(() => w.events.filter((e) => e.type === 'action.succeeded').length >= 3, 'all three actions');
    await w.agent.settled();

    const down = firstIndex(w.events, (e) => e.type === 'probe.down' && e.probe === 'universe' && e.env === 'blue');
    const firing = firstIndex(w.events, (e) => e.type === 'rule.firing');
    const rollback = firstIndex(w.events, (e) => e.type === 'action.succeeded' && e.data.action === 'rollback');
    const switched = firstIndex(w.events, (e) => e.type === 'traffic.switched');
    expect(down).toBeGreaterThanOrEqual(0);
    expect(firing).toBeGreaterThan(down);
    expect(switched).toBeGreaterThan(firing);
    expect(rollback).toBeGreaterThan(switched);

    const firingEvent = w.events[firing]!;
    expect(firingEvent).toMatchObject({
      severity: 'critical',
      env: 'blue',
      rule: 'universe-failing',
      data: { incident: 'universe-failing#1', actions: ['rollback', 'safe-mode', 'page'] },
    });
    const figures = (firingEvent.data as { figures: { facts: { fact: string; observed: unknown }[]; env: string } }).figures;
    expect(figures.env).toBe('blue');
    expect(figures.facts[0]).toMatchObject({
      fact: 'consecutiveFailures',
      params: { probe: 'universe' },
      operator: 'greaterThanInclusive',
      value: 3,
      result: true,
    });
    expect(figures.facts[0]!.observed).toBeGreaterThanOrEqual(3);

    expect(w.events[switched]).toMatchObject({
      severity: 'warning',
      env: 'green',
      data: { from: 'blue', to: 'green', adapter: 'webhook', incident: 'universe-failing#1' },
    });
    const traffic = w.recorder.requests.filter((r) => r.path === '/traffic');
    expect(traffic).toHaveLength(1);
    expect(traffic[0]!.body).toMatchObject({ from: 'blue', to: 'green', rule: 'universe-failing', incident: 'universe-failing#1' });

    expect(w.agent.activeEnvironment).toBe('green');
    const metrics = await (await fetch(`${w.base}/metrics`)).text();
    expect(metrics).toContain('greenlight_active_environment{env="green"} 1');
    expect(metrics).toContain('greenlight_actions_total{action="rollback",outcome="succeeded"} 1');
    expect(metrics).toContain('greenlight_flag_enabled{flag="FORCE_V2_FALLBACK",env="blue"} 1');
    expect(metrics).toContain('greenlight_flag_enabled{flag="ALPHASTACK_PROTECTION",env="blue"} 1');

    const flags = w.agent.flags.get('blue');
    expect(flags).toMatchObject({ ALPHASTACK_PROTECTION: true, FORCE_V2_FALLBACK: true, ALPHASTACK_V3_DISABLED: true, ALPHASTACK_V3_ENABLED: false });
    expect(w.agent.flags.get('green')).toMatchObject({ FORCE_V2_FALLBACK: false, ALPHASTACK_V3_ENABLED: true });

    // The incident is about blue: once green is live and judged healthy it resolves at once,
    // usually within the group's wait — the receiver still hears of it, once, as resolved (never
    // lost). On a slow machine the firing notification may go first: the resolution then follows
    // after the group's interval (200ms here, not the default minute).
    await waitUntil(() => w.types().includes('rule.resolved'), 'the rule to resolve on the new live environment');
    await waitUntil(() => w.recorder.requests.some((r) => r.path === '/alerts'), 'the notification');
    const alerts = w.recorder.requests.filter((r) => r.path === '/alerts');
    expect(alerts[0]!.body).toMatchObject({
      version: '4',
      alerts: [{ labels: { alertname: 'universe-failing', rule: 'universe-failing', env: 'blue', severity: 'critical', probe: 'universe' } }],
    });
    await waitUntil(
      () => w.recorder.requests.filter((r) => r.path === '/alerts').some((r) => (r.body as { status: string }).status === 'resolved'),
      'the resolved notice',
    );
    // The receiver has it; the agent publishes alert.sent once the answer is back, a moment later.
    await waitUntil(() => w.types().includes('alert.sent'), 'alert.sent after the delivery');
    // Once per incident: one switch however long blue stays broken (judged over more probe rounds, not time).
    const servedBefore = w.blue.requestCount();
    await waitUntil(() => w.blue.requestCount() >= servedBefore + 6, 'more probe rounds on the broken blue');
    expect(w.recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(1);
  });

  it('holds and alerts "inconclusive" when both environments fail at the same moment', async () => {
    const w = await start();
    w.blue.setFaults({ emptyUniverse: true });
    w.green.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.events.some((e) => e.type === 'action.skipped' && e.data.action === 'rollback'), 'the rollback to be judged');
    await w.agent.settled();
    const skipped = w.events.find((e) => e.type === 'action.skipped' && e.data.action === 'rollback')!;
    expect(skipped).toMatchObject({ severity: 'critical', data: { judgement: 'inconclusive', from: 'blue', to: 'green' } });
    expect(skipped.message).toContain('both environments are failing');
    expect(w.agent.activeEnvironment).toBe('blue');
    expect(w.types()).not.toContain('traffic.switched');
    expect(w.recorder.requests.filter((r) => r.path === '/traffic')).toEqual([]);
    const names = () =>
      w.recorder.requests
        .filter((r) => r.path === '/alerts')
        .flatMap((r) => (r.body as { alerts: { labels: Record<string, string> }[] }).alerts.map((a) => a.labels.alertname));
    await waitUntil(() => names().includes('rollback-inconclusive'), 'the inconclusive alert');
    // One notification: the rule's own alert is muted by the stock inhibition (both failing mutes the environment's alerts).
    expect(names()).toEqual(['rollback-inconclusive']);
  });

  it('never switches onto an environment whose own probes fail, and alerts critical instead', async () => {
    const w = await start();
    w.green.setFaults({ status: 'degraded' });
    await waitUntil(() => w.agent.state().environments.green!.up === false, 'green to be seen failing');
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.events.some((e) => e.type === 'action.skipped' && e.data.action === 'rollback'), 'the rollback to be judged');
    await w.agent.settled();
    const skipped = w.events.find((e) => e.type === 'action.skipped' && e.data.action === 'rollback')!;
    expect(skipped).toMatchObject({ severity: 'critical', data: { judgement: 'target-unhealthy', failing: ['health'] } });
    expect(w.agent.activeEnvironment).toBe('blue');
    expect(w.recorder.requests.filter((r) => r.path === '/traffic')).toEqual([]);
    const alertRules = () =>
      w.recorder.requests
        .filter((r) => r.path === '/alerts')
        .flatMap((r) => (r.body as { alerts: { labels: Record<string, string> }[] }).alerts.map((a) => a.labels.alertname));
    await waitUntil(() => alertRules().includes('rollback-target-unhealthy'), 'the target-unhealthy alert');
    // Grouped: the rule's alert and the hold's in one notification.
    expect(w.recorder.requests.filter((r) => r.path === '/alerts')).toHaveLength(1);
    expect(alertRules().sort()).toEqual(['rollback-target-unhealthy', 'universe-failing']);
  });

  it('does not ping-pong between two flapping environments (one switch, then the anti-flap settle holds the way back)', async () => {
    const w = await start();
    // Both environments flap out of phase: each has its empty-universe spells while the other is fine.
    let phase = false;
    const flapper = setInterval(() => {
      phase = !phase;
      w.blue.setFaults({ emptyUniverse: phase });
      w.green.setFaults({ emptyUniverse: !phase });
    }, 600);
    try {
      await waitUntil(() => w.types().includes('traffic.switched'), 'the first switch');
      await waitUntil(
        () => w.events.filter((e) => e.type === 'action.skipped' && e.data.action === 'rollback').length >= 1,
        'a second rollback to be held back',
        15_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      clearInterval(flapper);
    }
    await w.agent.settled();
    expect(w.events.filter((e) => e.type === 'traffic.switched')).toHaveLength(1);
    expect(w.recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(1);
    const held = w.events.filter((e) => e.type === 'action.skipped' && e.data.action === 'rollback').map((e) => String((e.data as { reason: string }).reason));
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((reason) => /^(settling|target-unhealthy|inconclusive)/.test(reason))).toBe(true);
  });

  it('keeps rolling back when the alert receiver fails, and reports the failed alert', async () => {
    const w = await start();
    w.recorder.setResponder((path) => (path === '/alerts' ? 500 : 200));
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.types().includes('traffic.switched'), 'the switch');
    await waitUntil(() => w.types().includes('alert.failed'), 'the failed alert', 15_000);
    const failed = w.events.find((e) => e.type === 'alert.failed')!;
    expect(failed.data).toMatchObject({ receiver: 'recorder', receiverType: 'webhook', attempts: 2 });
    expect(w.agent.activeEnvironment).toBe('green');
  });

  it('reports a traffic adapter that hangs as a failed action and leaves traffic where it was', async () => {
    const w = await start({ trafficTimeout: '300ms' });
    w.recorder.setResponder((path) => (path === '/traffic' ? 'hang' : 200));
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.events.some((e) => e.type === 'action.failed' && e.data.action === 'rollback'), 'the failed rollback', 15_000);
    const failed = w.events.find((e) => e.type === 'action.failed')!;
    expect(failed.severity).toBe('critical');
    expect(failed.message).toMatch(/traffic webhook/);
    expect(failed.message).not.toContain(w.recorder.url);
    expect(w.agent.activeEnvironment).toBe('blue');
    expect(w.types()).not.toContain('traffic.switched');
    // The other actions went ahead: a hung adapter blocks nobody.
    expect(w.events.some((e) => e.type === 'action.succeeded' && e.data.action === 'page')).toBe(true);
  });

  it('in a dry run decides everything and does nothing', async () => {
    const w = await start({ dryRun: true });
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.events.filter((e) => e.type === 'action.skipped').length >= 3, 'three would-fire actions');
    await w.agent.settled();
    const skipped = w.events.filter((e) => e.type === 'action.skipped');
    expect(skipped.map((e) => e.message)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('dry run: would switch blue → green'),
        expect.stringContaining('dry run: would apply emergency-rollback to blue'),
        expect.stringContaining('dry run: would send a critical alert'),
      ]),
    );
    expect(skipped.every((e) => e.data.dryRun === true)).toBe(true);
    expect(w.agent.activeEnvironment).toBe('blue');
    expect(w.agent.flags.get('blue').FORCE_V2_FALLBACK).toBe(false);
    expect(w.recorder.requests).toEqual([]);
    expect(await (await fetch(`${w.base}/metrics`)).text()).toContain('greenlight_actions_total{action="rollback",outcome="dry_run"} 1');
  });

  it("in a dry run the operators' calls change nothing either: flag writes say what they would set, a locked flag is still refused, a promotion is refused", async () => {
    const w = await start({ dryRun: true });
    const auditBefore = (await w.api('GET', '/api/v1/flags', undefined, ADMIN)).body.audit.length;
    const set = await w.api('PUT', '/api/v1/flags', { set: { READ_ONLY_MODE: true }, env: 'blue', reason: 'try it' }, ADMIN);
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ dryRun: true, changed: [{ flag: 'READ_ONLY_MODE', env: 'blue', old: false, new: true }] });
    expect(set.body.detail).toBe('dry run: nothing was changed; would set READ_ONLY_MODE on on blue');
    const preset = await w.api('POST', '/api/v1/flags/emergency-rollback', { reason: 'try it' }, ROLLBACK);
    expect(preset.status).toBe(200);
    expect(preset.body.dryRun).toBe(true);
    expect(preset.body.changed.length).toBeGreaterThan(0);
    expect(w.agent.flags.get('blue')).toMatchObject({ READ_ONLY_MODE: false, FORCE_V2_FALLBACK: false, ALPHASTACK_V3_ENABLED: true });
    // The protection flag is judged as ever: refused and audited, dry run or not.
    expect((await w.api('PUT', '/api/v1/flags', { set: { ALPHASTACK_PROTECTION: false }, reason: 'x' }, ADMIN)).status).toBe(409);
    const audit = (await w.api('GET', '/api/v1/flags', undefined, ADMIN)).body.audit as { outcome: string }[];
    expect(audit.slice(auditBefore).map((entry) => entry.outcome)).toEqual(['rejected', 'rejected']);
    expect(w.events.some((e) => e.type === 'flag.changed')).toBe(false);
    const promote = await w.api('POST', '/api/v1/promote', { to: 'green' }, ADMIN);
    expect(promote.status).toBe(409);
    expect(promote.body.error).toContain('--dry-run');
    expect(w.agent.activeEnvironment).toBe('blue');
    expect(w.recorder.requests).toEqual([]);
  });
});

describe('manual controls', () => {
  it('answers the rollback endpoint with the contract status codes', async () => {
    const w = await start();
    expect((await w.api('POST', '/api/v1/rollback', { reason: 'x' })).status).toBe(401);
    expect((await w.api('POST', '/api/v1/rollback', { reason: 'x' }, 'wrong-token-value')).status).toBe(401);
    const bad = await w.api('POST', '/api/v1/rollback', { why: 'x' }, ROLLBACK);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain('reason');
    const done = await w.api('POST', '/api/v1/rollback', { reason: 'bad deploy' }, ROLLBACK);
    expect(done).toMatchObject({ status: 200, body: { ok: true, from: 'blue', to: 'green' } });
    expect(w.events.find((e) => e.type === 'traffic.switched')!.message).toContain('manual rollback by api:rollback: bad deploy');
    // The admin token works too; and a rollback onto a failing environment is refused.
    w.blue.setFaults({ status: 'degraded' });
    await waitUntil(() => w.agent.state().environments.blue!.up === false, 'blue to be seen failing');
    const refused = await w.api('POST', '/api/v1/rollback', { reason: 'back to blue' }, ADMIN);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toContain('target-unhealthy');
    expect(w.agent.activeEnvironment).toBe('green');
  });

  it('refuses to unlock ALPHASTACK_PROTECTION: 409, no change, an audit event; the rollback token cannot set flags', async () => {
    const w = await start();
    expect((await w.api('PUT', '/api/v1/flags', { set: { READ_ONLY_MODE: true }, reason: 'x' }, ROLLBACK)).status).toBe(403);
    const locked = await w.api('PUT', '/api/v1/flags', { set: { ALPHASTACK_PROTECTION: false }, reason: 'cleanup' }, ADMIN);
    expect(locked.status).toBe(409);
    expect(w.agent.flags.get('blue').ALPHASTACK_PROTECTION).toBe(true);
    expect(w.agent.flags.get('green').ALPHASTACK_PROTECTION).toBe(true);
    expect(w.events.find((e) => e.type === 'flag.rejected')).toMatchObject({ data: { actor: 'api:admin', flag: 'ALPHASTACK_PROTECTION' } });
  });
});

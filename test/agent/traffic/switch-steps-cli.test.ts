/**
 * The switch phase end to end: `greenlight run` (the built CLI) over two simulators, with a cdn
 * step against a local fake of Cloudflare's purge API and a recorder for the alerts; a promotion
 * through `greenlight promote` whose purge fails after the switch (it switches back, and the steps
 * run again after that switch), a rule's rollback and an operator's `greenlight rollback` whose
 * purge fails (a critical alert naming the step, no second switch). The token is in no output,
 * log line, event or state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { useSimulatorPair, waitUntil } from '../../helpers/agent-harness.js';
import { cli, startAgentProcess, type AgentProcess } from '../../helpers/cli.js';
import { startFakeCloudflare, type FakeCloudflare } from '../../helpers/fake-cloudflare.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';
import { startRecorder } from '../../helpers/recorder.js';
import { writeTempFile } from '../../helpers/tools.js';

const ZONE = '5f2a8c31d9e04b7a86c1e2d3f4a5b6c7';
const TOKEN = 'cf-e2e-token-R4n7Vq2Wz9Hx';

describe('the switch phase through the built CLI', () => {
  const pair = useSimulatorPair();
  let cloudflare: FakeCloudflare;
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  let agent: AgentProcess;
  let configFile: string;

  beforeAll(async () => {
    cloudflare = await startFakeCloudflare(TOKEN);
    recorder = await startRecorder();
    const steps = `switching:
  steps:
    - { step: cdn, timeout: 20s, purge: { type: cloudflare, zoneId: ${ZONE}, apiToken: "\${CLOUDFLARE_API_TOKEN}", baseUrl: "${cloudflare.baseUrl}", retries: 0, timeout: 15s } }
alerts:
  receivers:
    - { type: webhook, name: recorder, url: ${recorder.url}/alerts, retries: 0, timeout: 2s }
  # A group's next change goes out within seconds, not the default minute: each scenario waits for its own alert.
  group: { interval: 2s }
deployWindows: { enabled: false }
`;
    // No anti-flap wait: the scenarios switch back and forth within seconds.
    const text = promoteConfig(pair.blue.url, pair.green.url, `${FAST_GATES}${steps}`).replace('cooldown: 10m', 'cooldown: 0s');
    configFile = writeTempFile('switch-steps.yaml', text);
    agent = await startAgentProcess(configFile, { CLOUDFLARE_API_TOKEN: TOKEN });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([cloudflare?.close(), recorder?.close()]);
  });

  const switches = (events: GreenlightEvent[]) => events.filter((e) => e.type === 'traffic.switched').map((e) => `${String(e.data.from)}>${String(e.data.to)}`);
  const stepAlerts = () =>
    recorder.requests.flatMap((r) =>
      ((r.body as { alerts?: { status: string; labels: Record<string, string> }[] }).alerts ?? []).filter((a) => a.labels.alertname === 'switch-step-failed'),
    );

  /**
   * Each scenario arranges what it starts from (no test leans on the one before it, so the file
   * passes in any order): both environments healthy, every purge answered, `live` live (an
   * operator's rollback with a purge that passes, when the other one is).
   */
  async function arrange(live: 'blue' | 'green'): Promise<void> {
    pair.blue.resetFaults();
    pair.green.resetFaults();
    cloudflare.script();
    type State = { activeEnvironment: string; environments: Record<string, { health: { healthy: boolean } }> };
    const healthy = (state: State) => state.environments.blue!.health.healthy && state.environments.green!.health.healthy;
    await waitUntil(async () => healthy(await agent.get<State>('/api/v1/state')), 'both environments healthy', 30_000);
    if ((await agent.get<State>('/api/v1/state')).activeEnvironment !== live) {
      const run = await cli(['rollback', '--reason', `arrange: ${live} live`, '--url', agent.base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
      expect(run.code, run.stderr).toBe(0);
    }
    expect((await agent.get<State>('/api/v1/state')).activeEnvironment).toBe(live);
  }

  it('promotion: the purge fails after the switch, so verify fails and the promotion switches back (the purge then passes)', async () => {
    await arrange('blue');
    const since = (await agent.events()).length;
    const callsBefore = cloudflare.calls.length;
    const alertsBefore = stepAlerts().length;
    cloudflare.script({ status: 500, code: 1000, message: 'purge backend unavailable' });
    const run = await cli(['promote', '--to', 'green', '--url', agent.base], { ADMIN_TOKEN: ADMIN }, 60_000);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/✅ switch .* blue → green: .*; after it: ❌ cdn/);
    expect(run.stdout).toMatch(/ {3}switch: ❌ cdn .*HTTP 500: .*purge backend unavailable/);
    expect(run.stdout).toMatch(
      /❌ verify .* the step cdn after the switch failed: cloudflare purge of zone 5f2a8c31d9e04b7a86c1e2d3f4a5b6c7: rejected|❌ verify .* the step cdn after the switch failed: cloudflare purge of zone 5f2a8c31d9e04b7a86c1e2d3f4a5b6c7: gave up/,
    );
    expect(run.stdout).toMatch(/ {3}revert: ✅ cdn .*cloudflare purged everything in zone/);
    expect(run.stdout).toMatch(/✅ revert .* switched back green → blue/);
    expect(run.stdout).toContain('summary: ❌ not promoted: verify failed: the step cdn after the switch failed');
    expect(run.stdout).toContain('rolled back: blue is live');

    const events = (await agent.events()).slice(since);
    expect(switches(events)).toEqual(['blue>green', 'green>blue']);
    expect(cloudflare.calls.slice(callsBefore)).toHaveLength(2);
    for (const call of cloudflare.calls.slice(callsBefore))
      expect(call).toMatchObject({
        method: 'POST',
        path: `/client/v4/zones/${ZONE}/purge_cache`,
        authorization: `Bearer ${TOKEN}`,
        body: { purge_everything: true },
      });
    const steps = events.filter((e) => e.type.startsWith('switch.step_')).map((e) => `${e.type}:${String((e.data as { switch?: string }).switch)}`);
    expect(steps).toEqual(['switch.step_started:promotion', 'switch.step_failed:promotion', 'switch.step_started:rollback', 'switch.step_succeeded:rollback']);
    // No step alert fires after a promotion (a resolved notice of an earlier scenario may arrive).
    expect(
      stepAlerts()
        .slice(alertsBefore)
        .filter((alert) => alert.status === 'firing'),
    ).toEqual([]);
  }, 120_000);

  it("a rule's rollback whose purge fails: a critical alert names the step, the incident's action records it, no second switch", async () => {
    await arrange('blue');
    const before = switches(await agent.events()).length;
    const alertsBefore = stepAlerts().length;
    cloudflare.script({ status: 403, code: 10000, message: 'Authentication error' });
    pair.blue.setFaults({ status: 'unhealthy' });
    try {
      await waitUntil(() => stepAlerts().length > alertsBefore, 'the switch-step-failed alert', 30_000);
      const alert = stepAlerts()[alertsBefore];
      expect(alert).toMatchObject({
        status: 'firing',
        labels: { alertname: 'switch-step-failed', severity: 'critical', step: 'cdn', kind: 'cdn', from: 'blue', to: 'green' },
      });
      expect(alert!.labels.incident).toMatch(/^live-health-failing#\d+$/);
      const events = await agent.events();
      const succeeded = events.find((e) => e.type === 'action.succeeded' && e.data.action === 'rollback' && e.data.incident === alert!.labels.incident)!;
      expect(succeeded.data).toMatchObject({ from: 'blue', to: 'green', failedStep: { name: 'cdn', kind: 'cdn' } });
      expect(String((succeeded.data as { detail?: string }).detail)).toContain('then the step cdn failed');
      const failed = events.find((e) => e.type === 'switch.step_failed' && e.data.incident === alert!.labels.incident)!;
      expect(failed).toMatchObject({ severity: 'critical', rule: 'live-health-failing', data: { step: 'cdn', switch: 'rollback' } });
      expect(String((failed.data as { reason?: string }).reason)).toContain('Authentication error');
      // The incident runs to its end (the rule resolves on green) without switching again or owing anything.
      await waitUntil(
        async () => (await agent.events()).some((e) => e.type === 'rule.resolved' && e.data.incident === alert!.labels.incident),
        'the incident resolving',
        30_000,
      );
      const state = await agent.get<{ activeEnvironment: string; owed: unknown[] }>('/api/v1/state');
      expect(state.activeEnvironment).toBe('green');
      expect(state.owed).toEqual([]);
      expect(switches(await agent.events()).slice(before)).toEqual(['blue>green']);
    } finally {
      pair.blue.resetFaults();
    }
  }, 120_000);

  it('greenlight rollback whose purge fails: traffic moves once, exit 1 naming the step, a critical alert', async () => {
    await arrange('green');
    const before = switches(await agent.events()).length;
    const alertsBefore = stepAlerts().length;
    cloudflare.script({ status: 500, code: 1000, message: 'internal error' });
    const run = await cli(['rollback', '--reason', 'checkout errors after 3.2.1', '--url', agent.base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('✅ rolled back green → blue');
    expect(run.stdout).toMatch(/ {3}❌ cdn .*HTTP 500/);
    expect(run.stderr).toContain('❌ after the switch, cdn failed');
    expect(run.stderr).toContain('blue stays live (no second switch)');
    await waitUntil(() => stepAlerts().length > alertsBefore, 'the alert of the manual rollback', 30_000);
    expect(stepAlerts().at(-1)).toMatchObject({ status: 'firing', labels: { step: 'cdn', from: 'green', to: 'blue', severity: 'critical' } });
    const events = await agent.events();
    expect(switches(events).slice(before)).toEqual(['green>blue']);
    const manual = events.filter((e) => e.type === 'action.succeeded' && e.data.action === 'manual-rollback').at(-1)!;
    expect(manual.data).toMatchObject({ from: 'green', to: 'blue', failedStep: { name: 'cdn' } });

    // The token is nowhere a person or a client could read it.
    const state = await (await fetch(`${agent.base}/api/v1/state`)).text();
    const journal = JSON.stringify(await agent.events());
    for (const text of [state, journal, agent.output.join(''), run.stdout, run.stderr, JSON.stringify(recorder.requests)]) expect(text).not.toContain(TOKEN);
  }, 120_000);

  it('greenlight rollback waits for a purge that takes longer than an ordinary API call (10 s)', async () => {
    await arrange('blue');
    cloudflare.script({ delayMs: 11_000 });
    const run = await cli(['rollback', '--reason', 'slow CDN, still purged', '--url', agent.base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    // Past 10 s it says that it is still waiting (every 10 s), and nothing else.
    const said = run.stderr.trim().split('\n');
    expect(said[0]).toMatch(/^… waiting for http:\/\/127\.0\.0\.1:\d+ to answer \(10 s; /);
    expect(said.every((line) => line.startsWith('… waiting for '))).toBe(true);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('✅ rolled back blue → green');
    expect(run.stdout).toMatch(/ {3}✅ cdn .*cloudflare purged everything/);
  }, 120_000);

  it("stopped while an operator's rollback purges: the stop waits for it, the next start purges again and, as that fails too, sends the step's alert (regression: it was dropped)", async () => {
    await arrange('blue');
    const alertsBefore = stepAlerts().length;
    const callsBefore = cloudflare.calls.length;
    cloudflare.script('hang');
    const rollback = cli(['rollback', '--reason', 'stopped mid-purge', '--url', agent.base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    await waitUntil(() => cloudflare.calls.length > callsBefore, 'the purge under way', 30_000);
    await agent.stop();
    await rollback;
    cloudflare.script({ status: 500, code: 1000, message: 'purge backend still unavailable' });
    // The stop waited for the rollback to end: its record is complete, the step cut short by the stop.
    agent = await startAgentProcess(configFile, { CLOUDFLARE_API_TOKEN: TOKEN });
    await waitUntil(() => cloudflare.calls.length > callsBefore + 1, 'the purge run again by the next start', 30_000);
    const manual = (await agent.events()).filter((e) => e.type === 'action.succeeded' && e.data.action === 'manual-rollback').at(-1)!;
    expect(manual.data).toMatchObject({ from: 'blue', to: 'green', failedStep: { name: 'cdn' } });
    expect(String((manual.data as { detail?: string }).detail)).toContain('cancelled: the agent is stopping');
    const incident = String((manual.data as { incident?: string }).incident);
    const sent = () =>
      stepAlerts()
        .slice(alertsBefore)
        .filter((alert) => alert.labels.incident === incident);
    await waitUntil(() => sent().length > 0, 'the alert of the rollback cut short, sent by the next start', 30_000);
    expect(sent()).toMatchObject([{ status: 'firing', labels: { step: 'cdn', from: 'blue', to: 'green', severity: 'critical' } }]);
    expect((await agent.get<{ activeEnvironment: string }>('/api/v1/state')).activeEnvironment).toBe('green');
  }, 120_000);

  it('killed (kill -9) while a rollback purges: the next start runs the steps again, once (regression: settled as done, the purge never made, nobody told)', async () => {
    await arrange('green');
    const callsBefore = cloudflare.calls.length;
    cloudflare.script('hang');
    const rollback = cli(['rollback', '--reason', 'killed mid-purge', '--url', agent.base], { ROLLBACK_TOKEN: ADMIN }, 60_000);
    await waitUntil(() => cloudflare.calls.length > callsBefore, 'the purge under way', 30_000);
    agent.child.kill('SIGKILL');
    await agent.stop();
    await rollback;
    cloudflare.script();
    agent = await startAgentProcess(configFile, { CLOUDFLARE_API_TOKEN: TOKEN });
    const restarted = (await agent.events()).findLast((e) => e.type === 'agent.started')!.id;
    const after = async () => (await agent.events()).filter((e) => e.id > restarted);
    await waitUntil(async () => (await after()).some((e) => e.type === 'switch.step_succeeded'), 'the steps run again after the restart', 30_000);
    const steps = (await after()).filter((e) => e.type.startsWith('switch.step_'));
    expect(steps.map((e) => `${e.type}:${String((e.data as { from?: string }).from)}>${String((e.data as { to?: string }).to)}`)).toEqual([
      'switch.step_started:green>blue',
      'switch.step_succeeded:green>blue',
    ]);
    expect(cloudflare.calls.length - callsBefore).toBe(2);
    expect(switches(await after())).toEqual([]);
    expect((await agent.get<{ activeEnvironment: string }>('/api/v1/state')).activeEnvironment).toBe('blue');
  }, 120_000);

  it("killed (kill -9) while a promotion purges: the next start purges again and, as that fails, sends the step's alert; nothing switches back (regression: only a log line)", async () => {
    await arrange('blue');
    const alertsBefore = stepAlerts().length;
    const callsBefore = cloudflare.calls.length;
    cloudflare.script('hang');
    const promotion = cli(['promote', '--to', 'green', '--url', agent.base], { ADMIN_TOKEN: ADMIN }, 60_000);
    await waitUntil(() => cloudflare.calls.length > callsBefore, 'the purge under way', 30_000);
    agent.child.kill('SIGKILL');
    await agent.stop();
    await promotion;
    cloudflare.script({ status: 500, code: 1000, message: 'purge backend still unavailable' });
    agent = await startAgentProcess(configFile, { CLOUDFLARE_API_TOKEN: TOKEN });
    const restarted = (await agent.events()).findLast((e) => e.type === 'agent.started')!.id;
    const after = async () => (await agent.events()).filter((e) => e.id > restarted);
    await waitUntil(async () => (await after()).some((e) => e.type === 'switch.step_failed'), 'the steps run again after the restart', 30_000);
    const failed = (await after()).find((e) => e.type === 'switch.step_failed')!;
    expect(failed).toMatchObject({ severity: 'critical', env: 'green', data: { switch: 'promotion' } });
    const sent = () =>
      stepAlerts()
        .slice(alertsBefore)
        .filter((alert) => alert.status === 'firing');
    await waitUntil(() => sent().length > 0, "the step's alert, sent by the next start", 30_000);
    expect(sent()).toMatchObject([{ labels: { step: 'cdn', from: 'blue', to: 'green', severity: 'critical' } }]);
    expect(JSON.stringify(sent()[0])).toContain('Promotion blue → green switched, but the step cdn after it failed (run again after a restart)');
    expect(switches(await after())).toEqual([]);
    expect((await agent.get<{ activeEnvironment: string }>('/api/v1/state')).activeEnvironment).toBe('green');
  }, 120_000);
});

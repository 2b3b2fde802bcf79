/**
 * Held rollbacks, anti-flap and the fresh verification end to end: the built CLI (`greenlight
 * run`) against two simulators driven through their fault API, a recorder for the traffic
 * webhook and the alerts, and the operator's `greenlight rollback`. The same scenarios run on a
 * simulated clock in test/agent/actions/rollback-action.test.ts; here the times are scaled down
 * (probes every 200 ms, settle 3 s) and nothing is asserted about elapsed time, only about what
 * happened and in which order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { useSimulatorPair, waitUntil } from '../../helpers/agent-harness.js';
import { cli, startAgentProcess, type AgentProcess } from '../../helpers/cli.js';
import { startRecorder } from '../../helpers/recorder.js';
import { tempDir, writeTempFile } from '../../helpers/tools.js';

const ROLLBACK = 'rollback-token-cli-test-0001';

describe('greenlight run: held rollbacks, anti-flap, fresh verification', () => {
  const pair = useSimulatorPair();
  let agent: AgentProcess | undefined;
  let recorder: Awaited<ReturnType<typeof startRecorder>> | undefined;
  afterEach(async () => {
    await agent?.stop();
    await recorder?.close();
    pair.blue.resetFaults();
    pair.green.resetFaults();
    agent = recorder = undefined;
  });

  async function start(): Promise<{ agent: AgentProcess; recorder: NonNullable<typeof recorder> }> {
    recorder = await startRecorder();
    const file = writeTempFile(
      'greenlight.yaml',
      `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-cli-rollback-')}
environments:
  blue: { url: ${pair.blue.url} }
  green: { url: ${pair.green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0.1, confirm: { count: 0, spacing: 50ms, maxPerSecond: 10 } }
api: { rollbackToken: ${ROLLBACK} }
switching: { verifyTimeout: 500ms }
traffic: { type: webhook, url: ${recorder.url}/traffic, timeout: 2s, retries: 0 }
alerts:
  receivers:
    - { type: webhook, name: recorder, url: ${recorder.url}/alerts, retries: 0, timeout: 1s }
promote: { validateAfterRollback: false }
actions:
  rollback: { type: rollback, cooldown: 10m, settle: 3s }
  page: { type: alert }
rules:
  - name: live-universe-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    keepFiringFor: 1s
    actions: [rollback, page]
  - name: live-consecutive-failures
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: [health, discoveries, positions] }, operator: greaterThan, value: 10 } ] }
    keepFiringFor: 1s
    actions: [rollback, page]
probes:
  - { name: health, path: /api/health, confirm: { count: 2 }, expect: { json: [ { path: $.status, in: [healthy] } ] } }
  - { name: universe, path: /api/alphastack/universe, confirm: { count: 2 }, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
  - { name: discoveries, path: /api/discoveries }
  - { name: positions, path: /api/portfolio/positions }
`,
    );
    agent = await startAgentProcess(file);
    return { agent, recorder };
  }

  const of = (events: GreenlightEvent[], type: GreenlightEvent['type']) => events.filter((e) => e.type === type);
  /** action.* events of rollbacks: the rules' (action `rollback`) and the operator's (`manual-rollback`). */
  const rollbackEvents = (events: GreenlightEvent[], type: GreenlightEvent['type']) =>
    of(events, type).filter((e) => (e.data as Record<string, unknown>).type === 'rollback');
  const traffic = (r: NonNullable<typeof recorder>) =>
    r.requests.filter((q) => q.path === '/traffic').map((q) => q.body as { from: string; to: string; incident: string });
  const alertNames = (r: NonNullable<typeof recorder>) =>
    r.requests
      .filter((q) => q.path === '/alerts')
      .flatMap((q) => (q.body as { alerts: { labels: Record<string, string> }[] }).alerts.map((a) => a.labels.alertname));
  async function waitForEvents(
    a: AgentProcess,
    what: string,
    condition: (events: GreenlightEvent[]) => boolean,
    timeoutMs = 20_000,
  ): Promise<GreenlightEvent[]> {
    let events: GreenlightEvent[] = [];
    await waitUntil(async () => condition((events = await a.events())), what, timeoutMs);
    return events;
  }
  const owed = (a: AgentProcess) => a.get<{ owed: { incident: string; waiting: string | null; attempts: number }[] }>('/api/v1/state').then((s) => s.owed);

  it('both fail, recover, then the live one fails: one switch, by a new incident (the held one left no cooldown)', async () => {
    const { agent: a, recorder: r } = await start();
    pair.blue.setFaults({ errorRatio: 1 });
    pair.green.setFaults({ errorRatio: 1 });
    await waitForEvents(
      a,
      'the held rollback',
      (events) => rollbackEvents(events, 'action.skipped').length + rollbackEvents(events, 'action.failed').length > 0,
    );
    pair.blue.resetFaults();
    pair.green.resetFaults();
    await waitForEvents(a, 'every incident to resolve', (events) => of(events, 'rule.resolved').length >= of(events, 'rule.firing').length);
    expect(traffic(r)).toEqual([]);

    pair.blue.setFaults({ emptyUniverse: true });
    const events = await waitForEvents(a, 'the switch', (all) => of(all, 'traffic.switched').length > 0);
    expect(traffic(r)).toEqual([expect.objectContaining({ from: 'blue', to: 'green', incident: 'live-universe-failing#2' })]);
    expect(
      of(events, 'rule.firing')
        .filter((e) => e.rule === 'live-universe-failing')
        .map((e) => (e.data as { incident: string }).incident),
    ).toEqual(['live-universe-failing#1', 'live-universe-failing#2']);
  });

  it('the live one fails while the other is failing; the other recovers with the rule still firing: one switch, as the retry of that incident', async () => {
    const { agent: a, recorder: r } = await start();
    pair.green.setFaults({ errorRatio: 1 });
    await waitUntil(
      async () =>
        (await a.get<{ environments: { green: { health: { failing: string[] } } } }>('/api/v1/state')).environments.green.health.failing.includes('universe'),
      'green seen failing, universe included',
    );
    pair.blue.setFaults({ emptyUniverse: true });
    const held = await waitForEvents(a, 'the held rollback', (events) => rollbackEvents(events, 'action.skipped').length > 0);
    expect(rollbackEvents(held, 'action.skipped')[0]!.data).toMatchObject({ judgement: 'inconclusive', owed: true, incident: 'live-universe-failing#1' });
    await waitUntil(
      async () => (await owed(a)).some((debt) => debt.incident === 'live-universe-failing#1' && debt.waiting !== null),
      'a retry to be considered and held',
    );
    expect(traffic(r)).toEqual([]);

    pair.green.resetFaults();
    const events = await waitForEvents(a, 'the retried rollback', (all) => of(all, 'traffic.switched').length > 0);
    expect(traffic(r)).toEqual([expect.objectContaining({ from: 'blue', to: 'green', incident: 'live-universe-failing#1' })]);
    expect(rollbackEvents(events, 'action.started').at(-1)!.data).toMatchObject({ retryOf: 'live-universe-failing#1' });
    // Told within the group wait (5 s), if need be as already resolved by the switch.
    await waitUntil(() => alertNames(r).includes('rollback-inconclusive'), 'the inconclusive alert');
  });

  it('rolled back to green, green fails later while blue has been healthy since: one switch back', async () => {
    const { agent: a, recorder: r } = await start();
    pair.blue.setFaults({ emptyUniverse: true });
    await waitForEvents(a, 'the rollback to green', (events) => of(events, 'traffic.switched').length === 1);
    pair.blue.resetFaults();
    // Blue passes its probes for longer than settle (3 s).
    await waitUntil(
      async () =>
        (await a.get<{ environments: { blue: { health: { passingForMs: number } } } }>('/api/v1/state')).environments.blue.health.passingForMs > 4_000,
      'blue to pass for more than settle',
      20_000,
    );
    pair.green.setFaults({ emptyUniverse: true });
    await waitForEvents(a, 'the switch back', (events) => of(events, 'traffic.switched').length === 2);
    expect(traffic(r).map((t) => `${t.from}>${t.to}`)).toEqual(['blue>green', 'green>blue']);
  });

  it('the same with blue still failing: hold and alert, no switch', async () => {
    const { agent: a, recorder: r } = await start();
    pair.blue.setFaults({ errorRatio: 1 });
    await waitForEvents(a, 'the rollback to green', (events) => of(events, 'traffic.switched').length === 1);
    pair.green.setFaults({ emptyUniverse: true });
    const events = await waitForEvents(a, 'the held rollback', (all) => rollbackEvents(all, 'action.skipped').some((e) => e.env === 'green'));
    const held = rollbackEvents(events, 'action.skipped').find((e) => e.env === 'green')!;
    expect(held.severity).toBe('critical');
    expect(String((held.data as Record<string, unknown>).judgement)).toMatch(/^(inconclusive|target-unhealthy)$/);
    await waitUntil(() => alertNames(r).some((name) => name === 'rollback-inconclusive' || name === 'rollback-target-unhealthy'), 'the hold alert');
    // Retries are considered and held while blue fails.
    await waitUntil(
      async () => (await owed(a)).some((debt) => debt.incident === (held.data as Record<string, unknown>).incident && debt.waiting !== null),
      'a retry to be considered and held',
    );
    expect(traffic(r)).toHaveLength(1);
  });

  it('a live environment that keeps flapping (1 s failing in every 3 s, for 30 s) moves traffic once', async () => {
    const { agent: a, recorder: r } = await start();
    for (let cycle = 0; cycle < 10; cycle++) {
      pair.blue.setFaults({ errorRatio: 1 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      pair.blue.resetFaults();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    await a.events();
    expect(traffic(r)).toEqual([expect.objectContaining({ from: 'blue', to: 'green' })]);
  }, 60_000);

  it('a target that hangs is never switched onto: greenlight rollback exits 1 (HTTP 409) with the check, an event and an alert; a rule rollback is owed and goes once it answers', async () => {
    const { agent: a, recorder: r } = await start();
    pair.green.setFaults({ hang: true });
    const run = await cli(['rollback', '--reason', 'blue looks wrong', '--url', a.base], { ROLLBACK_TOKEN: ROLLBACK });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/rollback refused: .*green/);
    const answer = await fetch(`${a.base}/api/v1/rollback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ROLLBACK}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'again' }),
    });
    expect(answer.status).toBe(409);
    expect(((await answer.json()) as { error: string }).error).toMatch(/green/);
    const refusals = await waitForEvents(
      a,
      'the refusal events',
      (events) => rollbackEvents(events, 'action.failed').length + rollbackEvents(events, 'action.skipped').length >= 2,
    );
    const named = [...rollbackEvents(refusals, 'action.failed'), ...rollbackEvents(refusals, 'action.skipped')].map((e) => e.message);
    // Named by the check: the fresh probe's timeout, or the scheduled probes overdue (unknown) or timed out.
    expect(named.every((message) => /timeout: no complete answer|unknown|failing \(/.test(message))).toBe(true);
    await waitUntil(() => alertNames(r).some((name) => name === 'rollback-unverified' || name === 'rollback-target-unhealthy'), 'the refusal alert');

    pair.blue.setFaults({ emptyUniverse: true });
    await waitForEvents(a, 'the rule rollback to be held', (events) =>
      rollbackEvents(events, 'action.started').some((e) => e.rule === 'live-universe-failing'),
    );
    await waitUntil(
      async () => (await owed(a)).some((debt) => debt.incident === 'live-universe-failing#1' && debt.waiting !== null),
      'a retry to be considered and held',
    );
    expect(traffic(r)).toEqual([]);
    pair.green.resetFaults();
    const events = await waitForEvents(a, 'the retried rollback', (all) => of(all, 'traffic.switched').length > 0);
    expect(traffic(r)).toEqual([expect.objectContaining({ from: 'blue', to: 'green', incident: 'live-universe-failing#1' })]);
    expect(rollbackEvents(events, 'action.succeeded').at(-1)!.data).toMatchObject({ retryOf: 'live-universe-failing#1' });
  }, 60_000);
});

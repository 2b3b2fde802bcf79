/**
 * The rollback's judgement over whole incidents, on a simulated clock: the real agent on the stock
 * config (probes every 500 ms, as the issue tried it), its targets scripted (500s, an empty
 * universe, a hang). Held rollbacks are owed and retried, cooldowns start only from switches that
 * happened, anti-flap judges the target, and no switch lands on an environment that has not just
 * answered. Every bound is on simulated time, which the code alone decides.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { Store } from '../../../agent/events/store.js';
import { STOCK, T0, startScriptedPair, type ScriptedPair } from '../../helpers/scripted-pair.js';
import { tempDir } from '../../helpers/tools.js';

const INTERVAL = 500;

let world: ScriptedPair | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function start(options?: Parameters<typeof startScriptedPair>[0]): Promise<ScriptedPair> {
  world = await startScriptedPair(options);
  return world;
}

const data = (event: GreenlightEvent) => event.data as Record<string, unknown>;
const rollbacks = (events: GreenlightEvent[], type: GreenlightEvent['type']) => events.filter((e) => e.type === type && data(e).action === 'rollback');

/** Simulated time from an empty universe on the live blue to the switch, on a clean pair: the usual detection time. */
async function usualDetection(): Promise<number> {
  const w = await startScriptedPair();
  try {
    const fault = w.now();
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length > 0, 30_000, 'the switch on a clean pair');
    return w.at(w.switches()[0]!) - fault;
  } finally {
    await w.close();
  }
}

describe('a held rollback is owed, and retried', () => {
  it('both fail, recover, then the live one fails: one switch, within the usual detection time', async () => {
    const usual = await usualDetection();
    const w = await start();
    w.faults.blue.down = w.faults.green.down = true;
    await w.advance(20_000);
    expect(rollbacks(w.events, 'action.skipped').length).toBeGreaterThan(0);
    expect(w.switches()).toEqual([]);
    w.faults.blue.down = w.faults.green.down = false;
    // Past the rollback's settle (30 s): green's 5 m error ratio still remembers the shared
    // outage, and a target outweighs what its windows remember by passing every probe that long.
    await w.advance(35_000);
    expect(w.switches()).toEqual([]);

    const fault = w.now();
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length > 0, 30_000, 'the switch');
    // The phase of the schedule against the fault differs by at most one interval.
    expect(w.at(w.switches()[0]!) - fault).toBeLessThanOrEqual(usual + INTERVAL);
    expect(w.switches()[0]!.data).toMatchObject({ from: 'blue', to: 'green' });
    await w.advance(60_000);
    expect(w.switches()).toHaveLength(1);
    expect(w.trafficCalls).toHaveLength(1);
  });

  it('the live one fails while the other is failing; the other recovers with the rule still firing: one switch, at once, as the retry of that incident', async () => {
    const w = await start({ warmupMs: 300_000 });
    w.faults.green.down = true;
    await w.advance(3_000);
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    const held = rollbacks(w.events, 'action.skipped')[0]!;
    expect(held.data).toMatchObject({ judgement: 'inconclusive', owed: true, incident: 'live-universe-failing#1' });
    // Within the stock group wait (5 s): the hold's alert, with the rule's muted by it (both failing).
    await w.advanceUntil(() => w.alertNames().includes('rollback-inconclusive'), 5_000, 'the inconclusive alert');
    await w.advance(20_000);
    expect(w.switches()).toEqual([]);
    // Held once, not again on every sample while nothing changed.
    expect(rollbacks(w.events, 'action.started')).toHaveLength(1);
    expect(w.agent.state().owed).toEqual([
      expect.objectContaining({ action: 'rollback', incident: 'live-universe-failing#1', attempts: 0, waiting: expect.stringMatching(/^inconclusive/) }),
    ]);

    const recovered = w.now();
    w.faults.green.down = false;
    await w.advanceUntil(() => w.switches().length > 0, 10_000, 'the retried rollback');
    // At once: green's first round after it recovered, then one fresh round of blue's probes to
    // show blue still fails alone (two intervals, each up to 10 % longer with the stock jitter).
    expect(w.at(w.switches()[0]!) - recovered).toBeLessThanOrEqual(2 * INTERVAL * 1.1);
    const retry = rollbacks(w.events, 'action.started')[1]!;
    expect(retry.data).toMatchObject({ retryOf: 'live-universe-failing#1', attempt: 1 });
    expect(retry.message).toContain('retry 1 of the rollback held for live-universe-failing#1');
    expect(rollbacks(w.events, 'action.succeeded')[0]!.data).toMatchObject({ retryOf: 'live-universe-failing#1', from: 'blue', to: 'green' });
    // The hold's alert resolves with the switch: its receivers hear it within the group interval (1 m).
    await w.advanceUntil(
      () => w.alerts.some((body) => body.alerts.some((a) => a.status === 'resolved' && a.labels.alertname === 'rollback-inconclusive')),
      60_000,
      'the resolved inconclusive alert',
    );
    await w.advance(60_000);
    expect(w.switches()).toHaveLength(1);
    expect(w.agent.state().owed).toEqual([]);
  });

  it("the live one's errors fired while the other hung; the live one recovers, then the other: no switch from a window that remembers (regression: switched 62 s after blue had recovered)", async () => {
    const w = await start({ warmupMs: 300_000 });
    w.faults.green.hang = true;
    await w.advance(3_000);
    w.faults.blue.down = true;
    await w.advanceUntil(
      () => w.events.some((e) => e.type === 'rule.firing' && e.rule === 'live-error-ratio-critical'),
      60_000,
      'the error-ratio rule to fire on blue',
    );
    await w.advance(20_000);
    expect(w.switches()).toEqual([]);
    w.faults.blue.down = false;
    await w.advance(20_000);
    w.faults.green.hang = false;
    await w.advance(120_000);
    expect(w.switches()).toEqual([]);
    expect(w.agent.activeEnvironment).toBe('blue');
  });

  it('the live one answers 500 while the other hangs: target-unhealthy, not "suspect greenlight\'s network" (regression: inconclusive, muting the live one\'s criticals)', async () => {
    const w = await start({ warmupMs: 300_000 });
    w.faults.green.hang = true;
    await w.advance(12_000);
    w.faults.blue.down = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 30_000, 'the held rollback');
    const judgements = rollbacks(w.events, 'action.skipped').map((e) => data(e).judgement);
    expect(judgements).not.toContain('inconclusive');
    expect(judgements[0]).toBe('target-unhealthy');
    expect(w.switches()).toEqual([]);
  });

  it('a rule still firing from the both-failing period acts when the live one then fails alone', async () => {
    // Only the error-ratio rule: it fires while both fail and stays firing (its 5-minute window) after they recover.
    const w = await start({ config: onlyRules(['live-error-ratio-critical']) });
    w.faults.blue.down = w.faults.green.down = true;
    await w.advance(20_000);
    expect(rollbacks(w.events, 'action.skipped').length).toBeGreaterThan(0);
    w.faults.blue.down = w.faults.green.down = false;
    await w.advance(40_000);
    expect(w.agent.state().rules.find((r) => r.rule === 'live-error-ratio-critical')!.state).toBe('firing');
    expect(w.switches()).toEqual([]);

    // Blue alone fails now; the rule does not fire again on blue (it never stopped), its owed rollback acts.
    w.faults.blue.down = true;
    await w.advanceUntil(() => w.switches().length > 0, 10_000, 'the owed rollback');
    expect(rollbacks(w.events, 'action.succeeded')[0]!.data).toMatchObject({ retryOf: 'live-error-ratio-critical#1', from: 'blue', to: 'green' });
    const firing = w.events.filter((e) => e.type === 'rule.firing');
    expect(firing[0]!).toMatchObject({ env: 'blue', data: { incident: 'live-error-ratio-critical#1' } });
    // Green's window remembers the shared failure: on green the rule is a new incident, whose
    // rollback onto the failing blue is held. One switch.
    await w.advance(30_000);
    expect(
      w.events
        .filter((e) => e.type === 'rule.firing')
        .slice(1)
        .every((e) => e.env === 'green'),
    ).toBe(true);
    expect(w.switches()).toHaveLength(1);
  });
});

/**
 * Green down, then blue's universe empty (the rollback held), until `held`; `check` that world,
 * then stop greenlight. When it stopped, for the world that starts it again on `dataDir`.
 */
async function holdThenStop(
  dataDir: string,
  maxMs: number,
  held: (w: ScriptedPair) => boolean,
  what: string,
  check: (w: ScriptedPair) => void,
): Promise<number> {
  const first = await startScriptedPair({ dataDir });
  try {
    first.faults.green.down = true;
    await first.advance(3_000);
    first.faults.blue.emptyUniverse = true;
    await first.advanceUntil(() => held(first), maxMs, what);
    check(first);
    return first.now();
  } finally {
    await first.close();
  }
}

describe('an owed rollback survives a restart', () => {
  it('is stored with its incident and retried after the restart once the judgement passes, as the retry of that incident', async () => {
    const dataDir = tempDir('greenlight-owed-restart-');
    const stoppedAt = await holdThenStop(
      dataDir,
      10_000,
      (first) => rollbacks(first.events, 'action.skipped').length > 0,
      'the held rollback',
      (first) => expect(first.agent.state().owed).toEqual([expect.objectContaining({ incident: 'live-universe-failing#1' })]),
    );

    // greenlight restarts; green has recovered meanwhile, blue still has no universe.
    const w = await start({ dataDir, startAt: stoppedAt + 10_000, faults: { blue: { emptyUniverse: true } } });
    await w.advanceUntil(() => w.switches().length > 0, 20_000, 'the owed rollback after the restart');
    expect(rollbacks(w.events, 'action.succeeded')[0]!.data).toMatchObject({ retryOf: 'live-universe-failing#1', from: 'blue', to: 'green' });
    // The incident went on firing across the restart: no second one, its actions not repeated.
    expect(w.events.filter((e) => e.type === 'rule.firing')).toEqual([]);
    expect(w.switches()).toHaveLength(1);
  });

  it('is not held as target-unhealthy, nor paged, before greenlight has a result from the target (regression: "blue is not healthy: no result yet" paged at every restart)', async () => {
    // Rolled back to green; blue recovers; green fails 2 s later: the way back waits for blue to
    // settle (a warning, muted by the rule's critical), owed when greenlight stops.
    const dataDir = tempDir('greenlight-owed-unprobed-');
    const first = await startScriptedPair({ dataDir });
    let stoppedAt: number;
    try {
      first.faults.blue.emptyUniverse = true;
      await first.advanceUntil(() => first.switches().length === 1, 10_000, 'the rollback to green');
      first.faults.blue.emptyUniverse = false;
      await first.advance(2_000);
      first.faults.green.emptyUniverse = true;
      await first.advanceUntil(() => first.agent.state().owed.length > 0, 10_000, 'the held way back');
      expect(first.agent.state().owed[0]!.reason).toMatch(/^settling/);
      stoppedAt = first.now();
    } finally {
      await first.close();
    }

    // Restarted: green still fails; blue is healthy but answers in 900 ms, so green's universe fails
    // three times (confirmation) before blue's first answers are in.
    const w = await start({ dataDir, startAt: stoppedAt + 5_000, warmupMs: 0, faults: { green: { emptyUniverse: true }, blue: { latencyMs: 900 } } });
    await w.advanceUntil(() => w.switches().length > 0, 60_000, 'the owed rollback once blue has settled');
    expect(rollbacks(w.events, 'action.succeeded')[0]!.data).toMatchObject({ retryOf: 'live-universe-failing#2', from: 'green', to: 'blue' });
    // What greenlight had not seen yet was never paged as blue being unhealthy.
    expect(w.alertNames()).not.toContain('rollback-target-unhealthy');
    expect(w.agent.alerts.firing().map((notice) => notice.rule)).not.toContain('rollback-target-unhealthy');
  });

  it("killed while its retry's switch was at the traffic webhook: settled as interrupted, never sent again (regression: retried before the restart settled it, a second switch sent)", async () => {
    // The store as a kill -9 leaves it: blue's incident owed its rollback (held while green was
    // down), the retry started and written down as sent to the webhook, no answer recorded.
    const dataDir = tempDir('greenlight-owed-crash-');
    const incident = 'live-universe-failing#1';
    const startedAt = T0 - 60_000;
    const context = {
      rule: 'live-universe-failing',
      incident,
      env: 'blue',
      severity: 'critical' as const,
      message: 'blue has no universe',
      actor: 'rule:live-universe-failing',
      startedAt,
    };
    const store = Store.open(dataDir);
    store.set('activeEnvironment', 'blue');
    store.set('switchesSent', { [incident]: T0 - 1_000 });
    const { rule, ...stored } = context;
    store.set('incidents', {
      [rule]: { ...stored, owed: [{ action: 'rollback', since: startedAt, reason: "target-unhealthy: green's own probes are failing (health)" }] },
    });
    store.recordAction({ incident, action: 'rollback', type: 'rollback', state: 'started', context, startedAt: T0 - 1_500 });
    store.close();

    // Restarted: blue still has no universe (three failures within the confirmation's 0.2 s), green
    // is healthy; blue's other probes answer in 900 ms, so its first round ends well after that.
    const slow = { '/api/health': 900, '/api/discoveries': 900, '/api/portfolio/positions': 900 };
    const w = await start({ dataDir, startAt: T0, warmupMs: 0, faults: { blue: { emptyUniverse: true, latencyMs: slow } } });
    await w.advanceUntil(() => w.events.some((e) => e.type === 'action.failed' && e.data.reconciled === true), 10_000, 'the interrupted retry settled');
    expect(w.events.find((e) => e.type === 'action.failed' && e.data.reconciled === true)!.message).toContain('cannot report where traffic goes');
    await w.advance(30_000);
    // The switch that may have landed is for a person to check: not sent a second time.
    expect(w.trafficCalls).toEqual([]);
    expect(w.switches()).toEqual([]);
    expect(rollbacks(w.events, 'action.started')).toEqual([]);
    expect(w.alertNames()).toContain('rollback-interrupted');
  });
});

describe('an owed rollback whose action was renamed (regression: dropped without a word; blue stayed live and failing)', () => {
  const renamed = STOCK.replace(/^ {2}rollback:$/m, '  rb:').replaceAll('actions: [rollback,', 'actions: [rb,');
  /** A rollback held (green down) and owed when greenlight stops; the next start is the test's. */
  const heldBeforeRestart = async () => {
    const dataDir = tempDir('greenlight-owed-rename-');
    const stoppedAt = await holdThenStop(
      dataDir,
      10_000,
      (first) => rollbacks(first.events, 'action.skipped').length > 0,
      'the held rollback',
      () => undefined,
    );
    return { dataDir, stoppedAt };
  };

  it('before a restart: the debt goes on under the new name, and the rollback happens', async () => {
    const { dataDir, stoppedAt } = await heldBeforeRestart();
    const w = await start({ dataDir, config: renamed, startAt: stoppedAt + 10_000, faults: { blue: { emptyUniverse: true } } });
    await w.advanceUntil(() => w.switches().length > 0, 20_000, 'the owed rollback, as rb');
    expect(w.events.find((e) => e.type === 'action.succeeded' && e.data.action === 'rb')!.data).toMatchObject({
      retryOf: 'live-universe-failing#1',
      from: 'blue',
      to: 'green',
    });
    expect(w.switches()).toHaveLength(1);
  });

  it('before a restart, with no rollback action left for the rule: dropped loudly, a critical action.failed', async () => {
    const { dataDir, stoppedAt } = await heldBeforeRestart();
    const none = renamed.replaceAll('actions: [rb, ', 'actions: [');
    const w = await start({ dataDir, config: none, startAt: stoppedAt + 10_000, faults: { blue: { emptyUniverse: true } } });
    await w.advanceUntil(() => w.events.some((e) => e.type === 'action.failed' && e.data.dropped === true), 20_000, 'the dropped debt');
    const dropped = w.events.find((e) => e.type === 'action.failed' && e.data.dropped === true)!;
    expect(dropped.severity).toBe('critical');
    expect(dropped.message).toContain('rollback owed to live-universe-failing#1 dropped: no rollback action of its rule is configured any more');
    expect(w.agent.state().owed).toEqual([]);
    expect(w.switches()).toEqual([]);
  });
});

describe("a hold's alert survives a restart", () => {
  it('raised before the restart, it resolves when the incident ends after it (regression: it fired on, muting the environment through inhibition)', async () => {
    const dataDir = tempDir('greenlight-hold-alert-restart-');
    const stoppedAt = await holdThenStop(
      dataDir,
      70_000,
      (first) => first.alertNames().some((name) => name.startsWith('rollback-')),
      'the hold alert',
      (first) =>
        // Both fail the universe: inconclusive, which the stock inhibition lets mute every other alert of blue.
        expect(first.alertNames().filter((name) => name.startsWith('rollback-'))).toEqual(['rollback-inconclusive']),
    );
    const holds = (w: ScriptedPair) => w.agent.alerts.firing().filter((notice) => notice.rule === 'rollback-inconclusive');
    // Restarted with both still failing: the incident and its hold alert go on.
    const w = await start({ dataDir, startAt: stoppedAt + 10_000, faults: { blue: { emptyUniverse: true }, green: { down: true } } });
    expect(holds(w)).toHaveLength(1);
    await w.advance(10_000);
    // Blue recovers: the incident resolves, and with it the alert its hold raised before the restart.
    w.faults.blue.emptyUniverse = false;
    await w.advanceUntil(() => w.events.some((e) => e.type === 'rule.resolved' && e.rule === 'live-universe-failing'), 400_000, 'the incident to resolve');
    await w.advanceUntil(
      () => w.alerts.some((body) => body.alerts.some((a) => a.labels.alertname === 'rollback-inconclusive' && a.status === 'resolved')),
      120_000,
      'the hold alert resolved',
    );
    expect(holds(w)).toEqual([]);
    expect(w.switches()).toEqual([]);
  });
});

describe('anti-flap judges the target, not a clock', () => {
  it('rolled back to green, green fails 2 minutes later while blue has been healthy since: one switch back', async () => {
    const w = await start();
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length === 1, 10_000, 'the rollback to green');
    w.faults.blue.emptyUniverse = false;
    await w.advance(120_000);
    const fault = w.now();
    w.faults.green.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length === 2, 10_000, 'the switch back to blue');
    expect(w.switches()[1]!.data).toMatchObject({ from: 'green', to: 'blue' });
    expect(w.at(w.switches()[1]!) - fault).toBeLessThanOrEqual(3 * INTERVAL);
    await w.advance(60_000);
    expect(w.switches()).toHaveLength(2);
  });

  it('the same with blue still failing: hold and alert, no switch; once blue has passed for settle (30 s), the owed rollback goes', async () => {
    const w = await start({ warmupMs: 300_000 });
    w.faults.blue.down = true;
    await w.advanceUntil(() => w.switches().length === 1, 30_000, 'the rollback to green');
    await w.advance(120_000);
    const before = w.events.length;
    w.faults.green.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events.slice(before), 'action.skipped').length > 0, 10_000, 'the held rollback');
    const held = rollbacks(w.events.slice(before), 'action.skipped')[0]!;
    expect(held.severity).toBe('critical');
    expect(String(data(held).judgement)).toMatch(/^(inconclusive|target-unhealthy)$/);
    await w.advanceUntil(
      () => w.alertNames().some((name) => name === 'rollback-inconclusive' || name === 'rollback-target-unhealthy'),
      5_000,
      'the hold alert',
    );
    await w.advance(60_000);
    expect(w.switches()).toHaveLength(1);

    // Blue recovers; green still fails. Blue was rolled away from 3 minutes ago: it must pass its
    // probes for settle (30 s) first — a wait bounded by the target's health, never a cooldown.
    const recovered = w.now();
    w.faults.blue.down = false;
    await w.advance(10_000);
    expect(w.agent.state().owed).toEqual([
      expect.objectContaining({
        waiting: expect.stringMatching(/^settling: traffic was rolled back away from blue .* ago, and it has passed every probe for 9\.\ds of the 30s/),
      }),
    ]);
    await w.advanceUntil(() => w.switches().length === 2, 60_000, 'the switch back once blue settled');
    const waited = w.at(w.switches()[1]!) - recovered;
    // Counted from blue's last failed probe, which came at most an interval before the fault was cleared.
    expect(waited).toBeGreaterThanOrEqual(30_000 - INTERVAL);
    expect(waited).toBeLessThanOrEqual(30_000 + 3 * INTERVAL);
  });

  it('a live environment failing 10 s out of every 30 s for 10 minutes moves traffic once (the documented number)', async () => {
    const w = await start();
    for (let cycle = 0; cycle < 20; cycle++) {
      w.faults.blue.down = true;
      await w.advance(10_000);
      w.faults.blue.down = false;
      await w.advance(20_000);
    }
    expect(w.switches()).toHaveLength(1);
    expect(w.switches()[0]!.data).toMatchObject({ from: 'blue', to: 'green' });
  });

  it('two environments flapping out of phase for 10 minutes: at most one switch per rollback cooldown', async () => {
    const w = await start();
    for (let cycle = 0; cycle < 20; cycle++) {
      w.faults.blue.down = true;
      await w.advance(10_000);
      w.faults.blue.down = false;
      await w.advance(5_000);
      w.faults.green.down = true;
      await w.advance(10_000);
      w.faults.green.down = false;
      await w.advance(5_000);
    }
    const switches = w.switches();
    expect(switches.length).toBeGreaterThanOrEqual(1);
    expect(switches.length).toBeLessThanOrEqual(2);
    for (let i = 1; i < switches.length; i++) expect(w.at(switches[i]!) - w.at(switches[i - 1]!)).toBeGreaterThanOrEqual(600_000);
  });

  it("when the environment traffic just moved to fails within the old incident's keepFiringFor, that is a new incident, judged and paged", async () => {
    const w = await start();
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length === 1, 30_000, 'the rollback to green');
    // Green cannot take the load: its discovery engine dies a moment after the switch.
    w.faults.green.emptyUniverse = true;
    await w.advanceUntil(() => w.events.some((e) => e.type === 'rule.firing' && e.env === 'green'), 10_000, 'an incident about green');
    const firing = w.events.filter((e) => e.type === 'rule.firing' && e.rule === 'live-universe-failing');
    expect(firing.map((e) => `${e.env}:${data(e).incident}`)).toEqual(['blue:live-universe-failing#1', 'green:live-universe-failing#2']);
    await w.advanceUntil(
      () => rollbacks(w.events, 'action.skipped').some((e) => data(e).incident === 'live-universe-failing#2'),
      10_000,
      'its rollback to be judged',
    );
    // Blue still fails: held, never switched back onto it.
    expect(w.switches()).toHaveLength(1);
  });

  it('an incident whose rollback was held starts no rule cooldown: the rule fires again on its next fault', async () => {
    const w = await start();
    w.faults.blue.emptyUniverse = w.faults.green.emptyUniverse = true;
    // Held by the judgement, or refused by the fresh verification when green's fault is not seen yet.
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length + rollbacks(w.events, 'action.failed').length > 0, 10_000, 'the held rollback');
    w.faults.blue.emptyUniverse = w.faults.green.emptyUniverse = false;
    await w.advanceUntil(() => w.events.some((e) => e.type === 'rule.resolved' && e.rule === 'live-universe-failing'), 60_000, 'the incident to resolve');
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => w.switches().length === 1, 10_000, 'the second incident to roll back');
    expect(w.events.filter((e) => e.type === 'rule.firing' && e.rule === 'live-universe-failing').map((e) => data(e).incident)).toEqual([
      'live-universe-failing#1',
      'live-universe-failing#2',
    ]);
  });
});

describe('every switch verifies its target now', () => {
  it('a target whose last completed probe passed but whose probe in flight is overdue is unknown', async () => {
    const w = await start();
    w.faults.green.hang = true;
    await w.advance(1_600);
    const green = w.agent.state().environments.green!;
    expect(green.up).toBe(true); // every completed probe passed
    expect(green.health.healthy).toBe(false);
    expect(green.health.unknown.length).toBeGreaterThan(0);
    expect(green.health.failing).toEqual([]);
  });

  it('a manual rollback onto a target that just hung is refused by the fresh verification: action.failed naming the check, a critical alert', async () => {
    const w = await start();
    await w.advanceUntil(() => w.agent.state().environments.green!.health.passingForMs > 0, 1_000, 'green known healthy');
    w.faults.green.hang = true;
    expect(w.agent.state().environments.green!.health.healthy).toBe(true); // as far as greenlight has seen
    const asked = w.agent.manualRollback('blue looks wrong', 'api:rollback');
    let outcome: Awaited<typeof asked> | undefined;
    void asked.then((o) => (outcome = o));
    await w.advanceUntil(() => outcome !== undefined, 5_000, 'the manual rollback to be answered');
    expect(outcome).toMatchObject({ outcome: 'failed', data: { refused: 'unverified', from: 'blue', to: 'green' } });
    const failed = w.events.find((e) => e.type === 'action.failed')!;
    expect(failed.severity).toBe('critical');
    expect(failed.message).toMatch(/green failed its fresh verification .*(health|universe) unknown: timeout: no complete answer within 1000ms/);
    await w.advanceUntil(() => w.alertNames().includes('rollback-unverified'), 5_000, 'the unverified alert (within the group wait)');
    expect(w.switches()).toEqual([]);
    expect(w.trafficCalls).toEqual([]);
    expect(w.agent.activeEnvironment).toBe('blue');
  });

  it('a manual rollback 2.5 s after the target hung is refused: its probes are overdue, unknown', async () => {
    const w = await start();
    w.faults.green.hang = true;
    await w.advance(2_500);
    const asked = w.agent.manualRollback('blue looks wrong', 'api:rollback');
    let outcome: Awaited<typeof asked> | undefined;
    void asked.then((o) => (outcome = o));
    await w.advanceUntil(() => outcome !== undefined, 5_000, 'the manual rollback to be answered');
    expect(outcome).toMatchObject({ outcome: 'skipped', data: { judgement: 'target-unhealthy' } });
    expect(outcome!.outcome === 'skipped' && outcome!.reason).toMatch(/unknown: no result yet or overdue/);
    await w.advanceUntil(() => w.alertNames().includes('rollback-target-unhealthy'), 5_000, 'the target-unhealthy alert (within the group wait)');
    expect(w.switches()).toEqual([]);
  });

  it('a rule rollback onto a hung target is owed, and retried once the target answers again', async () => {
    const w = await start();
    w.faults.green.hang = true;
    await w.advance(3_000);
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    expect(rollbacks(w.events, 'action.skipped')[0]!.data).toMatchObject({ owed: true });
    await w.advance(30_000);
    expect(w.switches()).toEqual([]);
    w.faults.green.hang = false;
    const answering = w.now();
    // Its windows remember the timeouts (its error ratio over the critical line): it takes traffic
    // once that is no longer so, or it has passed every probe for settle (30 s), not at its first answer.
    const waiting = () => w.agent.state().owed[0]?.waiting ?? '';
    await w.advanceUntil(() => waiting().includes('live-error-ratio-critical already holds on green'), 20_000, 'the hold on what green remembers');
    expect(waiting()).toMatch(
      /^target-unhealthy: live-error-ratio-critical already holds on green \(errorRatio .*\): it would fail as soon as it took traffic, unless it passes every probe for 30s/,
    );
    expect(w.switches()).toEqual([]);
    await w.advanceUntil(() => w.switches().length > 0, 35_000, 'the retried rollback');
    expect(w.switches()).toHaveLength(1);
    expect(w.at(w.switches()[0]!) - answering).toBeLessThanOrEqual(30_000 + 2 * INTERVAL * 1.1);
    expect(rollbacks(w.events, 'action.succeeded')[0]!.data).toMatchObject({ retryOf: 'live-universe-failing#1', to: 'green' });
    // Nothing was switched onto green while it hung.
    const answeredAgain = w.events.filter((e) => e.type === 'probe.up' && e.env === 'green').at(-1);
    if (answeredAgain) expect(w.at(w.switches()[0]!)).toBeGreaterThanOrEqual(w.at(answeredAgain));
  });
});

describe('a target whose latest probes pass, but on which a critical rule already holds (found from outside)', () => {
  it('memory over the line for minutes: never switched onto, whatever its probes pass (regression: switched, then live-memory-critical fired on it)', async () => {
    const w = await start({ warmupMs: 60_000 });
    w.faults.green.memoryPercent = 95;
    await w.advance(150_000);
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    expect(rollbacks(w.events, 'action.skipped')[0]!.data).toMatchObject({ judgement: 'target-unhealthy', holding: ['live-memory-critical'], owed: true });
    expect(rollbacks(w.events, 'action.skipped')[0]!.message).toMatch(
      /live-memory-critical already holds on green \(aboveFor\[health\] [\d.]+s > "2m"\): it would fail as soon as it took traffic$/,
    );
    await w.advance(60_000);
    expect(w.switches()).toEqual([]);
    w.faults.green.memoryPercent = 50;
    await w.advanceUntil(() => w.switches().length > 0, 10_000, 'the switch once green is below the line');
    expect(w.switches()[0]!.data).toMatchObject({ from: 'blue', to: 'green' });
  });

  it("memory over the line since greenlight first read it (it just started): the rule's rollback waits until it can tell, then refuses (regression: a restart forgot the run and switched onto it)", async () => {
    const w = await start({ warmupMs: 10_000, faults: { green: { memoryPercent: 95 } } });
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    const first = rollbacks(w.events, 'action.skipped')[0]!;
    expect(first.data).toMatchObject({ unseen: true, owed: true, to: 'green' });
    expect(first.message).toMatch(
      /greenlight cannot tell yet whether live-memory-critical holds on green \(not on what it has seen since it started: aboveFor\[health\] [\d.]+s > "2m"\): the value was already above its line at greenlight's first reading/,
    );
    // No page for the wait: the incident's own alert is the page.
    expect(w.alertNames().filter((name) => name.startsWith('rollback-'))).toEqual([]);
    // Two minutes of readings over the line: now it is known to hold, and refused as ever, with its page.
    await w.advanceUntil(
      () => (w.agent.state().owed[0]?.waiting ?? '').startsWith('target-unhealthy: live-memory-critical already holds on green'),
      150_000,
      'the refusal once known',
    );
    await w.advanceUntil(() => w.alertNames().includes('rollback-target-unhealthy'), 10_000, 'the refusal page (regression: an owed retry judged it quietly)');
    expect(w.switches()).toEqual([]);
  });

  it('memory over the line at the first reading, then no longer given: the wait ends, the readings prove no run (regression: held for ever)', async () => {
    const w = await start({ warmupMs: 10_000, faults: { green: { memoryPercent: 95 } } });
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    expect(rollbacks(w.events, 'action.skipped')[0]!.data).toMatchObject({ unseen: true });
    w.faults.green.memoryPercent = null;
    await w.advanceUntil(() => w.switches().length > 0, 15_000, 'the switch once green no longer gives the value');
    expect(w.switches()).toHaveLength(1);
  });

  it("memory over the line at greenlight's first reading, then under it: the rule's rollback goes as soon as the run is over", async () => {
    const w = await start({ warmupMs: 10_000, faults: { green: { memoryPercent: 95 } } });
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    expect(rollbacks(w.events, 'action.skipped')[0]!.data).toMatchObject({ unseen: true });
    w.faults.green.memoryPercent = 50;
    await w.advanceUntil(() => w.switches().length > 0, 15_000, 'the switch once green is under the line');
    expect(w.switches()).toHaveLength(1);
  });

  it('a target that stops giving its memory after one reading over the line is not held above it by that reading (regression: the stale 95 % fired live-memory-critical two minutes later)', async () => {
    const w = await start({ warmupMs: 10_000 });
    w.faults.blue.memoryPercent = 95;
    await w.advance(3_000);
    w.faults.blue.memoryPercent = null;
    await w.advance(180_000);
    expect(w.events.filter((e) => e.type === 'rule.firing' && e.rule === 'live-memory-critical')).toEqual([]);
    expect(w.switches()).toEqual([]);
  });

  it('an error ratio it had a minute ago: switched onto once it has passed every probe for settle, not at its first good round', async () => {
    const w = await start({ warmupMs: 60_000 });
    w.faults.green.down = true;
    await w.advance(60_000);
    w.faults.green.down = false;
    const recovered = w.now();
    await w.advance(5_000);
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(() => rollbacks(w.events, 'action.skipped').length > 0, 10_000, 'the held rollback');
    expect(rollbacks(w.events, 'action.skipped')[0]!.data).toMatchObject({ judgement: 'target-unhealthy', holding: ['live-error-ratio-critical'] });
    await w.advanceUntil(() => w.switches().length > 0, 40_000, 'the switch once green has settled');
    expect(w.at(w.switches()[0]!) - recovered).toBeGreaterThanOrEqual(30_000);
    expect(w.switches()).toHaveLength(1);
  });
});

describe("the agent's own want is not the target's failure (found from outside: a flood of connections to the API took its file descriptors)", () => {
  it('probes the agent cannot open a socket for (EMFILE) are skipped ticks: the healthy live side is not rolled back, and a target in that state is not switched onto', async () => {
    const w = await start({ warmupMs: 10_000 });
    const skippedBefore = w.agent.pipeline.series.of('blue').reduce((sum, series) => sum + series.skipped, 0);
    w.faults.blue.emfile = true;
    await w.advance(60_000);
    expect(w.events.filter((e) => e.type === 'probe.down' || e.type === 'rule.firing')).toEqual([]);
    expect(w.switches()).toEqual([]);
    expect(w.agent.pipeline.series.of('blue').reduce((sum, series) => sum + series.skipped, 0) - skippedBefore).toBeGreaterThan(20);

    // Green in that state, and blue failing: the fresh verification cannot read green, so no switch.
    w.faults.blue.emfile = false;
    w.faults.green.emfile = true;
    w.faults.blue.emptyUniverse = true;
    await w.advanceUntil(
      () => w.events.some((e) => e.type === 'action.failed' && (e.data as { action?: string }).action === 'rollback'),
      20_000,
      'the refused rollback',
    );
    const refused = w.events.find((e) => e.type === 'action.failed' && (e.data as { action?: string }).action === 'rollback')!;
    expect(refused.message).toMatch(/green failed its fresh verification \(.*unknown: reset: connect EMFILE/);
    expect(w.switches()).toEqual([]);
  });
});

describe("an operator's refused rollback: one alert, and it ends", () => {
  /** The rollback-target-unhealthy entries of each alert webhook POST, as [status, ...] per POST that has any. */
  const refusals = (w: ScriptedPair) =>
    w.alerts
      .map((body) => body.alerts.filter((a) => a.labels.alertname === 'rollback-target-unhealthy').map((a) => a.status))
      .filter((list) => list.length > 0);

  async function refuse(w: ScriptedPair): Promise<void> {
    const asked = w.agent.manualRollback('blue looks wrong', 'api:rollback');
    let outcome: Awaited<typeof asked> | undefined;
    void asked.then((o) => (outcome = o));
    await w.advanceUntil(() => outcome !== undefined, 5_000, 'the manual rollback to be answered');
    expect(outcome).toMatchObject({ outcome: 'skipped', data: { judgement: 'target-unhealthy' } });
  }

  it('refused twice: one alert, which resolves by itself 5 minutes after the last refusal (regression: firing for ever, muting the warnings of blue)', async () => {
    const w = await start({ config: onlyRules(['live-universe-failing']) });
    w.faults.green.emptyUniverse = true;
    await w.advanceUntil(() => !w.agent.state().environments.green!.health.healthy, 5_000, 'green unhealthy');
    await refuse(w);
    await w.advance(30_000);
    await refuse(w);
    const lastRefusal = w.now();
    await w.advanceUntil(() => refusals(w).length > 0, 70_000, 'the refusal alert');
    // One alert however often the operator was refused: the same key, not one per request.
    expect(refusals(w).every((list) => list.length === 1)).toBe(true);
    w.faults.green.emptyUniverse = false;
    await w.advance(60_000);
    expect(refusals(w).flat()).not.toContain('resolved');
    expect(w.agent.alerts.firing().map((notice) => notice.rule)).toContain('rollback-target-unhealthy');
    await w.advanceUntil(() => refusals(w).flat().includes('resolved'), 400_000, 'the refusal alert resolved');
    // At its expiry (5 minutes after the second refusal), plus at most the group interval (1 minute).
    expect(w.now() - lastRefusal).toBeGreaterThanOrEqual(300_000);
    expect(w.now() - lastRefusal).toBeLessThanOrEqual(300_000 + 61_000);
    expect(w.agent.alerts.firing().map((notice) => notice.rule)).not.toContain('rollback-target-unhealthy');
    expect(w.switches()).toEqual([]);
  });

  it('refused, then a rollback that switches: the refusal alert resolves with the switch, not 5 minutes later', async () => {
    const w = await start({ config: onlyRules(['live-universe-failing']) });
    w.faults.green.emptyUniverse = true;
    await w.advanceUntil(() => !w.agent.state().environments.green!.health.healthy, 5_000, 'green unhealthy');
    await refuse(w);
    await w.advanceUntil(() => refusals(w).length > 0, 70_000, 'the refusal alert');
    w.faults.green.emptyUniverse = false;
    await w.advanceUntil(() => w.agent.state().environments.green!.health.healthy, 10_000, 'green healthy again');
    const switched = await w.agent.manualRollback('blue looks wrong', 'api:rollback');
    expect(switched.outcome).toBe('succeeded');
    const at = w.now();
    await w.advanceUntil(() => refusals(w).flat().includes('resolved'), 120_000, 'the refusal alert resolved');
    expect(w.now() - at).toBeLessThanOrEqual(61_000);
    expect(w.switches()).toHaveLength(1);
  });
});

/** The stock config with only the named rules left. */
function onlyRules(keep: string[]): string {
  const [head, rest] = [STOCK.slice(0, STOCK.indexOf('rules:\n')), STOCK.slice(STOCK.indexOf('rules:\n'))];
  const end = rest.indexOf('\nprobes:\n');
  const rulesBlock = rest.slice(0, end);
  const kept = rulesBlock
    .split(/\n(?= {2}- name: )/)
    .filter((chunk, index) => index === 0 || keep.some((name) => chunk.startsWith(`  - name: ${name}\n`)))
    .join('\n');
  return `${head}${kept}${rest.slice(end)}`;
}

/**
 * The action runner (agent/actions/action-runner.ts): an incident's resolution reaches an action
 * only after that action's run for the incident, so a resolved notice never overtakes its firing
 * one. The race is real in a cluster: every run first claims its start at PostgreSQL, a rollback
 * can heal the incident while the alert's claim is still out, and the alert then fired after its
 * resolved notice and stayed firing (test/agent/cluster/alert-lifecycle.test.ts hit it).
 */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { Action, ActionContext, ActionOutcome } from '../../../agent/actions/action.js';
import { ActionRunner, SWEEP_SPACING_MS } from '../../../agent/actions/action-runner.js';
import { EventBus } from '../../../agent/events/events.js';
import type { ActionRecord } from '../../../agent/events/store.js';
import { AgentMetrics } from '../../../agent/telemetry/metrics.js';

/** An action that records when it fires and resolves. */
function recording(name: string, calls: string[]): Action {
  return {
    name,
    type: 'alert',
    fire: async (): Promise<ActionOutcome> => {
      calls.push(`${name}:fire`);
      return { outcome: 'succeeded', detail: 'fired' };
    },
    resolve: async (): Promise<ActionOutcome> => {
      calls.push(`${name}:resolve`);
      return { outcome: 'succeeded', detail: 'resolved' };
    },
  };
}

function context(incident: string): ActionContext {
  return {
    rule: null,
    incident,
    env: 'blue',
    severity: 'critical',
    message: 'universe failing',
    figures: null,
    actor: 'rule:universe-failing',
    startedAt: Date.now(),
  };
}

function runner(actions: Action[], claim?: () => Promise<string | undefined>, record?: (record: ActionRecord) => void) {
  const bus = new EventBus({
    now: Date.now,
    onListenerError: (error) => {
      throw error;
    },
  });
  return new ActionRunner({
    actions: new Map(actions.map((action) => [action.name, action])),
    bus,
    metrics: new AgentMetrics({ now: Date.now, processMetrics: false }),
    logger: pino({ level: 'silent' }),
    dryRun: false,
    now: Date.now,
    claim,
    record,
  });
}

describe('action runner', () => {
  it("resolves an action only after its run for the incident: a claim still out when the incident ends (a cluster's) delays the resolved notice, it does not overtake", async () => {
    const calls: string[] = [];
    const claims: (() => void)[] = [];
    const actions = runner([recording('rollback', calls), recording('page', calls)], () => new Promise((resolve) => claims.push(() => resolve(undefined))));
    actions.fire(['rollback', 'page'], context('universe-failing#1'));
    await vi.waitFor(() => expect(claims).toHaveLength(2));
    // The rollback's claim comes back first and its run heals the incident; the page's is still out.
    claims[0]!();
    await vi.waitFor(() => expect(calls).toEqual(['rollback:fire']));
    actions.resolve(['rollback', 'page'], context('universe-failing#1'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['rollback:fire', 'rollback:resolve']);
    claims[1]!();
    await vi.waitFor(() => expect(calls).toEqual(['rollback:fire', 'rollback:resolve', 'page:fire', 'page:resolve']));
    await actions.idle();
  });

  it('resolves at once, in the same step, an action with no run under way', async () => {
    const calls: string[] = [];
    const actions = runner([recording('page', calls)]);
    actions.fire(['page'], context('universe-failing#2'));
    // Alone (no claim) the fire starts in the same step; once it is done, the resolve is immediate.
    expect(calls).toEqual(['page:fire']);
    await actions.idle();
    actions.resolve(['page'], context('universe-failing#2'));
    expect(calls).toEqual(['page:fire', 'page:resolve']);
    await actions.idle();
  });
});

describe('owed actions', () => {
  /**
   * A runner whose only action, a rule's rollback, is held every time it is asked (so it stays
   * owed), after its first run for `incident`; `asked` counts its runs and its judgements.
   */
  async function owedRollback(incident: string) {
    const asked = { ready: 0, fire: 0 };
    const action: Action = {
      name: 'rollback',
      type: 'rollback',
      fire: async (): Promise<ActionOutcome> => {
        asked.fire++;
        return { outcome: 'skipped', reason: 'target-unhealthy: green is failing', data: { owed: true } };
      },
      ready: async () => {
        asked.ready++;
        return { go: false, why: 'target-unhealthy: green is failing' };
      },
    };
    const actions = runner([action]);
    actions.fire(['rollback'], { ...context(incident), rule: { name: 'live-universe-failing' } as ActionContext['rule'] });
    await actions.idle();
    return { actions, asked };
  }

  it('asked after every sample, an owed action is judged at most once per sweep spacing, and the last ask is not lost', async () => {
    // The agent asks after every sample, and a rollback's judgement reads every series of both
    // environments: judged per ask, 10,000 series cost 10,000 judgements of 10,000 series a second.
    const { actions, asked } = await owedRollback('live-universe-failing#1');
    expect(asked.fire).toBe(1);
    expect(actions.owed()).toHaveLength(1);

    const started = performance.now();
    const asks = 200;
    for (let i = 0; i < asks; i++) {
      actions.retryOwed();
      await new Promise((resolve) => setImmediate(resolve)); // samples arrive in separate callbacks
    }
    const elapsed = performance.now() - started;
    // One sweep at the first ask, then at most one per spacing that passed while asking (each
    // one judges the owed action once); before, every ask judged it: 200 times.
    expect(asked.ready).toBeGreaterThanOrEqual(1);
    expect(asked.ready).toBeLessThanOrEqual(1 + Math.floor(elapsed / SWEEP_SPACING_MS) + 1);
    const duringAsks = asked.ready;
    // idle() does not wait for the spacing: samples keep asking while an action is owed, and a
    // test (or anyone) waiting for the actions to settle would wait for ever.
    await actions.idle();
    // The asks that came during the last spacing are folded into one sweep after it; without a
    // new ask nothing follows.
    await vi.waitFor(() => expect(asked.ready).toBe(duringAsks + 1), { timeout: 10_000, interval: 5 });
    await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_SPACING_MS));
    expect(asked.ready).toBe(duringAsks + 1);
    expect(asked.fire).toBe(1); // held: never run again while `ready` says no
    await actions.close();
  });

  it('idle() resolves while samples keep asking: the spacing between sweeps is no action running', async () => {
    const { actions, asked } = await owedRollback('live-universe-failing#3');
    const asking = setInterval(() => actions.retryOwed(), 5);
    try {
      await vi.waitFor(() => expect(asked.ready).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 5 });
      await actions.idle(); // a sweep loop that waited out its spacing inside the run never ended here
    } finally {
      clearInterval(asking);
    }
    await actions.close();
  });

  it('a lone ask sweeps at once, without waiting for the spacing', async () => {
    const { actions, asked } = await owedRollback('live-universe-failing#2');
    actions.retryOwed();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked.ready).toBe(1);
    await actions.close();
  });

  it("marks the records of an action whose effect is the agent's own state, fired or settled after a crash, so a cluster records their outcome under the lease", async () => {
    const calls: string[] = [];
    const records: ActionRecord[] = [];
    const page: Action = { ...recording('page', calls), effect: 'state', reconcile: async () => ({ outcome: 'succeeded', detail: 'handed over again' }) };
    const actions = runner(
      [page, recording('hook', calls)],
      () => Promise.resolve(undefined),
      (record) => records.push(record),
    );
    actions.fire(['page', 'hook'], context('universe-failing#1'));
    await actions.idle();
    const stored = records.find((record) => record.action === 'page' && record.state === 'started')!;
    // A record read back from a cluster's store has no effect of its own: settling it marks it again.
    const { effect: _effect, ...unmarked } = stored;
    await actions.reconcile([{ ...unmarked, incident: 'universe-failing#2' }], () => context('universe-failing#2'));
    expect(records.map((record) => [record.action, record.incident.slice(-1), record.state, record.effect])).toEqual([
      ['page', '1', 'started', 'state'],
      ['hook', '1', 'started', undefined],
      ['page', '1', 'succeeded', 'state'],
      ['hook', '1', 'succeeded', undefined],
      ['page', '2', 'succeeded', 'state'],
    ]);
    await actions.close();
  });
});

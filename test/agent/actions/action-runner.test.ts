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
import { ActionRunner } from '../../../agent/actions/action-runner.js';
import { EventBus } from '../../../agent/events/events.js';
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

function runner(actions: Action[], claim?: () => Promise<string | undefined>) {
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

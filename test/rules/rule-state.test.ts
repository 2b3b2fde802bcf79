import { describe, expect, it } from 'vitest';
import { RuleState } from '../../rules/rule-state.js';

const timing = { forMs: 10_000, keepFiringForMs: 5_000, minSamples: 3, cooldownMs: 60_000 };

describe('RuleState', () => {
  it('goes pending, then firing once the condition held for `for` on enough samples', () => {
    const state = new RuleState(timing);
    expect(state.step(true, 5, 0)).toEqual([{ to: 'pending' }]);
    expect(state.step(true, 5, 9_999)).toEqual([]);
    expect(state.step(true, 5, 10_000)).toEqual([{ to: 'firing', incident: 1, heldForMs: 10_000 }]);
    expect(state.state).toBe('firing');
  });

  it('fires at once with for 0', () => {
    const state = new RuleState({ ...timing, forMs: 0 });
    expect(state.step(true, 3, 0)).toEqual([{ to: 'pending' }, { to: 'firing', incident: 1, heldForMs: 0 }]);
  });

  it('waits for minSamples: a quiet window never fires on one failure', () => {
    const state = new RuleState({ ...timing, forMs: 0 });
    expect(state.step(true, 1, 0)).toEqual([{ to: 'pending' }]);
    expect(state.step(true, 2, 1_000)).toEqual([]);
    expect(state.step(true, 3, 2_000)).toEqual([{ to: 'firing', incident: 1, heldForMs: 2_000 }]);
  });

  it('clears a pending rule whose condition stops holding', () => {
    const state = new RuleState(timing);
    state.step(true, 5, 0);
    expect(state.step(false, 5, 4_000)).toEqual([{ to: 'cleared', pendingForMs: 4_000 }]);
    expect(state.state).toBe('inactive');
    // `for` starts again from the next time it holds.
    state.step(true, 5, 5_000);
    expect(state.step(true, 5, 14_000)).toEqual([]);
  });

  it('keeps firing for keepFiringFor after the condition stops, then resolves', () => {
    const state = new RuleState({ ...timing, forMs: 0 });
    state.step(true, 5, 0);
    expect(state.step(false, 5, 1_000)).toEqual([]);
    expect(state.step(true, 5, 2_000)).toEqual([]);
    expect(state.step(false, 5, 6_999)).toEqual([]);
    expect(state.step(false, 5, 7_000)).toEqual([{ to: 'resolved', incident: 1, firedForMs: 7_000 }]);
  });

  it('starts no cooldown by itself when an incident resolves: the next one fires at once', () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 0 });
    state.step(true, 5, 0, 'blue');
    expect(state.step(false, 5, 1_000, 'blue')).toEqual([{ to: 'resolved', incident: 1, firedForMs: 1_000 }]);
    expect(state.step(true, 5, 2_000, 'blue')).toEqual([{ to: 'pending' }, { to: 'firing', incident: 2, heldForMs: 0 }]);
  });

  it("does not go pending again on the cooldown's environment until it ends, and numbers incidents", () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 0 });
    state.step(true, 5, 0, 'blue');
    state.step(false, 5, 1_000, 'blue');
    state.startCooldown(1_000, 'blue');
    expect(state.step(true, 5, 30_000, 'blue')).toEqual([]);
    expect(state.state).toBe('inactive');
    expect(state.step(true, 5, 61_000, 'blue')).toEqual([{ to: 'pending' }, { to: 'firing', incident: 2, heldForMs: 0 }]);
  });

  it('judging another environment, or after clearCooldown, the cooldown holds nothing back', () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 0 });
    state.step(true, 5, 0, 'blue');
    state.step(false, 5, 1_000, 'blue');
    state.startCooldown(1_000, 'blue');
    expect(state.step(true, 5, 2_000, 'green')).toEqual([{ to: 'pending' }, { to: 'firing', incident: 2, heldForMs: 0 }]);
    state.step(false, 5, 3_000, 'green');
    state.startCooldown(3_000, 'green');
    state.clearCooldown();
    expect(state.step(true, 5, 4_000, 'green')).toEqual([{ to: 'pending' }, { to: 'firing', incident: 3, heldForMs: 0 }]);
  });

  it('ends a firing incident when the environment it judges changes, and judges the new one as a new incident', () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 60_000 });
    expect(state.step(true, 5, 0, 'blue')).toEqual([{ to: 'pending' }, { to: 'firing', incident: 1, heldForMs: 0 }]);
    // Traffic moved to green, which fails too, within blue's keepFiringFor: a new incident about green.
    expect(state.step(true, 5, 1_000, 'green')).toEqual([
      { to: 'resolved', incident: 1, firedForMs: 1_000 },
      { to: 'pending' },
      { to: 'firing', incident: 2, heldForMs: 0 },
    ]);
    // Green is fine: blue's incident ends at once rather than keep firing over green.
    const other = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 60_000 });
    other.step(true, 5, 0, 'blue');
    expect(other.step(false, 5, 1_000, 'green')).toEqual([{ to: 'resolved', incident: 1, firedForMs: 1_000 }]);
    expect(other.state).toBe('inactive');
  });

  it('clears a pending episode when the environment it judges changes; `for` starts again on the new one', () => {
    const state = new RuleState(timing);
    state.step(true, 5, 0, 'blue');
    expect(state.step(true, 5, 9_000, 'green')).toEqual([{ to: 'cleared', pendingForMs: 9_000 }, { to: 'pending' }]);
    expect(state.step(true, 5, 10_000, 'green')).toEqual([]);
    expect(state.step(true, 5, 19_000, 'green')).toEqual([{ to: 'firing', incident: 1, heldForMs: 10_000 }]);
  });

  it('holds a resumed incident firing while its windows refill after a restart, then resolves as usual', () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 0 });
    state.resumeFiring(4, -50_000, 0);
    expect(state.state).toBe('firing');
    expect(state.step(false, 1, 1_000)).toEqual([]);
    // However long it takes for the results to come in: the hold ends when the caller says so.
    expect(state.step(false, 11, 600_000)).toEqual([]);
    state.releaseResumeHold();
    expect(state.step(false, 12, 600_001)).toEqual([{ to: 'resolved', incident: 4, firedForMs: 650_001 }]);
  });

  it('resumed with a start later than now (the clock stepped back across the restart), has fired since now, never for a negative time', () => {
    const state = new RuleState({ ...timing, forMs: 0, keepFiringForMs: 0 });
    state.resumeFiring(4, 3_600_000, 0);
    expect(state.firingSince).toBe(0);
    state.releaseResumeHold();
    expect(state.step(false, 12, 5_000)).toEqual([{ to: 'resolved', incident: 4, firedForMs: 5_000 }]);
  });
});

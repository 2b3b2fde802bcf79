/**
 * The SLO count windows on a simulated clock: what a window counts and forgets, its fixed size,
 * and how its counts survive a restart (save → JSON → restore) and only under the same definition.
 */
import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../probes/probe-result.js';
import { CountWindow, SloBook, SloTracker, type SloDefinition } from '../../probes/slo-window.js';

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const availability: SloDefinition = { name: 'availability', objective: 0.995, periodMs: 30 * DAY, probes: undefined, latencyMs: undefined, windowsMs: [] };

function result(at: number, ok: boolean, extra: Partial<ProbeResult> = {}): ProbeResult {
  return { probe: 'health', env: 'blue', ok, durationMs: 10, startedAt: at, checks: [], extracted: {}, ...extra };
}

describe('CountWindow', () => {
  it('counts within its length and forgets what left it, bucket by bucket', () => {
    const window = new CountWindow(HOUR); // 2-minute buckets
    for (let i = 0; i < 60; i++) window.add(i % 4 !== 0, T0 + i * 60_000); // a probe a minute, a quarter bad
    expect(window.totals(T0 + 59 * 60_000)).toMatchObject({ total: 60, bad: 15 });
    // Half an hour on, the first 30 minutes (15 buckets) are gone.
    expect(window.totals(T0 + 89 * 60_000).total).toBeGreaterThanOrEqual(29);
    expect(window.totals(T0 + 89 * 60_000).total).toBeLessThanOrEqual(31);
    expect(window.totals(T0 + 3 * HOUR)).toMatchObject({ total: 0, bad: 0, coverage: 0 });
  });

  it('coverage: the share of its 30 buckets that hold probes', () => {
    const window = new CountWindow(30 * 60_000); // 1-minute buckets
    window.add(true, T0);
    expect(window.totals(T0).coverage).toBeCloseTo(1 / 30, 10);
    for (let i = 0; i < 15; i++) window.add(true, T0 + i * 60_000);
    expect(window.totals(T0 + 14 * 60_000).coverage).toBeCloseTo(15 / 30, 10);
  });

  it('holds 240 bytes of counters whatever the traffic (30 buckets × two 32-bit counts)', () => {
    const window = new CountWindow(3 * DAY);
    const before = window.bytes;
    for (let i = 0; i < 100_000; i++) window.add(i % 7 !== 0, T0 + i * 2_000);
    expect(before).toBe(240);
    expect(window.bytes).toBe(240);
  });

  it('save → JSON → restore gives the same counts, and time goes on from there', () => {
    const window = new CountWindow(6 * HOUR);
    for (let i = 0; i < 300; i++) window.add(i % 10 !== 0, T0 + i * 60_000);
    const at = T0 + 299 * 60_000;
    const copy = new CountWindow(6 * HOUR);
    copy.restore(JSON.parse(JSON.stringify(window.save())), at);
    expect(copy.totals(at)).toEqual(window.totals(at));
    // Down for four hours: the buckets of that time hold nothing, the older ones left the window.
    expect(copy.totals(at + 4 * HOUR)).toEqual(window.totals(at + 4 * HOUR));
    expect(copy.totals(at + 4 * HOUR).total).toBeLessThan(150);
  });

  it('saved before the clock stepped back, puts the counts back ending now, and counts what comes after', () => {
    const window = new CountWindow(HOUR); // 2-minute buckets
    for (let i = 0; i < 60; i++) window.add(i % 4 !== 0, T0 + i * 60_000);
    const savedAt = T0 + 59 * 60_000;
    const back = savedAt - 3 * HOUR; // the agent restarts on a clock three hours behind
    const copy = new CountWindow(HOUR);
    copy.restore(window.save(), back);
    expect(copy.totals(back)).toMatchObject({ total: 60, bad: 15 });
    copy.add(false, back);
    expect(copy.totals(back)).toMatchObject({ total: 61, bad: 16 });
    // The restored buckets leave the window in its own time: an hour on, only what came since.
    copy.add(true, back + 62 * 60_000);
    expect(copy.totals(back + 62 * 60_000)).toMatchObject({ total: 1, bad: 0 });
  });

  it.each([
    ['another window length', { windowMs: HOUR, head: 1, total: Array(30).fill(1), bad: Array(30).fill(0) }],
    ['a short array', { windowMs: 6 * HOUR, head: 1, total: [1, 2], bad: [0, 0] }],
    ['a head that is no integer', { windowMs: 6 * HOUR, head: 'x', total: Array(30).fill(1), bad: Array(30).fill(0) }],
  ])('ignores saved state of %s', (_name, state) => {
    const window = new CountWindow(6 * HOUR);
    window.restore(state as never, T0);
    expect(window.totals(T0).total).toBe(0);
  });

  it('never trusts saved counts beyond sense: bad ≤ total, no negatives', () => {
    const window = new CountWindow(6 * HOUR);
    const head = Math.floor(T0 / (12 * 60_000));
    window.restore({ windowMs: 6 * HOUR, head, total: [...Array(29).fill(0), 5], bad: [...Array(29).fill(-3), 9] }, T0);
    expect(window.totals(T0)).toMatchObject({ total: 5, bad: 5 });
  });
});

describe('SloTracker and SloBook', () => {
  it('keeps the period and the windows rules name, per environment', () => {
    const tracker = new SloTracker(availability, ['blue', 'green'], [HOUR, 5 * 60_000, HOUR]);
    expect(tracker.windowsMs).toEqual([5 * 60_000, HOUR, 30 * DAY]);
    expect(tracker.bytes).toBe(2 * 3 * 240);
  });

  it('keeps the windows its definition names as well', () => {
    expect(new SloTracker({ ...availability, windowsMs: [6 * HOUR] }, ['blue'], [HOUR]).windowsMs).toEqual([HOUR, 6 * HOUR, 30 * DAY]);
  });

  it('a latency line makes a slow success bad', () => {
    const tracker = new SloTracker({ ...availability, latencyMs: 500 }, ['blue'], [HOUR]);
    tracker.record(result(T0, true, { durationMs: 600 }), true);
    tracker.record(result(T0, true, { durationMs: 400 }), true);
    expect(tracker.window('blue', HOUR, T0)).toMatchObject({ total: 2, bad: 1 });
  });

  it('only its probes count', () => {
    const tracker = new SloTracker({ ...availability, probes: ['universe'] }, ['blue'], [HOUR]);
    tracker.record(result(T0, false), true);
    tracker.record(result(T0, false, { probe: 'universe' }), true);
    expect(tracker.window('blue', HOUR, T0)).toMatchObject({ total: 1, bad: 1 });
  });

  it('restores counts only under the same definition (probes, latency line)', () => {
    const book = new SloBook([availability], ['blue', 'green'], new Map([['availability', [HOUR]]]));
    for (let i = 0; i < 100; i++) book.record(result(T0 + i * 1_000, i % 5 !== 0), true);
    const saved = JSON.parse(JSON.stringify(book.save()));

    const same = new SloBook([availability], ['blue', 'green'], new Map([['availability', [HOUR, 6 * HOUR]]]));
    same.restore(saved, T0 + 100_000);
    expect(same.get('availability')!.window('blue', HOUR, T0 + 100_000)).toMatchObject({ total: 100, bad: 20 });
    expect(same.get('availability')!.window('blue', 6 * HOUR, T0 + 100_000)!.total).toBe(0); // a window it did not have

    const narrowed = new SloBook([{ ...availability, probes: ['universe'] }], ['blue', 'green'], new Map([['availability', [HOUR]]]));
    narrowed.restore(saved, T0 + 100_000);
    expect(narrowed.get('availability')!.window('blue', HOUR, T0 + 100_000)!.total).toBe(0);

    new SloBook([availability], ['blue'], new Map()).restore('garbage', T0);
  });

  it('get() without a name is the only SLO, or none when there are several', () => {
    expect(new SloBook([availability], ['blue'], new Map()).get()?.definition.name).toBe('availability');
    expect(new SloBook([availability, { ...availability, name: 'latency' }], ['blue'], new Map()).get()).toBeUndefined();
  });
});

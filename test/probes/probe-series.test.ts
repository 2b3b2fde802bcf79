import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries, RECENT_SAMPLES } from '../../probes/probe-series.js';

const T0 = 1_800_000_000_000;

function result(ok: boolean, at: number, extracted: Record<string, number> = {}, durationMs = 20): ProbeResult {
  return { probe: 'health', env: 'blue', ok, reason: ok ? undefined : 'status', status: ok ? 200 : 500, durationMs, startedAt: at, checks: [], extracted };
}

describe('ProbeSeries', () => {
  const lines = new Map([['memory_percent', [80, 90]]]);

  it('counts consecutive failures and successes', () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    [true, false, false, false].forEach((ok, i) => series.record(result(ok, T0 + i * 1_000)));
    expect(series.consecutiveFailures).toBe(3);
    expect(series.consecutiveSuccesses).toBe(0);
    series.record(result(true, T0 + 5_000));
    series.record(result(true, T0 + 6_000));
    expect(series.consecutiveFailures).toBe(0);
    expect(series.consecutiveSuccesses).toBe(2);
  });

  it('counts confirmation results for streaks and state, but keeps them out of the windows', () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    series.record(result(true, T0));
    series.record(result(false, T0 + 1_000, {}, 900));
    series.record({ ...result(false, T0 + 1_100, {}, 900), confirmation: { of: 'failure', attempt: 1 } });
    series.record({ ...result(false, T0 + 1_200, {}, 900), confirmation: { of: 'failure', attempt: 2 } });
    expect(series.consecutiveFailures).toBe(3);
    expect(series.up).toBe(false);
    expect(series.confirmations).toBe(2);
    expect(series.last?.confirmation).toEqual({ of: 'failure', attempt: 2 });
    // The window holds the two scheduled probes only: 1 of 2 failed, mean latency (20 + 900) / 2.
    const figures = series.windows[0]!.figures(T0 + 2_000);
    expect(figures).toMatchObject({ count: 2, failures: 1, errorRatio: 0.5, meanLatencyMs: 460 });
    expect(series.snapshot(T0 + 2_000)).toMatchObject({ consecutiveFailures: 3, confirmations: 2 });
  });

  it('reports state changes only', () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    expect(series.record(result(true, T0))).toEqual({ up: true, wasUp: undefined });
    expect(series.record(result(true, T0 + 1))).toBeUndefined();
    expect(series.record(result(false, T0 + 2))).toEqual({ up: false, wasUp: true });
    expect(series.record(result(false, T0 + 3))).toBeUndefined();
    expect(series.record(result(true, T0 + 4))).toEqual({ up: true, wasUp: false });
  });

  it("tracks how long an extracted value has stayed above each line: from the run's first reading to its latest, never to now", () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    series.record(result(true, T0, { memory_percent: 85 }));
    series.record(result(true, T0 + 30_000, { memory_percent: 95 }));
    series.record(result(true, T0 + 60_000, { memory_percent: 92 }));
    expect(series.aboveForMs('memory_percent', 80, T0 + 150_000)).toBe(60_000);
    expect(series.aboveForMs('memory_percent', 90, T0 + 150_000)).toBe(30_000);
    // A probe without the value neither breaks nor extends the run (regression: a target that
    // stopped giving it had its last reading held above the line until the memory rule fired).
    series.record(result(false, T0 + 90_000));
    series.record(result(true, T0 + 100_000));
    expect(series.aboveForMs('memory_percent', 90, T0 + 150_000)).toBe(30_000);
    expect(series.latestValue('memory_percent')).toBeUndefined();
    series.record(result(true, T0 + 120_000, { memory_percent: 89 }));
    expect(series.latestValue('memory_percent')).toBe(89);
    expect(series.aboveForMs('memory_percent', 90, T0 + 150_000)).toBe(0);
    expect(series.aboveForMs('memory_percent', 80, T0 + 150_000)).toBe(120_000);
    expect(series.extracted.get('memory_percent')).toMatchObject({ value: 89, at: T0 + 120_000 });
  });

  it('takes a run above a line at the first reading as endless in the worst case (it may have begun before greenlight looked), one it saw begin as it is', () => {
    const series = new ProbeSeries('health', 'green', [60_000], lines, T0);
    series.record(result(true, T0, { memory_percent: 95 }));
    series.record(result(true, T0 + 10_000, { memory_percent: 96 }));
    expect(series.aboveForMs('memory_percent', 90, T0 + 10_000)).toBe(10_000);
    expect(series.aboveForMs('memory_percent', 90, T0 + 10_000, true)).toBe(Number.MAX_SAFE_INTEGER);
    // Under 90, over 80: the 90 run ends; the 80 run goes on, still unseen from its start.
    series.record(result(true, T0 + 20_000, { memory_percent: 85 }));
    series.record(result(true, T0 + 30_000, { memory_percent: 93 }));
    expect(series.aboveForMs('memory_percent', 90, T0 + 30_000, true)).toBe(0);
    expect(series.aboveForMs('memory_percent', 80, T0 + 30_000, true)).toBe(Number.MAX_SAFE_INTEGER);
    series.record(result(true, T0 + 40_000, { memory_percent: 94 }));
    expect(series.aboveForMs('memory_percent', 90, T0 + 40_000, true)).toBe(10_000);
  });

  it('answers 0 for a value or line it does not track', () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    series.record(result(true, T0, { cpu_percent: 99 }));
    expect(series.aboveForMs('cpu_percent', 50, T0 + 1_000)).toBe(0);
    expect(series.aboveForMs('nothing', 50, T0 + 1_000)).toBe(0);
  });

  it('reports probes per minute over its lifetime while younger than the window', () => {
    const series = new ProbeSeries('health', 'blue', [60_000, 300_000], lines, T0);
    for (let i = 0; i < 20; i++) series.record(result(true, T0 + i * 1_000));
    expect(series.probesPerMinute(T0 + 20_000)).toBeCloseTo(60, 0);
    expect(series.snapshot(T0 + 20_000).windows['5m']!.count).toBe(20);
  });

  it('shows an empty window with no error ratio and no latencies, not 0 % errors (regression: the state said 0 while /metrics said NaN)', () => {
    const series = new ProbeSeries('health', 'blue', [60_000, 300_000], lines, T0);
    series.record(result(false, T0));
    // A minute on, the 1 m window is empty and the 5 m one still holds the failure.
    const { windows } = series.snapshot(T0 + 90_000);
    expect(windows['1m']).toEqual({
      windowMs: 60_000,
      count: 0,
      failures: 0,
      errorRatio: null,
      meanLatencyMs: null,
      p50LatencyMs: null,
      p95LatencyMs: null,
      p99LatencyMs: null,
    });
    expect(windows['5m']).toMatchObject({ count: 1, failures: 1, errorRatio: 1 });
  });

  it('snapshots every figure the API shows', () => {
    const series = new ProbeSeries('health', 'blue', [60_000, 300_000], lines, T0);
    series.record(result(false, T0, { memory_percent: 91 }, 40));
    series.recordSkipped();
    const snapshot = series.snapshot(T0 + 1_000);
    expect(snapshot).toMatchObject({
      probe: 'health',
      env: 'blue',
      up: false,
      consecutiveFailures: 1,
      skipped: 1,
      windows: { '1m': { count: 1, failures: 1, errorRatio: 1 }, '5m': { count: 1 } },
      extracted: { memory_percent: { value: 91, aboveForMs: { '80': 0, '90': 0 } } },
    });
    expect(snapshot.last?.status).toBe(500);
  });

  it('keeps the latest results for sparklines, oldest first, bounded', () => {
    const series = new ProbeSeries('health', 'blue', [60_000], lines, T0);
    expect(series.recent()).toEqual({ durationMs: [], failed: [] });
    series.record(result(true, T0, {}, 12.6));
    series.record(result(false, T0 + 1, {}, 2_000));
    expect(series.recent()).toEqual({ durationMs: [13, 2_000], failed: [1] });
    for (let i = 0; i < RECENT_SAMPLES + 5; i++) series.record(result(i % 2 === 0, T0 + 2 + i, {}, i));
    const all = series.recent();
    expect(all.durationMs).toHaveLength(RECENT_SAMPLES);
    expect(all.durationMs.at(-1)).toBe(RECENT_SAMPLES + 4);
    expect(all.durationMs[0]).toBe(5);
    expect(all.failed).toEqual(all.durationMs.flatMap((ms, i) => (ms % 2 === 1 ? [i] : [])));
    expect(series.recent(3)).toEqual({ durationMs: [RECENT_SAMPLES + 2, RECENT_SAMPLES + 3, RECENT_SAMPLES + 4], failed: [1] });
    expect(series.snapshot(T0 + 100)).not.toHaveProperty('recent');
  });

  it('summarizes itself compactly for the status page', () => {
    const series = new ProbeSeries('health', 'blue', [60_000, 300_000], lines, T0);
    expect(series.summary(T0, 5)).toEqual({
      probe: 'health',
      env: 'blue',
      up: undefined,
      consecutiveFailures: 0,
      status: null,
      failure: null,
      window: '1m',
      errorRatio: null,
      p95LatencyMs: null,
      recent: { durationMs: [], failed: [] },
    });
    series.record(result(true, T0, {}, 20));
    series.record(result(true, T0 + 1_000, {}, 20));
    series.record(result(false, T0 + 2_000, {}, 40));
    expect(series.summary(T0 + 2_000, 2)).toMatchObject({
      up: false,
      consecutiveFailures: 1,
      status: 500,
      failure: 'status',
      window: '1m',
      errorRatio: 0.3333,
      recent: { durationMs: [20, 40], failed: [1] },
    });
  });
});

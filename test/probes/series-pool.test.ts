/**
 * The environment's pool (the sums facts over every probe read) against a recomputation over the
 * series, along random sequences of samples: out of order, confirmations, failures, certificates
 * that change, series pooled in the middle of the stream (a reload) and time jumps past whole
 * windows. At every step the pooled facts equal the ones computed by walking the series.
 */
import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { SeriesPool } from '../../probes/series-pool.js';
import { SlidingWindow } from '../../probes/sliding-window.js';
import { DAY_MS } from '../../probes/tls.js';
import { FACTS, type FactContext, type FactParams } from '../../rules/facts.js';
import { seededRandom } from '../../simulator/seeded-random.js';

const T0 = 1_800_000_000_000;
const WINDOWS = [60_000, 300_000];

function result(s: ProbeSeries, at: number, ok: boolean, durationMs: number, extra: Partial<ProbeResult> = {}): ProbeResult {
  return { probe: s.probe, env: s.env, ok, durationMs, startedAt: at, checks: [], extracted: {}, ...(ok ? {} : { reason: 'status' as const }), ...extra };
}

function tls(expiresAt: number, at: number) {
  return { expiresAt, expiring: 'leaf', subject: 'leaf', issuer: 'ca', chainLength: 2, valid: true, checkedAt: at, daysLeft: (expiresAt - at) / DAY_MS };
}

/** Every fact over every probe the pool serves, with the pool and by walking the series. */
function compare(series: ProbeSeries[], pool: SeriesPool | undefined, now: number): void {
  const walk: FactContext = { ruleEnv: 'blue', activeEnvironment: 'blue', environments: ['blue'], now, series: () => series };
  const pooled: FactContext = { ...walk, pool: () => pool };
  for (const fact of ['errorRatio', 'meanLatency', 'samples', 'p95Latency', 'tlsDaysLeft', 'consecutiveFailures']) {
    for (const params of [{}, { window: '1m' }, { window: '5m' }, { probe: '*', window: '1m' }] as FactParams[]) {
      if ((fact === 'tlsDaysLeft' || fact === 'consecutiveFailures') && params.window !== undefined) continue;
      const expected = FACTS[fact]!.compute(walk, params);
      const actual = FACTS[fact]!.compute(pooled, params);
      expect(actual.samples, `${fact} ${JSON.stringify(params)} samples`).toBe(expected.samples);
      if (typeof expected.value === 'number' && fact === 'meanLatency') {
        // Latency sums are added in another order: equal up to float rounding.
        expect(actual.value as number, `${fact} ${JSON.stringify(params)}`).toBeCloseTo(expected.value, 9);
      } else {
        expect(actual.value, `${fact} ${JSON.stringify(params)}`).toBe(expected.value);
      }
    }
  }
}

describe('SeriesPool: the sums of an environment, kept as samples arrive', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) {
    it(`equals a recomputation over the series along a random sequence (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const probes = 2 + Math.floor(random() * 6);
      const series = Array.from({ length: probes }, (_, i) => new ProbeSeries(`p${i}`, 'blue', WINDOWS, new Map(), T0));
      let now = T0;
      // Some samples arrive before the pool exists: it must absorb what the series already hold.
      let pool: SeriesPool | undefined;
      const steps = 400 + Math.floor(random() * 400);
      for (let step = 0; step < steps; step++) {
        const roll = random();
        if (roll < 0.02)
          now += Math.floor(random() * 400_000); // past whole windows, sometimes
        else now += Math.floor(random() * 3_000);
        if (roll > 0.98 || (pool === undefined && step === 50)) {
          // A reload: the pool is built again from what the series hold.
          for (const s of series) s.pool = undefined;
          pool = SeriesPool.of('blue', series);
          for (const s of series) s.pool = pool;
        }
        const s = series[Math.floor(random() * series.length)]!;
        // Probes finish out of order: a result may have started a few seconds before the latest.
        const startedAt = now - Math.floor(random() * 5_000);
        const extra: Partial<ProbeResult> = {};
        if (random() < 0.1) extra.confirmation = { of: 'failure', attempt: 1 };
        if (random() < 0.05) extra.tls = tls(now + Math.floor((random() - 0.2) * 40 * DAY_MS), now);
        s.record(result(s, startedAt, random() > 0.2, 1 + random() * 3_000, extra));
        if (random() < 0.3) compare(series, pool, now);
      }
      compare(series, pool, now);
      compare(series, pool, now + 200_000);
      compare(series, pool, now + 400_000);
    });
  }

  it('is not built over series whose windows differ (a reload that changes windows): facts walk the series', () => {
    const a = new ProbeSeries('a', 'blue', WINDOWS, new Map(), T0);
    const b = new ProbeSeries('b', 'blue', [60_000], new Map(), T0);
    expect(SeriesPool.of('blue', [a, b])).toBeUndefined();
    expect(SeriesPool.of('blue', [])).toBeUndefined();
  });

  it('the earliest certificate moves later when the series that held it renews', () => {
    const a = new ProbeSeries('a', 'blue', WINDOWS, new Map(), T0);
    const b = new ProbeSeries('b', 'blue', WINDOWS, new Map(), T0);
    const pool = SeriesPool.of('blue', [a, b])!;
    a.pool = pool;
    b.pool = pool;
    expect(pool.tlsDaysLeft(T0)).toBeUndefined();
    a.record(result(a, T0, true, 5, { tls: tls(T0 + 3 * DAY_MS, T0) }));
    b.record(result(b, T0, true, 5, { tls: tls(T0 + 10 * DAY_MS, T0) }));
    expect(pool.tlsDaysLeft(T0)).toBe(3);
    a.record(result(a, T0 + 1, true, 5, { tls: tls(T0 + 30 * DAY_MS, T0) }));
    expect(pool.tlsDaysLeft(T0)).toBe(10);
  });
});

describe('SlidingWindow.absorb', () => {
  it('adds bucket by bucket, so the sum expires as its parts do', () => {
    const a = new SlidingWindow(60_000);
    const b = new SlidingWindow(60_000);
    a.add(true, 10, T0);
    b.add(false, 30, T0 + 30_000);
    const sum = new SlidingWindow(60_000);
    sum.absorb(a);
    sum.absorb(b);
    expect(sum.totals(T0 + 30_000)).toEqual({ count: 2, failures: 1, latencySumMs: 40 });
    // The first sample leaves the window first, in the parts and in the sum alike.
    expect(sum.totals(T0 + 61_000)).toEqual({ count: 1, failures: 1, latencySumMs: 30 });
    expect(a.totals(T0 + 61_000).count + b.totals(T0 + 61_000).count).toBe(1);
  });

  it('refuses a window of another length or bucket count', () => {
    expect(() => new SlidingWindow(60_000).absorb(new SlidingWindow(300_000))).toThrow(/cannot absorb/);
    expect(() => new SlidingWindow(60_000).absorb(new SlidingWindow(60_000, 10))).toThrow(/cannot absorb/);
  });
});

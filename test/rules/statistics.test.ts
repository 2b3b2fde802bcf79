/**
 * The comparison statistics against known answers: reference values computed with SciPy 1.17
 * (mannwhitneyu asymptotic with continuity correction, nhypergeom, norm, math.lgamma), and
 * synthetic latency samples whose verdict is known — Kayenta's case (spinnaker#6278) among them:
 * a canary whose slowest samples are 100x the baseline's must fail although its median is the
 * baseline's.
 */
import { describe, expect, it } from 'vitest';
import { SlidingWindow } from '../../probes/sliding-window.js';
import { exceedanceUpperTail, latencyRegression, logGamma, mannWhitney, normalUpperTail, tailExceedance } from '../../rules/statistics.js';
import { seededRandom } from '../../simulator/seeded-random.js';

/** Two raw samples as counts over their distinct values, in order: exact ties, no binning. */
function counts(a: number[], b: number[]): [number[], number[]] {
  const values = [...new Set([...a, ...b])].sort((x, y) => x - y);
  const index = new Map(values.map((v, i) => [v, i]));
  const ca = new Array<number>(values.length).fill(0);
  const cb = new Array<number>(values.length).fill(0);
  for (const v of a) ca[index.get(v)!]!++;
  for (const v of b) cb[index.get(v)!]!++;
  return [ca, cb];
}

/** Log-normal latencies around `medianMs` (spread sigma), n of them. */
function latencies(rand: () => number, n: number, medianMs: number, sigma = 0.3): number[] {
  return Array.from({ length: n }, () => {
    const normal = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return medianMs * Math.exp(sigma * normal);
  });
}

/** The samples through a real sliding window: what the facts compare is its histogram. */
function histogram(samples: number[]): ArrayLike<number> {
  const window = new SlidingWindow(300_000);
  samples.forEach((ms, i) => window.add(true, ms, 1_000_000 + i));
  return Array.from(window.histogram(1_000_000 + samples.length));
}

describe('mannWhitney (SciPy mannwhitneyu, alternative="greater", asymptotic, continuity correction)', () => {
  it.each([
    ['with ties', [3, 4, 4, 5, 6, 7, 8, 8, 9], [1, 2, 2, 3, 4, 5, 5], 53.5, 0.010882764447221216],
    ['fully separated', [6, 7, 8, 9, 10], [1, 2, 3, 4, 5], 25, 0.006092890177672406],
    ['the other way round', [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0, 0.9966923245172357],
  ])('%s', (_name, a, b, u, p) => {
    const [ca, cb] = counts(a, b);
    const test = mannWhitney(ca, cb);
    expect(test.u).toBe(u);
    expect(test.p).toBeCloseTo(p, 6);
  });

  it('heavy ties: three bins of 100 samples each side', () => {
    // a = 30×1, 50×2, 20×3; b = 50×1, 40×2, 10×3 — SciPy: U 6150, p 0.0011002524856851736
    const test = mannWhitney([30, 50, 20], [50, 40, 10]);
    expect(test.u).toBe(6150);
    expect(test.p).toBeCloseTo(0.0011002524856851736, 6);
  });

  it('no evidence without samples or spread: p = 1', () => {
    expect(mannWhitney([0, 0], [3, 4]).p).toBe(1);
    expect(mannWhitney([0, 5, 0], [0, 7, 0]).p).toBe(1);
  });
});

describe('tail exceedance (SciPy nhypergeom(n1 + n2, n1, j).sf(x − 1))', () => {
  it.each([
    [100, 100, 1, 5, 0.02969160523427561],
    [100, 100, 1, 1, 0.49999999999997247],
    [200, 200, 2, 20, 6.670126941665799e-6],
    [60, 60, 1, 3, 0.12184873949580088],
    [1_000, 500, 5, 30, 0.00361240650795025],
  ])('n1 %i, n2 %i, j %i, x %i', (n1, n2, j, x, p) => {
    expect(exceedanceUpperTail(x, n1, n2, j) / p).toBeCloseTo(1, 6);
  });

  it('counts the samples above the bin of the baseline’s j-th largest', () => {
    // Baseline 200 samples, its top 2 in bin 5 → j = 2 marks bin 5; 7 of a lie above it.
    const b = [50, 60, 50, 30, 8, 2, 0, 0];
    const a = [40, 60, 50, 30, 10, 3, 4, 3];
    const tail = tailExceedance(a, b, 0.01);
    expect(tail).toMatchObject({ j: 2, exceed: 7 });
    expect(tail.p).toBeCloseTo(exceedanceUpperTail(7, 200, 200, 2), 12);
  });
});

describe('normal tail and log-gamma', () => {
  it.each([
    [1.96, 0.024997895148220435],
    [3, 0.0013498980316300933],
    [-1, 0.8413447460685429],
    [6, 9.865876450376946e-10],
  ])('P(Z > %d)', (z, p) => {
    expect(normalUpperTail(z) / p).toBeCloseTo(1, 6);
  });

  it.each([
    [10.5, 13.940625219403763],
    [0.3, 1.0957979948180752],
    [1_000, 5905.220423209181],
    [1, 0],
  ])('ln Γ(%d)', (x, value) => {
    expect(logGamma(x)).toBeCloseTo(value, 9);
  });
});

describe('latencyRegression on synthetic latency samples', () => {
  it('Kayenta’s case: 10 % of the canary at 100x the baseline — the rank test alone passes it, the combined test fails it', () => {
    const rand = seededRandom(6278);
    const baseline = latencies(rand, 200, 50);
    const canary = [...latencies(rand, 180, 50), ...Array.from({ length: 20 }, () => 5_000)];
    const test = latencyRegression(histogram(canary), histogram(baseline));
    expect(test.rank.p).toBeGreaterThan(0.01); // what Kayenta's Mann–Whitney saw: not significant
    expect(test.tail.exceed).toBeGreaterThanOrEqual(20);
    expect(test.tail.p).toBeLessThan(1e-4);
    expect(test.p).toBeLessThan(0.01);
  });

  it('a canary 3x slower throughout: both tests fail it', () => {
    const rand = seededRandom(3);
    const test = latencyRegression(histogram(latencies(rand, 100, 150)), histogram(latencies(rand, 100, 50)));
    expect(test.rank.p).toBeLessThan(1e-10);
    expect(test.p).toBeLessThan(1e-9);
  });

  it('a canary 1.5x slower throughout, 60 samples each: significant at 1 %', () => {
    const rand = seededRandom(15);
    const test = latencyRegression(histogram(latencies(rand, 60, 75, 0.2)), histogram(latencies(rand, 60, 50, 0.2)));
    expect(test.p).toBeLessThan(0.01);
  });

  it('a faster canary is not a regression', () => {
    const rand = seededRandom(99);
    const test = latencyRegression(histogram(latencies(rand, 200, 25)), histogram(latencies(rand, 200, 50)));
    expect(test.p).toBe(1);
  });

  it('the same distribution: false alarms at 1 % stay rare (200 seeded pairs)', () => {
    const rand = seededRandom(2024);
    let alarms = 0;
    for (let trial = 0; trial < 200; trial++) {
      if (latencyRegression(histogram(latencies(rand, 100, 50)), histogram(latencies(rand, 100, 50))).p < 0.01) alarms++;
    }
    // Bonferroni over two tests keeps the rate at or below 1 %; 6 of 200 would already be
    // unlikely (P < 0.02) for a test that keeps its level.
    expect(alarms).toBeLessThanOrEqual(5);
  });
});

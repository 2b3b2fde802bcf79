import { describe, expect, it } from 'vitest';
import { binOf, LATENCY_BINS, SlidingWindow } from '../../probes/sliding-window.js';

const T0 = 1_800_000_000_000; // a round clock value, so bucket boundaries are predictable

describe('SlidingWindow', () => {
  it('is empty before any sample', () => {
    const window = new SlidingWindow(60_000);
    expect(window.figures(T0)).toEqual({
      windowMs: 60_000,
      count: 0,
      failures: 0,
      errorRatio: 0,
      meanLatencyMs: undefined,
      p50LatencyMs: undefined,
      p95LatencyMs: undefined,
      p99LatencyMs: undefined,
    });
  });

  it('counts samples, failures, error ratio and mean latency', () => {
    const window = new SlidingWindow(60_000);
    for (let i = 0; i < 10; i++) window.add(i % 5 !== 0, 100 + i * 10, T0 + i * 1_000);
    const figures = window.figures(T0 + 10_000);
    expect(figures.count).toBe(10);
    expect(figures.failures).toBe(2);
    expect(figures.errorRatio).toBeCloseTo(0.2);
    expect(figures.meanLatencyMs).toBeCloseTo(145);
  });

  it('forgets samples once they are older than the window', () => {
    const window = new SlidingWindow(60_000, 30);
    window.add(false, 100, T0);
    window.add(true, 100, T0 + 30_000);
    expect(window.figures(T0 + 59_000).count).toBe(2);
    // A bucket is 2 s: the T0 sample leaves once its bucket rotates out.
    expect(window.figures(T0 + 61_000)).toMatchObject({ count: 1, failures: 0, errorRatio: 0 });
    expect(window.figures(T0 + 91_000)).toMatchObject({ count: 0, failures: 0, meanLatencyMs: undefined });
  });

  it('empties completely after a gap longer than the window', () => {
    const window = new SlidingWindow(60_000);
    for (let i = 0; i < 100; i++) window.add(false, 50, T0 + i * 100);
    expect(window.figures(T0 + 10 * 60_000)).toMatchObject({ count: 0, failures: 0 });
    window.add(true, 10, T0 + 10 * 60_000);
    expect(window.figures(T0 + 10 * 60_000)).toMatchObject({ count: 1, failures: 0, errorRatio: 0 });
  });

  it('ignores a sample older than the window', () => {
    const window = new SlidingWindow(60_000);
    window.add(true, 10, T0 + 120_000);
    window.add(false, 10, T0);
    expect(window.figures(T0 + 120_000)).toMatchObject({ count: 1, failures: 0 });
  });

  it.each([
    ['uniform 1..1000 ms', Array.from({ length: 1000 }, (_, i) => i + 1), { p50: 500, p95: 950, p99: 990 }],
    ['all 200 ms', Array.from({ length: 100 }, () => 200), { p50: 200, p95: 200, p99: 200 }],
    ['mostly fast, 5 % at 3 s', [...Array.from({ length: 95 }, () => 20), ...Array.from({ length: 5 }, () => 3_000)], { p50: 20, p95: 20, p99: 3_000 }],
  ])('estimates latency quantiles within the histogram resolution: %s', (_name, latencies, expected) => {
    const window = new SlidingWindow(300_000);
    latencies.forEach((ms, i) => window.add(true, ms, T0 + i));
    const figures = window.figures(T0 + latencies.length);
    // 4 bins per doubling: a bin spans 19 %, so an interpolated estimate is within about 19 % of the truth.
    expect(figures.p50LatencyMs!).toBeGreaterThan(expected.p50 * 0.81);
    expect(figures.p50LatencyMs!).toBeLessThan(expected.p50 * 1.19);
    expect(figures.p95LatencyMs!).toBeGreaterThan(expected.p95 * 0.81);
    expect(figures.p95LatencyMs!).toBeLessThan(expected.p95 * 1.19);
    expect(figures.p99LatencyMs!).toBeGreaterThan(expected.p99 * 0.81);
    expect(figures.p99LatencyMs!).toBeLessThan(expected.p99 * 1.19);
  });

  it('keeps the quantiles of what is still in the window only', () => {
    const window = new SlidingWindow(60_000);
    for (let i = 0; i < 50; i++) window.add(true, 2_000, T0 + i * 100);
    for (let i = 0; i < 50; i++) window.add(true, 10, T0 + 70_000 + i * 100);
    expect(window.figures(T0 + 75_000).p99LatencyMs!).toBeLessThan(12);
  });

  it('holds memory fixed by buckets and bins, whatever the sample count', () => {
    // Asserted on the structure that bounds memory, not on the heap: heapUsed moves with the
    // garbage collector's timing, which made this test fail by chance (issue 20).
    const window = new SlidingWindow(60_000, 30);
    const allocated = window.footprint();
    // 30 buckets × (count, failures, latency sum, 68 bins) + 68 running bins.
    expect(allocated).toEqual({
      buckets: 30,
      binsPerBucket: LATENCY_BINS,
      counters: 30 * (3 + LATENCY_BINS) + LATENCY_BINS,
      // Bins of 8 bits while no bin of a bucket passes 255.
      bytes: 30 * (4 + 4 + 8 + LATENCY_BINS) + 4 * LATENCY_BINS,
    });
    // 2,000 samples a bucket put about 250 in each of the slowest bins: past 8 bits, so the bins
    // widen to 16 within the first bucket, once, and then hold whatever comes.
    for (let i = 0; i < 2_000; i++) window.add(i % 7 !== 0, (i % 500) + 1, T0 + i);
    const widened = window.footprint();
    expect(widened).toEqual({ ...allocated, bytes: allocated.bytes + 30 * LATENCY_BINS });
    for (let i = 2_000; i < 200_000; i++) window.add(i % 7 !== 0, (i % 500) + 1, T0 + i);
    const figures = window.figures(T0 + 200_000);
    // It kept counting in the same arrays: at T0 + 200 s a new 2 s bucket has just begun, so the
    // window holds the 29 whole buckets before it, one sample a millisecond.
    expect(figures.count).toBe(29 * 2_000);
    expect(window.footprint()).toEqual(widened);
  });

  it('widens its bins to 16 bits when a bucket holds more than 255 samples in one bin, losing none', () => {
    const window = new SlidingWindow(60_000, 30);
    const narrow = window.footprint().bytes;
    for (let i = 0; i < 255; i++) window.add(true, 10, T0);
    expect(window.footprint().bytes).toBe(narrow);
    window.add(true, 10, T0);
    window.add(true, 10, T0 + 2_000);
    expect(window.footprint().bytes).toBe(narrow + 30 * LATENCY_BINS);
    expect(window.histogram(T0 + 2_000)[binOf(10)]).toBe(257);
    expect(window.figures(T0 + 2_000).count).toBe(257);
    // The bucket of 256 expires whole; the other one's sample is still counted.
    expect(window.figures(T0 + 60_000).count).toBe(1);
    expect(window.histogram(T0 + 60_000)[binOf(10)]).toBe(1);
  });

  it('widens its bins to 32 bits when a bucket holds more than 65,535 samples in one bin, losing none', () => {
    const window = new SlidingWindow(60_000, 30);
    const narrow = window.footprint().bytes;
    // 70,000 samples of 10 ms in one 2 s bucket, then 10 of 1 s: the 10 ms bin passes 16 bits.
    for (let i = 0; i < 70_000; i++) window.add(true, 10, T0);
    for (let i = 0; i < 10; i++) window.add(false, 1_000, T0);
    // From 8 bits to 32: 3 more bytes a bin.
    expect(window.footprint().bytes).toBe(narrow + 30 * 3 * LATENCY_BINS);
    const figures = window.figures(T0);
    expect(figures.count).toBe(70_010);
    expect(figures.failures).toBe(10);
    expect(window.histogram(T0)[binOf(10)]).toBe(70_000);
    expect(figures.p50LatencyMs).toBeLessThan(12);
    expect(figures.p99LatencyMs).toBeLessThan(12);
    expect(window.quantile(0.99995, T0)).toBeGreaterThan(900);
    // The bucket expires whole: the running totals come back to zero.
    expect(window.figures(T0 + 60_000).count).toBe(0);
    expect(window.histogram(T0 + 60_000)[binOf(10)]).toBe(0);
  });

  it('widens when absorbing another window would pass 8 bits in a bin, and again past 16', () => {
    const a = new SlidingWindow(60_000, 30);
    const b = new SlidingWindow(60_000, 30);
    const narrow = a.footprint().bytes;
    for (let i = 0; i < 200; i++) {
      a.add(true, 10, T0);
      b.add(true, 10, T0);
    }
    a.absorb(b);
    expect(a.footprint().bytes).toBe(narrow + 30 * LATENCY_BINS);
    expect(a.histogram(T0)[binOf(10)]).toBe(400);
    // Straight from 8 bits to 32 when one absorb passes both.
    const c = new SlidingWindow(60_000, 30);
    const big = new SlidingWindow(60_000, 30);
    for (let i = 0; i < 70_000; i++) big.add(true, 10, T0);
    c.add(true, 10, T0);
    c.absorb(big);
    expect(c.footprint().bytes).toBe(narrow + 30 * 3 * LATENCY_BINS);
    expect(c.histogram(T0)[binOf(10)]).toBe(70_001);
  });

  it('widens when absorbing another window would pass 16 bits in a bin', () => {
    const a = new SlidingWindow(60_000, 30);
    const b = new SlidingWindow(60_000, 30);
    for (let i = 0; i < 40_000; i++) {
      a.add(true, 10, T0);
      b.add(true, 10, T0);
    }
    a.absorb(b);
    expect(a.figures(T0).count).toBe(80_000);
    expect(a.histogram(T0)[binOf(10)]).toBe(80_000);
    a.add(true, 10, T0);
    expect(a.histogram(T0)[binOf(10)]).toBe(80_001);
    expect(a.figures(T0 + 60_000).count).toBe(0);
  });
});

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

  it.each([
    ['listed', 5],
    ['binned', 40],
  ])('counts from a moment on, from the first bucket that starts after it (%s buckets)', (_layout, perBucket) => {
    // 60 s of 30 buckets of 2 s: samples in the first 30 s fail at 900 ms, the rest pass at 10 ms.
    const window = new SlidingWindow(60_000);
    for (let i = 0; i < 30 * perBucket; i++) window.add(false, 900, T0 + (i * 1_000) / perBucket);
    for (let i = 0; i < 30 * perBucket; i++) window.add(true, 10, T0 + 30_000 + (i * 1_000) / perBucket);
    const at = T0 + 59_999;
    expect(window.totals(at)).toMatchObject({ count: 60 * perBucket, failures: 30 * perBucket });
    // From 30 s, a bucket's start: the passing half exactly.
    expect(window.totals(at, T0 + 30_000)).toEqual({ count: 30 * perBucket, failures: 0, latencySumMs: 30 * perBucket * 10 });
    expect(window.quantile(0.99, at, T0 + 30_000)!).toBeLessThan(12);
    expect(window.quantile(0.99, at)!).toBeGreaterThan(800);
    // From 29 s: the bucket of 28–30 s holds failures from before it, so counting starts at 30 s.
    expect(window.totals(at, T0 + 29_000)).toMatchObject({ count: 30 * perBucket, failures: 0 });
    // From 31 s: the bucket of 30–32 s holds samples from before it too: counting starts at 32 s.
    expect(window.totals(at, T0 + 31_000)).toMatchObject({ count: 28 * perBucket, failures: 0 });
    // A moment before the window changes nothing; one after the newest bucket counts nothing.
    expect(window.totals(at, T0 - 3_600_000)).toEqual(window.totals(at));
    expect(window.totals(at, T0 + 70_000)).toEqual({ count: 0, failures: 0, latencySumMs: 0 });
    expect(window.quantile(0.5, at, T0 + 70_000)).toBeUndefined();
  });

  it('holds memory fixed by buckets and the densest bucket, whatever the sample count', () => {
    // Asserted on the structure that bounds memory, not on the heap: heapUsed moves with the
    // garbage collector's timing, which made this test fail by chance (issue 20).
    const window = new SlidingWindow(60_000, 30);
    const fixed = 30 * (4 + 4 + 8) + 4 * LATENCY_BINS; // count, failures, latency sum; running bins
    expect(window.footprint()).toEqual({ buckets: 30, layout: 'listed', perBucket: 1, bitsPerBin: 0, bytes: fixed + 30 });
    // A probe every second for ten minutes, its answers landing 5 ms or 700 ms after each tick:
    // 1, 2 or 3 samples a 2 s bucket, so lists of 4.
    const answered = (i: number) => T0 + i * 1_000 + 500 + (i % 3 === 0 ? 700 : 5);
    for (let i = 0; i < 600; i++) window.add(true, 40 + (i % 7), answered(i));
    const probed = window.footprint();
    expect(probed).toEqual({ buckets: 30, layout: 'listed', perBucket: 4, bitsPerBin: 0, bytes: fixed + 30 * 4 });
    for (let i = 600; i < 1_200; i++) window.add(true, 40 + (i % 7), answered(i));
    expect(window.footprint()).toEqual(probed);
    // 2,000 samples a bucket: binned, and about 250 in each of the slowest bins passes 8 bits,
    // so the bins widen to 16 within the first such bucket, once, and then hold whatever comes.
    const t1 = T0 + 1_200_000;
    for (let i = 0; i < 2_000; i++) window.add(i % 7 !== 0, (i % 500) + 1, t1 + i);
    const widened = window.footprint();
    expect(widened).toEqual({ buckets: 30, layout: 'binned', perBucket: LATENCY_BINS, bitsPerBin: 16, bytes: fixed + 30 * 2 * LATENCY_BINS });
    for (let i = 2_000; i < 200_000; i++) window.add(i % 7 !== 0, (i % 500) + 1, t1 + i);
    const figures = window.figures(t1 + 200_000);
    // It kept counting in the same arrays: at t1 + 200 s a new 2 s bucket has just begun, so the
    // window holds the 29 whole buckets before it, one sample a millisecond.
    expect(figures.count).toBe(29 * 2_000);
    expect(window.footprint()).toEqual(widened);
  });

  it('lists up to 32 samples a bucket, doubling, and bins the 33rd, keeping every figure', () => {
    const window = new SlidingWindow(60_000, 30);
    const lengths: number[] = [];
    for (let i = 0; i < 40; i++) {
      window.add(i % 4 !== 0, 2 ** (i % 12), T0 + i);
      const { layout, perBucket } = window.footprint();
      lengths.push(layout === 'listed' ? perBucket : -perBucket);
    }
    expect([...new Set(lengths)]).toEqual([1, 2, 4, 8, 16, 32, -LATENCY_BINS]);
    expect(lengths.indexOf(-LATENCY_BINS)).toBe(32); // the 33rd sample
    const histogram = Array.from(window.histogram(T0 + 40));
    const expected = new Array<number>(LATENCY_BINS).fill(0);
    for (let i = 0; i < 40; i++) expected[binOf(2 ** (i % 12))]!++;
    expect(histogram).toEqual(expected);
    expect(window.figures(T0 + 40)).toMatchObject({ count: 40, failures: 10 });
    expect(window.figures(T0 + 60_000).count).toBe(0);
    expect(Array.from(window.histogram(T0 + 60_000))).toEqual(new Array<number>(LATENCY_BINS).fill(0));
  });

  it('widens its bins to 16 bits when a bucket holds more than 255 samples in one bin, losing none', () => {
    const window = new SlidingWindow(60_000, 30);
    for (let i = 0; i < 255; i++) window.add(true, 10, T0);
    expect(window.footprint()).toMatchObject({ layout: 'binned', bitsPerBin: 8 });
    const narrow = window.footprint().bytes;
    window.add(true, 10, T0);
    window.add(true, 10, T0 + 2_000);
    expect(window.footprint()).toMatchObject({ bitsPerBin: 16, bytes: narrow + 30 * LATENCY_BINS });
    expect(window.histogram(T0 + 2_000)[binOf(10)]).toBe(257);
    expect(window.figures(T0 + 2_000).count).toBe(257);
    // The bucket of 256 expires whole; the other one's sample is still counted.
    expect(window.figures(T0 + 60_000).count).toBe(1);
    expect(window.histogram(T0 + 60_000)[binOf(10)]).toBe(1);
  });

  it('widens its bins to 32 bits when a bucket holds more than 65,535 samples in one bin, losing none', () => {
    const window = new SlidingWindow(60_000, 30);
    // 70,000 samples of 10 ms in one 2 s bucket, then 10 of 1 s: the 10 ms bin passes 16 bits.
    for (let i = 0; i < 70_000; i++) window.add(true, 10, T0);
    for (let i = 0; i < 10; i++) window.add(false, 1_000, T0);
    expect(window.footprint()).toMatchObject({ layout: 'binned', bitsPerBin: 32 });
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
    for (let i = 0; i < 200; i++) {
      a.add(true, 10, T0);
      b.add(true, 10, T0);
    }
    expect(a.footprint()).toMatchObject({ layout: 'binned', bitsPerBin: 8 });
    a.absorb(b);
    expect(a.footprint()).toMatchObject({ bitsPerBin: 16 });
    expect(a.histogram(T0)[binOf(10)]).toBe(400);
    // Straight from a list to 32-bit bins when one absorb passes both.
    const c = new SlidingWindow(60_000, 30);
    const big = new SlidingWindow(60_000, 30);
    for (let i = 0; i < 70_000; i++) big.add(true, 10, T0);
    c.add(true, 10, T0);
    c.absorb(big);
    expect(c.footprint()).toMatchObject({ layout: 'binned', bitsPerBin: 32 });
    expect(c.histogram(T0)[binOf(10)]).toBe(70_001);
  });

  it('counts exactly what a list of its samples would, through every layout, as buckets expire and windows absorb', () => {
    // A seeded walk: bursts and lulls move each window between lists, bins and wider bins; after
    // every step the window must say what the samples still inside it say.
    let seed = 20261206;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
    const bucketMs = 2_000;
    type Sample = { at: number; ok: boolean; bin: number; latencyMs: number };
    const reference = (samples: Sample[], at: number) => {
      const inside = samples.filter((s) => Math.floor(s.at / bucketMs) > Math.floor(at / bucketMs) - 30);
      const bins = new Array<number>(LATENCY_BINS).fill(0);
      for (const s of inside) bins[s.bin]!++;
      return { count: inside.length, failures: inside.filter((s) => !s.ok).length, bins };
    };
    const check = (window: SlidingWindow, samples: Sample[], at: number) => {
      const want = reference(samples, at);
      expect(window.figures(at)).toMatchObject({ count: want.count, failures: want.failures });
      expect(Array.from(window.histogram(at))).toEqual(want.bins);
    };
    const windows = [new SlidingWindow(60_000, 30), new SlidingWindow(60_000, 30)];
    const samples: Sample[][] = [[], []];
    let now = T0;
    const layouts = new Set<string>();
    for (let step = 0; step < 400; step++) {
      now += Math.floor(random() * 3_000);
      const which = random() < 0.5 ? 0 : 1;
      const burst = random() < 0.05 ? 300 : Math.floor(random() * 4);
      const steady = random() < 0.5 ? 10 : undefined; // a burst of one latency passes 8 bits in its bin
      for (let i = 0; i < burst; i++) {
        const latencyMs = steady ?? 0.2 + random() ** 3 * 5_000;
        const ok = random() > 0.2;
        windows[which]!.add(ok, latencyMs, now);
        samples[which]!.push({ at: now, ok, bin: binOf(latencyMs), latencyMs });
      }
      check(windows[which]!, samples[which]!, now);
      const { layout, bitsPerBin } = windows[which]!.footprint();
      layouts.add(`${layout}${bitsPerBin}`);
      if (step % 50 === 49) {
        // Absorb into a fresh window and into the other: lists into bins, bins into lists.
        const sum = new SlidingWindow(60_000, 30);
        sum.absorb(windows[0]!);
        sum.absorb(windows[1]!);
        check(sum, [...samples[0]!, ...samples[1]!], now);
        check(windows[0]!, samples[0]!, now);
      }
    }
    expect(layouts).toEqual(new Set(['listed0', 'binned8', 'binned16']));
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

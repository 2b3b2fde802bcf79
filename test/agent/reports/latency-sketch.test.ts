import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addEncodedBins, encodeBins, LatencyHistogram, mergeEncoded } from '../../../agent/reports/latency-sketch.js';
import { LATENCY_BINS, SlidingWindow } from '../../../probes/sliding-window.js';

const latencies = fc.array(fc.double({ min: 0, max: 120_000, noNaN: true }), { minLength: 1, maxLength: 400 });

describe('the rollups latency histogram', () => {
  it('reads the same quantiles as a sliding window over the same samples', () => {
    fc.assert(
      fc.property(latencies, (samples) => {
        const histogram = new LatencyHistogram();
        const window = new SlidingWindow(60_000);
        for (const ms of samples) {
          histogram.add(ms);
          window.add(true, ms, 1_000);
        }
        for (const q of [0.5, 0.95, 0.99]) expect(histogram.quantile(q)).toBe(window.quantile(q, 1_000));
      }),
    );
  });

  it('survives encoding, and merges by adding bin by bin (a day is the sum of its hours)', () => {
    fc.assert(
      fc.property(latencies, latencies, (a, b) => {
        const first = new LatencyHistogram();
        const second = new LatencyHistogram();
        const both = new LatencyHistogram();
        for (const ms of a) {
          first.add(ms);
          both.add(ms);
        }
        for (const ms of b) {
          second.add(ms);
          both.add(ms);
        }
        const merged = new LatencyHistogram();
        merged.addEncoded(mergeEncoded(first.encode(), second.encode()));
        expect([...merged.bins]).toEqual([...both.bins]);
        expect(merged.count).toBe(a.length + b.length);
        expect(merged.quantile(0.95)).toBe(both.quantile(0.95));
      }),
    );
  });

  it('stores counts past 2^32 (a long merge) and a steady minute in a few bytes', () => {
    const bins = new Float64Array(LATENCY_BINS);
    bins[3] = 2 ** 40 + 7;
    bins[67] = 1;
    const back = new Float64Array(LATENCY_BINS);
    expect(addEncodedBins(back, encodeBins(bins))).toBe(2 ** 40 + 8);
    expect(back[3]).toBe(2 ** 40 + 7);
    const minute = new LatencyHistogram();
    for (let i = 0; i < 60; i++) minute.add(40 + (i % 3));
    expect(minute.encode().length).toBeLessThanOrEqual(6);
  });

  it('reads a truncated or foreign blob up to the fault, never past it', () => {
    const histogram = new LatencyHistogram();
    histogram.addEncoded(Buffer.from([5, 0x85])); // a varint cut off
    histogram.addEncoded(Buffer.from([200, 1])); // a bin that does not exist
    histogram.addEncoded(null);
    expect(histogram.count).toBe(0);
    expect(histogram.quantile(0.5)).toBeUndefined();
  });
});

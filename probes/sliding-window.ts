/**
 * A time-based sliding window over probe outcomes: a ring of time buckets rotated lazily
 * against an injected clock (as prom-client's time-window quantiles do). Each bucket holds a
 * count, failures, latency sum and a log-scale latency histogram; running totals are kept for
 * the whole window, so recording is constant work and reading is a scan of the histogram bins.
 * Memory depends on the bucket and bin counts only, never on how many samples arrive (the bins
 * widen from 8 to 16 to 32 bits as a bucket's samples in one bin need, at most twice).
 */

/** Latency histogram: 4 bins per doubling from 0.5 ms (bin 0 also takes anything faster) to about 65 s. */
const MIN_LATENCY_MS = 0.5;
const BINS_PER_DOUBLING = 4;
export const LATENCY_BINS = 68;

export interface WindowFigures {
  windowMs: number;
  count: number;
  failures: number;
  /** failures / count; 0 for an empty window. */
  errorRatio: number;
  /** Undefined while the window is empty. */
  meanLatencyMs: number | undefined;
  p50LatencyMs: number | undefined;
  p95LatencyMs: number | undefined;
  p99LatencyMs: number | undefined;
}

export class SlidingWindow {
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly #buckets: number;
  readonly #count: Uint32Array;
  readonly #failures: Uint32Array;
  readonly #latencySum: Float64Array;
  /**
   * Bucket b's bins are at [b * LATENCY_BINS, (b + 1) * LATENCY_BINS). 8 bits each until one
   * would pass 255, then 16 until one would pass 65,535, then 32: each step widens all of them,
   * once. The bins are most of a window's memory, and a series probed every second puts at most
   * a bucket's seconds (2 in a 1-minute window, 10 in 5 minutes) into any one bin; only pools of
   * many series and sub-second probing get to 16 bits, pools of thousands to 32 (issue 18: 8
   * bits where there were 16 took 4 KB off every series of the default windows).
   */
  #bins: Uint8Array | Uint16Array | Uint32Array;
  /** The most one bin holds at the bins' present width. */
  #binMax = 0xff;
  readonly #totalBins: Uint32Array;
  #totalCount = 0;
  #totalFailures = 0;
  #totalLatency = 0;
  /** The newest epoch (time / bucketMs) the ring has been rotated to. */
  #head = -Infinity;

  constructor(windowMs: number, buckets = 30) {
    this.windowMs = windowMs;
    this.#buckets = buckets;
    this.bucketMs = windowMs / buckets;
    // The fixed-width counters share one buffer: each ArrayBuffer costs a JS object (92 bytes in a
    // heap snapshot) and a native allocation of its own besides its bytes; this saves three a window.
    const shared = new ArrayBuffer(buckets * (8 + 4 + 4) + LATENCY_BINS * 4);
    this.#latencySum = new Float64Array(shared, 0, buckets);
    this.#count = new Uint32Array(shared, buckets * 8, buckets);
    this.#failures = new Uint32Array(shared, buckets * 12, buckets);
    this.#totalBins = new Uint32Array(shared, buckets * 16, LATENCY_BINS);
    this.#bins = new Uint8Array(buckets * LATENCY_BINS);
  }

  /** Record one outcome at clock time `at` (ms). */
  add(ok: boolean, latencyMs: number, at: number): void {
    const epoch = this.#rotate(at);
    if (epoch < this.#head - this.#buckets + 1) return; // older than the window: nothing to count
    const slot = slotOf(epoch, this.#buckets);
    const bin = binOf(latencyMs);
    this.#count[slot]!++;
    this.#latencySum[slot]! += latencyMs;
    const index = slot * LATENCY_BINS + bin;
    if (this.#bins[index] === this.#binMax) this.#widenFor(this.#binMax + 1);
    this.#bins[index]!++;
    this.#totalBins[bin]!++;
    this.#totalCount++;
    this.#totalLatency += latencyMs;
    if (!ok) {
      this.#failures[slot]!++;
      this.#totalFailures++;
    }
  }

  /**
   * Add everything `other` holds into this window, bucket by bucket (an environment's pool is
   * built from its series' windows this way). Both must have the same length and bucket count:
   * buckets are aligned on the clock (epoch = time / bucketMs), so equal epochs are equal spans.
   * Both are first rotated to the later of their heads, so neither holds a bucket the other has
   * expired.
   */
  absorb(other: SlidingWindow): void {
    if (other.windowMs !== this.windowMs || other.#buckets !== this.#buckets)
      throw new Error(`cannot absorb a ${other.windowMs} ms window of ${other.#buckets} buckets into a ${this.windowMs} ms one of ${this.#buckets}`);
    if (other.#head === -Infinity) return;
    const head = Math.max(this.#head, other.#head);
    this.#rotateTo(head);
    other.#rotateTo(head);
    for (let slot = 0; slot < this.#buckets; slot++) {
      const count = other.#count[slot]!;
      if (count === 0) continue;
      this.#count[slot]! += count;
      this.#failures[slot]! += other.#failures[slot]!;
      this.#latencySum[slot]! += other.#latencySum[slot]!;
      this.#totalCount += count;
      this.#totalFailures += other.#failures[slot]!;
      this.#totalLatency += other.#latencySum[slot]!;
      const base = slot * LATENCY_BINS;
      for (let bin = 0; bin < LATENCY_BINS; bin++) {
        const n = other.#bins[base + bin]!;
        if (n === 0) continue;
        if (this.#bins[base + bin]! + n > this.#binMax) this.#widenFor(this.#bins[base + bin]! + n);
        this.#bins[base + bin]! += n;
        this.#totalBins[bin]! += n;
      }
    }
  }

  /**
   * What the window has allocated: its buckets, and the counters they and the running totals
   * hold. Fixed at construction but for the bins' widening (at most twice, to 16 and 32 bits);
   * recording only ever writes into these typed arrays.
   */
  footprint(): { buckets: number; binsPerBucket: number; counters: number; bytes: number } {
    const arrays = [this.#count, this.#failures, this.#latencySum, this.#bins, this.#totalBins];
    return {
      buckets: this.#buckets,
      binsPerBucket: this.#bins.length / this.#buckets,
      counters: arrays.reduce((sum, array) => sum + array.length, 0),
      bytes: arrays.reduce((sum, array) => sum + array.byteLength, 0),
    };
  }

  /** Bins wide enough to hold `count` in one: 16 bits, or 32 (the widest; a no-op once they are). */
  #widenFor(count: number): void {
    if (this.#bins instanceof Uint32Array) return;
    this.#bins = count > 0xffff ? Uint32Array.from(this.#bins) : Uint16Array.from(this.#bins);
    this.#binMax = count > 0xffff ? 0xffffffff : 0xffff;
  }

  /** Count, failures and latency sum as of `at`: the cheap part of the figures (no quantiles). */
  totals(at: number): { count: number; failures: number; latencySumMs: number } {
    this.#rotate(at);
    return { count: this.#totalCount, failures: this.#totalFailures, latencySumMs: this.#totalLatency };
  }

  /** The window's figures as of clock time `at`. */
  figures(at: number): WindowFigures {
    this.#rotate(at);
    const count = this.#totalCount;
    return {
      windowMs: this.windowMs,
      count,
      failures: this.#totalFailures,
      errorRatio: count === 0 ? 0 : this.#totalFailures / count,
      meanLatencyMs: count === 0 ? undefined : this.#totalLatency / count,
      ...this.#standardQuantiles(),
    };
  }

  /** p50, p95 and p99 in one scan of the bins (figures are read for every series on a scrape). */
  #standardQuantiles(): Pick<WindowFigures, 'p50LatencyMs' | 'p95LatencyMs' | 'p99LatencyMs'> {
    if (this.#totalCount === 0) return { p50LatencyMs: undefined, p95LatencyMs: undefined, p99LatencyMs: undefined };
    const ranks = [0.5 * this.#totalCount, 0.95 * this.#totalCount, 0.99 * this.#totalCount];
    const found: number[] = [];
    let seen = 0;
    for (let bin = 0; bin < LATENCY_BINS && found.length < 3; bin++) {
      const inBin = this.#totalBins[bin]!;
      if (inBin === 0) continue;
      while (found.length < 3 && seen + inBin >= ranks[found.length]!) {
        const low = bin === 0 ? 0 : binLowerBound(bin);
        const high = binLowerBound(bin + 1);
        found.push(low + (high - low) * Math.max(0, Math.min(1, (ranks[found.length]! - seen) / inBin)));
      }
      seen += inBin;
    }
    while (found.length < 3) found.push(binLowerBound(LATENCY_BINS));
    return { p50LatencyMs: found[0], p95LatencyMs: found[1], p99LatencyMs: found[2] };
  }

  /**
   * The window's latency histogram as of `at`: counts per bin (LATENCY_BINS of them, four per
   * doubling from 0.5 ms), every probe in the window counted once. A view of the running totals,
   * not a copy: read it before the next add.
   */
  histogram(at: number): ArrayLike<number> {
    this.#rotate(at);
    return this.#totalBins;
  }

  /** Latency quantile in ms (interpolated within a histogram bin), undefined while empty. */
  quantile(q: number, at: number): number | undefined {
    this.#rotate(at);
    return quantileOfBins(this.#totalBins, this.#totalCount, q);
  }

  /** Expire the buckets that left the window by `at`; returns the epoch of `at`. */
  #rotate(at: number): number {
    return this.#rotateTo(Math.floor(at / this.bucketMs));
  }

  #rotateTo(epoch: number): number {
    if (epoch <= this.#head) return epoch;
    const from = Math.max(this.#head + 1, epoch - this.#buckets + 1);
    for (let next = from; next <= epoch; next++) this.#clear(slotOf(next, this.#buckets));
    this.#head = epoch;
    return epoch;
  }

  #clear(slot: number): void {
    if (this.#count[slot]! > 0) {
      this.#totalCount -= this.#count[slot]!;
      this.#totalFailures -= this.#failures[slot]!;
      this.#totalLatency -= this.#latencySum[slot]!;
      const base = slot * LATENCY_BINS;
      for (let bin = 0; bin < LATENCY_BINS; bin++) {
        const n = this.#bins[base + bin]!;
        if (n !== 0) {
          this.#totalBins[bin]! -= n;
          this.#bins[base + bin] = 0;
        }
      }
      this.#count[slot] = 0;
      this.#failures[slot] = 0;
      this.#latencySum[slot] = 0;
      if (this.#totalCount === 0) this.#totalLatency = 0; // drop accumulated float error
    }
  }
}

function slotOf(epoch: number, buckets: number): number {
  return ((epoch % buckets) + buckets) % buckets;
}

/**
 * The `q` quantile in ms of a latency histogram with this module's bins (`total` samples in
 * `bins`), interpolated within its bin; undefined for an empty one. Histograms of many windows,
 * minutes or hours add bin by bin, so this reads merged ones too (the report's rollups).
 */
export function quantileOfBins(bins: ArrayLike<number>, total: number, q: number): number | undefined {
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let bin = 0; bin < LATENCY_BINS; bin++) {
    const inBin = bins[bin]!;
    if (inBin === 0) continue;
    if (seen + inBin >= rank) {
      const low = bin === 0 ? 0 : binLowerBound(bin);
      const high = binLowerBound(bin + 1);
      return low + (high - low) * Math.max(0, Math.min(1, (rank - seen) / inBin));
    }
    seen += inBin;
  }
  return binLowerBound(LATENCY_BINS);
}

/** The histogram bin of a latency: 4 per doubling from 0.5 ms, the first and last open-ended. */
export function binOf(latencyMs: number): number {
  if (!(latencyMs > MIN_LATENCY_MS)) return 0;
  return Math.min(LATENCY_BINS - 1, Math.floor(Math.log2(latencyMs / MIN_LATENCY_MS) * BINS_PER_DOUBLING));
}

/** The lowest latency (ms) bin `bin` holds. */
export function binLowerBound(bin: number): number {
  return MIN_LATENCY_MS * 2 ** (bin / BINS_PER_DOUBLING);
}

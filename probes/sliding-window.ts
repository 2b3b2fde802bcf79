/**
 * A time-based sliding window over probe outcomes: a ring of time buckets rotated lazily
 * against an injected clock (as prom-client's time-window quantiles do). Each bucket holds a
 * count, failures, latency sum and a log-scale latency histogram; running totals are kept for
 * the whole window, so recording is constant work and reading is a scan of the histogram bins.
 * Memory depends on the bucket count and on the most samples one bucket has held, never on how
 * many arrive: a bucket's latencies are first kept as a short list of bin numbers, which grows
 * (1, 2, 4 … 32 a bucket) until a histogram of bins is smaller, whose bins then widen from 8 to
 * 16 to 32 bits as one bin needs. Each step happens once, for every bucket at once; none undoes.
 */

/** Latency histogram: 4 bins per doubling from 0.5 ms (bin 0 also takes anything faster) to about 65 s. */
const MIN_LATENCY_MS = 0.5;
const BINS_PER_DOUBLING = 4;
export const LATENCY_BINS = 68;
/** The longest list of samples a bucket keeps before its window turns to a histogram of bins. */
const MAX_LISTED = 32;

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
   * The buckets' latencies, most of a window's memory, in one of two layouts:
   * - listed (#listed > 0): bucket b's samples are at [b * #listed, b * #listed + #count[b]), each
   *   the number of its latency bin. A series probed every second puts 2 or 3 samples into a
   *   bucket of a 1-minute window and 10 or 11 into one of 5 minutes, so its lists stay at 4 and
   *   16 bytes a bucket where a histogram takes 68 (issue 18: 3.5 KB less a series).
   * - binned (#listed = 0): bucket b's histogram is at [b * LATENCY_BINS, (b + 1) * LATENCY_BINS),
   *   8 bits a bin until one would pass 255, then 16 until one would pass 65,535, then 32. Pools
   *   of many series and sub-second probing get here.
   */
  #bins: Uint8Array | Uint16Array | Uint32Array;
  /** Samples a bucket can list before the list grows; 0 once the buckets are binned. */
  #listed = 1;
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
    this.#bins = new Uint8Array(buckets * this.#listed);
  }

  /** Record one outcome at clock time `at` (ms). */
  add(ok: boolean, latencyMs: number, at: number): void {
    const epoch = this.#rotate(at);
    if (epoch < this.#head - this.#buckets + 1) return; // older than the window: nothing to count
    const slot = slotOf(epoch, this.#buckets);
    const bin = binOf(latencyMs);
    this.#put(slot, bin, 1);
    this.#count[slot]!++;
    this.#latencySum[slot]! += latencyMs;
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
    if (other === this) throw new Error('a window cannot absorb itself');
    if (other.#head === -Infinity) return;
    const head = Math.max(this.#head, other.#head);
    this.#rotateTo(head);
    other.#rotateTo(head);
    for (let slot = 0; slot < this.#buckets; slot++) {
      const count = other.#count[slot]!;
      if (count === 0) continue;
      other.#eachBin(slot, (bin, n) => {
        this.#put(slot, bin, n);
        this.#count[slot]! += n;
        this.#totalBins[bin]! += n;
      });
      this.#failures[slot]! += other.#failures[slot]!;
      this.#latencySum[slot]! += other.#latencySum[slot]!;
      this.#totalCount += count;
      this.#totalFailures += other.#failures[slot]!;
      this.#totalLatency += other.#latencySum[slot]!;
    }
  }

  /**
   * Put `n` samples of latency bin `bin` into bucket `slot`, whose #count is not yet raised:
   * appended to its list (grown first when full), or added to its bin (widened first).
   */
  #put(slot: number, bin: number, n: number): void {
    if (this.#listed > 0) {
      const count = this.#count[slot]!;
      if (count + n > this.#listed) this.#list(count + n);
    }
    if (this.#listed > 0) {
      const at = slot * this.#listed + this.#count[slot]!;
      for (let i = 0; i < n; i++) this.#bins[at + i] = bin;
      return;
    }
    const index = slot * LATENCY_BINS + bin;
    if (this.#bins[index]! + n > this.#binMax) this.#widenFor(this.#bins[index]! + n);
    this.#bins[index]! += n;
  }

  /** Call `fn` with each latency bin bucket `slot` holds samples in, and how many (a listed bin may come more than once). */
  #eachBin(slot: number, fn: (bin: number, n: number) => void): void {
    if (this.#listed > 0) {
      const base = slot * this.#listed;
      for (let i = 0; i < this.#count[slot]!; i++) fn(this.#bins[base + i]!, 1);
      return;
    }
    const base = slot * LATENCY_BINS;
    for (let bin = 0; bin < LATENCY_BINS; bin++) {
      const n = this.#bins[base + bin]!;
      if (n !== 0) fn(bin, n);
    }
  }

  /**
   * What the window has allocated: its buckets, how their latencies are laid out (a list of up to
   * `perBucket` samples, or `perBucket` bins of `bitsPerBin`), and the bytes of all its typed
   * arrays. It changes only when a bucket outgrows the layout, a few times in a window's life;
   * recording otherwise only ever writes into these arrays.
   */
  footprint(): { buckets: number; layout: 'listed' | 'binned'; perBucket: number; bitsPerBin: number; bytes: number } {
    const arrays = [this.#count, this.#failures, this.#latencySum, this.#bins, this.#totalBins];
    return {
      buckets: this.#buckets,
      layout: this.#listed > 0 ? 'listed' : 'binned',
      perBucket: this.#bins.length / this.#buckets,
      bitsPerBin: this.#listed > 0 ? 0 : this.#bins.BYTES_PER_ELEMENT * 8,
      bytes: arrays.reduce((sum, array) => sum + array.byteLength, 0),
    };
  }

  /**
   * Lists long enough for `needed` samples a bucket, doubling from the present length; binned
   * instead once that would pass MAX_LISTED, when a histogram is about as small. Every bucket's
   * samples move to the new layout.
   */
  #list(needed: number): void {
    let length = this.#listed;
    while (length < needed) length *= 2;
    if (length > MAX_LISTED) return this.#bin();
    const lists = new Uint8Array(this.#buckets * length);
    for (let slot = 0; slot < this.#buckets; slot++)
      lists.set(this.#bins.subarray(slot * this.#listed, slot * this.#listed + this.#count[slot]!), slot * length);
    this.#bins = lists;
    this.#listed = length;
  }

  /** Turn the lists into histograms of 8-bit bins (a bucket listed at most MAX_LISTED samples, well under 255). */
  #bin(): void {
    const bins = new Uint8Array(this.#buckets * LATENCY_BINS);
    for (let slot = 0; slot < this.#buckets; slot++) this.#eachBin(slot, (bin, n) => (bins[slot * LATENCY_BINS + bin]! += n));
    this.#bins = bins;
    this.#listed = 0;
    this.#binMax = 0xff;
  }

  /** Bins wide enough to hold `count` in one: 16 bits, or 32 (the widest; a no-op once they are). */
  #widenFor(count: number): void {
    if (this.#bins instanceof Uint32Array) return;
    this.#bins = count > 0xffff ? Uint32Array.from(this.#bins) : Uint16Array.from(this.#bins);
    this.#binMax = count > 0xffff ? 0xffffffff : 0xffff;
  }

  /**
   * Count, failures and latency sum as of `at`: the cheap part of the figures (no quantiles).
   * With `since`, only those of the buckets that start after it: the one `since` falls in holds
   * samples from before it too, and a live environment is judged on its time as live alone
   * (rules/facts.ts), at the price of up to a bucket of its first samples. A `since` before the
   * window changes nothing.
   */
  totals(at: number, since?: number): { count: number; failures: number; latencySumMs: number } {
    this.#rotate(at);
    const first = this.#firstEpoch(since);
    if (first === undefined) return { count: this.#totalCount, failures: this.#totalFailures, latencySumMs: this.#totalLatency };
    let count = 0;
    let failures = 0;
    let latencySumMs = 0;
    for (let epoch = first; epoch <= this.#head; epoch++) {
      const slot = slotOf(epoch, this.#buckets);
      count += this.#count[slot]!;
      failures += this.#failures[slot]!;
      latencySumMs += this.#latencySum[slot]!;
    }
    return { count, failures, latencySumMs };
  }

  /** The oldest epoch to count from `since` (the first bucket starting at or after it); undefined when that is the whole window (or no `since`). */
  #firstEpoch(since: number | undefined): number | undefined {
    if (since === undefined) return undefined;
    const first = Math.ceil(since / this.bucketMs);
    return first > this.#head - this.#buckets + 1 ? first : undefined;
  }

  /** The latency histogram of the buckets from epoch `first` on, and its count: a new array. */
  #binsFrom(first: number): { bins: Uint32Array; count: number } {
    const bins = new Uint32Array(LATENCY_BINS);
    let count = 0;
    for (let epoch = first; epoch <= this.#head; epoch++) {
      const slot = slotOf(epoch, this.#buckets);
      if (this.#count[slot] === 0) continue;
      count += this.#count[slot]!;
      this.#eachBin(slot, (bin, n) => (bins[bin]! += n));
    }
    return { bins, count };
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

  /** Latency quantile in ms (interpolated within a histogram bin), undefined while empty; `since` as totals() has it. */
  quantile(q: number, at: number, since?: number): number | undefined {
    this.#rotate(at);
    const first = this.#firstEpoch(since);
    if (first === undefined) return quantileOfBins(this.#totalBins, this.#totalCount, q);
    const { bins, count } = this.#binsFrom(first);
    return quantileOfBins(bins, count, q);
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
      // #eachBin's two walks, written out: this runs for every bucket of every window as time
      // passes, and a callback there would be a closure made per bucket.
      if (this.#listed > 0) {
        // A list needs no clearing: the bucket's count says how much of it is in use.
        const base = slot * this.#listed;
        for (let i = 0; i < this.#count[slot]!; i++) this.#totalBins[this.#bins[base + i]!]!--;
      } else {
        const base = slot * LATENCY_BINS;
        for (let bin = 0; bin < LATENCY_BINS; bin++) {
          const n = this.#bins[base + bin]!;
          if (n !== 0) {
            this.#totalBins[bin]! -= n;
            this.#bins[base + bin] = 0;
          }
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

/**
 * How far V8 lets the old generation grow past what the last full collection left alive, chosen
 * while the agent runs (issue 18).
 *
 * - By a quarter, from the start: the heap of an agent then stays close to what it keeps. A
 *   process's first full collections come as it starts (the config read, the series made), and
 *   the limit each one sets holds until the next, which at 1,000 series is 10-20 s later: the
 *   fourteenth round started at a half and settled later, so a process spent its first 10-20 s
 *   about 6 MB above where it settled.
 * - By half once the heap has grown at two full collections in a row (a start or a reload of
 *   thousands of series): each step of a growing heap is a full collection, and at 10,000 series
 *   a quarter throughout made the first seconds twice as costly. One step up is a start or a
 *   reload that has made what it holds, and stays at a quarter.
 * - Back to a quarter once what is alive holds steady again, or the heap shrinks.
 * - Unless full collections then come less than `minIntervalMs` apart on average: with much
 *   garbage reaching the old generation (10,000 series) a quarter means a full collection every
 *   second. Back at a half, a quarter is tried again when a half spaces them twice the minimum
 *   apart (a quarter of headroom lasts about half as long as a half), twice that after each
 *   further failure, up to 32 times; a heap that changes size starts over only if it shrank.
 * - Collections in a process's first 5 s tell sizes, not intervals (`WARM_UP_MS`).
 *
 * The policy (`HeapGrowth`) is pure: it is told when full collections ran and what was alive
 * after them, and answers the percentage. `watchHeapGrowth` feeds it real collections and applies
 * its answer with `v8.setFlagsFromString`; V8 reads the flag each time a full collection sets the
 * next limit. That limit is set as a collection ends, before we hear of it, so a setting governs
 * the intervals from the first collection after it was made.
 */
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

export const GROWING_PERCENT = 50;
export const STEADY_PERCENT = 25;
/**
 * How long after the watch begins collections tell sizes only (HeapGrowthOptions.judgeFrom). A
 * start's come close together whatever the setting: at 4,000 series nine in its first 2.8 s,
 * then one every 3.5-5 s. Longer costs the pools that do need a half: at 10,000 series a quarter
 * brings a full collection every 0.65 s, and 10 s here kept it into the window the `--scale`
 * bench measures there (from 8 s after the start).
 */
const WARM_UP_MS = 5_000;

export interface HeapGrowthOptions {
  /** Full collections closer than this on average under the steady setting send it back to growing (default 3 s). */
  minIntervalMs?: number;
  /** What alive may move by, as a fraction, and still count as steady (default 0.25). */
  band?: number;
  /** Collections that begin before this (ms, the collections' clock) tell sizes but not intervals (default 0; the watch: WARM_UP_MS after it began). */
  judgeFrom?: number;
}

export class HeapGrowth {
  readonly #minIntervalMs: number;
  readonly #band: number;
  readonly #judgeFrom: number;
  #percent = STEADY_PERCENT;
  /** What was alive when the heap last settled at a size; 0 before the first collection. */
  #settledBytes = 0;
  /** Full collections in a row, up to the last, that found the heap grown past the band. */
  #growths = 0;
  /** Full collections since the percentage last changed. */
  #since = 0;
  /** When the first of them began: the setting governs the intervals from there on. */
  #effectAt = 0;
  /** Times the steady setting proved too costly since the heap last shrank. */
  #fallbacks = 0;

  constructor(options: HeapGrowthOptions = {}) {
    this.#minIntervalMs = options.minIntervalMs ?? 3_000;
    this.#band = options.band ?? 0.25;
    this.#judgeFrom = options.judgeFrom ?? 0;
  }

  get percent(): number {
    return this.#percent;
  }

  /**
   * One or more full collections began at `startTimes` (ms, ascending: one batch of
   * notifications) and `liveBytes` were in use after them. Returns the percentage to apply.
   */
  collected(startTimes: readonly number[], liveBytes: number): number {
    const last = startTimes.at(-1);
    if (last === undefined) return this.#percent;
    // Collections before judgeFrom are not counted: the first after it starts the count.
    const early = startTimes[0]! < this.#judgeFrom;
    if (!early) {
      if (this.#since === 0) this.#effectAt = startTimes[0]!;
      this.#since += startTimes.length;
    }
    // The mean interval between the collections this setting governed (the first one's limit
    // was set before it), or undefined until there are two.
    const meanInterval = this.#since >= 2 ? (last - this.#effectAt) / (this.#since - 1) : undefined;
    const settled = this.#settledBytes;
    const grown = settled > 0 && liveBytes > settled * (1 + this.#band);
    const shrunk = settled > 0 && liveBytes < settled * (1 - this.#band);
    if (settled === 0 || grown || shrunk) {
      // A new size (the first look only tells where the heap is). Intervals are judged from the
      // next collection on: those that made this size come close together (a start's, from
      // reading the config and making the series).
      this.#settledBytes = liveBytes;
      this.#since = 0;
      if (grown) {
        // A second time in a row, the heap is still growing: let it grow freely and settle on
        // the next steady collection, unless the steady setting has proved too costly.
        this.#growths++;
        if (this.#growths >= 2) this.#set(GROWING_PERCENT);
      } else if (shrunk) {
        this.#growths = 0;
        this.#fallbacks = 0;
        this.#set(STEADY_PERCENT);
      }
      return this.#percent;
    }
    this.#growths = 0;
    if (this.#percent === GROWING_PERCENT) {
      // At a half because the heap grew, a quarter needs no evidence. After failures: a quarter
      // of headroom lasts about half as long as a half, so try it again when that would still
      // space collections the minimum apart, and ask twice as much after each further failure.
      const retryMs = 2 * this.#minIntervalMs * 2 ** Math.min(this.#fallbacks - 1, 4);
      if (this.#fallbacks === 0 || (meanInterval !== undefined && meanInterval >= retryMs)) this.#set(STEADY_PERCENT);
    } else if (meanInterval !== undefined && meanInterval < this.#minIntervalMs) {
      this.#fallbacks++;
      this.#set(GROWING_PERCENT);
    }
    return this.#percent;
  }

  #set(percent: number): void {
    if (percent === this.#percent) return;
    this.#percent = percent;
    this.#since = 0;
  }
}

/** A `gc` performance entry: its kind says which collection it was (Node's types leave it out). */
type GcEntry = PerformanceEntry & { detail?: { kind?: number } };

export interface HeapGrowthWatch {
  stop(): void;
}

/**
 * Feed the process's full collections to a `HeapGrowth` and apply what it answers. `apply` is
 * `v8.setFlagsFromString` unless a test watches it instead.
 */
export function watchHeapGrowth(options: HeapGrowthOptions & { apply?: (flag: string) => void } = {}): HeapGrowthWatch {
  const policy = new HeapGrowth({ judgeFrom: performance.now() + WARM_UP_MS, ...options });
  const apply = options.apply ?? setFlagsFromString;
  apply(`--heap-growing-percent=${policy.percent}`);
  const observer = new PerformanceObserver((list) => {
    const startTimes = list
      .getEntries()
      .filter((entry) => (entry as GcEntry).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
      .map((entry) => entry.startTime);
    if (startTimes.length === 0) return;
    const before = policy.percent;
    const percent = policy.collected(startTimes, getHeapStatistics().used_heap_size);
    if (percent !== before) apply(`--heap-growing-percent=${percent}`);
  });
  observer.observe({ entryTypes: ['gc'] });
  return { stop: () => observer.disconnect() };
}

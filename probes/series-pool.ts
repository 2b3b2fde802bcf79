/**
 * What every series of one environment holds, summed as the samples arrive: what a fact that
 * reads every probe (`meanLatency` or `errorRatio` with no `probe`, `tlsDaysLeft`) needs, in
 * constant time instead of a walk over thousands of series on each rule pass.
 *
 * Invariants:
 * - The pool's windows hold exactly the samples of its series' windows: each series forwards
 *   every sample it adds to its own windows (ProbeSeries.record), in the same call, so a rule
 *   pass never sees a sample in one and not in the other. Windows are rings of buckets aligned
 *   on the clock, so the sum of the rings is a ring of the sums; read at the current time, the
 *   pool's totals equal the sum of the series' totals (the latency sums up to float rounding).
 * - A pool is built for one set of series (SeriesPool.of absorbs what they already hold) and
 *   rebuilt when that set changes (a reload adds or drops series); series whose windows differ
 *   (in the middle of a reload that changes `windows`) get no pool, and facts walk the series.
 */
import { formatDuration } from '../config/units.js';
import type { ProbeSeries } from './probe-series.js';
import { SlidingWindow } from './sliding-window.js';
import { DAY_MS } from './tls.js';

export class SeriesPool {
  readonly env: string;
  readonly windows: readonly SlidingWindow[];
  readonly #names: Map<string, number>;
  /** Each series' certificate expiry (the earliest of its chain), for those that have one. */
  readonly #expiresAt = new Map<ProbeSeries, number>();
  /** The earliest of #expiresAt; recomputed lazily after the series that held it moved later. */
  #earliest: number | undefined;
  #earliestStale = false;

  private constructor(env: string, windowsMs: readonly number[], buckets: number) {
    this.env = env;
    this.windows = windowsMs.map((ms) => new SlidingWindow(ms, buckets));
    this.#names = new Map();
    windowsMs.forEach((ms, index) => {
      if (!this.#names.has(formatDuration(ms))) this.#names.set(formatDuration(ms), index);
    });
  }

  /**
   * The pool of `series` (all of one environment), holding what their windows hold now; undefined
   * when their windows differ in length or buckets (they cannot be summed bucket by bucket).
   */
  static of(env: string, series: readonly ProbeSeries[]): SeriesPool | undefined {
    const first = series[0];
    if (!first) return undefined;
    const shape = (s: ProbeSeries) => s.windows.map((w) => `${w.windowMs}/${w.windowMs / w.bucketMs}`).join(',');
    const expected = shape(first);
    if (series.some((s) => shape(s) !== expected)) return undefined;
    const pool = new SeriesPool(
      env,
      first.windows.map((w) => w.windowMs),
      Math.round(first.windows[0] ? first.windows[0].windowMs / first.windows[0].bucketMs : 30),
    );
    for (const s of series) {
      s.windows.forEach((window, index) => pool.windows[index]!.absorb(window));
      if (s.tls) pool.noteTls(s, s.tls.expiresAt);
    }
    return pool;
  }

  /** The window named so (`5m`), or the longest when unnamed or unknown: as facts pick a series' window. */
  window(name: string | undefined): SlidingWindow | undefined {
    const index = name === undefined ? undefined : this.#names.get(name);
    return this.windows[index ?? this.windows.length - 1];
  }

  /** One sample of one of its series (ProbeSeries.record forwards what it adds to its windows). */
  add(ok: boolean, latencyMs: number, at: number): void {
    for (const window of this.windows) window.add(ok, latencyMs, at);
  }

  /** A series' certificate facts changed. */
  noteTls(series: ProbeSeries, expiresAt: number): void {
    const previous = this.#expiresAt.get(series);
    this.#expiresAt.set(series, expiresAt);
    if (this.#earliestStale) return;
    if (this.#earliest === undefined || expiresAt <= this.#earliest) this.#earliest = expiresAt;
    else if (previous === this.#earliest) this.#earliestStale = true;
  }

  /** Days until the earliest certificate among the series expires (the fewest); undefined when none has TLS facts. */
  tlsDaysLeft(now: number): number | undefined {
    if (this.#earliestStale) {
      this.#earliest = undefined;
      for (const at of this.#expiresAt.values()) if (this.#earliest === undefined || at < this.#earliest) this.#earliest = at;
      this.#earliestStale = false;
    }
    return this.#earliest === undefined ? undefined : (this.#earliest - now) / DAY_MS;
  }
}

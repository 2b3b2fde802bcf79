/**
 * Folds every scheduled probe result into its minute's rollup, in memory, and writes the minutes
 * that are over to the rollup store in one transaction per flush (every minute, at a report's
 * request and at stop), which also adds them to their hours: a thousand series make one write a
 * minute, never one per probe.
 *
 * The probe path pays one lookup and a bin increment per result: each series' accumulator of its
 * latest minute is found by the caller's object for the series (a WeakMap, no key text), and only
 * a new minute allocates, once per series. (Nested maps of minute, probe and environment took
 * three lookups a result: 1.7 % of the main thread at 10,000 series in the lookups alone, issue
 * 18.) A result counts in the minute it ended in (by the agent's clock), so a slow probe never
 * lands in a minute already written.
 * While the store refuses writes the minutes wait in memory, at most MAX_PENDING_MINUTES of them;
 * older ones are dropped with a log line (their figures are lost, the agent goes on).
 */
import type { Logger } from 'pino';
import { binOf, LATENCY_BINS } from '../../probes/sliding-window.js';
import { encodeBins } from './latency-sketch.js';
import { MINUTE_MS, type MinuteRollup, type RollupStore } from './rollup-store.js';

/** Minutes kept in memory while the store fails; a longer outage loses the oldest. */
const MAX_PENDING_MINUTES = 10;

/** A series as the writer knows it: pass the same object for every result of one series. */
export interface RollupSeries {
  readonly probe: string;
  readonly env: string;
}

interface Accumulator {
  readonly minute: number;
  readonly probe: string;
  readonly env: string;
  count: number;
  failures: number;
  latencyMs: number;
  readonly bins: Uint32Array;
  /** Handed to the store (or dropped): results of its minute that come after go to a new one. */
  closed: boolean;
}

export interface RollupWriterOptions {
  store: Pick<RollupStore, 'path' | 'writeMinutes'>;
  now: () => number;
  logger: Logger;
  /** How often completed minutes are written (default a minute). */
  flushEveryMs?: number;
}

export class RollupWriter {
  readonly #store: Pick<RollupStore, 'path' | 'writeMinutes'>;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #flushEveryMs: number;
  /**
   * Per minute, its series' accumulators. Two of one series in one minute add up in the store: a
   * minute flushed early goes on in a new one, and a reload may rebuild a series' object.
   */
  readonly #pending = new Map<number, Accumulator[]>();
  /** Each series' accumulator of the latest minute it recorded in. */
  readonly #latest = new WeakMap<RollupSeries, Accumulator>();
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  constructor(options: RollupWriterOptions) {
    this.#store = options.store;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#flushEveryMs = options.flushEveryMs ?? MINUTE_MS;
  }

  start(): void {
    this.flush();
    this.#timer = setInterval(() => this.flush(), this.#flushEveryMs);
    this.#timer.unref();
  }

  /** One probe result of `series`, at `at` (default now). */
  record(series: RollupSeries, ok: boolean, latencyMs: number, at = this.#now()): void {
    const minute = Math.floor(at / MINUTE_MS);
    let acc = this.#latest.get(series);
    if (acc === undefined || acc.minute !== minute || acc.closed) {
      acc = { minute, probe: series.probe, env: series.env, count: 0, failures: 0, latencyMs: 0, bins: new Uint32Array(LATENCY_BINS), closed: false };
      this.#latest.set(series, acc);
      let accumulators = this.#pending.get(minute);
      if (!accumulators) {
        accumulators = [];
        this.#pending.set(minute, accumulators);
      }
      accumulators.push(acc);
    }
    acc.count++;
    if (!ok) acc.failures++;
    acc.latencyMs += latencyMs;
    acc.bins[binOf(latencyMs)]!++;
  }

  /** Minutes held in memory, not yet written. */
  get pendingMinutes(): number {
    return this.#pending.size;
  }

  /**
   * Write the minutes that are over (with `all`, the one in progress too: a report wants every
   * probe so far, and the rest of that minute adds to its rows later). A failure is logged and
   * retried at the next flush; nothing throws.
   */
  flush(options: { all?: boolean } = {}): void {
    const current = Math.floor(this.#now() / MINUTE_MS);
    const due = [...this.#pending.keys()].filter((minute) => options.all === true || minute < current).sort((a, b) => a - b);
    if (due.length === 0) return;
    const rows: MinuteRollup[] = [];
    for (const minute of due) {
      for (const acc of this.#pending.get(minute)!)
        rows.push({ minute, probe: acc.probe, env: acc.env, count: acc.count, failures: acc.failures, latencyMs: acc.latencyMs, bins: encodeBins(acc.bins) });
    }
    try {
      this.#store.writeMinutes(rows);
      for (const minute of due) this.#close(minute);
      if (this.#failing) this.#logger.info({ path: this.#store.path }, 'rollups: the rollup database takes writes again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing)
        this.#logger.error(
          { err: error, path: this.#store.path },
          `rollups: cannot write to ${this.#store.path}: ${(error as Error).message}; holding up to ${MAX_PENDING_MINUTES} minutes in memory and retrying every flush`,
        );
      this.#failing = true;
      const minutes = [...this.#pending.keys()].sort((a, b) => a - b);
      for (const minute of minutes.slice(0, Math.max(0, minutes.length - MAX_PENDING_MINUTES))) {
        this.#close(minute);
        this.#logger.warn({ minute: new Date(minute * MINUTE_MS).toISOString() }, 'rollups: dropped a minute of figures that could not be written');
      }
    }
  }

  /** Forget a minute written or dropped; its accumulators take no more results. */
  #close(minute: number): void {
    for (const acc of this.#pending.get(minute) ?? []) acc.closed = true;
    this.#pending.delete(minute);
  }

  /** Write everything held, the minute in progress included, and stop the timer. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush({ all: true });
  }
}

/**
 * Folds every scheduled probe result into its minute's rollup, in memory, and writes the minutes
 * that are over to the rollup store in one transaction per flush (every minute, at a report's
 * request and at stop), which also adds them to their hours: a thousand series make one write a
 * minute, never one per probe.
 *
 * The probe path pays a few map lookups and a bin increment per result; nothing is allocated per
 * probe but the minute's accumulator of each series, once a minute. A result counts in the minute
 * it ended in (by the agent's clock), so a slow probe never lands in a minute already written.
 * While the store refuses writes the minutes wait in memory, at most MAX_PENDING_MINUTES of them;
 * older ones are dropped with a log line (their figures are lost, the agent goes on).
 */
import type { Logger } from 'pino';
import { binOf, LATENCY_BINS } from '../../probes/sliding-window.js';
import { encodeBins } from './latency-sketch.js';
import { MINUTE_MS, type MinuteRollup, type RollupStore } from './rollup-store.js';

/** Minutes kept in memory while the store fails; a longer outage loses the oldest. */
const MAX_PENDING_MINUTES = 10;

interface Accumulator {
  probe: string;
  env: string;
  count: number;
  failures: number;
  latencyMs: number;
  bins: Uint32Array;
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
  /** Per minute, per probe, per environment (nested maps: no key string built per result). */
  readonly #pending = new Map<number, Map<string, Map<string, Accumulator>>>();
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

  /** One probe result, at `at` (default now). */
  record(probe: string, env: string, ok: boolean, latencyMs: number, at = this.#now()): void {
    const minute = Math.floor(at / MINUTE_MS);
    let bucket = this.#pending.get(minute);
    if (!bucket) {
      bucket = new Map();
      this.#pending.set(minute, bucket);
    }
    let ofProbe = bucket.get(probe);
    if (!ofProbe) {
      ofProbe = new Map();
      bucket.set(probe, ofProbe);
    }
    let acc = ofProbe.get(env);
    if (!acc) {
      acc = { probe, env, count: 0, failures: 0, latencyMs: 0, bins: new Uint32Array(LATENCY_BINS) };
      ofProbe.set(env, acc);
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
      for (const ofProbe of this.#pending.get(minute)!.values())
        for (const acc of ofProbe.values()) {
          rows.push({ minute, probe: acc.probe, env: acc.env, count: acc.count, failures: acc.failures, latencyMs: acc.latencyMs, bins: encodeBins(acc.bins) });
        }
    }
    try {
      this.#store.writeMinutes(rows);
      for (const minute of due) this.#pending.delete(minute);
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
        this.#pending.delete(minute);
        this.#logger.warn({ minute: new Date(minute * MINUTE_MS).toISOString() }, 'rollups: dropped a minute of figures that could not be written');
      }
    }
  }

  /** Write everything held, the minute in progress included, and stop the timer. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush({ all: true });
  }
}

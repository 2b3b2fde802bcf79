/**
 * Keeps the rollups inside `rollups.retention`, as JournalRetention keeps the journal: at start
 * and then every `every`, the rollup store deletes minutes past `minuteAge`, hours past `maxAge`
 * and the oldest rows beyond `maxSize` (RollupStore.prune), in slices of at most SLICE_ROWS rows,
 * one per turn of the event loop, so probes and the API never wait behind a large backlog.
 */
import type { Logger } from 'pino';
import type { RollupStore } from './rollup-store.js';

const SLICE_ROWS = 20_000;

export interface RollupRetentionOptions {
  store: RollupStore;
  maxAge: number;
  maxSize: number;
  minuteAge: number;
  every: number;
  now: () => number;
  logger: Logger;
}

export class RollupRetention {
  readonly #options: RollupRetentionOptions;
  #timer: NodeJS.Timeout | undefined;
  #slice: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(options: RollupRetentionOptions) {
    this.#options = options;
  }

  start(): void {
    this.#closed = false;
    this.run();
    this.#timer = setInterval(() => this.run(), this.#options.every);
    this.#timer.unref();
  }

  /** Enforce the bounds now; what one slice cannot finish goes on in the next turns of the event loop. */
  run(): void {
    if (this.#slice !== undefined || this.#closed) return;
    const totals = { minutes: 0, hours: 0, bySize: 0 };
    const step = () => {
      this.#slice = undefined;
      if (this.#closed) return;
      const { store, maxAge, maxSize, minuteAge, now, logger } = this.#options;
      try {
        const result = store.prune({ now: now(), maxAgeMs: maxAge, minuteAgeMs: minuteAge, maxBytes: maxSize, maxRows: SLICE_ROWS });
        totals.minutes += result.minutes;
        totals.hours += result.hours;
        totals.bySize += result.bySize;
        if (result.more) {
          this.#slice = setImmediate(step);
          return;
        }
        if (totals.minutes + totals.hours + totals.bySize > 0) {
          logger.info(
            { ...totals, bytes: result.bytes },
            `rollup retention: deleted ${totals.minutes} minute rows past minuteAge, ${totals.hours} hour rows past maxAge and ${totals.bySize} rows for the size bound`,
          );
        }
        if (totals.bySize > 0)
          logger.warn(
            { bytes: result.bytes, maxSize },
            'rollup retention: the rollups reached rollups.retention.maxSize, so the oldest were deleted before maxAge; reports now cover less history (raise maxSize to keep it)',
          );
      } catch (error) {
        logger.error({ err: error }, `rollup retention failed: ${(error as Error).message}; retrying at the next round`);
      }
    };
    step();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#slice !== undefined) clearImmediate(this.#slice);
    this.#slice = undefined;
  }
}

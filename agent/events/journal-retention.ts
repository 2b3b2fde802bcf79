/**
 * Keeps the event journal inside `journal.retention`: at start and then every `every`, the store
 * deletes the oldest events past `maxAge` or beyond `maxSize` (Store.prune). A large backlog (a
 * first start with retention, or a lowered bound) is worked off in slices, one per turn of the
 * event loop, so probes and the API never wait behind it.
 */
import type { Logger } from 'pino';
import type { Store } from './store.js';

/** Rows deleted per slice: a few milliseconds of work. */
const SLICE_ROWS = 20_000;

export interface RetentionOptions {
  store: Store;
  maxAge: number;
  maxSize: number;
  every: number;
  now: () => number;
  logger: Logger;
}

export class JournalRetention {
  readonly #options: RetentionOptions;
  #timer: NodeJS.Timeout | undefined;
  #slice: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(options: RetentionOptions) {
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
    const totals = { byAge: 0, bySize: 0 };
    const step = () => {
      this.#slice = undefined;
      if (this.#closed) return;
      const { store, maxAge, maxSize, now, logger } = this.#options;
      try {
        const result = store.prune({ maxAgeMs: maxAge, maxBytes: maxSize, now: now(), maxRows: SLICE_ROWS });
        totals.byAge += result.byAge;
        totals.bySize += result.bySize;
        if (result.more) {
          this.#slice = setImmediate(step);
          return;
        }
        if (totals.byAge + totals.bySize > 0) {
          logger.info(
            { ...totals, bytes: result.bytes, firstId: result.firstId ?? null },
            `journal retention: deleted ${totals.byAge} events older than the maximum age and ${totals.bySize} for the size bound`,
          );
        }
      } catch (error) {
        // A failing disk must not stop greenlight: the next round tries again.
        logger.error({ err: error }, `journal retention failed: ${(error as Error).message}; retrying at the next round`);
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

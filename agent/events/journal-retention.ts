/**
 * Keeps the event journal inside `journal.retention`: at start and then every `every`, the store
 * deletes the oldest events past `maxAge` or beyond `maxSize` (Store.prune). A large backlog (a
 * first start with retention, or a lowered bound) is worked off in slices, one per turn of the
 * event loop, so probes and the API never wait behind it.
 */
import type { Logger } from 'pino';
import { SlicedSweep, type SweepRound } from './sliced-sweep.js';
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

/** start() enforces the bounds now and every `every`; run() a round now; close() stops (SlicedSweep). */
export class JournalRetention extends SlicedSweep {
  constructor(options: RetentionOptions) {
    super(options.every, () => round(options));
  }
}

function round(options: RetentionOptions): SweepRound {
  const { store, maxAge, maxSize, now, logger } = options;
  const totals = { byAge: 0, bySize: 0 };
  let last: { bytes: number; firstId?: number | undefined } = { bytes: 0 };
  return {
    slice() {
      const result = store.prune({ maxAgeMs: maxAge, maxBytes: maxSize, now: now(), maxRows: SLICE_ROWS });
      totals.byAge += result.byAge;
      totals.bySize += result.bySize;
      last = result;
      return result.more;
    },
    finish() {
      if (totals.byAge + totals.bySize > 0) {
        logger.info(
          { ...totals, bytes: last.bytes, firstId: last.firstId ?? null },
          `journal retention: deleted ${totals.byAge} events older than the maximum age and ${totals.bySize} for the size bound`,
        );
      }
    },
    failed(error) {
      logger.error({ err: error }, `journal retention failed: ${(error as Error).message}; retrying at the next round`);
    },
  };
}

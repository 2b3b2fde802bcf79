/**
 * Keeps the rollups inside `rollups.retention`, as JournalRetention keeps the journal: at start
 * and then every `every`, the rollup store deletes minutes past `minuteAge`, hours past `maxAge`
 * and the oldest rows beyond `maxSize` (RollupStore.prune), in slices of at most SLICE_ROWS rows,
 * one per turn of the event loop, so probes and the API never wait behind a large backlog.
 */
import type { Logger } from 'pino';
import { SlicedSweep, type SweepRound } from '../events/sliced-sweep.js';
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

/** start() enforces the bounds now and every `every`; run() a round now; close() stops (SlicedSweep). */
export class RollupRetention extends SlicedSweep {
  constructor(options: RollupRetentionOptions) {
    super(options.every, () => round(options));
  }
}

function round(options: RollupRetentionOptions): SweepRound {
  const { store, maxAge, maxSize, minuteAge, now, logger } = options;
  const totals = { minutes: 0, hours: 0, bySize: 0 };
  let bytes = 0;
  return {
    slice() {
      const result = store.prune({ now: now(), maxAgeMs: maxAge, minuteAgeMs: minuteAge, maxBytes: maxSize, maxRows: SLICE_ROWS });
      totals.minutes += result.minutes;
      totals.hours += result.hours;
      totals.bySize += result.bySize;
      bytes = result.bytes;
      return result.more;
    },
    finish() {
      if (totals.minutes + totals.hours + totals.bySize > 0) {
        logger.info(
          { ...totals, bytes },
          `rollup retention: deleted ${totals.minutes} minute rows past minuteAge, ${totals.hours} hour rows past maxAge and ${totals.bySize} rows for the size bound`,
        );
      }
      if (totals.bySize > 0)
        logger.warn(
          { bytes, maxSize },
          'rollup retention: the rollups reached rollups.retention.maxSize, so the oldest were deleted before maxAge; reports now cover less history (raise maxSize to keep it)',
        );
    },
    failed(error) {
      logger.error({ err: error }, `rollup retention failed: ${(error as Error).message}; retrying at the next round`);
    },
  };
}

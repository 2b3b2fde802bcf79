/**
 * The durable side of the agent, opened at start and closed last: the store (SQLite in the data
 * directory), the journal that writes events and state through to it, and the retention that keeps
 * it within its bounds. Event ids go on from the store's last one: they only ever increase, across
 * restarts too.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { EventBus } from './events.js';
import { Journal, type JournalReplica } from './journal.js';
import { JournalRetention } from './journal-retention.js';
import { DataDirLock } from './data-dir-lock.js';
import { isCorrupt, unusableDatabase } from './make-directory.js';
import { Store, StoreError } from './store.js';

/** A cluster agent's local copy of the shared history, read by the stream and GET /api/v1/events. */
export const MIRROR_FILE = 'cluster-mirror.db';

export class Persistence {
  readonly store: Store;
  readonly journal: Journal;
  readonly #retention: JournalRetention;
  readonly #lock: DataDirLock;

  private constructor(lock: DataDirLock, store: Store, journal: Journal, retention: JournalRetention) {
    this.#lock = lock;
    this.store = store;
    this.journal = journal;
    this.#retention = retention;
  }

  /**
   * Take the data directory (one agent each), open the store under `config.dataDir` (throws
   * StoreError saying what to fix: another agent there, not writable) and start writing
   * `bus` to it. With a `replica` (a cluster agent) the store is a fresh local mirror of the shared
   * history, `cluster-mirror.db`, and events and state are written through the replica.
   */
  static open(options: { config: Config; bus: EventBus; logger: Logger; now: () => number; replica?: JournalReplica | undefined }): Persistence {
    const { config, bus, now, replica } = options;
    const logger = options.logger.child({ component: 'journal' });
    // Before anything is opened or written: a second agent on this directory stops here.
    const lock = DataDirLock.acquire(config.dataDir);
    let store: Store | undefined;
    try {
      store = replica ? Store.open(config.dataDir, now, MIRROR_FILE, true) : Store.open(config.dataDir, now);
      bus.resumeFrom(store.lastEventId());
    } catch (error) {
      store?.close();
      lock.release();
      throw isCorrupt(error) && store ? new StoreError(unusableDatabase('state database', store.path, error), { cause: error }) : error;
    }
    const journal = new Journal({ store, bus, logger, now, replica });
    const retention = new JournalRetention({ store, ...config.journal.retention, now, logger });
    retention.start();
    return new Persistence(lock, store, journal, retention);
  }

  /** Write a piece of state through to the store; while it fails the journal keeps it and retries. */
  save(key: string, value: unknown): void {
    this.journal.save(key, value);
  }

  /** Write what is pending, then close; the last step of a clean stop. */
  close(): void {
    this.#retention.close();
    this.journal.close();
    this.store.close();
    this.#lock.release();
  }
}

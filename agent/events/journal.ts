/**
 * The write path to the store: every event, and the state a restart must find (live
 * environment, flags, incidents), goes through here.
 *
 * - Events published in one tick (in a busy stretch: within a few milliseconds) are written
 *   together, in one transaction; only once that is on disk are they handed to the journal's
 *   listeners (the WebSocket stream). So an event a client was sent is in the history, even if
 *   the process is killed or the power cut right after. The commit itself does not wait for the
 *   disk: the WAL's fsync runs in the thread pool (Store.syncEvents), and the loop goes on
 *   sending earlier events meanwhile. One sync runs at a time and covers every commit before it,
 *   so a busy stretch shares its fsyncs. A reader of the history (a replay, GET /api/v1/events)
 *   or a stop syncs at once instead, and sees exactly what the listeners were handed.
 * - When a write fails (disk full, directory gone read-only), nothing is dropped: the events
 *   and state wait in memory, are retried every few seconds, and are still delivered live and
 *   answered from history. The failure is raised once as a critical `journal.failed` event, and
 *   `journal.recovered` says when the backlog is on disk again. greenlight goes on probing and
 *   acting meanwhile.
 */
import type { Logger } from 'pino';
import { eventJson, type EventBus, type EventJson, type EventListener, type GreenlightEvent } from './events.js';
import type { FlagAuditEntry, FlagState } from '../flags/flag-store.js';
import { IDS_RESERVED_THROUGH, type ActionRecord, type Store } from './store.js';

/**
 * How commits are spaced in a busy stretch. Each commit blocks the loop for its writes (and for its
 * fsync where that cannot go to the thread pool: no WAL, or after a failed sync), so the events
 * of a stretch share commits: after one, the next waits until commits have taken at most
 * COMMIT_SHARE of the time (the spacing is their measured cost x (1 / share - 1)), and never more
 * than MAX_COMMIT_SPACING_MS. An event after a quiet spell is committed at the end of its tick.
 *
 * A fixed 5 ms spacing made every streamed event of a stretch wait up to 5 ms more than the disk
 * needs (issue 18); commits costing 0.3 ms give about 1.2 ms now, and a slow disk (over 1.25 ms a
 * commit) still gets 5 ms. The bound on the loop's share rises from about a twentieth to a fifth;
 * in the fan-out bench (500 events a second) commits took 2.7 s of the run against 2.5 s with the
 * fixed spacing, smaller batches costing less each. In a cluster the writes go to PostgreSQL in
 * the background, their cost is not the loop's, and the spacing stays at the maximum so that
 * batches stay large.
 */
const MAX_COMMIT_SPACING_MS = 5;
const COMMIT_SHARE = 0.2;
/** Weight of the newest commit in the running cost (an exponential moving average). */
const COMMIT_COST_WEIGHT = 0.2;
/**
 * How long committed events wait for the thread pool's fsync before the loop syncs them itself.
 * The pool has four threads, shared with DNS lookups and file operations: a resolver that hangs
 * can hold them all for seconds, and the stream must not wait for it. An event then waits at most
 * about twice this, plus the fsync.
 */
const SYNC_FALLBACK_MS = 50;
/** At most one log line a minute says that the fallback ran. */
const SYNC_FALLBACK_LOG_MS = 60_000;
/** How often a failed write is retried. */
const RETRY_MS = 5_000;
/** Events held in memory while the store cannot take them; the oldest go beyond this (and say so). */
const MAX_BACKLOG = 100_000;
/**
 * Event ids are reserved this far ahead of the last one written. Ids handed out while the store
 * refuses writes (streamed, answered by the history) are never on disk; a restart then went on from
 * the last written id and numbered new events with ids clients had already seen, so one resuming
 * with `since` skipped them. The next start goes on past the reservation, which a clean stop lowers
 * to the last id again: ids stay contiguous across a clean restart, and jump after a crash.
 */
const ID_RESERVE = 2 * MAX_BACKLOG;

/**
 * Where a cluster agent's writes go instead of the local store (agent/cluster/cluster.ts): events
 * are numbered by the shared history and come back through `ingest`, state goes to PostgreSQL.
 */
export interface JournalReplica {
  appendEvents(events: readonly GreenlightEvent[]): void;
  save(key: string, value: unknown): void;
  saveFlags(state: FlagState, audit: readonly FlagAuditEntry[], keep: number): void;
  recordAction(record: ActionRecord): void;
}

export interface EventQuery {
  since: number;
  limit: number;
  type?: string | undefined;
}

export class Journal {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #listeners = new Set<EventListener>();
  /** Published, not yet handed to listeners: written at the end of the tick. */
  #pending: GreenlightEvent[] = [];
  /** Handed to listeners but not on disk: the store is failing. Oldest first. */
  #backlog: GreenlightEvent[] = [];
  /** Committed, waiting for the WAL's fsync before they go to the listeners. Oldest first. */
  #unsynced: GreenlightEvent[] = [];
  /** An fsync is running in the thread pool. */
  #syncing = false;
  /** Whether commits leave their fsync to the thread pool: off after a sync failed, so that each commit meets the disk's failure itself. */
  #syncLater = true;
  /** Checks, while events wait for a sync, that the oldest has not waited SYNC_FALLBACK_MS. */
  #syncFallback: NodeJS.Timeout | undefined;
  readonly #syncFallbackMs: number;
  #fallbackLoggedAt = Number.NEGATIVE_INFINITY;
  /** Writes the store refused, the newest per key, replayed in order on recovery. */
  readonly #unsaved = new Map<string, () => void>();
  #flush: { cancel(): void } | undefined;
  /** When the last commit ended (`clock`), and what commits cost lately, ms. */
  #lastCommit = Number.NEGATIVE_INFINITY;
  #commitCostMs: number | undefined;
  readonly #clock: () => number;
  /** Numbers flag saves, so that each one's audit entries are kept while the store fails. */
  #flagSaves = 0;
  #retry: NodeJS.Timeout | undefined;
  #failure: { since: number; error: string } | undefined;
  #dropped = 0;
  readonly #unsubscribe: () => void;
  readonly #replica: JournalReplica | undefined;
  #lastDelivered = 0;
  /** How far event ids are reserved on disk (undefined until the first commit), and the last id written. */
  #reservedThrough: number | undefined;
  #lastWrittenId = 0;

  /**
   * `now` stamps held state and failures (epoch ms); `clock` times the commits and their spacing
   * (monotonic ms, performance.now by default); `syncFallbackMs` is SYNC_FALLBACK_MS by default.
   */
  constructor(options: {
    store: Store;
    bus: EventBus;
    logger: Logger;
    now: () => number;
    clock?: (() => number) | undefined;
    replica?: JournalReplica | undefined;
    syncFallbackMs?: number | undefined;
  }) {
    this.#syncFallbackMs = options.syncFallbackMs ?? SYNC_FALLBACK_MS;
    this.#store = options.store;
    this.#clock = options.clock ?? (() => performance.now());
    this.#replica = options.replica;
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#unsubscribe = this.#bus.subscribe((event) => {
      this.#pending.push(event);
      this.#flush ??= this.#scheduleFlush();
    });
  }

  /** Whether the store is refusing writes right now. */
  get failing(): boolean {
    return this.#failure !== undefined;
  }

  /** Listen to events once they are journaled (or, while the store fails, once they are held). */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Save a piece of state; while the store fails it is kept and written on recovery. */
  save(key: string, value: unknown): void {
    if (this.#replica) return this.#replica.save(key, value);
    const now = this.#now();
    this.#write(`state:${key}`, `saving ${key}`, () => this.#store.set(key, value, now));
  }

  /**
   * Save the flag values and append the audit entries that came with them (one transaction),
   * keeping the newest `keep`. While the store fails, every save is held, in order.
   */
  saveFlags(state: FlagState, audit: readonly FlagAuditEntry[], keep: number): void {
    if (this.#replica) return this.#replica.saveFlags(state, audit, keep);
    this.#write(`flags:${++this.#flagSaves}`, 'saving the flags', () => this.#store.saveFlags(state, audit, keep));
  }

  /**
   * Another piece of state, written by `write` (the alert lifecycle's records): at once, or, while
   * the store fails, kept (the newest per `key`) and written on recovery.
   */
  saveWith(key: string, doing: string, write: (store: Store) => void): void {
    this.#write(`other:${key}`, doing, () => write(this.#store));
  }

  /** Record an action's start (before it acts) or its outcome in the action journal. */
  recordAction(record: ActionRecord): void {
    if (this.#replica) return this.#replica.recordAction(record);
    this.#write(`action:${record.incident}\u0000${record.action}`, `recording action ${record.action}`, () => this.#store.recordAction(record));
  }

  #write(key: string, doing: string, write: () => void): void {
    this.#unsaved.delete(key);
    if (this.#failure) {
      this.#unsaved.set(key, write);
      return;
    }
    try {
      write();
    } catch (error) {
      this.#unsaved.set(key, write);
      this.#failed(error, doing);
    }
  }

  /** Journaled events after `since`, oldest first, including those still waiting for the disk. */
  events(query: EventQuery): GreenlightEvent[] {
    return this.#read(
      query,
      () => this.#store.events(query),
      (event) => event,
    );
  }

  /** As `events`, as their JSON (for readers that send them on: the stream's replays, GET /api/v1/events); no type filter. */
  eventsJson(query: { since: number; limit: number }): EventJson[] {
    return this.#read(query, () => this.#store.eventsJson(query), eventJson);
  }

  #read<T extends { id: number }>(query: EventQuery, stored: () => T[], fromBacklog: (event: GreenlightEvent) => T): T[] {
    this.flush();
    let found: T[] = [];
    try {
      found = stored();
    } catch (error) {
      this.#logger.error({ err: error }, `could not read the journal: ${(error as Error).message}`);
    }
    if (found.length >= query.limit || this.#backlog.length === 0) return found;
    const after = found.at(-1)?.id ?? query.since;
    const held = this.#backlog.filter(
      (event) => event.id > after && (query.type === undefined || event.type === query.type || event.type.startsWith(`${query.type}.`)),
    );
    return [...found, ...held.slice(0, query.limit - found.length).map(fromBacklog)];
  }

  /** The id after which the newest `count` events lie, those waiting for the disk included (0: there are no more). */
  idBeforeNewest(count: number): number {
    this.flush();
    const held = this.#backlog;
    if (held.length > count) return held[held.length - count - 1]!.id;
    try {
      return this.#store.idBeforeNewest(count - held.length);
    } catch (error) {
      this.#logger.error({ err: error }, `could not read the journal: ${(error as Error).message}`);
      return Math.max(0, this.lastId - count);
    }
  }

  /** Write what was published so far and hand it to the listeners, all before returning (a reader, a stop). */
  flush(): void {
    this.#commit();
    this.#syncNow();
  }

  /** Write what was published so far; the listeners get it once it is on disk. */
  #commit(): void {
    this.#flush?.cancel();
    this.#flush = undefined;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const started = this.#clock();
    this.#lastCommit = started;
    // In a cluster the shared history numbers them; they reach the mirror and listeners through ingest().
    if (this.#replica) return this.#replica.appendEvents(batch);
    if (this.#failure) this.#hold(batch);
    else {
      try {
        this.#append(batch, this.#syncLater);
        this.#lastCommit = this.#clock();
        const cost = this.#lastCommit - started;
        this.#commitCostMs = this.#commitCostMs === undefined ? cost : this.#commitCostMs + COMMIT_COST_WEIGHT * (cost - this.#commitCostMs);
        if (this.#syncLater) {
          for (const event of batch) this.#unsynced.push(event);
          this.#armSyncFallback();
          return this.#startSync();
        }
      } catch (error) {
        this.#hold(batch);
        this.#failed(error, `journaling ${batch.length} events`);
      }
    }
    // Synced with this commit (or, the disk failing, as far as it goes): earlier events first.
    this.#deliverThrough(Number.POSITIVE_INFINITY);
    this.#deliver(batch);
  }

  /** Flush the WAL in the thread pool, then hand the events it covers to the listeners. */
  #startSync(): void {
    if (this.#syncing || this.#unsynced.length === 0) return;
    this.#syncing = true;
    // Only what was committed before the fsync started is covered by it.
    const through = this.#unsynced.at(-1)!.id;
    let sync: Promise<void>;
    try {
      sync = this.#store.syncEvents();
    } catch (error) {
      sync = Promise.reject(error as Error);
    }
    sync
      .catch((error: unknown) => this.#syncFailed(error))
      .finally(() => {
        this.#syncing = false;
        this.#deliverThrough(through);
        this.#startSync();
      });
  }

  /** Sync on the loop if the event now oldest is still waiting a fallback period from now. */
  #armSyncFallback(): void {
    if (this.#syncFallback || this.#unsynced.length === 0) return;
    const oldest = this.#unsynced[0]!.id;
    this.#syncFallback = setTimeout(() => {
      this.#syncFallback = undefined;
      if (this.#unsynced.length > 0 && this.#unsynced[0]!.id <= oldest) {
        const now = this.#now();
        if (now - this.#fallbackLoggedAt >= SYNC_FALLBACK_LOG_MS) {
          this.#fallbackLoggedAt = now;
          this.#logger.warn(
            { waiting: this.#unsynced.length },
            `the thread pool did not flush the event journal within ${this.#syncFallbackMs} ms (its threads busy with DNS lookups or file operations, or a slow disk): syncing on the event loop instead, so the stream does not wait (said at most once a minute)`,
          );
        }
        this.#syncNow();
      }
      this.#armSyncFallback();
    }, this.#syncFallbackMs);
    this.#syncFallback.unref();
  }

  /** Flush the WAL on this thread and hand every committed event to the listeners. */
  #syncNow(): void {
    if (this.#unsynced.length === 0) return;
    try {
      this.#store.syncEventsNow();
    } catch (error) {
      this.#syncFailed(error);
    }
    this.#deliverThrough(Number.POSITIVE_INFINITY);
  }

  /**
   * The events stay committed (they survive a crash of greenlight) and are handed on; from now on
   * each commit waits for its own fsync, so a failing disk stops the next one and journal.failed
   * says so.
   */
  #syncFailed(error: unknown): void {
    if (!this.#syncLater) return;
    this.#syncLater = false;
    const message = (error as Error).message ?? String(error);
    this.#logger.error(
      { err: error, path: this.#store.path },
      `could not flush the event journal's WAL (${this.#store.path}-wal) to disk: ${message}. The events are committed and sent, but a power cut could lose the newest; from now on each commit waits for the disk itself`,
    );
  }

  /** Hand the synced events, up to id `through`, to the listeners. */
  #deliverThrough(through: number): void {
    let count = 0;
    while (count < this.#unsynced.length && this.#unsynced[count]!.id <= through) count++;
    if (count === 0) return;
    const synced = count === this.#unsynced.length ? this.#unsynced : this.#unsynced.slice(0, count);
    this.#unsynced = count === this.#unsynced.length ? [] : this.#unsynced.slice(count);
    this.#deliver(synced);
  }

  /** How long after the last commit the next may start (see MAX_COMMIT_SPACING_MS). */
  get commitSpacingMs(): number {
    if (this.#replica || this.#commitCostMs === undefined) return MAX_COMMIT_SPACING_MS;
    return Math.min(MAX_COMMIT_SPACING_MS, (this.#commitCostMs * (1 - COMMIT_SHARE)) / COMMIT_SHARE);
  }

  /**
   * Events of the cluster's history (numbered by it, in id order), into the local mirror and then
   * to the listeners: the stream and GET /api/v1/events read the mirror. The mirror waits for no
   * fsync: PostgreSQL holds the durable copy, and the mirror starts empty and is filled from it at
   * each start, so a commit that a power cut takes back loses nothing.
   */
  ingest(events: readonly GreenlightEvent[]): void {
    try {
      this.#store.appendEvents(events, { syncLater: true });
    } catch (error) {
      this.#logger.error({ err: error }, `could not write ${events.length} events of the cluster's history to the local mirror: ${(error as Error).message}`);
    }
    this.#deliver(events);
  }

  /** The id of the newest event handed to the listeners (what a stream client resumes after). */
  get lastId(): number {
    return this.#lastDelivered;
  }

  #deliver(batch: readonly GreenlightEvent[]): void {
    if (batch.length > 0) this.#lastDelivered = Math.max(this.#lastDelivered, batch.at(-1)!.id);
    for (const event of batch) {
      for (const listener of this.#listeners) {
        try {
          listener(event);
        } catch (error) {
          this.#logger.error({ err: error, event: event.type }, 'a journal listener failed');
        }
      }
    }
  }

  /** Write everything still pending; the last step of a clean stop. */
  close(): void {
    this.#unsubscribe();
    this.flush();
    if (this.#failure) this.#tryRecover();
    // Everything handed out is on disk: the next start may go on from the last id, contiguously.
    if (!this.#failure && !this.#replica && this.#reservedThrough !== undefined) {
      try {
        this.#store.set(IDS_RESERVED_THROUGH, this.#lastWrittenId);
      } catch {
        // The reservation stays: the next start goes on past it, which is never wrong.
      }
    }
    clearTimeout(this.#retry);
    clearTimeout(this.#syncFallback);
  }

  /**
   * Write a batch, with a new reservation of ids when the one on disk is less than half of
   * ID_RESERVE ahead of its last id (once per 100,000 events). Throws what the store throws; the
   * reservation counts only once written.
   */
  #append(batch: readonly GreenlightEvent[], syncLater: boolean): void {
    const last = batch.at(-1)!.id;
    const reserve = this.#reservedThrough !== undefined && last <= this.#reservedThrough - ID_RESERVE / 2 ? undefined : last + ID_RESERVE;
    this.#store.appendEvents(batch, { syncLater, reserveIdsThrough: reserve });
    this.#lastWrittenId = last;
    if (reserve !== undefined) this.#reservedThrough = reserve;
  }

  /** At the end of this tick, or once the commit spacing has passed since the last commit. */
  #scheduleFlush(): { cancel(): void } {
    const wait = this.#lastCommit + this.commitSpacingMs - this.#clock();
    if (wait <= 0) {
      const immediate = setImmediate(() => this.#commit());
      return { cancel: () => clearImmediate(immediate) };
    }
    // Rounded up: a timer may otherwise fire on the whole millisecond before.
    const timer = setTimeout(() => this.#commit(), Math.ceil(wait));
    return { cancel: () => clearTimeout(timer) };
  }

  #hold(batch: GreenlightEvent[]): void {
    this.#backlog.push(...batch);
    if (this.#backlog.length > MAX_BACKLOG) {
      const excess = this.#backlog.length - MAX_BACKLOG;
      this.#backlog.splice(0, excess);
      this.#dropped += excess;
    }
  }

  #failed(error: unknown, doing: string): void {
    if (this.#failure) return;
    const message = (error as Error).message ?? String(error);
    this.#failure = { since: this.#now(), error: message };
    this.#logger.error(
      { err: error, path: this.#store.path },
      `the store at ${this.#store.path} refused a write while ${doing}: ${message}. greenlight keeps probing and acting and holds events and state in memory; free space or fix permissions and it writes them on its own`,
    );
    // Published after the failure is recorded, so this event joins the backlog instead of failing again.
    this.#bus.publish({
      type: 'journal.failed',
      severity: 'critical',
      message: `the event journal cannot write to ${this.#store.path} (${message}): greenlight goes on probing and acting and keeps events in memory until the disk takes them again; a restart now would lose them`,
      data: { path: this.#store.path, error: message },
    });
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (!this.#tryRecover()) this.#scheduleRetry();
    }, RETRY_MS);
    this.#retry.unref();
  }

  /** Write the backlog and the unsaved state; true when everything is on disk again. */
  #tryRecover(): boolean {
    this.flush();
    try {
      for (let i = 0; i < this.#backlog.length; i += 1_000) this.#append(this.#backlog.slice(i, i + 1_000), false);
      for (const [key, write] of this.#unsaved) {
        write();
        this.#unsaved.delete(key);
      }
    } catch (error) {
      // Some pages may have been written: keep only what is not yet on disk.
      const written = this.#store.lastWrittenEventId();
      this.#backlog = this.#backlog.filter((event) => event.id > written);
      this.#logger.warn(
        { err: error, held: this.#backlog.length },
        `the store still refuses writes: ${(error as Error).message}; retrying in ${RETRY_MS / 1_000}s`,
      );
      return false;
    }
    const failure = this.#failure!;
    const held = this.#backlog.length;
    const dropped = this.#dropped;
    this.#backlog = [];
    this.#dropped = 0;
    this.#failure = undefined;
    const downMs = this.#now() - failure.since;
    this.#logger.warn(
      { held, dropped, downMs },
      `the store takes writes again: ${held} held events written${dropped ? `, ${dropped} oldest lost past the ${MAX_BACKLOG}-event memory limit` : ''}`,
    );
    this.#bus.publish({
      type: 'journal.recovered',
      severity: 'info',
      message: `the event journal writes again after ${Math.round(downMs / 1_000)}s: ${held} events held in memory are on disk${dropped ? `; ${dropped} older ones were lost past the memory limit` : ''}`,
      data: { path: this.#store.path, heldEvents: held, droppedEvents: dropped, downForMs: downMs },
    });
    return true;
  }
}

/**
 * greenlight's durable state: an SQLite database (better-sqlite3, WAL) in the data directory.
 * It holds what a restart must not lose: the event journal, the live environment, the flag sets
 * and the incidents that were firing, so a restarted agent neither forgets a switch nor repeats an action it
 * completed, and still sends the resolved notice. Writes are synchronous and small; each is one
 * transaction, committed before the caller goes on (the journal's events may leave the fsync of
 * their commit to the thread pool: appendEvents, syncEvents). The journal is bounded by age and size
 * (`prune`, run by JournalRetention): the oldest events go first, and ids are never reused.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, openSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { GreenlightError } from '../../config/errors.js';
import type { EventJson, GreenlightEvent, Severity } from './events.js';
import type { FlagAuditEntry, FlagState } from '../flags/flag-store.js';
import { makeDirectory, unusableDatabase } from './make-directory.js';

export class StoreError extends GreenlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GL_ERR_STORE', message, options);
  }
}

/** How long finished action records are kept: an incident younger than this has every record of its actions. */
export const ACTION_RECORDS_KEPT_MS = 7 * 24 * 3_600_000;

/**
 * The page cache of each database connection the agent writes through, in KiB. better-sqlite3
 * builds SQLite with 16 MB, and a connection keeps the pages it writes until that is full: 12
 * simulated hours of rollups for 1,000 series (an 18 MB database) took RSS from 81 to 99 MB with
 * 16 MB, and from 80 to 77 with 2 MB, for pages the kernel's file cache holds anyway (issue 18).
 * The journal's connection fills the same way with its events. What the agent writes goes to the
 * right-hand edge of its tables (events by id, minutes by minute), and a minute's flush of 1,000
 * series writes about 70 KB of rows (31 bytes a minute row and 40 an hour row, as the report
 * bench measures them), so 512 KiB (128 pages) holds what it works on:
 * against 2,000 KiB, malloc's arena 1.4 MB smaller in an agent at 1,000 series over a populated
 * data directory, with the journal's ingest (143 against 152 thousand events a second), the
 * minute's flush (4.5-4.8 against 5.2-5.8 ms) and a 30-day report (0.7-0.9 against 0.7-1.0 s)
 * alike (issue 18's seventeenth round).
 */
export const PAGE_CACHE_KIB = 512;

/** What the action journal keeps of an action's context: enough to re-check it after a crash. */
export interface StoredActionContext {
  rule: string | null;
  incident: string;
  env: string;
  severity: Severity;
  message: string;
  actor: string;
  startedAt: number;
}

/** An event's columns as the journal holds them, `data` as JSON text (Store.eventRows). */
export interface EventRow {
  id: number;
  time: string;
  type: string;
  severity: Severity;
  env: string | null;
  probe: string | null;
  rule: string | null;
  data: string;
}

export interface ActionRecord {
  incident: string;
  action: string;
  type: string;
  state: 'started' | 'succeeded' | 'failed' | 'skipped';
  context: StoredActionContext;
  startedAt: number;
  finishedAt?: number;
  detail?: string;
  /** The action's effect is the agent's own state (Action.effect): a cluster records its outcome under the leader's fence. */
  effect?: 'state';
}

interface AuditRow {
  time: string;
  actor: string;
  reason: string;
  env: string;
  flag: string;
  old: number;
  new: string;
  outcome: 'changed' | 'rejected';
}

/** What `prune` enforces, and how much it may do in one call. */
export interface PruneOptions {
  /** Events older than this (by their `time`) are deleted. */
  maxAgeMs: number;
  /** The database's used pages are brought under this many bytes by deleting the oldest events. */
  maxBytes: number;
  now: number;
  /** At most this many rows per call, so one call never holds the event loop long (default: no limit). */
  maxRows?: number;
}

export interface PruneResult {
  /** Events deleted for their age, and for the size bound. */
  byAge: number;
  bySize: number;
  /** Bytes in use afterwards (see `usedBytes`). */
  bytes: number;
  /** The oldest event still journaled, undefined when none is. */
  firstId: number | undefined;
  /** The row budget ran out before both bounds held: call again. */
  more: boolean;
}

/**
 * The alert lifecycle's tables (agent/alerts/lifecycle-store.ts): silences, maintenance windows,
 * incidents with their escalation, and the alerts of open incidents with what each receiver was
 * told. Each row is one record, by id, as JSON.
 */
export const ALERT_LIFECYCLE_TABLES = ['silences', 'maintenance_windows', 'alert_incidents', 'active_alerts'] as const;
export type AlertLifecycleTable = (typeof ALERT_LIFECYCLE_TABLES)[number];

/** Rows deleted per transaction: small enough that the WAL stays small and a reader never waits long. */
const PRUNE_CHUNK = 5_000;
/** Where the highest pruned id is kept: ids go on after it even when every event has been pruned. */
const PRUNED_THROUGH = 'journal.prunedThrough';
/** Event ids handed out may reach this far (Journal reserves them ahead); a restart goes on past it. */
export const IDS_RESERVED_THROUGH = 'journal.idsReservedThrough';

export class Store {
  readonly path: string;
  readonly #now: () => number;
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], { value: string }>;
  readonly #set: Database.Statement<[string, string, number]>;
  readonly #delete: Database.Statement<[string]>;
  readonly #insertEvent: Database.Statement<[number, string, string, string, string | null, string | null, string | null, string, string]>;
  readonly #appendEvents: (events: readonly GreenlightEvent[], reserveIdsThrough?: number) => void;
  readonly #eventsJson: Database.Statement<[number, number], unknown[]>;
  readonly #deleteThrough: (id: number) => number;
  readonly #saveFlags: (state: FlagState, audit: readonly FlagAuditEntry[], keep: number) => void;
  readonly #readAudit: Database.Statement<[number], AuditRow>;
  readonly #eventRows: Database.Statement<[{ since: number; types: string; withoutData: string; limit: number }], unknown[]>;
  /** The WAL file, when the database is in WAL mode: what syncEvents flushes. */
  readonly #walPath: string | undefined;
  /** A read-only descriptor of the WAL, opened at the first sync; closed when the store closes and no sync is running. */
  #walFd: number | undefined;
  #syncsRunning = 0;

  private constructor(path: string, db: Database.Database, now: () => number, wal = false) {
    this.path = path;
    this.#now = now;
    this.#db = db;
    this.#walPath = wal ? `${path}-wal` : undefined;
    db.exec(`CREATE TABLE IF NOT EXISTS state (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
    this.#get = db.prepare('SELECT value FROM state WHERE key = ?');
    this.#set = db.prepare(
      'INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    this.#delete = db.prepare('DELETE FROM state WHERE key = ?');
    db.exec(`CREATE TABLE IF NOT EXISTS events (
      id INTEGER PRIMARY KEY,
      time TEXT NOT NULL,
      type TEXT NOT NULL,
      severity TEXT NOT NULL,
      env TEXT,
      probe TEXT,
      rule TEXT,
      message TEXT NOT NULL,
      data TEXT NOT NULL
    )`);
    this.#insertEvent = db.prepare('INSERT INTO events (id, time, type, severity, env, probe, rule, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#appendEvents = db.transaction((events: readonly GreenlightEvent[], reserveIdsThrough?: number) => {
      for (const e of events) this.#insertEvent.run(e.id, e.time, e.type, e.severity, e.env, e.probe, e.rule, e.message, JSON.stringify(e.data));
      if (reserveIdsThrough !== undefined) this.#set.run(IDS_RESERVED_THROUGH, JSON.stringify(reserveIdsThrough), this.#now());
    });
    // The event's JSON built by SQLite from the columns, in the order JSON.stringify gives an
    // event (id, time, type, severity, env, probe, rule, message, data): `data` is stored as
    // JSON.stringify wrote it, and json_quote escapes strings as JSON.stringify does. No object
    // is built per event, which is most of what a long replay would cost and leave to collect.
    this.#eventsJson = db
      .prepare<[number, number], unknown[]>(
        `SELECT id, type, severity, env, probe, '{"id":' || id || ',"time":' || json_quote(time) || ',"type":' || json_quote(type) || ',"severity":' || json_quote(severity) || ',"env":' || json_quote(env) || ',"probe":' || json_quote(probe) || ',"rule":' || json_quote(rule) || ',"message":' || json_quote(message) || ',"data":' || data || '}' FROM events WHERE id > ? ORDER BY id LIMIT ?`,
      )
      .raw();
    // The action journal: a row is written as `started` before an action touches the world and
    // updated with its outcome after, so a restart finds what a crash interrupted.
    db.exec(`CREATE TABLE IF NOT EXISTS actions (
      incident TEXT NOT NULL,
      action TEXT NOT NULL,
      type TEXT NOT NULL,
      state TEXT NOT NULL,
      context TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      detail TEXT,
      PRIMARY KEY (incident, action)
    )`);
    // The flag audit trail: appended to, a row per entry, instead of rewritten whole with the
    // flags on every change (a 1,000-entry trail made each change a 200 KB write).
    db.exec(`CREATE TABLE IF NOT EXISTS flag_audit (
      id INTEGER PRIMARY KEY,
      time TEXT NOT NULL,
      actor TEXT NOT NULL,
      reason TEXT NOT NULL,
      env TEXT NOT NULL,
      flag TEXT NOT NULL,
      old INTEGER NOT NULL,
      new TEXT NOT NULL,
      outcome TEXT NOT NULL
    )`);
    const insertAudit = db.prepare<[string, string, string, string, string, number, string, string]>(
      'INSERT INTO flag_audit (time, actor, reason, env, flag, old, new, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const trimAudit = db.prepare<[number]>('DELETE FROM flag_audit WHERE id <= (SELECT MAX(id) FROM flag_audit) - ?');
    // Values and the entries that changed them in one transaction: a crash keeps both or neither.
    this.#saveFlags = db.transaction((state: FlagState, audit: readonly FlagAuditEntry[], keep: number) => {
      this.#set.run('flags', JSON.stringify(state), this.#now());
      for (const e of audit) insertAudit.run(e.time, e.actor, e.reason, e.env, e.flag, e.old ? 1 : 0, JSON.stringify(e.new), e.outcome);
      if (audit.length > 0) trimAudit.run(keep);
    });
    this.#readAudit = db.prepare<[number], AuditRow>('SELECT * FROM (SELECT * FROM flag_audit ORDER BY id DESC LIMIT ?) ORDER BY id');
    this.#eventRows = db
      .prepare<[{ since: number; types: string; withoutData: string; limit: number }], unknown[]>(
        "SELECT id, time, type, severity, env, probe, rule, CASE WHEN type IN (SELECT value FROM json_each(@withoutData)) THEN '{}' ELSE data END FROM events WHERE id > @since AND type IN (SELECT value FROM json_each(@types)) ORDER BY id LIMIT @limit",
      )
      .raw();
    // The alert lifecycle (issue 14): a record per row, written as each changes.
    for (const table of ALERT_LIFECYCLE_TABLES)
      db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id TEXT PRIMARY KEY, record TEXT NOT NULL, updated_at INTEGER NOT NULL)`);
    const deleteEvents = db.prepare<[number]>('DELETE FROM events WHERE id <= ?');
    // The high-water mark is written in the same transaction as the delete: a crash leaves both or neither.
    this.#deleteThrough = db.transaction((id: number) => {
      const deleted = deleteEvents.run(id).changes;
      this.#set.run(PRUNED_THROUGH, JSON.stringify(Math.max(id, this.get<number>(PRUNED_THROUGH) ?? 0)), this.#now());
      return deleted;
    });
  }

  /**
   * Open (or create) `<dataDir>/greenlight.db` (or `file`); `now` stamps its writes. `fresh`
   * starts it empty (a cluster agent's mirror of the shared history is refilled at each start).
   * Throws StoreError saying what to fix.
   */
  static open(dataDir: string, now: () => number = Date.now, file = 'greenlight.db', fresh = false): Store {
    const dir = resolve(dataDir);
    const path = join(dir, file);
    try {
      makeDirectory(dir);
      if (fresh) for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
      const db = new Database(path);
      db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
      // A file system without shared memory for the WAL index leaves the journal mode as it was.
      const wal = db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
      // FULL: a committed switch or incident survives a power cut, not just a crash.
      db.pragma('synchronous = FULL');
      return new Store(path, db, now, wal);
    } catch (error) {
      throw new StoreError(unusableDatabase('state database', path, error), { cause: error });
    }
  }

  /**
   * Open an existing state database for reading only (`greenlight report --config`, beside a
   * running agent: WAL lets both read). Throws StoreError when there is none.
   */
  static openReadOnly(dataDir: string): Store {
    const path = join(resolve(dataDir), 'greenlight.db');
    if (!existsSync(path)) throw new StoreError(`no state database at ${path}: has an agent run with this dataDir (GREENLIGHT_DATA_DIR)?`);
    try {
      return new Store(path, new Database(path, { readonly: true, fileMustExist: true }), Date.now);
    } catch (error) {
      throw new StoreError(`cannot read the state database ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  get<T>(key: string): T | undefined {
    const row = this.#get.get(key);
    if (row === undefined) return undefined;
    try {
      return JSON.parse(row.value) as T;
    } catch (error) {
      // Written by nothing of greenlight's (a hand edit, a damaged page): say where, and what to do.
      throw new StoreError(
        `${this.path}: the stored ${key} is not JSON (${(error as Error).message}); restore the file from a backup, or remove that one entry to start it afresh: sqlite3 ${this.path} "DELETE FROM state WHERE key = '${key}'"`,
        { cause: error },
      );
    }
  }

  set(key: string, value: unknown, now = this.#now()): void {
    this.#set.run(key, JSON.stringify(value), now);
  }

  delete(key: string): void {
    this.#delete.run(key);
  }

  /**
   * Append events to the journal, in one transaction. With `syncLater`, the commit does not wait
   * for the disk: it is written to the WAL at synchronous=NORMAL, which survives a crash of this
   * process but not yet a power cut, until `syncEvents` (or `syncEventsNow`) has flushed the WAL.
   * In WAL mode NORMAL is always consistent (SQLite still syncs around its checkpoints); what it
   * leaves out is the sync at each commit, which the caller then runs off the event loop. Every
   * other write stays FULL. Without a WAL (a file system that refused it) `syncLater` is ignored.
   */
  /**
   * Append events in one transaction; with `reserveIdsThrough`, record in it too how far ids may
   * have been handed out (IDS_RESERVED_THROUGH).
   */
  appendEvents(events: readonly GreenlightEvent[], options?: { syncLater?: boolean; reserveIdsThrough?: number | undefined }): void {
    if (events.length === 0) return;
    if (!options?.syncLater || this.#walPath === undefined) return this.#appendEvents(events, options?.reserveIdsThrough);
    // Not prepared once: SQLite applies this pragma as it compiles it, so a kept statement would
    // take effect only when it happens to be recompiled (strace showed the first append syncing).
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#appendEvents(events, options.reserveIdsThrough);
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }

  /**
   * Flush the WAL to disk in libuv's thread pool: every commit made before the call is then
   * durable, as a FULL commit would be. Rejects with the file system's error (EIO, ENOSPC).
   */
  syncEvents(): Promise<void> {
    const fd = this.#walDescriptor();
    if (fd === undefined) return Promise.resolve();
    this.#syncsRunning++;
    return new Promise<void>((resolve, reject) => {
      fdatasync(fd, (error) => {
        this.#syncsRunning--;
        if (!this.#db.open) this.#closeWal();
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** As `syncEvents`, on this thread: for a reader or a stop that cannot wait. */
  syncEventsNow(): void {
    const fd = this.#walDescriptor();
    if (fd !== undefined) fdatasyncSync(fd);
  }

  #walDescriptor(): number | undefined {
    if (this.#walPath === undefined || !this.#db.open) return undefined;
    // SQLite creates the WAL with the first write and keeps the same file (truncating it at most) while open.
    this.#walFd ??= openSync(this.#walPath, 'r');
    return this.#walFd;
  }

  #closeWal(): void {
    if (this.#walFd === undefined || this.#syncsRunning > 0) return;
    closeSync(this.#walFd);
    this.#walFd = undefined;
  }

  /**
   * The highest event id ever journaled, 0 for none: ids go on from there after a restart. Not
   * MAX(id) alone: retention may have deleted the newest events too (a quiet agent past maxAge),
   * and ids handed out while the journal could not write reach past it (IDS_RESERVED_THROUGH).
   */
  lastEventId(): number {
    return Math.max(this.lastWrittenEventId(), this.get<number>(IDS_RESERVED_THROUGH) ?? 0);
  }

  /** The highest event id written (or pruned after it was): what the journal holds, reservations aside. */
  lastWrittenEventId(): number {
    const max = (this.#db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number | null }).id ?? 0;
    return Math.max(max, this.get<number>(PRUNED_THROUGH) ?? 0);
  }

  /**
   * Bytes of the database in use: (page_count - freelist_count) x page_size. Two pragmas read
   * from the header, O(1) however large the journal, unlike summing row lengths (a full scan);
   * and it is what the disk holds, indexes, page overhead and the other tables included. Deleting
   * the oldest rows empties whole leaf pages of the id-ordered table, which go to the freelist and
   * are reused by later inserts: the file stays at about maxSize instead of growing.
   */
  usedBytes(): number {
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    const free = this.#db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * (this.#db.pragma('page_size', { simple: true }) as number);
  }

  /**
   * Enforce the journal's bounds, oldest events first (by id, the order they happened in; a clock
   * stepped back cannot make a newer event go first). Age: delete from the oldest up to the first
   * event inside `maxAgeMs`. Size: while the database uses more than `maxBytes`, delete the oldest
   * events, as many as the average row size says should free the excess, then measure again.
   */
  prune(options: PruneOptions): PruneResult {
    let budget = options.maxRows ?? Number.POSITIVE_INFINITY;
    const cutoff = new Date(options.now - options.maxAgeMs).toISOString();
    const oldest = this.#db.prepare<[number], { id: number; time: string }>('SELECT id, time FROM events ORDER BY id LIMIT ?');
    let byAge = 0;
    while (budget > 0) {
      const rows = oldest.all(Math.min(budget, PRUNE_CHUNK));
      const inside = rows.findIndex((row) => row.time >= cutoff);
      const expired = inside === -1 ? rows.length : inside;
      if (expired === 0) break;
      byAge += this.#deleteThrough(rows[expired - 1]!.id);
      budget -= expired;
      if (inside !== -1) break;
    }

    let bySize = 0;
    const nth = this.#db.prepare<[number], { id: number }>('SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?');
    const span = this.#db.prepare<[], { first: number | null; last: number | null }>('SELECT MIN(id) AS first, MAX(id) AS last FROM events');
    let bytes = this.usedBytes();
    while (bytes > options.maxBytes && budget > 0) {
      const { first, last } = span.get()!;
      if (first === null || last === null) break;
      // Ids are dense but for the odd gap, so last - first + 1 is a cheap upper bound on the rows;
      // it can only make the estimate per row smaller, so a step never deletes more than needed by much.
      const perRow = bytes / (last - first + 1);
      const step = Math.min(budget, PRUNE_CHUNK, Math.max(64, Math.ceil((bytes - options.maxBytes) / perRow)));
      const through = nth.get(step - 1)?.id ?? last;
      bySize += this.#deleteThrough(through);
      budget -= step;
      bytes = this.usedBytes();
    }
    const first = span.get()!.first ?? undefined;
    const expiredLeft = first !== undefined && oldest.get(1)!.time < cutoff;
    return { byAge, bySize, bytes, firstId: first, more: budget <= 0 && (bytes > options.maxBytes || expiredLeft) };
  }

  /**
   * The id after which the newest `count` journaled events lie (0 when it holds no more): where a
   * reader that wants the latest events starts. Not the last id minus `count`: ids jump past their
   * reservation after a crash, and retention leaves gaps.
   */
  idBeforeNewest(count: number): number {
    const row = this.#db.prepare<[number], { id: number }>('SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?').get(count);
    return row?.id ?? 0;
  }

  /** Journaled events after `since`, oldest first; `type` matches a type or a prefix (`probe`, `rule.firing`). */
  events(query: { since: number; limit: number; type?: string | undefined }): GreenlightEvent[] {
    const rows = (
      query.type === undefined
        ? this.#db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(query.since, query.limit)
        : this.#db
            .prepare("SELECT * FROM events WHERE id > ? AND (type = ? OR type LIKE ? ESCAPE '\\') ORDER BY id LIMIT ?")
            .all(query.since, query.type, `${query.type.replace(/[\\%_]/g, (c) => `\\${c}`)}.%`, query.limit)
    ) as (Omit<GreenlightEvent, 'data'> & { data: string })[];
    return rows.map((row) => ({ ...row, data: JSON.parse(row.data) }) as GreenlightEvent);
  }

  /**
   * Journaled events after `since` whose type is one of `types`, oldest first, at most `limit`, as
   * their columns with `data` still JSON text — `{}` for the types in `withoutData`: one pass over
   * the range for every type, and a reader gets and parses only the data it needs (a report reads
   * probe.down/up by the hundred thousand, for their times alone).
   */
  eventRows(query: { since: number; limit: number; types: readonly string[]; withoutData?: readonly string[] }): EventRow[] {
    return this.#eventRows
      .all({ since: query.since, types: JSON.stringify(query.types), withoutData: JSON.stringify(query.withoutData ?? []), limit: query.limit })
      .map((row) => {
        const [id, time, type, severity, env, probe, rule, data] = row as [
          number,
          string,
          string,
          Severity,
          string | null,
          string | null,
          string | null,
          string,
        ];
        return { id, time, type, severity, env, probe, rule, data };
      });
  }

  /**
   * Save the flag values (state key `flags`) and append the audit entries that came with them,
   * keeping the newest `keep` entries.
   */
  saveFlags(state: FlagState, audit: readonly FlagAuditEntry[], keep: number): void {
    this.#saveFlags(state, audit, keep);
  }

  /** The newest `limit` audit entries, oldest first. */
  flagAudit(limit: number): FlagAuditEntry[] {
    return this.#readAudit.all(limit).map((row) => ({
      time: row.time,
      actor: row.actor,
      reason: row.reason,
      env: row.env,
      flag: row.flag,
      old: row.old === 1,
      new: JSON.parse(row.new) as boolean | string,
      outcome: row.outcome,
    }));
  }

  /** Journaled events after `since`, oldest first, at most `limit`, as their JSON (what the stream sends). */
  eventsJson(query: { since: number; limit: number }): EventJson[] {
    return this.#eventsJson.all(query.since, query.limit).map((row) => {
      const [id, type, severity, env, probe, json] = row as [number, string, string, string | null, string | null, string];
      return { id, type, severity, env, probe, json };
    });
  }

  /** Record an action's start or outcome; finished records older than a week are dropped. */
  recordAction(record: ActionRecord): void {
    this.#db
      .prepare(
        'INSERT INTO actions (incident, action, type, state, context, started_at, finished_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(incident, action) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at, detail = excluded.detail',
      )
      .run(
        record.incident,
        record.action,
        record.type,
        record.state,
        JSON.stringify(record.context),
        record.startedAt,
        record.finishedAt ?? null,
        record.detail ?? null,
      );
    if (record.finishedAt !== undefined)
      this.#db.prepare("DELETE FROM actions WHERE state != 'started' AND finished_at < ?").run(record.finishedAt - ACTION_RECORDS_KEPT_MS);
  }

  /** Whether the journal holds a record of `action` for `incident` (started, or finished within ACTION_RECORDS_KEPT_MS). */
  hasActionRecord(incident: string, action: string): boolean {
    return this.#db.prepare('SELECT 1 FROM actions WHERE incident = ? AND action = ?').get(incident, action) !== undefined;
  }

  /** Actions recorded as started and never finished: a crash interrupted them. */
  unfinishedActions(): ActionRecord[] {
    const rows = this.#db.prepare("SELECT * FROM actions WHERE state = 'started' ORDER BY started_at").all() as {
      incident: string;
      action: string;
      type: string;
      state: 'started';
      context: string;
      started_at: number;
    }[];
    return rows.map((row) => ({
      incident: row.incident,
      action: row.action,
      type: row.type,
      state: row.state,
      context: JSON.parse(row.context) as StoredActionContext,
      startedAt: row.started_at,
    }));
  }

  /** Every record of an alert lifecycle table. */
  alertLifecycleRecords<T>(table: AlertLifecycleTable): T[] {
    return (this.#db.prepare(`SELECT record FROM ${lifecycleTable(table)} ORDER BY updated_at, id`).all() as { record: string }[]).map(
      (row) => JSON.parse(row.record) as T,
    );
  }

  /** Insert or replace one record of an alert lifecycle table. */
  saveAlertLifecycleRecord(table: AlertLifecycleTable, id: string, record: unknown): void {
    this.#db
      .prepare(
        `INSERT INTO ${lifecycleTable(table)} (id, record, updated_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at`,
      )
      .run(id, JSON.stringify(record), this.#now());
  }

  deleteAlertLifecycleRecord(table: AlertLifecycleTable, id: string): void {
    this.#db.prepare(`DELETE FROM ${lifecycleTable(table)} WHERE id = ?`).run(id);
  }

  /** Move the WAL's pages into the database file and truncate the WAL (what the file then holds is the database). */
  checkpoint(): void {
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    if (this.#db.open) this.#db.close();
    this.#closeWal();
  }
}

/** A table name goes into SQL text: only the known ones. */
function lifecycleTable(table: AlertLifecycleTable): string {
  if (!(ALERT_LIFECYCLE_TABLES as readonly string[]).includes(table)) throw new Error(`bug: ${JSON.stringify(table)} is not an alert lifecycle table`);
  return table;
}

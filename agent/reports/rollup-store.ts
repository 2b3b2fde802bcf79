/**
 * The rollups: per minute and per probe × environment, the probes run, how many failed, the sum
 * of their latencies and their latency histogram (latency-sketch.ts), so that days and weeks can
 * be reported without keeping every sample. Kept in their own SQLite file beside the state
 * database, `<dataDir>/rollups.db`, for two reasons:
 *
 * - Their own bounds. The journal's `maxSize` measures the state database's used pages; rollups
 *   in the same file would make it delete events (the audit of what greenlight did) to make room
 *   for latency figures. Here `rollups.retention.maxSize` bounds the rollups alone.
 * - Their own durability. Every event commit is fsynced (`synchronous=FULL`); a rollup batch is
 *   figures, and losing the last minute of them to a power cut is acceptable, so this file runs
 *   at `synchronous=NORMAL` and its writes never wait behind (or hold up) the journal's.
 *
 * Two tiers. `minutes` holds a row per minute and series, written in one transaction per flush
 * (RollupWriter), and is kept for `retention.minuteAge`. Once an hour is over it is compacted:
 * `hours` gets a row per hour and series and `env_hours` a row per hour and environment (all its
 * probes merged, what a report's daily figures read: a 30-day report reads 720 rows per
 * environment, however many probes there are). `meta.compactedThrough` is the first hour not
 * compacted yet: reads take the hours before it from the hour tables and the rest from minutes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { LATENCY_BINS } from '../../probes/sliding-window.js';
import { StoreError } from '../store.js';
import { addEncodedBins, encodeBins, mergeEncoded } from './latency-sketch.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
/** The file, in the data directory. */
export const ROLLUPS_FILE = 'rollups.db';

/** What one series did in one minute. */
export interface MinuteRollup {
  /** floor(time / 60 s). */
  minute: number;
  probe: string;
  env: string;
  count: number;
  failures: number;
  /** The sum of the probes' latencies, whole milliseconds. */
  latencyMs: number;
  /** The sparse histogram (encodeBins). */
  bins: Uint8Array;
}

/** One environment's probes together over one hour. */
export interface EnvHour {
  env: string;
  /** floor(time / 1 h). */
  hour: number;
  count: number;
  failures: number;
  latencyMs: number;
  bins: Uint8Array;
}

/** One series' probes and failures over a span. */
export interface SeriesTotal {
  probe: string;
  env: string;
  count: number;
  failures: number;
}

export interface RollupPruneOptions {
  now: number;
  /** Hour rows older than this are deleted. */
  maxAgeMs: number;
  /** Minute rows older than this are deleted (once their hour is compacted). */
  minuteAgeMs: number;
  /** The file's used pages are brought under this by deleting the oldest rows. */
  maxBytes: number;
  /** At most about this many rows per call (default: no limit). */
  maxRows?: number;
}

export interface RollupPruneResult {
  minutes: number;
  hours: number;
  /** Rows deleted for the size bound (oldest first, either tier). */
  bySize: number;
  bytes: number;
  /** The row budget ran out before every bound held: call again. */
  more: boolean;
}

type Row = { count: number; failures: number; latency_ms: number; bins: Uint8Array };

/** Rows deleted per statement: a few milliseconds, so a slice never holds the event loop long. */
const PRUNE_CHUNK = 5_000;

export class RollupStore {
  readonly path: string;
  readonly readonly: boolean;
  readonly #db: Database.Database;
  readonly #seriesIds = new Map<string, number>();
  readonly #seriesNames = new Map<number, { probe: string; env: string }>();
  readonly #write: (rows: readonly MinuteRollup[]) => Set<number>;
  readonly #compact: (hour: number) => void;

  private constructor(path: string, db: Database.Database, readonly: boolean) {
    this.path = path;
    this.readonly = readonly;
    this.#db = db;
    registerFunctions(db);
    if (!readonly) {
      db.exec(`CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, probe TEXT NOT NULL, env TEXT NOT NULL, UNIQUE (probe, env));
        CREATE TABLE IF NOT EXISTS minutes (minute INTEGER NOT NULL, series INTEGER NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (minute, series)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hours (hour INTEGER NOT NULL, series INTEGER NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (hour, series)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS env_hours (hour INTEGER NOT NULL, env TEXT NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (hour, env)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`);
    }
    for (const row of db.prepare('SELECT id, probe, env FROM series').all() as { id: number; probe: string; env: string }[]) this.#remember(row.id, row.probe, row.env);

    if (readonly) {
      const refuse = () => {
        throw new StoreError(`${path} is open read-only`);
      };
      this.#write = refuse;
      this.#compact = refuse;
      return;
    }
    const addSeries = db.prepare<[string, string]>('INSERT OR IGNORE INTO series (probe, env) VALUES (?, ?)');
    const seriesId = db.prepare<[string, string], { id: number }>('SELECT id FROM series WHERE probe = ? AND env = ?');
    // A minute written twice (the report flushes the minute in progress; the next flush adds the
    // rest of it) adds up: counts and histograms are sums.
    const upsert = db.prepare<[number, number, number, number, number, Uint8Array]>(
      `INSERT INTO minutes (minute, series, count, failures, latency_ms, bins) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (minute, series) DO UPDATE SET count = count + excluded.count, failures = failures + excluded.failures,
         latency_ms = latency_ms + excluded.latency_ms, bins = bins_add(bins, excluded.bins)`,
    );
    this.#write = db.transaction((rows: readonly MinuteRollup[]) => {
      const hours = new Set<number>();
      for (const row of rows) {
        const key = seriesKey(row.probe, row.env);
        let id = this.#seriesIds.get(key);
        if (id === undefined) {
          addSeries.run(row.probe, row.env);
          id = seriesId.get(row.probe, row.env)!.id;
          this.#remember(id, row.probe, row.env);
        }
        upsert.run(row.minute, id, row.count, row.failures, Math.round(row.latencyMs), row.bins);
        hours.add(Math.floor(row.minute / 60));
      }
      return hours;
    });
    const clearHour = db.prepare<[number]>('DELETE FROM hours WHERE hour = ?');
    const fillHour = db.prepare<[number, number, number]>('INSERT INTO hours SELECT ?, series, SUM(count), SUM(failures), SUM(latency_ms), bins_sum(bins) FROM minutes WHERE minute >= ? AND minute < ? GROUP BY series');
    const clearEnvHour = db.prepare<[number]>('DELETE FROM env_hours WHERE hour = ?');
    const fillEnvHour = db.prepare<[number]>('INSERT INTO env_hours SELECT h.hour, s.env, SUM(h.count), SUM(h.failures), SUM(h.latency_ms), bins_sum(h.bins) FROM hours h JOIN series s ON s.id = h.series WHERE h.hour = ? GROUP BY s.env');
    const setMeta = db.prepare<[string, number]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    // Rebuilt from the minutes, never added to: compacting an hour again (a late minute) gives the same rows.
    this.#compact = db.transaction((hour: number) => {
      clearHour.run(hour);
      fillHour.run(hour, hour * 60, hour * 60 + 60);
      clearEnvHour.run(hour);
      fillEnvHour.run(hour);
      if (hour >= this.compactedThrough()) setMeta.run('compactedThrough', hour + 1);
    });
  }

  /** Open (or create) `<dataDir>/rollups.db`. Throws StoreError saying what to fix. */
  static open(dataDir: string): RollupStore {
    const dir = resolve(dataDir);
    const path = join(dir, ROLLUPS_FILE);
    try {
      mkdirSync(dir, { recursive: true });
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      return new RollupStore(path, db, false);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EACCES' || code === 'EROFS' || code === 'SQLITE_CANTOPEN' ? 'it is not writable by this user' : (error as Error).message;
      throw new StoreError(`cannot open the rollup database ${path}: ${why}. Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory.`, { cause: error });
    }
  }

  /**
   * Open an existing `<dataDir>/rollups.db` for reading only (`greenlight report --config`, beside
   * a running agent: WAL lets both read); undefined when there is none (no agent has probed yet).
   */
  static openReadOnly(dataDir: string): RollupStore | undefined {
    const path = join(resolve(dataDir), ROLLUPS_FILE);
    if (!existsSync(path)) return undefined;
    try {
      return new RollupStore(path, new Database(path, { readonly: true, fileMustExist: true }), true);
    } catch (error) {
      throw new StoreError(`cannot read the rollup database ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Add minutes (in one transaction); returns the hours they fall in. */
  writeMinutes(rows: readonly MinuteRollup[]): Set<number> {
    return rows.length === 0 ? new Set() : this.#write(rows);
  }

  /** Build the hour tables' rows of `hour` from its minutes (again, if it was compacted before). */
  compact(hour: number): void {
    this.#compact(hour);
  }

  /** The first hour not compacted yet: hours before it are read from the hour tables. */
  compactedThrough(): number {
    return (this.#db.prepare("SELECT value FROM meta WHERE key = 'compactedThrough'").get() as { value: number } | undefined)?.value ?? 0;
  }

  /** Hours from compactedThrough up to (not including) `before` that have minutes to compact, oldest first. */
  hoursToCompact(before: number): number[] {
    const from = this.compactedThrough();
    if (from >= before) return [];
    const rows = this.#db.prepare<[number, number], { hour: number }>('SELECT DISTINCT minute / 60 AS hour FROM minutes WHERE minute >= ? AND minute < ? ORDER BY hour').all(from * 60, before * 60);
    return rows.map((row) => row.hour);
  }

  /** Mark every hour before `hour` compacted (those without minutes have nothing to compact). */
  markCompactedThrough(hour: number): void {
    if (this.readonly || hour <= this.compactedThrough()) return;
    this.#db.prepare("INSERT INTO meta (key, value) VALUES ('compactedThrough', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(hour);
  }

  /** Each environment's probes per hour, for the hours in [fromHour, toHour): the hour tables, then the minutes not compacted yet. */
  envHours(fromHour: number, toHour: number): EnvHour[] {
    const split = Math.min(Math.max(this.compactedThrough(), fromHour), toHour);
    const compacted = this.#db
      .prepare<[number, number], Row & { env: string; hour: number }>('SELECT env, hour, count, failures, latency_ms, bins FROM env_hours WHERE hour >= ? AND hour < ? ORDER BY hour, env')
      .all(fromHour, split);
    const recent = this.#db
      .prepare<[number, number], Row & { env: string; hour: number }>(
        'SELECT s.env AS env, m.minute / 60 AS hour, SUM(m.count) AS count, SUM(m.failures) AS failures, SUM(m.latency_ms) AS latency_ms, bins_sum(m.bins) AS bins FROM minutes m JOIN series s ON s.id = m.series WHERE m.minute >= ? AND m.minute < ? GROUP BY s.env, m.minute / 60 ORDER BY hour, env',
      )
      .all(split * 60, toHour * 60);
    return [...compacted, ...recent].map((row) => ({ env: row.env, hour: row.hour, count: row.count, failures: row.failures, latencyMs: row.latency_ms, bins: row.bins }));
  }

  /** Each series' probes and failures over the hours in [fromHour, toHour). */
  seriesTotals(fromHour: number, toHour: number): SeriesTotal[] {
    const split = Math.min(Math.max(this.compactedThrough(), fromHour), toHour);
    const totals = new Map<number, { count: number; failures: number }>();
    const add = (rows: { series: number; count: number; failures: number }[]) => {
      for (const row of rows) {
        const total = totals.get(row.series);
        if (total) {
          total.count += row.count;
          total.failures += row.failures;
        } else totals.set(row.series, { count: row.count, failures: row.failures });
      }
    };
    add(this.#db.prepare<[number, number], { series: number; count: number; failures: number }>('SELECT series, SUM(count) AS count, SUM(failures) AS failures FROM hours WHERE hour >= ? AND hour < ? GROUP BY series').all(fromHour, split));
    add(this.#db.prepare<[number, number], { series: number; count: number; failures: number }>('SELECT series, SUM(count) AS count, SUM(failures) AS failures FROM minutes WHERE minute >= ? AND minute < ? GROUP BY series').all(split * 60, toHour * 60));
    const result: SeriesTotal[] = [];
    for (const [id, total] of totals) {
      const name = this.#seriesNames.get(id) ?? this.#lookup(id);
      if (name) result.push({ ...name, ...total });
    }
    return result;
  }

  /** The start (ms) of the oldest rollup held, undefined when there is none. */
  oldest(): number | undefined {
    const hour = (this.#db.prepare('SELECT MIN(hour) AS hour FROM env_hours').get() as { hour: number | null }).hour;
    const minute = (this.#db.prepare('SELECT MIN(minute) AS minute FROM minutes').get() as { minute: number | null }).minute;
    const times = [hour === null ? undefined : hour * HOUR_MS, minute === null ? undefined : minute * MINUTE_MS].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** Rows in the tiers: what the benchmark and the retention log report. */
  counts(): { series: number; minutes: number; hours: number; envHours: number } {
    const count = (table: string) => (this.#db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { series: count('series'), minutes: count('minutes'), hours: count('hours'), envHours: count('env_hours') };
  }

  /** Bytes in use: (page_count - freelist_count) x page_size, as the journal measures its own. */
  usedBytes(): number {
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    const free = this.#db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * (this.#db.pragma('page_size', { simple: true }) as number);
  }

  /**
   * Enforce the bounds, oldest rows first: minutes past `minuteAgeMs` (only of compacted hours:
   * their figures live on in the hour tables), hours past `maxAgeMs`, then, while the file uses
   * more than `maxBytes`, the oldest hour of the hour tables — or, with none left older than the
   * minutes, the oldest compacted minutes. A bound too small for the rollups shortens the history
   * a report can cover (its `coverage.rollupsFrom` says from when).
   */
  prune(options: RollupPruneOptions): RollupPruneResult {
    let budget = options.maxRows ?? Number.POSITIVE_INFINITY;
    const series = Math.max(1, (this.#db.prepare('SELECT COUNT(*) AS n FROM series').get() as { n: number }).n);
    const compactedMinute = this.compactedThrough() * 60;
    const oldestMinute = this.#db.prepare<[], { minute: number | null }>('SELECT MIN(minute) AS minute FROM minutes');
    const oldestHour = this.#db.prepare<[], { hour: number | null }>('SELECT MIN(hour) AS hour FROM hours');
    const deleteMinutes = this.#db.prepare<[number, number]>('DELETE FROM minutes WHERE minute >= ? AND minute < ?');
    const deleteHours = this.#db.transaction((from: number, to: number) => {
      const deleted = this.#db.prepare<[number, number]>('DELETE FROM hours WHERE hour >= ? AND hour < ?').run(from, to).changes;
      this.#db.prepare<[number, number]>('DELETE FROM env_hours WHERE hour >= ? AND hour < ?').run(from, to);
      return deleted;
    });
    // A step covers about PRUNE_CHUNK rows: a minute holds a row per series, an hour too.
    const step = Math.max(1, Math.floor(PRUNE_CHUNK / series));

    let minutes = 0;
    const minuteCutoff = Math.min(Math.floor((options.now - options.minuteAgeMs) / MINUTE_MS), compactedMinute);
    while (budget > 0) {
      const first = oldestMinute.get()!.minute;
      if (first === null || first >= minuteCutoff) break;
      const deleted = deleteMinutes.run(first, Math.min(first + step, minuteCutoff)).changes;
      minutes += deleted;
      budget -= Math.max(1, deleted);
    }

    let hours = 0;
    const hourCutoff = Math.floor((options.now - options.maxAgeMs) / HOUR_MS);
    while (budget > 0) {
      const first = oldestHour.get()!.hour;
      if (first === null || first >= hourCutoff) break;
      const deleted = deleteHours(first, Math.min(first + step, hourCutoff));
      hours += deleted;
      budget -= Math.max(1, deleted);
    }

    let bySize = 0;
    let bytes = this.usedBytes();
    while (bytes > options.maxBytes && budget > 0) {
      const hour = oldestHour.get()!.hour;
      const minute = oldestMinute.get()!.minute;
      let deleted: number;
      if (hour !== null && (minute === null || hour * 60 <= minute)) deleted = deleteHours(hour, hour + 1);
      else if (minute !== null && minute < compactedMinute) deleted = deleteMinutes.run(minute, Math.min(minute + step, compactedMinute)).changes;
      else break; // only the minutes of the hour in progress are left
      bySize += deleted;
      budget -= Math.max(1, deleted);
      bytes = this.usedBytes();
    }
    const over = bytes > options.maxBytes;
    const expiredLeft = (oldestMinute.get()!.minute ?? Number.POSITIVE_INFINITY) < minuteCutoff || (oldestHour.get()!.hour ?? Number.POSITIVE_INFINITY) < hourCutoff;
    return { minutes, hours, bySize, bytes, more: budget <= 0 && (over || expiredLeft) };
  }

  /** Move the WAL into the file and truncate it (the bench measures the file then). */
  checkpoint(): void {
    if (!this.readonly) this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #remember(id: number, probe: string, env: string): void {
    this.#seriesIds.set(seriesKey(probe, env), id);
    this.#seriesNames.set(id, { probe, env });
  }

  #lookup(id: number): { probe: string; env: string } | undefined {
    const row = this.#db.prepare<[number], { probe: string; env: string }>('SELECT probe, env FROM series WHERE id = ?').get(id);
    if (row) this.#remember(id, row.probe, row.env);
    return row;
  }
}

function seriesKey(probe: string, env: string): string {
  return `${probe}@${env}`;
}

/** `bins_add(a, b)`: two sparse histograms as one; `bins_sum(bins)`: an aggregate of many. */
function registerFunctions(db: Database.Database): void {
  db.function('bins_add', { deterministic: true }, (a: unknown, b: unknown) => mergeEncoded(a as Uint8Array | null, b as Uint8Array | null));
  db.aggregate('bins_sum', {
    start: () => new Float64Array(LATENCY_BINS),
    step: (bins: Float64Array, blob: unknown) => {
      if (blob) addEncodedBins(bins, blob as Uint8Array);
      return bins;
    },
    result: (bins: Float64Array) => encodeBins(bins),
  });
}

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
 * Three tables, written together in one transaction per flush (RollupWriter): `minutes`, a row
 * per minute and series, kept for `retention.minuteAge`; `hours`, a row per hour and series; and
 * `env_hours`, a row per hour and environment (all its probes merged: what a report's daily
 * figures read, 720 rows per environment for 30 days however many probes there are). A minute's
 * figures are added to its hour's rows as it is written (counts and histograms are sums), so the
 * hour tables are always current — there is no hourly compaction to wait for, and no pause of
 * the event loop once an hour (at a thousand series compacting an hour at once took 75 ms).
 */
import { existsSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { LATENCY_BINS } from '../../probes/sliding-window.js';
import { PAGE_CACHE_KIB, StoreError } from '../events/store.js';
import { addEncodedBins, encodeBins, mergeEncoded } from './latency-sketch.js';
import { isCorrupt, makeDirectory, unusableDatabase } from '../events/make-directory.js';

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
  readonly #write: (rows: readonly MinuteRollup[]) => void;

  private constructor(path: string, db: Database.Database, readonly: boolean) {
    this.path = path;
    this.readonly = readonly;
    this.#db = db;
    registerFunctions(db);
    if (!readonly) {
      db.exec(`CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, probe TEXT NOT NULL, env TEXT NOT NULL, UNIQUE (probe, env));
        CREATE TABLE IF NOT EXISTS minutes (minute INTEGER NOT NULL, series INTEGER NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (minute, series)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hours (hour INTEGER NOT NULL, series INTEGER NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (hour, series)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS env_hours (hour INTEGER NOT NULL, env TEXT NOT NULL, count INTEGER NOT NULL, failures INTEGER NOT NULL, latency_ms INTEGER NOT NULL, bins BLOB NOT NULL, PRIMARY KEY (hour, env)) WITHOUT ROWID;`);
    }
    for (const row of db.prepare('SELECT id, probe, env FROM series').all() as { id: number; probe: string; env: string }[])
      this.#remember(row.id, row.probe, row.env);

    if (readonly) {
      this.#write = () => {
        throw new StoreError(`${path} is open read-only`);
      };
      return;
    }
    const addSeries = db.prepare<[string, string]>('INSERT OR IGNORE INTO series (probe, env) VALUES (?, ?)');
    const seriesId = db.prepare<[string, string], { id: number }>('SELECT id FROM series WHERE probe = ? AND env = ?');
    // A row written twice adds up (counts and histograms are sums): the minute in progress that a
    // report flushes and the rest of it later, every minute of an hour into the hour's row.
    const sums =
      'count = count + excluded.count, failures = failures + excluded.failures, latency_ms = latency_ms + excluded.latency_ms, bins = bins_add(bins, excluded.bins)';
    const upsertMinute = db.prepare<[number, number, number, number, number, Uint8Array]>(
      `INSERT INTO minutes (minute, series, count, failures, latency_ms, bins) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, series) DO UPDATE SET ${sums}`,
    );
    const upsertHour = db.prepare<[number, number, number, number, number, Uint8Array]>(
      `INSERT INTO hours (hour, series, count, failures, latency_ms, bins) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, series) DO UPDATE SET ${sums}`,
    );
    const upsertEnvHour = db.prepare<[number, string, number, number, number, Uint8Array]>(
      `INSERT INTO env_hours (hour, env, count, failures, latency_ms, bins) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, env) DO UPDATE SET ${sums}`,
    );
    this.#write = db.transaction((rows: readonly MinuteRollup[]) => {
      // Each row goes to its minute, its hour and its environment's hour. A flush holds one minute
      // per series, as a rule: its hour row takes the minute's figures as they are; rows that
      // share an hour (a late minute beside the current one) are summed first.
      const hours = new Map<string, Sum & { series: number }>();
      const envHours = new Map<string, Sum & { env: string }>();
      for (const row of rows) {
        const key = seriesKey(row.probe, row.env);
        let id = this.#seriesIds.get(key);
        if (id === undefined) {
          addSeries.run(row.probe, row.env);
          id = seriesId.get(row.probe, row.env)!.id;
          this.#remember(id, row.probe, row.env);
        }
        const latencyMs = Math.round(row.latencyMs);
        upsertMinute.run(row.minute, id, row.count, row.failures, latencyMs, row.bins);
        const hour = Math.floor(row.minute / 60);
        addTo(hours, `${hour}:${id}`, () => ({ hour, series: id, count: 0, failures: 0, latencyMs: 0, bins: undefined }), row, latencyMs);
        addTo(envHours, `${hour}:${row.env}`, () => ({ hour, env: row.env, count: 0, failures: 0, latencyMs: 0, bins: undefined }), row, latencyMs);
      }
      for (const sum of hours.values()) upsertHour.run(sum.hour, sum.series, sum.count, sum.failures, sum.latencyMs, sum.bins ?? EMPTY_BINS);
      for (const sum of envHours.values()) upsertEnvHour.run(sum.hour, sum.env, sum.count, sum.failures, sum.latencyMs, sum.bins ?? EMPTY_BINS);
    });
  }

  /**
   * Open (or create) `<dataDir>/rollups.db`. Throws StoreError saying what to fix. A damaged file
   * (a torn write, a bad restore) is moved aside and a new one started, with `warn` saying so: the
   * rollups only feed reports, and an agent that refused to start over them would guard nothing.
   */
  static open(dataDir: string, warn: (message: string) => void = () => undefined): RollupStore {
    const dir = resolve(dataDir);
    const path = join(dir, ROLLUPS_FILE);
    const attempt = () => {
      let db: Database.Database | undefined;
      try {
        makeDirectory(dir);
        db = new Database(path);
        db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        return new RollupStore(path, db, false);
      } catch (error) {
        db?.close();
        throw error;
      }
    };
    try {
      try {
        return attempt();
      } catch (error) {
        if (!isCorrupt(error)) throw error;
        const aside = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        for (const suffix of ['', '-wal', '-shm']) if (existsSync(`${path}${suffix}`)) renameSync(`${path}${suffix}`, `${aside}${suffix}`);
        warn(`the rollup database ${path} is damaged (${(error as Error).message}): moved aside to ${aside}, and reports start over from now`);
        return attempt();
      }
    } catch (error) {
      throw new StoreError(unusableDatabase('rollup database', path, error), { cause: error });
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

  /** Add minutes, and add them to their hours, in one transaction. */
  writeMinutes(rows: readonly MinuteRollup[]): void {
    if (rows.length > 0) this.#write(rows);
  }

  /** Each environment's probes per hour, for the hours in [fromHour, toHour). */
  envHours(fromHour: number, toHour: number): EnvHour[] {
    return this.#db
      .prepare<[number, number], Row & { env: string; hour: number }>(
        'SELECT env, hour, count, failures, latency_ms, bins FROM env_hours WHERE hour >= ? AND hour < ? ORDER BY hour, env',
      )
      .all(fromHour, toHour)
      .map((row) => ({ env: row.env, hour: row.hour, count: row.count, failures: row.failures, latencyMs: row.latency_ms, bins: row.bins }));
  }

  /**
   * Each series that failed in the hours [fromHour, toHour), with its failures. Only rows with
   * failures are grouped: a scan without the sort a GROUP BY over every row would need (a 30-day
   * report over 1,000 series reads 720,000 hour rows).
   */
  failingSeries(fromHour: number, toHour: number): { probe: string; env: string; failures: number }[] {
    const rows = this.#db
      .prepare<[number, number], { series: number; failures: number }>(
        'SELECT series, SUM(failures) AS failures FROM hours WHERE hour >= ? AND hour < ? AND failures > 0 GROUP BY series',
      )
      .all(fromHour, toHour);
    return rows.flatMap((row) => {
      const name = this.#seriesNames.get(row.series) ?? this.#lookup(row.series);
      return name ? [{ ...name, failures: row.failures }] : [];
    });
  }

  /** Probes and failures over the hours [fromHour, toHour) of each series, or of the named ones only. */
  seriesTotals(fromHour: number, toHour: number, only?: readonly { probe: string; env: string }[]): SeriesTotal[] {
    const ids = only?.map((s) => this.#seriesIds.get(seriesKey(s.probe, s.env))).filter((id): id is number => id !== undefined);
    const rows = (
      ids
        ? this.#db
            .prepare(
              'SELECT series, SUM(count) AS count, SUM(failures) AS failures FROM hours WHERE hour >= ? AND hour < ? AND series IN (SELECT value FROM json_each(?)) GROUP BY series',
            )
            .all(fromHour, toHour, JSON.stringify(ids))
        : this.#db
            .prepare('SELECT series, SUM(count) AS count, SUM(failures) AS failures FROM hours WHERE hour >= ? AND hour < ? GROUP BY series')
            .all(fromHour, toHour)
    ) as { series: number; count: number; failures: number }[];
    return rows.flatMap((row) => {
      const name = this.#seriesNames.get(row.series) ?? this.#lookup(row.series);
      return name ? [{ ...name, count: row.count, failures: row.failures }] : [];
    });
  }

  /**
   * The minute rows of [fromMinute, toMinute) as a report's first, partial hour (`hour`): per
   * environment, its series that failed, and the totals of the named series. Undefined when the
   * minutes of that hour are no longer all held (pruned past `minuteAge`): the hour row then
   * stands for it, whole.
   */
  partialHour(
    fromMinute: number,
    toMinute: number,
    hour: number,
  ):
    | {
        envHours: EnvHour[];
        failing: { probe: string; env: string; failures: number }[];
        totals: (only: readonly { probe: string; env: string }[]) => SeriesTotal[];
      }
    | undefined {
    const oldestMinute = (this.#db.prepare('SELECT MIN(minute) AS minute FROM minutes').get() as { minute: number | null }).minute;
    const oldestHour = (this.#db.prepare('SELECT MIN(hour) AS hour FROM env_hours').get() as { hour: number | null }).hour;
    // Whole when a minute row at or before the hour's start remains (minutes are pruned oldest
    // first), or when nothing was rolled up before the oldest minute's hour (the agent began then).
    const whole = oldestMinute !== null && (oldestMinute <= hour * 60 || (oldestHour !== null && oldestHour >= Math.floor(oldestMinute / 60)));
    if (!whole) return undefined;
    const envHours = this.#db
      .prepare<[number, number], Row & { env: string }>(
        'SELECT s.env AS env, SUM(m.count) AS count, SUM(m.failures) AS failures, SUM(m.latency_ms) AS latency_ms, bins_sum(m.bins) AS bins FROM minutes m JOIN series s ON s.id = m.series WHERE m.minute >= ? AND m.minute < ? GROUP BY s.env ORDER BY s.env',
      )
      .all(fromMinute, toMinute)
      .map((row) => ({ env: row.env, hour, count: row.count, failures: row.failures, latencyMs: row.latency_ms, bins: row.bins ?? EMPTY_BINS }));
    const named = (rows: { series: number; count?: number; failures: number }[]) =>
      rows.flatMap((row) => {
        const name = this.#seriesNames.get(row.series) ?? this.#lookup(row.series);
        return name ? [{ ...name, ...row }] : [];
      });
    const failing = named(
      this.#db
        .prepare<[number, number], { series: number; failures: number }>(
          'SELECT series, SUM(failures) AS failures FROM minutes WHERE minute >= ? AND minute < ? AND failures > 0 GROUP BY series',
        )
        .all(fromMinute, toMinute),
    ).map(({ probe, env, failures }) => ({ probe, env, failures }));
    const totals = (only: readonly { probe: string; env: string }[]): SeriesTotal[] => {
      const ids = only.map((s) => this.#seriesIds.get(seriesKey(s.probe, s.env))).filter((id): id is number => id !== undefined);
      const rows = this.#db
        .prepare(
          'SELECT series, SUM(count) AS count, SUM(failures) AS failures FROM minutes WHERE minute >= ? AND minute < ? AND series IN (SELECT value FROM json_each(?)) GROUP BY series',
        )
        .all(fromMinute, toMinute, JSON.stringify(ids)) as { series: number; count: number; failures: number }[];
      return named(rows).map(({ probe, env, count, failures }) => ({ probe, env, count: count ?? 0, failures }));
    };
    return { envHours, failing, totals };
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
   * Enforce the bounds, oldest rows first: minutes past `minuteAgeMs` (their figures live on in
   * the hour tables), hours past `maxAgeMs`, then, while the file uses more than `maxBytes`, the
   * oldest hour of the hour tables — or, with none left older than the minutes, the oldest
   * minutes. A bound too small for the rollups shortens the history a report can cover (its
   * `coverage.rollupsFrom` says from when).
   */
  prune(options: RollupPruneOptions): RollupPruneResult {
    let budget = options.maxRows ?? Number.POSITIVE_INFINITY;
    const series = Math.max(1, (this.#db.prepare('SELECT COUNT(*) AS n FROM series').get() as { n: number }).n);
    const oldestMinute = this.#db.prepare<[], { minute: number | null }>('SELECT MIN(minute) AS minute FROM minutes');
    const oldestHour = this.#db.prepare<[], { hour: number | null }>('SELECT MIN(hour) AS hour FROM hours');
    const deleteMinutes = this.#db.prepare<[number, number]>('DELETE FROM minutes WHERE minute >= ? AND minute < ?');
    const deleteSeriesHours = this.#db.prepare<[number, number]>('DELETE FROM hours WHERE hour >= ? AND hour < ?');
    const deleteEnvHours = this.#db.prepare<[number, number]>('DELETE FROM env_hours WHERE hour >= ? AND hour < ?');
    const deleteHours = this.#db.transaction((from: number, to: number) => {
      deleteEnvHours.run(from, to);
      return deleteSeriesHours.run(from, to).changes;
    });
    // A step covers about PRUNE_CHUNK rows: a minute holds a row per series, an hour too.
    const step = Math.max(1, Math.floor(PRUNE_CHUNK / series));
    const now = Math.floor(options.now / MINUTE_MS);

    let minutes = 0;
    const minuteCutoff = Math.floor((options.now - options.minuteAgeMs) / MINUTE_MS);
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
      // Never the hour in progress: what a report of today reads.
      if (hour !== null && hour < Math.floor(now / 60) && (minute === null || hour * 60 <= minute)) deleted = deleteHours(hour, hour + 1);
      else if (minute !== null && minute < now) deleted = deleteMinutes.run(minute, Math.min(minute + step, now)).changes;
      else break;
      bySize += deleted;
      budget -= Math.max(1, deleted);
      bytes = this.usedBytes();
    }
    const over = bytes > options.maxBytes;
    const expiredLeft =
      (oldestMinute.get()!.minute ?? Number.POSITIVE_INFINITY) < minuteCutoff || (oldestHour.get()!.hour ?? Number.POSITIVE_INFINITY) < hourCutoff;
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

/** Figures being summed for one hour row; `bins` the sparse histogram so far. */
interface Sum {
  hour: number;
  count: number;
  failures: number;
  latencyMs: number;
  bins: Uint8Array | undefined;
}

const EMPTY_BINS = Buffer.alloc(0);

function addTo<S extends Sum>(sums: Map<string, S>, key: string, create: () => S, row: MinuteRollup, latencyMs: number): void {
  let sum = sums.get(key);
  if (!sum) {
    sum = create();
    sums.set(key, sum);
  }
  sum.count += row.count;
  sum.failures += row.failures;
  sum.latencyMs += latencyMs;
  sum.bins = sum.bins === undefined ? row.bins : mergeEncoded(sum.bins, row.bins);
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

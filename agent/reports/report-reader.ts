/**
 * Gathers a report's input from the stores: the rollups of the period's hours and the journal's
 * events of the types a report reads. It reads in slices — a day of rollups, a page of events —
 * each handed to `slice`, which in the agent is its TurnQueue: a 30-day report over a thousand
 * series is a hundred short slices between which probes run, never one long stall. The CLI
 * (`report --config`) reads the same way, straight through.
 */
import type { Store } from '../events/store.js';
import { FailureCollector, REPORT_EVENT_TYPES, type ReportEvent, type ReportInput, type SloInput } from './report-builder.js';
import { HOUR_MS, MINUTE_MS, type EnvHour, type RollupStore, type SeriesTotal } from './rollup-store.js';

/** Events from this long before the period are read too: a failure that began earlier decides an incident's time to detect. */
const LEAD_IN_MS = 86_400_000;
/** Hours of rollups per slice: a day is a few milliseconds at a thousand series. */
const HOURS_PER_SLICE = 24;
/** Events per slice: a few milliseconds of reading. */
const EVENTS_PER_PAGE = 2_000;
const TOP_PROBES = 5;
const PROBE_EVENTS = ['probe.down', 'probe.up'];

/** The journal as the reader needs it. */
export type ReportJournal = Pick<Store, 'events' | 'eventRows' | 'lastEventId'>;

export interface ReportSources {
  /** Undefined when no rollup database exists yet. */
  rollups: RollupStore | undefined;
  journal: ReportJournal;
  /** Runs one slice of reading; undefined when the agent is stopping (the report is abandoned). */
  slice: <T>(work: () => T) => Promise<T | undefined>;
}

export interface ReportRequest {
  now: number;
  sinceMs: number;
  timezone: string;
  environments: readonly string[];
  activeEnvironment: string | null;
  slo: readonly SloInput[];
  quietMs?: number;
  /** How many of the failing probes the report names (default 5). */
  topProbes?: number;
}

/** Thrown when the agent stops while a report is being read. */
export class ReportAbandoned extends Error {
  constructor() {
    super('greenlight is stopping');
  }
}

export async function readReportInput(sources: ReportSources, request: ReportRequest): Promise<ReportInput> {
  const { rollups, journal } = sources;
  const run = async <T>(work: () => T): Promise<T> => {
    const result = await sources.slice(work);
    if (result === undefined) throw new ReportAbandoned();
    return result;
  };
  const from = request.now - request.sinceMs;
  const toHour = Math.floor(request.now / HOUR_MS) + 1;
  // A period that starts inside an hour (since=1m, 90m): that hour's figures from its minute rows,
  // from the period's own minute on, not the whole hour (regression: a 1-minute report counted the
  // hour's every probe, and failures of a fault over before the period began).
  const fromMinute = Math.floor(from / MINUTE_MS);
  const startHour = Math.floor(from / HOUR_MS);
  // (Wrapped: a slice that answers undefined is one the stopping agent abandoned.)
  const partial =
    rollups && fromMinute % 60 !== 0
      ? (await run(() => ({ read: rollups.partialHour(fromMinute, Math.min((startHour + 1) * 60, Math.ceil(request.now / MINUTE_MS) + 1), startHour) }))).read
      : undefined;
  const fromHour = partial ? startHour + 1 : startHour;

  const envHours: EnvHour[] = [...(partial?.envHours ?? [])];
  const seriesTotals: SeriesTotal[] = [];
  if (rollups) {
    const failures = new Map<string, { probe: string; env: string; failures: number }>();
    for (const series of partial?.failing ?? []) failures.set(`${series.probe}@${series.env}`, { ...series });
    for (let hour = fromHour; hour < toHour; hour += HOURS_PER_SLICE) {
      const end = Math.min(hour + HOURS_PER_SLICE, toHour);
      const [rows, failing] = await run(() => [rollups.envHours(hour, end), rollups.failingSeries(hour, end)] as const);
      envHours.push(...rows);
      for (const series of failing) {
        const key = `${series.probe}@${series.env}`;
        const known = failures.get(key);
        if (known) known.failures += series.failures;
        else failures.set(key, { ...series });
      }
    }
    // Probe counts of the ones the report names only (most failures first; ties by name).
    const top = [...failures.values()].sort(byFailures).slice(0, request.topProbes ?? TOP_PROBES);
    const counts = new Map<string, number>();
    if (partial && top.length > 0)
      for (const total of await run(() => partial.totals(top)))
        counts.set(`${total.probe}@${total.env}`, (counts.get(`${total.probe}@${total.env}`) ?? 0) + total.count);
    for (let hour = fromHour; hour < toHour && top.length > 0; hour += HOURS_PER_SLICE) {
      const end = Math.min(hour + HOURS_PER_SLICE, toHour);
      for (const total of await run(() => rollups.seriesTotals(hour, end, top)))
        counts.set(`${total.probe}@${total.env}`, (counts.get(`${total.probe}@${total.env}`) ?? 0) + total.count);
    }
    for (const series of top) seriesTotals.push({ ...series, count: counts.get(`${series.probe}@${series.env}`) ?? 0 });
  }

  const start = await run(() => firstIdAtOrAfter(journal, new Date(from - LEAD_IN_MS).toISOString()));
  const until = new Date(request.now).toISOString();
  const events: ReportEvent[] = [];
  const failures = new FailureCollector();
  for (let since = start; ;) {
    // A page per slice, each row handled in it. A probe event comes with its columns only (its data
    // is left in the journal) and becomes part of a failure interval: they are most of a long
    // period's events, and the builder, which runs in one piece, then reads one interval per
    // failure instead of two events. A row is journaled, so it happened by now: one stamped ahead
    // of now (the clock was ahead, then set right) counts at now rather than not at all
    // (regression: such a rollback was in no report).
    const read = await run(() => {
      const rows = journal.eventRows({ since, limit: EVENTS_PER_PAGE, types: REPORT_EVENT_TYPES, withoutData: PROBE_EVENTS });
      for (const row of rows) {
        const time = row.time > until ? until : row.time;
        if (PROBE_EVENTS.includes(row.type)) {
          failures.add(time === row.time ? row : { ...row, time });
          continue;
        }
        events.push({
          id: row.id,
          time,
          type: row.type,
          severity: row.severity,
          env: row.env,
          probe: row.probe,
          rule: row.rule,
          data: row.data === '{}' ? {} : (JSON.parse(row.data) as Record<string, unknown>),
        });
      }
      return { count: rows.length, last: rows.at(-1)?.id };
    });
    if (read.count < EVENTS_PER_PAGE) break;
    since = read.last!;
  }

  const coverage = await run(() => ({
    rollupsFrom: rollups?.oldest(),
    eventsFrom: ((first) => (first ? Date.parse(first.time) : undefined))(journal.events({ since: 0, limit: 1 })[0]),
  }));
  return {
    now: request.now,
    sinceMs: request.sinceMs,
    timezone: request.timezone,
    environments: request.environments,
    activeEnvironment: request.activeEnvironment,
    envHours,
    seriesTotals,
    events,
    failures: failures.intervals,
    slo: request.slo,
    coverage,
    ...(request.quietMs !== undefined ? { quietMs: request.quietMs } : {}),
    ...(request.topProbes !== undefined ? { topProbes: request.topProbes } : {}),
  };
}

/** Most failures first, then by name: the order of the report's top failing probes. */
export function byFailures(a: { probe: string; env: string; failures: number }, b: { probe: string; env: string; failures: number }): number {
  return b.failures - a.failures || a.probe.localeCompare(b.probe) || a.env.localeCompare(b.env);
}

/**
 * The `since` to read the journal from so that the first event read is the first at or after
 * `time`: a binary search over ids (events are journaled in time order), some twenty indexed
 * lookups however long the journal, instead of a scan of its older part.
 */
export function firstIdAtOrAfter(journal: ReportJournal, time: string): number {
  const nextTime = (since: number) => journal.events({ since, limit: 1 })[0]?.time;
  let low = 0;
  let high = journal.lastEventId();
  const first = nextTime(0);
  if (first === undefined || first >= time) return 0;
  // Invariant: the event after `low` is before `time`; the event after `high` is at or after it (or there is none).
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const t = nextTime(middle);
    if (t === undefined || t >= time) high = middle;
    else low = middle;
  }
  return high;
}

/**
 * Gathers a report's input from the stores: the rollups of the period's hours and the journal's
 * events of the types a report reads. It reads in slices — a day of rollups, a page of events —
 * each handed to `slice`, which in the agent is its TurnQueue: a 30-day report over a thousand
 * series is a hundred short slices between which probes run, never one long stall. The CLI
 * (`report --config`) reads the same way, straight through.
 */
import type { Store } from '../store.js';
import { REPORT_EVENT_TYPES, type ReportEvent, type ReportInput, type SloInput } from './report-builder.js';
import { HOUR_MS, type EnvHour, type RollupStore, type SeriesTotal } from './rollup-store.js';

/** Events from this long before the period are read too: a failure that began earlier decides an incident's time to detect. */
const LEAD_IN_MS = 86_400_000;
/** Hours of rollups per slice: a day is a few milliseconds at a thousand series. */
const HOURS_PER_SLICE = 24;
const EVENTS_PER_PAGE = 1_000;

/** The journal as the reader needs it. */
export type ReportJournal = Pick<Store, 'events' | 'lastEventId'>;

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
  const fromHour = Math.floor(from / HOUR_MS);
  const toHour = Math.floor(request.now / HOUR_MS) + 1;

  const envHours: EnvHour[] = [];
  const totals = new Map<string, SeriesTotal>();
  if (rollups) {
    for (let hour = fromHour; hour < toHour; hour += HOURS_PER_SLICE) {
      const end = Math.min(hour + HOURS_PER_SLICE, toHour);
      const [rows, series] = await run(() => [rollups.envHours(hour, end), rollups.seriesTotals(hour, end)] as const);
      envHours.push(...rows);
      for (const total of series) {
        const key = `${total.probe}@${total.env}`;
        const known = totals.get(key);
        if (known) {
          known.count += total.count;
          known.failures += total.failures;
        } else totals.set(key, { ...total });
      }
    }
  }

  const start = await run(() => firstIdAtOrAfter(journal, new Date(from - LEAD_IN_MS).toISOString()));
  const until = new Date(request.now).toISOString();
  const events: ReportEvent[] = [];
  for (const type of eventTypePrefixes()) {
    let since = start;
    for (;;) {
      const page = await run(() => journal.events({ since, limit: EVENTS_PER_PAGE, type }));
      for (const event of page) if (event.time <= until && (REPORT_EVENT_TYPES as readonly string[]).includes(event.type)) events.push(event as unknown as ReportEvent);
      if (page.length < EVENTS_PER_PAGE || page.at(-1)!.time > until) break;
      since = page.at(-1)!.id;
    }
  }
  events.sort((a, b) => a.id - b.id);

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
    seriesTotals: [...totals.values()],
    events,
    slo: request.slo,
    coverage,
    ...(request.quietMs !== undefined ? { quietMs: request.quietMs } : {}),
  };
}

/** The journal queries that cover REPORT_EVENT_TYPES: a type or a prefix each. */
function eventTypePrefixes(): string[] {
  const prefixes = new Set<string>();
  for (const type of REPORT_EVENT_TYPES) prefixes.add(type.startsWith('probe.') ? 'probe' : type.startsWith('promote.') ? 'promote' : type);
  return [...prefixes];
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

/**
 * Maintenance windows: "we are working on green until 17:00". Recurring ones come from the config
 * (`alerts.maintenance`: a start time, days, a duration, a time zone — Gatus's model); ad-hoc ones
 * from the API and `greenlight maintenance start --env green --for 2h --reason …`.
 *
 * What a window does, exactly: while it is open, notifications of alerts whose `env` label is its
 * environment are muted — and only while that environment is idle. It never weakens the
 * protection of the live environment:
 * - probing, windows, rules, rollbacks, flag presets and every event go on unchanged;
 * - a window on the environment that is live (or becomes live: a rollback, a promotion) mutes
 *   nothing while it is live;
 * - alerts about the live environment carry its name (a rollback held because the idle one is in
 *   maintenance is an alert about the live one), so they always go out; one that fired while its
 *   environment was live stays unmuted after traffic leaves it (AlertLifecycle judges that).
 *
 * Invariants: at most one ad-hoc window per environment is open (starting another replaces it);
 * an ad-hoc window lasts at most MAX_WINDOW_MS; stopping ends the ad-hoc window and cuts short the
 * recurring occurrence open now (the next occurrence opens as scheduled).
 */
import { randomUUID } from 'node:crypto';
import { codeOfStatus, GreenlightError } from '../../config/errors.js';
import { WEEKDAYS, type MaintenanceWindowConfig } from '../../config/schema.js';
import { instantOf, localTimeOf } from '../promote/deploy-window.js';

/** The longest ad-hoc window: one forgotten for a year would mute an environment for a year. */
export const MAX_WINDOW_MS = 7 * 86_400_000;
/** Ended ad-hoc windows and cut occurrences are kept this long, for the record. */
export const WINDOW_RETENTION_MS = 7 * 86_400_000;

/** What the store keeps: an ad-hoc window, or a recurring occurrence someone stopped early. */
export interface MaintenanceRecord {
  id: string;
  kind: 'ad-hoc' | 'cut';
  env: string;
  /** ISO-8601; for a cut, the start of the occurrence it cuts. */
  startsAt: string;
  /** ISO-8601; for a cut, the end of the occurrence it cuts. */
  endsAt: string;
  reason: string;
  createdBy: string;
  /** Who ended it before its end. */
  endedBy?: string;
  /** A cut: the recurring window's name. */
  window?: string;
  /** A cut: when it was cut (ISO-8601). */
  cutAt?: string;
}

/** A window open now or to come, as the API shows it. */
export interface MaintenanceView {
  id: string;
  /** The recurring window's name; null for an ad-hoc one. */
  name: string | null;
  kind: 'ad-hoc' | 'recurring';
  env: string;
  startsAt: string;
  endsAt: string;
  reason: string;
  createdBy: string | null;
}

/** A window request that cannot be honoured. */
export class MaintenanceError extends GreenlightError {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(codeOfStatus(status), message);
  }
}

interface Occurrence {
  window: MaintenanceWindowConfig;
  start: number;
  end: number;
}

export class MaintenanceBook {
  readonly #now: () => number;
  readonly #save: (record: MaintenanceRecord) => void;
  readonly #remove: (id: string) => void;
  #windows: readonly MaintenanceWindowConfig[] = [];
  #timezone = 'UTC';
  readonly #records = new Map<string, MaintenanceRecord>();

  constructor(options: { now: () => number; save: (record: MaintenanceRecord) => void; remove: (id: string) => void }) {
    this.#now = options.now;
    this.#save = options.save;
    this.#remove = options.remove;
  }

  /** The recurring windows of the config, and the time zone of those that name none. */
  configure(windows: readonly MaintenanceWindowConfig[], timezone: string): void {
    this.#windows = windows;
    this.#timezone = timezone;
  }

  /** The stored windows, in place of those held (at start, or a cluster takeover). */
  restore(records: readonly MaintenanceRecord[]): void {
    this.#records.clear();
    for (const record of records) this.#records.set(record.id, record);
  }

  /** The windows open now, on `env` or on every environment. */
  open(env?: string): MaintenanceView[] {
    const now = this.#now();
    const views: MaintenanceView[] = [];
    for (const record of this.#records.values()) {
      if (record.kind === 'ad-hoc' && (env === undefined || record.env === env) && Date.parse(record.startsAt) <= now && now < Date.parse(record.endsAt))
        views.push(adHocView(record));
    }
    for (const occurrence of this.#occurrences(now)) {
      if (occurrence.start <= now && now < occurrence.end && (env === undefined || occurrence.window.env === env) && !this.#cut(occurrence))
        views.push(recurringView(occurrence));
    }
    return views.sort((a, b) => a.startsAt.localeCompare(b.startsAt));
  }

  /** The next opening of each recurring window that is not open now. */
  upcoming(): MaintenanceView[] {
    const now = this.#now();
    const next = new Map<string, Occurrence>();
    for (const occurrence of this.#occurrences(now)) {
      if (occurrence.start <= now) continue;
      const known = next.get(occurrence.window.name);
      if (!known || occurrence.start < known.start) next.set(occurrence.window.name, occurrence);
    }
    return [...next.values()].map(recurringView).sort((a, b) => a.startsAt.localeCompare(b.startsAt));
  }

  /** Open an ad-hoc window on `env` from now until `endsAt`; one already open there is replaced (returned as `replaced`, ending now). */
  start(request: { env: string; endsAt: number; reason: string; by: string }): { window: MaintenanceView; replaced: MaintenanceView | undefined } {
    const now = this.#now();
    if (!(request.endsAt > now)) throw new MaintenanceError(400, 'the window must end in the future');
    if (request.endsAt - now > MAX_WINDOW_MS)
      throw new MaintenanceError(
        400,
        `a maintenance window lasts at most 7d (a forgotten one would mute ${request.env} for as long); start another when it ends, or configure a recurring one under alerts.maintenance`,
      );
    const previous = [...this.#records.values()].find(
      (record) => record.kind === 'ad-hoc' && record.env === request.env && Date.parse(record.startsAt) <= now && now < Date.parse(record.endsAt),
    );
    let replaced: MaintenanceView | undefined;
    if (previous) {
      const ended = { ...previous, endsAt: new Date(now).toISOString(), endedBy: `${request.by} (replaced)` };
      this.#records.set(ended.id, ended);
      this.#save(ended);
      replaced = adHocView(ended);
    }
    const record: MaintenanceRecord = {
      id: randomUUID(),
      kind: 'ad-hoc',
      env: request.env,
      startsAt: new Date(now).toISOString(),
      endsAt: new Date(request.endsAt).toISOString(),
      reason: request.reason,
      createdBy: request.by,
    };
    this.#records.set(record.id, record);
    this.#save(record);
    return { window: adHocView(record), replaced };
  }

  /** End every window open on `env` now: the ad-hoc one, and the recurring occurrence (until its next). What it ended, each ending now. */
  stop(env: string, by: string): MaintenanceView[] {
    const now = this.#now();
    const stamp = new Date(now).toISOString();
    const ended: MaintenanceView[] = [];
    for (const record of [...this.#records.values()]) {
      if (record.kind !== 'ad-hoc' || record.env !== env || !(Date.parse(record.startsAt) <= now && now < Date.parse(record.endsAt))) continue;
      const done = { ...record, endsAt: stamp, endedBy: by };
      this.#records.set(done.id, done);
      this.#save(done);
      ended.push(adHocView(done));
    }
    for (const occurrence of this.#occurrences(now)) {
      if (occurrence.window.env !== env || !(occurrence.start <= now && now < occurrence.end) || this.#cut(occurrence)) continue;
      const cut: MaintenanceRecord = {
        id: randomUUID(),
        kind: 'cut',
        env,
        startsAt: new Date(occurrence.start).toISOString(),
        endsAt: new Date(occurrence.end).toISOString(),
        reason: occurrence.window.reason,
        createdBy: by,
        window: occurrence.window.name,
        cutAt: stamp,
      };
      this.#records.set(cut.id, cut);
      this.#save(cut);
      ended.push({ ...recurringView(occurrence), endsAt: stamp });
    }
    return ended;
  }

  /** The next instant a window opens or closes after now, if any within a week. */
  nextChange(): number | undefined {
    const now = this.#now();
    let next: number | undefined;
    const consider = (at: number) => {
      if (at > now && (next === undefined || at < next)) next = at;
    };
    for (const record of this.#records.values()) if (record.kind === 'ad-hoc') [Date.parse(record.startsAt), Date.parse(record.endsAt)].forEach(consider);
    for (const occurrence of this.#occurrences(now)) [occurrence.start, occurrence.end].forEach(consider);
    return next;
  }

  /** Drop ended records older than WINDOW_RETENTION_MS. */
  prune(): void {
    const cutoff = this.#now() - WINDOW_RETENTION_MS;
    for (const [id, record] of this.#records) {
      if (Date.parse(record.endsAt) >= cutoff) continue;
      this.#records.delete(id);
      this.#remove(id);
    }
  }

  /** Occurrences of the recurring windows that start within 8 days either side of `now`. */
  #occurrences(now: number): Occurrence[] {
    const found: Occurrence[] = [];
    for (const window of this.#windows) {
      const timezone = window.timezone ?? this.#timezone;
      const today = localTimeOf(now, timezone);
      // A window lasts at most 7 days: one that started 8 local days ago is over.
      for (let offset = -8; offset <= 8; offset++) {
        const date = new Date(Date.UTC(today.year, today.month - 1, today.day + offset));
        if (!window.days.includes(WEEKDAYS[date.getUTCDay()]!)) continue;
        const start = instantOf(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), window.start, timezone);
        found.push({ window, start, end: start + window.duration });
      }
    }
    return found;
  }

  #cut(occurrence: Occurrence): boolean {
    const start = new Date(occurrence.start).toISOString();
    for (const record of this.#records.values())
      if (record.kind === 'cut' && record.window === occurrence.window.name && record.startsAt === start) return true;
    return false;
  }
}

function adHocView(record: MaintenanceRecord): MaintenanceView {
  return {
    id: record.id,
    name: null,
    kind: 'ad-hoc',
    env: record.env,
    startsAt: record.startsAt,
    endsAt: record.endsAt,
    reason: record.reason,
    createdBy: record.createdBy,
  };
}

function recurringView(occurrence: Occurrence): MaintenanceView {
  const start = new Date(occurrence.start).toISOString();
  return {
    id: `${occurrence.window.name}@${start}`,
    name: occurrence.window.name,
    kind: 'recurring',
    env: occurrence.window.env,
    startsAt: start,
    endsAt: new Date(occurrence.end).toISOString(),
    reason: occurrence.window.reason,
    createdBy: null,
  };
}

/**
 * Deploy windows: when a promotion may run. Feature releases only inside the `feature` windows
 * (default weekdays 16:00-18:00 New York time, after the market close), major updates inside the
 * `major` ones (default the weekend). Pure: the caller passes the instant; local times are
 * computed in the windows' zone with Intl, so daylight-saving changes are the zone database's.
 */
import { WEEKDAYS, type DeployWindowConfig, type DeployWindowsConfig } from '../../config/schema.js';

export type ReleaseKind = 'feature' | 'major';

export interface WindowDecision {
  open: boolean;
  kind: ReleaseKind;
  timezone: string;
  /** The local time judged: `Sat 2026-11-28 03:04 America/New_York`. */
  localTime: string;
  /** The window that is open now, as configured: `mon-fri 16:00-18:00`. */
  window: string | null;
  /** When the next window of this kind opens (ISO instant), when closed; null if none is configured. */
  nextOpen: string | null;
  /** The same instant in local time, for people. */
  nextOpenLocal: string | null;
  /** One line: why open or closed, and when it opens next. */
  detail: string;
}

interface LocalTime {
  weekday: number;
  year: number;
  month: number;
  day: number;
  minutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time at `instant` in `timezone`. */
export function localTimeOf(instant: number, timezone: string): LocalTime {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
    formatters.set(timezone, formatter);
  }
  const parts = Object.fromEntries(formatter.formatToParts(instant).map((part) => [part.type, part.value]));
  return {
    weekday: WEEKDAYS.indexOf(parts.weekday!.toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]),
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/**
 * The first instant at or after local `year-month-day` + `minutes` in `timezone`. A time that does
 * not exist (inside a spring-forward gap) gives the first instant after the gap.
 */
export function instantOf(year: number, month: number, day: number, minutes: number, timezone: string): number {
  const wanted = Date.UTC(year, month - 1, day, 0, minutes);
  // Two passes of "wall clock minus offset" settle on the right offset except inside a gap.
  let guess = wanted;
  for (let pass = 0; pass < 2; pass++) guess = wanted - offsetAt(guess, timezone);
  if (wallClock(guess, timezone) === wanted) return guess;
  // Inside a gap: the answer lies between the readings with the offsets before and after it.
  // Binary search, by the minute, for the first instant whose wall clock is at or past `wanted`.
  const offsets = [offsetAt(wanted - 86_400_000, timezone), offsetAt(wanted + 86_400_000, timezone)];
  let low = Math.min(...offsets.map((o) => wanted - o));
  let high = Math.max(...offsets.map((o) => wanted - o));
  while (high - low > 60_000) {
    const middle = low + Math.floor((high - low) / 120_000) * 60_000;
    if (wallClock(middle, timezone) >= wanted) high = middle;
    else low = middle;
  }
  return high;
}

/** The local wall-clock time at `instant`, as if it were UTC (minutes resolution). */
function wallClock(instant: number, timezone: string): number {
  const local = localTimeOf(instant, timezone);
  return Date.UTC(local.year, local.month - 1, local.day, 0, local.minutes);
}

/** The zone's offset from UTC at `instant`, in ms (New York in winter: -5 h). */
function offsetAt(instant: number, timezone: string): number {
  return wallClock(instant, timezone) - Math.floor(instant / 60_000) * 60_000;
}

/** Whether a release of `kind` may be promoted at `now`; when not, when the next window opens. */
export function decideWindow(config: DeployWindowsConfig, fallbackTimezone: string, kind: ReleaseKind, now: number): WindowDecision {
  const timezone = config.timezone ?? fallbackTimezone;
  const windows = config[kind];
  const local = localTimeOf(now, timezone);
  const localTime = `${formatLocal(local)} ${timezone}`;
  if (!config.enabled) {
    return {
      open: true,
      kind,
      timezone,
      localTime,
      window: null,
      nextOpen: null,
      nextOpenLocal: null,
      detail: 'deploy windows are disabled (deployWindows.enabled: false)',
    };
  }
  const current = windows.find((w) => w.days.includes(WEEKDAYS[local.weekday]!) && local.minutes >= w.from && local.minutes < w.to);
  if (current) {
    return {
      open: true,
      kind,
      timezone,
      localTime,
      window: describeWindow(current),
      nextOpen: null,
      nextOpenLocal: null,
      detail: `${kind} window ${describeWindow(current)} is open (${localTime})`,
    };
  }
  const next = nextOpening(windows, timezone, now);
  const list = windows.map(describeWindow).join(', ') || 'none configured';
  const nextLocal = next === undefined ? null : `${formatLocal(localTimeOf(next, timezone))} ${timezone}`;
  return {
    open: false,
    kind,
    timezone,
    localTime,
    window: null,
    nextOpen: next === undefined ? null : new Date(next).toISOString(),
    nextOpenLocal: nextLocal,
    detail: `outside the ${kind} release windows (${list}) at ${localTime}; ${nextLocal ? `the next opens ${nextLocal}` : 'no window is configured'}`,
  };
}

/** The first instant after `now` at which one of `windows` is open. */
export function nextOpening(windows: readonly DeployWindowConfig[], timezone: string, now: number): number | undefined {
  if (windows.length === 0) return undefined;
  const today = localTimeOf(now, timezone);
  let best: number | undefined;
  // Eight local days cover every weekday once more than a week; dates roll over through Date.UTC.
  for (let offset = 0; offset <= 8; offset++) {
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + offset));
    const weekday = WEEKDAYS[date.getUTCDay()]!;
    for (const window of windows) {
      if (!window.days.includes(weekday)) continue;
      const opens = instantOf(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), window.from, timezone);
      // A window wholly inside a spring-forward gap (01:00-02:00 on the night 01:00 becomes 02:00)
      // has no instant of its own: it does not open that day (decideWindow would say it closed).
      if (localTimeOf(opens, timezone).minutes >= window.to) continue;
      if (opens > now && (best === undefined || opens < best)) best = opens;
    }
    if (best !== undefined) break;
  }
  return best;
}

export function describeWindow(window: DeployWindowConfig): string {
  return `${describeDays(window.days)} ${clock(window.from)}-${clock(window.to)}`;
}

function describeDays(days: readonly string[]): string {
  const sorted = WEEKDAYS.filter((d) => days.includes(d));
  const key = sorted.join(',');
  if (key === 'mon,tue,wed,thu,fri') return 'mon-fri';
  if (key === 'sun,sat') return 'sat-sun';
  if (sorted.length === 7) return 'daily';
  return sorted.join(',');
}

function clock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

function formatLocal(local: LocalTime): string {
  const day = WEEKDAYS[local.weekday]!;
  return `${day[0]!.toUpperCase()}${day.slice(1)} ${local.year}-${String(local.month).padStart(2, '0')}-${String(local.day).padStart(2, '0')} ${clock(local.minutes)}`;
}

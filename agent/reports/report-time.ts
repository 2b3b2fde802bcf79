/**
 * Time as a report shows it: the period a `since` names, and dates, weeks and clock times on the
 * desk's clock (the config's `timezone`), so that "Monday" is New York's Monday, not UTC's.
 */
import { formatDuration, parseDuration } from '../../config/units.js';

/** The shortest and longest period a report covers. */
export const MIN_SINCE_MS = 60_000;
export const MAX_SINCE_MS = 400 * 86_400_000;
export const DEFAULT_SINCE = '7d';

/** `7d` → milliseconds, or a message naming what is wrong (for a 400 or a usage error). */
export function parseSince(text: string): { ms: number } | { error: string } {
  const ms = parseDuration(text);
  if (ms === undefined || !Number.isFinite(ms)) return { error: `since must be a duration such as 24h, 7d or 30d, not ${JSON.stringify(text.slice(0, 40))}` };
  if (ms < MIN_SINCE_MS || ms > MAX_SINCE_MS)
    return { error: `since must be from ${formatDuration(MIN_SINCE_MS)} to ${formatDuration(MAX_SINCE_MS)}, not ${JSON.stringify(text.slice(0, 40))}` };
  return { ms };
}

/** Local dates, weekdays and times in one time zone; dates are cached per hour (a report asks for thousands). */
export class LocalClock {
  readonly timezone: string;
  readonly #parts: Intl.DateTimeFormat;
  readonly #dates = new Map<number, string>();

  constructor(timezone: string) {
    this.timezone = timezone;
    this.#parts = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
      hourCycle: 'h23',
    });
  }

  /** `2026-11-23` */
  date(ms: number): string {
    const hour = Math.floor(ms / 3_600_000);
    let date = this.#dates.get(hour);
    if (date === undefined) {
      // The hour's start and end share a date in every zone whose offset is whole hours; in the
      // others (India, +5:30) the date of the hour's middle is used: days round to the hour.
      const p = this.#fields(hour * 3_600_000 + 1_800_000);
      date = `${p.year}-${p.month}-${p.day}`;
      if (this.#dates.size > 20_000) this.#dates.clear();
      this.#dates.set(hour, date);
    }
    return date;
  }

  /** `Mon 2026-11-23 08:00` */
  stamp(ms: number): string {
    const p = this.#fields(ms);
    return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }

  /** `Mon 11-23 08:00`: within a report whose period names the year. */
  short(ms: number): string {
    const p = this.#fields(ms);
    return `${p.weekday} ${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }

  #fields(ms: number): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'weekday', string> {
    const out: Record<string, string> = {};
    for (const part of this.#parts.formatToParts(ms)) out[part.type] = part.value;
    return out as Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'weekday', string>;
  }
}

/** The ISO week of a calendar date: `{week: '2026-W48', monday: '2026-11-23'}` (weeks start on Monday). */
export function isoWeek(date: string): { week: string; monday: string } {
  const day = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)));
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const monday = day - weekday * 86_400_000;
  // The ISO year is the year of the week's Thursday.
  const thursday = new Date(monday + 3 * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return { week: `${year}-W${String(week).padStart(2, '0')}`, monday: new Date(monday).toISOString().slice(0, 10) };
}

/** Calendar dates from `first` to `last`, both included (`YYYY-MM-DD`). */
export function datesBetween(first: string, last: string): string[] {
  const dates: string[] = [];
  const end = Date.parse(`${last}T00:00:00Z`);
  for (let day = Date.parse(`${first}T00:00:00Z`); day <= end && dates.length <= 500; day += 86_400_000) dates.push(new Date(day).toISOString().slice(0, 10));
  return dates;
}

/** A duration as a person reads it: `850ms`, `4.2s`, `3m 12s`, `2h 05m`, `3d 4h`. */
export function humanDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ${String(Math.floor((ms % 60_000) / 1_000)).padStart(2, '0')}s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h ${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
  return `${Math.floor(ms / 86_400_000)}d ${Math.floor((ms % 86_400_000) / 3_600_000)}h`;
}

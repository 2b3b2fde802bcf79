/** Parsing of the human units used in the config: durations (250ms, 5s, 2m, 1h, 30d) and byte sizes (1MiB). */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for `250ms`, `5s`, `2m`, `1h`, `30d`; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_MS[match[2]!]!;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** What parseTimestamp takes, for the message that refuses anything else. */
export const TIMESTAMP_FORM = 'a time that exists, in ISO-8601 with its offset, such as 2026-03-14T17:00:00Z or 2026-03-14T18:00+01:00';

/**
 * Epoch milliseconds of an RFC 3339 time with its offset (`2026-03-14T17:00:00Z`,
 * `2026-03-14T18:00+01:00`), as Alertmanager's API takes them; undefined for anything else. Date.parse
 * alone reads a day or an hour that does not exist as another (`2026-02-30` as March 2, `T24:00`
 * as the next day) and a time without an offset in the zone of whichever machine reads it.
 */
export function parseTimestamp(text: string): number | undefined {
  const match = TIMESTAMP.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second = 0, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)));
  const date = new Date(Date.UTC(year!, month! - 1, day!));
  if (date.getUTCMonth() !== month! - 1 || date.getUTCDate() !== day || hour! > 23 || minute! > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59)
    return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? at : undefined;
}

/**
 * The shortest window greenlight keeps (a sliding window, an SLO's period or burn-rate window): 30
 * time buckets of the shortest probe interval, 10ms. Below it a bucket counts nothing, and far
 * below it (`0s`) the ring's clock arithmetic never ends.
 */
export const MIN_WINDOW_MS = 300;

/** `1500` → `1.5s`: the shortest unit that keeps the figure readable. */
export function formatDuration(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Number((ms / 1_000).toFixed(3))}s`;
  return `${Number(ms.toFixed(3))}ms`;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/;
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KB: 1_000,
  KiB: 1_024,
  MB: 1_000_000,
  MiB: 1_048_576,
  GB: 1_000_000_000,
  GiB: 1_073_741_824,
};

/** Bytes for `1MiB`, `512KiB`, `2000`; undefined for anything else. */
export function parseByteSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * SIZE_BYTES[match[2] ?? 'B']!);
}

/**
 * Whether a key may be a value that lost its colon (`url https://hooks.slack.com/services/…`, a
 * token run onto the next key's line): it holds a space, a URL or an `@`, or is long. Such a key
 * is never quoted in a message, as it may be a secret; the line number says where it is.
 */
export function mayHoldValue(key: string): boolean {
  return /\s|:\/\/|@/.test(key) || key.length > 64;
}

/** What a message says in place of a key that mayHoldValue. */
export const HIDDEN_KEY = 'a key with a space or a URL in it, not shown';

/** A value as a config message quotes it: JSON where it has a JSON form (`"5x"`, `42`), else as text. */
export function quote(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/**
 * The words every receiver uses for a notice, so Slack, Discord, PagerDuty and the webhook tell
 * a person the same thing: severity and status first, then rule, environment, summary, the
 * deciding figures, what greenlight did, and where to look.
 */
import type { Severity } from '../events/events.js';
import type { AlertNotice } from './alert-receiver.js';

/** `FIRING` or `RESOLVED`. */
export function statusWord(notice: AlertNotice): 'FIRING' | 'RESOLVED' {
  return notice.status === 'firing' ? 'FIRING' : 'RESOLVED';
}

/** 🔴 critical, 🟠 warning, 🔵 info. */
export function severityEmoji(severity: Severity): string {
  return SEVERITY_EMOJI[severity];
}

/** The severity's emoji while firing; ✅ once resolved. */
export function statusEmoji(notice: Pick<AlertNotice, 'status' | 'severity'>): string {
  return notice.status === 'resolved' ? '✅' : severityEmoji(notice.severity);
}

const SEVERITY_EMOJI: Record<Severity, string> = { critical: '🔴', warning: '🟠', info: '🔵' };

/** `error-ratio-critical on blue`, or the rule alone when the notice is about greenlight itself. */
export function subject(notice: AlertNotice): string {
  return notice.env === null ? notice.rule : `${notice.rule} on ${notice.env}`;
}

/** `🔴 FIRING: error-ratio-critical on blue` */
export function title(notice: AlertNotice): string {
  return `${statusEmoji(notice)} ${statusWord(notice)}: ${subject(notice)}`;
}

/** One line for notifications and pagers: `🔴 [FIRING · CRITICAL] error-ratio-critical on blue: error ratio 42% …` */
export function headline(notice: AlertNotice): string {
  return `${statusEmoji(notice)} [${statusWord(notice)} · ${notice.severity.toUpperCase()}] ${subject(notice)}: ${notice.summary}`;
}

/** How long a resolved notice was firing (`12m 5s`); undefined while firing or when a time is unreadable. */
export function firedFor(notice: AlertNotice): string | undefined {
  if (notice.status !== 'resolved' || notice.endsAt === undefined) return undefined;
  const ms = Date.parse(notice.endsAt) - Date.parse(notice.startsAt);
  return Number.isFinite(ms) && ms >= 0 ? humanDuration(ms) : undefined;
}

/** `2h 3m`, `12m 5s`, `42s`, `350ms`: the largest unit and the next one when it is not zero. */
export function humanDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ];
  const first = units.findIndex(([, size]) => ms >= size);
  const [bigUnit, bigSize] = units[first]!;
  const big = Math.floor(ms / bigSize);
  const next = units[first + 1];
  const small = next ? Math.floor((ms - big * bigSize) / next[1]) : 0;
  return small > 0 && next ? `${big}${bigUnit} ${small}${next[0]}` : `${big}${bigUnit}`;
}

/**
 * The deciding figures as lines: `errorRatio(window=300000): 0.42 (> 0.1)` for the facts of a
 * rule's figures, `name: value` for plain figures.
 */
export function figureLines(figures: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(figures)) {
    if (value === undefined || value === null) continue;
    if (name === 'facts' && Array.isArray(value) && value.every(isFact)) {
      for (const fact of value) lines.push(factLine(fact));
    } else {
      lines.push(`${name}: ${formatValue(value)}`);
    }
  }
  return lines;
}

/** `team=desk, service=alphastack` */
export function labelLine(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}

/** At most `max` UTF-16 units, ending in `…` when cut, never splitting a character. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let result = '';
  for (const char of text) {
    if (result.length + char.length > max - 1) break;
    result += char;
  }
  return `${result}…`;
}

interface Fact {
  fact: string;
  params?: Record<string, unknown>;
  operator?: string;
  value?: unknown;
  observed?: unknown;
}

function isFact(value: unknown): value is Fact {
  return typeof value === 'object' && value !== null && typeof (value as Fact).fact === 'string';
}

const OPERATORS: Record<string, string> = {
  greaterThan: '>',
  greaterThanInclusive: '≥',
  lessThan: '<',
  lessThanInclusive: '≤',
  equal: '=',
  notEqual: '≠',
};

function factLine(fact: Fact): string {
  const params = Object.entries(fact.params ?? {})
    .map(([name, value]) => `${name}=${formatValue(value)}`)
    .join(', ');
  const threshold = fact.operator === undefined ? '' : ` (${OPERATORS[fact.operator] ?? fact.operator} ${formatValue(fact.value)})`;
  return `${fact.fact}${params ? `(${params})` : ''}: ${formatValue(fact.observed)}${threshold}`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  if (typeof value === 'string') return value;
  if (value === undefined) return 'n/a';
  return truncate(JSON.stringify(value) ?? String(value), 200);
}

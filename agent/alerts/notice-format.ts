/**
 * The words every receiver uses for a notice, so Slack, Discord, PagerDuty and the webhook tell
 * a person the same thing: severity and status first, then rule, environment, summary, the
 * deciding figures, what greenlight did, and where to look.
 */
import type { Severity } from '../events/events.js';
import type { AlertGroupNotice, AlertNotice } from './alert-receiver.js';

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

// --- Groups: one notification carrying the alerts of one group (README, "Alert lifecycle").

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** The most severe of the group's firing alerts (of all of them once every one has resolved). */
export function groupSeverity(group: AlertGroupNotice): Severity {
  const firing = group.alerts.filter((alert) => alert.status === 'firing');
  return (firing.length > 0 ? firing : group.alerts).reduce<Severity>((worst, alert) => (RANK[alert.severity] > RANK[worst] ? alert.severity : worst), 'info');
}

/** `live-universe-failing on blue`, or `3 alerts on blue` (by the group's labels when it has no env). */
export function groupSubject(group: AlertGroupNotice): string {
  if (group.alerts.length === 1) return subject(group.alerts[0]!);
  const where = group.labels.env ? ` on ${group.labels.env}` : labelLine(group.labels) ? ` (${labelLine(group.labels)})` : '';
  return `${group.alerts.length} alerts${where}`;
}

/** `FIRING`, `RESOLVED`, `ESCALATION L2 · FIRING`, `REMINDER · FIRING`. */
export function groupStatusWord(group: AlertGroupNotice): string {
  const status = group.status === 'firing' ? 'FIRING' : 'RESOLVED';
  if (group.escalation) return `ESCALATION L${group.escalation.level} · ${status}`;
  return group.repeat ? `REMINDER · ${status}` : status;
}

/** `🔴 ESCALATION L2 · FIRING: 3 alerts on blue` */
export function groupTitle(group: AlertGroupNotice): string {
  return `${statusEmoji({ status: group.status, severity: groupSeverity(group) })} ${groupStatusWord(group)}: ${groupSubject(group)}`;
}

/** One line: `🔴 [FIRING · CRITICAL] 3 alerts on blue: live-universe-failing, rollback-inconclusive, … (1 resolved)` */
export function groupHeadline(group: AlertGroupNotice): string {
  if (group.alerts.length === 1 && !group.escalation && !group.repeat) return headline(group.alerts[0]!);
  const firing = group.alerts.filter((alert) => alert.status === 'firing');
  const resolved = group.alerts.length - firing.length;
  const rules = [...new Set(firing.map((alert) => alert.rule))];
  const list =
    rules.length > 0 ? `: ${rules.slice(0, 5).join(', ')}${rules.length > 5 ? ', …' : ''}` : group.alerts.length === 1 ? `: ${group.alerts[0]!.summary}` : '';
  const ended = resolved > 0 && firing.length > 0 ? ` (${resolved} resolved)` : '';
  return `${statusEmoji({ status: group.status, severity: groupSeverity(group) })} [${groupStatusWord(group)} · ${groupSeverity(group).toUpperCase()}] ${groupSubject(group)}${list}${ended}`;
}

/** What the lifecycle says of an alert's incident: `acknowledged by alice`, `escalation level 2`. */
export function lifecycleLine(notice: AlertNotice): string | undefined {
  const parts: string[] = [];
  if (notice.incident) parts.push(`incident ${notice.incident}`);
  if (notice.acknowledgedBy) parts.push(`acknowledged by ${notice.acknowledgedBy}`);
  else if (notice.escalationLevel !== undefined && notice.escalationLevel > 1) parts.push(`escalation level ${notice.escalationLevel}`);
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

/** What to type to acknowledge the group's unacknowledged incidents, when any. */
export function ackHint(group: AlertGroupNotice): string | undefined {
  const incidents = [
    ...new Set(group.alerts.filter((alert) => alert.status === 'firing' && alert.incident && !alert.acknowledgedBy).map((alert) => alert.incident!)),
  ];
  return incidents.length > 0 ? `to acknowledge: ${incidents.map((incident) => `greenlight ack ${incident}`).join('; ')}` : undefined;
}

/**
 * The report as Markdown that reads the same in a Slack post, a Discord message and a GitHub
 * issue: a headline list first (what a person reads in the channel), then the tables as
 * fixed-width text in code blocks (chat apps render no Markdown tables, and every one of them
 * renders a code block), then lists. Names are config names (letters, digits, - and _); free
 * text (a rollback's reason) is quoted on one line and cut short.
 */
import type { Report } from './report-builder.js';
import { count, latency, percent, rate } from './report-format.js';
import { humanDuration, LocalClock } from './report-time.js';

export interface MarkdownOptions {
  /** A link to the full (HTML) report, added at the end. */
  link?: string | undefined;
}

export function renderMarkdown(report: Report, options: MarkdownOptions = {}): string {
  const clock = new LocalClock(report.period.timezone);
  const at = (iso: string) => clock.short(Date.parse(iso));
  const lines: string[] = [];
  lines.push(`## greenlight report: the last ${report.period.since}`);
  lines.push(
    `${clock.stamp(Date.parse(report.period.from))} → ${clock.stamp(Date.parse(report.period.to))} ${report.period.timezone}${report.activeEnvironment ? ` · live: **${report.activeEnvironment}**` : ''}`,
  );
  lines.push('');

  const d = report.deployments;
  const s = report.summary;
  lines.push(
    `- **Deployments:** ${d.total === 0 ? 'no promotion ended' : `${d.total} ${d.total === 1 ? 'promotion' : 'promotions'}: ${d.succeeded} succeeded, ${d.failed} failed, ${d.rolledBack} rolled back: **${rate(d.successRate)} success**`}${d.unfinished ? ` (${d.unfinished} unfinished)` : ''}`,
  );
  lines.push(
    `- **Rollbacks:** ${s.rollbacks.count}${s.rollbacks.count ? `; median time to detect ${humanDuration(s.rollbacks.medianDetectMs)}, to switch ${humanDuration(s.rollbacks.medianSwitchMs)}` : ''}`,
  );
  lines.push(
    `- **Incidents:** ${s.incidents.total}${s.incidents.total ? ` (${s.incidents.critical} critical, ${s.incidents.warning} warning), ${s.incidents.open} open; median time to resolve ${humanDuration(s.incidents.medianResolveMs)}` : ''}`,
  );
  lines.push(`- **Probes:** ${count(s.probes)}${s.probes ? `, ${percent(s.errorRatio)} failed` : ''}`);
  for (const slo of report.slo) {
    lines.push(
      `- **SLO ${slo.name}** (${percent(slo.objective, objectiveDigits(slo.objective))} over ${humanDays(slo.periodMs)}): ${slo.budgetRemaining === null ? 'no probes counted yet' : `${percent(Math.max(slo.budgetRemaining, -9.99), 0)} of the error budget left${slo.budgetRemaining < 0 ? ' (overspent)' : ''}`}`,
    );
  }

  lines.push('', '### Daily performance');
  const dayRows: string[][] = [];
  for (const [env, figures] of Object.entries(report.environments)) {
    for (const day of figures.days)
      dayRows.push([env, `${weekday(day.date)} ${day.date}`, count(day.probes), percent(day.errorRatio), latency(day.p50Ms), latency(day.p95Ms)]);
  }
  lines.push(
    dayRows.length === 0
      ? 'No probe figures in this period.'
      : codeTable(['env', 'date', 'probes', 'failed', 'p50', 'p95'], dayRows, [false, false, true, true, true, true]),
  );

  lines.push('', '### Deployments per week');
  lines.push(
    codeTable(
      ['week', 'from', 'total', 'ok', 'failed', 'rolled back', 'success'],
      d.weeks.map((w) => [w.week, w.from, String(w.total), String(w.succeeded), String(w.failed), String(w.rolledBack), rate(w.successRate)]),
      [false, false, true, true, true, true, true],
    ),
  );
  const notOk = d.promotions.filter((p) => p.outcome !== 'succeeded');
  for (const p of notOk)
    lines.push(
      `- ${p.outcome === 'rolledBack' ? '↩️' : p.outcome === 'failed' ? '❌' : '⏳'} ${at(p.startedAt)} ${p.from} → ${p.to} (${p.id}): ${p.outcome === 'unfinished' ? 'unfinished' : `${p.outcome === 'rolledBack' ? 'rolled back' : 'failed'} at ${p.step}: ${quote(p.reason ?? '')}`}`,
    );

  lines.push('', '### Rollbacks');
  if (report.rollbacks.length === 0) lines.push('None.');
  for (const r of report.rollbacks) {
    const by =
      r.trigger === 'rule' ? `\`${r.rule ?? r.incident}\`` : r.trigger === 'manual' ? `an operator: ${quote(r.reason)}` : `promotion ${r.promotion}'s revert`;
    const times = r.trigger === 'rule' ? `: detected in ${humanDuration(r.detectMs)}, switched in ${humanDuration(r.switchMs)}` : '';
    lines.push(`- ${at(r.at)} **${r.from} → ${r.to}** by ${by}${times}${r.promotion && r.trigger === 'rule' ? ` (in promotion ${r.promotion}'s watch)` : ''}`);
  }

  lines.push('', '### Incidents');
  if (report.incidents.length === 0) lines.push('None.');
  for (const i of report.incidents) {
    const state = i.state === 'resolved' ? `resolved after ${humanDuration(i.durationMs)}` : 'still firing';
    lines.push(
      `- ${i.severity === 'critical' ? '🔴' : '🟠'} ${at(i.startedAt)} \`${i.id}\`${i.env ? ` on ${i.env}` : ''}: ${state}${i.rolledBack ? ', rolled back' : ''}`,
    );
  }

  if (report.topFailingProbes.length > 0) {
    lines.push('', '### Top failing probes');
    for (const p of report.topFailingProbes)
      lines.push(`- \`${p.probe}\` on ${p.env}: ${count(p.failures)} of ${count(p.probes)} failed (${percent(p.errorRatio)})`);
  }
  if (options.link) lines.push('', `Full report with charts: ${options.link}`);
  return `${lines.join('\n')}\n`;
}

/** A fixed-width table in a code block; `right` aligns numeric columns. */
function codeTable(header: string[], rows: string[][], right: boolean[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => (right[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return ['```', ...all.map(line), '```'].join('\n');
}

function weekday(date: string): string {
  return ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][new Date(`${date}T00:00:00Z`).getUTCDay()]!;
}

/**
 * Free text (a reason someone typed) as inline code on one line: Slack, Discord and GitHub all
 * show it literally there — no formatting, no link, no mention — so only backticks go.
 */
function quote(text: string): string {
  const flat = text.replace(/\s+/g, ' ').replace(/`/g, "'").trim();
  return `\`${flat.length > 120 ? `${flat.slice(0, 117)}...` : flat}\``;
}

function objectiveDigits(objective: number): number {
  return Number.isInteger(objective * 100) ? 0 : Number.isInteger(objective * 1_000) ? 1 : 2;
}

function humanDays(ms: number): string {
  return ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : humanDuration(ms);
}

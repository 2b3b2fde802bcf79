/**
 * The report as one self-contained HTML page: inline SVG charts, one inline stylesheet, no script,
 * no font, image or anything else fetched — it opens the same from the agent, from a file saved
 * by `greenlight report --format html`, or attached to a ticket. Served by the agent it carries a
 * Content-Security-Policy that allows exactly that stylesheet (by its hash) and nothing else.
 *
 * Every figure is also in data-* attributes (`data-figure`, the table rows' `data-p95`, the
 * charts' points), so what the page shows can be checked against the JSON it was made from.
 */
import { createHash } from 'node:crypto';
import type { Report } from './report-builder.js';
import { count, latency, percent, rate } from './report-format.js';
import { datesBetween, humanDuration, LocalClock } from './report-time.js';
import { barChart, escapeHtml, lineChart, stackedBarChart, timeline, type TimelineMark, type TimelineSpan } from './svg-charts.js';

export interface HtmlOptions {
  /** Served by the agent: links to other periods and to the JSON (relative to the page). */
  links?: boolean;
}

/** The page's only stylesheet; the CSP names its hash. Colours follow the status page. */
export const REPORT_PAGE_STYLE = `
:root { --bg: #0f1419; --panel: #171e26; --line: #2a3440; --text: #e6edf3; --muted: #8b98a5; --good: #22c55e; --bad: #ef4444; --warn: #f59e0b; --blue: #3b82f6; --violet: #a78bfa; color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header.top { padding: .8rem 1rem; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: .3rem 1.5rem; align-items: baseline; }
header.top h1 { font-size: 1.25rem; margin: 0; }
header.top p { margin: 0; color: var(--muted); }
nav a { color: var(--blue); margin-right: .6rem; }
nav a[aria-current="page"] { color: var(--text); font-weight: 700; text-decoration: none; }
main { display: grid; gap: 1rem; padding: 1rem; max-width: 1200px; margin: 0 auto; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .8rem; min-width: 0; }
h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .08em; color: var(--muted); margin: 0 0 .6rem; }
h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
.cards { display: grid; gap: .8rem; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .7rem; }
.card .value { font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: .8rem; }
.card .detail { color: var(--muted); font-size: .8rem; }
.good { color: var(--good); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.chart-wrap { overflow-x: auto; margin: 0 0 .6rem; }
.chart-title { margin: .4rem 0 0; color: var(--muted); font-size: .85rem; }
svg.chart { width: 100%; min-width: 600px; height: auto; display: block; }
svg.chart text { fill: var(--muted); font-size: 12px; font-family: inherit; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .line { fill: none; stroke-width: 2; }
svg.chart .line.s-p50 { stroke: var(--blue); }
svg.chart .line.s-p95 { stroke: var(--violet); }
svg.chart .point.s-p50, svg.chart .swatch.s-p50 { fill: var(--blue); }
svg.chart .point.s-p95, svg.chart .swatch.s-p95 { fill: var(--violet); }
svg.chart .s-errors { fill: var(--bad); }
svg.chart .s-succeeded { fill: var(--good); }
svg.chart .s-failed { fill: var(--warn); }
svg.chart .s-rolledBack { fill: var(--bad); }
svg.chart .s-critical { fill: var(--bad); }
svg.chart .s-warning { fill: var(--warn); }
svg.chart .s-rollback { fill: var(--blue); stroke: var(--text); stroke-width: 1; }
.scroll { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .45rem; border-top: 1px solid var(--line); white-space: nowrap; }
thead th { color: var(--muted); font-weight: 500; border-top: 0; }
td.num, th.num { text-align: right; }
td.text { white-space: normal; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: var(--muted); margin: .2rem 0; }
.empty { color: var(--muted); margin: .3rem 0; }
footer { color: var(--muted); font-size: .8rem; padding: 0 1rem 1rem; max-width: 1200px; margin: 0 auto; }
@media print { body { background: #fff; color: #000; } section { border-color: #ccc; background: #fff; } }
`;

/** The CSP of the served page: its own stylesheet by hash, nothing else at all. */
export const REPORT_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(REPORT_PAGE_STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The periods the served page links to. */
const PERIODS = ['1d', '7d', '30d', '90d'];

export function renderHtml(report: Report, options: HtmlOptions = {}): string {
  const clock = new LocalClock(report.period.timezone);
  const from = Date.parse(report.period.from);
  const to = Date.parse(report.period.to);
  const title = `greenlight report: the last ${report.period.since}`;
  const nav = options.links
    ? `<nav aria-label="period">${PERIODS.map((p) => `<a href="?since=${p}&amp;format=html"${p === report.period.since ? ' aria-current="page"' : ''}>${p}</a>`).join('')}<a href="?since=${escapeHtml(report.period.since)}&amp;format=json">JSON</a><a href="?since=${escapeHtml(report.period.since)}&amp;format=md">Markdown</a><a href="/">status page</a></nav>`
    : '';
  const body = [cards(report), performance(report), deployments(report, clock), rollbacksAndIncidents(report, clock, from, to), topProbes(report)].join('\n');
  const coverage = `rollups from ${report.coverage.rollupsFrom ? escapeHtml(clock.stamp(Date.parse(report.coverage.rollupsFrom))) : 'nowhere yet'}, events from ${report.coverage.eventsFrom ? escapeHtml(clock.stamp(Date.parse(report.coverage.eventsFrom))) : 'nowhere yet'}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${REPORT_PAGE_STYLE}</style>
</head>
<body>
<header class="top">
<h1>${escapeHtml(title)}</h1>
<p id="period" data-from="${escapeHtml(report.period.from)}" data-to="${escapeHtml(report.period.to)}">${escapeHtml(`${clock.stamp(from)} → ${clock.stamp(to)} ${report.period.timezone}`)}</p>
${report.activeEnvironment ? `<p>live: <strong id="live" data-env="${escapeHtml(report.activeEnvironment)}">${escapeHtml(report.activeEnvironment)}</strong></p>` : ''}
${nav}
</header>
<main>
${body}
</main>
<footer>Generated ${escapeHtml(clock.stamp(Date.parse(report.generatedAt)))} ${escapeHtml(report.period.timezone)} by greenlight; ${coverage}. Days are local dates; latency quantiles come from log-scale histograms (four bins per doubling).</footer>
</body>
</html>
`;
}

/**
 * A value from the report as text or an attribute, escaped like every other: the CLI renders a
 * report it read over HTTP (`--url`), so a date, a count or an outcome is only as trustworthy as
 * whatever answered there, and the saved page has no CSP to fall back on. Null is empty.
 */
function esc(value: unknown): string {
  return value === null || value === undefined ? '' : escapeHtml(String(value));
}

function card(figure: string, value: string, label: string, detail: string, dataValue: number | null, tone = ''): string {
  return `<div class="card" data-figure="${escapeHtml(figure)}" data-value="${esc(dataValue)}"><div class="value ${esc(tone)}">${escapeHtml(value)}</div><div class="label">${escapeHtml(label)}</div><div class="detail">${escapeHtml(detail)}</div></div>`;
}

function cards(report: Report): string {
  const d = report.deployments;
  const s = report.summary;
  const items = [
    card(
      'deployments.successRate',
      rate(d.successRate),
      'deployment success',
      `${d.total} ended: ${d.succeeded} ok, ${d.failed} failed, ${d.rolledBack} rolled back`,
      d.successRate,
      d.successRate === null ? '' : d.successRate >= 0.9 ? 'good' : d.successRate >= 0.7 ? 'warn' : 'bad',
    ),
    card(
      'rollbacks.count',
      String(s.rollbacks.count),
      'rollbacks',
      s.rollbacks.count ? `median detect ${humanDuration(s.rollbacks.medianDetectMs)}, switch ${humanDuration(s.rollbacks.medianSwitchMs)}` : 'none',
      s.rollbacks.count,
      s.rollbacks.count ? 'warn' : 'good',
    ),
    card(
      'incidents.total',
      String(s.incidents.total),
      'incidents',
      s.incidents.total ? `${s.incidents.critical} critical, ${s.incidents.open} open, median resolve ${humanDuration(s.incidents.medianResolveMs)}` : 'none',
      s.incidents.total,
      s.incidents.open ? 'bad' : '',
    ),
    card('summary.errorRatio', percent(s.errorRatio), 'probes failed', `${count(s.failures)} of ${count(s.probes)}`, s.errorRatio),
    ...report.slo.map((slo) =>
      card(
        `slo.${slo.name}.budgetRemaining`,
        slo.budgetRemaining === null ? '–' : percent(slo.budgetRemaining, 0),
        `SLO ${slo.name}: budget left`,
        `${percent(slo.objective, 1)} over ${humanDuration(slo.periodMs)}`,
        slo.budgetRemaining,
        slo.budgetRemaining === null ? '' : slo.budgetRemaining > 0.5 ? 'good' : slo.budgetRemaining > 0 ? 'warn' : 'bad',
      ),
    ),
  ];
  return `<section aria-labelledby="summary-title"><h2 id="summary-title">Summary</h2><div class="cards">${items.join('')}</div></section>`;
}

function performance(report: Report): string {
  const parts: string[] = ['<section aria-labelledby="perf-title"><h2 id="perf-title">Daily performance</h2>'];
  for (const [env, figures] of Object.entries(report.environments)) {
    parts.push(
      `<h3 data-env="${escapeHtml(env)}">${escapeHtml(env)}${env === report.activeEnvironment ? ' (live)' : ''}: ${count(figures.probes)} probes, ${percent(figures.errorRatio)} failed, p95 ${latency(figures.p95Ms)}</h3>`,
    );
    if (figures.days.length === 0) {
      parts.push('<p class="empty">No probe figures in this period.</p>');
      continue;
    }
    const dates = figures.days.map((day) => day.date);
    parts.push('<p class="chart-title">Latency per day: p50 and p95</p><div class="chart-wrap">');
    parts.push(
      lineChart({
        id: `latency-${env}`,
        label: `${env}: daily p50 and p95 latency`,
        categories: dates,
        series: [
          { name: 'p50', className: 's-p50', values: figures.days.map((day) => day.p50Ms) },
          { name: 'p95', className: 's-p95', values: figures.days.map((day) => day.p95Ms) },
        ],
        format: latency,
      }),
    );
    parts.push('</div><p class="chart-title">Failed probes per day</p><div class="chart-wrap">');
    parts.push(
      barChart({
        id: `errors-${env}`,
        label: `${env}: daily share of failed probes`,
        categories: dates,
        values: figures.days.map((day) => day.errorRatio),
        className: 's-errors',
        format: (v) => percent(v),
        height: 150,
        minMax: 0.001,
      }),
    );
    parts.push('</div>');
    const rows = figures.days.map(
      (day) =>
        `<tr data-env="${escapeHtml(env)}" data-date="${esc(day.date)}" data-probes="${esc(day.probes)}" data-failures="${esc(day.failures)}" data-error-ratio="${esc(day.errorRatio)}" data-p50="${esc(day.p50Ms)}" data-p95="${esc(day.p95Ms)}"><td>${esc(day.date)}</td><td class="num">${count(day.probes)}</td><td class="num">${count(day.failures)}</td><td class="num">${percent(day.errorRatio)}</td><td class="num">${latency(day.p50Ms)}</td><td class="num">${latency(day.p95Ms)}</td><td class="num">${latency(day.p99Ms)}</td></tr>`,
    );
    parts.push(
      `<details><summary>${figures.days.length} ${figures.days.length === 1 ? 'day' : 'days'} in figures</summary><div class="scroll"><table class="days" data-env="${escapeHtml(env)}"><thead><tr><th>date</th><th class="num">probes</th><th class="num">failed</th><th class="num">error ratio</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th></tr></thead><tbody>${rows.join('')}</tbody></table></div></details>`,
    );
  }
  parts.push('</section>');
  return parts.join('\n');
}

function deployments(report: Report, clock: LocalClock): string {
  const d = report.deployments;
  const weeks = d.weeks.map((w) => w.week);
  const chart = stackedBarChart({
    id: 'deployments',
    label: 'promotions per week: succeeded, failed, rolled back',
    categories: weeks,
    stacks: [
      { name: 'succeeded', className: 's-succeeded', values: d.weeks.map((w) => w.succeeded) },
      { name: 'failed', className: 's-failed', values: d.weeks.map((w) => w.failed) },
      { name: 'rolled back', className: 's-rolledBack', values: d.weeks.map((w) => w.rolledBack) },
    ],
  });
  const rows = d.weeks.map(
    (w) =>
      `<tr data-week="${esc(w.week)}" data-total="${esc(w.total)}" data-succeeded="${esc(w.succeeded)}" data-failed="${esc(w.failed)}" data-rolled-back="${esc(w.rolledBack)}" data-success-rate="${esc(w.successRate)}"><td>${esc(w.week)}</td><td>${esc(w.from)}</td><td class="num">${esc(w.total)}</td><td class="num">${esc(w.succeeded)}</td><td class="num">${esc(w.failed)}</td><td class="num">${esc(w.rolledBack)}</td><td class="num">${rate(w.successRate)}</td></tr>`,
  );
  const notOk = d.promotions.filter((p) => p.outcome !== 'succeeded');
  const list = notOk.length
    ? `<h3>Promotions that did not succeed</h3><div class="scroll"><table class="promotions"><thead><tr><th>started</th><th>promotion</th><th>outcome</th><th>step</th><th>why</th></tr></thead><tbody>${notOk
        .map(
          (p) =>
            `<tr data-promotion="${escapeHtml(p.id)}" data-outcome="${esc(p.outcome)}"><td>${escapeHtml(clock.short(Date.parse(p.startedAt)))}</td><td>${escapeHtml(`${p.from} → ${p.to} (${p.id})`)}</td><td>${p.outcome === 'rolledBack' ? 'rolled back' : esc(p.outcome)}</td><td>${escapeHtml(p.step ?? '')}</td><td class="text">${escapeHtml(p.reason ?? '')}</td></tr>`,
        )
        .join('')}</tbody></table></div>`
    : '';
  return `<section aria-labelledby="deploy-title"><h2 id="deploy-title">Deployments per week</h2><div class="chart-wrap">${chart}</div><div class="scroll"><table class="weeks"><thead><tr><th>week</th><th>from</th><th class="num">total</th><th class="num">ok</th><th class="num">failed</th><th class="num">rolled back</th><th class="num">success</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>${list}</section>`;
}

function rollbacksAndIncidents(report: Report, clock: LocalClock, from: number, to: number): string {
  const envs = [...new Set([...Object.keys(report.environments), ...report.incidents.map((i) => i.env ?? '(none)')])];
  const rows = [...envs, 'rollbacks'];
  const spans: TimelineSpan[] = report.incidents.map((i) => ({
    row: i.env ?? '(none)',
    start: Date.parse(i.startedAt),
    end: i.resolvedAt ? Date.parse(i.resolvedAt) : to,
    className: i.severity === 'critical' ? 's-critical' : 's-warning',
    label: `${i.id} on ${i.env ?? '?'}: ${i.state === 'resolved' ? `resolved after ${humanDuration(i.durationMs)}` : 'still firing'}`,
    data: { incident: i.id },
  }));
  const marks: TimelineMark[] = report.rollbacks.map((r) => ({
    row: 'rollbacks',
    at: Date.parse(r.at),
    className: 's-rollback',
    label: `${clock.short(Date.parse(r.at))} ${r.from} → ${r.to}${r.rule ? ` (${r.rule})` : ` (${r.trigger})`}${r.detectMs !== null ? `, detect ${humanDuration(r.detectMs)}` : ''}${r.switchMs !== null ? `, switch ${humanDuration(r.switchMs)}` : ''}`,
    data: { at: r.at },
  }));
  const ticks: { at: number; label: string }[] = [];
  let previous = clock.date(from);
  for (let hour = Math.ceil(from / 3_600_000) * 3_600_000; hour <= to; hour += 3_600_000) {
    const date = clock.date(hour);
    if (date !== previous) ticks.push({ at: hour, label: date.slice(5) });
    previous = date;
  }
  if (ticks.length === 0 || datesBetween(clock.date(from), clock.date(to)).length > 120)
    ticks.splice(0, ticks.length, { at: from, label: clock.date(from).slice(5) }, { at: to, label: clock.date(to).slice(5) });
  const chart = timeline({ id: 'timeline', label: 'incidents per environment and rollbacks over the period', from, to, rows, spans, marks, ticks });
  const rollbackRows = report.rollbacks.map(
    (r) =>
      `<tr data-at="${escapeHtml(r.at)}" data-detect-ms="${esc(r.detectMs)}" data-switch-ms="${esc(r.switchMs)}"><td>${escapeHtml(clock.short(Date.parse(r.at)))}</td><td>${escapeHtml(`${r.from} → ${r.to}`)}</td><td>${escapeHtml(r.rule ?? (r.trigger === 'manual' ? 'manual' : `promotion ${esc(r.promotion)}`))}</td><td class="num">${humanDuration(r.detectMs)}</td><td class="num">${humanDuration(r.switchMs)}</td><td class="text">${escapeHtml(r.trigger === 'manual' ? r.reason : r.promotion ? `during promotion ${esc(r.promotion)}` : '')}</td></tr>`,
  );
  const incidentRows = report.incidents.map(
    (i) =>
      `<tr data-incident="${escapeHtml(i.id)}" data-duration-ms="${esc(i.durationMs)}"><td>${escapeHtml(clock.short(Date.parse(i.startedAt)))}</td><td>${escapeHtml(i.id)}</td><td>${escapeHtml(i.env ?? '')}</td><td class="${i.severity === 'critical' ? 'bad' : 'warn'}">${escapeHtml(i.severity)}</td><td class="num">${i.state === 'resolved' ? humanDuration(i.durationMs) : 'firing'}</td><td class="num">${humanDuration(i.detectMs)}</td><td>${i.rolledBack ? 'yes' : ''}</td></tr>`,
  );
  return `<section aria-labelledby="rollback-title"><h2 id="rollback-title">Rollbacks and incidents</h2><div class="chart-wrap">${chart}</div>
<h3>Rollbacks</h3>${rollbackRows.length ? `<div class="scroll"><table class="rollbacks"><thead><tr><th>when</th><th>switch</th><th>rule</th><th class="num">detect</th><th class="num">switch</th><th>note</th></tr></thead><tbody>${rollbackRows.join('')}</tbody></table></div>` : '<p class="empty">None in this period.</p>'}
<h3>Incidents</h3>${incidentRows.length ? `<div class="scroll"><table class="incidents"><thead><tr><th>started</th><th>incident</th><th>env</th><th>severity</th><th class="num">resolved after</th><th class="num">detect</th><th>rolled back</th></tr></thead><tbody>${incidentRows.join('')}</tbody></table></div>` : '<p class="empty">None in this period.</p>'}</section>`;
}

function topProbes(report: Report): string {
  if (report.topFailingProbes.length === 0)
    return '<section aria-labelledby="probes-title"><h2 id="probes-title">Top failing probes</h2><p class="empty">No probe failed in this period.</p></section>';
  const rows = report.topFailingProbes.map(
    (p) =>
      `<tr data-probe="${escapeHtml(p.probe)}" data-env="${escapeHtml(p.env)}" data-failures="${esc(p.failures)}"><td>${escapeHtml(p.probe)}</td><td>${escapeHtml(p.env)}</td><td class="num">${count(p.failures)}</td><td class="num">${count(p.probes)}</td><td class="num">${percent(p.errorRatio)}</td></tr>`,
  );
  return `<section aria-labelledby="probes-title"><h2 id="probes-title">Top failing probes</h2><div class="scroll"><table class="probes"><thead><tr><th>probe</th><th>env</th><th class="num">failed</th><th class="num">probes</th><th class="num">error ratio</th></tr></thead><tbody>${rows.join('')}</tbody></table></div></section>`;
}

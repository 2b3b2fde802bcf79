/**
 * The report page's charts as inline SVG strings: no script, no library, nothing fetched. Colours
 * come from classes the page's one stylesheet defines; every mark carries a <title> (the browser's
 * tooltip) and data-* attributes with its figure, so a test (or a person's devtools) reads the
 * exact value behind each point.
 */

const WIDTH = 960;
const LEFT = 72;
const RIGHT = 12;
/** Room above the plot for the legend. */
const TOP = 26;
const BOTTOM = 30;

export interface LineSeries {
  name: string;
  /** A class of the page's stylesheet: `s-p50`, `s-p95`. */
  className: string;
  values: readonly (number | null)[];
}

/** Escape text for HTML and SVG alike. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** One line per series over categorical x values (dates); gaps where a value is null. */
export function lineChart(options: {
  id: string;
  label: string;
  categories: readonly string[];
  series: readonly LineSeries[];
  format: (v: number) => string;
  height?: number;
}): string {
  const height = options.height ?? 200;
  const values = options.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = niceMax(Math.max(0, ...values));
  const frame = axes(options.categories, max, height, options.format);
  const x = frame.x;
  const y = (v: number) => TOP + (height - TOP - BOTTOM) * (1 - v / max);
  const marks: string[] = [];
  for (const series of options.series) {
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) marks.push(`<polyline class="line ${series.className}" points="${run.join(' ')}"/>`);
      run = [];
    };
    series.values.forEach((value, i) => {
      if (value === null) return flush();
      run.push(`${x(i).toFixed(1)},${y(value).toFixed(1)}`);
    });
    flush();
    series.values.forEach((value, i) => {
      if (value === null) return;
      const category = options.categories[i]!;
      marks.push(
        `<circle class="point ${series.className}" cx="${x(i).toFixed(1)}" cy="${y(value).toFixed(1)}" r="3" data-series="${escapeHtml(series.name)}" data-date="${escapeHtml(category)}" data-value="${escapeHtml(String(value))}"><title>${escapeHtml(`${category} ${series.name}: ${options.format(value)}`)}</title></circle>`,
      );
    });
  }
  const legend = options.series
    .map(
      (s, i) =>
        `<g transform="translate(${LEFT + i * 90},6)"><rect class="${s.className} swatch" width="10" height="10"/><text x="14" y="9">${escapeHtml(s.name)}</text></g>`,
    )
    .join('');
  return svg(options.id, options.label, height, `${frame.grid}${marks.join('')}${legend}`);
}

/** One bar per category. */
export function barChart(options: {
  id: string;
  label: string;
  categories: readonly string[];
  values: readonly number[];
  className: string;
  format: (v: number) => string;
  height?: number;
  minMax?: number;
}): string {
  const height = options.height ?? 160;
  const max = niceMax(Math.max(options.minMax ?? 0, ...options.values));
  const frame = axes(options.categories, max, height, options.format);
  const band = (WIDTH - LEFT - RIGHT) / Math.max(1, options.categories.length);
  const bar = Math.max(2, Math.min(28, band * 0.7));
  const plot = height - TOP - BOTTOM;
  const marks = options.values.map((value, i) => {
    const h = max === 0 ? 0 : (plot * value) / max;
    const category = options.categories[i]!;
    return `<rect class="bar ${options.className}" x="${(frame.x(i) - bar / 2).toFixed(1)}" y="${(TOP + plot - h).toFixed(1)}" width="${bar.toFixed(1)}" height="${Math.max(value > 0 ? 1 : 0, h).toFixed(1)}" data-date="${escapeHtml(category)}" data-value="${escapeHtml(String(value))}"><title>${escapeHtml(`${category}: ${options.format(value)}`)}</title></rect>`;
  });
  return svg(options.id, options.label, height, `${frame.grid}${marks.join('')}`);
}

/** Stacked bars per category (deployments per week: succeeded, failed, rolled back). */
export function stackedBarChart(options: {
  id: string;
  label: string;
  categories: readonly string[];
  stacks: readonly { name: string; className: string; values: readonly number[] }[];
  height?: number;
}): string {
  const height = options.height ?? 180;
  const totals = options.categories.map((_, i) => options.stacks.reduce((sum, s) => sum + s.values[i]!, 0));
  const max = niceMax(Math.max(1, ...totals), true);
  const frame = axes(options.categories, max, height, (v) => String(Math.round(v)));
  const band = (WIDTH - LEFT - RIGHT) / Math.max(1, options.categories.length);
  const bar = Math.max(4, Math.min(48, band * 0.6));
  const plot = height - TOP - BOTTOM;
  const marks: string[] = [];
  options.categories.forEach((category, i) => {
    let base = TOP + plot;
    for (const stack of options.stacks) {
      const value = stack.values[i]!;
      if (value === 0) continue;
      const h = (plot * value) / max;
      base -= h;
      marks.push(
        `<rect class="bar ${stack.className}" x="${(frame.x(i) - bar / 2).toFixed(1)}" y="${base.toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" data-week="${escapeHtml(category)}" data-stack="${escapeHtml(stack.name)}" data-value="${escapeHtml(String(value))}"><title>${escapeHtml(`${category}: ${value} ${stack.name}`)}</title></rect>`,
      );
    }
  });
  const legend = options.stacks
    .map(
      (s, i) =>
        `<g transform="translate(${LEFT + i * 110},6)"><rect class="${s.className} swatch" width="10" height="10"/><text x="14" y="9">${escapeHtml(s.name)}</text></g>`,
    )
    .join('');
  return svg(options.id, options.label, height, `${frame.grid}${marks.join('')}${legend}`);
}

export interface TimelineSpan {
  row: string;
  start: number;
  end: number;
  className: string;
  label: string;
  data: Record<string, string>;
}

export interface TimelineMark {
  row: string;
  at: number;
  className: string;
  label: string;
  data: Record<string, string>;
}

/** A time axis over [from, to] with a row per name: spans (incidents) and marks (rollbacks). */
export function timeline(options: {
  id: string;
  label: string;
  from: number;
  to: number;
  rows: readonly string[];
  spans: readonly TimelineSpan[];
  marks: readonly TimelineMark[];
  ticks: readonly { at: number; label: string }[];
}): string {
  const rowHeight = 26;
  const height = TOP + options.rows.length * rowHeight + BOTTOM;
  const span = Math.max(1, options.to - options.from);
  const x = (t: number) => LEFT + ((WIDTH - LEFT - RIGHT) * (Math.min(Math.max(t, options.from), options.to) - options.from)) / span;
  const rowY = (row: string) => TOP + options.rows.indexOf(row) * rowHeight;
  const parts: string[] = [];
  options.rows.forEach((row, i) => {
    const y = TOP + i * rowHeight;
    parts.push(
      `<line class="grid" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y + rowHeight / 2}" y2="${y + rowHeight / 2}"/><text class="axis" x="${LEFT - 6}" y="${y + rowHeight / 2 + 4}" text-anchor="end">${escapeHtml(row)}</text>`,
    );
  });
  const every = Math.max(1, Math.ceil(options.ticks.length / 10));
  options.ticks.forEach((tick, i) => {
    const tx = x(tick.at);
    parts.push(`<line class="grid" x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${TOP}" y2="${height - BOTTOM}"/>`);
    if (i % every === 0)
      parts.push(`<text class="axis" x="${tx.toFixed(1)}" y="${height - BOTTOM + 16}" text-anchor="middle">${escapeHtml(tick.label)}</text>`);
  });
  for (const s of options.spans) {
    const y = rowY(s.row) + 7;
    const x1 = x(s.start);
    parts.push(
      `<rect class="span ${s.className}" x="${x1.toFixed(1)}" y="${y}" width="${Math.max(3, x(s.end) - x1).toFixed(1)}" height="12" rx="2"${dataAttributes(s.data)}><title>${escapeHtml(s.label)}</title></rect>`,
    );
  }
  for (const m of options.marks) {
    const cx = x(m.at);
    const cy = rowY(m.row) + rowHeight / 2;
    parts.push(
      `<path class="mark ${m.className}" d="M${cx.toFixed(1)},${(cy - 8).toFixed(1)} l7,8 l-7,8 l-7,-8 z"${dataAttributes(m.data)}><title>${escapeHtml(m.label)}</title></path>`,
    );
  }
  const legend = [
    ['s-critical', 'critical incident'],
    ['s-warning', 'warning incident'],
  ]
    .map(
      ([className, text], i) =>
        `<g transform="translate(${LEFT + i * 140},6)"><rect class="${className} swatch" width="10" height="10"/><text x="14" y="9">${text}</text></g>`,
    )
    .join('');
  const rollbackKey = `<g transform="translate(${LEFT + 280},6)"><path class="s-rollback" d="M5,0 l5,5 l-5,5 l-5,-5 z"/><text x="14" y="9">rollback</text></g>`;
  return svg(options.id, options.label, height, parts.join('') + legend + rollbackKey);
}

function dataAttributes(data: Record<string, string>): string {
  return Object.entries(data)
    .map(([key, value]) => ` data-${key}="${escapeHtml(value)}"`)
    .join('');
}

function svg(id: string, label: string, height: number, body: string): string {
  return `<svg class="chart" id="${escapeHtml(id)}" data-chart="${escapeHtml(id)}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${escapeHtml(label)}" xmlns="http://www.w3.org/2000/svg">${body}</svg>`;
}

/** Horizontal grid lines with y labels, and x labels for the categories (thinned to about ten). */
function axes(categories: readonly string[], max: number, height: number, format: (v: number) => string): { grid: string; x: (i: number) => number } {
  const plot = height - TOP - BOTTOM;
  const band = (WIDTH - LEFT - RIGHT) / Math.max(1, categories.length);
  const x = (i: number) => LEFT + band * (i + 0.5);
  const parts: string[] = [];
  for (let step = 0; step <= 4; step++) {
    const value = (max * step) / 4;
    const y = TOP + plot * (1 - step / 4);
    parts.push(
      `<line class="grid" x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}"/><text class="axis" x="${LEFT - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escapeHtml(format(value))}</text>`,
    );
  }
  const every = Math.max(1, Math.ceil(categories.length / 10));
  categories.forEach((category, i) => {
    if (i % every === 0 || i === categories.length - 1)
      parts.push(`<text class="axis" x="${x(i).toFixed(1)}" y="${height - BOTTOM + 16}" text-anchor="middle">${escapeHtml(shortLabel(category))}</text>`);
  });
  return { grid: parts.join(''), x };
}

/** `2026-11-24` → `11-24`; `2026-W48` → `W48`. */
function shortLabel(category: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(category)) return category.slice(5);
  if (/^\d{4}-W\d{2}$/.test(category)) return category.slice(5);
  return category;
}

/** A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten; for counts (`integer`), a multiple of 4. */
function niceMax(value: number, integer = false): number {
  if (!(value > 0)) return integer ? 4 : 1;
  // Counts get four whole steps.
  if (integer) return Math.max(4, Math.ceil(value / 4) * 4);
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((candidate) => candidate >= value) ?? 10 * power;
}

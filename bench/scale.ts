/**
 * Issue 18's curve: what one probe costs as the work grows. For each size (100, 1,000, 4,000 and
 * 10,000 probe × environment series at 1 s), in the same run and at the same intended rate:
 *
 *   - the bare undici keep-alive loop (forked worker): what any HTTP client must spend;
 *   - greenlight (the real Agent, forked worker) with no rules, with the stock rules of
 *     config/greenlight.yaml (its actions and SLO too), and with 200 generated rules;
 *   - blackbox_exporter driven over the same targets (skipped when not installed).
 *
 * Printed per size: CPU µs per completed probe and its ratio to the bare loop, the achieved rate
 * against the intended one, cores and RSS at the end of the period. Then one table over all
 * sizes; with `--chart FILE.svg` the curve is drawn into an SVG (and the figures saved beside it
 * as FILE.json; `--before FILE.json` draws an earlier run's greenlight curves dashed behind).
 *
 * The bare loop's own figure moves by ±20 % between runs minutes apart on this kind of machine, so
 * each size is measured in `trials` rounds (default 3), the contenders in a rotated order each
 * round: a cell is the median of its rounds, and a ratio the median of the round-by-round ratios
 * (each against the bare loop of the same round, minutes apart at most), printed with their range.
 *
 * Durations are capped so that the whole run stays within about a quarter of an hour on 2 cores:
 * a warm-up of 4–8 s (JIT and the first windows) and `measureSeconds` (default 6) per contender
 * and round, and no latency sampling (probe-engine.ts has it). Past what two simulator processes answer on this
 * machine (several thousand a second) every contender falls short of 10,000/s: compare the
 * achieved rates, and the CPU per probe completed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import {
  fmt,
  freshDataDir,
  log,
  mb,
  median,
  pct,
  section,
  startSimulatorProcess,
  table,
  verdict,
  type BenchRules,
  type SimulatorProcess,
  type SummaryRow,
} from './harness.js';
import { findBlackbox, measureBlackbox, measureWorker, type EngineFigures } from './probe-engine.js';

export const SCALE_SIZES = [100, 1_000, 4_000, 10_000] as const;

export interface ScaleOptions {
  sizes?: readonly number[];
  /** Seconds measured per contender and round (default 6). */
  measureSeconds?: number;
  /** Rounds per size (default 3): cells are medians, ratios the median of each round's. */
  trials?: number;
  /** Write the curve here (SVG), and the figures beside it (.json). */
  chart?: string | undefined;
  /** An earlier run's .json, drawn dashed behind. */
  before?: string | undefined;
}

/** One contender at one size, as saved in the .json: the medians of its rounds. */
export interface ScalePoint {
  series: number;
  contender: Contender;
  usPerProbe: number;
  /** µs per probe in each round (older runs saved one round and no list). */
  rounds?: number[];
  /** Median and range of the round-by-round ratios to the bare loop (greenlight and blackbox). */
  ratio?: { median: number; low: number; high: number };
  rate: number;
  intendedRate: number;
  cores: number;
  rssBytes: number | undefined;
  failed: number;
  skipped: number;
}

type Contender = 'undici' | 'greenlight' | 'greenlight-stock' | 'greenlight-200' | 'blackbox';

const CONTENDERS: readonly { contender: Contender; label: string; rules?: BenchRules }[] = [
  { contender: 'undici', label: 'bare undici loop' },
  { contender: 'greenlight', label: 'greenlight, no rules', rules: 'none' },
  { contender: 'greenlight-stock', label: 'greenlight, stock rules', rules: 'stock' },
  { contender: 'greenlight-200', label: 'greenlight, 200 rules', rules: 'many' },
  { contender: 'blackbox', label: 'blackbox_exporter' },
];

const warmupFor = (series: number) => (series <= 100 ? 4 : series <= 1_000 ? 5 : series <= 4_000 ? 6 : 8);

export async function runScale(options: ScaleOptions = {}): Promise<{ rows: SummaryRow[]; points: ScalePoint[] }> {
  const sizes = options.sizes ?? SCALE_SIZES;
  const measure = options.measureSeconds ?? 6;
  const trials = options.trials ?? 3;
  const blackboxBin = findBlackbox();
  section(`scale: CPU per probe at ${sizes.join(', ')} series (1 s), warm-up 4–8 s, ${measure} s measured per contender, ${trials} rounds`);
  if (!blackboxBin) log('blackbox_exporter is not installed: its column is skipped');
  const points: ScalePoint[] = [];
  const rows: SummaryRow[] = [];
  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    for (const series of sizes) {
      const warmup = warmupFor(series);
      log(`\n${series} series: ${series}/s intended; warm-up ${warmup} s, measure ${measure} s`);
      // Each contender's figures by round (undefined where a round has none: blackbox not installed).
      const rounds = new Map<Contender, (EngineFigures | undefined)[]>(CONTENDERS.map(({ contender }) => [contender, []]));
      for (let round = 0; round < trials; round++) {
        // Rotated each round: no contender always runs first after the previous size, or last.
        const order = [...CONTENDERS.slice(round % CONTENDERS.length), ...CONTENDERS.slice(0, round % CONTENDERS.length)];
        for (const { contender, label, rules } of order) {
          const result = await measureContender(contender, label, rules, { series, warmup, measure, blue, green, blackboxBin });
          rounds.get(contender)![round] = result;
          if (result)
            log(
              `  round ${round + 1}  ${label.padEnd(24)} ${fmt(result.usPerProbe, 0).padStart(6)} µs/probe  ${fmt(result.rate, 0)}/s of ${series}/s  ${fmt(result.cores, 2)} cores  RSS ${mb(result.rssBytes)}  failed ${result.failed} skipped ${result.skipped}`,
            );
        }
      }
      const base = rounds.get('undici')!;
      const at = new Map<Contender, ScalePoint>();
      for (const { contender } of CONTENDERS) {
        const list = rounds.get(contender)!.filter((r): r is EngineFigures => r !== undefined);
        if (list.length === 0) continue;
        const ratios = contender === 'undici' ? [] : pairedRatios(rounds.get(contender)!, base);
        const point: ScalePoint = {
          series,
          contender,
          usPerProbe: median(list.map((r) => r.usPerProbe)),
          rounds: list.map((r) => r.usPerProbe),
          ...(ratios.length ? { ratio: { median: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios) } } : {}),
          rate: median(list.map((r) => r.rate)),
          intendedRate: series,
          cores: median(list.map((r) => r.cores)),
          rssBytes: list.some((r) => r.rssBytes === undefined) ? undefined : median(list.map((r) => r.rssBytes!)),
          failed: list.reduce((sum, r) => sum + r.failed, 0),
          skipped: list.reduce((sum, r) => sum + r.skipped, 0),
        };
        at.set(contender, point);
        points.push(point);
      }
      for (const { contender, label } of CONTENDERS) {
        const p = at.get(contender);
        if (!p?.ratio) continue;
        const fullRate = p.rate >= 0.95 * series;
        const greenlight = contender.startsWith('greenlight');
        rows.push({
          bench: 'scale',
          figure: `${series} series: ${label} / undici CPU per probe`,
          target: greenlight ? '<= 1.2x, full rate' : '(baseline)',
          measured: `${fmt(p.ratio.median, 2)}x, ${fmt(p.ratio.low, 2)}–${fmt(p.ratio.high, 2)}x over ${p.rounds!.length} rounds (${fmt(p.usPerProbe, 0)} µs vs ${fmt(at.get('undici')!.usPerProbe, 0)}; ${pct(p.rate / series, 0)} of the rate)`,
          verdict: greenlight ? verdict(p.ratio.median <= 1.2 && fullRate) : 'info',
        });
      }
      const stock = at.get('greenlight-stock');
      const blackbox = at.get('blackbox');
      if (series === 1_000 && stock && blackbox) {
        const versus = pairedRatios(rounds.get('greenlight-stock')!, rounds.get('blackbox')!);
        const ratio = versus.length ? median(versus) : stock.usPerProbe / blackbox.usPerProbe;
        rows.push({
          bench: 'scale',
          figure: '1000 series: greenlight (stock rules) / blackbox CPU per probe',
          target: '<= 0.2',
          measured: `${fmt(ratio, 3)}${versus.length > 1 ? ` (${fmt(Math.min(...versus), 3)}–${fmt(Math.max(...versus), 3)} over ${versus.length} rounds)` : ''}`,
          verdict: verdict(ratio <= 0.2),
        });
      }
      if (series === 1_000 && stock?.rssBytes !== undefined)
        rows.push({
          bench: 'scale',
          figure: 'RSS at 1000 series (stock rules)',
          target: '<= 100 MB',
          measured: mb(stock.rssBytes),
          verdict: verdict(stock.rssBytes <= 100 * 1_048_576),
        });
    }
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
  }
  log('');
  log(scaleTable(points));
  if (trials > 1) log(`µs: the median of ${trials} rounds; ratios: the median of each round's ratio to that round's bare loop (so not always µs ÷ undici µs)`);
  const perSeries = rssPerSeries(points);
  if (perSeries !== undefined) {
    log(`\nRSS per series beyond 1,000 (greenlight, stock rules, from the largest size that kept the full rate): ${fmt(perSeries / 1_024, 1)} KB`);
    rows.push({
      bench: 'scale',
      figure: 'RSS per series beyond 1000 (stock rules)',
      target: '<= 60 KB',
      measured: `${fmt(perSeries / 1_024, 1)} KB`,
      verdict: verdict(perSeries <= 60 * 1_024),
    });
  }
  if (options.chart) {
    const before = options.before ? (JSON.parse(readFileSync(options.before, 'utf8')) as { points: ScalePoint[] }).points : undefined;
    writeFileSync(options.chart.replace(/\.svg$/, '') + '.json', JSON.stringify({ when: new Date().toISOString(), points }, null, 2) + '\n');
    writeFileSync(options.chart, scaleSvg(points, before));
    log(`chart: ${options.chart} (figures in ${options.chart.replace(/\.svg$/, '')}.json)`);
  }
  return { rows, points };
}

/** One contender, one round: a forked worker (the bare loop, greenlight) or blackbox_exporter; undefined when it is not installed. */
async function measureContender(
  contender: Contender,
  label: string,
  rules: BenchRules | undefined,
  at: { series: number; warmup: number; measure: number; blue: SimulatorProcess; green: SimulatorProcess; blackboxBin: string | undefined },
): Promise<EngineFigures | undefined> {
  const { series, warmup, measure, blue, green, blackboxBin } = at;
  const args = ['--series', String(series), '--blue', blue.url, '--green', green.url];
  if (contender === 'undici') return measureWorker(label, ['--mode', 'baseline', ...args], series, warmup, measure, { latency: false, quiet: true });
  if (contender === 'blackbox')
    return blackboxBin ? measureBlackbox(blackboxBin, [blue, green], series, Math.min(warmup, 3), measure, { quiet: true }) : undefined;
  const dataDir = freshDataDir('scale');
  try {
    return await measureWorker(label, ['--mode', 'agent', '--rules', rules!, '--data-dir', dataDir, ...args], series, warmup, measure, {
      latency: false,
      quiet: true,
    });
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `a / b` in each round both were measured. */
function pairedRatios(a: readonly (EngineFigures | undefined)[], b: readonly (EngineFigures | undefined)[]): number[] {
  const ratios: number[] = [];
  a.forEach((x, round) => {
    const y = b[round];
    if (x && y) ratios.push(x.usPerProbe / y.usPerProbe);
  });
  return ratios;
}

/** (RSS at the largest size that kept the rate − RSS at 1,000) / the extra series. */
function rssPerSeries(points: readonly ScalePoint[]): number | undefined {
  const stock = points.filter((p) => p.contender === 'greenlight-stock' && p.rssBytes !== undefined);
  const at1000 = stock.find((p) => p.series === 1_000);
  const larger = stock.filter((p) => p.series > 1_000 && p.rate >= 0.95 * p.intendedRate).sort((a, b) => b.series - a.series)[0];
  if (!at1000 || !larger) return undefined;
  return (larger.rssBytes! - at1000.rssBytes!) / (larger.series - 1_000);
}

/** One line per size: each contender's µs per probe, its ratio to the bare loop and the share of the rate it kept. */
export function scaleTable(points: readonly ScalePoint[]): string {
  const sizes = [...new Set(points.map((p) => p.series))];
  const header = ['series', 'undici µs', 'greenlight none', 'greenlight stock', 'greenlight 200 rules', 'blackbox', 'RSS none / stock / 200'];
  const rows = sizes.map((series) => {
    const at = (c: Contender) => points.find((p) => p.series === series && p.contender === c);
    const base = at('undici');
    const cell = (c: Contender) => {
      const p = at(c);
      if (!p) return '-';
      const ratio = p.ratio ? ` (${fmt(p.ratio.median, 2)}x)` : base ? ` (${fmt(p.usPerProbe / base.usPerProbe, 2)}x)` : '';
      const rate = p.rate < 0.95 * p.intendedRate ? `, ${pct(p.rate / p.intendedRate, 0)} of rate` : '';
      return `${fmt(p.usPerProbe, 0)}${ratio}${rate}`;
    };
    const rss = (['greenlight', 'greenlight-stock', 'greenlight-200'] as const)
      .map((c) => (at(c)?.rssBytes === undefined ? '-' : fmt(at(c)!.rssBytes! / 1_048_576, 0)))
      .join(' / ');
    return [
      fmt(series, 0),
      base ? `${fmt(base.usPerProbe, 0)}${base.rate < 0.95 * series ? `, ${pct(base.rate / series, 0)} of rate` : ''}` : '-',
      cell('greenlight'),
      cell('greenlight-stock'),
      cell('greenlight-200'),
      cell('blackbox'),
      `${rss} MB`,
    ];
  });
  return table(header, rows);
}

const COLORS: Record<Contender, string> = {
  undici: '#555555',
  greenlight: '#2e7d32',
  'greenlight-stock': '#1565c0',
  'greenlight-200': '#6a1b9a',
  blackbox: '#c62828',
};

/** The curve: CPU µs per probe against series, both on log scales; `before` drawn dashed. */
export function scaleSvg(points: readonly ScalePoint[], before?: readonly ScalePoint[]): string {
  const width = 720;
  const height = 420;
  const left = 70;
  const right = 200;
  const top = 40;
  const bottom = 50;
  const all = [...points, ...(before ?? [])];
  const xs = all.map((p) => p.series);
  const ys = all.map((p) => p.usPerProbe).filter((y) => y > 0);
  const [x0, x1] = [Math.log10(Math.min(...xs)), Math.log10(Math.max(...xs))];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...ys))), Math.ceil(Math.log10(Math.max(...ys)))];
  const px = (series: number) => left + ((Math.log10(series) - x0) / Math.max(1e-9, x1 - x0)) * (width - left - right);
  const py = (us: number) => height - bottom - ((Math.log10(us) - y0) / Math.max(1e-9, y1 - y0)) * (height - top - bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="14" font-weight="bold">CPU per probe (µs, log) against series at 1 s (log): npm run bench -- --scale</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > y1 + 1e-9) continue;
      out.push(`<line x1="${left}" x2="${width - right}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#e0e0e0"/>`);
      out.push(`<text x="${left - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
    }
  }
  for (const series of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<line x1="${px(series).toFixed(1)}" x2="${px(series).toFixed(1)}" y1="${top}" y2="${height - bottom}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${px(series).toFixed(1)}" y="${height - bottom + 18}" text-anchor="middle">${series.toLocaleString('en-US')}</text>`);
  }
  out.push(`<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">probe × environment series (probes per second intended)</text>`);
  const line = (set: readonly ScalePoint[], contender: Contender, dashed: boolean) => {
    const ps = set.filter((p) => p.contender === contender && p.usPerProbe > 0).sort((a, b) => a.series - b.series);
    if (ps.length === 0) return;
    const d = ps.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.series).toFixed(1)},${py(p.usPerProbe).toFixed(1)}`).join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${COLORS[contender]}" stroke-width="${dashed ? 1.5 : 2.5}"${dashed ? ' stroke-dasharray="5,4" opacity="0.7"' : ''}/>`,
    );
    for (const p of ps) {
      // A hollow point: the contender fell short of the intended rate there.
      const full = p.rate >= 0.95 * p.intendedRate;
      out.push(
        `<circle cx="${px(p.series).toFixed(1)}" cy="${py(p.usPerProbe).toFixed(1)}" r="${dashed ? 2.5 : 4}" fill="${full ? COLORS[contender] : '#ffffff'}" stroke="${COLORS[contender]}" stroke-width="1.5"/>`,
      );
    }
  };
  if (before) for (const c of ['greenlight', 'greenlight-stock', 'greenlight-200'] as const) line(before, c, true);
  for (const { contender } of CONTENDERS) line(points, contender, false);
  let ly = top + 10;
  for (const { contender, label } of CONTENDERS) {
    if (!points.some((p) => p.contender === contender)) continue;
    out.push(`<line x1="${width - right + 15}" x2="${width - right + 40}" y1="${ly}" y2="${ly}" stroke="${COLORS[contender]}" stroke-width="2.5"/>`);
    out.push(`<text x="${width - right + 46}" y="${ly + 4}">${label}</text>`);
    ly += 20;
  }
  if (before) {
    out.push(`<line x1="${width - right + 15}" x2="${width - right + 40}" y1="${ly}" y2="${ly}" stroke="#333" stroke-width="1.5" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${width - right + 46}" y="${ly + 4}">greenlight before</text>`);
    ly += 20;
  }
  out.push(`<circle cx="${width - right + 27}" cy="${ly}" r="4" fill="#ffffff" stroke="#333" stroke-width="1.5"/>`);
  out.push(`<text x="${width - right + 46}" y="${ly + 4}">below 95 % of the rate</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

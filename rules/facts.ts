/**
 * The facts rules can name, computed from the probe series. Every fact reads one environment:
 * the rule's (`env: live` by default) unless its params name another. A fact's `probe` param
 * is a probe name, a list of names, or `*` (all probes of the environment, the default).
 */
import { z } from 'zod';
import type { ProbeSeries } from '../probes/probe-series.js';
import type { SeriesPool } from '../probes/series-pool.js';
import type { SloTracker } from '../probes/slo-window.js';
import type { Config } from '../config/schema.js';
import { formatDuration, MIN_WINDOW_MS, parseDuration } from '../config/units.js';
import { latencyRegression } from './statistics.js';

/** What facts read: the series of both environments, which one is live, and the time. */
export interface FactContext {
  /** The environment the rule reads when a fact names none ('live', 'idle' or a name). */
  ruleEnv: string;
  activeEnvironment: string;
  environments: readonly string[];
  now: number;
  series(env: string): readonly ProbeSeries[];
  /**
   * When the live environment became live, if that was after the agent started. Facts over one
   * environment's windows count the live environment's probes from then on (from the first bucket
   * that starts after it): failures it had while idle — a deploy restarting it — are not held
   * against it once it takes traffic. Comparisons with the other environment read the whole window of both.
   */
  liveSince?: number | undefined;
  /** The environment a promotion is watching (from its switch to the end of its watch), if any. */
  watching?: string | undefined;
  /** The SLO named so (with no name: the only one). */
  slo?: (name: string | undefined) => SloTracker | undefined;
  /**
   * The sums of every series of `env` (series-pool.ts), kept as samples arrive: facts over every
   * probe read it instead of walking the series. Without one they walk the series.
   */
  pool?: (env: string) => SeriesPool | undefined;
  /** Facts that may be more than greenlight has seen (FactDefinition.unseen) take the worst they could be. */
  worstCase?: boolean;
  /**
   * The series of one probe in `env`, found by its name: facts that name their probes read these
   * instead of filtering every series of the environment (at 10,000 series, 99 rules on one probe
   * each walked 5,000 series per sample of their probe). Without it they index `series(env)`.
   */
  named?: (env: string, probe: string) => ProbeSeries | undefined;
}

/** A fact's value and how many probes its windows held (for minSamples). */
export interface FactValue {
  value: number | boolean | string | undefined;
  samples: number | undefined;
}

export interface FactDefinition {
  description: string;
  params: z.ZodType<FactParams>;
  compute(context: FactContext, params: FactParams): FactValue;
  /** It compares the environment with the other one: samples of either can change it. */
  compares?: boolean;
  /** It counts no probes (its samples are undefined): minSamples does not apply to a rule of such facts alone. */
  windowless?: boolean;
  /** Its `window` is a duration of its own (an SLO's), not one of the config's `windows`. */
  ownWindow?: boolean;
  /**
   * It sums what a window of probes held, so it remembers failures that are over (errorRatio over
   * 5 m after a minute's outage); a fact without it says how things are now (a streak, the latest
   * value, how long memory has stayed over a line).
   */
  overWindow?: boolean;
  /**
   * It reads only whether the latest probes passed (a streak, up or down): a fresh round of the
   * probes answers it again, as a promotion's probe gates do.
   */
  latestPass?: boolean;
  /**
   * Its value may be more than greenlight has seen: a value above its line at the first reading
   * (after a start, a reload) may have been above for longer. FactContext.worstCase assumes it was.
   */
  unseen?: boolean;
  /** Checks of its params against the config beyond their shape: param name → what is wrong. */
  check?(params: FactParams, config: Config): { param: string; message: string }[];
  /** The least and most its value can be (numbers only): a comparison outside them never or always holds. */
  range?: readonly [min: number, max: number];
  /**
   * What its value is (default a number): a rule compares it only with a value of that kind (an
   * environment: one of the config's), or the comparison never holds (probeUp equal 0, activeEnvironment equal gren).
   */
  kind?: 'boolean' | 'environment';
}

const SHARE = [0, 1] as const;
const NOT_NEGATIVE = [0, Number.POSITIVE_INFINITY] as const;

export interface FactParams {
  probe?: string | string[];
  window?: string;
  env?: string;
  name?: string;
  line?: number;
  quantile?: number;
  minSamples?: number;
  slo?: string;
  minCoverage?: number;
}

const ProbeParam = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional();
const EnvParam = z.string().optional();
const WindowParam = z.string().optional();

const windowed = z.strictObject({ probe: ProbeParam, window: WindowParam, env: EnvParam });
const probeOnly = z.strictObject({ probe: ProbeParam, env: EnvParam });
/**
 * The one probe whose extracted value a fact reads: a name, never `*` (every probe), which would
 * read whichever probe came first and dodge the check that the probe extracts the value.
 */
const OneProbe = z
  .string()
  .min(1)
  .refine((name) => name !== '*', "names one probe: this fact reads one probe's extracted value, not * (every probe)");
const extracted = z.strictObject({ probe: OneProbe, name: z.string().min(1), env: EnvParam });
const MinSamplesParam = z.int().min(1).optional();
const compared = z.strictObject({ probe: ProbeParam, window: WindowParam, env: EnvParam, minSamples: MinSamplesParam });
const quantiled = z.strictObject({
  probe: ProbeParam,
  window: WindowParam,
  env: EnvParam,
  minSamples: MinSamplesParam,
  quantile: z.number().gt(0).lt(1).optional(),
});
const burn = z.strictObject({ slo: z.string().min(1).optional(), window: z.string(), env: EnvParam, minCoverage: z.number().min(0).max(1).optional() });

/** The share of a burn-rate window that must have been observed before its rate says anything (a fact's `minCoverage` param). */
export const BURN_MIN_COVERAGE = 0.5;
const budget = z.strictObject({ slo: z.string().min(1).optional() });

/** Probes each side must hold in the window before a comparison says anything (a fact's `minSamples` param). */
export const COMPARISON_MIN_SAMPLES = 20;
const heldAbove = z.strictObject({ probe: OneProbe, name: z.string().min(1), line: z.number(), env: EnvParam });

/** The environment a fact reads: its own `env` param, else the rule's; `live`/`idle` resolved now. */
export function resolveEnv(context: Pick<FactContext, 'activeEnvironment' | 'environments'>, spec: string): string {
  if (spec === 'live') return context.activeEnvironment;
  if (spec === 'idle') return context.environments.find((env) => env !== context.activeEnvironment) ?? spec;
  return spec;
}

function selected(context: FactContext, params: FactParams): ProbeSeries[] {
  const env = resolveEnv(context, params.env ?? context.ruleEnv);
  const probe = params.probe ?? '*';
  if (probe === '*') return [...context.series(env)];
  const names = Array.isArray(probe) ? probe : [probe];
  const named = context.named ?? byName(context.series(env));
  const found: ProbeSeries[] = [];
  names.forEach((name, i) => {
    const series = names.indexOf(name) === i ? named(env, name) : undefined; // a name listed twice counts once
    if (series) found.push(series);
  });
  return found;
}

/** The pool of the environment when the fact reads every probe of it (no `probe`, or `*`). */
function poolFor(context: FactContext, params: FactParams): SeriesPool | undefined {
  if (params.probe !== undefined && params.probe !== '*') return undefined;
  return context.pool?.(resolveEnv(context, params.env ?? context.ruleEnv));
}

function windowIndex(series: ProbeSeries, window: string | undefined): number {
  if (window === undefined) return series.windows.length - 1;
  const index = series.windows.findIndex((w) => formatDuration(w.windowMs) === window);
  return index < 0 ? series.windows.length - 1 : index;
}

/** Where an environment's window facts start counting: when it went live, for the live one (FactContext.liveSince). */
function sinceFor(context: FactContext, params: FactParams): number | undefined {
  return resolveEnv(context, params.env ?? context.ruleEnv) === context.activeEnvironment ? context.liveSince : undefined;
}

/** Pool the selected series' windows: counts and latency sums add up. */
function pooled(context: FactContext, params: FactParams) {
  const since = sinceFor(context, params);
  const pool = poolFor(context, params)?.window(params.window);
  if (pool) {
    const totals = pool.totals(context.now, since);
    return { count: totals.count, failures: totals.failures, meanMs: totals.count === 0 ? undefined : totals.latencySumMs / totals.count };
  }
  let count = 0;
  let failures = 0;
  let latencySumMs = 0;
  for (const series of selected(context, params)) {
    const totals = series.windows[windowIndex(series, params.window)]!.totals(context.now, since);
    count += totals.count;
    failures += totals.failures;
    latencySumMs += totals.latencySumMs;
  }
  return { count, failures, meanMs: count === 0 ? undefined : latencySumMs / count };
}

/** The worst (highest) latency quantile among the selected series, and their sample count. */
function worstQuantile(context: FactContext, params: FactParams, q: number) {
  const since = sinceFor(context, params);
  let count = 0;
  let worst: number | undefined;
  for (const series of selected(context, params)) {
    const window = series.windows[windowIndex(series, params.window)]!;
    count += window.totals(context.now, since).count;
    worst = max(worst, window.quantile(q, context.now, since));
  }
  return { count, ms: worst };
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1_000);

/** The environment a comparison reads, and the other one: its baseline. */
function sides(context: FactContext, params: FactParams): { env: string; baseline: string | undefined } {
  const env = resolveEnv(context, params.env ?? context.ruleEnv);
  return { env, baseline: context.environments.find((other) => other !== env) };
}

interface Pair {
  series: ProbeSeries;
  baseline: ProbeSeries;
  window: number;
}

/**
 * The selected probes present on both sides, each side holding at least `minSamples` probes in
 * the window, and the fewest samples any compared side holds (0 when none is compared).
 */
function pairs(context: FactContext, params: FactParams): { pairs: Pair[]; samples: number } {
  const { baseline } = sides(context, params);
  if (baseline === undefined) return { pairs: [], samples: 0 };
  const counterpart = context.named ?? byName(context.series(baseline));
  const min = params.minSamples ?? COMPARISON_MIN_SAMPLES;
  const out: Pair[] = [];
  let samples = Number.POSITIVE_INFINITY;
  for (const series of selected(context, params)) {
    const other = counterpart(baseline, series.probe);
    if (!other) continue;
    const window = windowIndex(series, params.window);
    const count = Math.min(series.windows[window]!.totals(context.now).count, other.windows[window]!.totals(context.now).count);
    if (count < min) continue;
    out.push({ series, baseline: other, window });
    samples = Math.min(samples, count);
  }
  return { pairs: out, samples: out.length === 0 ? 0 : samples };
}

/** A lookup by probe name over one environment's `list`, for a context without `named`. */
function byName(list: readonly ProbeSeries[]): (env: string, probe: string) => ProbeSeries | undefined {
  const index = new Map(list.map((series) => [series.probe, series]));
  return (_env, probe) => index.get(probe);
}

function sloOf(context: FactContext, params: FactParams): SloTracker | undefined {
  return context.slo?.(params.slo);
}

/** The SLO a rule names, or the only one; what is wrong otherwise. */
function checkSlo(params: FactParams, config: Config): { param: string; message: string }[] {
  const names = Object.keys(config.slo);
  if (params.slo === undefined) {
    if (names.length === 1) return [];
    return [{ param: 'slo', message: names.length === 0 ? 'no SLO is configured: add one under slo' : `name the SLO: one of ${names.join(', ')}` }];
  }
  return names.includes(params.slo)
    ? []
    : [
        {
          param: 'slo',
          message: `${JSON.stringify(params.slo)} is not an SLO of this config${names.length ? `; use one of ${names.join(', ')}` : ': add it under slo'}`,
        },
      ];
}

/** Samples in the shortest window, for facts that are not about a window. */
function recentSamples(context: FactContext, params: FactParams): number {
  const pool = poolFor(context, params)?.windows[0];
  if (pool) return pool.totals(context.now).count;
  return selected(context, params).reduce((sum, series) => sum + series.windows[0]!.totals(context.now).count, 0);
}

export const FACTS: Readonly<Record<string, FactDefinition>> = {
  errorRatio: {
    range: SHARE,
    overWindow: true,
    description: 'Failed / all probes in a window (0 to 1), pooled over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: figures.count === 0 ? undefined : figures.failures / figures.count, samples: figures.count };
    },
  },
  meanLatency: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description: 'Mean probe latency in seconds over a window, pooled over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: seconds(figures.meanMs), samples: figures.count };
    },
  },
  p50Latency: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description: 'Median latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.5);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  p95Latency: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description: '95th percentile latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.95);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  p99Latency: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description: '99th percentile latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.99);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  samples: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description: 'Probes in a window, summed over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: figures.count, samples: figures.count };
    },
  },
  consecutiveFailures: {
    range: NOT_NEGATIVE,
    latestPass: true,
    description: 'Failed probes in a row: the longest streak among the selected probes.',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 ? undefined : Math.max(...series.map((s) => s.consecutiveFailures));
      return { value, samples: recentSamples(context, params) };
    },
  },
  consecutiveSuccesses: {
    range: NOT_NEGATIVE,
    latestPass: true,
    description: 'Successful probes in a row: the shortest streak among the selected probes.',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 ? undefined : Math.min(...series.map((s) => s.consecutiveSuccesses));
      return { value, samples: recentSamples(context, params) };
    },
  },
  probeUp: {
    kind: 'boolean',
    latestPass: true,
    description: 'Whether the latest probe of every selected probe succeeded (undefined before the first).',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 || series.some((s) => s.up === undefined) ? undefined : series.every((s) => s.up === true);
      return { value, samples: recentSamples(context, params) };
    },
  },
  value: {
    description: 'The value the latest probe extracted (for example memory_percent); none when it read none.',
    params: extracted,
    compute: (context, params) => {
      const series = selected(context, params)[0];
      return { value: series?.latestValue(params.name!), samples: recentSamples(context, params) };
    },
  },
  aboveFor: {
    range: NOT_NEGATIVE,
    description: 'Seconds an extracted value has stayed above `line` without a break (0 when not above).',
    params: heldAbove,
    unseen: true,
    compute: (context, params) => {
      const series = selected(context, params)[0];
      return {
        value: series ? series.aboveForMs(params.name!, params.line!, context.now, context.worstCase === true) / 1_000 : undefined,
        samples: recentSamples(context, params),
      };
    },
  },
  activeEnvironment: {
    kind: 'environment',
    description: 'The name of the live environment.',
    params: z.strictObject({}),
    windowless: true,
    compute: (context) => ({ value: context.activeEnvironment, samples: undefined }),
  },
  tlsDaysLeft: {
    description:
      "Days until the earliest certificate of an https target's chain expires (negative once expired): the fewest among the selected probes; undefined without https.",
    params: probeOnly,
    compute: (context, params) => {
      const pool = poolFor(context, params);
      if (pool) return { value: pool.tlsDaysLeft(context.now), samples: recentSamples(context, params) };
      let value: number | undefined;
      for (const series of selected(context, params)) {
        const days = series.tlsDaysLeft(context.now);
        if (days !== undefined && (value === undefined || days < value)) value = days;
      }
      return { value, samples: recentSamples(context, params) };
    },
  },
  tlsValid: {
    kind: 'boolean',
    description: 'Whether the certificate chain of every selected https target verifies for its host name; undefined without https.',
    params: probeOnly,
    compute: (context, params) => {
      const facts = selected(context, params).flatMap((series) => (series.tls ? [series.tls] : []));
      return { value: facts.length === 0 ? undefined : facts.every((tls) => tls.valid), samples: recentSamples(context, params) };
    },
  },
  latencyRatio: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description:
      "The environment's latency at `quantile` (0.95) over the other environment's, same probe and window: the worst ratio among the selected probes with `minSamples` (20) probes on each side.",
    params: quantiled,
    compares: true,
    compute: (context, params) => {
      const { pairs: compared, samples } = pairs(context, params);
      const q = params.quantile ?? 0.95;
      let value: number | undefined;
      for (const { series, baseline, window } of compared) {
        const mine = series.windows[window]!.quantile(q, context.now);
        const theirs = baseline.windows[window]!.quantile(q, context.now);
        if (mine === undefined || theirs === undefined || !(theirs > 0)) continue;
        value = value === undefined ? mine / theirs : Math.max(value, mine / theirs);
      }
      return { value, samples };
    },
  },
  errorRatioDiff: {
    range: [-1, 1],
    overWindow: true,
    description:
      "The environment's error ratio minus the other environment's over the same window (pooled over the selected probes with `minSamples` (20) probes on each side): 0.05 is five points worse.",
    params: compared,
    compares: true,
    compute: (context, params) => {
      const { pairs: compared, samples } = pairs(context, params);
      if (compared.length === 0) return { value: undefined, samples };
      let mine = { count: 0, failures: 0 };
      let theirs = { count: 0, failures: 0 };
      for (const { series, baseline, window } of compared) {
        const a = series.windows[window]!.totals(context.now);
        const b = baseline.windows[window]!.totals(context.now);
        mine = { count: mine.count + a.count, failures: mine.failures + a.failures };
        theirs = { count: theirs.count + b.count, failures: theirs.failures + b.failures };
      }
      return { value: mine.failures / mine.count - theirs.failures / theirs.count, samples };
    },
  },
  latencyRegressionP: {
    range: SHARE,
    overWindow: true,
    description:
      "p-value that the environment's latency is no worse than the other environment's over the same window: a rank test (Mann-Whitney) and a tail test (samples above the other's p99), combined; below 0.01 is significant at 1 %. Bonferroni over the selected probes with `minSamples` (20) probes on each side.",
    params: compared,
    compares: true,
    compute: (context, params) => {
      const { pairs: compared, samples } = pairs(context, params);
      if (compared.length === 0) return { value: undefined, samples };
      let smallest = 1;
      for (const { series, baseline, window } of compared) {
        const p = latencyRegression(series.windows[window]!.histogram(context.now), baseline.windows[window]!.histogram(context.now)).p;
        smallest = Math.min(smallest, p);
      }
      return { value: Math.min(1, smallest * compared.length), samples };
    },
  },
  promotionWatch: {
    kind: 'boolean',
    description: 'Whether a promotion is watching the environment: from its switch to the end of its watch, while the environment it replaced is the baseline.',
    params: z.strictObject({ env: EnvParam }),
    windowless: true,
    compute: (context, params) => ({
      value: context.watching !== undefined && context.watching === resolveEnv(context, params.env ?? context.ruleEnv),
      samples: undefined,
    }),
  },
  burnRate: {
    range: NOT_NEGATIVE,
    overWindow: true,
    description:
      "How fast an SLO's error budget burns over `window`, on the environment while it was live: (bad / all) / (1 − objective); 1 spends the budget exactly over the period. Undefined until `minCoverage` (0.5) of the window has been observed.",
    params: burn,
    ownWindow: true,
    check: (params, config) => {
      const issues = checkSlo(params, config);
      const ms = parseDuration(params.window ?? '');
      const slo = config.slo[params.slo ?? Object.keys(config.slo)[0] ?? ''];
      if (ms === undefined || !Number.isFinite(ms))
        issues.push({ param: 'window', message: `${JSON.stringify(params.window)} is not a duration such as 5m, 1h or 3d` });
      else if (ms < MIN_WINDOW_MS)
        issues.push({ param: 'window', message: `${params.window} is shorter than ${formatDuration(MIN_WINDOW_MS)}, the shortest window` });
      else if (slo && ms > slo.period)
        issues.push({ param: 'window', message: `${params.window} is longer than the SLO's period (${formatDuration(slo.period)})` });
      return issues;
    },
    compute: (context, params) => {
      const slo = sloOf(context, params);
      const ms = parseDuration(params.window ?? '');
      const counts = slo && ms !== undefined ? slo.window(resolveEnv(context, params.env ?? context.ruleEnv), ms, context.now) : undefined;
      // An hour's rate from five minutes of data is a five-minute rate: wait for the window to fill.
      const covered = counts !== undefined && counts.coverage >= (params.minCoverage ?? BURN_MIN_COVERAGE);
      return { value: covered && slo ? slo.burnRate(counts) : undefined, samples: counts?.total ?? 0 };
    },
  },
  budgetRemaining: {
    overWindow: true,
    description:
      "The share of an SLO's error budget for its period not yet spent, by the service (every environment's live time): 1 untouched, 0 spent, below 0 overspent.",
    params: budget,
    check: checkSlo,
    compute: (context, params) => {
      const slo = sloOf(context, params);
      if (!slo) return { value: undefined, samples: 0 };
      return { value: slo.budgetRemaining(context.now), samples: slo.period(context.now).total };
    },
  },
};

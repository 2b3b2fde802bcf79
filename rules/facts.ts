/**
 * The facts rules can name, computed from the probe series. Every fact reads one environment:
 * the rule's (`env: live` by default) unless its params name another. A fact's `probe` param
 * is a probe name, a list of names, or `*` (all probes of the environment, the default).
 */
import { z } from 'zod';
import type { ProbeSeries } from '../probes/probe-series.js';
import { formatDuration } from '../config/units.js';

/** What facts read: the series of both environments, which one is live, and the time. */
export interface FactContext {
  /** The environment the rule reads when a fact names none ('live', 'idle' or a name). */
  ruleEnv: string;
  activeEnvironment: string;
  environments: readonly string[];
  now: number;
  series(env: string): readonly ProbeSeries[];
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
}

export interface FactParams {
  probe?: string | string[];
  window?: string;
  env?: string;
  name?: string;
  line?: number;
}

const ProbeParam = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional();
const EnvParam = z.string().optional();
const WindowParam = z.string().optional();

const windowed = z.strictObject({ probe: ProbeParam, window: WindowParam, env: EnvParam });
const probeOnly = z.strictObject({ probe: ProbeParam, env: EnvParam });
const extracted = z.strictObject({ probe: z.string().min(1), name: z.string().min(1), env: EnvParam });
const heldAbove = z.strictObject({ probe: z.string().min(1), name: z.string().min(1), line: z.number(), env: EnvParam });

/** The environment a fact reads: its own `env` param, else the rule's; `live`/`idle` resolved now. */
export function resolveEnv(context: Pick<FactContext, 'activeEnvironment' | 'environments'>, spec: string): string {
  if (spec === 'live') return context.activeEnvironment;
  if (spec === 'idle') return context.environments.find((env) => env !== context.activeEnvironment) ?? spec;
  return spec;
}

function selected(context: FactContext, params: FactParams): ProbeSeries[] {
  const env = resolveEnv(context, params.env ?? context.ruleEnv);
  const all = context.series(env);
  const probe = params.probe ?? '*';
  if (probe === '*') return [...all];
  const names = Array.isArray(probe) ? probe : [probe];
  return all.filter((series) => names.includes(series.probe));
}

function windowIndex(series: ProbeSeries, window: string | undefined): number {
  if (window === undefined) return series.windows.length - 1;
  const index = series.windows.findIndex((w) => formatDuration(w.windowMs) === window);
  return index < 0 ? series.windows.length - 1 : index;
}

/** Pool the selected series' windows: counts and latency sums add up. */
function pooled(context: FactContext, params: FactParams) {
  let count = 0;
  let failures = 0;
  let latencySumMs = 0;
  for (const series of selected(context, params)) {
    const totals = series.windows[windowIndex(series, params.window)]!.totals(context.now);
    count += totals.count;
    failures += totals.failures;
    latencySumMs += totals.latencySumMs;
  }
  return { count, failures, meanMs: count === 0 ? undefined : latencySumMs / count };
}

/** The worst (highest) latency quantile among the selected series, and their sample count. */
function worstQuantile(context: FactContext, params: FactParams, q: number) {
  let count = 0;
  let worst: number | undefined;
  for (const series of selected(context, params)) {
    const window = series.windows[windowIndex(series, params.window)]!;
    count += window.totals(context.now).count;
    worst = max(worst, window.quantile(q, context.now));
  }
  return { count, ms: worst };
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1_000);

/** Samples in the shortest window, for facts that are not about a window. */
function recentSamples(context: FactContext, params: FactParams): number {
  return selected(context, params).reduce((sum, series) => sum + series.windows[0]!.totals(context.now).count, 0);
}

export const FACTS: Readonly<Record<string, FactDefinition>> = {
  errorRatio: {
    description: 'Failed / all probes in a window (0 to 1), pooled over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: figures.count === 0 ? undefined : figures.failures / figures.count, samples: figures.count };
    },
  },
  meanLatency: {
    description: 'Mean probe latency in seconds over a window, pooled over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: seconds(figures.meanMs), samples: figures.count };
    },
  },
  p50Latency: {
    description: 'Median latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.5);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  p95Latency: {
    description: '95th percentile latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.95);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  p99Latency: {
    description: '99th percentile latency in seconds over a window (the worst of the selected probes).',
    params: windowed,
    compute: (context, params) => {
      const figures = worstQuantile(context, params, 0.99);
      return { value: seconds(figures.ms), samples: figures.count };
    },
  },
  samples: {
    description: 'Probes in a window, summed over the selected probes.',
    params: windowed,
    compute: (context, params) => {
      const figures = pooled(context, params);
      return { value: figures.count, samples: figures.count };
    },
  },
  consecutiveFailures: {
    description: 'Failed probes in a row: the longest streak among the selected probes.',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 ? undefined : Math.max(...series.map((s) => s.consecutiveFailures));
      return { value, samples: recentSamples(context, params) };
    },
  },
  consecutiveSuccesses: {
    description: 'Successful probes in a row: the shortest streak among the selected probes.',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 ? undefined : Math.min(...series.map((s) => s.consecutiveSuccesses));
      return { value, samples: recentSamples(context, params) };
    },
  },
  probeUp: {
    description: 'Whether the latest probe of every selected probe succeeded (undefined before the first).',
    params: probeOnly,
    compute: (context, params) => {
      const series = selected(context, params);
      const value = series.length === 0 || series.some((s) => s.up === undefined) ? undefined : series.every((s) => s.up === true);
      return { value, samples: recentSamples(context, params) };
    },
  },
  value: {
    description: 'The latest value a probe extracted (for example memory_percent).',
    params: extracted,
    compute: (context, params) => {
      const series = selected(context, params)[0];
      return { value: series?.extracted.get(params.name!)?.value, samples: recentSamples(context, params) };
    },
  },
  aboveFor: {
    description: 'Seconds an extracted value has stayed above `line` without a break (0 when not above).',
    params: heldAbove,
    compute: (context, params) => {
      const series = selected(context, params)[0];
      return { value: series ? series.aboveForMs(params.name!, params.line!, context.now) / 1_000 : undefined, samples: recentSamples(context, params) };
    },
  },
  activeEnvironment: {
    description: 'The name of the live environment.',
    params: z.strictObject({}),
    compute: (context) => ({ value: context.activeEnvironment, samples: undefined }),
  },
};

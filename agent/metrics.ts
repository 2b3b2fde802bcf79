/**
 * greenlight's Prometheus metrics (CONTRACT.md, "Metrics"), on a private prom-client registry.
 * Names are defined here once. Per-series label children are created once and cached, so the
 * per-probe cost is a few property updates; window figures are computed only when scraped.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { formatDuration } from '../config/units.js';
import type { ProbeResult } from '../probes/probe-result.js';
import type { ProbeSeries } from '../probes/probe-series.js';

const QUANTILES = [
  ['0.5', 'p50LatencyMs'],
  ['0.95', 'p95LatencyMs'],
  ['0.99', 'p99LatencyMs'],
] as const;

/** Buckets of greenlight_probe_duration_seconds: from a fast local answer to past any sane timeout. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

interface SeriesChildren {
  success: ReturnType<Gauge<'probe' | 'env'>['labels']>;
  duration: ReturnType<Histogram<'probe' | 'env'>['labels']>;
  consecutive: ReturnType<Gauge<'probe' | 'env'>['labels']>;
  results: Map<string, ReturnType<Counter<'probe' | 'env' | 'result'>['labels']>>;
  /** Per window: the label sets of the window metrics, built once. */
  windowLabels: { window: Labels; quantiles: Labels[] }[];
}

type Labels = Record<string, string>;
interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

export interface MetricsOptions {
  /** The series to report window figures for, read at scrape time. */
  series: () => Iterable<ProbeSeries>;
  now: () => number;
  /** Include process_* and nodejs_* metrics (the agent does; unit tests comparing text do not). */
  processMetrics: boolean;
}

export class AgentMetrics {
  readonly #registry = new Registry();
  readonly #probeSuccess: Gauge<'probe' | 'env'>;
  readonly #probeDuration: Histogram<'probe' | 'env'>;
  readonly #probesTotal: Counter<'probe' | 'env' | 'result'>;
  readonly #consecutiveFailures: Gauge<'probe' | 'env'>;
  readonly #activeEnvironment: Gauge<'env'>;
  readonly #ruleState: Gauge<'rule'>;
  readonly #actionsTotal: Counter<'action' | 'outcome'>;
  readonly #flagEnabled: Gauge<'flag' | 'env'>;
  readonly #children = new Map<ProbeSeries, SeriesChildren>();
  readonly #options: MetricsOptions;
  /** Serializes renders: an OpenMetrics render temporarily changes shared registry state. */
  #rendering: Promise<unknown> = Promise.resolve();
  #renders = 0;
  #windows: { render: number; errorRatio: MetricValue[]; latency: MetricValue[] } | undefined;

  constructor(options: MetricsOptions) {
    this.#options = options;
    const registers = [this.#registry];
    this.#probeSuccess = new Gauge({ name: 'greenlight_probe_success', help: 'Whether the latest probe succeeded (1) or failed (0).', labelNames: ['probe', 'env'], registers });
    this.#probeDuration = new Histogram({
      name: 'greenlight_probe_duration_seconds',
      help: 'Duration of probes, from request to the end of the body or the failure.',
      labelNames: ['probe', 'env'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#probesTotal = new Counter({
      name: 'greenlight_probes_total',
      help: 'Probes by result: ok, skipped (previous still in flight), or the failure reason code.',
      labelNames: ['probe', 'env', 'result'],
      registers,
    });
    // Window figures are computed from the series when scraped, not pushed per probe. Latency
    // quantiles carry a `quantile` label, so they are exposed as a summary (with the window's
    // _sum and _count), which is what Prometheus expects of that label.
    this.#registerCollected('greenlight_window_error_ratio', 'Failed / all probes in the sliding window (NaN while the window is empty).', 'gauge', () => this.#windowValues().errorRatio);
    this.#registerCollected('greenlight_window_latency_seconds', 'Probe latency quantiles over the sliding window (NaN while the window is empty).', 'summary', () => this.#windowValues().latency);
    this.#consecutiveFailures = new Gauge({ name: 'greenlight_consecutive_failures', help: 'Failed probes in a row (0 after a success).', labelNames: ['probe', 'env'], registers });
    this.#activeEnvironment = new Gauge({ name: 'greenlight_active_environment', help: 'The live environment: 1 for the live one, 0 for the other.', labelNames: ['env'], registers });
    this.#ruleState = new Gauge({ name: 'greenlight_rule_state', help: 'State of each rule: 0 inactive, 1 pending, 2 firing.', labelNames: ['rule'], registers });
    this.#actionsTotal = new Counter({
      name: 'greenlight_actions_total',
      help: 'Actions by outcome: succeeded, failed, skipped, dry_run.',
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.#flagEnabled = new Gauge({ name: 'greenlight_flag_enabled', help: 'Feature flags per environment: 1 on, 0 off.', labelNames: ['flag', 'env'], registers });
    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.#registry });
      // Gauges named *_total fail `promtool check metrics`; the same counts stay available
      // by type in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.#registry.removeSingleMetric(name);
    }
  }

  /** Create the label children of a series so it shows in /metrics before its first probe. */
  addSeries(series: ProbeSeries, windowsMs: readonly number[]): void {
    const labels = { probe: series.probe, env: series.env };
    const windows = windowsMs.map(formatDuration);
    const children: SeriesChildren = {
      success: this.#probeSuccess.labels(labels),
      duration: this.#probeDuration.labels(labels),
      consecutive: this.#consecutiveFailures.labels(labels),
      results: new Map([['ok', this.#probesTotal.labels({ ...labels, result: 'ok' })]]),
      windowLabels: windows.map((window) => ({ window: { ...labels, window }, quantiles: QUANTILES.map(([quantile]) => ({ ...labels, window, quantile })) })),
    };
    children.results.get('ok')!.inc(0);
    children.consecutive.set(0);
    this.#children.set(series, children);
  }

  /** Forget a series (a probe removed by a reload): its label sets leave /metrics. */
  removeSeries(series: ProbeSeries): void {
    if (!this.#children.delete(series)) return;
    const labels = { probe: series.probe, env: series.env };
    this.#probeSuccess.remove(labels);
    this.#probeDuration.remove(labels);
    this.#consecutiveFailures.remove(labels);
    for (const result of ['ok', 'skipped', 'timeout', 'refused', 'dns', 'tls', 'reset', 'status', 'assertion', 'body_too_large', 'invalid_json']) {
      this.#probesTotal.remove({ ...labels, result });
    }
  }

  /** Account for one probe result (after it has been recorded in its series). */
  recordResult(series: ProbeSeries, result: ProbeResult): void {
    const children = this.#children.get(series);
    if (!children) return;
    children.success.set(result.ok ? 1 : 0);
    children.duration.observe(result.durationMs / 1_000);
    children.consecutive.set(series.consecutiveFailures);
    this.#resultCounter(series, children, result.ok ? 'ok' : result.reason!).inc();
  }

  recordSkipped(series: ProbeSeries): void {
    const children = this.#children.get(series);
    if (children) this.#resultCounter(series, children, 'skipped').inc();
  }

  setActiveEnvironment(active: string, environments: readonly string[]): void {
    for (const env of environments) this.#activeEnvironment.set({ env }, env === active ? 1 : 0);
  }

  setRuleState(rule: string, state: 'inactive' | 'pending' | 'firing'): void {
    this.#ruleState.set({ rule }, state === 'inactive' ? 0 : state === 'pending' ? 1 : 2);
  }

  removeRule(rule: string): void {
    this.#ruleState.remove({ rule });
  }

  countAction(action: string, outcome: 'succeeded' | 'failed' | 'skipped' | 'dry_run'): void {
    this.#actionsTotal.inc({ action, outcome });
  }

  setFlag(flag: string, env: string, enabled: boolean): void {
    this.#flagEnabled.set({ flag, env }, enabled ? 1 : 0);
  }

  /** The exposition text, in the Prometheus format or, when asked, OpenMetrics. */
  render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    const next = this.#rendering.then(() => this.#render(openMetrics));
    this.#rendering = next.catch(() => undefined);
    return next;
  }

  async #render(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    this.#renders++;
    if (!openMetrics) return { contentType: this.#registry.contentType, body: await this.#registry.metrics() };
    // prom-client renames counters in place for OpenMetrics (dropping `_total`); put the names
    // back afterwards so the next Prometheus-format scrape still says greenlight_probes_total.
    const counters = this.#registry.getMetricsAsArray().filter((metric) => String(metric.type) === 'counter') as unknown as { name: string }[];
    const names = counters.map((metric) => metric.name);
    (this.#registry as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    try {
      return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: await this.#registry.metrics() };
    } finally {
      counters.forEach((metric, index) => (metric.name = names[index]!));
      this.#registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
    }
  }

  #resultCounter(series: ProbeSeries, children: SeriesChildren, result: string) {
    let child = children.results.get(result);
    if (!child) {
      child = this.#probesTotal.labels({ probe: series.probe, env: series.env, result });
      children.results.set(result, child);
    }
    return child;
  }

  /** A metric whose values are computed at scrape time, in prom-client's collector shape. */
  #registerCollected(name: string, help: string, type: 'gauge' | 'summary', values: () => MetricValue[]): void {
    const metric = { name, help, type, aggregator: 'omit', get: async () => ({ name, help, type, aggregator: 'omit', values: values() }), reset: () => undefined };
    this.#registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The window figures of every series; computed once per render and shared by both metrics. */
  #windowValues(): { errorRatio: MetricValue[]; latency: MetricValue[] } {
    if (this.#windows && this.#windows.render === this.#renders) return this.#windows;
    const now = this.#options.now();
    const errorRatio: MetricValue[] = [];
    const latency: MetricValue[] = [];
    for (const [series, children] of this.#children) {
      series.windows.forEach((window, index) => {
        const figures = window.figures(now);
        const labels = children.windowLabels[index]!;
        errorRatio.push({ labels: labels.window, value: figures.count === 0 ? Number.NaN : figures.errorRatio });
        QUANTILES.forEach(([, key], q) => {
          const ms = figures[key];
          latency.push({ labels: labels.quantiles[q]!, value: ms === undefined ? Number.NaN : ms / 1_000 });
        });
        latency.push({ metricName: 'greenlight_window_latency_seconds_sum', labels: labels.window, value: figures.count === 0 ? 0 : (figures.meanLatencyMs! * figures.count) / 1_000 });
        latency.push({ metricName: 'greenlight_window_latency_seconds_count', labels: labels.window, value: figures.count });
      });
    }
    this.#windows = { render: this.#renders, errorRatio, latency };
    return this.#windows;
  }
}

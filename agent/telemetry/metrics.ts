/**
 * greenlight's Prometheus metrics (CONTRACT.md, "Metrics"). Names are defined here once.
 *
 * The per-series families (probe success, duration histogram, probe counts, window figures,
 * consecutive failures) are the bulk of the exposition: 29 lines a series, 29,000 at 1,000
 * series. prom-client's generic formatter re-escapes every label set on every scrape and took
 * 150 ms for that; here each series' label string is built once, its counts live in plain
 * numbers and typed arrays (a probe updates them in place), and the text is written straight
 * out. The remaining families — process and Node metrics, live environment, rule states,
 * actions, flags — stay on a private prom-client registry, whose text follows ours.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { formatDuration } from '../../config/units.js';
import { flatString } from '../../config/flat-string.js';
import { REASON_CODES, type ProbeResult } from '../../probes/probe-result.js';
import type { ProbeSeries } from '../../probes/probe-series.js';
import type { SloStatus } from '../../probes/slo-window.js';
import type { WindowFigures } from '../../probes/sliding-window.js';

const QUANTILES = [
  ['0.5', 'p50LatencyMs'],
  ['0.95', 'p95LatencyMs'],
  ['0.99', 'p99LatencyMs'],
] as const;

/** Buckets of greenlight_probe_duration_seconds: from a fast local answer to past any sane timeout. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/**
 * The start of each bucket's sample, up to its series' labels (`…_bucket{le="0.005",`), the last
 * one +Inf's; and the end of each quantile's (`,quantile="0.5"} `). Shared by every series: a
 * series keeps one label text per window, not a line per bucket and quantile (issue 18: those
 * were 1.6 KB a series, held for the agent's life, to save a concatenation per scrape).
 */
const BUCKET_OPENINGS = [...DURATION_BUCKETS.map(String), '+Inf'].map((le) => `greenlight_probe_duration_seconds_bucket{le="${le}",`);
const QUANTILE_ENDINGS = QUANTILES.map(([quantile]) => `,quantile="${quantile}"} `);

/**
 * Every `result` of greenlight_probes_total (CONTRACT.md: ok, skipped, the reason codes), each
 * series' counts in this order. All of them exist at 0 from a series' start: a counter that first
 * appears at 1 hides that first probe from `rate()` and `increase()`, so a single timeout after
 * hours of `ok` counted for nothing in a query or an alert rule.
 */
const RESULTS = ['ok', 'skipped', ...REASON_CODES] as const;
const RESULT_INDEX = new Map<string, number>(RESULTS.map((result, index) => [result, index]));
const RESULT_ENDINGS = RESULTS.map((result) => `,result="${result}"} `);

/** Steps of a render (one series' lines of one family) per turn of the event loop: about 13 ms at 10,000 series (412 ms over 60,000 steps). */
export const RENDER_STEPS_PER_SLICE = 2_000;

/** Runs one part of a render in its turn; undefined when it will not run (the agent is stopping). */
export type RenderSlice = (work: () => boolean) => Promise<boolean | undefined>;

const FAMILIES = {
  success: { name: 'greenlight_probe_success', type: 'gauge', help: 'Whether the latest probe succeeded (1) or failed (0).' },
  duration: { name: 'greenlight_probe_duration_seconds', type: 'histogram', help: 'Duration of probes, from request to the end of the body or the failure.' },
  probes: { name: 'greenlight_probes_total', type: 'counter', help: 'Probes by result: ok, skipped (previous still in flight), or the failure reason code.' },
  errorRatio: { name: 'greenlight_window_error_ratio', type: 'gauge', help: 'Failed / all probes in the sliding window (NaN while the window is empty).' },
  // A summary as prom-client's with maxAgeSeconds is one: quantiles over the window, and _sum and
  // _count counters since the start (they used to be the window's, and fell with every probe that
  // left it: rate() over them read 20 probes a second for 1).
  latency: {
    name: 'greenlight_window_latency_seconds',
    type: 'summary',
    help: 'Probe latency quantiles over the sliding window (NaN while the window is empty).',
  },
  consecutive: { name: 'greenlight_consecutive_failures', type: 'gauge', help: 'Failed probes in a row (0 after a success).' },
  confirmations: {
    name: 'greenlight_confirmation_probes_total',
    type: 'counter',
    help: 'Confirmation probes: quick re-probes outside the schedule after a live probe failed or recovered (also counted in greenlight_probes_total).',
  },
  capped: {
    name: 'greenlight_confirmation_capped_total',
    type: 'counter',
    help: 'Confirmation re-probes the per-environment rate cap (probeDefaults.confirm.maxPerSecond) withheld.',
  },
  tlsExpiry: {
    name: 'greenlight_tls_cert_expiry_timestamp_seconds',
    type: 'gauge',
    help: 'Earliest expiry (Unix seconds) of the certificate chain an https target serves, as its latest TLS handshake showed it.',
  },
  sloBurnRate: {
    name: 'greenlight_slo_burn_rate',
    type: 'gauge',
    help: "How fast an SLO's error budget burns over a window, on an environment while it was live: (bad / all) / (1 - objective) (NaN while the window is empty).",
  },
  sloBudget: {
    name: 'greenlight_slo_budget_remaining_ratio',
    type: 'gauge',
    help: "The share of an SLO's error budget for its period not yet spent by the service (1 untouched, below 0 overspent; NaN before any probe).",
  },
  tlsVerified: {
    name: 'greenlight_tls_cert_verified',
    type: 'gauge',
    help: "Whether an https target's certificate chain verifies for its host name against the trusted CAs (1) or not (0).",
  },
} as const;

/** One series' exposition state: its label text, built once, and its numbers. */
interface SeriesMetrics {
  series: ProbeSeries;
  /** `probe="health",env="blue"` */
  labels: string;
  /** Per window: `probe="health",env="blue",window="1m"`. */
  windowLabels: string[];
  success: number | undefined;
  /** Observations per duration bucket (not cumulative); the last slot is +Inf. */
  buckets: Float64Array;
  durationSum: number;
  durationCount: number;
  /** Count per result label, in the order of RESULTS. */
  results: Float64Array;
  /** Whether the series' probe confirms: its confirmation counters show from the start, at 0. */
  confirms: boolean;
  /** Confirmation probes run and withheld by the rate cap; shown for series that confirm, or once a series has any. */
  confirmations: number;
  capped: number;
}

export interface MetricsOptions {
  /** Clock for the window figures, read at scrape time. */
  now: () => number;
  /** Include process_* and nodejs_* metrics (the agent does; unit tests comparing text do not). */
  processMetrics: boolean;
}

const ACTION_OUTCOMES = ['succeeded', 'failed', 'skipped', 'dry_run'] as const;

function receiverLabels(receiver: string): { receiver: string; status: 'firing' | 'resolved'; outcome: 'sent' | 'failed' }[] {
  return (['firing', 'resolved'] as const).flatMap((status) => (['sent', 'failed'] as const).map((outcome) => ({ receiver, status, outcome })));
}

export class AgentMetrics {
  readonly #registry = new Registry();
  readonly #activeEnvironment: Gauge<'env'>;
  readonly #ruleState: Gauge<'rule'>;
  readonly #actionsTotal: Counter<'action' | 'outcome'>;
  /** The receivers whose series declare() made, to drop those a reload removes. */
  #receivers = new Set<string>();
  #actions = new Set<string>();
  readonly #flagEnabled: Gauge<'flag' | 'env'>;
  readonly #alertsTotal: Counter<'receiver' | 'status' | 'outcome'>;
  readonly #cluster: { isLeader: Gauge; epoch: Gauge; members: Gauge };
  readonly #maintenance: Gauge<'env'>;
  readonly #silences: Gauge<'state'>;
  readonly #incidents: Gauge<'state'>;
  readonly #series = new Map<ProbeSeries, SeriesMetrics>();
  /** The counts of series a reload removed, by their labels: a series rebuilt under them goes on from there. */
  readonly #retired = new Map<string, SeriesMetrics>();
  readonly #options: MetricsOptions;
  #slo: () => SloStatus[] = () => [];
  /** Serializes renders: an OpenMetrics render temporarily changes shared registry state. */
  #rendering: Promise<unknown> = Promise.resolve();

  constructor(options: MetricsOptions) {
    this.#options = options;
    const registers = [this.#registry];
    this.#activeEnvironment = new Gauge({
      name: 'greenlight_active_environment',
      help: 'The live environment: 1 for the live one, 0 for the other.',
      labelNames: ['env'],
      registers,
    });
    this.#ruleState = new Gauge({
      name: 'greenlight_rule_state',
      help: 'State of each rule: 0 inactive, 1 pending, 2 firing.',
      labelNames: ['rule'],
      registers,
    });
    this.#actionsTotal = new Counter({
      name: 'greenlight_actions_total',
      help: 'Actions by outcome: succeeded, failed, skipped, dry_run.',
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.#flagEnabled = new Gauge({
      name: 'greenlight_flag_enabled',
      help: 'Feature flags per environment: 1 on, 0 off.',
      labelNames: ['flag', 'env'],
      registers,
    });
    this.#alertsTotal = new Counter({
      name: 'greenlight_alerts_total',
      help: 'Alert deliveries per receiver by status (firing, resolved) and outcome (sent, failed).',
      labelNames: ['receiver', 'status', 'outcome'],
      registers,
    });
    this.#cluster = {
      isLeader: new Gauge({
        name: 'greenlight_cluster_is_leader',
        help: 'Whether this agent leads its cluster and acts: 1 yes, 0 no (an agent alone: 1).',
        registers,
      }),
      epoch: new Gauge({ name: 'greenlight_cluster_epoch', help: "The cluster leader's term, incremented by every new term (the fencing token).", registers }),
      members: new Gauge({ name: 'greenlight_cluster_members', help: 'Agents of the cluster seen recently, this one included.', registers }),
    };
    this.setCluster({ isLeader: true, epoch: 1, members: 1 });
    // The alert lifecycle (README, "Alert lifecycle").
    this.#maintenance = new Gauge({
      name: 'greenlight_maintenance',
      help: 'Whether a maintenance window is open on the environment: 1 open, 0 not (it mutes notifications only while the environment is idle).',
      labelNames: ['env'],
      registers,
    });
    this.#silences = new Gauge({ name: 'greenlight_silences', help: 'Silences by state: pending, active.', labelNames: ['state'], registers });
    this.#incidents = new Gauge({
      name: 'greenlight_incidents',
      help: 'Open incidents by state: firing (unacknowledged), acknowledged.',
      labelNames: ['state'],
      registers,
    });
    if (options.processMetrics) {
      collectDefaultMetrics({ register: this.#registry });
      // Gauges named *_total fail `promtool check metrics`; the same counts stay available
      // by type in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
        this.#registry.removeSingleMetric(name);
    }
  }

  /** Where the SLO figures come from, read at scrape time. */
  watchSlo(source: () => SloStatus[]): void {
    this.#slo = source;
  }

  /**
   * Make a series known so it shows in /metrics before its first probe. A series a reload rebuilt
   * (its probe changed) goes on from the counts of the one it replaced: a counter never goes down
   * within a process, whatever the reload changed (its windows start afresh; its counters do not).
   * `confirms`: the probe re-probes to confirm, so its confirmation counters exist at 0 from now
   * (the first burst of re-probes then counts in `increase()`).
   */
  addSeries(series: ProbeSeries, windowsMs: readonly number[], confirms = false): void {
    const labels = flatString(`probe="${escapeLabel(series.probe)}",env="${escapeLabel(series.env)}"`);
    const windowLabels = windowsMs.map((ms) => flatString(`${labels},window="${escapeLabel(formatDuration(ms))}"`));
    const counts = this.#retired.get(labels);
    this.#retired.delete(labels);
    this.#series.set(series, {
      series,
      labels,
      windowLabels,
      success: undefined,
      buckets: counts?.buckets ?? new Float64Array(DURATION_BUCKETS.length + 1),
      durationSum: counts?.durationSum ?? 0,
      durationCount: counts?.durationCount ?? 0,
      results: counts?.results ?? new Float64Array(RESULTS.length),
      confirms,
      confirmations: counts?.confirmations ?? 0,
      capped: counts?.capped ?? 0,
    });
  }

  /** Forget a series (a probe removed by a reload): its label sets leave /metrics; its counts are kept should it come back. */
  removeSeries(series: ProbeSeries): void {
    const metrics = this.#series.get(series);
    if (metrics) this.#retired.set(metrics.labels, metrics);
    this.#series.delete(series);
  }

  /** Account for one probe result (after it has been recorded in its series). */
  recordResult(series: ProbeSeries, result: ProbeResult): void {
    const metrics = this.#series.get(series);
    if (!metrics) return;
    metrics.success = result.ok ? 1 : 0;
    const seconds = result.durationMs / 1_000;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    metrics.buckets[bucket]!++;
    metrics.durationSum += seconds;
    metrics.durationCount++;
    metrics.results[RESULT_INDEX.get(result.ok ? 'ok' : result.reason!)!]!++;
    if (result.confirmation) metrics.confirmations++;
  }

  /** A confirmation re-probe the rate cap withheld. */
  recordConfirmationCapped(series: ProbeSeries): void {
    const metrics = this.#series.get(series);
    if (metrics) metrics.capped++;
  }

  recordSkipped(series: ProbeSeries): void {
    const metrics = this.#series.get(series);
    if (metrics) metrics.results[RESULT_INDEX.get('skipped')!]!++;
  }

  setActiveEnvironment(active: string, environments: readonly string[]): void {
    for (const env of environments) this.#activeEnvironment.set({ env }, env === active ? 1 : 0);
  }

  setCluster(view: { isLeader: boolean; epoch: number; members: number }): void {
    this.#cluster.isLeader.set(view.isLeader ? 1 : 0);
    this.#cluster.epoch.set(view.epoch);
    this.#cluster.members.set(view.members);
  }

  setRuleState(rule: string, state: 'inactive' | 'pending' | 'firing'): void {
    this.#ruleState.set({ rule }, state === 'inactive' ? 0 : state === 'pending' ? 1 : 2);
  }

  removeRule(rule: string): void {
    this.#ruleState.remove({ rule });
  }

  /**
   * Make every action × outcome and receiver × status × outcome series exist at 0 (at start and at
   * each reload): a counter that first appears at 1 hides its first increase from `increase()` and
   * `rate()`, so the first rollback of the day, or a one-off failed delivery, would count for
   * nothing in a query or an alert rule. An action or a receiver a reload removed (or renamed)
   * leaves with its series, so that a dashboard does not go on showing the old name.
   */
  declare(actions: readonly string[], receivers: readonly string[]): void {
    const kept = new Set(actions);
    for (const action of this.#actions) if (!kept.has(action)) for (const outcome of ACTION_OUTCOMES) this.#actionsTotal.remove({ action, outcome });
    for (const action of actions) for (const outcome of ACTION_OUTCOMES) this.#actionsTotal.inc({ action, outcome }, 0);
    this.#actions = kept;
    const known = new Set(receivers);
    for (const receiver of this.#receivers) if (!known.has(receiver)) for (const labels of receiverLabels(receiver)) this.#alertsTotal.remove(labels);
    for (const receiver of receivers) for (const labels of receiverLabels(receiver)) this.#alertsTotal.inc(labels, 0);
    this.#receivers = known;
  }

  countAction(action: string, outcome: 'succeeded' | 'failed' | 'skipped' | 'dry_run'): void {
    this.#actionsTotal.inc({ action, outcome });
  }

  /** One delivery to a receiver (after its retries): the alert.sent / alert.failed events, counted. */
  countAlert(receiver: string, status: 'firing' | 'resolved', outcome: 'sent' | 'failed'): void {
    this.#alertsTotal.inc({ receiver, status, outcome });
  }

  setMaintenance(env: string, open: boolean): void {
    this.#maintenance.set({ env }, open ? 1 : 0);
  }

  setSilences(counts: { pending: number; active: number }): void {
    this.#silences.set({ state: 'pending' }, counts.pending);
    this.#silences.set({ state: 'active' }, counts.active);
  }

  setIncidents(counts: { firing: number; acknowledged: number }): void {
    this.#incidents.set({ state: 'firing' }, counts.firing);
    this.#incidents.set({ state: 'acknowledged' }, counts.acknowledged);
  }

  setFlag(flag: string, env: string, enabled: boolean): void {
    this.#flagEnabled.set({ flag, env }, enabled ? 1 : 0);
  }

  /**
   * The exposition text, in the Prometheus format or, when asked, OpenMetrics. `slice` runs each
   * part of the per-series families in its own turn (the API's TurnQueue: undefined once it
   * closes); without it, all at once (tests, benches).
   */
  render(openMetrics: boolean, slice: RenderSlice = (work) => Promise.resolve(work())): Promise<{ contentType: string; body: string }> {
    const next = this.#rendering.then(() => this.#render(openMetrics, slice));
    this.#rendering = next.catch(() => undefined);
    return next;
  }

  async #render(openMetrics: boolean, slice: RenderSlice): Promise<{ contentType: string; body: string }> {
    const series = await this.#renderSeries(openMetrics, slice);
    if (!openMetrics) return { contentType: this.#registry.contentType, body: `${series}\n${await this.#registry.metrics()}` };
    // prom-client renames counters in place for OpenMetrics (dropping `_total`); put the names
    // back afterwards so the next Prometheus-format scrape still says greenlight_actions_total.
    const counters = this.#registry.getMetricsAsArray().filter((metric) => String(metric.type) === 'counter') as unknown as { name: string }[];
    const names = counters.map((metric) => metric.name);
    (this.#registry as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    try {
      return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: `${series}\n${await this.#registry.metrics()}` };
    } finally {
      counters.forEach((metric, index) => (metric.name = names[index]!));
      this.#registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
    }
  }

  /**
   * The per-series families, RENDER_STEPS_PER_SLICE steps (one series' lines of one family) a
   * slice: at 10,000 series the whole render took 400 ms of the event loop in one go, during
   * which probe answers waited and their latency grew by as much (issue 18).
   */
  async #renderSeries(openMetrics: boolean, slice: RenderSlice): Promise<string> {
    const out: string[] = [];
    // Each slice joins its own lines: one join of 300,000 lines at the end would be a long turn again.
    const chunks: string[] = [];
    const steps = this.#seriesLines(openMetrics, out);
    for (;;) {
      const done = await slice(() => {
        let finished = false;
        for (let step = 0; step < RENDER_STEPS_PER_SLICE && !finished; step++) finished = steps.next().done === true;
        if (out.length > 0) chunks.push(out.join('\n'));
        out.length = 0;
        return finished;
      });
      if (done === undefined) throw new Error('the agent is stopping: no metrics rendered');
      if (done) return chunks.join('\n');
    }
  }

  /** Writes the per-series families into `out`, yielding after each series of each family. Window figures are computed here, once a scrape. */
  *#seriesLines(openMetrics: boolean, out: string[]): Generator<void, void, void> {
    const now = this.#options.now();
    const all = [...this.#series.values()];
    const header = (family: (typeof FAMILIES)[keyof typeof FAMILIES]) => {
      // OpenMetrics names a counter family without its _total suffix.
      const name = openMetrics && family.type === 'counter' ? family.name.replace(/_total$/, '') : family.name;
      out.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
    };

    header(FAMILIES.success);
    for (const m of all) {
      if (m.success !== undefined) out.push(`greenlight_probe_success{${m.labels}} ${m.success}`);
      yield;
    }

    header(FAMILIES.duration);
    for (const m of all) {
      let cumulative = 0;
      for (let index = 0; index < DURATION_BUCKETS.length; index++) {
        cumulative += m.buckets[index]!;
        out.push(`${BUCKET_OPENINGS[index]!}${m.labels}} ${cumulative}`);
      }
      out.push(
        `${BUCKET_OPENINGS[DURATION_BUCKETS.length]!}${m.labels}} ${m.durationCount}`,
        `greenlight_probe_duration_seconds_sum{${m.labels}} ${number(m.durationSum)}`,
        `greenlight_probe_duration_seconds_count{${m.labels}} ${m.durationCount}`,
      );
      yield;
    }

    header(FAMILIES.probes);
    for (const m of all) {
      for (let index = 0; index < RESULTS.length; index++) out.push(`greenlight_probes_total{${m.labels}${RESULT_ENDINGS[index]!}${m.results[index]!}`);
      yield;
    }

    // Read once, as the error ratios are written, for the latencies after them.
    const windows: WindowFigures[][] = new Array(all.length);
    header(FAMILIES.errorRatio);
    for (let i = 0; i < all.length; i++) {
      const m = all[i]!;
      windows[i] = m.series.windows.map((window) => window.figures(now));
      windows[i]!.forEach((figures, w) =>
        out.push(`greenlight_window_error_ratio{${m.windowLabels[w]}} ${figures.count === 0 ? 'NaN' : number(figures.errorRatio)}`),
      );
      yield;
    }

    header(FAMILIES.latency);
    for (let i = 0; i < all.length; i++) {
      const m = all[i]!;
      windows[i]!.forEach((figures, w) => {
        QUANTILES.forEach(([, key], q) => {
          const ms = figures[key];
          out.push(`greenlight_window_latency_seconds{${m.windowLabels[w]!}${QUANTILE_ENDINGS[q]!}${ms === undefined ? 'NaN' : number(ms / 1_000)}`);
        });
        out.push(
          `greenlight_window_latency_seconds_sum{${m.windowLabels[w]}} ${number(m.durationSum)}`,
          `greenlight_window_latency_seconds_count{${m.windowLabels[w]}} ${m.durationCount}`,
        );
      });
      yield;
    }

    header(FAMILIES.consecutive);
    for (const m of all) {
      out.push(`greenlight_consecutive_failures{${m.labels}} ${m.series.consecutiveFailures}`);
      yield;
    }

    // Only https series, once a handshake has shown their certificate.
    const secured = all.filter((m) => m.series.tls !== undefined);
    if (secured.length > 0) {
      header(FAMILIES.tlsExpiry);
      for (const m of secured) out.push(`greenlight_tls_cert_expiry_timestamp_seconds{${m.labels}} ${number(m.series.tls!.expiresAt / 1_000)}`);
      header(FAMILIES.tlsVerified);
      for (const m of secured) out.push(`greenlight_tls_cert_verified{${m.labels}} ${m.series.tls!.valid ? 1 : 0}`);
    }

    const slos = this.#slo();
    if (slos.length > 0) {
      header(FAMILIES.sloBurnRate);
      for (const slo of slos) {
        for (const [env, windows] of Object.entries(slo.environments)) {
          for (const w of windows)
            out.push(
              `greenlight_slo_burn_rate{slo="${escapeLabel(slo.name)}",env="${escapeLabel(env)}",window="${formatDuration(w.windowMs)}"} ${w.burnRate === null ? 'NaN' : number(w.burnRate)}`,
            );
        }
      }
      header(FAMILIES.sloBudget);
      for (const slo of slos)
        out.push(`greenlight_slo_budget_remaining_ratio{slo="${escapeLabel(slo.name)}"} ${slo.budgetRemaining === null ? 'NaN' : number(slo.budgetRemaining)}`);
    }

    // Only series whose probe confirms (or that have confirmed, or been capped, under an earlier
    // config) appear: most never do, and at 1,000 series two more lines each would be a noticeable
    // share of the render. Those that may appear at 0 from the start, as greenlight_probes_total.
    const confirming = all.filter((m) => m.confirms || m.confirmations > 0 || m.capped > 0);
    if (confirming.length > 0) {
      header(FAMILIES.confirmations);
      for (const m of confirming) out.push(`greenlight_confirmation_probes_total{${m.labels}} ${m.confirmations}`);
      header(FAMILIES.capped);
      for (const m of confirming) out.push(`greenlight_confirmation_capped_total{${m.labels}} ${m.capped}`);
    }
  }
}

/**
 * A sample value as the exposition formats write it. Fractions are rounded to 6 decimals
 * (microseconds for latencies, far below the histograms' resolution): printing 17 significant
 * digits of every window figure was a third of the render time.
 */
function number(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return Number.isInteger(value) ? String(value) : String(Math.round(value * 1e6) / 1e6);
}

/** Label values escape backslash, double quote and newline (both formats). */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

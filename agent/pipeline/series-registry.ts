/**
 * The series: one per probe and environment, each with its windows (ProbeSeries), its compiled
 * target and its schedule. The registry builds them from the config, keeps them indexed by
 * environment for the facts, and adds and removes them (with their schedules and metrics) as a
 * reload asks.
 *
 * - A series is known by its key (`health@blue`) and built from a fingerprint of everything it
 *   depends on: a reload keeps a series, windows and counts, while its fingerprint is equal.
 * - Readiness waits for the first result of every interval series; a cron series may not run
 *   for hours.
 * - A probe in flight is under its series' canceller: shutdown and a reload that drops the
 *   series end it instead of waiting for its timeout.
 */
import { createHash } from 'node:crypto';
import type { Redactor } from '../../config/redactor.js';
import { flatString } from '../../config/flat-string.js';
import type { Config, ProbeConfig } from '../../config/schema.js';
import { ProbeCompiler, probeEnvironments, type ProbeTarget } from '../../probes/http-probe.js';
import { ProbeCanceller } from '../../probes/probe-canceller.js';
import type { Confirmation, ConfirmationKind } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { SeriesPool } from '../../probes/series-pool.js';
import { watchedLines } from '../../rules/rule-evaluator.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { confirmPolicy } from './confirmation.js';
import type { ProbeScheduler, ScheduledJob, SkipReason } from './probe-scheduler.js';

export interface SeriesEntry {
  /** `health@blue`: the scheduler's job key. */
  readonly key: string;
  /**
   * A digest of everything the series and its target were built from: a reload keeps the series
   * while this is equal. A digest rather than the text itself: that text (the probe's whole
   * config, its environment and defaults) was a kilobyte a series, held for the agent's life.
   */
  readonly fingerprint: string;
  /** An interval probe (readiness waits for its first result). */
  readonly interval: boolean;
  readonly series: ProbeSeries;
  readonly target: ProbeTarget;
  /** When the series went down, for probe.up's downForMs. */
  downSince: number | undefined;
  /**
   * The up/down state the series this one replaced (a reload changed it) had published, until this
   * one's first result: that result publishes probe.down or probe.up only if it changes it.
   */
  publishedUp: boolean | undefined;
  /** When its current run of passing results began (the start of the first one); undefined while its latest failed. */
  upSince: number | undefined;
  /** When its scheduled probe in flight started (overdue past switching.verifyTimeout: unknown, never up). */
  inFlightSince: number | undefined;
  /** Ends its probe in flight: at shutdown, or when a reload removes the series. */
  readonly inFlight: ProbeCanceller;
}

/** What a series is built from. */
export interface SeriesSpec {
  key: string;
  fingerprint: string;
  interval: boolean;
  probe: ProbeConfig;
  env: string;
  lines: Map<string, number[]>;
  schedule: ScheduledJob['schedule'];
}

/** What a run of one series does: the agent's probe → record path. */
export interface SeriesRunner {
  run(entry: SeriesEntry, confirmation?: Confirmation): Promise<ConfirmationKind | undefined>;
  skipped(entry: SeriesEntry, why: SkipReason): void;
}

/** One series per probe and environment, with what it is built from (a reload compares fingerprints). */
export function seriesSpecs(config: Config): SeriesSpec[] {
  const ruleLines = watchedLines(config);
  const specs: SeriesSpec[] = [];
  for (const probe of config.probes) {
    const lines = new Map(Object.entries(probe.extract).map(([name, extraction]) => [name, [...extraction.lines]]));
    for (const [name, watched] of ruleLines.get(probe.name) ?? []) lines.set(name, [...new Set([...(lines.get(name) ?? []), ...watched])]);
    for (const env of probeEnvironments(config, probe)) {
      const schedule: ScheduledJob['schedule'] =
        probe.cron !== undefined
          ? { cron: probe.cron, timezone: probe.timezone ?? config.timezone }
          : { every: probe.every ?? config.probeDefaults.every, jitter: config.probeDefaults.jitter };
      const fingerprint = createHash('sha256')
        .update(
          JSON.stringify({
            probe,
            environment: config.environments[env],
            defaults: config.probeDefaults,
            windows: config.windows,
            lines: [...lines],
            schedule,
          }),
        )
        .digest('base64');
      specs.push({ key: flatString(`${probe.name}@${env}`), fingerprint, interval: probe.cron === undefined, probe, env, lines, schedule });
    }
  }
  return specs;
}

export class SeriesRegistry {
  readonly #scheduler: ProbeScheduler;
  readonly #metrics: AgentMetrics;
  readonly #redactor: Redactor;
  readonly #now: () => number;
  readonly #runner: SeriesRunner;
  #entries: SeriesEntry[] = [];
  readonly #byEnv = new Map<string, ProbeSeries[]>();
  /** Per environment, its series by probe name (what facts naming a probe read). */
  readonly #byName = new Map<string, Map<string, ProbeSeries>>();
  readonly #intervalByEnv = new Map<string, SeriesEntry[]>();
  /** Per environment, the sums of its series' windows (series-pool.ts): facts over every probe read these. */
  readonly #pools = new Map<string, SeriesPool>();
  /** The set of series changed since the pools were built: they are rebuilt when next read (once per reload, not per series). */
  #poolsStale = true;
  /** Readiness: every interval series' first result. */
  readonly #firstRound = new ResultWait();
  /** A held resume: every interval series' results as its windows refill (awaitResults). */
  readonly #refilling = new ResultWait();

  constructor(options: { scheduler: ProbeScheduler; metrics: AgentMetrics; redactor: Redactor; now: () => number; runner: SeriesRunner }) {
    this.#scheduler = options.scheduler;
    this.#metrics = options.metrics;
    this.#redactor = options.redactor;
    this.#now = options.now;
    this.#runner = options.runner;
  }

  get entries(): readonly SeriesEntry[] {
    return this.#entries;
  }

  /** The series of one environment (what the rules' facts read). */
  of(env: string): readonly ProbeSeries[] {
    return this.#byEnv.get(env) ?? [];
  }

  /** The series of `probe` in `env`, if there is one. */
  named(env: string, probe: string): ProbeSeries | undefined {
    return this.#byName.get(env)?.get(probe);
  }

  /** The pool of one environment's series, when they can be pooled. */
  poolOf(env: string): SeriesPool | undefined {
    if (this.#poolsStale) this.#pool();
    return this.#pools.get(env);
  }

  /** The interval series of one environment: what its health is judged on. */
  intervalEntriesOf(env: string): readonly SeriesEntry[] {
    return this.#intervalByEnv.get(env) ?? [];
  }

  /** Readiness waits for a first result of every interval series there is now (at start; not after a reload). */
  awaitFirstRound(): void {
    this.#firstRound.start(this.#entries, 1);
  }

  /** Whether every interval series awaited has its first result. */
  get firstRoundDone(): boolean {
    return this.#firstRound.done;
  }

  /** A result came in for `entry`: true when it completed the first round. */
  noteResult(entry: SeriesEntry): boolean {
    return this.#firstRound.note(entry);
  }

  /**
   * From now, wait for every interval series there is to have recorded `count` results (a held
   * resume: windows refilling). The series still short are listed once here, and each result
   * crosses its own off (noteRefilled): asking every series after every sample was O(n) a
   * sample, and at 10,000 series a reload's hold took the agent's whole CPU until it ended.
   */
  awaitResults(count: number): void {
    this.#refilling.start(this.#entries, count);
  }

  /** A result came in for `entry`: whether every series awaited (awaitResults) now has its results. */
  noteRefilled(entry: SeriesEntry): boolean {
    this.#refilling.note(entry);
    return this.#refilling.done;
  }

  /** Build the series of `specs` under `config`: their targets, windows, metrics and schedules. */
  add(config: Config, specs: readonly SeriesSpec[], replaced: ReadonlyMap<string, Pick<SeriesEntry, 'downSince' | 'series'>> = new Map()): void {
    const compiler = new ProbeCompiler(config, this.#redactor);
    for (const spec of specs) {
      const before = replaced.get(spec.key);
      const entry: SeriesEntry = {
        key: spec.key,
        fingerprint: spec.fingerprint,
        interval: spec.interval,
        series: new ProbeSeries(spec.probe.name, spec.env, config.windows, spec.lines, this.#now()),
        target: compiler.target(spec.probe, spec.env),
        downSince: before?.downSince,
        publishedUp: before?.series.up,
        upSince: undefined,
        inFlightSince: undefined,
        inFlight: new ProbeCanceller(),
      };
      this.#entries.push(entry);
      const confirm = confirmPolicy(config, spec.probe, spec.env);
      this.#metrics.addSeries(entry.series, config.windows, confirm !== undefined);
      this.#scheduler.add({
        key: spec.key,
        schedule: spec.schedule,
        run: (confirmation) => this.#runner.run(entry, confirmation),
        onSkipped: (why) => this.#runner.skipped(entry, why),
        confirm,
        onCapped: () => this.#metrics.recordConfirmationCapped(entry.series),
      });
    }
    this.#index();
  }

  /**
   * Stop and drop `entries`: their probes in flight end now (they say nothing the new config asks
   * about). One pass and one re-index however many go: a reload may drop thousands of series.
   */
  async remove(entries: readonly SeriesEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) entry.inFlight.cancel();
    await this.#scheduler.remove(entries.map((entry) => entry.key));
    for (const entry of entries) {
      this.#metrics.removeSeries(entry.series);
      this.#firstRound.drop(entry);
      this.#refilling.drop(entry);
      entry.series.pool = undefined;
    }
    const gone = new Set(entries);
    this.#entries = this.#entries.filter((entry) => !gone.has(entry));
    this.#index();
  }

  /** End every probe in flight (shutdown). */
  abortAll(): void {
    for (const entry of this.#entries) entry.inFlight.cancel();
  }

  /** Index the series by environment and probe; their pools are dropped, and built anew when next read. */
  #index(): void {
    this.#byEnv.clear();
    this.#byName.clear();
    this.#intervalByEnv.clear();
    for (const entry of this.#entries) {
      const { series } = entry;
      const list = this.#byEnv.get(series.env);
      if (list) list.push(series);
      else this.#byEnv.set(series.env, [series]);
      const byName = this.#byName.get(series.env);
      if (byName) byName.set(series.probe, series);
      else this.#byName.set(series.env, new Map([[series.probe, series]]));
      series.pool = undefined;
      if (!entry.interval) continue;
      const interval = this.#intervalByEnv.get(series.env);
      if (interval) interval.push(entry);
      else this.#intervalByEnv.set(series.env, [entry]);
    }
    this.#pools.clear();
    this.#poolsStale = true;
  }

  /** A pool holds exactly the series of its environment: it absorbs what their windows hold now, then they feed it. */
  #pool(): void {
    this.#poolsStale = false;
    for (const [env, list] of this.#byEnv) {
      const pool = SeriesPool.of(env, list);
      for (const series of list) series.pool = pool;
      if (pool) this.#pools.set(env, pool);
    }
  }
}

/**
 * A wait for every interval series to have recorded `count` results: the series still short are
 * listed once when it starts, and each result crosses its own series off (O(1) a result).
 */
class ResultWait {
  readonly #short = new Set<SeriesEntry>();
  #count = 0;

  /** Wait from now for those of `entries` (interval series) with fewer than `count` results. */
  start(entries: readonly SeriesEntry[], count: number): void {
    this.#count = count;
    this.#short.clear();
    for (const entry of entries) if (entry.interval && entry.series.results < count) this.#short.add(entry);
  }

  /** A result came in for `entry`: true when it was the last one waited for. */
  note(entry: SeriesEntry): boolean {
    return entry.series.results >= this.#count && this.#short.delete(entry) && this.#short.size === 0;
  }

  /** A series that went away (a reload) is no longer waited for. */
  drop(entry: SeriesEntry): void {
    this.#short.delete(entry);
  }

  get done(): boolean {
    return this.#short.size === 0;
  }
}

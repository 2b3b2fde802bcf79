/**
 * The data path, top to bottom:
 *
 *   schedule (ProbeScheduler) → #probe (admitted by the LoadShedder; runProbe through the probe
 *   pool) → #record: the result goes into its series' windows and the SLO counts, metrics,
 *   traffic control's health, the reports' rollups, and probe.up/down on a change → the rules
 *   it can change are evaluated (RuleEvaluator: facts → rule state) → #decide: rule.* events,
 *   the incident book, and the actions (ActionRunner: rollback through traffic control, flags,
 *   alerts) → action.* events
 *
 * Invariants:
 * - A probe cut short by shutdown or a reload says nothing about its target: it is not recorded.
 * - Every action fires once per incident; a resumed incident (after a restart or a reload that
 *   changed its rule) neither repeats its actions nor resolves before every interval series has
 *   RESUME_HOLD_ROUNDS results again.
 * - Actions a crash interrupted are settled once every interval series has a first result: a
 *   rollback's judgement needs health.
 * - After each evaluation pass, an owed rollback is retried if it would now go ahead.
 * - A scheduled tick is shed (recorded as skipped) only while the agent's own loop is saturated
 *   and the origin has as many probes in flight as the shedder allows (its connections, fewer
 *   while the loop stays saturated: load-shedder.ts); a confirmation re-run is never shed.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { runProbe } from '../../probes/http-probe.js';
import type { Confirmation, ConfirmationKind, ProbeResult } from '../../probes/probe-result.js';
import type { TlsObserver } from '../../probes/tls.js';
import { RuleEvaluator, type RuleDecision } from '../../rules/rule-evaluator.js';
import type { ActionContext } from '../actions/action.js';
import type { ActionRunner } from '../actions/action-runner.js';
import type { EventBus } from '../events/events.js';
import type { ActionRecord, Store } from '../events/store.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import type { TrafficControl } from '../traffic/traffic-control.js';
import { nextConfirmation } from './confirmation.js';
import { IncidentBook, type StoredIncident } from './incident-book.js';
import { LoadShedder, type UtilizationSource } from './load-shedder.js';
import { publishStateChange } from './probe-events.js';
import { ProbeScheduler, type SkipReason } from './probe-scheduler.js';
import { spacedWarning } from '../telemetry/logger.js';
import { publishTransition } from './rule-events.js';
import { SeriesRegistry, seriesSpecs, type SeriesEntry } from './series-registry.js';
import { SloKeeper } from './slo-keeper.js';

/**
 * Results every interval series must have recorded before a resumed incident may resolve: its
 * windows start empty after a restart, and the stock critical rule counts more than 10
 * consecutive failures. Counted in results, not time: a loaded machine or a hung target makes
 * rounds slower than their interval.
 */
const RESUME_HOLD_ROUNDS = 12;

/**
 * The tick of the rules that read every probe of an environment (meanLatency with no probe, the
 * SLO burn rates, the certificates' days left): they run once per tick over the samples since
 * the last, instead of once per sample (thousands a second with thousands of series). Their
 * windows are minutes to days long and their lines are held `for` seconds; a tenth of a second
 * is not what delays them. Rules that name a probe still run on each of its samples.
 */
export const AGGREGATE_PASS_MS = 100;

/** The agent's parts the data path reads and acts through (looked up when used: they are built around it). */
export interface PipelineHost {
  readonly config: Config;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly redactor: Redactor;
  readonly now: () => number;
  readonly traffic: TrafficControl;
  readonly actions: ActionRunner;
  /** The promotion in flight and the environment its watch judges (the promotionWatch fact). */
  readonly promotions: { current?: { watchingEnv: string | undefined } | undefined } | undefined;
  /** The reports' rollups (agent/reports), once the store is open: every result is counted there. */
  readonly reports: { record(series: { readonly probe: string; readonly env: string }, result: ProbeResult): void } | undefined;
}

/** The least time between two warnings of probes the agent could not run on its own side. */
const LOCAL_WARN_MS = 10_000;

export class Pipeline {
  readonly scheduler: ProbeScheduler;
  readonly series: SeriesRegistry;
  readonly slo: SloKeeper;
  readonly rules: RuleEvaluator;
  readonly incidents: IncidentBook;
  readonly #host: PipelineHost;
  readonly #dispatcher: Dispatcher;
  readonly #tls: TlsObserver;
  readonly #logger: Logger;
  /** The spaced warning for probes the agent could not run on its own side, naming the latest. */
  readonly #warnNotRunHere: (probe: { code: string | undefined; probe: string; env: string }) => void;
  readonly #shedder: LoadShedder;
  /** Rule evaluations in flight (they finish before close). */
  readonly #evaluations = new Set<Promise<unknown>>();
  /** Actions a crash interrupted, settled once the first probe round is in (judging needs health). */
  #interrupted: ActionRecord[] = [];
  /** Resumed or reloaded firing rules cannot resolve until every interval series has RESUME_HOLD_ROUNDS results. */
  #resumeHeld = false;
  /** The rule pass a retry of the owed actions already waits for. */
  #awaitedPass: Promise<void> | undefined;
  /** Starts the planned pass of the rules over every probe now instead of at its tick (close). */
  #aggregateNow: (() => void) | undefined;

  /**
   * `connections`: the dispatcher's connections per origin, past which a probe waits in its queue
   * (the most probes in flight an origin keeps while the load shedder sheds); `loopUtilization`
   * replaces the event loop's (tests).
   */
  constructor(
    host: PipelineHost,
    options: {
      dispatcher: Dispatcher;
      connections: number;
      tls: TlsObserver;
      persist: (key: string, value: unknown) => void;
      logger: Logger;
      loopUtilization?: UtilizationSource | undefined;
    },
  ) {
    const { config, metrics, now } = host;
    this.#host = host;
    this.#dispatcher = options.dispatcher;
    this.#tls = options.tls;
    this.#logger = options.logger;
    this.#warnNotRunHere = spacedWarning(this.#logger, LOCAL_WARN_MS, (count, latest: { code: string | undefined; probe: string; env: string }) => ({
      fields: { ...latest, skipped: count },
      message: `${count} probe(s) not run: the agent itself is out of resources (${latest.code}: no file descriptor or memory left), not the target; counted as skipped ticks, never as the target's failures. Check the agent's open connections (its API port) and its file limit (LimitNOFILE)`,
    }));
    this.#shedder = new LoadShedder({ limit: options.connections, logger: options.logger, utilization: options.loopUtilization });
    this.scheduler = new ProbeScheduler({
      now,
      onError: (job, error) => this.#logger.error({ err: error, job: job.key }, 'bug: a probe run threw instead of returning a result'),
    });
    const runner = {
      run: (entry: SeriesEntry, confirmation?: Confirmation) => this.#probe(entry, confirmation),
      skipped: (entry: SeriesEntry, why: SkipReason) => this.#skipped(entry, why),
    };
    this.series = new SeriesRegistry({ scheduler: this.scheduler, metrics, redactor: host.redactor, now, runner });
    this.series.add(config, seriesSpecs(config));
    this.series.awaitFirstRound();
    this.slo = new SloKeeper(config, { now, save: (state) => options.persist('slo', state) });
    metrics.watchSlo(() => this.slo.status(Object.keys(host.config.environments)));
    const context = () => ({
      activeEnvironment: host.traffic.live,
      liveSince: host.traffic.liveSince,
      environments: Object.keys(host.config.environments),
      now: now(),
      series: (env: string) => this.series.of(env),
      pool: (env: string) => this.series.poolOf(env),
      named: (env: string, probe: string) => this.series.named(env, probe),
      watching: host.promotions?.current?.watchingEnv,
      slo: (name: string | undefined) => this.slo.get(name),
    });
    this.rules = new RuleEvaluator(config.rules, context, (decision) => this.decide(decision), { deferEveryProbe: (pass) => this.#deferAggregate(pass) });
    for (const rule of config.rules) metrics.setRuleState(rule.name, 'inactive');
    this.incidents = new IncidentBook({
      config: () => host.config,
      actions: () => host.actions,
      persist: (incidents) => options.persist('incidents', incidents),
      persistNumbers: (numbers) => options.persist('incidentNumbers', numbers),
      logger: this.#logger,
    });
    host.bus.subscribe((event) => this.incidents.note(event));
  }

  /**
   * Pick up the SLO counts and the incidents that were firing before a restart (they go on firing
   * without running their actions again, and resolve as usual); `interrupted` are the actions a
   * crash left in flight.
   */
  resume(store: Pick<Store, 'get'>, interrupted: ActionRecord[]): void {
    this.slo.restore(store.get('slo'));
    this.#interrupted = interrupted;
    // Settled first (once every environment has results), before any owed retry of theirs.
    this.#host.actions.interrupted(interrupted);
    // A cluster's new leader resumes while it probes: its first round is long done.
    if (this.series.firstRoundDone) this.#reconcileInterrupted();
    this.incidents.seedNumbers(store.get<Record<string, unknown>>('incidentNumbers') ?? {});
    this.incidents.resume(store.get<Record<string, StoredIncident>>('incidents') ?? {}, (rule, incident, stored) => {
      if (!this.rules.resumeFiring(rule.name, incident, stored.startedAt, stored.env)) return false;
      this.holdResumed();
      this.#host.metrics.setRuleState(rule.name, 'firing');
      return true;
    });
    this.numberRules();
  }

  /**
   * Settle `records`, actions left in flight that nothing runs any more, as a crash's are (once
   * every environment has probe results): a cluster's leader whose acting deadline cut its own
   * runs short settles them when it acts again in the same term, as no takeover will.
   */
  settleInterrupted(records: readonly ActionRecord[]): void {
    this.#interrupted.push(...records);
    if (this.series.firstRoundDone) this.#reconcileInterrupted();
  }

  /** Number each rule's next incident after the highest it ever used (at start, and for rules a reload adds back). */
  numberRules(): void {
    for (const [rule, used] of this.incidents.numbers()) this.rules.numberAfter(rule, used);
  }

  start(): void {
    this.scheduler.start();
    if (this.series.firstRoundDone) this.#reconcileInterrupted();
  }

  /** Stop the schedules and end the probes in flight; wait for the evaluations under way. */
  async close(): Promise<void> {
    this.series.abortAll();
    await this.scheduler.close();
    this.#aggregateNow?.();
    await this.settled();
    this.slo.save(true);
  }

  /** Resolves once the rule evaluations in flight have finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#evaluations]);
  }

  /** Firing rules resumed (or changed by a reload) cannot resolve until the series have refilled. */
  holdResumed(): void {
    this.#resumeHeld = true;
    this.series.awaitResults(RESUME_HOLD_ROUNDS);
  }

  /** Run `pass` (the rules over every probe) at the next tick; settled() waits for it. */
  #deferAggregate(pass: () => Promise<void>): void {
    const due = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, AGGREGATE_PASS_MS);
      this.#aggregateNow = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#track(
      due
        .then(() => {
          this.#aggregateNow = undefined;
          return pass();
        })
        .then(() => this.#host.actions.retryOwed()),
    );
  }

  /** Judge every rule again (traffic moved, the config changed), in the background. */
  evaluateAll(): void {
    this.#track(this.rules.evaluateAll());
  }

  /** One probe; resolves to what it wants confirmed by a quick re-probe (the scheduler decides whether one runs). */
  async #probe(entry: SeriesEntry, confirmation?: Confirmation): Promise<ConfirmationKind | undefined> {
    const { now, traffic } = this.#host;
    const { origin } = entry.target;
    if (!this.#shedder.admit(origin, confirmation === undefined)) {
      this.#skipped(entry, 'shed');
      return undefined;
    }
    entry.inFlightSince = now();
    let result: ProbeResult;
    try {
      result = await runProbe(entry.target, this.#dispatcher, now, entry.inFlight, this.#tls);
    } finally {
      this.#shedder.release(origin);
    }
    entry.inFlightSince = undefined;
    if (entry.inFlight.cancelled) return undefined;
    if (result.local !== undefined) {
      // The agent's own want (no file descriptor left: a flood of connections to its API, say), not
      // the target's: no reading of it at all, or a healthy live side would be rolled back.
      this.#skipped(entry, 'local', result.local);
      return undefined;
    }
    if (confirmation) result.confirmation = confirmation;
    const wasUp = entry.series.up;
    this.#record(entry, result);
    return nextConfirmation(result, wasUp, entry.series.env === traffic.live);
  }

  #record(entry: SeriesEntry, result: ProbeResult): void {
    const { series } = entry;
    const live = series.env === this.#host.traffic.live;
    const change = series.record(result);
    this.slo.record(result, live);
    this.#host.traffic.noteResult(entry, result, change);
    this.#host.metrics.recordResult(series, result);
    this.#host.reports?.record(series, result);
    if (this.series.noteResult(entry)) this.#reconcileInterrupted();
    let published = change;
    if (entry.publishedUp !== undefined) {
      // The first result of a series a reload replaced: a change against what its predecessor published.
      const before = entry.publishedUp;
      entry.publishedUp = undefined;
      if (change) published = change.up === before ? undefined : { ...change, wasUp: before };
    }
    if (published) publishStateChange(this.#host.bus, entry, result, published, live);
    if (this.#resumeHeld && this.series.noteRefilled(entry)) {
      this.#resumeHeld = false;
      this.rules.releaseResumeHolds();
    }
    // After the pass this sample joins: an owed rollback may now go ahead (its target recovered, say).
    if (this.rules.size > 0) {
      const pass = this.rules.onSample(series.probe, series.env);
      // No pass for this sample (no rule names its probe): nothing to wait for, and the owed actions' judgement already reads it.
      // The samples of one tick share a pass: one retry after it serves them all (at 10,000 series
      // a promise chain per sample was 10,000 a second for nothing).
      if (!pass) this.#host.actions.retryOwed();
      else if (pass !== this.#awaitedPass) {
        this.#awaitedPass = pass;
        this.#track(pass.then(() => this.#host.actions.retryOwed()));
      }
    }
  }

  /** A rule transition → a rule.* event and metrics; firing opens an incident and starts its actions, resolving ends them. */
  decide(decision: RuleDecision): void {
    const { rule, transition, figures, message } = decision;
    const { actions, bus, metrics, now } = this.#host;
    const incident = publishTransition(bus, metrics, this.#logger, decision);
    if (transition.to === 'firing') {
      const context: ActionContext = {
        rule,
        incident: incident!,
        env: figures.env,
        severity: rule.severity,
        message,
        figures,
        actor: `rule:${rule.name}`,
        startedAt: now(),
      };
      this.incidents.open(context);
      actions.fire(rule.actions, context);
    } else if (transition.to === 'resolved') {
      const { context, coolDown } = this.incidents.close(rule, incident!);
      if (context) actions.resolve(rule.actions, { ...context, figures });
      if (coolDown) this.rules.startCooldown(rule.name, context?.env ?? figures.env);
    }
  }

  /** Once every environment has probe results, settle the actions a crash left in flight. */
  #reconcileInterrupted(): void {
    const records = this.#interrupted;
    this.#interrupted = [];
    if (records.length === 0) return;
    const contextOf = (stored: ActionRecord['context']) => ({
      ...stored,
      rule: this.#host.config.rules.find((rule) => rule.name === stored.rule) ?? null,
      figures: null,
    });
    this.#track(this.#host.actions.reconcile(records, contextOf));
  }

  /**
   * A tick that did not run: the scheduler's reasons, shed by the load shedder (which logs its
   * episodes), or a probe the agent could not run on its own side (`local`: its error code; a
   * warning at most every LOCAL_WARN_MS, with how many since the last).
   */
  #skipped(entry: SeriesEntry, why: SkipReason | 'shed' | 'local', code?: string): void {
    entry.series.recordSkipped();
    this.#host.metrics.recordSkipped(entry.series);
    if (why === 'shed') return;
    if (why === 'local') {
      this.#warnNotRunHere({ code, probe: entry.series.probe, env: entry.series.env });
      return;
    }
    this.#logger.debug(
      { probe: entry.series.probe, env: entry.series.env },
      why === 'late'
        ? 'probe tick skipped: it came a whole interval late (the agent was held up); the series starts again within a second'
        : 'probe tick skipped: the previous probe is still in flight',
    );
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.#logger.error({ err: error }, 'bug: rule evaluation failed'))
      .finally(() => this.#evaluations.delete(tracked));
    this.#evaluations.add(tracked);
  }
}

/**
 * The daemon. The data path reads straight through this file:
 *
 *   schedule (ProbeScheduler) → probe (runProbe) → result → window (ProbeSeries) → metrics,
 *   probe.up/down events → facts → rule state (RuleEvaluator) → rule.* events → actions
 *   (ActionRunner: rollback through the traffic adapter, flags, alerts) → action.* events
 *
 * and every event goes to the bus, whose subscribers are the log and the journal (the state
 * store, which also keeps the live environment, flags and firing incidents across restarts).
 * Components start in dependency order and close in reverse.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { Agent as UndiciAgent } from 'undici';
import type { Config } from '../config/schema.js';
import { compileProbeTarget, probeEnvironments, runProbe, type ProbeTarget } from '../probes/http-probe.js';
import { describeFailure, type ProbeResult } from '../probes/probe-result.js';
import { ProbeSeries, type SeriesSnapshot, type SeriesSummary } from '../probes/probe-series.js';
import { RuleEvaluator, watchedLines, type RuleDecision, type RuleStatus } from '../rules/rule-evaluator.js';
import type { Action, ActionContext, Controller } from './actions/action.js';
import { ActionRunner } from './actions/action-runner.js';
import { rollbackAction } from './actions/rollback-action.js';
import { AlertDispatcher } from './alerts/alert-dispatcher.js';
import { coreRoutes } from './core-routes.js';
import { EventStream } from './event-stream.js';
import { EventBus, type GreenlightEvent } from './events.js';
import { flagRoutes } from './flags/flag-routes.js';
import { FlagStore } from './flags/flag-store.js';
import { startHttpServer, type HttpServer } from './http-server.js';
import { AgentMetrics } from './metrics.js';
import { sleep, type PluginDeps } from './plugin.js';
import { ACTIONS, ALERT_RECEIVERS, createPlugin, TRAFFIC_ADAPTERS } from './plugins.js';
import { ProbeScheduler } from './probe-scheduler.js';
import { rollbackRoutes } from './rollback-routes.js';
import { statusPageRoutes } from './status-page-routes.js';
import { Store } from './store.js';
import type { SwitchOutcome, TrafficAdapter } from './traffic/traffic-adapter.js';
import { VERSION } from './version.js';

/** The name under which operator-requested rollbacks run (not a config entry). */
export const MANUAL_ROLLBACK = 'manual-rollback';

export interface AgentOptions {
  config: Config;
  /** The root logger; the agent and its components log through children of it. */
  logger: Logger;
  dryRun?: boolean;
  /** Clock for windows and events; tests inject one. */
  now?: () => number;
  /** Include process_* metrics (default true). */
  processMetrics?: boolean;
  /** Dispatcher for outbound calls (webhooks, receivers); default: the agent's own pool. */
  outbound?: import('undici').Dispatcher;
}

interface SeriesEntry {
  series: ProbeSeries;
  target: ProbeTarget;
  /** When the series went down, for probe.up's downForMs. */
  downSince: number | undefined;
}

/** What the store keeps of a firing incident, to resolve it after a restart. */
type StoredIncident = Pick<ActionContext, 'incident' | 'env' | 'severity' | 'message' | 'actor' | 'startedAt'>;

export interface AgentState {
  version: string;
  startedAt: string;
  ready: boolean;
  dryRun: boolean;
  activeEnvironment: string;
  traffic: { adapter: string; switching: boolean };
  environments: Record<string, { url: string; active: boolean; up: boolean | undefined }>;
  rules: RuleStatus[];
  flags: Record<string, Readonly<Record<string, boolean>>>;
  notices: readonly string[];
  series: SeriesSnapshot[];
}

export class Agent {
  readonly config: Config;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly flags: FlagStore;
  readonly rules: RuleEvaluator;
  readonly actions: ActionRunner;
  readonly alerts: AlertDispatcher;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  readonly #now: () => number;
  readonly #dryRun: boolean;
  readonly #dispatcher: UndiciAgent;
  readonly #scheduler: ProbeScheduler;
  readonly #traffic: TrafficAdapter;
  readonly #series: SeriesEntry[] = [];
  readonly #seriesByEnv = new Map<string, ProbeSeries[]>();
  /** Ends in-flight probes at shutdown (every probe in flight listens to it). */
  readonly #shutdown = abortControllerForMany();
  /** The context of each rule's current incident, for its resolve step. */
  readonly #incidents = new Map<string, ActionContext>();
  /** Rule evaluations in flight (they finish before close). */
  readonly #evaluations = new Set<Promise<unknown>>();
  #server: HttpServer | undefined;
  #stream: EventStream | undefined;
  #store: Store | undefined;
  /** Events not yet in the journal: written together once per tick, in one transaction. */
  #unjournaled: GreenlightEvent[] = [];
  #journalFlush: NodeJS.Immediate | undefined;
  #activeEnvironment: string;
  #switching = false;
  #startedAt = 0;
  #pendingFirstResults: Set<SeriesEntry>;

  constructor(options: AgentOptions) {
    const { config, logger } = options;
    this.config = config;
    this.#rootLogger = logger;
    this.#logger = logger.child({ component: 'agent' });
    this.#now = options.now ?? Date.now;
    this.#dryRun = options.dryRun ?? false;
    this.#activeEnvironment = config.activeEnvironment;
    this.bus = new EventBus({
      now: this.#now,
      onListenerError: (error, event) => this.#logger.error({ err: error, event: event.type }, 'an event subscriber failed'),
    });
    this.bus.subscribe((event) => logEvent(this.#logger, event));
    this.bus.subscribe((event) => {
      if (event.type === 'flag.changed') this.#persist('flags', this.flags.snapshot());
    });
    this.bus.subscribe((event) => this.#journal(event));
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving.
    this.#dispatcher = new UndiciAgent({ keepAliveTimeout: 30_000, connections: 8, pipelining: 1 });
    this.#scheduler = new ProbeScheduler({
      onError: (job, error) => this.#logger.error({ err: error, job: job.key }, 'bug: a probe run threw instead of returning a result'),
    });
    this.metrics = new AgentMetrics({ now: this.#now, processMetrics: options.processMetrics ?? true });
    const environments = Object.keys(config.environments);

    const ruleLines = watchedLines(config);
    for (const probe of config.probes) {
      const lines = new Map(Object.entries(probe.extract).map(([name, extraction]) => [name, [...extraction.lines]]));
      for (const [name, watched] of ruleLines.get(probe.name) ?? []) lines.set(name, [...new Set([...(lines.get(name) ?? []), ...watched])]);
      for (const env of probeEnvironments(config, probe)) {
        const entry: SeriesEntry = { series: new ProbeSeries(probe.name, env, config.windows, lines, this.#now()), target: compileProbeTarget(config, probe, env), downSince: undefined };
        this.#series.push(entry);
        this.#seriesByEnv.set(env, [...(this.#seriesByEnv.get(env) ?? []), entry.series]);
        this.metrics.addSeries(entry.series, config.windows);
        this.#scheduler.add({
          key: `${probe.name}@${env}`,
          schedule: probe.cron !== undefined ? { cron: probe.cron, timezone: probe.timezone ?? config.timezone } : { every: probe.every ?? config.probeDefaults.every, jitter: config.probeDefaults.jitter },
          run: () => this.#probe(entry),
          onSkipped: () => this.#skipped(entry),
        });
      }
    }
    // Readiness waits for the first round of the interval probes; a cron probe may not run for hours.
    this.#pendingFirstResults = new Set(this.#series.filter((entry) => config.probes.find((p) => p.name === entry.series.probe)?.cron === undefined));

    const deps = (component: string): PluginDeps => ({ logger: logger.child({ component }), dispatcher: options.outbound ?? this.#dispatcher, now: this.#now, sleep });
    this.#traffic = createPlugin(TRAFFIC_ADAPTERS, config.traffic, deps('traffic'));
    this.alerts = new AlertDispatcher({
      receivers: config.alerts.receivers.map((block) => createPlugin(ALERT_RECEIVERS, block, deps('alerts'))),
      repeatIntervalMs: config.alerts.repeatInterval,
      now: this.#now,
      logger: logger.child({ component: 'alerts' }),
      onDelivery: (delivery) => {
        const data = { receiver: delivery.receiver.name, receiverType: delivery.receiver.type, status: delivery.notice.status, key: delivery.notice.key, attempts: delivery.attempts };
        const scope = { env: delivery.notice.env, rule: delivery.notice.rule };
        this.metrics.countAlert(delivery.receiver.name, delivery.notice.status, delivery.ok ? 'sent' : 'failed');
        if (delivery.ok) {
          this.bus.publish({ type: 'alert.sent', severity: 'info', ...scope, message: `${delivery.notice.status} alert "${delivery.notice.summary}" delivered to ${delivery.receiver.type} receiver ${delivery.receiver.name}`, data: { ...data, httpStatus: delivery.httpStatus ?? null } });
        } else {
          this.bus.publish({ type: 'alert.failed', severity: 'warning', ...scope, message: `${delivery.receiver.type} receiver ${delivery.receiver.name} did not take the alert: ${delivery.error}`, data: { ...data, error: delivery.error ?? 'unknown' } });
        }
      },
    });
    this.flags = new FlagStore({
      environments,
      initial: config.flags.initial,
      readOnlyOnEmergency: config.flags.readOnlyOnEmergency,
      now: this.#now,
      publish: (input) => this.bus.publish(input),
      onChange: (env, flag, value) => this.metrics.setFlag(flag, env, value),
    });
    this.rules = new RuleEvaluator(
      config.rules,
      () => ({ activeEnvironment: this.#activeEnvironment, environments, now: this.#now(), series: (env) => this.#seriesByEnv.get(env) ?? [] }),
      (decision) => this.#decide(decision),
    );
    for (const rule of config.rules) this.metrics.setRuleState(rule.name, 'inactive');

    const controller = this.#controller();
    const actions = new Map<string, Action>();
    const actionDeps = (name: string) => ({ ...deps('actions'), dryRun: this.#dryRun, controller, name });
    for (const [name, block] of Object.entries(config.actions)) actions.set(name, createPlugin(ACTIONS, block, actionDeps(name)));
    actions.set(MANUAL_ROLLBACK, rollbackAction.create({ type: 'rollback', cooldown: 0 }, actionDeps(MANUAL_ROLLBACK)));
    this.actions = new ActionRunner({ actions, bus: this.bus, metrics: this.metrics, logger: logger.child({ component: 'actions' }), dryRun: this.#dryRun, now: this.#now });
  }

  get activeEnvironment(): string {
    return this.#activeEnvironment;
  }

  /** Config loaded, state store open, and the first round of probes done. */
  get ready(): boolean {
    return this.#store !== undefined && this.#pendingFirstResults.size === 0;
  }

  get dryRun(): boolean {
    return this.#dryRun;
  }

  /** The HTTP listener's address, once started. */
  get address(): { host: string; port: number } | undefined {
    return this.#server?.address;
  }

  async start(): Promise<void> {
    this.#startedAt = this.#now();
    for (const notice of this.config.notices) this.#logger.warn(notice);
    await this.rules.selfTest();
    this.#store = Store.open(this.config.dataDir);
    this.bus.resumeFrom(this.#store.lastEventId());
    this.#resume(this.#store);
    this.metrics.setActiveEnvironment(this.#activeEnvironment, Object.keys(this.config.environments));
    this.#server = await startHttpServer({
      listen: this.config.listen,
      routes: [...coreRoutes(this), ...rollbackRoutes(this), ...flagRoutes(this.flags, { activeEnvironment: () => this.#activeEnvironment }), ...statusPageRoutes(this)],
      tokens: () => ({ admin: this.config.api.adminToken, rollback: this.config.api.rollbackToken }),
      logger: this.#rootLogger.child({ component: 'http' }),
    });
    this.#stream = new EventStream({
      bus: this.bus,
      history: (since) => this.#history(since),
      streamToken: () => this.config.api.streamToken,
      logger: this.#rootLogger.child({ component: 'stream' }),
    });
    this.#stream.attach(this.#server.server);
    this.#scheduler.start();
    this.bus.publish({
      type: 'agent.started',
      severity: 'info',
      message: `greenlight ${VERSION} watching ${Object.keys(this.config.environments).join(' and ')} (${this.#activeEnvironment} live) with ${this.config.probes.length} probes and ${this.rules.size} rules on http://${formatHost(this.#server.address)}${this.#dryRun ? ' (dry run: actions are decided, not carried out)' : ''}`,
      data: { version: VERSION, pid: process.pid, activeEnvironment: this.#activeEnvironment, probes: this.config.probes.length, series: this.#series.length, dryRun: this.#dryRun },
    });
  }

  /** Stop schedules, end probes and actions in flight, close the listener and the connection pools. */
  async close(signal: string | null = null): Promise<void> {
    this.bus.publish({
      type: 'agent.stopping',
      severity: 'info',
      message: `greenlight stopping${signal ? ` on ${signal}` : ''}`,
      data: { signal, uptimeSeconds: Math.round((this.#now() - this.#startedAt) / 1_000) },
    });
    this.#shutdown.abort();
    await this.#scheduler.close();
    await Promise.allSettled([...this.#evaluations]);
    await this.actions.close();
    await this.alerts.close();
    await this.#traffic.close?.();
    this.#stream?.close();
    await this.#server?.close();
    await this.#dispatcher.destroy();
    this.#flushJournal();
    this.#store?.close();
  }

  /** Resolves once rule evaluations, actions and alert deliveries in flight have finished (tests). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#evaluations]);
    await this.actions.idle();
    await this.alerts.idle();
  }

  /** `withSeries: false` leaves out the per-series snapshots (the bulk at 1,000 series) for callers that summarize them. */
  state(withSeries = true): AgentState {
    const now = this.#now();
    const environments: AgentState['environments'] = {};
    for (const [name, env] of Object.entries(this.config.environments)) {
      const known = (this.#seriesByEnv.get(name) ?? []).filter((series) => series.up !== undefined);
      environments[name] = {
        url: redactUrl(env.url),
        active: name === this.#activeEnvironment,
        up: known.length === 0 ? undefined : known.every((series) => series.up),
      };
    }
    return {
      version: VERSION,
      startedAt: new Date(this.#startedAt).toISOString(),
      ready: this.ready,
      dryRun: this.#dryRun,
      activeEnvironment: this.#activeEnvironment,
      traffic: { adapter: this.#traffic.type, switching: this.#switching },
      environments,
      rules: this.rules.statuses(),
      flags: this.flags.all(),
      notices: this.config.notices,
      series: withSeries ? this.#series.map((entry) => entry.series.snapshot(now)) : [],
    };
  }

  /** Every series in its compact form with its latest `samples` results (the status page's GET /api/v1/overview). */
  summaries(samples: number): SeriesSummary[] {
    const now = this.#now();
    return this.#series.map((entry) => entry.series.summary(now, samples));
  }

  /** An operator's emergency rollback: judged like a rule's (never onto a failing environment), without the cooldown. */
  manualRollback(reason: string, actor: string) {
    const now = this.#now();
    return this.actions.run(MANUAL_ROLLBACK, {
      rule: null,
      incident: `manual-${new Date(now).toISOString()}`,
      env: this.#activeEnvironment,
      severity: 'critical',
      message: `manual rollback by ${actor}: ${reason}`,
      figures: null,
      actor,
      startedAt: now,
    });
  }

  async #probe(entry: SeriesEntry): Promise<void> {
    const result = await runProbe(entry.target, this.#dispatcher, this.#now, this.#shutdown.signal);
    if (this.#shutdown.signal.aborted) return; // a probe cut short by shutdown says nothing about the target
    this.#record(entry, result);
  }

  #record(entry: SeriesEntry, result: ProbeResult): void {
    const { series } = entry;
    const change = series.record(result);
    this.metrics.recordResult(series, result);
    this.#pendingFirstResults.delete(entry);
    if (change) this.#publishStateChange(entry, result, change.up, change.wasUp);
    if (this.rules.size > 0) this.#track(this.rules.onSample(series.probe, series.env));
  }

  #publishStateChange(entry: SeriesEntry, result: ProbeResult, up: boolean, wasUp: boolean | undefined): void {
    const { series } = entry;
    const active = series.env === this.#activeEnvironment;
    if (!up) {
      entry.downSince = result.startedAt;
      this.bus.publish({
        type: 'probe.down',
        severity: active ? 'warning' : 'info',
        env: series.env,
        probe: series.probe,
        message: `${series.probe} on ${series.env}${active ? ' (live)' : ''} is failing: ${describeFailure(result)}`,
        data: { reason: result.reason!, detail: describeFailure(result), status: result.status ?? null, durationMs: round(result.durationMs), consecutiveFailures: series.consecutiveFailures, active },
      });
    } else if (wasUp === false) {
      const downForMs = entry.downSince === undefined ? null : result.startedAt - entry.downSince;
      entry.downSince = undefined;
      this.bus.publish({
        type: 'probe.up',
        severity: 'info',
        env: series.env,
        probe: series.probe,
        message: `${series.probe} on ${series.env} recovered${downForMs === null ? '' : ` after ${Math.round(downForMs / 1_000)}s`}`,
        data: { status: result.status ?? null, durationMs: round(result.durationMs), downForMs, active },
      });
    }
  }

  /** A rule transition → a rule.* event and metrics; firing starts the rule's actions, resolving ends them. */
  #decide(decision: RuleDecision): void {
    const { rule, transition, figures, message } = decision;
    const scope = { env: figures.env, rule: rule.name };
    const common = { severity: rule.severity, figures, labels: rule.labels };
    switch (transition.to) {
      case 'pending':
        this.metrics.setRuleState(rule.name, 'pending');
        this.bus.publish({ type: 'rule.pending', severity: 'info', ...scope, message: `${rule.name} pending: ${message}`, data: { ...common, for: rule.for } });
        break;
      case 'cleared':
        this.metrics.setRuleState(rule.name, 'inactive');
        this.#logger.info({ rule: rule.name, pendingForMs: transition.pendingForMs }, `${rule.name} no longer pending: the condition cleared before it fired`);
        break;
      case 'firing': {
        const incident = `${rule.name}#${transition.incident}`;
        this.metrics.setRuleState(rule.name, 'firing');
        this.bus.publish({ type: 'rule.firing', severity: rule.severity, ...scope, message: `${rule.name} firing: ${message}`, data: { ...common, incident, heldForMs: transition.heldForMs, actions: rule.actions } });
        const context: ActionContext = { rule, incident, env: figures.env, severity: rule.severity, message, figures, actor: `rule:${rule.name}`, startedAt: this.#now() };
        this.#incidents.set(rule.name, context);
        this.#persistIncidents();
        this.actions.fire(rule.actions, context);
        break;
      }
      case 'resolved': {
        const incident = `${rule.name}#${transition.incident}`;
        this.metrics.setRuleState(rule.name, 'inactive');
        this.bus.publish({ type: 'rule.resolved', severity: 'info', ...scope, message: `${rule.name} resolved: ${message}`, data: { ...common, incident, firedForMs: transition.firedForMs } });
        const context = this.#incidents.get(rule.name);
        this.#incidents.delete(rule.name);
        this.#persistIncidents();
        if (context) this.actions.resolve(rule.actions, { ...context, figures });
        break;
      }
    }
  }

  #controller(): Controller {
    return {
      activeEnvironment: () => this.#activeEnvironment,
      environments: () => Object.keys(this.config.environments),
      health: (env) => {
        const series = this.#seriesByEnv.get(env) ?? [];
        const failing = series.filter((s) => s.up === false).map((s) => s.probe);
        const unknown = series.filter((s) => s.up === undefined).map((s) => s.probe);
        return { healthy: failing.length === 0 && unknown.length === 0, failing, unknown };
      },
      ruleHoldsOn: async (rule, env) => (await this.rules.holdsOn(rule, env))?.holds,
      switchTraffic: (to, context, signal) => this.#switchTraffic(to, context, signal),
      switching: () => this.#switching,
      alert: (notice) => this.alerts.notify(notice),
      applyFlagPreset: (preset, envs, actor, reason) => ({ changed: this.flags.applyPreset(preset, envs, { actor, reason }).length }),
      stateUrl: () => `${this.config.alerts.externalUrl ?? (this.#server ? `http://${formatHost(this.#server.address)}` : '')}/api/v1/state` || undefined,
    };
  }

  async #switchTraffic(to: string, context: ActionContext, signal: AbortSignal): Promise<SwitchOutcome> {
    if (this.#switching) throw new Error('a traffic switch is already in flight');
    this.#switching = true;
    const from = this.#activeEnvironment;
    try {
      const outcome = await this.#traffic.switchTo({ from, to, reason: context.message, rule: context.rule?.name ?? null, incident: context.incident }, signal);
      this.#activeEnvironment = to;
      this.#persist('activeEnvironment', to);
      this.metrics.setActiveEnvironment(to, Object.keys(this.config.environments));
      this.bus.publish({
        type: 'traffic.switched',
        severity: 'warning',
        env: to,
        rule: context.rule?.name ?? null,
        message: `live traffic switched ${from} → ${to} (${this.#traffic.type}): ${context.message}`,
        data: { from, to, adapter: this.#traffic.type, reason: context.message, incident: context.incident, detail: outcome.detail, dryRun: false },
      });
      // Rules read the live environment: re-judge them all against the new one.
      this.#track(this.rules.evaluateAll());
      return outcome;
    } finally {
      this.#switching = false;
    }
  }

  /**
   * Pick up where the last run left off: the live environment, the flags, and the incidents that
   * were firing (they go on firing without running their actions again, and resolve as usual).
   */
  #resume(store: Store): void {
    const environments = Object.keys(this.config.environments);
    const live = store.get<string>('activeEnvironment');
    if (live !== undefined && environments.includes(live)) {
      if (live !== this.#activeEnvironment) this.#logger.warn({ live }, `resuming with ${live} live, as stored in ${store.path} (activeEnvironment in the config only applies to a first start)`);
      this.#activeEnvironment = live;
    }
    const flags = store.get<ReturnType<FlagStore['snapshot']>>('flags');
    if (flags) this.flags.restore(flags);
    for (const [rule, stored] of Object.entries(store.get<Record<string, StoredIncident>>('incidents') ?? {})) {
      const number = Number(stored.incident.split('#').pop());
      const config = this.config.rules.find((r) => r.name === rule);
      if (!config || !this.rules.resumeFiring(rule, number, stored.startedAt)) continue;
      this.metrics.setRuleState(rule, 'firing');
      this.#incidents.set(rule, { ...stored, rule: config, figures: null });
      this.#logger.warn({ rule, incident: stored.incident }, `${stored.incident} was firing before the restart: it goes on firing without repeating its actions`);
    }
    this.#persistIncidents();
  }

  #persistIncidents(): void {
    const incidents: Record<string, StoredIncident> = {};
    for (const [rule, context] of this.#incidents) {
      incidents[rule] = { incident: context.incident, env: context.env, severity: context.severity, message: context.message, actor: context.actor, startedAt: context.startedAt };
    }
    this.#persist('incidents', incidents);
  }

  /** Journaled events after `since`, oldest first (GET /api/v1/events). */
  events(query: { since: number; limit: number; type?: string | undefined }): GreenlightEvent[] {
    this.#flushJournal();
    return this.#store?.events(query) ?? [];
  }

  /** Every journaled event after `since` (the stream's replay), read a page at a time. */
  #history(since: number): GreenlightEvent[] {
    const all: GreenlightEvent[] = [];
    for (let from = since; ; ) {
      const page = this.events({ since: from, limit: 1_000 });
      all.push(...page);
      if (page.length < 1_000) return all;
      from = page.at(-1)!.id;
    }
  }

  #journal(event: GreenlightEvent): void {
    this.#unjournaled.push(event);
    this.#journalFlush ??= setImmediate(() => this.#flushJournal());
  }

  #flushJournal(): void {
    if (this.#journalFlush) clearImmediate(this.#journalFlush);
    this.#journalFlush = undefined;
    if (!this.#store || this.#unjournaled.length === 0) return;
    const batch = this.#unjournaled;
    this.#unjournaled = [];
    try {
      this.#store.appendEvents(batch);
    } catch (error) {
      // Logged, not published: an event about a failing journal would only fail again.
      this.#logger.error({ err: error, events: batch.length, firstId: batch[0]!.id }, `could not journal ${batch.length} events: ${(error as Error).message}; greenlight keeps running, they are in the log`);
    }
  }

  /** Write through to the store. A failing disk must not stop greenlight from acting: log and go on. */
  #persist(key: string, value: unknown): void {
    try {
      this.#store?.set(key, value, this.#now());
    } catch (error) {
      this.#logger.error({ err: error, key }, `could not save ${key} to ${this.#store?.path}: ${(error as Error).message}; greenlight keeps running, but a restart would lose it`);
    }
  }

  #skipped(entry: SeriesEntry): void {
    entry.series.recordSkipped();
    this.metrics.recordSkipped(entry.series);
    this.#logger.debug({ probe: entry.series.probe, env: entry.series.env }, 'probe tick skipped: the previous probe is still in flight');
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => this.#logger.error({ err: error }, 'bug: rule evaluation failed')).finally(() => this.#evaluations.delete(tracked));
    this.#evaluations.add(tracked);
  }
}

/** An AbortController whose signal may have many listeners (one per probe in flight) without Node's leak warning. */
function abortControllerForMany(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

function logEvent(logger: Logger, event: GreenlightEvent): void {
  const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
  logger[level]({ event: event.type, id: event.id, env: event.env ?? undefined, probe: event.probe ?? undefined, rule: event.rule ?? undefined }, event.message);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function formatHost(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** URLs may carry credentials (https://user:secret@host); never show them. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.username || url.password) {
      url.username = 'redacted';
      url.password = '';
    }
    url.search = url.search ? '?redacted' : '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '[unparseable url]';
  }
}

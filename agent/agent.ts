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
import { ConfigError, formatConfigIssue } from '../config/errors.js';
import type { Config, ProbeConfig } from '../config/schema.js';
import { compileProbeTarget, probeEnvironments, runProbe, type ProbeTarget } from '../probes/http-probe.js';
import { describeFailure, type Confirmation, type ConfirmationKind, type ProbeResult } from '../probes/probe-result.js';
import { ProbeSeries, type SeriesSnapshot, type SeriesSummary } from '../probes/probe-series.js';
import { RuleEvaluator, watchedLines, type RuleDecision, type RuleStatus } from '../rules/rule-evaluator.js';
import type { Action, ActionContext, Controller } from './actions/action.js';
import { ActionRunner } from './actions/action-runner.js';
import { rollbackAction } from './actions/rollback-action.js';
import { AlertDispatcher } from './alerts/alert-dispatcher.js';
import { confirmPolicy, nextConfirmation } from './confirmation.js';
import { coreRoutes } from './core-routes.js';
import { EventStream } from './event-stream.js';
import { EventBus, type GreenlightEvent } from './events.js';
import { flagRoutes } from './flags/flag-routes.js';
import { FlagStore } from './flags/flag-store.js';
import { Journal, type EventQuery } from './journal.js';
import { JournalPages, readHistory, type EncodedEvent } from './journal-pages.js';
import { startHttpServer, type HttpServer } from './http-server.js';
import { JournalRetention } from './journal-retention.js';
import { AgentMetrics } from './metrics.js';
import { sleep, type PluginDeps } from './plugin.js';
import { ACTIONS, ALERT_RECEIVERS, createPlugin, TRAFFIC_ADAPTERS } from './plugins.js';
import { ProbeScheduler, type ScheduledJob } from './probe-scheduler.js';
import { reloadRoutes } from './reload-routes.js';
import { promoteRoutes } from './promote/promote-routes.js';
import { PromotionController } from './promote/promotion.js';
import { rollbackRoutes } from './rollback-routes.js';
import { statusPageRoutes } from './status-page-routes.js';
import { Store, type ActionRecord } from './store.js';
import { TurnQueue } from './turn-queue.js';
import type { SwitchOutcome, TrafficAdapter } from './traffic/traffic-adapter.js';
import { VERSION } from './version.js';

/** Probe rounds during which a resumed incident cannot resolve (see #resumeHoldMs). */
const RESUME_HOLD_ROUNDS = 12;

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
  /** Reads the config again for a reload (SIGHUP, POST /api/v1/reload); throws ConfigError when invalid. */
  reloadConfig?: () => Promise<Config>;
  /** Where reloadConfig reads from, for events and logs. */
  configSource?: string;
}

interface SeriesEntry {
  /** `health@blue`: the scheduler's job key. */
  key: string;
  /** Everything the series and its target were built from: a reload keeps the series while this is equal. */
  fingerprint: string;
  /** An interval probe (readiness waits for its first result). */
  interval: boolean;
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

/** What a reload did, or why it did nothing. */
export type ReloadResult =
  | { ok: true; probes: { added: string[]; removed: string[]; changed: string[]; kept: string[] }; rules: { added: string[]; removed: string[]; changed: string[] }; components: string[]; needsRestart: string[] }
  | { ok: false; error: string; issues: string[] };

export class Agent {
  #config: Config;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly flags: FlagStore;
  readonly rules: RuleEvaluator;
  readonly actions: ActionRunner;
  readonly alerts: AlertDispatcher;
  /** What actions and promotions may do to the world. */
  readonly controller: Controller;
  readonly promotions: PromotionController;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  readonly #now: () => number;
  readonly #dryRun: boolean;
  readonly #dispatcher: UndiciAgent;
  readonly #scheduler: ProbeScheduler;
  #traffic: TrafficAdapter;
  #series: SeriesEntry[] = [];
  readonly #seriesByEnv = new Map<string, ProbeSeries[]>();
  readonly #outbound: import('undici').Dispatcher | undefined;
  readonly #reloadConfig: (() => Promise<Config>) | undefined;
  readonly #configSource: string;
  /** Reloads run one at a time. */
  #reloading: Promise<ReloadResult> | undefined;
  /** Ends in-flight probes at shutdown (every probe in flight listens to it). */
  readonly #shutdown = abortControllerForMany();
  /** The context of each rule's current incident, for its resolve step. */
  readonly #incidents = new Map<string, ActionContext>();
  /** Rule evaluations in flight (they finish before close). */
  readonly #evaluations = new Set<Promise<unknown>>();
  #server: HttpServer | undefined;
  #stream: EventStream | undefined;
  #store: Store | undefined;
  #journal: Journal | undefined;
  #pages: JournalPages | undefined;
  /** Slices of bulk reading (stream replays, history pages): one per turn of the event loop. */
  readonly #turns = new TurnQueue();
  #retention: JournalRetention | undefined;
  #activeEnvironment: string;
  #switching = false;
  #startedAt = 0;
  #pendingFirstResults: Set<SeriesEntry>;
  /** Actions a crash interrupted, settled once the first probe round is in (judging needs health). */
  #interrupted: ActionRecord[] = [];

  constructor(options: AgentOptions) {
    const { config, logger } = options;
    this.#config = config;
    this.#outbound = options.outbound;
    this.#reloadConfig = options.reloadConfig;
    this.#configSource = options.configSource ?? 'the config';
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
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving.
    this.#dispatcher = new UndiciAgent({ keepAliveTimeout: 30_000, connections: 8, pipelining: 1 });
    this.#scheduler = new ProbeScheduler({
      onError: (job, error) => this.#logger.error({ err: error, job: job.key }, 'bug: a probe run threw instead of returning a result'),
    });
    this.metrics = new AgentMetrics({ now: this.#now, processMetrics: options.processMetrics ?? true });
    const environments = Object.keys(config.environments);
    for (const entry of seriesEntries(config)) this.#addSeries(entry);
    this.#indexSeries();
    // Readiness waits for the first round of the interval probes; a cron probe may not run for hours.
    this.#pendingFirstResults = new Set(this.#series.filter((entry) => entry.interval));

    const deps = (component: string) => this.#deps(component);
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
      () => ({ activeEnvironment: this.#activeEnvironment, environments: Object.keys(this.#config.environments), now: this.#now(), series: (env) => this.#seriesByEnv.get(env) ?? [] }),
      (decision) => this.#decide(decision),
    );
    for (const rule of config.rules) this.metrics.setRuleState(rule.name, 'inactive');

    this.controller = this.#controller();
    this.actions = new ActionRunner({
      actions: this.#createActions(config, new Map()),
      bus: this.bus,
      metrics: this.metrics,
      logger: logger.child({ component: 'actions' }),
      dryRun: this.#dryRun,
      now: this.#now,
      record: (record) => this.#journal?.recordAction(record),
    });
    this.promotions = new PromotionController({ host: this, now: this.#now, sleep, logger: logger.child({ component: 'promote' }) });
  }

  /** The config in force (a reload replaces it). */
  get config(): Config {
    return this.#config;
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
    this.#journal = new Journal({ store: this.#store, bus: this.bus, logger: this.#rootLogger.child({ component: 'journal' }), now: this.#now });
    this.#resume(this.#store);
    this.#interrupted = this.#store.unfinishedActions();
    this.#retention = new JournalRetention({ store: this.#store, ...this.config.journal.retention, now: this.#now, logger: this.#rootLogger.child({ component: 'journal' }) });
    this.#retention.start();
    this.metrics.setActiveEnvironment(this.#activeEnvironment, Object.keys(this.config.environments));
    const api = () => this.config.api;
    const tokens = () => ({ admin: api().adminToken, rollback: api().rollbackToken, stream: api().streamToken });
    this.#server = await startHttpServer({
      listen: this.config.listen,
      routes: [...coreRoutes(this), ...rollbackRoutes(this), ...reloadRoutes(this), ...flagRoutes(this.flags, { activeEnvironment: () => this.#activeEnvironment }), ...promoteRoutes(this.promotions), ...statusPageRoutes(this)],
      tokens,
      allowedHosts: () => api().allowedHosts,
      turns: this.#turns,
      logger: this.#rootLogger.child({ component: 'http' }),
    });
    const journal = this.#journal;
    this.#pages = new JournalPages({ read: (since, limit) => journal.eventsJson({ since, limit }), cacheable: () => !journal.failing });
    const stream = new EventStream({
      subscribe: (listener) => journal.subscribe(listener),
      pages: this.#pages,
      turns: this.#turns,
      policy: () => ({ tokens: tokens(), maxClients: api().stream.maxClients, maxClientsPerAddress: api().stream.maxClientsPerAddress, allowedOrigins: api().allowedOrigins }),
      logger: this.#rootLogger.child({ component: 'stream' }),
    });
    this.#stream = stream;
    this.#server.onUpgrade((req, socket, head, url) => stream.upgrade(req, socket, head, url));
    this.#scheduler.start();
    if (this.#pendingFirstResults.size === 0) this.#reconcileInterrupted();
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
    await this.promotions.close();
    await this.actions.close();
    await this.alerts.close();
    await this.#traffic.close?.();
    this.#turns.close();
    this.#stream?.close();
    await this.#server?.close();
    await this.#dispatcher.destroy();
    this.#retention?.close();
    this.#journal?.close();
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

  /**
   * Re-read the config and apply it: close → load → start of what changed. An invalid config is
   * refused with config.reload_failed and the running one stays. Probes whose config did not
   * change keep their series (windows, consecutive counts) and schedules; rules keep their state;
   * actions, the traffic adapter and receivers are rebuilt only when their block changed.
   */
  reload(trigger: string): Promise<ReloadResult> {
    const run = (this.#reloading ?? Promise.resolve()).then(() => this.#reload(trigger));
    this.#reloading = run.finally(() => {
      if (this.#reloading === run) this.#reloading = undefined;
    });
    return run;
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    const source = this.#configSource;
    const refuse = (error: string, issues: string[] = []): ReloadResult => {
      this.bus.publish({ type: 'config.reload_failed', severity: 'warning', message: `reload (${trigger}) refused, the running config stays: ${error}`, data: { source, trigger, error, issues } });
      return { ok: false, error, issues };
    };
    if (!this.#reloadConfig) return refuse('this agent was started without a config file to reload');
    let next: Config;
    try {
      next = await this.#reloadConfig();
      await new RuleEvaluator(next.rules, () => ({ activeEnvironment: this.#activeEnvironment, environments: Object.keys(next.environments), now: this.#now(), series: () => [] })).selfTest();
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues.map((issue) => formatConfigIssue(issue)) : [];
      return refuse(issues.length > 0 ? `${source} is invalid (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'})` : (error as Error).message, issues);
    }
    const previous = this.#config;
    const environments = Object.keys(previous.environments);
    if (JSON.stringify(Object.keys(next.environments).sort()) !== JSON.stringify([...environments].sort())) {
      return refuse(`the environments changed (${environments.join(', ')} → ${Object.keys(next.environments).join(', ')}): environment names are the agent's identity (live environment, flags, incidents) and change only with a restart`);
    }
    if (this.#switching) return refuse('a traffic switch is in flight; reload again once it is done');

    // Probes: keep the series whose fingerprint is unchanged, close the rest, start the new.
    const specs = seriesEntries(next);
    const wanted = new Map(specs.map((spec) => [spec.key, spec]));
    const probes = { added: [] as string[], removed: [] as string[], changed: [] as string[], kept: [] as string[] };
    for (const entry of [...this.#series]) {
      const spec = wanted.get(entry.key);
      if (spec?.fingerprint === entry.fingerprint) {
        probes.kept.push(entry.key);
        wanted.delete(entry.key);
        continue;
      }
      (spec ? probes.changed : probes.removed).push(entry.key);
      await this.#scheduler.remove(entry.key);
      this.metrics.removeSeries(entry.series);
      this.#pendingFirstResults.delete(entry);
      this.#series = this.#series.filter((other) => other !== entry);
    }
    this.#config = next;
    for (const spec of wanted.values()) {
      if (!probes.changed.includes(spec.key)) probes.added.push(spec.key);
      this.#addSeries(spec);
    }
    this.#indexSeries();

    // Rules: state carried over by name; rules gone from the config end their incidents.
    const rules = await this.rules.replaceRules(next.rules, this.#resumeHoldMs());
    for (const name of rules.added) this.metrics.setRuleState(name, 'inactive');
    for (const { config, state } of rules.removed) {
      // A removed rule that was firing ends its incident the usual way: rule.resolved, resolved alerts.
      if (state.state === 'firing') {
        const env = this.#incidents.get(config.name)?.env ?? this.#activeEnvironment;
        const firedForMs = this.#now() - (state.firingSince ?? this.#now());
        this.#decide({ rule: config, transition: { to: 'resolved', incident: state.incident, firedForMs }, figures: { env, facts: [], samples: 0 }, message: 'the rule was removed by a reload' });
      }
      this.metrics.removeRule(config.name);
    }
    for (const [name, context] of this.#incidents) {
      const rule = next.rules.find((r) => r.name === name);
      if (rule) this.#incidents.set(name, { ...context, rule });
    }
    this.#persistIncidents();

    // Plugins: rebuilt when their block changed; unchanged actions keep their instance (and cooldown).
    const components: string[] = [];
    const changed = (key: keyof Config) => JSON.stringify(previous[key]) !== JSON.stringify(next[key]);
    if (changed('traffic')) {
      const old = this.#traffic;
      this.#traffic = createPlugin(TRAFFIC_ADAPTERS, next.traffic, this.#deps('traffic'));
      await old.close?.();
      components.push('traffic');
    }
    if (changed('alerts')) {
      this.alerts.reconfigure({ receivers: next.alerts.receivers.map((block) => createPlugin(ALERT_RECEIVERS, block, this.#deps('alerts'))), repeatIntervalMs: next.alerts.repeatInterval });
      components.push('alerts');
    }
    if (changed('actions')) {
      const keep = new Map<string, Action>();
      for (const [name, block] of Object.entries(next.actions)) {
        const current = this.actions.actions.get(name);
        if (current && JSON.stringify(previous.actions[name]) === JSON.stringify(block)) keep.set(name, current);
      }
      this.actions.replaceActions(this.#createActions(next, keep));
      components.push('actions');
    }
    if (changed('api')) components.push('api');
    const needsRestart = (['listen', 'dataDir', 'log', 'flags', 'journal'] as const).filter((key) => changed(key));

    const result: ReloadResult = { ok: true, probes, rules: { added: rules.added, removed: rules.removed.map((r) => r.config.name), changed: rules.changed }, components, needsRestart };
    const summary = `${probes.added.length} probes added, ${probes.changed.length} changed, ${probes.removed.length} removed, ${probes.kept.length} kept with their windows; ${rules.added.length} rules added, ${rules.changed.length} changed, ${rules.removed.length} removed${components.length ? `; rebuilt ${components.join(', ')}` : ''}`;
    this.bus.publish({
      type: 'config.reloaded',
      severity: 'info',
      message: `config reloaded from ${source} (${trigger}): ${summary}${needsRestart.length ? `; ${needsRestart.join(', ')} changed but apply only after a restart` : ''}`,
      data: { source, trigger, probes, rules: result.rules, components, needsRestart },
    });
    this.#track(this.rules.evaluateAll());
    return result;
  }

  #addSeries(spec: SeriesSpec): void {
    const entry: SeriesEntry = {
      key: spec.key,
      fingerprint: spec.fingerprint,
      interval: spec.interval,
      series: new ProbeSeries(spec.probe.name, spec.env, this.#config.windows, spec.lines, this.#now()),
      target: compileProbeTarget(this.#config, spec.probe, spec.env),
      downSince: undefined,
    };
    this.#series.push(entry);
    this.metrics.addSeries(entry.series, this.#config.windows);
    this.#scheduler.add({
      key: spec.key,
      schedule: spec.schedule,
      run: (confirmation) => this.#probe(entry, confirmation),
      onSkipped: () => this.#skipped(entry),
      confirm: confirmPolicy(this.#config, spec.probe, spec.env),
      onCapped: () => this.metrics.recordConfirmationCapped(entry.series),
    });
  }

  #indexSeries(): void {
    this.#seriesByEnv.clear();
    for (const { series } of this.#series) this.#seriesByEnv.set(series.env, [...(this.#seriesByEnv.get(series.env) ?? []), series]);
  }

  #deps(component: string): PluginDeps {
    return { logger: this.#rootLogger.child({ component }), dispatcher: this.#outbound ?? this.#dispatcher, now: this.#now, sleep };
  }

  /** The configured actions plus the manual rollback; `keep` supplies instances to reuse by name. */
  #createActions(config: Config, keep: ReadonlyMap<string, Action>): Map<string, Action> {
    const actions = new Map<string, Action>();
    const actionDeps = (name: string) => ({ ...this.#deps('actions'), dryRun: this.#dryRun, controller: this.controller, name });
    for (const [name, block] of Object.entries(config.actions)) actions.set(name, keep.get(name) ?? createPlugin(ACTIONS, block, actionDeps(name)));
    actions.set(MANUAL_ROLLBACK, this.actions?.actions.get(MANUAL_ROLLBACK) ?? rollbackAction.create({ type: 'rollback', cooldown: 0 }, actionDeps(MANUAL_ROLLBACK)));
    return actions;
  }

  /** One probe; resolves to what it wants confirmed by a quick re-probe (the scheduler decides whether one runs). */
  async #probe(entry: SeriesEntry, confirmation?: Confirmation): Promise<ConfirmationKind | undefined> {
    const result = await runProbe(entry.target, this.#dispatcher, this.#now, this.#shutdown.signal);
    if (this.#shutdown.signal.aborted) return undefined; // a probe cut short by shutdown says nothing about the target
    if (confirmation) result.confirmation = confirmation;
    const wasUp = entry.series.up;
    this.#record(entry, result);
    return nextConfirmation(result, wasUp, entry.series.env === this.#activeEnvironment);
  }

  #record(entry: SeriesEntry, result: ProbeResult): void {
    const { series } = entry;
    const change = series.record(result);
    this.metrics.recordResult(series, result);
    if (this.#pendingFirstResults.delete(entry) && this.#pendingFirstResults.size === 0) this.#reconcileInterrupted();
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
      servingEnvironment: async (signal) => this.#traffic.current?.(signal),
      adoptSwitch: (to, context, detail) => this.#recordSwitch(this.#activeEnvironment, to, context, { detail }),
      fastRevert: (env) => this.promotions.watching(env),
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
      this.#recordSwitch(from, to, context, outcome);
      return outcome;
    } finally {
      this.#switching = false;
    }
  }

  #recordSwitch(from: string, to: string, context: ActionContext, outcome: SwitchOutcome): void {
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
  }

  /** Once every environment has probe results, settle the actions a crash left in flight. */
  #reconcileInterrupted(): void {
    const records = this.#interrupted;
    this.#interrupted = [];
    if (records.length === 0) return;
    this.#track(
      this.actions.reconcile(records, (stored) => ({
        ...stored,
        rule: this.config.rules.find((rule) => rule.name === stored.rule) ?? null,
        figures: null,
      })),
    );
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
      if (!config || !this.rules.resumeFiring(rule, number, stored.startedAt, this.#resumeHoldMs())) continue;
      this.metrics.setRuleState(rule, 'firing');
      this.#incidents.set(rule, { ...stored, rule: config, figures: null });
      this.#logger.warn({ rule, incident: stored.incident }, `${stored.incident} was firing before the restart: it goes on firing without repeating its actions`);
    }
    this.#persistIncidents();
  }

  /**
   * How long a resumed incident cannot resolve: long enough for the windows to show again what
   * made it fire — the stock critical rule counts more than 10 consecutive failures, so twelve
   * rounds of the slowest interval probe.
   */
  #resumeHoldMs(): number {
    const intervals = this.config.probes.filter((probe) => probe.cron === undefined).map((probe) => probe.every ?? this.config.probeDefaults.every);
    return RESUME_HOLD_ROUNDS * Math.max(0, ...intervals);
  }

  #persistIncidents(): void {
    const incidents: Record<string, StoredIncident> = {};
    for (const [rule, context] of this.#incidents) {
      incidents[rule] = { incident: context.incident, env: context.env, severity: context.severity, message: context.message, actor: context.actor, startedAt: context.startedAt };
    }
    this.#persist('incidents', incidents);
  }

  /**
   * GET /api/v1/events: journaled events after `since`, oldest first, serialized, read a page per
   * turn of the event loop; undefined while starting or once stopping.
   */
  async history(query: EventQuery): Promise<{ events: EncodedEvent[]; next: number } | undefined> {
    return this.#pages && readHistory(this.#pages, this.#turns, query);
  }

  /** Write through to the store; while it fails the journal keeps the value and retries. */
  #persist(key: string, value: unknown): void {
    this.#journal?.save(key, value);
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

interface SeriesSpec {
  key: string;
  fingerprint: string;
  interval: boolean;
  probe: ProbeConfig;
  env: string;
  lines: Map<string, number[]>;
  schedule: ScheduledJob['schedule'];
}

/** One series per probe and environment, with what it is built from (a reload compares fingerprints). */
function seriesEntries(config: Config): SeriesSpec[] {
  const ruleLines = watchedLines(config);
  const specs: SeriesSpec[] = [];
  for (const probe of config.probes) {
    const lines = new Map(Object.entries(probe.extract).map(([name, extraction]) => [name, [...extraction.lines]]));
    for (const [name, watched] of ruleLines.get(probe.name) ?? []) lines.set(name, [...new Set([...(lines.get(name) ?? []), ...watched])]);
    for (const env of probeEnvironments(config, probe)) {
      const schedule: ScheduledJob['schedule'] = probe.cron !== undefined ? { cron: probe.cron, timezone: probe.timezone ?? config.timezone } : { every: probe.every ?? config.probeDefaults.every, jitter: config.probeDefaults.jitter };
      const fingerprint = JSON.stringify({ probe, environment: config.environments[env], defaults: config.probeDefaults, windows: config.windows, lines: [...lines], schedule });
      specs.push({ key: `${probe.name}@${env}`, fingerprint, interval: probe.cron === undefined, probe, env, lines, schedule });
    }
  }
  return specs;
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

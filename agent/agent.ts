/**
 * The daemon's composition root: it builds the parts, starts them in dependency order and closes
 * them in reverse. The data path (schedule → probe → result → windows → facts → rule state →
 * incident → actions → events) reads straight through agent/pipeline/pipeline.ts. Every event
 * goes to the bus, whose subscribers are the log, the incident book and the journal (agent/events),
 * and through the journal the WebSocket stream.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { Redactor } from '../config/redactor.js';
import type { Config } from '../config/schema.js';
import { runProbe } from '../probes/http-probe.js';
import type { TlsObserver } from '../probes/tls.js';
import type { ActionOutcome, Controller } from './actions/action.js';
import { ActionRunner } from './actions/action-runner.js';
import { createController } from './actions/controller.js';
import { rollbackRoutes } from './actions/rollback-routes.js';
import { publishDelivery, type AlertDispatcher } from './alerts/alert-dispatcher.js';
import { AlertLifecycle } from './alerts/alert-lifecycle.js';
import { alertRoutes } from './alerts/alert-routes.js';
import { journaledLifecycleStore } from './alerts/lifecycle-store.js';
import { EventBus } from './events/events.js';
import { announceStart, announceStop } from './events/lifecycle.js';
import type { EventQuery } from './events/journal.js';
import { Persistence } from './events/persistence.js';
import { flagRoutes } from './flags/flag-routes.js';
import { FlagStore, resumeFlags } from './flags/flag-store.js';
import { ApiServer } from './http/api-server.js';
import { coreRoutes } from './http/core-routes.js';
import { StateView, type AgentState } from './http/state-view.js';
import { Pipeline } from './pipeline/pipeline.js';
import { createProbeDispatcher, readTlsTrust } from './pipeline/tls-trust.js';
import { sleep } from './plugins/plugin.js';
import { MANUAL_ROLLBACK, PluginFactory } from './plugins/plugin-factory.js';
import { promoteRoutes } from './promote/promote-routes.js';
import { PromotionController } from './promote/promotion.js';
import { ConfigReloader, type ReloadResult } from './reload/config-reloader.js';
import { reloadRoutes } from './reload/reload-routes.js';
import { Reports } from './reports/reports.js';
import { statusPageRoutes } from './status-page/status-page-routes.js';
import { logEvent } from './telemetry/logger.js';
import { AgentMetrics } from './telemetry/metrics.js';
import { SwitchSteps } from './traffic/switch-steps.js';
import { TrafficControl } from './traffic/traffic-control.js';

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
  outbound?: Dispatcher;
  /** Dispatcher for probes; default: the agent's own keep-alive pool (which it closes). Tests script targets with one. */
  probeDispatcher?: Dispatcher;
  /** Reads the config again for a reload (SIGHUP, POST /api/v1/reload); throws ConfigError when invalid. */
  reloadConfig?: () => Promise<Config>;
  /** Where reloadConfig reads from, for events and logs. */
  configSource?: string;
  /** The redactor the logger shares (run-command builds one for both); default: one of the config's secrets. */
  redactor?: Redactor;
}

export class Agent {
  readonly now: () => number;
  readonly dryRun: boolean;
  /** Hides every secret of the config (and of every one reloaded since) in whatever comes in from outside, and in every event. */
  readonly redactor: Redactor;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly plugins: PluginFactory;
  /** The data path: series, SLOs, rules and incidents (agent/pipeline/pipeline.ts). */
  readonly pipeline: Pipeline;
  /** The live environment and every switch of it. */
  readonly traffic: TrafficControl;
  readonly alerts: AlertDispatcher;
  /** Grouping, silences, maintenance, inhibition, escalation and acknowledgement in front of the receivers (`alerts` is its dispatcher). */
  readonly alertLifecycle: AlertLifecycle;
  readonly flags: FlagStore;
  /** What actions and promotions may do to the world. */
  readonly controller: Controller;
  readonly actions: ActionRunner;
  readonly promotions: PromotionController;
  #config: Config;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  /** The agent's own probe pool and what its TLS handshakes showed (closed with the agent). */
  readonly #probePool: { dispatcher: Dispatcher; tls: TlsObserver };
  readonly #view: StateView;
  readonly #reloader: ConfigReloader;
  #api: ApiServer | undefined;
  #persistence: Persistence | undefined;
  /** Trend reports (issue 16): the rollups of every probe result, the report route, scheduled posts; opened with the store. */
  #reports: Reports | undefined;
  #startedAt = 0;
  /** Numbers manual rollbacks; set past the journal's last event id at start (see manualRollback). */
  #manualSequence = 0;

  constructor(options: AgentOptions) {
    const { config, logger } = options;
    this.#config = config;
    this.#rootLogger = logger;
    this.#logger = logger.child({ component: 'agent' });
    this.now = options.now ?? Date.now;
    this.dryRun = options.dryRun ?? false;
    this.redactor = options.redactor ?? new Redactor();
    this.redactor.add(config.secrets);
    this.bus = new EventBus({
      now: this.now,
      redactor: this.redactor,
      onListenerError: (error, event) => this.#logger.error({ err: error, event: event.type }, 'an event subscriber failed'),
    });
    this.bus.subscribe((event) => logEvent(this.#logger, event));
    this.metrics = new AgentMetrics({ now: this.now, processMetrics: options.processMetrics ?? true });
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving; its
    // connections per origin grow with the series probing it (probeConnections).
    this.#probePool = createProbeDispatcher(config, { keepAliveTimeout: 30_000, pipelining: 1 }, this.now);
    const dispatcher = options.probeDispatcher ?? this.#probePool.dispatcher;
    this.plugins = new PluginFactory({ logger, dispatcher: () => options.outbound ?? dispatcher, now: this.now, redactor: this.redactor });
    const persist = (key: string, value: unknown) => this.#persistence?.save(key, value);
    this.pipeline = new Pipeline(this, { dispatcher, tls: this.#probePool.tls, persist, logger: this.#logger });
    this.traffic = new TrafficControl(this, {
      adapter: this.plugins.traffic(config),
      live: config.activeEnvironment,
      series: this.pipeline.series,
      probe: (target, signal) => runProbe(target, dispatcher, this.now, signal, this.#probePool.tls),
      logger: logger.child({ component: 'traffic' }),
      persist: (live) => persist('activeEnvironment', live),
      // The live environment is a new subject: no cooldown left by an incident elsewhere holds a rule back.
      onSwitched: () => {
        this.rules.clearCooldowns();
        this.pipeline.evaluateAll();
      },
      steps: new SwitchSteps({
        bus: this.bus,
        steps: () => this.plugins.switchSteps(this.#config),
        alert: (notice) => this.alerts.notify(notice),
        stateUrl: () => this.controller.stateUrl(),
        now: this.now,
        logger: logger.child({ component: 'switch' }),
        redact: (text) => this.redactor.text(text),
      }),
    });
    // The alert lifecycle owns the dispatcher: notices go through silences, maintenance,
    // inhibition, escalation and grouping (agent/alerts/alert-lifecycle.ts).
    this.alertLifecycle = new AlertLifecycle({
      config: () => this.#config,
      receivers: this.plugins.receivers(config),
      bus: this.bus,
      metrics: this.metrics,
      now: this.now,
      logger: logger.child({ component: 'alerts' }),
      activeEnvironment: () => this.traffic.live,
      onDelivery: publishDelivery(this.bus, this.metrics),
    });
    this.alerts = this.alertLifecycle.dispatcher;
    this.flags = new FlagStore({
      environments: Object.keys(config.environments),
      initial: config.flags.initial,
      readOnlyOnEmergency: config.flags.readOnlyOnEmergency,
      now: this.now,
      publish: (input) => this.bus.publish(input),
      onChange: (env, flag, value) => this.metrics.setFlag(flag, env, value),
      persist: (state, audit) => this.#persistence?.journal.saveFlags(state, audit, this.flags.auditLimit),
    });
    this.controller = createController({
      config: () => this.#config,
      traffic: this.traffic,
      rules: this.rules,
      alerts: this.alerts,
      flags: this.flags,
      ownUrl: () => this.#api?.url,
    });
    this.actions = new ActionRunner({
      actions: this.plugins.actions(config, new Map(), this),
      bus: this.bus,
      metrics: this.metrics,
      logger: logger.child({ component: 'actions' }),
      dryRun: this.dryRun,
      now: this.now,
      record: (record) => this.#persistence?.journal.recordAction(record),
      isOpen: (incident) => this.pipeline.incidents.isOpen(incident),
      onOwedChange: () => this.pipeline.incidents.save(),
    });
    this.promotions = new PromotionController({ host: this, now: this.now, sleep, logger: logger.child({ component: 'promote' }) });
    this.#view = new StateView(this);
    const hooks = { adopt: (next: Config) => (this.#config = next), trust: (next: Config) => this.#probePool.tls.setTrust(readTlsTrust(next)) };
    this.#reloader = new ConfigReloader(this, hooks, { read: options.reloadConfig, source: options.configSource ?? 'the config', logger: this.#logger });
  }

  /** The config in force (a reload replaces it). */
  get config(): Config {
    return this.#config;
  }

  /** The rules and their states (the pipeline's). */
  get rules(): Pipeline['rules'] {
    return this.pipeline.rules;
  }

  get activeEnvironment(): string {
    return this.traffic.live;
  }

  get startedAt(): number {
    return this.#startedAt;
  }

  /** Config loaded, state store open, and the first round of probes done. */
  get ready(): boolean {
    return this.#persistence !== undefined && this.pipeline.series.firstRoundDone;
  }

  /** The HTTP listener's address, once started. */
  get address(): { host: string; port: number } | undefined {
    return this.#api?.address;
  }

  /** Where every scheduled probe result is rolled up for reports, once the store is open. */
  get reports(): Reports | undefined {
    return this.#reports;
  }

  async start(): Promise<void> {
    this.#startedAt = this.now();
    for (const notice of this.config.notices) this.#logger.warn(notice);
    await this.rules.selfTest();
    const persistence = (this.#persistence = Persistence.open({ config: this.#config, bus: this.bus, logger: this.#rootLogger, now: this.now }));
    this.#manualSequence = this.bus.lastId;
    this.#resume(persistence);
    const reports = (this.#reports = new Reports(this, {
      store: persistence.store,
      slice: (work) => this.#api?.turn(work) ?? Promise.resolve(undefined),
      now: this.now,
      logger: this.#rootLogger.child({ component: 'reports' }),
    }));
    reports.start();
    // Silences, windows, incidents and their escalation, settled against the incidents resumed above.
    this.alertLifecycle.start(
      journaledLifecycleStore(persistence.store, persistence.journal),
      this.pipeline.incidents.list().map((context) => ({
        incident: context.incident,
        rule: context.rule?.name ?? context.actor,
        env: context.env,
        severity: context.severity === 'critical' ? 'critical' : 'warning',
        startedAt: context.startedAt,
      })),
    );
    this.metrics.setActiveEnvironment(this.traffic.live, Object.keys(this.config.environments));
    const flagHost = { activeEnvironment: () => this.traffic.live };
    const core = {
      metrics: this.metrics,
      ready: () => this.ready,
      state: () => this.state(),
      history: (query: EventQuery) => this.#api?.history(query) ?? Promise.resolve(undefined),
    };
    const routes = [
      ...coreRoutes(core),
      ...rollbackRoutes(this),
      ...reloadRoutes(this),
      ...flagRoutes(this.flags, flagHost),
      ...promoteRoutes(this.promotions),
      ...statusPageRoutes(this.#view),
      ...reports.routes(),
      ...alertRoutes(this.alertLifecycle, { environments: () => Object.keys(this.config.environments) }),
    ];
    this.#api = await ApiServer.start({ config: () => this.#config, routes, journal: persistence.journal, redactor: this.redactor, logger: this.#rootLogger });
    this.pipeline.start();
    announceStart(this.bus, {
      config: this.config,
      live: this.traffic.live,
      url: this.#api.url,
      rules: this.rules.size,
      series: this.pipeline.series.entries.length,
      dryRun: this.dryRun,
    });
  }

  /** Stop schedules, end probes and actions in flight, close the listener and the connection pools. */
  async close(signal: string | null = null): Promise<void> {
    announceStop(this.bus, signal, this.now() - this.#startedAt);
    await this.pipeline.close();
    await this.promotions.close();
    await this.actions.close();
    await this.alertLifecycle.close();
    await this.traffic.adapter.close?.();
    await this.#api?.close();
    await this.#probePool.dispatcher.destroy();
    this.#probePool.tls.close();
    await this.#reports?.close();
    this.#persistence?.close();
  }

  /** Resolves once rule evaluations, actions and alert deliveries in flight have finished (tests). */
  async settled(): Promise<void> {
    await this.pipeline.settled();
    await this.actions.idle();
    await this.alerts.idle();
  }

  /** GET /api/v1/state; `withSeries: false` leaves out the per-series snapshots. */
  state(withSeries = true): AgentState {
    return this.#view.state(withSeries);
  }

  /**
   * An operator's emergency rollback: judged like a rule's (never onto a failing or unverified
   * environment), without the anti-flap wait; never owed. Its incident, `manual-<ISO time>-<n>`,
   * is unique even for two in one millisecond: n counts up from the journal's last event id at
   * start, which only grows across restarts (every rollback publishes events).
   */
  manualRollback(reason: string, actor: string): Promise<ActionOutcome> {
    const now = this.now();
    const incident = `manual-${new Date(now).toISOString()}-${++this.#manualSequence}`;
    return this.actions.run(MANUAL_ROLLBACK, {
      rule: null,
      incident,
      env: this.traffic.live,
      severity: 'critical',
      message: `manual rollback by ${actor}: ${reason}`,
      figures: null,
      actor,
      startedAt: now,
    });
  }

  /** Re-read the config and apply what changed (agent/reload/config-reloader.ts); an invalid file changes nothing. */
  reload(trigger: string): Promise<ReloadResult> {
    return this.#reloader.reload(trigger);
  }

  /** Pick up where the last run left off: the live environment, the flags, the SLO counts, the incidents that were firing and the actions a crash interrupted. */
  #resume({ store }: Persistence): void {
    this.traffic.resume(store);
    resumeFlags(this.flags, store);
    this.pipeline.resume(store, store.unfinishedActions());
  }
}

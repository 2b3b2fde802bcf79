/**
 * The daemon's composition root: it builds the parts, starts them in dependency order and closes
 * them in reverse. The data path (schedule → probe → result → windows → facts → rule state →
 * incident → actions → events) reads straight through agent/pipeline/pipeline.ts. Every event
 * goes to the bus, whose subscribers are the log, the incident book and the journal (agent/events),
 * and through the journal the WebSocket stream.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { Redactor } from '../config/redactor.js';
import type { Config } from '../config/schema.js';
import { runProbe } from '../probes/http-probe.js';
import { Agent as UndiciAgent } from '../probes/undici-core.js';
import { steadyClock } from '../probes/steady-clock.js';
import { answerLimit } from '../probes/answer-budget.js';
import type { ActionOutcome, Controller } from './actions/action.js';
import { ActionRunner } from './actions/action-runner.js';
import { createController } from './actions/controller.js';
import { rollbackRoutes } from './actions/rollback-routes.js';
import { publishDelivery, type AlertDispatcher } from './alerts/alert-dispatcher.js';
import { AlertLifecycle, type OpenIncident } from './alerts/alert-lifecycle.js';
import { alertRoutes } from './alerts/alert-routes.js';
import { journaledLifecycleStore, type LifecycleStore } from './alerts/lifecycle-store.js';
import { Cluster } from './cluster/cluster.js';
import { clusterRoutes, leaderOnly, type ClusterRole } from './cluster/cluster-routes.js';
import { resumeActions, sharedState, takeOver } from './cluster/takeover.js';
import { EventBus } from './events/events.js';
import { announceStart, announceStop } from './events/lifecycle.js';
import type { HistoryQuery } from './events/journal-pages.js';
import { Persistence } from './events/persistence.js';
import { flagRoutes } from './flags/flag-routes.js';
import { FlagStore, resumeFlags, type FlagPersistence, type FlagState } from './flags/flag-store.js';
import { ApiServer } from './http/api-server.js';
import type { Route } from './http/http-server.js';
import { ACTION_RECORDS_KEPT_MS, StoreError, type ActionRecord, type Store } from './events/store.js';
import { isCorrupt, unusableDatabase } from './events/make-directory.js';
import { coreRoutes } from './http/core-routes.js';
import { redactUrl, StateView, type AgentState } from './http/state-view.js';
import { Pipeline } from './pipeline/pipeline.js';
import type { UtilizationSource } from './pipeline/load-shedder.js';
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
import type { LiveResults } from './promote/rollback-validation.js';
import { ClockWatch } from './telemetry/clock-watch.js';
import { AgentMetrics } from './telemetry/metrics.js';
import { SwitchSteps } from './traffic/switch-steps.js';
import { TrafficControl } from './traffic/traffic-control.js';

export interface AgentOptions {
  config: Config;
  /** The root logger; the agent and its components log through children of it. */
  logger: Logger;
  dryRun?: boolean;
  /** Clock for windows, rules and events (default the steady clock, which a step of the wall clock does not move); tests inject one. */
  now?: () => number;
  /** Include process_* metrics (default true). */
  processMetrics?: boolean;
  /** Dispatcher for outbound calls (webhooks, receivers); default: the agent's own pool. */
  outbound?: Dispatcher;
  /** Dispatcher for probes; default: the agent's own keep-alive pool (which it closes). Tests script targets with one. */
  probeDispatcher?: Dispatcher;
  /** The event loop's utilization since the previous call (the load shedder's signal); tests script overload with one. */
  loopUtilization?: UtilizationSource;
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
  /** The cluster this agent belongs to (config cluster.databaseUrl); undefined for an agent alone. */
  readonly cluster: Cluster | undefined;
  #config: Config;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  /** The agent's own probe pool and what its TLS handshakes showed (closed with the agent). */
  readonly #probePool: ReturnType<typeof createProbeDispatcher>;
  readonly #view: StateView;
  readonly #reloader: ConfigReloader;
  #api: ApiServer | undefined;
  #persistence: Persistence | undefined;
  /** Trend reports (issue 16): the rollups of every probe result, the report route, scheduled posts; opened with the store. */
  #reports: Reports | undefined;
  #startedAt = 0;
  /** Numbers manual rollbacks; set past the journal's last event id at start (see manualRollback). */
  #manualSequence = 0;
  /** Aborted when the agent stops: what runs outside the actions and the pipeline (resumeSteps). */
  readonly #stopping = new AbortController();
  #resumedSteps: Promise<void> = Promise.resolve();
  readonly #clockWatch: ClockWatch | undefined;

  constructor(options: AgentOptions) {
    const { config, logger } = options;
    this.#config = config;
    this.#rootLogger = logger;
    this.#logger = logger.child({ component: 'agent' });
    this.now = options.now ?? steadyClock();
    // On its own clock, the agent says in the log when the wall clock steps away from it (an injected clock is a test's).
    this.#clockWatch = options.now === undefined ? new ClockWatch({ steady: this.now, logger: this.#logger }) : undefined;
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
    declareMetrics(this.metrics, config);
    const { cluster: clusterConfig } = config;
    this.cluster = clusterConfig.databaseUrl
      ? new Cluster(
          {
            databaseUrl: clusterConfig.databaseUrl,
            nodeName: clusterConfig.nodeName,
            advertiseUrl: clusterConfig.advertiseUrl,
            leaseMs: clusterConfig.lease,
            renewMs: clusterConfig.renewEvery,
          },
          { logger: logger.child({ component: 'cluster' }), now: this.now },
        )
      : undefined;
    if (clusterConfig.databaseUrl) this.redactor.add(databaseSecrets(clusterConfig.databaseUrl));
    const cluster = this.cluster;
    const acting = () => cluster?.isLeader() ?? true;
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving; its
    // connections per origin grow with the series probing it (probeConnections).
    this.#probePool = createProbeDispatcher(config, { keepAliveTimeout: 30_000, pipelining: 1 }, this.now);
    const dispatcher = options.probeDispatcher ?? this.#probePool.dispatcher;
    this.plugins = new PluginFactory({ logger, dispatcher: () => options.outbound ?? dispatcher, now: this.now, redactor: this.redactor });
    const persist = (key: string, value: unknown) => this.#persistence?.save(key, value);
    this.pipeline = new Pipeline(this, {
      dispatcher,
      connections: this.#probePool.connections,
      tls: this.#probePool.tls,
      persist,
      logger: this.#logger,
      loopUtilization: options.loopUtilization,
    });
    this.traffic = new TrafficControl(this, {
      adapter: this.plugins.traffic(config),
      live: config.activeEnvironment,
      series: this.pipeline.series,
      // A switch's fresh verification on connections of its own: one kept alive from before (a
      // certificate since replaced, a listener since closed) vouched for a target that no new client
      // could reach. A dispatcher given by a test (a mock) is used as it is.
      probe: async (target, canceller) => {
        if (dispatcher !== this.#probePool.dispatcher) return runProbe(target, dispatcher, this.now, canceller, this.#probePool.tls);
        const fresh = new UndiciAgent({ connections: 1, pipelining: 1, connect: this.#probePool.connect });
        try {
          return await runProbe(target, fresh, this.now, canceller, this.#probePool.tls);
        } finally {
          void fresh.destroy().catch(() => undefined);
        }
      },
      logger: logger.child({ component: 'traffic' }),
      persist,
      // The live environment is a new subject: no cooldown left by an incident elsewhere holds a rule back.
      onSwitched: () => {
        this.rules.clearCooldowns();
        this.pipeline.evaluateAll();
      },
      ...(cluster
        ? {
            fence: (from: string, to: string, incident: string, manual: boolean) => cluster.claimSwitch(from, to, incident, manual),
            switchSent: (incident: string) => cluster.switchSent(incident),
          }
        : {}),
      steps: new SwitchSteps({
        bus: this.bus,
        steps: () => this.plugins.switchSteps(this.#config),
        alert: (notice) => this.alerts.notify(notice),
        firing: () => this.alerts.firing(),
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
      rolledBackFromAt: (env) => this.traffic.rolledBackFromAt(env),
      onDelivery: publishDelivery(this.bus, this.metrics),
      acting,
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
      acting,
      ruleActions: (rule) => this.#config.rules.find((candidate) => candidate.name === rule)?.actions,
      ...(cluster ? { claim: (record: ActionRecord, retry: boolean) => cluster.claimAction(record, retry) } : {}),
    });
    this.promotions = new PromotionController({ host: this, now: this.now, sleep, logger: logger.child({ component: 'promote' }) });
    this.#view = new StateView(this);
    const hooks = {
      adopt: (next: Config) => {
        this.#config = next;
        declareMetrics(this.metrics, next);
        // A probe's maxBodyBytes may have changed, and with it what one answer may make the pool read.
        this.#probePool.budget.setLimit(answerLimit(next));
      },
      trust: (next: Config) => this.#probePool.tls.setTrust(readTlsTrust(next)),
    };
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
    this.#clockWatch?.start();
    for (const notice of this.config.notices) this.#logger.warn(notice);
    await this.rules.selfTest();
    const { cluster } = this;
    const persistence = (this.#persistence = Persistence.open({
      config: this.#config,
      bus: this.bus,
      logger: this.#rootLogger,
      now: this.now,
      replica: cluster,
    }));
    if (cluster) {
      await cluster.open({
        bus: this.bus,
        takeOver: () => takeOver(this, cluster),
        resumeActions: () => resumeActions(this, cluster),
        sharedChanged: (key) => void this.#followShared(cluster, key),
        ingest: (events) => persistence.journal.ingest(events),
        changed: () => this.#clusterChanged(),
      });
      // Every agent starts from the shared state; only a leader's takeover settles interrupted actions
      // and starts the alert lifecycle (from the shared lifecycle records: see resumeAlerts).
      this.#resume(sharedState(await cluster.store.snapshot(this.flags.auditLimit)), false);
      this.#manualSequence = Date.now();
    } else {
      this.#manualSequence = this.bus.lastId;
      try {
        this.#resume(persistence.store, true);
        // Silences, windows, incidents and their escalation, settled against the incidents resumed above.
        this.resumeAlerts(journaledLifecycleStore(persistence.store, persistence.journal));
      } catch (error) {
        // A damaged page read only now: name the file and what to do, not just SQLite's words.
        if (isCorrupt(error)) throw new StoreError(unusableDatabase('state database', persistence.store.path, error), { cause: error });
        throw error;
      }
    }
    const reports = (this.#reports = new Reports(this, {
      store: persistence.store,
      slice: (work) => this.#api?.turn(work) ?? Promise.resolve(undefined),
      now: this.now,
      logger: this.#rootLogger.child({ component: 'reports' }),
      // Scheduled posts are notifications: in a cluster only the leader sends them.
      acting: () => cluster?.isLeader() ?? true,
    }));
    reports.start();
    this.metrics.setActiveEnvironment(this.traffic.live, Object.keys(this.config.environments));
    const flagHost = { activeEnvironment: () => this.traffic.live, dryRun: this.dryRun };
    const core = {
      metrics: this.metrics,
      slice: <T>(work: () => T) => this.#api?.turn(work) ?? Promise.resolve(undefined),
      ready: () => this.ready,
      storeProblem: () => (cluster?.unavailable ? "the cluster's PostgreSQL does not answer; no agent acts until it does" : undefined),
      state: () => this.state(),
      environments: () => Object.keys(this.config.environments),
      history: (query: HistoryQuery) => this.#api?.history(query) ?? Promise.resolve(undefined),
    };
    const role = this.#role();
    const lifecycleRoutes = alertRoutes(this.alertLifecycle, { environments: () => Object.keys(this.config.environments) });
    // An action asked of a follower is carried out by the leader (reads and OFREP are answered here).
    const acts = (routes: Route[]) => (cluster ? [...routes.filter((route) => !isAction(route)), ...leaderOnly(routes.filter(isAction), role)] : routes);
    const routes = [
      ...coreRoutes(core),
      ...acts(rollbackRoutes(this)),
      ...reloadRoutes(this),
      ...acts(flagRoutes(this.flags, flagHost)),
      ...acts(promoteRoutes(this.promotions)),
      ...clusterRoutes(role),
      ...statusPageRoutes({
        state: (withSeries) => this.#view.state(withSeries),
        summaries: (samples) => this.#view.summaries(samples),
        replayFrom: (count) => persistence.journal.idBeforeNewest(count),
        cluster: () => role.view(),
        alerts: () => this.#view.alerts(),
      }),
      ...reports.routes(),
      // The lifecycle lives on the leader (a follower's is dormant): its reads are forwarded too.
      ...(cluster ? leaderOnly(lifecycleRoutes, role) : lifecycleRoutes),
    ];
    this.#api = await ApiServer.start({ config: () => this.#config, routes, journal: persistence.journal, redactor: this.redactor, logger: this.#rootLogger });
    cluster?.start(this.#api.url, this.#api.address.port);
    this.pipeline.start();
    // The steps after a switch the last run stopped in the middle of (a CDN purge, a public verify).
    this.#resumedSteps = this.traffic
      .resumeSteps(this.#stopping.signal)
      .catch((error: unknown) => this.#logger.error({ err: error }, 'bug: running the pending switch steps again failed'));
    announceStart(this.bus, {
      config: this.config,
      live: this.traffic.live,
      url: this.#api.url,
      rules: this.rules.size,
      series: this.pipeline.series.entries.length,
      dryRun: this.dryRun,
    });
    // A cluster's leader does this at its takeover.
    if (!cluster) this.#fireUnrecorded(persistence.store);
  }

  /**
   * Stop schedules, end probes and actions in flight, close the listener and the connection pools.
   * `reason` says why when no signal asked (a start that failed).
   */
  async close(signal: string | null = null, reason?: string): Promise<void> {
    announceStop(this.bus, signal, this.now() - this.#startedAt, reason);
    // Journaled and sent now, ahead of the stream's close frame: a dashboard sees why its stream ends.
    this.#persistence?.journal.flush();
    this.#clockWatch?.stop();
    // Hand over at once: another agent takes the lease at its next round instead of waiting for it to expire.
    await this.cluster?.resign();
    await this.pipeline.close();
    this.#stopping.abort();
    await this.#resumedSteps;
    await this.promotions.close();
    await this.actions.close();
    await this.alertLifecycle.close();
    await this.traffic.adapter.close?.();
    await this.#api?.close();
    await this.#probePool.dispatcher.destroy();
    this.#probePool.tls.close();
    await this.#reports?.close();
    this.#persistence?.close();
    await this.cluster?.close();
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

  /** Write a record of the action journal (a promotion's switch; the action runner writes its own). */
  recordAction(record: ActionRecord): void {
    this.#persistence?.journal.recordAction(record);
  }

  /**
   * `env`'s results in its probes' `windowMs` windows (the shortest where a probe has none that
   * long) from `since` on, counted from the first window bucket that starts after it
   * (SlidingWindow.totals); and its probes with no result that late (a rollback's validation).
   */
  resultsSince(env: string, windowMs: number, since: number): LiveResults {
    const now = this.now();
    const results: LiveResults = { count: 0, failures: 0, unanswered: [] };
    for (const series of this.pipeline.series.of(env)) {
      const window = series.windows.find((w) => w.windowMs === windowMs) ?? series.windows.reduce((a, b) => (b.windowMs < a.windowMs ? b : a));
      const from = Math.ceil(since / window.bucketMs) * window.bucketMs;
      const totals = window.totals(now, from);
      results.count += totals.count;
      results.failures += totals.failures;
      if ((series.lastStartedAt ?? Number.NEGATIVE_INFINITY) < from) results.unanswered.push(series.probe);
    }
    return results;
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

  /**
   * Pick up where the last run left off: the live environment, the flags, the SLO counts, the
   * incidents that were firing and (`settle`) the actions a crash interrupted.
   */
  #resume(store: ResumeSource, settle: boolean): void {
    this.traffic.resume(store);
    resumeFlags(this.flags, store);
    this.pipeline.resume(store, settle ? store.unfinishedActions() : []);
  }

  /**
   * The actions of the resumed incidents that the journal has no record of (the last run stopped
   * between opening the incident and starting them) start now, as a cluster's new leader starts
   * those no leader did (takeover.ts). An incident older than the journal keeps its records
   * (ACTION_RECORDS_KEPT_MS) may have had them pruned: it is left as it is, not acted on twice.
   */
  #fireUnrecorded(store: Pick<Store, 'hasActionRecord'>): void {
    const keptSince = this.now() - ACTION_RECORDS_KEPT_MS;
    for (const context of this.pipeline.incidents.list())
      if (context.rule && context.startedAt >= keptSince)
        this.actions.fireUnrecorded(context.rule.actions, context, (incident, action) => store.hasActionRecord(incident, action));
  }

  /**
   * Start the alert lifecycle from `store` (silences, windows, incidents with their escalation, the
   * alerts of open incidents and what each receiver was told), settled against the incidents the
   * pipeline has open. An agent alone: at start, from its SQLite store. A cluster: at each takeover,
   * from the shared records the last leader wrote (agent/cluster/takeover.ts).
   */
  resumeAlerts(store: LifecycleStore): void {
    this.alertLifecycle.start(store, this.#openIncidents());
  }

  /** A cluster's leader acts again in the same term (agent/cluster/takeover.ts resumeActions): its alert lifecycle catches up. */
  wakeAlerts(): void {
    this.alertLifecycle.wake(this.#openIncidents());
  }

  #openIncidents(): OpenIncident[] {
    return this.pipeline.incidents.list().map((context): OpenIncident => ({
      incident: context.incident,
      rule: context.rule?.name ?? context.actor,
      env: context.env,
      severity: context.severity === 'critical' ? 'critical' : 'warning',
      startedAt: context.startedAt,
    }));
  }

  /** Who leads: the cluster, or this agent alone (a cluster of one that it leads, epoch 1). */
  #role(): ClusterRole {
    if (this.cluster) return this.cluster;
    const name = this.#config.cluster.nodeName ?? `${hostname()}:${this.#api?.address.port ?? this.#config.listen.port}`;
    // Read at each view: the API's address is known only once it listens.
    const advertised = () => {
      const url = this.#config.cluster.advertiseUrl ?? this.#api?.url;
      return url === undefined ? '' : redactUrl(url);
    };
    return {
      isLeader: () => true,
      leaderUrl: () => undefined,
      view: () => ({
        self: name,
        leader: name,
        epoch: 1,
        members: [{ name, url: advertised(), role: 'leader', lastSeen: new Date(this.now()).toISOString() }],
      }),
    };
  }

  /** Another agent (the leader) changed the shared state: a follower takes it over as it is. */
  async #followShared(cluster: Cluster, key: string): Promise<void> {
    // A leader writes the shared state itself, with one exception it must follow: a deposed leader's
    // record of a switch its adapter made (completeSwitch is not fenced: the switch happened, and the
    // store keeps it only when no later term has switched). Another agent's writes reach it no other way.
    if (cluster.isLeader() && key !== 'activeEnvironment') return;
    try {
      if (key === 'activeEnvironment' || key === '*') {
        const live = await cluster.store.getState<string>('activeEnvironment');
        if (live !== undefined) this.traffic.follow(live);
      }
      if (key === 'flags' || key === '*') {
        const saved = await cluster.store.getState<FlagState>('flags');
        // No flags in the database: nobody changed one yet, so the cluster's are the config's. A
        // change this agent made that the database refused (it no longer led) is undone either way.
        const audit = await cluster.store.flagAudit(this.flags.auditLimit);
        this.flags.restore(saved ? { ...saved, audit } : { values: this.flags.initialValues(), versions: {}, audit });
      }
    } catch (error) {
      this.#logger.warn(`could not read the shared ${key === '*' ? 'state' : key} from the cluster: ${(error as Error).message}`);
    }
  }

  #clusterChanged(): void {
    const view = this.cluster!.view();
    this.metrics.setCluster({ isLeader: this.cluster!.isLeader(), epoch: view.epoch, members: view.members.length });
  }
}

/** What resuming reads: the SQLite store of an agent alone, or a snapshot of a cluster's shared state. */
export type ResumeSource = FlagPersistence & {
  readonly path: string;
  unfinishedActions(): ActionRecord[];
};

/** A route that acts (anything but a read, and OFREP's evaluations, which only read). */
function isAction(route: Route): boolean {
  return route.method !== 'GET' && !route.path.startsWith('/ofrep/');
}

/** The parts of a database URL that are secrets: the password (raw and decoded) and the URL itself. */
function databaseSecrets(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password ? [url, password, decodeURIComponent(password)] : [];
  } catch {
    return [url];
  }
}

/** Every action's and receiver's counters exist from the start, at 0 (AgentMetrics.declare). */
function declareMetrics(metrics: AgentMetrics, config: Config): void {
  metrics.declare(
    [...Object.keys(config.actions), MANUAL_ROLLBACK],
    (config.alerts.receivers as { name?: unknown }[]).map((receiver) => String(receiver.name)),
  );
}

/**
 * The daemon. The data path reads straight through this file:
 *
 *   schedule (ProbeScheduler) → probe (runProbe) → result → window (ProbeSeries; the SLO count
 *   windows) → metrics,
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
import { Redactor } from '../config/redactor.js';
import type { Config, ProbeConfig } from '../config/schema.js';
import { compileProbeTarget, probeEnvironments, runProbe, type ProbeTarget } from '../probes/http-probe.js';
import { describeFailure, type Confirmation, type ConfirmationKind, type ProbeResult } from '../probes/probe-result.js';
import { ProbeSeries, type SeriesSnapshot, type SeriesSummary } from '../probes/probe-series.js';
import { SloBook, sloDefinitions, sloStatus, type SloStatus } from '../probes/slo-window.js';
import type { TlsObserver } from '../probes/tls.js';
import { RuleEvaluator, sloWindows, watchedLines, type RuleDecision, type RuleStatus } from '../rules/rule-evaluator.js';
import type { Action, ActionContext, Controller, EnvironmentHealth, SwitchPlan, SwitchResult, Verification, VerificationCheck } from './actions/action.js';
import { ActionRunner } from './actions/action-runner.js';
import { rollbackAction } from './actions/rollback-action.js';
import type { AlertDispatcher } from './alerts/alert-dispatcher.js';
import { AlertLifecycle } from './alerts/alert-lifecycle.js';
import { alertRoutes } from './alerts/alert-routes.js';
import { journaledLifecycleStore } from './alerts/lifecycle-store.js';
import { confirmPolicy, nextConfirmation } from './confirmation.js';
import { coreRoutes } from './core-routes.js';
import { EventStream } from './event-stream.js';
import { Exclusive } from './exclusive.js';
import { EventBus, type GreenlightEvent } from './events.js';
import { flagRoutes } from './flags/flag-routes.js';
import { FlagStore, type FlagAuditEntry, type FlagState } from './flags/flag-store.js';
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
import { createProbeDispatcher, readTlsTrust } from './tls-trust.js';
import { Store, type ActionRecord } from './store.js';
import { TurnQueue } from './turn-queue.js';
import type { SwitchOutcome, TrafficAdapter } from './traffic/traffic-adapter.js';
import { VERSION } from './version.js';

/** How often the SLO counts are written to the store (and at stop): a crash loses at most this much. */
const SLO_SAVE_MS = 60_000;

/**
 * Results every interval series must have recorded before a resumed incident may resolve: its
 * windows start empty after a restart, and the stock critical rule counts more than 10
 * consecutive failures. Counted in results, not time: a loaded machine or a hung target makes
 * rounds slower than their interval.
 */
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
  /** Dispatcher for probes; default: the agent's own keep-alive pool (which it closes). Tests script targets with one. */
  probeDispatcher?: import('undici').Dispatcher;
  /** Reads the config again for a reload (SIGHUP, POST /api/v1/reload); throws ConfigError when invalid. */
  reloadConfig?: () => Promise<Config>;
  /** Where reloadConfig reads from, for events and logs. */
  configSource?: string;
  /** The redactor the logger shares (run-command builds one for both); default: one of the config's secrets. */
  redactor?: Redactor;
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
  /** When its current run of passing results began (the start of the first one); undefined while its latest failed. */
  upSince: number | undefined;
  /** When its scheduled probe in flight started (overdue past switching.verifyTimeout: unknown, never up). */
  inFlightSince: number | undefined;
  /** Ends its probe in flight: at shutdown, or when a reload removes the series. */
  readonly abort: AbortController;
}

/** What the store keeps of a firing incident, to resolve it after a restart (and the actions still owed to it). */
type StoredIncident = Pick<ActionContext, 'incident' | 'env' | 'severity' | 'message' | 'actor' | 'startedAt'> & {
  owed?: { action: string; since: number; reason: string }[];
};

/** What an open incident's actions did so far: its rule's cooldown starts only from one that acted. */
interface IncidentEffects {
  switched: boolean;
  succeeded: boolean;
}

export interface AgentState {
  version: string;
  startedAt: string;
  ready: boolean;
  dryRun: boolean;
  activeEnvironment: string;
  /** `lock`: what holds the switch lock (a switch or a reload), `waiting`: how many switches and reloads wait for it. */
  traffic: { adapter: string; switching: boolean; lock: string | null; waiting: number };
  environments: Record<string, { url: string; active: boolean; up: boolean | undefined; health: EnvironmentHealth; rolledBackFromAt: string | null }>;
  /** Actions open incidents are still owed (held or refused rollbacks), retried as soon as they would go ahead. */
  owed: { action: string; incident: string; since: string; attempts: number; reason: string; waiting: string | null }[];
  rules: RuleStatus[];
  flags: Record<string, Readonly<Record<string, boolean>>>;
  notices: readonly string[];
  slo: SloStatus[];
  series: SeriesSnapshot[];
}

/** What a reload did, or why it did nothing. */
export type ReloadResult =
  | {
      ok: true;
      probes: { added: string[]; removed: string[]; changed: string[]; kept: string[] };
      rules: { added: string[]; removed: string[]; changed: string[] };
      components: string[];
      needsRestart: string[];
    }
  | { ok: false; error: string; issues: string[] };

export class Agent {
  #config: Config;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly flags: FlagStore;
  readonly rules: RuleEvaluator;
  readonly actions: ActionRunner;
  readonly alerts: AlertDispatcher;
  /** Grouping, silences, maintenance, inhibition, escalation and acknowledgement in front of the receivers (alerts is its dispatcher). */
  readonly alertLifecycle: AlertLifecycle;
  /** What actions and promotions may do to the world. */
  readonly controller: Controller;
  /**
   * Hides every secret of the config (and of every config reloaded since) in what comes in from
   * outside: probe answers, outbound answers, program output, API request bodies; and, as a last
   * net, in every event before it is journaled, streamed or logged.
   */
  readonly redactor: Redactor;
  readonly promotions: PromotionController;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  readonly #now: () => number;
  readonly #dryRun: boolean;
  /** Every probe goes through this: the agent's own pool, unless a test scripts the targets. */
  readonly #dispatcher: import('undici').Dispatcher;
  /** The agent's own keep-alive pool (closed with it), used unless one was given. */
  readonly #probePool: UndiciAgent;
  /** What the probes' TLS handshakes showed (the agent's pool connects through it). */
  readonly #tls: TlsObserver;
  readonly #scheduler: ProbeScheduler;
  #traffic: TrafficAdapter;
  #series: SeriesEntry[] = [];
  readonly #seriesByEnv = new Map<string, ProbeSeries[]>();
  /** The SLOs' long count windows (only the live environment's probes count). */
  #slo: SloBook;
  #sloSavedAt = 0;
  readonly #outbound: import('undici').Dispatcher | undefined;
  readonly #reloadConfig: (() => Promise<Config>) | undefined;
  readonly #configSource: string;
  /** Held by every switch (verification through record) and every reload (read through apply). */
  readonly #lock = new Exclusive();
  /** Ends in-flight probes at shutdown (every probe in flight listens to it). */
  readonly #shutdown = abortControllerForMany();
  /** The context of each rule's current incident, for its resolve step. */
  readonly #incidents = new Map<string, ActionContext>();
  /** What each open rule incident's actions did (for its rule's cooldown). */
  readonly #effects = new Map<string, IncidentEffects>();
  /** When a rollback last moved traffic away from each environment (the anti-flap's "recently"). */
  readonly #rolledBackFrom = new Map<string, number>();
  /** When each environment last failed a probe or a fresh verification. */
  readonly #failedAt = new Map<string, number>();
  /** Each environment's last failed fresh verification: its probes count as it found them until they report again. */
  readonly #refuted = new Map<string, { at: number; failing: string[]; unknown: string[] }>();
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
  #startedAt = 0;
  #pendingFirstResults: Set<SeriesEntry>;
  /** Actions a crash interrupted, settled once the first probe round is in (judging needs health). */
  #interrupted: ActionRecord[] = [];
  /** Resumed or reloaded firing rules cannot resolve until every interval series has RESUME_HOLD_ROUNDS results. */
  #resumeHeld = false;
  /** Numbers manual rollbacks; set past the journal's last event id at start (see manualRollback). */
  #manualSequence = 0;

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
    this.redactor = options.redactor ?? new Redactor();
    this.redactor.add(config.secrets);
    this.bus = new EventBus({
      now: this.#now,
      redactor: this.redactor,
      onListenerError: (error, event) => this.#logger.error({ err: error, event: event.type }, 'an event subscriber failed'),
    });
    this.bus.subscribe((event) => logEvent(this.#logger, event));
    this.bus.subscribe((event) => {
      if (event.type === 'flag.changed') this.#persist('flags', this.flags.snapshot());
      const effects = event.type === 'traffic.switched' || event.type === 'action.succeeded' ? this.#effects.get(String(event.data.incident)) : undefined;
      if (effects && event.type === 'traffic.switched') effects.switched = true;
      if (effects && event.type === 'action.succeeded' && !event.data.dryRun) effects.succeeded = true;
    });
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving.
    ({ dispatcher: this.#probePool, tls: this.#tls } = createProbeDispatcher(config, { keepAliveTimeout: 30_000, connections: 8, pipelining: 1 }, this.#now));
    this.#dispatcher = options.probeDispatcher ?? this.#probePool;
    this.#scheduler = new ProbeScheduler({
      onError: (job, error) => this.#logger.error({ err: error, job: job.key }, 'bug: a probe run threw instead of returning a result'),
    });
    this.metrics = new AgentMetrics({ now: this.#now, processMetrics: options.processMetrics ?? true });
    const environments = Object.keys(config.environments);
    this.#slo = sloBookFor(config);
    this.metrics.watchSlo(() => sloStatus(this.#slo, Object.keys(this.#config.environments), this.#now()));
    for (const entry of seriesEntries(config)) this.#addSeries(entry);
    this.#indexSeries();
    // Readiness waits for the first round of the interval probes; a cron probe may not run for hours.
    this.#pendingFirstResults = new Set(this.#series.filter((entry) => entry.interval));

    const deps = (component: string) => this.#deps(component);
    this.#traffic = createPlugin(TRAFFIC_ADAPTERS, config.traffic, deps('traffic'));
    // The alert lifecycle owns the dispatcher: notices go through silences, maintenance,
    // inhibition, escalation and grouping (agent/alerts/alert-lifecycle.ts).
    this.alertLifecycle = new AlertLifecycle({
      config: () => this.#config,
      receivers: config.alerts.receivers.map((block) => createPlugin(ALERT_RECEIVERS, block, deps('alerts'))),
      bus: this.bus,
      metrics: this.metrics,
      now: this.#now,
      logger: logger.child({ component: 'alerts' }),
      activeEnvironment: () => this.#activeEnvironment,
      onDelivery: (delivery) => {
        const { group } = delivery;
        const rules = [...new Set(group.alerts.map((alert) => alert.rule))];
        const incidents = [...new Set(group.alerts.flatMap((alert) => (alert.incident ? [alert.incident] : [])))];
        const data = {
          receiver: delivery.receiver.name,
          receiverType: delivery.receiver.type,
          status: group.status,
          key: group.key,
          attempts: delivery.attempts,
          kind: delivery.kind,
          alerts: group.alerts.length,
          rules,
          incidents,
          escalationLevel: group.escalation?.level ?? null,
        };
        const scope = { env: group.labels.env || delivery.notice.env, rule: rules.length === 1 ? rules[0]! : null };
        const what =
          delivery.kind === 'acknowledge'
            ? 'acknowledgement'
            : `${group.escalation ? `escalation (level ${group.escalation.level}) ` : ''}${group.status} alert`;
        const about = group.alerts.length === 1 ? `"${delivery.notice.summary}"` : `of ${group.alerts.length} alerts (${rules.join(', ')})`;
        this.metrics.countAlert(delivery.receiver.name, group.status, delivery.ok ? 'sent' : 'failed');
        if (delivery.ok) {
          this.bus.publish({
            type: 'alert.sent',
            severity: 'info',
            ...scope,
            message: `${what} ${about} delivered to ${delivery.receiver.type} receiver ${delivery.receiver.name}`,
            data: { ...data, httpStatus: delivery.httpStatus ?? null },
          });
        } else {
          this.bus.publish({
            type: 'alert.failed',
            severity: 'warning',
            ...scope,
            message: `${delivery.receiver.type} receiver ${delivery.receiver.name} did not take the ${what} ${about}: ${delivery.error}`,
            data: { ...data, error: delivery.error ?? 'unknown' },
          });
        }
      },
    });
    this.alerts = this.alertLifecycle.dispatcher;
    this.flags = new FlagStore({
      environments,
      initial: config.flags.initial,
      readOnlyOnEmergency: config.flags.readOnlyOnEmergency,
      now: this.#now,
      publish: (input) => this.bus.publish(input),
      onChange: (env, flag, value) => this.metrics.setFlag(flag, env, value),
      persist: (state, audit) => this.#journal?.saveFlags(state, audit, this.flags.auditLimit),
    });
    this.rules = new RuleEvaluator(
      config.rules,
      () => ({
        activeEnvironment: this.#activeEnvironment,
        environments: Object.keys(this.#config.environments),
        now: this.#now(),
        series: (env) => this.#seriesByEnv.get(env) ?? [],
        watching: this.promotions?.current?.watchingEnv,
        slo: (name) => this.#slo.get(name),
      }),
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
      isOpen: (incident) => [...this.#incidents.values()].some((context) => context.incident === incident),
      onOwedChange: () => this.#persistIncidents(),
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
    this.#manualSequence = this.bus.lastId;
    this.#journal = new Journal({ store: this.#store, bus: this.bus, logger: this.#rootLogger.child({ component: 'journal' }), now: this.#now });
    this.#resume(this.#store);
    // Silences, windows, incidents and their escalation, settled against the incidents resumed above.
    this.alertLifecycle.start(
      journaledLifecycleStore(this.#store, this.#journal),
      [...this.#incidents.values()].map((context) => ({
        incident: context.incident,
        rule: context.rule?.name ?? context.actor,
        env: context.env,
        severity: context.severity === 'critical' ? 'critical' : 'warning',
        startedAt: context.startedAt,
      })),
    );
    this.#interrupted = this.#store.unfinishedActions();
    this.#retention = new JournalRetention({
      store: this.#store,
      ...this.config.journal.retention,
      now: this.#now,
      logger: this.#rootLogger.child({ component: 'journal' }),
    });
    this.#retention.start();
    this.metrics.setActiveEnvironment(this.#activeEnvironment, Object.keys(this.config.environments));
    const api = () => this.config.api;
    const tokens = () => ({ admin: api().adminToken, rollback: api().rollbackToken, stream: api().streamToken });
    this.#server = await startHttpServer({
      listen: this.config.listen,
      routes: [
        ...coreRoutes(this),
        ...rollbackRoutes(this),
        ...reloadRoutes(this),
        ...flagRoutes(this.flags, { activeEnvironment: () => this.#activeEnvironment }),
        ...promoteRoutes(this.promotions),
        ...statusPageRoutes(this),
        ...alertRoutes(this.alertLifecycle, { environments: () => Object.keys(this.config.environments) }),
      ],
      tokens,
      allowedHosts: () => api().allowedHosts,
      turns: this.#turns,
      redactor: this.redactor,
      logger: this.#rootLogger.child({ component: 'http' }),
    });
    const journal = this.#journal;
    this.#pages = new JournalPages({ read: (since, limit) => journal.eventsJson({ since, limit }), cacheable: () => !journal.failing });
    const stream = new EventStream({
      subscribe: (listener) => journal.subscribe(listener),
      pages: this.#pages,
      turns: this.#turns,
      policy: () => ({
        tokens: tokens(),
        maxClients: api().stream.maxClients,
        maxClientsPerAddress: api().stream.maxClientsPerAddress,
        allowedOrigins: api().allowedOrigins,
      }),
      logger: this.#rootLogger.child({ component: 'stream' }),
    });
    this.#stream = stream;
    this.#server.onUpgrade((req, socket, head, url) => stream.upgrade(req, socket, head, url));
    this.#scheduler.start();
    if (this.#pendingFirstResults.size === 0) this.#reconcileInterrupted();
    const { adminToken, rollbackToken } = this.config.api;
    const controls = adminToken !== undefined ? 'all' : rollbackToken !== undefined ? 'rollback only' : 'none';
    const disabled =
      controls === 'none'
        ? '; CONTROLS DISABLED: no API token is set, so nobody can roll back or change flags through the API'
        : controls === 'rollback only'
          ? '; admin controls disabled: no ADMIN_TOKEN'
          : '';
    this.bus.publish({
      type: 'agent.started',
      severity: controls === 'none' ? 'warning' : 'info',
      message: `greenlight ${VERSION} watching ${Object.keys(this.config.environments).join(' and ')} (${this.#activeEnvironment} live) with ${this.config.probes.length} probes and ${this.rules.size} rules on http://${formatHost(this.#server.address)}${this.#dryRun ? ' (dry run: actions are decided, not carried out)' : ''}${disabled}`,
      data: {
        version: VERSION,
        pid: process.pid,
        activeEnvironment: this.#activeEnvironment,
        probes: this.config.probes.length,
        series: this.#series.length,
        dryRun: this.#dryRun,
        controls,
      },
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
    for (const entry of this.#series) entry.abort.abort();
    await this.#scheduler.close();
    await Promise.allSettled([...this.#evaluations]);
    await this.promotions.close();
    await this.actions.close();
    await this.alertLifecycle.close();
    await this.#traffic.close?.();
    this.#turns.close();
    this.#stream?.close();
    await this.#server?.close();
    await this.#probePool.destroy();
    this.#tls.close();
    this.#saveSlo(true);
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
      const left = this.#rolledBackFrom.get(name);
      environments[name] = {
        url: redactUrl(env.url),
        active: name === this.#activeEnvironment,
        up: known.length === 0 ? undefined : known.every((series) => series.up),
        health: this.#health(name),
        rolledBackFromAt: left === undefined ? null : new Date(left).toISOString(),
      };
    }
    return {
      version: VERSION,
      startedAt: new Date(this.#startedAt).toISOString(),
      ready: this.ready,
      dryRun: this.#dryRun,
      activeEnvironment: this.#activeEnvironment,
      traffic: { adapter: this.#traffic.type, switching: this.#switchingNow(), lock: this.#lock.holder ?? null, waiting: this.#lock.waiting },
      environments,
      rules: this.rules.statuses(),
      flags: this.flags.all(),
      notices: this.config.notices,
      slo: sloStatus(this.#slo, Object.keys(this.config.environments), now),
      series: withSeries ? this.#series.map((entry) => entry.series.snapshot(now)) : [],
      owed: this.actions.owed().map((owed) => ({ ...owed, since: new Date(owed.since).toISOString() })),
    };
  }

  /** Every series in its compact form with its latest `samples` results (the status page's GET /api/v1/overview). */
  summaries(samples: number): SeriesSummary[] {
    const now = this.#now();
    return this.#series.map((entry) => entry.series.summary(now, samples));
  }

  /**
   * An operator's emergency rollback: judged like a rule's (never onto a failing or unverified
   * environment), without the anti-flap wait; never owed. Its incident, `manual-<ISO time>-<n>`,
   * is unique even for two in one millisecond: n counts up from the journal's last event id at
   * start, which only grows across restarts (every rollback publishes events), so not even a
   * clock stepped back can repeat one.
   */
  manualRollback(reason: string, actor: string) {
    const now = this.#now();
    return this.actions.run(MANUAL_ROLLBACK, {
      rule: null,
      incident: `manual-${new Date(now).toISOString()}-${++this.#manualSequence}`,
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
    // The whole reload holds the switch lock: a switch asked meanwhile waits for it (and a reload
    // asked during a switch waits for the switch), so no switch ever runs on an adapter, a config
    // or probe targets that a reload is replacing.
    if (this.#lock.holder) this.#logger.info({ holder: this.#lock.holder }, `reload (${trigger}) waits for ${this.#lock.holder} to finish`);
    return this.#lock.run(`reload (${trigger})`, () => this.#reload(trigger));
  }

  async #reload(trigger: string): Promise<ReloadResult> {
    const source = this.#configSource;
    const refuse = (error: string, issues: string[] = []): ReloadResult => {
      this.bus.publish({
        type: 'config.reload_failed',
        severity: 'warning',
        message: `reload (${trigger}) refused, the running config stays: ${error}`,
        data: { source, trigger, error, issues },
      });
      return { ok: false, error, issues };
    };
    if (!this.#reloadConfig) return refuse('this agent was started without a config file to reload');
    let next: Config;
    try {
      next = await this.#reloadConfig();
      // Before anything of the new config runs: its secrets are hidden from the first answer on.
      this.redactor.add(next.secrets);
      await new RuleEvaluator(next.rules, () => ({
        activeEnvironment: this.#activeEnvironment,
        environments: Object.keys(next.environments),
        now: this.#now(),
        series: () => [],
      })).selfTest();
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues.map((issue) => formatConfigIssue(issue)) : [];
      return refuse(
        issues.length > 0 ? `${source} is invalid (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'})` : (error as Error).message,
        issues,
      );
    }
    const previous = this.#config;
    const environments = Object.keys(previous.environments);
    if (JSON.stringify(Object.keys(next.environments).sort()) !== JSON.stringify([...environments].sort())) {
      return refuse(
        `the environments changed (${environments.join(', ')} → ${Object.keys(next.environments).join(', ')}): environment names are the agent's identity (live environment, flags, incidents) and change only with a restart`,
      );
    }

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
      // Its probe in flight says nothing the new config asks about: end it rather than wait for its timeout.
      entry.abort.abort();
      await this.#scheduler.remove(entry.key);
      this.metrics.removeSeries(entry.series);
      this.#pendingFirstResults.delete(entry);
      this.#series = this.#series.filter((other) => other !== entry);
    }
    this.#config = next;
    if (JSON.stringify(previous.environments) !== JSON.stringify(next.environments)) {
      // Validated a moment ago; should a CA file vanish since, the previous trust stays.
      try {
        this.#tls.setTrust(readTlsTrust(next));
      } catch (error) {
        this.#logger.error(
          { err: error },
          `the environments' CA files could not be read again after validation; probes keep the previous trust: ${(error as Error).message}`,
        );
      }
    }
    for (const spec of wanted.values()) {
      if (!probes.changed.includes(spec.key)) probes.added.push(spec.key);
      this.#addSeries(spec);
    }
    this.#indexSeries();

    // SLOs: counts carried over where the SLO and window are unchanged.
    const slo = sloBookFor(next);
    slo.restore(this.#slo.save());
    this.#slo = slo;

    // Rules: state carried over by name; rules gone from the config end their incidents.
    const rules = await this.rules.replaceRules(next.rules);
    this.#resumeHeld = true;
    for (const name of rules.added) this.metrics.setRuleState(name, 'inactive');
    for (const { config, state } of rules.removed) {
      // A removed rule that was firing ends its incident the usual way: rule.resolved, resolved alerts.
      if (state.state === 'firing') {
        const env = this.#incidents.get(config.name)?.env ?? this.#activeEnvironment;
        const firedForMs = this.#now() - (state.firingSince ?? this.#now());
        this.#decide({
          rule: config,
          transition: { to: 'resolved', incident: state.incident, firedForMs },
          figures: { env, facts: [], samples: 0 },
          message: 'the rule was removed by a reload',
        });
      }
      this.metrics.removeRule(config.name);
    }
    for (const [name, context] of this.#incidents) {
      const rule = next.rules.find((r) => r.name === name);
      if (rule) this.#incidents.set(name, { ...context, rule });
    }
    this.#persistIncidents();

    // Plugins: rebuilt when their block changed; unchanged actions keep their instance (and what it holds, such as a hold's alerts).
    const components: string[] = [];
    const changed = (key: keyof Config) => JSON.stringify(previous[key]) !== JSON.stringify(next[key]);
    if (changed('traffic')) {
      const old = this.#traffic;
      this.#traffic = createPlugin(TRAFFIC_ADAPTERS, next.traffic, this.#deps('traffic'));
      await old.close?.();
      components.push('traffic');
    }
    if (changed('alerts')) {
      this.alertLifecycle.reconfigure(next.alerts.receivers.map((block) => createPlugin(ALERT_RECEIVERS, block, this.#deps('alerts'))));
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

    const result: ReloadResult = {
      ok: true,
      probes,
      rules: { added: rules.added, removed: rules.removed.map((r) => r.config.name), changed: rules.changed },
      components,
      needsRestart,
    };
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
      target: compileProbeTarget(this.#config, spec.probe, spec.env, this.redactor),
      downSince: undefined,
      upSince: undefined,
      inFlightSince: undefined,
      abort: abortControllerForMany(),
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
    return { logger: this.#rootLogger.child({ component }), dispatcher: this.#outbound ?? this.#dispatcher, now: this.#now, sleep, redactor: this.redactor };
  }

  /** The configured actions plus the manual rollback; `keep` supplies instances to reuse by name. */
  #createActions(config: Config, keep: ReadonlyMap<string, Action>): Map<string, Action> {
    const actions = new Map<string, Action>();
    const actionDeps = (name: string) => ({ ...this.#deps('actions'), dryRun: this.#dryRun, controller: this.controller, name });
    for (const [name, block] of Object.entries(config.actions)) actions.set(name, keep.get(name) ?? createPlugin(ACTIONS, block, actionDeps(name)));
    actions.set(
      MANUAL_ROLLBACK,
      this.actions?.actions.get(MANUAL_ROLLBACK) ?? rollbackAction.create({ type: 'rollback', cooldown: 0, settle: 0 }, actionDeps(MANUAL_ROLLBACK)),
    );
    return actions;
  }

  /** One probe; resolves to what it wants confirmed by a quick re-probe (the scheduler decides whether one runs). */
  async #probe(entry: SeriesEntry, confirmation?: Confirmation): Promise<ConfirmationKind | undefined> {
    entry.inFlightSince = this.#now();
    const result = await runProbe(entry.target, this.#dispatcher, this.#now, entry.abort.signal, this.#tls);
    entry.inFlightSince = undefined;
    if (entry.abort.signal.aborted) return undefined; // a probe cut short by shutdown or a reload says nothing about the target
    if (confirmation) result.confirmation = confirmation;
    const wasUp = entry.series.up;
    this.#record(entry, result);
    return nextConfirmation(result, wasUp, entry.series.env === this.#activeEnvironment);
  }

  #record(entry: SeriesEntry, result: ProbeResult): void {
    const { series } = entry;
    const change = series.record(result);
    this.#slo.record(result, series.env === this.#activeEnvironment);
    this.#saveSlo(false);
    if (!result.ok && entry.interval) this.#failedAt.set(series.env, this.#now());
    // A passing streak from the first result on is no recovery: it counts as healthy since ever.
    if (!result.ok) entry.upSince = undefined;
    else entry.upSince ??= change?.wasUp === undefined && change?.up === true ? Number.NEGATIVE_INFINITY : result.startedAt;
    this.metrics.recordResult(series, result);
    if (this.#pendingFirstResults.delete(entry) && this.#pendingFirstResults.size === 0) this.#reconcileInterrupted();
    if (change) this.#publishStateChange(entry, result, change.up, change.wasUp);
    if (this.#resumeHeld && this.#series.every((other) => !other.interval || other.series.results >= RESUME_HOLD_ROUNDS)) {
      this.#resumeHeld = false;
      this.rules.releaseResumeHolds();
    }
    // After the pass this sample joins: an owed rollback may now go ahead (its target recovered, say).
    if (this.rules.size > 0) this.#track(this.rules.onSample(series.probe, series.env).then(() => this.actions.retryOwed()));
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
        data: {
          reason: result.reason!,
          detail: describeFailure(result),
          status: result.status ?? null,
          durationMs: round(result.durationMs),
          consecutiveFailures: series.consecutiveFailures,
          active,
        },
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
        this.bus.publish({
          type: 'rule.firing',
          severity: rule.severity,
          ...scope,
          message: `${rule.name} firing: ${message}`,
          data: { ...common, incident, heldForMs: transition.heldForMs, actions: rule.actions },
        });
        const context: ActionContext = {
          rule,
          incident,
          env: figures.env,
          severity: rule.severity,
          message,
          figures,
          actor: `rule:${rule.name}`,
          startedAt: this.#now(),
        };
        this.#incidents.set(rule.name, context);
        this.#effects.set(incident, { switched: false, succeeded: false });
        this.#persistIncidents();
        this.actions.fire(rule.actions, context);
        break;
      }
      case 'resolved': {
        const incident = `${rule.name}#${transition.incident}`;
        this.metrics.setRuleState(rule.name, 'inactive');
        this.bus.publish({
          type: 'rule.resolved',
          severity: 'info',
          ...scope,
          message: `${rule.name} resolved: ${message}`,
          data: { ...common, incident, firedForMs: transition.firedForMs },
        });
        const context = this.#incidents.get(rule.name);
        this.#incidents.delete(rule.name);
        this.#persistIncidents();
        if (context) this.actions.resolve(rule.actions, { ...context, figures });
        this.#coolDown(rule, incident, context?.env ?? figures.env);
        break;
      }
    }
  }

  /**
   * A rule's cooldown starts only from an incident that acted: one that switched traffic, or,
   * for a rule without a rollback, one whose actions did something (not held, skipped or a dry
   * run). It holds the rule back on that environment only, and any switch ends it.
   */
  #coolDown(rule: RuleDecision['rule'], incident: string, env: string): void {
    const effects = this.#effects.get(incident);
    this.#effects.delete(incident);
    if (rule.cooldown === 0 || !effects) return;
    const rollsBack = rule.actions.some((name) => this.config.actions[name]?.type === 'rollback');
    const acted = rollsBack ? effects.switched : effects.succeeded;
    if (acted) this.rules.startCooldown(rule.name, env);
    else
      this.#logger.info(
        { rule: rule.name, incident },
        `${incident} resolved without ${rollsBack ? 'a switch' : 'any action doing something'}: no cooldown for ${rule.name}`,
      );
  }

  #controller(): Controller {
    return {
      activeEnvironment: () => this.#activeEnvironment,
      environments: () => Object.keys(this.config.environments),
      health: (env) => this.#health(env),
      ruleHoldsOn: async (rule, env) => (await this.rules.holdsOn(rule, env))?.holds,
      switchTraffic: (plan, context, signal) => this.#switchTraffic(plan, context, signal),
      switching: () => this.#switchingNow(),
      rolledBackFromAt: (env) => this.#rolledBackFrom.get(env),
      servingEnvironment: async (signal) => this.#traffic.current?.(signal),
      adoptSwitch: (to, context, detail) => this.#recordSwitch(this.#activeEnvironment, to, context, { detail }, 'rollback'),
      alert: (notice) => this.alerts.notify(notice),
      applyFlagPreset: (preset, envs, actor, reason) => ({ changed: this.flags.applyPreset(preset, envs, { actor, reason }).length }),
      stateUrl: () => `${this.config.alerts.externalUrl ?? (this.#server ? `http://${formatHost(this.#server.address)}` : '')}/api/v1/state` || undefined,
    };
  }

  #switchingNow(): boolean {
    return this.#lock.holder?.startsWith('switch') === true;
  }

  /** An environment's interval probes as last seen: a probe in flight past the verification deadline is unknown. */
  #health(env: string): EnvironmentHealth {
    const now = this.#now();
    const deadline = this.config.switching.verifyTimeout;
    const failing: string[] = [];
    const unknown: string[] = [];
    let asOf: number | null = Number.POSITIVE_INFINITY;
    let healthySince = Number.NEGATIVE_INFINITY;
    const refuted = this.#refuted.get(env);
    for (const entry of this.#series) {
      if (!entry.interval || entry.series.env !== env) continue;
      const { probe } = entry.series;
      // A failed fresh verification is newer than what the schedule last saw, until the schedule reports again.
      const stale = refuted !== undefined && refuted.at > (entry.series.last?.startedAt ?? Number.NEGATIVE_INFINITY);
      if (entry.series.up === false || (stale && refuted.failing.includes(probe))) failing.push(probe);
      else if (
        entry.series.up === undefined ||
        (stale && refuted.unknown.includes(probe)) ||
        (entry.inFlightSince !== undefined && now - entry.inFlightSince > deadline)
      )
        unknown.push(probe);
      asOf = entry.series.last === undefined || asOf === null ? null : Math.min(asOf, entry.series.last.startedAt);
      healthySince = Math.max(healthySince, entry.upSince ?? Number.POSITIVE_INFINITY);
    }
    const healthy = failing.length === 0 && unknown.length === 0 && healthySince !== Number.POSITIVE_INFINITY;
    // A failed fresh verification counts as a failure too: passing time starts after it.
    const passingSince = Math.max(healthySince, this.#failedAt.get(env) ?? Number.NEGATIVE_INFINITY, this.#startedAt);
    return {
      healthy,
      failing,
      unknown,
      passingForMs: healthy ? Math.max(0, now - passingSince) : 0,
      healthySince: healthy && Number.isFinite(healthySince) ? healthySince : null,
      asOf: asOf === Number.POSITIVE_INFINITY ? null : asOf,
    };
  }

  /**
   * The target's interval probes, run now through the same runProbe path with the verification
   * deadline; a probe with no complete answer by then is unknown, and so is one whose scheduled run
   * is overdue. Nothing is recorded in the series: their windows sample the schedule.
   */
  async #verify(env: string, signal: AbortSignal): Promise<Verification> {
    const begin = performance.now();
    const deadline = this.config.switching.verifyTimeout;
    const entries = this.#series.filter((entry) => entry.interval && entry.series.env === env);
    // The caller's signal (an action's, the promotion's) ends it at shutdown; a revert's never does.
    const results = await Promise.all(
      entries.map((entry) =>
        runProbe({ ...entry.target, timeoutMs: Math.min(entry.target.timeoutMs, deadline) }, this.#dispatcher, this.#now, signal, this.#tls),
      ),
    );
    const checks: VerificationCheck[] = results.map((result) => ({
      probe: result.probe,
      result: result.ok ? 'ok' : result.reason === 'timeout' ? 'unknown' : 'failed',
      detail: result.ok ? 'ok' : describeFailure(result),
      durationMs: round(result.durationMs),
    }));
    const now = this.#now();
    for (const entry of entries) {
      const overdue = entry.inFlightSince === undefined ? 0 : now - entry.inFlightSince;
      if (overdue > deadline)
        checks.push({
          probe: entry.series.probe,
          result: 'unknown',
          detail: `its scheduled probe has not answered for ${(overdue / 1_000).toFixed(1)}s (over the ${deadline}ms verification deadline)`,
          durationMs: round(overdue),
        });
    }
    const bad = checks.filter((check) => check.result !== 'ok');
    const ok = entries.length > 0 && bad.length === 0;
    if (!ok) {
      this.#failedAt.set(env, now);
      // Its passing streak ends here too: healthy again only from the next passing scheduled result.
      for (const entry of entries) if (bad.some((check) => check.probe === entry.series.probe)) entry.upSince = undefined;
      this.#refuted.set(env, {
        at: now,
        failing: bad.filter((check) => check.result === 'failed').map((check) => check.probe),
        unknown: bad.filter((check) => check.result === 'unknown').map((check) => check.probe),
      });
    }
    const summary =
      entries.length === 0
        ? `${env} has no interval probe to verify it with`
        : ok
          ? `${checks.length} probes pass on ${env} (slowest ${Math.round(Math.max(...checks.map((check) => check.durationMs)))}ms)`
          : bad.map((check) => `${check.probe} ${check.result === 'unknown' ? 'unknown' : 'failed'}: ${check.detail}`).join('; ');
    return { env, ok, durationMs: round(performance.now() - begin), checks, summary };
  }

  /**
   * Every switch, whoever asks: under the lock (after any reload or other switch in progress),
   * check that `plan.from` is still live, verify `plan.to` now, switch through the adapter,
   * record. What did not happen is a value; only a bug throws.
   */
  #switchTraffic(plan: SwitchPlan, context: ActionContext, signal: AbortSignal): Promise<SwitchResult> {
    const holder = `switch ${plan.from} → ${plan.to} (${context.incident})`;
    if (this.#lock.holder) this.#logger.info({ holder: this.#lock.holder, incident: context.incident }, `${holder} waits for ${this.#lock.holder} to finish`);
    return this.#lock.run(holder, async (): Promise<SwitchResult> => {
      const from = this.#activeEnvironment;
      if (from !== plan.from)
        return { switched: false, why: 'not-live', reason: `${plan.from} is no longer live (${from} is): another switch came first, nothing to do` };
      if (plan.to === from) return { switched: false, why: 'not-live', reason: `${plan.to} is already live` };
      const verification = await this.#verify(plan.to, signal);
      if (!verification.ok) {
        this.#logger.warn(
          { incident: context.incident, to: plan.to, checks: verification.checks },
          `switch ${from} → ${plan.to} refused: ${plan.to} failed its fresh verification: ${verification.summary}`,
        );
        return { switched: false, why: 'unverified', reason: `${plan.to} failed its fresh verification (${verification.summary})`, verification };
      }
      let outcome: SwitchOutcome;
      try {
        outcome = await this.#traffic.switchTo(
          { from, to: plan.to, reason: context.message, rule: context.rule?.name ?? null, incident: context.incident },
          signal,
        );
      } catch (error) {
        return { switched: false, why: 'adapter', reason: (error as Error).message ?? String(error), verification };
      }
      this.#recordSwitch(from, plan.to, context, outcome, plan.kind, verification);
      return { switched: true, from, to: plan.to, detail: outcome.detail, data: outcome.data ?? {}, verification };
    });
  }

  #recordSwitch(from: string, to: string, context: ActionContext, outcome: SwitchOutcome, kind: SwitchPlan['kind'], verification?: Verification): void {
    this.#activeEnvironment = to;
    if (kind === 'rollback') this.#rolledBackFrom.set(from, this.#now());
    this.#persist('activeEnvironment', to);
    this.metrics.setActiveEnvironment(to, Object.keys(this.config.environments));
    this.bus.publish({
      type: 'traffic.switched',
      severity: 'warning',
      env: to,
      rule: context.rule?.name ?? null,
      message: `live traffic switched ${from} → ${to} (${this.#traffic.type}): ${context.message}`,
      data: {
        from,
        to,
        adapter: this.#traffic.type,
        reason: context.message,
        incident: context.incident,
        detail: outcome.detail,
        dryRun: false,
        kind,
        verification: verification ? { durationMs: verification.durationMs, probes: verification.checks.length } : null,
      },
    });
    // The live environment is a new subject: no cooldown left by an incident elsewhere holds a rule back,
    // and every rule is judged again against it.
    this.rules.clearCooldowns();
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
      if (live !== this.#activeEnvironment)
        this.#logger.warn({ live }, `resuming with ${live} live, as stored in ${store.path} (activeEnvironment in the config only applies to a first start)`);
      this.#activeEnvironment = live;
    }
    // The audit trail has its own table; a database from before keeps it inside the flags state.
    const flags = store.get<FlagState & { audit?: FlagAuditEntry[] }>('flags');
    let audit = store.flagAudit(this.flags.auditLimit);
    if (audit.length === 0 && flags?.audit?.length) {
      audit = flags.audit.slice(-this.flags.auditLimit);
      store.saveFlags({ values: flags.values, versions: flags.versions }, audit, this.flags.auditLimit);
    }
    if (flags) this.flags.restore({ values: flags.values, versions: flags.versions, audit });
    this.#slo.restore(store.get('slo'));
    this.#sloSavedAt = this.#now();
    for (const [rule, stored] of Object.entries(store.get<Record<string, StoredIncident>>('incidents') ?? {})) {
      const number = Number(stored.incident.split('#').pop());
      const config = this.config.rules.find((r) => r.name === rule);
      if (!config || !this.rules.resumeFiring(rule, number, stored.startedAt, stored.env)) continue;
      this.#resumeHeld = true;
      this.metrics.setRuleState(rule, 'firing');
      const { owed, ...kept } = stored;
      const context: ActionContext = { ...kept, rule: config, figures: null };
      this.#incidents.set(rule, context);
      this.#effects.set(stored.incident, { switched: false, succeeded: false });
      // What it was still owed stays owed: retried once it would go ahead, as before the restart.
      for (const debt of owed ?? []) if (config.actions.includes(debt.action)) this.actions.owe(debt.action, context, debt.reason, debt.since);
      this.#logger.warn(
        { rule, incident: stored.incident, owed: owed?.map((debt) => debt.action) },
        `${stored.incident} was firing before the restart: it goes on firing without repeating its actions${owed?.length ? `; still owed: ${owed.map((debt) => debt.action).join(', ')}` : ''}`,
      );
    }
    this.#persistIncidents();
  }

  #persistIncidents(): void {
    const incidents: Record<string, StoredIncident> = {};
    const owed = this.actions?.owed() ?? [];
    for (const [rule, context] of this.#incidents) {
      const debts = owed.filter((debt) => debt.incident === context.incident).map(({ action, since, reason }) => ({ action, since, reason }));
      incidents[rule] = {
        incident: context.incident,
        env: context.env,
        severity: context.severity,
        message: context.message,
        actor: context.actor,
        startedAt: context.startedAt,
        ...(debts.length ? { owed: debts } : {}),
      };
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

  /** The SLO counts to the store, at most every SLO_SAVE_MS unless `force` (at stop). */
  #saveSlo(force: boolean): void {
    const now = this.#now();
    if (this.#slo.size === 0 || (!force && now - this.#sloSavedAt < SLO_SAVE_MS)) return;
    this.#sloSavedAt = now;
    this.#persist('slo', this.#slo.save());
  }

  #skipped(entry: SeriesEntry): void {
    entry.series.recordSkipped();
    this.metrics.recordSkipped(entry.series);
    this.#logger.debug({ probe: entry.series.probe, env: entry.series.env }, 'probe tick skipped: the previous probe is still in flight');
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.#logger.error({ err: error }, 'bug: rule evaluation failed'))
      .finally(() => this.#evaluations.delete(tracked));
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
      const schedule: ScheduledJob['schedule'] =
        probe.cron !== undefined
          ? { cron: probe.cron, timezone: probe.timezone ?? config.timezone }
          : { every: probe.every ?? config.probeDefaults.every, jitter: config.probeDefaults.jitter };
      const fingerprint = JSON.stringify({
        probe,
        environment: config.environments[env],
        defaults: config.probeDefaults,
        windows: config.windows,
        lines: [...lines],
        schedule,
      });
      specs.push({ key: `${probe.name}@${env}`, fingerprint, interval: probe.cron === undefined, probe, env, lines, schedule });
    }
  }
  return specs;
}

/** The configured SLOs, each with its period and the windows the rules read. */
function sloBookFor(config: Config): SloBook {
  return new SloBook(sloDefinitions(config), Object.keys(config.environments), sloWindows(config));
}

/** An AbortController whose signal may have many listeners (one per probe in flight) without Node's leak warning. */
function abortControllerForMany(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

function logEvent(logger: Logger, event: GreenlightEvent): void {
  const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
  logger[level](
    { event: event.type, id: event.id, env: event.env ?? undefined, probe: event.probe ?? undefined, rule: event.rule ?? undefined },
    event.message,
  );
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

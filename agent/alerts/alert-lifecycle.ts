/**
 * The alert lifecycle (README, "Alert lifecycle"): what happens to an alert between a rule firing
 * and a person being told. It owns the dispatcher (grouping, repeats, delivery) and decides for it:
 *
 *   notice → labels → muted? (an active silence; a maintenance window on its idle environment;
 *   an inhibition by another firing alert) → which receivers (the escalation level its incident
 *   reached) → grouped notification → receivers
 *
 * and it keeps the incidents: opened by `rule.firing`, escalated level by level while nobody
 * acknowledges, acknowledged through the API, resolved by `rule.resolved`.
 *
 * Invariants:
 * - Silences, maintenance and inhibition mute notifications only. Nothing here is ever asked
 *   whether an action may run: rollbacks and flag presets never look at it.
 * - A resolved notice goes to every receiver that was told the alert fires, muted or not.
 * - Silences, windows, incidents (with the level reached) and the alerts of open incidents are
 *   persisted as they change, so a restart neither repeats nor skips an escalation level.
 * - Every change a person makes or the clock brings is an event: silence.created/expired,
 *   maintenance.started/ended, incident.acknowledged/escalated, alert.muted.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { EventBus, GreenlightEvent, MaintenanceEventData, Severity } from '../events/events.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { AlertDispatcher, type ActiveAlert, type AlertDelivery, type MuteReason, type NotificationPolicy } from './alert-dispatcher.js';
import { alertLabels, ruleProbe } from './alert-labels.js';
import type { AlertNotice, AlertReceiver } from './alert-receiver.js';
import { EscalationBook, type IncidentRecord } from './escalation.js';
import { Inhibitor } from './inhibitor.js';
import { memoryLifecycleStore, type LifecycleStore } from './lifecycle-store.js';
import { MaintenanceBook, type MaintenanceView } from './maintenance.js';
import { describeMatchers, SilenceBook, silenceState, type Silence, type SilenceInput, type SilenceView } from './silences.js';

/** The longest the lifecycle's timer sleeps: pruning runs at least this often (and a timer cannot wait 25 days). */
const TICK_MAX_MS = 3_600_000;

/** An incident the agent has open (firing), as the lifecycle needs it at start. */
export interface OpenIncident {
  incident: string;
  rule: string;
  env: string;
  severity: 'warning' | 'critical';
  startedAt: number;
}

export interface AlertLifecycleOptions {
  /** The config in force (a reload replaces it): the alerts block, the rules, the environments. */
  config: () => Config;
  receivers: readonly AlertReceiver[];
  bus: EventBus;
  metrics: AgentMetrics;
  logger: Logger;
  now: () => number;
  /** The live environment now: a maintenance window mutes nothing while its environment is live. */
  activeEnvironment: () => string;
  /**
   * When a rollback last moved traffic away from `env`, as the agent keeps it across restarts: with
   * the switches the lifecycle hears itself, when `env` last stopped being live (a restart between a
   * rollback and its page's first notification must not let a window mute that page).
   */
  rolledBackFromAt?: (env: string) => number | undefined;
  onDelivery: (delivery: AlertDelivery) => void;
  /**
   * Whether this agent notifies and escalates (a cluster's leader; an agent alone: always). One
   * that does not is dormant: it opens no incident, escalates nothing, publishes nothing and sends
   * nothing; a takeover starts it again from the shared records (`start`). Default: always.
   */
  acting?: () => boolean;
}

/** What the status page and GET endpoints show of the lifecycle. */
export interface LifecycleOverview {
  incidents: IncidentRecord[];
  silences: SilenceView[];
  maintenance: { open: (MaintenanceView & { muting: boolean })[]; upcoming: MaintenanceView[] };
  /** Firing alerts whose notifications are muted now, and why. */
  muted: { key: string; rule: string; env: string | null; incident: string | null; reason: MuteReason }[];
}

export class AlertLifecycle {
  readonly dispatcher: AlertDispatcher;
  readonly silences: SilenceBook;
  readonly maintenance: MaintenanceBook;
  readonly incidents: EscalationBook;
  readonly #inhibitor: Inhibitor;
  readonly #bus: EventBus;
  readonly #metrics: AgentMetrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #activeEnvironment: () => string;
  readonly #rolledBackFromAt: (env: string) => number | undefined;
  readonly #config: () => Config;
  readonly #acting: () => boolean;
  /** Memory until start() hands over the real store. */
  #store: LifecycleStore = memoryLifecycleStore();
  #timer: NodeJS.Timeout | undefined;
  #lastTick: number;
  /** Windows open at the last look, to tell which opened and closed since. */
  #openWindows = new Map<string, MaintenanceView>();
  /**
   * When each environment last stopped being live (a switch away from it). An alert that started
   * before then fired about the live environment, and no maintenance window mutes it: not the
   * page of the incident that rolled the environment back, once traffic has left it.
   */
  readonly #leftLiveAt = new Map<string, number>();
  /** Why each muted alert is muted (key → reason), for the overview. */
  readonly #muted = new Map<string, MuteReason>();
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(options: AlertLifecycleOptions) {
    this.#config = options.config;
    const config = options.config();
    this.#bus = options.bus;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#activeEnvironment = options.activeEnvironment;
    this.#rolledBackFromAt = options.rolledBackFromAt ?? (() => undefined);
    this.#acting = options.acting ?? (() => true);
    this.#lastTick = options.now();
    this.#inhibitor = new Inhibitor(config.alerts.inhibit);
    this.silences = new SilenceBook({
      now: this.#now,
      save: (silence) => this.#store.silences.save(silence.id, silence),
      remove: (id) => this.#store.silences.remove(id),
    });
    this.maintenance = new MaintenanceBook({
      now: this.#now,
      save: (record) => this.#store.maintenance.save(record.id, record),
      remove: (id) => this.#store.maintenance.remove(id),
    });
    this.maintenance.configure(config.alerts.maintenance, config.timezone);
    this.incidents = new EscalationBook({
      now: this.#now,
      policies: config.alerts.escalation,
      save: (record) => this.#store.incidents.save(record.id, record),
      remove: (id) => this.#store.incidents.remove(id),
    });
    this.dispatcher = new AlertDispatcher({
      receivers: options.receivers,
      repeatIntervalMs: config.alerts.repeatInterval,
      grouping: groupingOf(config),
      now: this.#now,
      logger: options.logger,
      onDelivery: options.onDelivery,
      acting: this.#acting,
      policy: this.#policy(),
      persistence: { save: (alert) => this.#store.alerts.save(alert.notice.key, alert), remove: (key) => this.#store.alerts.remove(key) },
    });
    this.#unsubscribe = this.#bus.subscribe((event) => this.#observe(event));
    this.#warnUnknownReceivers(options.receivers);
  }

  /**
   * Take the stored state back and settle it against the incidents the agent resumed: one it no
   * longer has (its rule was removed while it was down) is resolved, with its resolved notices.
   * Called again (a cluster's new leader), it replaces everything held with what `store` has.
   */
  start(store: LifecycleStore, open: readonly OpenIncident[]): void {
    this.#store = store;
    this.#openWindows = new Map();
    this.#muted.clear();
    this.silences.restore(store.silences.all());
    this.maintenance.restore(store.maintenance.all());
    this.incidents.restore(store.incidents.all());
    this.silences.prune();
    this.maintenance.prune();
    const openIds = this.#openIncidents(open);
    this.dispatcher.restore(store.alerts.all());
    this.#resolveClosed(openIds);
    this.#lastTick = this.#now();
    for (const window of this.maintenance.open()) {
      this.#openWindows.set(window.id, window);
      this.#publishWindow('maintenance.started', window, { resumed: true });
    }
    this.#tick();
  }

  /**
   * This agent acts again after a spell in which it could not, in the same term (a cluster
   * leader's lease renewal came back late, or its database answers again): the rules went on
   * meanwhile but nothing here followed them, and every notification that came due was held
   * back (#flush). Settle against the incidents open now, as a start does, and send what is owed.
   */
  wake(open: readonly OpenIncident[]): void {
    if (this.#closed || !this.#acting()) return;
    this.#resolveClosed(this.#openIncidents(open));
    this.#changed();
  }

  /** Open an incident for each of `open` (one already open stays as it is), resolve every other; their ids. */
  #openIncidents(open: readonly OpenIncident[]): Set<string> {
    const openIds = new Set(open.map((incident) => incident.incident));
    for (const incident of open)
      this.incidents.open({
        id: incident.incident,
        rule: incident.rule,
        env: incident.env,
        severity: incident.severity,
        labels: this.#incidentLabels(incident.rule, incident.severity, incident.env),
        startedAt: incident.startedAt,
      });
    for (const id of this.incidents.openIds()) if (!openIds.has(id)) this.incidents.resolve(id);
    return openIds;
  }

  /** A firing alert of an incident that is not open any more resolves. */
  #resolveClosed(openIds: ReadonlySet<string>): void {
    for (const notice of this.dispatcher.firing()) {
      if (notice.incident !== undefined && !openIds.has(notice.incident))
        this.dispatcher.notify({ ...notice, status: 'resolved', endsAt: new Date(this.#now()).toISOString() });
    }
  }

  /** A reload changed the alerts block: its rules, policies, windows, grouping and receivers. */
  reconfigure(receivers: readonly AlertReceiver[]): void {
    const config = this.#config();
    this.#inhibitor.reconfigure(config.alerts.inhibit);
    this.incidents.configure(config.alerts.escalation);
    this.maintenance.configure(config.alerts.maintenance, config.timezone);
    this.dispatcher.reconfigure({ receivers, repeatIntervalMs: config.alerts.repeatInterval, grouping: groupingOf(config) });
    this.#warnUnknownReceivers(receivers);
    this.#tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    await this.dispatcher.close();
  }

  /** The lifecycle's clock. */
  now(): number {
    return this.#now();
  }

  /** Hand a notice to the receivers (through silences, maintenance, inhibition, escalation and grouping). */
  notify(notice: AlertNotice): void {
    this.dispatcher.notify(notice);
  }

  // --- What people do (the routes call these; `actor` is who, through what: `api:admin`).

  createSilence(input: SilenceInput, actor: string): Silence {
    const { rules, environments } = this.#config();
    const ruleAlerts = rules.flatMap((rule) => Object.keys(environments).map((env) => this.#incidentLabels(rule.name, rule.severity, env)));
    const silence = this.silences.create(input, ruleAlerts);
    const state = silenceState(silence, this.#now());
    this.#bus.publish({
      type: 'silence.created',
      severity: 'info',
      message: `silence ${silence.id} by ${silence.createdBy} ${state === 'pending' ? `from ${silence.startsAt} ` : ''}until ${silence.endsAt}: ${describeMatchers(silence.matchers)} (${silence.comment})`,
      data: { ...silenceData(silence), state, actor },
    });
    this.#changed();
    return silence;
  }

  expireSilence(id: string, by: string, actor: string): { silence: Silence; already: boolean } {
    const result = this.silences.expire(id, `${by} (${actor})`);
    if (!result.already) {
      const { silence } = result;
      this.#bus.publish({
        type: 'silence.expired',
        severity: 'info',
        message: `silence ${silence.id} (${describeMatchers(silence.matchers)}, by ${silence.createdBy}) expired early by ${by}`,
        data: { ...silenceData(silence), expiredBy: by, actor },
      });
      this.#changed();
    }
    return result;
  }

  acknowledge(id: string, by: string, comment: string | null, actor: string): { incident: IncidentRecord; already: boolean } {
    const result = this.incidents.acknowledge(id, by, comment);
    if (!result.already) {
      const { incident } = result;
      this.#bus.publish({
        type: 'incident.acknowledged',
        severity: 'info',
        env: incident.env,
        rule: incident.rule,
        message: `${incident.id} acknowledged by ${by}${comment ? ` (${comment})` : ''}: its escalation stops at level ${incident.escalationLevel}`,
        data: { incident: incident.id, by, comment, actor, level: incident.escalationLevel, policy: incident.policy },
      });
      this.dispatcher.acknowledged();
      this.#changed();
    }
    return result;
  }

  startMaintenance(request: { env: string; endsAt: number; reason: string; by: string }): MaintenanceView {
    const { window, replaced } = this.maintenance.start(request);
    if (replaced) {
      this.#openWindows.delete(replaced.id);
      this.#publishWindow('maintenance.ended', replaced, { endedBy: `${request.by} (replaced)` });
    }
    this.#openWindows.set(window.id, window);
    this.#publishWindow('maintenance.started', window, { resumed: false });
    this.#changed();
    return window;
  }

  stopMaintenance(env: string, by: string): MaintenanceView[] {
    const ended = this.maintenance.stop(env, by);
    for (const window of ended) {
      this.#openWindows.delete(window.id);
      this.#publishWindow('maintenance.ended', window, { endedBy: by });
    }
    if (ended.length > 0) this.#changed();
    return ended;
  }

  /** Whether a window mutes `env` now (open, and the environment idle). */
  muting(env: string): boolean {
    return env !== this.#activeEnvironment() && this.maintenance.open(env).length > 0;
  }

  overview(): LifecycleOverview {
    const open = this.maintenance.open().map((window) => ({ ...window, muting: window.env !== this.#activeEnvironment() }));
    const firing = new Map(this.dispatcher.firing().map((notice) => [notice.key, notice]));
    const muted = [...this.#muted].flatMap(([key, reason]) => {
      const notice = firing.get(key);
      return notice ? [{ key, rule: notice.rule, env: notice.env, incident: notice.incident ?? null, reason }] : [];
    });
    return {
      incidents: this.incidents.list(),
      silences: this.silences.list().filter((silence) => silence.status.state !== 'expired'),
      maintenance: { open, upcoming: this.maintenance.upcoming() },
      muted,
    };
  }

  /** What the dispatcher asks of the lifecycle. */
  #policy(): NotificationPolicy {
    return {
      muted: (alert, firing) => this.#mutedBy(alert, firing),
      receivers: (notice) => (notice.incident === undefined ? 'all' : this.incidents.receivers(notice.incident)),
      decorate: (notice) => {
        const incident = notice.incident === undefined ? undefined : this.incidents.get(notice.incident);
        if (!incident) return notice;
        return {
          ...notice,
          ...(incident.acknowledgedBy !== null && incident.state === 'acknowledged' ? { acknowledgedBy: incident.acknowledgedBy } : {}),
          ...(incident.policy !== null ? { escalationLevel: incident.escalationLevel } : {}),
        };
      },
      onMuted: (alert, reason) => this.#reportMuted(alert, reason),
    };
  }

  #mutedBy(alert: ActiveAlert, firing: readonly ActiveAlert[]): MuteReason | undefined {
    const silences = this.silences.mutedBy(alert.labels);
    if (silences.length > 0) return { by: 'silence', silences };
    const env = alert.labels.env;
    if (env !== undefined && env !== this.#activeEnvironment() && !this.#firedWhileLive(alert.notice.startsAt, env)) {
      const windows = this.maintenance.open(env);
      if (windows.length > 0) return { by: 'maintenance', windows: windows.map((window) => window.id) };
    }
    const inhibition = this.#inhibitor.inhibitedBy(candidate(alert), firing.map(candidate));
    return inhibition ? { by: 'inhibition', rule: inhibition.rule, source: inhibition.source } : undefined;
  }

  /** Whether `env` was live at some moment since `startsAt`: it is idle now, and traffic left it after that. */
  #firedWhileLive(startsAt: string, env: string): boolean {
    const left = Math.max(this.#leftLiveAt.get(env) ?? Number.NEGATIVE_INFINITY, this.#rolledBackFromAt(env) ?? Number.NEGATIVE_INFINITY);
    return Date.parse(startsAt) <= left;
  }

  #reportMuted(alert: ActiveAlert, reason: MuteReason | undefined): void {
    if (!reason) {
      this.#muted.delete(alert.key);
      return;
    }
    this.#muted.set(alert.key, reason);
    const why =
      reason.by === 'silence'
        ? `silence ${reason.silences.join(', ')}`
        : reason.by === 'maintenance'
          ? `maintenance on ${alert.notice.env} (${reason.windows.join(', ')})`
          : `inhibition ${reason.rule}: ${this.dispatcher.active().find((other) => other.key === reason.source)?.notice.rule ?? reason.source} fires`;
    this.#bus.publish({
      type: 'alert.muted',
      severity: 'info',
      env: alert.notice.env,
      rule: alert.notice.rule,
      message: `notifications of ${alert.notice.rule}${alert.notice.env ? ` on ${alert.notice.env}` : ''} muted by ${why} (actions are never muted)`,
      data: {
        key: alert.key,
        incident: alert.notice.incident ?? null,
        by: reason.by,
        ...(reason.by === 'silence'
          ? { silences: reason.silences }
          : reason.by === 'maintenance'
            ? { windows: reason.windows }
            : { inhibitRule: reason.rule, source: reason.source }),
      },
    });
  }

  /** Rules open and resolve incidents; a switch changes which environment a window may mute. */
  #observe(event: GreenlightEvent): void {
    if (event.type === 'traffic.switched' && !event.data.dryRun) this.#leftLiveAt.set(event.data.from, Date.parse(event.time));
    // A follower keeps no incidents: the leader's are in the shared records a takeover reads.
    if (this.#closed || !this.#acting()) return;
    if (event.type === 'rule.firing' && event.rule !== null) {
      const env = event.env ?? this.#activeEnvironment();
      this.incidents.open({
        id: event.data.incident,
        rule: event.rule,
        env,
        severity: event.data.severity,
        labels: this.#incidentLabels(event.rule, event.data.severity, env, event.data.labels),
        startedAt: Date.parse(event.time),
      });
      this.#tick();
    } else if (event.type === 'rule.resolved') {
      this.incidents.resolve(event.data.incident);
      this.#tick();
    } else if (event.type === 'traffic.switched') {
      this.#changed();
    }
  }

  /** The labels of a rule's alert: what escalation policies match on. */
  #incidentLabels(rule: string, severity: Severity, env: string, labels?: Record<string, string>): Record<string, string> {
    const config = this.#config().rules.find((candidate) => candidate.name === rule);
    const probe = config ? ruleProbe(config) : undefined;
    return alertLabels({ labels: { ...(labels ?? config?.labels ?? {}), ...(probe ? { probe } : {}) }, rule, severity, env });
  }

  /** Something that mutes changed: every group is looked at again, the metrics and the timer follow. */
  #changed(): void {
    this.dispatcher.recheck();
    this.#tick();
  }

  /**
   * What the clock brings: silences that reached their start or end, windows that opened or closed,
   * escalations due. Then metrics, and the timer for the next of these.
   */
  #tick(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    // Not the leader (any more): no silence expires, no window opens and no escalation fires here.
    if (!this.#acting()) return;
    const now = this.#now();
    // A pending silence that reached its start mutes from now: every group is looked at again
    // (alert.muted, the overview), as when one ends.
    let changed = this.silences.startedSince(this.#lastTick);
    for (const silence of this.silences.endedSince(this.#lastTick)) {
      changed = true;
      this.#bus.publish({
        type: 'silence.expired',
        severity: 'info',
        message: `silence ${silence.id} (${describeMatchers(silence.matchers)}, by ${silence.createdBy}) reached its end`,
        data: { ...silenceData(silence), expiredBy: null, actor: null },
      });
    }
    this.#lastTick = now;
    const open = new Map(this.maintenance.open().map((window) => [window.id, window]));
    for (const [id, window] of this.#openWindows) {
      if (open.has(id)) continue;
      changed = true;
      this.#publishWindow('maintenance.ended', window, { endedBy: null });
    }
    for (const [id, window] of open) {
      if (this.#openWindows.has(id)) continue;
      changed = true;
      this.#publishWindow('maintenance.started', window, { resumed: false });
    }
    this.#openWindows = open;
    for (const escalation of this.incidents.takeDue()) {
      const { incident, level, receivers, kind } = escalation;
      const notifications = this.dispatcher.escalate(incident.id, level, receivers);
      const to = receivers === 'all' ? 'every receiver' : receivers.join(', ');
      const what =
        kind === 'retrigger'
          ? `acknowledgement timed out: notifying level ${level} again`
          : kind === 'repeat'
            ? `still not acknowledged: notifying level ${level} again (repeat ${incident.repeats})`
            : `escalated to level ${level}: not acknowledged since ${incident.startedAt}`;
      this.#bus.publish({
        type: 'incident.escalated',
        severity: incident.severity,
        env: incident.env,
        rule: incident.rule,
        message: `${incident.id} ${what}; ${notifications > 0 ? `notifying ${to}` : 'nothing to notify (its alerts are muted, or none is firing)'}`,
        data: {
          incident: incident.id,
          level,
          kind,
          policy: incident.policy,
          receivers: receivers === 'all' ? 'all' : [...receivers],
          notifications,
          nextEscalationAt: incident.nextEscalationAt,
        },
      });
    }
    if (changed) this.dispatcher.recheck();
    this.silences.prune();
    this.maintenance.prune();
    this.#updateMetrics();
    const next = [this.silences.nextChange(), this.maintenance.nextChange(), this.incidents.nextDue()].filter((at): at is number => at !== undefined);
    const wait = Math.min(TICK_MAX_MS, ...next.map((at) => Math.max(0, at - now)));
    this.#timer = setTimeout(() => this.#tick(), wait);
    this.#timer.unref();
  }

  #updateMetrics(): void {
    const environments = Object.keys(this.#config().environments);
    for (const env of environments) this.#metrics.setMaintenance(env, this.maintenance.open(env).length > 0);
    this.#metrics.setSilences(this.silences.counts());
    // Every tick, and each rule.firing and rule.resolved runs one: counted, not sorted (list() sorts up to 200 kept records).
    this.#metrics.setIncidents(this.incidents.counts());
  }

  #publishWindow(type: 'maintenance.started', window: MaintenanceView, extra: { resumed: boolean }): void;
  #publishWindow(type: 'maintenance.ended', window: MaintenanceView, extra: { endedBy: string | null }): void;
  #publishWindow(type: 'maintenance.started' | 'maintenance.ended', window: MaintenanceView, extra: { resumed: boolean } | { endedBy: string | null }): void {
    const muting = window.env !== this.#activeEnvironment();
    const data: MaintenanceEventData = {
      window: window.id,
      name: window.name,
      kind: window.kind,
      env: window.env,
      startsAt: window.startsAt,
      endsAt: window.endsAt,
      reason: window.reason,
      createdBy: window.createdBy,
      muting,
    };
    const label = window.name ? `maintenance window ${window.name}` : 'maintenance';
    if (type === 'maintenance.started') {
      const mutes = muting ? `notifications about ${window.env} are muted until ${window.endsAt}` : `${window.env} is live, so nothing is muted while it is`;
      this.#bus.publish({
        type,
        severity: 'info',
        env: window.env,
        message: `${label} on ${window.env} started${'resumed' in extra && extra.resumed ? ' (open when greenlight started)' : ''}: ${window.reason}; ${mutes}; probing and actions go on`,
        data: { ...data, resumed: 'resumed' in extra && extra.resumed },
      });
    } else {
      const endedBy = 'endedBy' in extra ? extra.endedBy : null;
      this.#bus.publish({
        type,
        severity: 'info',
        env: window.env,
        message: `${label} on ${window.env} ended${endedBy ? ` (stopped by ${endedBy})` : ''}: notifications about ${window.env} go out again`,
        data: { ...data, endedBy },
      });
    }
  }

  #warnUnknownReceivers(receivers: readonly AlertReceiver[]): void {
    const names = new Set(receivers.map((receiver) => receiver.name));
    for (const policy of this.#config().alerts.escalation) {
      policy.levels.forEach((level, index) => {
        for (const name of level.receivers) {
          if (name !== '*' && !names.has(name))
            this.#logger.warn(
              { policy: policy.name, level: index + 1, receiver: name },
              `escalation policy ${policy.name} level ${index + 1} names receiver ${name}, which is not configured or is off: that level notifies the others only`,
            );
        }
      });
    }
  }
}

function groupingOf(config: Config) {
  return { by: config.alerts.group.by, waitMs: config.alerts.group.wait, intervalMs: config.alerts.group.interval };
}

function candidate(alert: ActiveAlert) {
  return { key: alert.key, severity: alert.notice.severity, labels: alert.labels };
}

function silenceData(silence: Silence) {
  return {
    silenceID: silence.id,
    matchers: silence.matchers,
    startsAt: silence.startsAt,
    endsAt: silence.endsAt,
    createdBy: silence.createdBy,
    comment: silence.comment,
  };
}

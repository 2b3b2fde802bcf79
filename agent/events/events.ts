/**
 * greenlight's events: the shape of CONTRACT.md ("Events"), as a discriminated union on `type`,
 * published on an in-process bus. Logs, metrics, and later the journal and the WebSocket stream
 * are subscribers; publishers never know who listens.
 */
import type { LabelMatcher } from '../../config/matchers.js';
import type { Redactor } from '../../config/redactor.js';
import type { Figures } from '../../rules/rule-evaluator.js';

export type Severity = 'info' | 'warning' | 'critical';

interface EventBase<T extends string, D> {
  id: number;
  time: string;
  type: T;
  severity: Severity;
  env: string | null;
  probe: string | null;
  rule: string | null;
  message: string;
  data: D;
}

/** `controls`: which API controls the tokens allow: all (admin token), rollback only, or none. */
export type AgentStartedEvent = EventBase<
  'agent.started',
  { version: string; pid: number; activeEnvironment: string; probes: number; series: number; dryRun: boolean; controls: 'all' | 'rollback only' | 'none' }
>;
export type AgentStoppingEvent = EventBase<'agent.stopping', { signal: string | null; uptimeSeconds: number; reason?: string }>;
export type ProbeDownEvent = EventBase<
  'probe.down',
  { reason: string; detail: string; status: number | null; durationMs: number; consecutiveFailures: number; active: boolean }
>;
export type ProbeUpEvent = EventBase<'probe.up', { status: number | null; durationMs: number; downForMs: number | null; active: boolean }>;

/** The figures that decided a rule's state: each fact with its params and value, and the sample count. */
export type RuleFigures = Figures;

export type RulePendingEvent = EventBase<
  'rule.pending',
  { severity: 'warning' | 'critical'; for: number; figures: RuleFigures; labels: Record<string, string> }
>;
export type RuleFiringEvent = EventBase<
  'rule.firing',
  { severity: 'warning' | 'critical'; incident: string; heldForMs: number; figures: RuleFigures; labels: Record<string, string>; actions: string[] }
>;
export type RuleResolvedEvent = EventBase<
  'rule.resolved',
  { severity: 'warning' | 'critical'; incident: string; firedForMs: number; figures: RuleFigures; labels: Record<string, string> }
>;

export interface ActionEventData {
  action: string;
  type: string;
  incident: string | null;
  dryRun: boolean;
  [key: string]: unknown;
}
export type ActionStartedEvent = EventBase<'action.started', ActionEventData>;
export type ActionSucceededEvent = EventBase<'action.succeeded', ActionEventData & { durationMs: number; detail: string }>;
export type ActionFailedEvent = EventBase<'action.failed', ActionEventData & { durationMs: number; error: string }>;
export type ActionSkippedEvent = EventBase<'action.skipped', ActionEventData & { reason: string }>;

export type TrafficSwitchedEvent = EventBase<
  'traffic.switched',
  {
    from: string;
    to: string;
    adapter: string;
    reason: string;
    incident: string | null;
    detail: string;
    dryRun: boolean;
    /** `rollback` (rules, operators, a promotion's revert, a restart) or a `promotion`'s forward switch. */
    kind?: 'rollback' | 'promotion';
    /** The target's fresh verification just before the switch: how long it took, over how many probes. */
    verification?: { durationMs: number; probes: number } | null;
  }
>;

/** One step after a switch (switching.steps), as it starts. */
export interface SwitchStepData {
  /** The step's name (its kind unless named). */
  step: string;
  kind: 'cdn' | 'tls' | 'verify';
  /** Its place in the phase: step 2 of 3. */
  index: number;
  of: number;
  from: string;
  to: string;
  /** The switch it follows: a promotion's forward switch, or a rollback (a rule's, an operator's, a promotion's revert). */
  switch: 'promotion' | 'rollback';
  incident: string;
  timeoutMs: number;
}
export type SwitchStepStartedEvent = EventBase<'switch.step_started', SwitchStepData>;
export type SwitchStepSucceededEvent = EventBase<
  'switch.step_succeeded',
  SwitchStepData & { durationMs: number; detail: string; figures: Record<string, unknown> }
>;
export type SwitchStepFailedEvent = EventBase<
  'switch.step_failed',
  SwitchStepData & {
    durationMs: number;
    reason: string;
    /** It did not finish within its timeout. */
    timedOut: boolean;
    figures: Record<string, unknown>;
    /** The steps after it, not run. */
    skipped: string[];
  }
>;

export interface FlagChange {
  flag: string;
  env: string;
  old: boolean;
  new: boolean;
}
export type FlagChangedEvent = EventBase<'flag.changed', { actor: string; reason: string; changes: FlagChange[] }>;
export type FlagRejectedEvent = EventBase<
  'flag.rejected',
  { actor: string; reason: string; flag: string; env: string | null; attempted: unknown; why: string }
>;

/**
 * One notification to one receiver (README, "Alert lifecycle"): `key` is the group's, `alerts` how
 * many it carried, `kind` acknowledge for PagerDuty's acknowledgement of the group.
 */
interface AlertDeliveryData {
  receiver: string;
  receiverType: string;
  status: 'firing' | 'resolved';
  key: string;
  attempts: number;
  kind: 'notify' | 'acknowledge';
  alerts: number;
  rules: string[];
  incidents: string[];
  escalationLevel: number | null;
}
export type AlertSentEvent = EventBase<'alert.sent', AlertDeliveryData & { httpStatus: number | null }>;
export type AlertFailedEvent = EventBase<'alert.failed', AlertDeliveryData & { error: string }>;

/** The alert lifecycle (README, "Alert lifecycle"): silences, maintenance, escalation, acknowledgement, muted alerts. */
export interface SilenceEventData {
  silenceID: string;
  matchers: LabelMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}
export type SilenceCreatedEvent = EventBase<'silence.created', SilenceEventData & { state: 'pending' | 'active' | 'expired'; actor: string }>;
/** `expiredBy` null: it reached its end; otherwise who ended it early, and through what (`actor`). */
export type SilenceExpiredEvent = EventBase<'silence.expired', SilenceEventData & { expiredBy: string | null; actor: string | null }>;
export interface MaintenanceEventData {
  window: string;
  name: string | null;
  kind: 'ad-hoc' | 'recurring';
  env: string;
  startsAt: string;
  endsAt: string;
  reason: string;
  createdBy: string | null;
  /** Whether it mutes now: never while its environment is live. */
  muting: boolean;
}
export type MaintenanceStartedEvent = EventBase<'maintenance.started', MaintenanceEventData & { resumed: boolean }>;
/** `endedBy` null: it reached its end; otherwise who stopped it (or replaced it with another). */
export type MaintenanceEndedEvent = EventBase<'maintenance.ended', MaintenanceEventData & { endedBy: string | null }>;
export type IncidentAcknowledgedEvent = EventBase<
  'incident.acknowledged',
  { incident: string; by: string; comment: string | null; actor: string; level: number; policy: string | null }
>;
export type IncidentEscalatedEvent = EventBase<
  'incident.escalated',
  {
    incident: string;
    level: number;
    kind: 'level' | 'repeat' | 'retrigger';
    policy: string | null;
    receivers: string[] | 'all';
    notifications: number;
    nextEscalationAt: string | null;
  }
>;
export type AlertMutedEvent = EventBase<
  'alert.muted',
  {
    key: string;
    incident: string | null;
    by: 'silence' | 'maintenance' | 'inhibition';
    silences?: string[];
    windows?: string[];
    inhibitRule?: string;
    source?: string;
  }
>;

export type ConfigReloadedEvent = EventBase<
  'config.reloaded',
  {
    source: string;
    trigger: string;
    probes: { added: string[]; removed: string[]; changed: string[]; kept: string[] };
    rules: { added: string[]; removed: string[]; changed: string[] };
    components: string[];
    needsRestart: string[];
    /** What the config says that neither a reload nor a restart applies (activeEnvironment), and what to do instead. */
    notApplied: string[];
    /** What the new file turned off that the running one had on (an unset variable), as at a start. */
    notices?: string[];
  }
>;
export type ConfigReloadFailedEvent = EventBase<'config.reload_failed', { source: string; trigger: string; error: string; issues: string[] }>;

export type JournalFailedEvent = EventBase<'journal.failed', { path: string; error: string }>;
export type JournalRecoveredEvent = EventBase<'journal.recovered', { path: string; heldEvents: number; droppedEvents: number; downForMs: number }>;

/** One step of a promotion as it ended: ✅ or ❌, how long it took and the figures that decided it. */
export interface PromoteStepData {
  promotion: string;
  step: PromoteStepName;
  ok: boolean;
  durationMs: number;
  detail: string;
  figures: Record<string, unknown>;
}
export type PromoteStepName = 'window' | 'deploy' | 'preflight' | 'probes' | 'load' | 'switch' | 'verify' | 'watch' | 'revert';
export interface PromoteRequestData {
  promotion: string;
  from: string;
  to: string;
  kind: 'feature' | 'major';
  emergency: boolean;
  reason: string | null;
  actor: string;
  deploy: boolean;
  watchMs: number;
}
export type PromoteStartedEvent = EventBase<'promote.started', PromoteRequestData>;
export type PromoteStepEvent = EventBase<'promote.step', PromoteStepData>;
export type PromoteSucceededEvent = EventBase<
  'promote.succeeded',
  { promotion: string; from: string; to: string; durationMs: number; steps: Omit<PromoteStepData, 'promotion' | 'figures'>[] }
>;
export type PromoteFailedEvent = EventBase<
  'promote.failed',
  {
    promotion: string;
    from: string;
    to: string;
    durationMs: number;
    step: PromoteStepName;
    reason: string;
    switched: boolean;
    rolledBack: boolean;
    live: string;
    steps: Omit<PromoteStepData, 'promotion' | 'figures'>[];
  }
>;

/** One check of a rollback validation: `ALPHASTACK_PROTECTION on blue`, with what was observed. */
export interface ValidationCheck {
  name: 'health' | 'database' | 'protection' | 'safe-mode' | 'error-ratio';
  ok: boolean;
  detail: string;
}
export type RollbackValidatedEvent = EventBase<'rollback.validated', { ok: boolean; live: string; idle: string; trigger: string; checks: ValidationCheck[] }>;

export type ClusterLeaderElectedEvent = EventBase<'cluster.leader_elected', { node: string; epoch: number; url: string }>;
export type ClusterLeaderLostEvent = EventBase<'cluster.leader_lost', { node: string; epoch: number; reason: string }>;
export type ClusterStoreUnavailableEvent = EventBase<'cluster.store_unavailable', { node: string; error: string }>;
export type ClusterStoreRecoveredEvent = EventBase<'cluster.store_recovered', { node: string; downForMs: number; droppedEvents: number }>;
/** A scheduled report posted to a receiver (issue 16), or not. */
export interface ReportDeliveryData {
  schedule: string;
  receiver: string;
  receiverType: string;
  since: string;
  attempts: number;
}
export type ReportSentEvent = EventBase<'report.sent', ReportDeliveryData & { parts: number; httpStatus: number | null }>;
export type ReportFailedEvent = EventBase<'report.failed', ReportDeliveryData & { error: string }>;

export type GreenlightEvent =
  | AgentStartedEvent
  | AgentStoppingEvent
  | ProbeDownEvent
  | ProbeUpEvent
  | RulePendingEvent
  | RuleFiringEvent
  | RuleResolvedEvent
  | ActionStartedEvent
  | ActionSucceededEvent
  | ActionFailedEvent
  | ActionSkippedEvent
  | TrafficSwitchedEvent
  | SwitchStepStartedEvent
  | SwitchStepSucceededEvent
  | SwitchStepFailedEvent
  | FlagChangedEvent
  | FlagRejectedEvent
  | AlertSentEvent
  | AlertFailedEvent
  | AlertMutedEvent
  | SilenceCreatedEvent
  | SilenceExpiredEvent
  | MaintenanceStartedEvent
  | MaintenanceEndedEvent
  | IncidentAcknowledgedEvent
  | IncidentEscalatedEvent
  | ConfigReloadedEvent
  | ConfigReloadFailedEvent
  | JournalFailedEvent
  | JournalRecoveredEvent
  | PromoteStartedEvent
  | PromoteStepEvent
  | PromoteSucceededEvent
  | PromoteFailedEvent
  | RollbackValidatedEvent
  | ClusterLeaderElectedEvent
  | ClusterLeaderLostEvent
  | ClusterStoreUnavailableEvent
  | ClusterStoreRecoveredEvent
  | ReportSentEvent
  | ReportFailedEvent;
export type EventType = GreenlightEvent['type'];

/** What a publisher supplies; the bus adds id and time. */
/** Every event type at run time: what a filter may name (the compiler keeps this in step with the union). */
export const EVENT_TYPES: readonly GreenlightEvent['type'][] = Object.keys({
  'action.failed': true,
  'action.skipped': true,
  'action.started': true,
  'action.succeeded': true,
  'agent.started': true,
  'agent.stopping': true,
  'alert.failed': true,
  'alert.muted': true,
  'alert.sent': true,
  'cluster.leader_elected': true,
  'cluster.leader_lost': true,
  'cluster.store_recovered': true,
  'cluster.store_unavailable': true,
  'config.reload_failed': true,
  'config.reloaded': true,
  'flag.changed': true,
  'flag.rejected': true,
  'incident.acknowledged': true,
  'incident.escalated': true,
  'journal.failed': true,
  'journal.recovered': true,
  'maintenance.ended': true,
  'maintenance.started': true,
  'probe.down': true,
  'probe.up': true,
  'promote.failed': true,
  'promote.started': true,
  'promote.step': true,
  'promote.succeeded': true,
  'report.failed': true,
  'report.sent': true,
  'rollback.validated': true,
  'rule.firing': true,
  'rule.pending': true,
  'rule.resolved': true,
  'silence.created': true,
  'silence.expired': true,
  'switch.step_failed': true,
  'switch.step_started': true,
  'switch.step_succeeded': true,
  'traffic.switched': true,
} satisfies Record<GreenlightEvent['type'], true>) as GreenlightEvent['type'][];

export type EventInput<E extends GreenlightEvent = GreenlightEvent> = E extends GreenlightEvent
  ? Omit<E, 'id' | 'time' | 'env' | 'probe' | 'rule'> & Partial<Pick<E, 'env' | 'probe' | 'rule'>>
  : never;

export type EventListener = (event: GreenlightEvent) => void;

/**
 * An event as the journal hands it to readers that send it on (stream replays, GET
 * /api/v1/events): its JSON — exactly JSON.stringify(event) — and the fields filters read.
 */
export interface EventJson {
  readonly id: number;
  readonly type: string;
  readonly severity: string;
  readonly env: string | null;
  readonly probe: string | null;
  readonly json: string;
}

export function eventJson(event: GreenlightEvent): EventJson {
  return { id: event.id, type: event.type, severity: event.severity, env: event.env, probe: event.probe, json: JSON.stringify(event) };
}

/**
 * Assigns ids and times and delivers each event synchronously to every subscriber, in
 * subscription order. A throwing subscriber is reported and never stops delivery to the rest.
 * With a redactor, every event's message and data are redacted before any subscriber sees them:
 * the journal, the stream and the log all get the same, safe event.
 */
export class EventBus {
  readonly #listeners = new Set<EventListener>();
  readonly #redactor: Redactor | undefined;
  readonly #now: () => number;
  readonly #onListenerError: (error: unknown, event: GreenlightEvent) => void;
  #lastId: number;

  constructor(options: { now: () => number; lastId?: number; onListenerError: (error: unknown, event: GreenlightEvent) => void; redactor?: Redactor }) {
    this.#now = options.now;
    this.#redactor = options.redactor;
    this.#lastId = options.lastId ?? 0;
    this.#onListenerError = options.onListenerError;
  }

  get lastId(): number {
    return this.#lastId;
  }

  /** Go on from the journal's last id after a restart: ids only ever increase. */
  resumeFrom(lastId: number): void {
    this.#lastId = Math.max(this.#lastId, lastId);
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish<E extends GreenlightEvent>(input: EventInput<E>): E {
    const event = {
      id: ++this.#lastId,
      time: new Date(this.#now()).toISOString(),
      type: input.type,
      severity: input.severity,
      env: input.env ?? null,
      probe: input.probe ?? null,
      rule: input.rule ?? null,
      message: this.#redactor ? this.#redactor.text(input.message) : input.message,
      data: this.#redactor ? this.#redactor.value(input.data) : input.data,
    } as E;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return event;
  }
}

/**
 * Routes alert notices to receivers without ever making the caller wait: a rule firing, a
 * rollback or the probe loop hands a notice over and goes on, while each receiver is notified on
 * its own (retrying, timing out) in parallel. Each delivery's outcome goes to `onDelivery`.
 *
 * Notices are grouped, as Alertmanager groups alerts (README, "Alert lifecycle"): per receiver,
 * alerts that agree on the `grouping.by` labels form a group, and a group is one notification:
 *
 * - A new group waits `waitMs` for the alerts that come with its first one, then goes out.
 * - A change to a group that was notified (an alert added, one resolved) goes out `intervalMs`
 *   after the last notification — except a critical new to a group whose last notification had
 *   no critical: that one never waits longer than `waitMs`, so the first critical page is never
 *   held back by more than the wait.
 * - A firing group is sent again every repeat interval (the shortest of its unacknowledged
 *   alerts') while nothing changes; an alert that fired and resolved before any notification
 *   is never sent.
 * - The policy (the alert lifecycle) decides which alerts are muted (silences, maintenance,
 *   inhibition) and which receivers an alert may reach (escalation). A muted alert is left out;
 *   one whose firing notice a receiver got still has its resolution sent there, muted or not.
 * - A firing notice with `expiresAt` (one that reports a moment, such as an operator's rollback
 *   refused, and that no incident will resolve) resolves by itself at that time unless it is
 *   raised again, as an Alertmanager alert does at its endsAt: nothing greenlight raises fires,
 *   and mutes others through inhibition, for ever.
 * - Per receiver and group, a delivery waits for the previous one: a resolution never overtakes
 *   its trigger. A notification a receiver did not take is tried again 10 s later, doubling up
 *   to 10 minutes while it keeps failing, for as long as it still matters.
 *
 * Without `grouping` every alert is its own group, sent at once.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events/events.js';
import { OutboundError } from '../plugins/outbound.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { alertLabels } from './alert-labels.js';
import { AlertError, type AlertGroupNotice, type AlertNotice, type AlertReceiver } from './alert-receiver.js';

/** How one delivery of one notification to one receiver went. */
export interface AlertDelivery {
  receiver: AlertReceiver;
  /** The first alert of the notification (the only one when ungrouped). */
  notice: AlertNotice;
  /** The notification; `kind` acknowledge: PagerDuty's acknowledgement of the group. */
  group: AlertGroupNotice;
  kind: 'notify' | 'acknowledge';
  ok: boolean;
  /** HTTP tries made, the first included (0 when none was made). */
  attempts: number;
  /** The last HTTP status received, when there was one. */
  httpStatus?: number;
  /** Why it failed, as the receiver put it (greenlight's receivers keep URLs and keys out of it). */
  error?: string;
  /** A 429's Retry-After the delivery gave up on: nothing goes to the receiver before it passes. */
  retryAfterMs?: number;
}

/** How alerts become notifications: which labels make a group, how long a group waits, how often it changes. */
export interface GroupingOptions {
  /** Label names; `...` alone: every alert is its own group; empty: one group per receiver. */
  by: readonly string[];
  waitMs: number;
  intervalMs: number;
}

/** An alert the dispatcher holds: firing, or resolved and not yet told to everyone who heard it fire. */
export interface ActiveAlert {
  key: string;
  notice: AlertNotice;
  labels: Record<string, string>;
  firing: boolean;
}

/** Why an alert is muted now. */
export type MuteReason = { by: 'silence'; silences: string[] } | { by: 'maintenance'; windows: string[] } | { by: 'inhibition'; rule: string; source: string };

/** What the alert lifecycle decides for the dispatcher; the default decides nothing. */
export interface NotificationPolicy {
  /** Why `alert` is muted now, given every firing alert; undefined when it is not. */
  muted(alert: ActiveAlert, firing: readonly ActiveAlert[]): MuteReason | undefined;
  /** The receivers an alert may reach now (escalation levels); 'all': every one that takes its severity. */
  receivers(notice: AlertNotice): ReadonlySet<string> | 'all';
  /** The notice as it goes out (acknowledgement, escalation level). */
  decorate(notice: AlertNotice): AlertNotice;
  /** An alert became muted, or no longer is (once per change, not per receiver). */
  onMuted?(alert: ActiveAlert, reason: MuteReason | undefined): void;
}

/** What the store keeps of an incident's alert (or one that expires), so a restart neither forgets it nor sends it again. */
export interface StoredAlert {
  notice: AlertNotice;
  firing: boolean;
  /** Per receiver name, when it was last told the alert fires (successfully). */
  sent: Record<string, number>;
  /**
   * The receivers already told it resolved, while others are still owed that (one was down):
   * after a restart those are not told again, and not told it "fired and resolved" either.
   */
  resolvedTo?: string[];
  /** Per receiver name, its group's round at PagerDuty when it was last saved (AlertGroupNotice.round). */
  rounds?: Record<string, number>;
  /**
   * The receivers whose group (in its current round) was told every firing alert of it is
   * acknowledged: after a restart, an alert new to that group still opens a new round, as before.
   */
  acknowledgedTo?: string[];
}

/** Where alerts of incidents are kept across restarts. */
export interface AlertPersistence {
  save(alert: StoredAlert): void;
  remove(key: string): void;
}

/** What the dispatcher needs: its receivers, the repeat interval, a clock, a logger and where outcomes go. */
export interface AlertDispatcherOptions {
  receivers: readonly AlertReceiver[];
  /** How often a firing notification is sent again while nothing changes. */
  repeatIntervalMs: number;
  now: () => number;
  logger: Logger;
  onDelivery: (delivery: AlertDelivery) => void;
  /** Default: every alert on its own, at once. */
  grouping?: GroupingOptions;
  policy?: NotificationPolicy;
  persistence?: AlertPersistence;
  /** Whether this agent may notify (a cluster's leader): one that does not sends nothing (no group, escalation, repeat or acknowledgement) and keeps what it holds. Default: always. */
  acting?: () => boolean;
}

/**
 * A notification a receiver did not take (after its own retries) is tried again this long after,
 * doubling with each failure in a row up to FAILED_RETRY_MAX_MS: a dead webhook is not hammered,
 * a page is not given up.
 */
export const FAILED_RETRY_MS = 10_000;
export const FAILED_RETRY_MAX_MS = 600_000;

/**
 * The longest a 429's Retry-After holds a receiver: what Slack and PagerDuty ask is seconds to a
 * minute, and a proxy or a misconfigured service that asks for days must not mute pages for days.
 * Past it the receiver is tried again (and held again if it still refuses).
 */
export const MAX_RATE_LIMIT_HOLD_MS = 600_000;

const UNGROUPED: GroupingOptions = { by: ['...'], waitMs: 0, intervalMs: 0 };
const OPEN_POLICY: NotificationPolicy = { muted: () => undefined, receivers: () => 'all', decorate: (notice) => notice };
const RANK = { critical: 2, warning: 1, info: 0 } as const;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface AlertEntry extends ActiveAlert {
  since: number;
  /** The mute last reported to the policy, as JSON ('' when not muted). */
  mutedAs: string;
  /** Receivers told it resolved (StoredAlert.resolvedTo); empty while it fires. */
  resolvedTo: Set<string>;
}

interface Group {
  receiver: AlertReceiver;
  key: string;
  labels: Record<string, string>;
  /** Alert keys routed to this receiver in this group. */
  members: Set<string>;
  /** Alert key → when the receiver was last told (successfully) that it fires. */
  sent: Map<string, number>;
  createdAt: number;
  /** When its last notification was delivered. */
  lastFlushAt: number | undefined;
  /** A critical new to the group, when the group had told no critical: it goes out by this time (its arrival plus the wait). */
  urgentAt: number | undefined;
  /** An escalation reached a level: notify now, whatever changed. */
  escalation: { level: number; incidents: Set<string> } | undefined;
  /** PagerDuty was told every firing alert of it is acknowledged. */
  acknowledged: boolean;
  /** Its round at PagerDuty (AlertGroupNotice.round): up by one when an acknowledged group gains an alert. */
  round: number;
  /** After a failed delivery, no retry before this; `failures` in a row so far. */
  retryAt: number | undefined;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  dueAt: number | undefined;
  running: Promise<void> | undefined;
}

/** Fans notices out to receivers as grouped notifications, repeats firing ones, and reports every delivery. */
export class AlertDispatcher {
  #receivers: readonly AlertReceiver[];
  #repeatIntervalMs: number;
  #grouping: GroupingOptions;
  readonly #policy: NotificationPolicy;
  readonly #persistence: AlertPersistence | undefined;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #onDelivery: (delivery: AlertDelivery) => void;
  readonly #alerts = new Map<string, AlertEntry>();
  /**
   * Per receiver name, the time before which nothing is sent to it: a 429 asked to wait that long.
   * It holds every group of the receiver, not only the one that was told: a webhook's rate limit
   * is the webhook's (150 groups at once each honouring their own 429 still sent 147 a second).
   */
  readonly #heldUntil = new Map<string, number>();
  readonly #groups = new Map<AlertReceiver, Map<string, Group>>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Per alert key, the timer that resolves a firing alert at its `expiresAt`. */
  readonly #expiries = new Map<string, NodeJS.Timeout>();
  readonly #shutdown = new AbortController();
  readonly #acting: () => boolean;
  /** A recheck after notify() is due at the end of the turn (notify). */
  #recheckQueued = false;

  constructor(options: AlertDispatcherOptions) {
    this.#acting = options.acting ?? (() => true);
    this.#receivers = options.receivers;
    this.#repeatIntervalMs = options.repeatIntervalMs;
    this.#grouping = options.grouping ?? UNGROUPED;
    this.#policy = options.policy ?? OPEN_POLICY;
    this.#persistence = options.persistence;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#onDelivery = options.onDelivery;
  }

  /** A reload's receivers, repeat interval and grouping; groups of receivers kept by name keep what they were told. */
  reconfigure(options: Pick<AlertDispatcherOptions, 'receivers' | 'repeatIntervalMs' | 'grouping'>): void {
    this.#receivers = options.receivers;
    this.#repeatIntervalMs = options.repeatIntervalMs;
    if (options.grouping) this.#grouping = options.grouping;
    const byName = new Map(options.receivers.map((receiver) => [receiver.name, receiver]));
    for (const [old, groups] of [...this.#groups]) {
      this.#groups.delete(old);
      const receiver = byName.get(old.name);
      for (const group of groups.values()) {
        clearTimeout(group.timer);
        group.timer = undefined;
        group.dueAt = undefined;
        if (!receiver) continue;
        group.receiver = receiver;
        this.#groupsOf(receiver).set(group.key, group);
      }
    }
    for (const entry of this.#alerts.values()) if (entry.firing) this.#route(entry, false);
    this.recheck();
  }

  /** The receiver of this name in force now (a scheduled report posts through it). */
  receiver(name: string): AlertReceiver | undefined {
    return this.#receivers.find((receiver) => receiver.name === name);
  }

  /**
   * Hand over a notice and return at once; notification happens in the background. A firing
   * notice for a key already held replaces what the next notification says of it. A resolution
   * for a key never seen (firing before a restart) reaches every receiver that takes its severity.
   */
  notify(notice: AlertNotice): void {
    if (this.#shutdown.signal.aborted) {
      this.#logger.warn(
        { key: notice.key, rule: notice.rule, status: notice.status },
        `alert ${notice.rule} (${notice.status}) dropped: the alert dispatcher is closed`,
      );
      return;
    }
    const now = this.#now();
    const known = this.#alerts.get(notice.key);
    if (notice.status === 'firing') {
      const entry: AlertEntry = known?.firing
        ? { ...known, notice, labels: alertLabels(notice) }
        : { key: notice.key, notice, labels: alertLabels(notice), firing: true, since: now, mutedAs: known?.mutedAs ?? '', resolvedTo: new Set() };
      this.#alerts.set(notice.key, entry);
      this.#route(entry, true);
      this.#save(entry);
      this.#expireAt(entry);
    } else {
      this.#disarm(notice.key);
      const resolved: AlertNotice = notice.endsAt === undefined ? { ...notice, endsAt: new Date(now).toISOString() } : notice;
      if (!known) {
        // Firing before a restart, or from nowhere we know: whoever takes its severity hears it ended.
        const entry: AlertEntry = {
          key: notice.key,
          notice: resolved,
          labels: alertLabels(resolved),
          firing: false,
          since: now,
          mutedAs: '',
          resolvedTo: new Set(),
        };
        this.#alerts.set(entry.key, entry);
        for (const receiver of this.#receivers.filter((r) => r.severities.includes(notice.severity))) {
          const group = this.#group(receiver, entry);
          group.members.add(entry.key);
          group.sent.set(entry.key, now);
        }
      } else {
        // Told to no receiver yet (it fired and resolved within the group's wait): it still goes out
        // as fired-and-resolved (PagerDuty: trigger, then resolve), with what it fired on, not the
        // resolving evaluation's figures (regression: the page said the condition was false).
        const told = [...this.#groups.values()].some((groups) => [...groups.values()].some((group) => group.sent.has(notice.key)));
        const shown = told || !known.firing ? resolved : { ...resolved, summary: known.notice.summary, figures: known.notice.figures };
        const entry: AlertEntry = { ...known, notice: { ...shown, startsAt: known.notice.startsAt }, firing: false };
        this.#alerts.set(entry.key, entry);
        this.#save(entry);
      }
      this.#logRouting(notice);
    }
    // Any change may mute or unmute others (inhibition): every group is looked at again, once the
    // caller's turn is over. What ends together (an incident's hold alert, which inhibits, and the
    // rule's own alert, handed over one after the other by the incident's actions) is judged
    // together: looked at in between, the alert inhibited until its end would seem unmuted for no
    // time at all, and be told as fired-and-resolved to receivers that never heard it fire.
    if (this.#recheckQueued) return;
    this.#recheckQueued = true;
    queueMicrotask(() => {
      if (this.#recheckQueued) this.recheck();
    });
  }

  /** The notices firing now, in the order they first fired. */
  firing(): AlertNotice[] {
    return [...this.#alerts.values()].filter((entry) => entry.firing).map((entry) => entry.notice);
  }

  /** Every alert held, firing or resolved-but-not-yet-told, with its labels. */
  active(): ActiveAlert[] {
    return [...this.#alerts.values()].map(({ key, notice, labels, firing }) => ({ key, notice, labels, firing }));
  }

  /** Look at every group again: a silence, a window or an inhibition source changed. */
  recheck(): void {
    this.#recheckQueued = false;
    for (const groups of this.#groups.values()) for (const group of groups.values()) this.#schedule(group);
  }

  /**
   * An incident's escalation reached `level`: its firing alerts reach these receivers (each still
   * only if it takes the severity), notified now. How many notifications that makes (a group whose
   * alerts are all muted makes none).
   */
  escalate(incident: string, level: number, receivers: readonly string[] | 'all'): number {
    const targets = this.#receivers.filter((receiver) => receivers === 'all' || receivers.includes(receiver.name));
    const touched = new Set<Group>();
    for (const entry of this.#alerts.values()) {
      if (!entry.firing || entry.notice.incident !== incident) continue;
      for (const receiver of targets) {
        if (!receiver.severities.includes(entry.notice.severity)) continue;
        const group = this.#group(receiver, entry);
        group.members.add(entry.key);
        touched.add(group);
      }
    }
    // Counted before they go: a group whose alerts are all muted (a silence) notifies nobody, and
    // the incident.escalated event must not say it notified anyone.
    let notifying = 0;
    for (const group of touched) {
      if (this.#content(group).firing.length > 0) notifying++;
      group.escalation ??= { level, incidents: new Set() };
      group.escalation.level = Math.max(group.escalation.level, level);
      group.escalation.incidents.add(incident);
      // Now, not a timer's turn later: an escalation is already late by design.
      clearTimeout(group.timer);
      if (group.running) this.#schedule(group);
      else this.#flush(group);
    }
    return notifying;
  }

  /** An incident was acknowledged: a receiver that takes acknowledgements hears it for each group now wholly acknowledged. */
  acknowledged(): void {
    for (const groups of this.#groups.values()) for (const group of groups.values()) this.#acknowledgeIfDue(group);
  }

  /**
   * Put back what the store kept: alerts, and what each receiver was told of them. What was held
   * before is dropped (a cluster's new leader replaces its own view with the shared records).
   */
  restore(stored: readonly StoredAlert[]): void {
    for (const groups of this.#groups.values()) for (const group of groups.values()) clearTimeout(group.timer);
    this.#groups.clear();
    this.#alerts.clear();
    const byName = new Map(this.#receivers.map((receiver) => [receiver.name, receiver]));
    for (const item of stored) {
      const entry: AlertEntry = {
        key: item.notice.key,
        notice: item.notice,
        labels: alertLabels(item.notice),
        firing: item.firing,
        since: Date.parse(item.notice.startsAt) || this.#now(),
        mutedAs: '',
        resolvedTo: new Set(item.firing ? [] : (item.resolvedTo ?? [])),
      };
      this.#alerts.set(entry.key, entry);
      for (const [name, at] of Object.entries(item.sent)) {
        const receiver = byName.get(name);
        if (!receiver) continue;
        const group = this.#group(receiver, entry);
        group.members.add(entry.key);
        group.sent.set(entry.key, at);
        group.lastFlushAt = Math.max(group.lastFlushAt ?? 0, at);
        group.round = Math.max(group.round, item.rounds?.[name] ?? 0);
        if (item.acknowledgedTo?.includes(name)) group.acknowledged = true;
      }
      // A resolved one too: a receiver that never heard it fire is still told it once, as resolved,
      // as before the restart (a leader killed within the group wait left such a page untold).
      this.#route(entry, false);
      this.#expireAt(entry);
    }
    this.recheck();
  }

  /** Resolves once nothing is due now and no delivery is in flight. */
  async idle(): Promise<void> {
    if (this.#recheckQueued) this.recheck();
    for (;;) {
      const now = this.#now();
      for (const groups of this.#groups.values()) {
        for (const group of groups.values()) {
          if (group.dueAt !== undefined && group.dueAt <= now && !group.running) {
            clearTimeout(group.timer);
            this.#flush(group);
          }
        }
      }
      if (this.#inFlight.size === 0) return;
      await Promise.allSettled([...this.#inFlight]);
    }
  }

  /** Stops repeating, cancels deliveries in flight (each reported as failed) and waits for them to end. */
  async close(): Promise<void> {
    this.#shutdown.abort();
    for (const groups of this.#groups.values()) for (const group of groups.values()) clearTimeout(group.timer);
    for (const timer of this.#expiries.values()) clearTimeout(timer);
    this.#expiries.clear();
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  #groupsOf(receiver: AlertReceiver): Map<string, Group> {
    let groups = this.#groups.get(receiver);
    if (!groups) this.#groups.set(receiver, (groups = new Map()));
    return groups;
  }

  /** The group of `entry` at `receiver`, made when new. */
  #group(receiver: AlertReceiver, entry: AlertEntry): Group {
    const { key, labels } = this.#groupOf(entry);
    const groups = this.#groupsOf(receiver);
    let group = groups.get(key);
    if (!group) {
      group = {
        receiver,
        key,
        labels,
        members: new Set(),
        sent: new Map(),
        createdAt: this.#now(),
        lastFlushAt: undefined,
        urgentAt: undefined,
        escalation: undefined,
        acknowledged: false,
        round: 0,
        retryAt: undefined,
        failures: 0,
        timer: undefined,
        dueAt: undefined,
        running: undefined,
      };
      groups.set(key, group);
    }
    return group;
  }

  /** The group key and labels of an alert: its own key when ungrouped (the PagerDuty dedup_key of old). */
  #groupOf(entry: AlertEntry): { key: string; labels: Record<string, string> } {
    const by = this.#grouping.by;
    if (by.includes('...')) return { key: entry.key, labels: { ...entry.labels } };
    const labels: Record<string, string> = {};
    for (const name of by) labels[name] = Object.hasOwn(entry.labels, name) ? entry.labels[name]! : '';
    return {
      key: `{}:{${Object.entries(labels)
        .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
        .join(',')}}`,
      labels,
    };
  }

  /** Add a firing alert to the group of every receiver it may reach now. */
  #route(entry: AlertEntry, announce: boolean): void {
    const allowed = this.#policy.receivers(entry.notice);
    const receivers = this.#receivers.filter(
      (receiver) =>
        receiver.severities.includes(entry.notice.severity) && (allowed === 'all' || allowed.has(receiver.name)) && !entry.resolvedTo.has(receiver.name),
    );
    if (announce && receivers.length === 0) this.#logRouting(entry.notice);
    for (const receiver of receivers) {
      const group = this.#group(receiver, entry);
      const fresh = !group.members.has(entry.key) && !group.sent.has(entry.key);
      group.members.add(entry.key);
      if (
        fresh &&
        entry.notice.severity === 'critical' &&
        group.urgentAt === undefined &&
        ![...group.sent.keys()].some((key) => this.#alerts.get(key)?.notice.severity === 'critical')
      ) {
        group.urgentAt = this.#now() + this.#grouping.waitMs;
      }
    }
  }

  #logRouting(notice: AlertNotice): void {
    if (this.#receivers.some((receiver) => receiver.severities.includes(notice.severity))) return;
    this.#logger.debug({ key: notice.key, severity: notice.severity }, `no receiver takes ${notice.severity} alerts; ${notice.rule} not sent`);
  }

  /** What the group would say now, and whether that is news. */
  #content(group: Group): { firing: AlertEntry[]; resolved: AlertEntry[]; unseen: string[]; mutedSent: number; news: boolean } {
    const firingAll = [...this.#alerts.values()].filter((entry) => entry.firing);
    const firing: AlertEntry[] = [];
    const resolved: AlertEntry[] = [];
    const unseen: string[] = [];
    let mutedSent = 0;
    // While a delivery is in flight, what it carries is not yet in `sent`: nothing is dropped until it ends.
    const settled = group.running === undefined;
    for (const key of [...group.members]) {
      const entry = this.#alerts.get(key);
      if (!entry) {
        if (settled) {
          group.members.delete(key);
          group.sent.delete(key);
        }
        continue;
      }
      if (!entry.firing) {
        if (group.sent.has(key)) resolved.push(entry);
        // Fired and resolved before this receiver heard of it (a rollback that ended its incident at
        // once): it is still told, once, as resolved — a page is never lost — unless it was muted,
        // as it stood while it fired (`mutedAs`) or now. One muted to the end is forgotten here, and
        // in the store: a restart after the silence expired must not send it (regression: PagerDuty
        // was paged, trigger and resolve, for an incident silenced all along and over for a minute).
        else if (entry.mutedAs === '' && !this.#policy.muted(entry, firingAll)) {
          resolved.push(entry);
          unseen.push(entry.key);
        } else if (settled) {
          group.members.delete(key);
          this.#forgetDone([entry]);
        }
        continue;
      }
      const reason = this.#policy.muted(entry, firingAll);
      this.#reportMute(entry, reason);
      if (reason) {
        if (group.sent.has(key)) mutedSent++;
        continue;
      }
      firing.push(entry);
    }
    firing.sort((a, b) => RANK[b.notice.severity] - RANK[a.notice.severity] || a.since - b.since);
    const news = firing.some((entry) => !group.sent.has(entry.key)) || resolved.length > 0;
    return { firing, resolved, unseen, mutedSent, news };
  }

  #reportMute(entry: AlertEntry, reason: MuteReason | undefined): void {
    const as = reason ? JSON.stringify(reason) : '';
    if (as === entry.mutedAs) return;
    entry.mutedAs = as;
    try {
      this.#policy.onMuted?.(entry, reason);
    } catch (error) {
      this.#logger.error({ err: error, key: entry.key }, 'alert mute listener failed');
    }
  }

  /** When the group's firing alerts are due again: the shortest repeat interval of the unacknowledged ones after the last notification. */
  #repeatAt(group: Group, firing: readonly AlertEntry[]): number | undefined {
    if (group.lastFlushAt === undefined) return undefined;
    let interval: number | undefined;
    for (const entry of firing) {
      if (!group.sent.has(entry.key) || this.#policy.decorate(entry.notice).acknowledgedBy !== undefined) continue;
      const ms = entry.notice.repeatIntervalMs ?? this.#repeatIntervalMs;
      if (ms > 0 && (interval === undefined || ms < interval)) interval = ms;
    }
    return interval === undefined ? undefined : group.lastFlushAt + interval;
  }

  /** Set the group's timer to its next due moment: a change, an escalation, a repeat, or nothing. */
  #schedule(group: Group): void {
    if (this.#shutdown.signal.aborted) return;
    const now = this.#now();
    const { firing, news } = this.#content(group);
    let due: number | undefined;
    if (group.escalation && firing.length > 0) due = now;
    else if (news) {
      due = group.lastFlushAt === undefined ? group.createdAt + this.#grouping.waitMs : group.lastFlushAt + this.#grouping.intervalMs;
      if (group.urgentAt !== undefined) due = Math.min(due, group.urgentAt);
    }
    if (group.escalation && firing.length === 0) group.escalation = undefined;
    const repeat = this.#repeatAt(group, firing);
    if (repeat !== undefined && (due === undefined || repeat < due)) due = repeat;
    if (due !== undefined && group.retryAt !== undefined) due = Math.max(due, group.retryAt);
    const held = this.#heldUntil.get(group.receiver.name);
    if (due !== undefined && held !== undefined && held > due) due = held;
    if (due === undefined) {
      clearTimeout(group.timer);
      group.timer = undefined;
      group.dueAt = undefined;
      if (group.members.size === 0 && group.sent.size === 0) this.#groups.get(group.receiver)?.delete(group.key);
      return;
    }
    if (group.dueAt === due && group.timer) return;
    clearTimeout(group.timer);
    group.dueAt = due;
    // setTimeout takes at most 2^31 - 1 ms (a longer delay fires at once, and again, and again):
    // a flush that comes early finds nothing due and plans the rest.
    group.timer = setTimeout(() => this.#flush(group), Math.min(MAX_TIMER_MS, Math.max(0, due - now)));
    group.timer.unref();
  }

  /** Send what the group has to say now, if anything: news, an escalation, or a repeat that is due. */
  #flush(group: Group): void {
    group.timer = undefined;
    group.dueAt = undefined;
    if (this.#shutdown.signal.aborted || this.#groups.get(group.receiver)?.get(group.key) !== group) return;
    // Not the leader (any more): nothing goes out; the next leader sends what is owed from the shared records.
    if (!this.#acting()) return;
    // Another group's delivery met a 429 after this one was planned: it waits as long.
    if ((this.#heldUntil.get(group.receiver.name) ?? 0) > this.#now()) return this.#schedule(group);
    if (group.running) {
      // Looked at again when that delivery ends (#track): a repeat due meanwhile is not stacked up behind it.
      this.#logger.debug(
        { receiver: group.receiver.name, group: group.key },
        `notification of ${group.key} to ${group.receiver.name} skipped: the previous delivery is still under way`,
      );
      return;
    }
    const now = this.#now();
    const { firing, resolved, unseen, mutedSent, news } = this.#content(group);
    const repeatAt = this.#repeatAt(group, firing);
    const escalation = group.escalation && firing.length > 0 ? group.escalation : undefined;
    const repeat = !news && !escalation && repeatAt !== undefined && repeatAt <= now;
    if (!news && !escalation && !repeat) {
      this.#schedule(group);
      return;
    }
    group.escalation = undefined;
    // A group PagerDuty was told is acknowledged, and now an alert of it is not (one new to it, or
    // one whose acknowledgement timed out): a new round, so that it pages. A trigger under the
    // acknowledged incident's dedup_key would be folded into it, and tell nobody.
    if (group.acknowledged && firing.some((entry) => !group.sent.has(entry.key) || this.#policy.decorate(entry.notice).acknowledgedBy === undefined)) {
      group.round++;
      group.acknowledged = false;
    }
    const notice: AlertGroupNotice = {
      key: group.key,
      ...(group.round > 0 ? { round: group.round } : {}),
      labels: { ...group.labels },
      // Firing while the receiver was told of an alert that still fires, even muted: its resolution is still owed.
      status: firing.length > 0 || mutedSent > 0 ? 'firing' : 'resolved',
      alerts: [...firing, ...resolved].map((entry) => this.#policy.decorate(entry.notice)),
      repeat,
      ...(unseen.length > 0 ? { unseen } : {}),
      ...(escalation ? { escalation: { level: escalation.level, incidents: [...escalation.incidents] } } : {}),
    };
    const run = this.#deliver(group, notice, 'notify').then((outcome) => {
      // A refusal (a 4xx other than 408 and 429: a bad routing key, a payload the service rejects)
      // is final: the same notification would be refused again, so it is not retried (PagerDuty
      // asks as much); alert.failed and the log say why, and the group goes on as if it were sent.
      if (outcome === 'refused')
        this.#logger.error(
          { receiver: group.receiver.name, key: group.key },
          `${group.receiver.name} refused the notification for good; it is not sent again: fix the receiver's settings (see the alert.failed event)`,
        );
      if (outcome !== 'failed') {
        const at = this.#now();
        group.lastFlushAt = at;
        group.retryAt = undefined;
        group.failures = 0;
        group.urgentAt = undefined;
        if (firing.some((entry) => !group.sent.has(entry.key))) group.acknowledged = false;
        for (const entry of firing) group.sent.set(entry.key, at);
        for (const entry of resolved) {
          group.sent.delete(entry.key);
          group.members.delete(entry.key);
          this.#alerts.get(entry.key)?.resolvedTo.add(group.receiver.name);
        }
        for (const entry of [...firing, ...resolved]) this.#save(this.#alerts.get(entry.key) ?? entry);
        this.#forgetDone(resolved);
      } else {
        group.failures++;
        group.retryAt = this.#now() + Math.min(FAILED_RETRY_MS * 2 ** (group.failures - 1), FAILED_RETRY_MAX_MS);
        if (escalation) group.escalation = escalation;
      }
    });
    this.#track(group, run);
  }

  /** PagerDuty hears `acknowledge` once every firing alert it was told of in the group is acknowledged. */
  #acknowledgeIfDue(group: Group): void {
    if (!group.receiver.acknowledge || group.acknowledged || group.running || group.sent.size === 0 || !this.#acting()) return;
    const told = [...group.sent.keys()].map((key) => this.#alerts.get(key)).filter((entry): entry is AlertEntry => entry?.firing === true);
    if (told.length === 0 || told.some((entry) => this.#policy.decorate(entry.notice).acknowledgedBy === undefined)) return;
    group.acknowledged = true;
    const notice: AlertGroupNotice = {
      key: group.key,
      ...(group.round > 0 ? { round: group.round } : {}),
      labels: { ...group.labels },
      status: 'firing',
      alerts: told.map((entry) => this.#policy.decorate(entry.notice)),
      repeat: false,
    };
    const run = this.#deliver(group, notice, 'acknowledge').then((outcome) => {
      if (outcome === 'failed') group.acknowledged = false;
      else for (const entry of told) this.#save(this.#alerts.get(entry.key) ?? entry);
    });
    this.#track(group, run);
  }

  #track(group: Group, run: Promise<void>): void {
    group.running = run;
    this.#inFlight.add(run);
    void run.finally(() => {
      this.#inFlight.delete(run);
      group.running = undefined;
      this.#acknowledgeIfDue(group);
      this.#schedule(group);
    });
  }

  /** Alerts resolved and told to every receiver that heard them fire: forgotten. */
  #forgetDone(resolved: readonly AlertEntry[]): void {
    for (const entry of resolved) {
      const current = this.#alerts.get(entry.key);
      if (!current || current.firing) continue;
      let pending = false;
      for (const groups of this.#groups.values()) for (const group of groups.values()) if (group.members.has(entry.key)) pending = true;
      if (pending) continue;
      this.#alerts.delete(entry.key);
      if (kept(current.notice)) this.#persistence?.remove(entry.key);
    }
  }

  /** Arm the timer that resolves `entry` at its `expiresAt` (at once when that is past), replacing any armed for its key. */
  #expireAt(entry: AlertEntry): void {
    this.#disarm(entry.key);
    const expiresAt = entry.firing ? entry.notice.expiresAt : undefined;
    if (expiresAt === undefined) return;
    const timer = setTimeout(
      () => {
        this.#expiries.delete(entry.key);
        const current = this.#alerts.get(entry.key);
        if (!current?.firing || current.notice.expiresAt !== expiresAt) return;
        if (Date.parse(expiresAt) > this.#now()) return this.#expireAt(current);
        this.#logger.info(
          { key: entry.key, rule: entry.notice.rule, env: entry.notice.env, expiresAt },
          `alert ${entry.notice.rule} resolved: it reported a moment (${entry.notice.summary}) and was not raised again before ${expiresAt}`,
        );
        this.notify({ ...current.notice, status: 'resolved', endsAt: new Date(this.#now()).toISOString() });
      },
      // setTimeout takes at most 2^31 - 1 ms; a later expiry is re-armed when that fires.
      Math.min(MAX_TIMER_MS, Math.max(0, Date.parse(expiresAt) - this.#now())),
    );
    timer.unref();
    this.#expiries.set(entry.key, timer);
  }

  #disarm(key: string): void {
    clearTimeout(this.#expiries.get(key));
    this.#expiries.delete(key);
  }

  #save(entry: AlertEntry): void {
    if (!this.#persistence || !kept(entry.notice)) return;
    const sent: Record<string, number> = {};
    const rounds: Record<string, number> = {};
    const acknowledgedTo: string[] = [];
    for (const [receiver, groups] of this.#groups)
      for (const group of groups.values()) {
        const at = group.sent.get(entry.key);
        if (at !== undefined) sent[receiver.name] = at;
        if (group.round > 0 && group.members.has(entry.key)) rounds[receiver.name] = group.round;
        if (group.acknowledged && at !== undefined) acknowledgedTo.push(receiver.name);
      }
    this.#persistence.save({
      notice: entry.notice,
      firing: entry.firing,
      sent,
      ...(entry.resolvedTo.size > 0 ? { resolvedTo: [...entry.resolvedTo] } : {}),
      ...(Object.keys(rounds).length > 0 ? { rounds } : {}),
      ...(acknowledgedTo.length > 0 ? { acknowledgedTo } : {}),
    });
  }

  /**
   * One delivery to one receiver: sent, failed (tried again later) or refused for good (a 4xx
   * other than 408 and 429). Reported to onDelivery either way.
   */
  async #deliver(group: Group, notice: AlertGroupNotice, kind: AlertDelivery['kind']): Promise<'sent' | 'failed' | 'refused'> {
    // Awaiting defers the send past the caller: a receiver's synchronous work never delays it.
    await Promise.resolve();
    const { receiver } = group;
    let delivery: AlertDelivery;
    const first = notice.alerts[0]!;
    try {
      const result = await this.#send(receiver, notice, kind);
      delivery = {
        receiver,
        notice: first,
        group: notice,
        kind,
        ok: true,
        attempts: result.attempts,
        ...(result.status === undefined ? {} : { httpStatus: result.status }),
      };
    } catch (error) {
      delivery = { receiver, notice: first, group: notice, kind, ok: false, ...failureOf(error) };
    }
    if (delivery.retryAfterMs !== undefined) {
      const holdMs = Math.min(delivery.retryAfterMs, MAX_RATE_LIMIT_HOLD_MS);
      const until = this.#now() + holdMs;
      if (until > (this.#heldUntil.get(receiver.name) ?? 0)) this.#heldUntil.set(receiver.name, until);
      const asked = Math.ceil(delivery.retryAfterMs / 1_000);
      this.#logger.warn(
        { receiver: receiver.name, retryAfterMs: delivery.retryAfterMs, holdMs },
        holdMs === delivery.retryAfterMs
          ? `${receiver.name} is rate limited: nothing more is sent to it for ${asked}s, as it asked`
          : `${receiver.name} is rate limited and asks for ${asked}s: nothing more is sent to it for ${holdMs / 1_000}s, the longest greenlight holds pages back; then it is tried again`,
      );
    }
    try {
      this.#onDelivery(delivery);
    } catch (error) {
      this.#logger.error({ err: error, receiver: receiver.name, key: notice.key }, 'alert delivery listener failed');
    }
    if (delivery.ok) return 'sent';
    const status = delivery.httpStatus;
    return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429 ? 'refused' : 'failed';
  }

  async #send(receiver: AlertReceiver, notice: AlertGroupNotice, kind: AlertDelivery['kind']): Promise<{ attempts: number; status?: number }> {
    const signal = this.#shutdown.signal;
    if (kind === 'acknowledge') return receiver.acknowledge!(notice, signal);
    if (receiver.sendGroup) return receiver.sendGroup(notice, signal);
    // A receiver without group support hears each alert on its own, in order.
    let attempts = 0;
    let status: number | undefined;
    for (const alert of notice.alerts) {
      const result = await receiver.send(alert, signal);
      attempts += result.attempts;
      status = result.status;
    }
    return { attempts, ...(status === undefined ? {} : { status }) };
  }
}

function failureOf(error: unknown): { attempts: number; httpStatus?: number; retryAfterMs?: number; error: string } {
  const cause = error instanceof Error ? error.cause : undefined;
  const outbound = error instanceof OutboundError ? error : cause instanceof OutboundError ? cause : undefined;
  const attempts = error instanceof AlertError || error instanceof OutboundError ? error.attempts : 0;
  const message = error instanceof Error ? error.message : String(error);
  return {
    attempts,
    error: message,
    ...(outbound?.status === undefined ? {} : { httpStatus: outbound.status }),
    ...(outbound?.retryAfterMs === undefined ? {} : { retryAfterMs: outbound.retryAfterMs }),
  };
}

/**
 * What a delivery becomes for everyone else: an `alert.sent` or `alert.failed` event and the
 * greenlight_alerts_total count (the dispatcher's `onDelivery`). A grouped notification names its
 * rules and incidents; an escalation its level.
 */
export function publishDelivery(bus: Pick<EventBus, 'publish'>, metrics: Pick<AgentMetrics, 'countAlert'>): (delivery: AlertDelivery) => void {
  return (delivery) => {
    const { receiver, notice, group } = delivery;
    const rules = [...new Set(group.alerts.map((alert) => alert.rule))];
    const incidents = [...new Set(group.alerts.flatMap((alert) => (alert.incident ? [alert.incident] : [])))];
    const data = {
      receiver: receiver.name,
      receiverType: receiver.type,
      status: group.status,
      key: group.key,
      attempts: delivery.attempts,
      kind: delivery.kind,
      alerts: group.alerts.length,
      rules,
      incidents,
      escalationLevel: group.escalation?.level ?? null,
    };
    const scope = { env: group.labels.env || notice.env, rule: rules.length === 1 ? rules[0]! : null };
    const what =
      delivery.kind === 'acknowledge' ? 'acknowledgement' : `${group.escalation ? `escalation (level ${group.escalation.level}) ` : ''}${group.status} alert`;
    const about = group.alerts.length === 1 ? `"${notice.summary}"` : `of ${group.alerts.length} alerts (${rules.join(', ')})`;
    metrics.countAlert(receiver.name, group.status, delivery.ok ? 'sent' : 'failed');
    if (delivery.ok) {
      bus.publish({
        type: 'alert.sent',
        severity: 'info',
        ...scope,
        message: `${what} ${about} delivered to ${receiver.type} receiver ${receiver.name}`,
        data: { ...data, httpStatus: delivery.httpStatus ?? null },
      });
    } else {
      bus.publish({
        type: 'alert.failed',
        severity: 'warning',
        ...scope,
        message: `${receiver.type} receiver ${receiver.name} did not take the ${what} ${about}: ${delivery.error}`,
        data: { ...data, error: delivery.error ?? 'unknown' },
      });
    }
  };
}

/**
 * Whether the store keeps an alert across restarts: an incident's, one that expires, and one
 * marked `kept` (its resolution is owed to whoever heard it fire).
 */
function kept(notice: AlertNotice): boolean {
  return notice.incident !== undefined || notice.expiresAt !== undefined || notice.kept === true;
}

/**
 * Incidents and their escalation (CONTRACT.md, "Alert lifecycle"; PagerDuty's model). A rule's
 * incident (`live-universe-failing#3`) is taken by the first escalation policy whose matchers
 * match its labels. A policy is an ordered list of levels, each reached `after` a time since the
 * incident started and naming the receivers it notifies; after the last, `repeat` notifies that
 * level again while nobody has acknowledged. Acknowledging stops the escalation (until the
 * policy's acknowledgeTimeout, if it has one, re-triggers it); resolving stops everything.
 *
 * Invariants:
 * - Levels are reached one at a time, in order: none is skipped and none is reached twice. The
 *   next level is due its policy's gap after the previous one was reached, so an agent that was
 *   down across several levels catches up one level at a time, not with a burst.
 * - A level is recorded (persisted) before its notification is handed over: a crash right after
 *   loses at most that one notification, and never sends it again.
 * - Opening and resolving an incident write its record at the end of the current job (a
 *   microtask), not at once: they run while a rule's transition is published, and the rule's
 *   actions start in that same job, so the fsync no longer comes before a rollback (about 1 ms at
 *   the median, 4 ms at p99, on the decision path). Notifications go out from timers, so a level
 *   reached at opening is still on disk before its notification.
 */
import { codeOfStatus, GreenlightError } from '../../config/errors.js';
import type { EscalationPolicyConfig } from '../../config/schema.js';
import { compileMatchers, type LabelTest } from '../../config/matchers.js';

/** Resolved incidents the list keeps, the newest, for at most RESOLVED_KEPT_MS. */
export const RESOLVED_KEPT = 200;
export const RESOLVED_KEPT_MS = 7 * 86_400_000;

export type IncidentState = 'firing' | 'acknowledged' | 'resolved';

/** An incident as stored and as GET /api/v1/incidents shows it. */
export interface IncidentRecord {
  /** `rule#N` */
  id: string;
  rule: string;
  env: string;
  severity: 'warning' | 'critical';
  state: IncidentState;
  /** ISO-8601 */
  startedAt: string;
  /** The level reached: 0 before the first (or without a policy). */
  escalationLevel: number;
  acknowledgedBy: string | null;
  /** The escalation policy that took it, null for none. */
  policy: string | null;
  /** When the level was last reached or notified again (ISO-8601). */
  escalatedAt: string | null;
  /** When the next level (or repeat, or re-trigger) is due; null when nothing is. */
  nextEscalationAt: string | null;
  /** Notifications of the last level after it was reached (its `repeat`s). */
  repeats: number;
  acknowledgedAt: string | null;
  /** The acknowledger's comment. */
  comment: string | null;
  resolvedAt: string | null;
  /** The labels of its rule's alert: the policy matched on them. */
  labels: Record<string, string>;
}

/** What reaching a level means: notify these receivers of the incident's alerts. */
export interface Escalation {
  incident: IncidentRecord;
  level: number;
  /** Receiver names, or every receiver. */
  receivers: readonly string[] | 'all';
  /** `level`: a new level; `repeat`: the last level again; `retrigger`: the acknowledgement timed out. */
  kind: 'level' | 'repeat' | 'retrigger';
}

/** A refusal of an acknowledgement: its HTTP status and what to do. */
export class IncidentError extends GreenlightError {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(codeOfStatus(status), message);
  }
}

interface Policy {
  config: EscalationPolicyConfig;
  test: LabelTest;
}

export class EscalationBook {
  readonly #now: () => number;
  readonly #save: (record: IncidentRecord) => void;
  readonly #remove: (id: string) => void;
  #policies: Policy[] = [];
  readonly #incidents = new Map<string, IncidentRecord>();
  /** Incidents opened or resolved in this job, written as they stand at its end. */
  readonly #unsaved = new Set<string>();

  constructor(options: {
    now: () => number;
    policies: readonly EscalationPolicyConfig[];
    save: (record: IncidentRecord) => void;
    remove: (id: string) => void;
  }) {
    this.#now = options.now;
    this.#save = options.save;
    this.#remove = options.remove;
    this.configure(options.policies);
  }

  /** A reload's policies. Open incidents keep theirs by name; one whose policy is gone stops escalating. */
  configure(policies: readonly EscalationPolicyConfig[]): void {
    this.#policies = policies.map((config) => ({ config, test: compileMatchers(config.matchers) }));
    for (const record of this.#incidents.values()) {
      if (record.state === 'resolved') continue;
      const next = this.#nextDue(record);
      if (next !== record.nextEscalationAt) this.#store({ ...record, nextEscalationAt: next });
    }
  }

  /** The stored incidents, in place of those held (at start, or a cluster takeover). */
  restore(records: readonly IncidentRecord[]): void {
    this.#incidents.clear();
    this.#unsaved.clear();
    for (const record of records) this.#incidents.set(record.id, record);
  }

  get(id: string): IncidentRecord | undefined {
    return this.#incidents.get(id);
  }

  /** Open incidents first (oldest first), then the resolved ones, newest first. */
  list(): IncidentRecord[] {
    const all = [...this.#incidents.values()];
    const open = all.filter((record) => record.state !== 'resolved').sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    // Newest first; of those resolved at the same moment, the one resolved last (insertion order) first.
    const resolved = all
      .map((record, index) => ({ record, index }))
      .filter(({ record }) => record.state === 'resolved')
      .sort((a, b) => (b.record.resolvedAt ?? '').localeCompare(a.record.resolvedAt ?? '') || b.index - a.index)
      .map(({ record }) => record);
    return [...open, ...resolved];
  }

  /**
   * A rule's incident started: the policy that takes it, and level 1 at once when its first
   * level is due at 0s (its receivers then hear the incident through the usual grouping).
   * Opening one already known changes nothing (a resumed incident).
   */
  open(input: { id: string; rule: string; env: string; severity: 'warning' | 'critical'; labels: Record<string, string>; startedAt: number }): IncidentRecord {
    const known = this.#incidents.get(input.id);
    if (known && known.state !== 'resolved') return known;
    const policy = this.#policies.find((candidate) => candidate.test(input.labels))?.config;
    const immediate = policy !== undefined && policy.levels[0]!.after === 0;
    const started = new Date(input.startedAt).toISOString();
    const record: IncidentRecord = {
      id: input.id,
      rule: input.rule,
      env: input.env,
      severity: input.severity,
      state: 'firing',
      startedAt: started,
      escalationLevel: immediate ? 1 : 0,
      acknowledgedBy: null,
      policy: policy?.name ?? null,
      escalatedAt: immediate ? started : null,
      nextEscalationAt: null,
      repeats: 0,
      acknowledgedAt: null,
      comment: null,
      resolvedAt: null,
      labels: input.labels,
    };
    record.nextEscalationAt = this.#nextDue(record);
    this.#storeSoon(record);
    return record;
  }

  /** The receivers an incident's alerts may reach now: those of every level reached ('all' without a policy). */
  receivers(id: string): ReadonlySet<string> | 'all' {
    const record = this.#incidents.get(id);
    const policy = record && this.#policy(record);
    if (!record || !policy) return 'all';
    const names = new Set<string>();
    for (const level of policy.levels.slice(0, record.escalationLevel)) {
      if (level.receivers.includes('*')) return 'all';
      for (const name of level.receivers) names.add(name);
    }
    return names;
  }

  /** The next instant an escalation is due, if any. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const record of this.#incidents.values()) {
      if (record.nextEscalationAt === null) continue;
      const at = Date.parse(record.nextEscalationAt);
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /**
   * Take every escalation due now, one step per incident: the next level, a repeat of the last,
   * or a re-trigger after an acknowledgement timed out. Each is recorded before it is returned.
   */
  takeDue(): Escalation[] {
    const now = this.#now();
    const due: Escalation[] = [];
    for (const record of [...this.#incidents.values()]) {
      if (record.nextEscalationAt === null || Date.parse(record.nextEscalationAt) > now || record.state === 'resolved') continue;
      const policy = this.#policy(record);
      if (!policy) {
        this.#store({ ...record, nextEscalationAt: null });
        continue;
      }
      const stamp = new Date(now).toISOString();
      let next: IncidentRecord;
      let kind: Escalation['kind'];
      if (record.state === 'acknowledged') {
        next = { ...record, state: 'firing', acknowledgedBy: null, acknowledgedAt: null, escalatedAt: stamp };
        kind = 'retrigger';
      } else if (record.escalationLevel < policy.levels.length) {
        next = { ...record, escalationLevel: record.escalationLevel + 1, escalatedAt: stamp, repeats: 0 };
        kind = 'level';
      } else {
        next = { ...record, escalatedAt: stamp, repeats: record.repeats + 1 };
        kind = 'repeat';
      }
      next.nextEscalationAt = this.#nextDue(next);
      this.#store(next);
      const level = policy.levels[next.escalationLevel - 1];
      const receivers = level === undefined ? [] : level.receivers.includes('*') ? 'all' : level.receivers;
      due.push({ incident: next, level: next.escalationLevel, receivers, kind });
    }
    return due;
  }

  /** Acknowledge an open incident: its escalation stops. `already`: it was acknowledged before (the first acknowledgement stays). */
  acknowledge(id: string, by: string, comment: string | null): { incident: IncidentRecord; already: boolean } {
    const record = this.#incidents.get(id);
    if (!record)
      throw new IncidentError(404, `no incident ${JSON.stringify(id.slice(0, 100))}; GET /api/v1/incidents (greenlight ack with no argument) lists them`);
    if (record.state === 'resolved') throw new IncidentError(409, `${record.id} resolved at ${record.resolvedAt}: there is nothing left to acknowledge`);
    if (record.state === 'acknowledged') return { incident: record, already: true };
    const now = this.#now();
    const next: IncidentRecord = { ...record, state: 'acknowledged', acknowledgedBy: by, acknowledgedAt: new Date(now).toISOString(), comment };
    next.nextEscalationAt = this.#nextDue(next);
    this.#store(next);
    return { incident: next, already: false };
  }

  /** The rule's incident resolved: nothing more is due. Undefined for an unknown incident. */
  resolve(id: string): IncidentRecord | undefined {
    const record = this.#incidents.get(id);
    if (!record || record.state === 'resolved') return record;
    const next: IncidentRecord = { ...record, state: 'resolved', resolvedAt: new Date(this.#now()).toISOString(), nextEscalationAt: null };
    this.#storeSoon(next);
    this.#prune();
    return next;
  }

  /** How many incidents are firing and acknowledged (what the metrics show, without sorting the list). */
  counts(): { firing: number; acknowledged: number } {
    let firing = 0;
    let acknowledged = 0;
    for (const record of this.#incidents.values()) {
      if (record.state === 'firing') firing++;
      else if (record.state === 'acknowledged') acknowledged++;
    }
    return { firing, acknowledged };
  }

  /** Open incidents. */
  openIds(): string[] {
    return [...this.#incidents.values()].filter((record) => record.state !== 'resolved').map((record) => record.id);
  }

  #policy(record: IncidentRecord): EscalationPolicyConfig | undefined {
    return record.policy === null ? undefined : this.#policies.find((policy) => policy.config.name === record.policy)?.config;
  }

  /** When the incident's next step is due, from the moment its current level was reached. */
  #nextDue(record: IncidentRecord): string | null {
    const policy = this.#policy(record);
    if (!policy || record.state === 'resolved') return null;
    if (record.state === 'acknowledged') {
      return policy.acknowledgeTimeout > 0 && record.acknowledgedAt !== null
        ? new Date(Date.parse(record.acknowledgedAt) + policy.acknowledgeTimeout).toISOString()
        : null;
    }
    const level = record.escalationLevel;
    if (level === 0) return new Date(Date.parse(record.startedAt) + policy.levels[0]!.after).toISOString();
    const reached = Date.parse(record.escalatedAt ?? record.startedAt);
    if (level < policy.levels.length) return new Date(reached + policy.levels[level]!.after - policy.levels[level - 1]!.after).toISOString();
    return policy.repeat > 0 ? new Date(reached + policy.repeat).toISOString() : null;
  }

  #store(record: IncidentRecord): void {
    this.#incidents.set(record.id, record);
    this.#unsaved.delete(record.id);
    this.#save(record);
  }

  /** As #store, the write at the end of this job (see the invariants). */
  #storeSoon(record: IncidentRecord): void {
    this.#incidents.set(record.id, record);
    if (this.#unsaved.size === 0) queueMicrotask(() => this.#saveUnsaved());
    this.#unsaved.add(record.id);
  }

  /** Each incident as it stands now; one pruned meanwhile was removed, and is not written again. */
  #saveUnsaved(): void {
    for (const id of this.#unsaved) {
      const record = this.#incidents.get(id);
      if (record) this.#save(record);
    }
    this.#unsaved.clear();
  }

  /** Keep the newest RESOLVED_KEPT resolved incidents, none older than RESOLVED_KEPT_MS. */
  #prune(): void {
    const cutoff = this.#now() - RESOLVED_KEPT_MS;
    const resolved = this.list().filter((record) => record.state === 'resolved');
    resolved.forEach((record, index) => {
      if (index < RESOLVED_KEPT && Date.parse(record.resolvedAt ?? '') >= cutoff) return;
      this.#incidents.delete(record.id);
      this.#remove(record.id);
    });
  }
}

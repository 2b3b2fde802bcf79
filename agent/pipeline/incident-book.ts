/**
 * The incident book: each rule's open incident (the context its actions run with), what those
 * actions have done so far, and what the store keeps of them so that a restart goes on where it
 * stopped.
 *
 * - An incident is opened when its rule fires and closed when it resolves; the book is written
 *   through to the store at each change (and when an owed action changes).
 * - A rule's cooldown starts only from an incident that acted: one that switched traffic, or, for
 *   a rule without a rollback, one whose actions did something (not held, skipped or a dry run).
 * - After a restart an incident that was firing goes on firing without running its actions again;
 *   what it was still owed stays owed.
 */
import type { Logger } from 'pino';
import type { Config, RuleConfig } from '../../config/schema.js';
import type { ActionContext } from '../actions/action.js';
import type { ActionRunner } from '../actions/action-runner.js';
import type { GreenlightEvent } from '../events/events.js';

/** What the store keeps of a firing incident, to resolve it after a restart (and the actions still owed to it). */
export type StoredIncident = Pick<ActionContext, 'incident' | 'env' | 'severity' | 'message' | 'actor' | 'startedAt'> & {
  owed?: { action: string; since: number; reason: string }[];
};

/** What an open incident's actions did so far: its rule's cooldown starts only from one that acted. */
interface IncidentEffects {
  switched: boolean;
  succeeded: boolean;
}

export class IncidentBook {
  readonly #config: () => Config;
  readonly #actions: () => Pick<ActionRunner, 'owed' | 'owe'> | undefined;
  readonly #persist: (incidents: Record<string, StoredIncident>) => void;
  readonly #persistNumbers: (numbers: Record<string, number>) => void;
  readonly #logger: Logger;
  /**
   * The highest incident number each rule has used, kept durably (`incidentNumbers`): `rule#N`
   * names one incident for good — in the incidents API, a webhook's fingerprint, an ack, an
   * action's record — so a restart, or a rule removed and added back, never numbers from 1 again.
   */
  readonly #numbers = new Map<string, number>();
  /** The context of each rule's current incident, for its resolve step. */
  readonly #open = new Map<string, ActionContext>();
  /** What each open rule incident's actions did (for its rule's cooldown). */
  readonly #effects = new Map<string, IncidentEffects>();

  constructor(options: {
    config: () => Config;
    actions: () => Pick<ActionRunner, 'owed' | 'owe'> | undefined;
    persist: (incidents: Record<string, StoredIncident>) => void;
    persistNumbers: (numbers: Record<string, number>) => void;
    logger: Logger;
  }) {
    this.#config = options.config;
    this.#actions = options.actions;
    this.#persist = options.persist;
    this.#persistNumbers = options.persistNumbers;
    this.#logger = options.logger;
  }

  get(rule: string): ActionContext | undefined {
    return this.#open.get(rule);
  }

  /** The open incidents' contexts. */
  list(): ActionContext[] {
    return [...this.#open.values()];
  }

  /** Whether `incident` (`rule#N`) is open. */
  isOpen(incident: string): boolean {
    for (const context of this.#open.values()) if (context.incident === incident) return true;
    return false;
  }

  /** A rule fired: its incident is open from now on. */
  open(context: ActionContext): void {
    this.#open.set(context.rule!.name, context);
    this.#effects.set(context.incident, { switched: false, succeeded: false });
    if (this.#note(context.incident)) this.#persistNumbers(Object.fromEntries(this.#numbers));
    this.save();
  }

  /** The highest number each rule has used (what the rules number after: RuleEvaluator.numberAfter). */
  numbers(): ReadonlyMap<string, number> {
    return this.#numbers;
  }

  /** Take stored numbers (at start, or a cluster's takeover): never lower one already held. */
  seedNumbers(stored: Record<string, unknown>): void {
    for (const [rule, number] of Object.entries(stored)) {
      if (Number.isSafeInteger(number) && (number as number) > (this.#numbers.get(rule) ?? 0)) this.#numbers.set(rule, number as number);
    }
  }

  /** Count `rule#N` as used; true when it raised the rule's highest number. */
  #note(incident: string): boolean {
    const at = incident.lastIndexOf('#');
    const number = Number(incident.slice(at + 1));
    if (at <= 0 || !Number.isSafeInteger(number)) return false;
    const rule = incident.slice(0, at);
    if (number <= (this.#numbers.get(rule) ?? 0)) return false;
    this.#numbers.set(rule, number);
    return true;
  }

  /**
   * A rule resolved: its incident closes. Returns its context (for the resolve step) and whether
   * the rule's cooldown should start: only when the incident acted.
   */
  close(rule: RuleConfig, incident: string): { context: ActionContext | undefined; coolDown: boolean } {
    const context = this.#open.get(rule.name);
    this.#open.delete(rule.name);
    this.save();
    const effects = this.#effects.get(incident);
    this.#effects.delete(incident);
    if (rule.cooldown === 0 || !effects) return { context, coolDown: false };
    const rollsBack = rule.actions.some((name) => this.#config().actions[name]?.type === 'rollback');
    const acted = rollsBack ? effects.switched : effects.succeeded;
    if (!acted)
      this.#logger.info(
        { rule: rule.name, incident },
        `${incident} resolved without ${rollsBack ? 'a switch' : 'any action doing something'}: no cooldown for ${rule.name}`,
      );
    return { context, coolDown: acted };
  }

  /** Every event passes here: a switch or a successful action counts for its incident. */
  note(event: GreenlightEvent): void {
    if (event.type !== 'traffic.switched' && event.type !== 'action.succeeded') return;
    const effects = this.#effects.get(String(event.data.incident));
    if (!effects) return;
    if (event.type === 'traffic.switched') effects.switched = true;
    else if (!event.data.dryRun) effects.succeeded = true;
  }

  /** A reload changed rules: open incidents go on under the rule's new config. */
  rebind(rules: readonly RuleConfig[]): void {
    for (const [name, context] of this.#open) {
      const rule = rules.find((r) => r.name === name);
      if (rule) this.#open.set(name, { ...context, rule });
    }
    this.save();
  }

  /**
   * Pick up the incidents that were firing before a restart: `resume` tells the rule to go on
   * firing (false when the rule is gone); what each was still owed stays owed.
   */
  resume(stored: Record<string, StoredIncident>, resume: (rule: RuleConfig, incident: number, stored: StoredIncident) => boolean): void {
    for (const [rule, entry] of Object.entries(stored)) {
      const number = Number(entry.incident.split('#').pop());
      this.#note(entry.incident);
      const config = this.#config().rules.find((r) => r.name === rule);
      if (!config || !resume(config, number, entry)) continue;
      const { owed, ...kept } = entry;
      const context: ActionContext = { ...kept, rule: config, figures: null };
      this.#open.set(rule, context);
      this.#effects.set(entry.incident, { switched: false, succeeded: false });
      // What it was still owed stays owed: retried once it would go ahead, as before the restart (an
      // action renamed since goes on under its new name, or is dropped loudly: ActionRunner's sweep).
      for (const debt of owed ?? []) this.#actions()?.owe(debt.action, context, debt.reason, debt.since);
      this.#logger.warn(
        { rule, incident: entry.incident, owed: owed?.map((debt) => debt.action) },
        `${entry.incident} was firing before the restart: it goes on firing without repeating its actions${owed?.length ? `; still owed: ${owed.map((debt) => debt.action).join(', ')}` : ''}`,
      );
    }
    this.save();
  }

  /** Write the open incidents (with what each is still owed) through to the store. */
  save(): void {
    const incidents: Record<string, StoredIncident> = {};
    const owed = this.#actions()?.owed() ?? [];
    for (const [rule, context] of this.#open) {
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
    this.#persist(incidents);
  }
}

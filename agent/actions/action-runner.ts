/**
 * Runs actions for incidents: each action at most once per incident, in the background (a slow
 * action never holds up rule evaluation or the other actions), with every outcome published as
 * action.* events and counted in greenlight_actions_total.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events.js';
import type { AgentMetrics } from '../metrics.js';
import type { ActionRecord, StoredActionContext } from '../store.js';
import type { Action, ActionContext, ActionOutcome } from './action.js';

/** How many (incident, action) pairs to remember for the once-per-incident guarantee. */
const REMEMBERED = 10_000;

export class ActionRunner {
  #actions: ReadonlyMap<string, Action>;
  readonly #bus: EventBus;
  readonly #metrics: AgentMetrics;
  readonly #logger: Logger;
  readonly #dryRun: boolean;
  readonly #now: () => number;
  readonly #record: (record: ActionRecord) => void;
  readonly #done = new Set<string>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #shutdown = new AbortController();

  /** `record` writes the action journal: each action as started before it acts, then its outcome. */
  constructor(options: { actions: ReadonlyMap<string, Action>; bus: EventBus; metrics: AgentMetrics; logger: Logger; dryRun: boolean; now: () => number; record?: (record: ActionRecord) => void }) {
    this.#actions = options.actions;
    this.#bus = options.bus;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#dryRun = options.dryRun;
    this.#now = options.now;
    this.#record = options.record ?? (() => undefined);
  }

  /** The actions a reload configured; runs in flight finish with the instances they started with. */
  replaceActions(actions: ReadonlyMap<string, Action>): void {
    this.#actions = actions;
  }

  /** The action instances by name (a reload keeps those whose config did not change, with their cooldowns). */
  get actions(): ReadonlyMap<string, Action> {
    return this.#actions;
  }

  /** Start the named actions for a firing incident; returns at once. */
  fire(names: readonly string[], context: ActionContext): void {
    for (const name of names) {
      const key = `${context.incident}\u0000${name}`;
      if (this.#done.has(key)) continue;
      this.#remember(key);
      this.#track(this.run(name, context));
    }
  }

  /** Tell the named actions their incident resolved (alerts send a resolved notice). */
  resolve(names: readonly string[], context: ActionContext): void {
    for (const name of names) {
      const action = this.#actions.get(name);
      if (!action?.resolve) continue;
      this.#track(
        action.resolve(context, this.#shutdown.signal).then(
          (outcome) => outcome && this.#logger.info({ action: name, incident: context.incident }, outcome.outcome === 'succeeded' ? outcome.detail : 'resolve step did nothing'),
          (error: unknown) => this.#logger.error({ err: error, action: name, incident: context.incident }, `action ${name} failed while resolving`),
        ),
      );
    }
  }

  /** Run one action now and report its outcome (manual requests await this). */
  async run(name: string, context: ActionContext): Promise<ActionOutcome> {
    const action = this.#actions.get(name);
    if (!action) throw new Error(`bug: no action named ${name}`);
    const base = { action: name, type: action.type, incident: context.incident, dryRun: this.#dryRun };
    const scope = { env: context.env, rule: context.rule?.name ?? null };
    this.#bus.publish({ type: 'action.started', severity: 'info', ...scope, message: `${name} (${action.type}) started for ${context.incident}`, data: base });
    const started = this.#now();
    const record: ActionRecord = { incident: context.incident, action: name, type: action.type, state: 'started', context: storedContext(context), startedAt: started };
    if (!this.#dryRun) this.#record(record);
    const outcome = await this.#attempt(() => action.fire(context, this.#shutdown.signal));
    if (!this.#dryRun) this.#record({ ...record, state: outcome.outcome, finishedAt: this.#now(), detail: outcome.outcome === 'succeeded' ? outcome.detail : outcome.outcome === 'skipped' ? outcome.reason : outcome.error });
    this.#report(name, context, base, started, outcome);
    return outcome;
  }

  /**
   * Settle the actions a crash interrupted (recorded as started, never finished): each action
   * re-checks the world and completes or reports failure; none is repeated blindly. Every one
   * ends in an action.* event marked `reconciled`.
   */
  async reconcile(records: readonly ActionRecord[], contextOf: (stored: StoredActionContext) => ActionContext): Promise<void> {
    for (const record of records) {
      const context = contextOf(record.context);
      const action = this.#actions.get(record.action);
      const base = { action: record.action, type: record.type, incident: record.incident, dryRun: false, reconciled: true };
      const started = this.#now();
      this.#remember(`${record.incident}\u0000${record.action}`);
      const outcome: ActionOutcome = !action
        ? { outcome: 'failed', error: `interrupted by a restart, and no action named ${record.action} is configured any more: not run again` }
        : action.reconcile
          ? await this.#attempt(() => action.reconcile!(context, this.#shutdown.signal))
          : { outcome: 'failed', error: `interrupted by a restart after it started; a ${record.type} action may not be safe to run twice, so it is not repeated: check what it does by hand` };
      this.#logger.warn({ action: record.action, incident: record.incident, outcome: outcome.outcome }, `${record.action} for ${record.incident} was in flight when greenlight last stopped: ${outcome.outcome === 'succeeded' ? outcome.detail : outcome.outcome === 'skipped' ? outcome.reason : outcome.error}`);
      this.#record({ ...record, state: outcome.outcome, finishedAt: this.#now(), detail: outcome.outcome === 'succeeded' ? outcome.detail : outcome.outcome === 'skipped' ? outcome.reason : outcome.error });
      this.#report(record.action, context, base, started, outcome);
    }
  }

  async #attempt(act: () => Promise<ActionOutcome>): Promise<ActionOutcome> {
    try {
      return await act();
    } catch (error) {
      return { outcome: 'failed', error: (error as Error).message ?? String(error) };
    }
  }

  #report(name: string, context: ActionContext, base: Record<string, unknown> & { action: string; type: string; incident: string; dryRun: boolean }, started: number, outcome: ActionOutcome): void {
    const scope = { env: context.env, rule: context.rule?.name ?? null };
    const durationMs = this.#now() - started;
    if (outcome.outcome === 'succeeded') {
      this.#metrics.countAction(name, 'succeeded');
      this.#bus.publish({ type: 'action.succeeded', severity: 'info', ...scope, message: `${name}: ${outcome.detail}`, data: { ...base, ...outcome.data, durationMs, detail: outcome.detail } });
    } else if (outcome.outcome === 'skipped') {
      const wouldFire = outcome.data?.wouldFire === true;
      this.#metrics.countAction(name, wouldFire ? 'dry_run' : 'skipped');
      const severity = outcome.data?.judgement ? 'critical' : 'info';
      this.#bus.publish({ type: 'action.skipped', severity, ...scope, message: `${name} skipped: ${outcome.reason}`, data: { ...base, ...outcome.data, reason: outcome.reason } });
    } else {
      this.#metrics.countAction(name, 'failed');
      this.#bus.publish({ type: 'action.failed', severity: context.severity === 'critical' ? 'critical' : 'warning', ...scope, message: `${name} failed: ${outcome.error}`, data: { ...base, ...outcome.data, durationMs, error: outcome.error } });
    }
  }

  /** Resolves when no action is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Cancel what is running (adapters and receivers see the abort) and wait for it to end. */
  async close(): Promise<void> {
    this.#shutdown.abort();
    await this.idle();
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => this.#logger.error({ err: error }, 'bug: an action run threw')).finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  #remember(key: string): void {
    this.#done.add(key);
    if (this.#done.size > REMEMBERED) this.#done.delete(this.#done.values().next().value!);
  }
}

function storedContext(context: ActionContext): StoredActionContext {
  return { rule: context.rule?.name ?? null, incident: context.incident, env: context.env, severity: context.severity, message: context.message, actor: context.actor, startedAt: context.startedAt };
}

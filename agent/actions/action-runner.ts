/**
 * Runs actions for incidents: each action at most once per incident, in the background (a slow
 * action never holds up rule evaluation or the other actions), with every outcome published as
 * action.* events and counted in greenlight_actions_total.
 *
 * Owed actions: an outcome marked `data.owed` (a rule's rollback held or refused for a reason
 * that can pass) is kept, with its incident, while the incident is open. `retryOwed()` (the agent
 * calls it after each evaluation pass) asks each owed action whether it would now go ahead
 * (`ready`) and runs it again if so, as a retry of its incident: its action.* events carry
 * `retryOf`, `attempt`, `owedSince` and `heldBecause`. A retry that is held or refused again
 * stays owed and waits at least RETRY_BACKOFF_MS (doubling, up to RETRY_BACKOFF_MAX_MS) before the
 * next; the first retry after a hold waits for nothing but `ready`.
 *
 * Asking costs a judgement over every series of both environments (a rollback's `ready`), and
 * the agent asks after every sample: at 10,000 series that was 10,000 judgements a second over
 * 10,000 series each, and an incident with an owed rollback, when greenlight must stay quick,
 * stalled its probing (issue 18). So sweeps run at most one per SWEEP_SPACING_MS: the first ask
 * sweeps at once, and the asks that come during a sweep or the spacing after it are folded into
 * one sweep at its end.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events/events.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import type { ActionRecord, StoredActionContext } from '../events/store.js';
import type { Action, ActionContext, ActionOutcome } from './action.js';

/** How many (incident, action) pairs to remember for the once-per-incident guarantee. */
const REMEMBERED = 10_000;
/** The pause after a retry that did not go through, doubled per attempt up to the maximum. */
const RETRY_BACKOFF_MS = 1_000;
const RETRY_BACKOFF_MAX_MS = 60_000;
/** The least time between two sweeps of the owed actions (the rules' aggregate pass runs as often). */
export const SWEEP_SPACING_MS = 100;

/** An action an open incident is still owed. */
export interface OwedAction {
  action: string;
  incident: string;
  /** When it was first held or refused. */
  since: number;
  /** Retries run so far. */
  attempts: number;
  /** Why it did not happen, the last time it was tried. */
  reason: string;
  /** Why it does not go ahead now, as of the last sweep (null before the first). */
  waiting: string | null;
}

interface OwedEntry extends OwedAction {
  context: ActionContext;
  /** No retry before this (backoff after a retry that did not go through). */
  nextAt: number;
  running: boolean;
}

/** What a run is, when it retries an owed action. */
interface Retry {
  attempt: number;
  owedSince: number;
  heldBecause: string;
}

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
  /** The run of each action for each incident still under way, by `incident\0action`: a resolve waits for it. */
  readonly #running = new Map<string, Promise<unknown>>();
  /**
   * Runs that ended while this agent could not act (its acting deadline passed while they ran),
   * by `incident\0action`: their records stay "started" for the leader to settle, which may be
   * this agent again in the same term (`leftToLeader`).
   */
  readonly #leftToLeader = new Set<string>();
  readonly #shutdown = new AbortController();
  readonly #owed = new Map<string, OwedEntry>();
  readonly #isOpen: (incident: string) => boolean;
  readonly #onOwedChange: () => void;
  readonly #acting: () => boolean;
  readonly #claim: ((record: ActionRecord, retry: boolean) => Promise<string | undefined>) | undefined;
  readonly #ruleActions: ((rule: string) => readonly string[] | undefined) | undefined;
  /** The runs a crash left in flight (`incident\0action`), from the resume until reconcile() settles each. */
  readonly #unsettled = new Set<string>();
  /** A retry sweep is under way; `#sweepAgain` asks for one more after it and its spacing. */
  #sweeping = false;
  #sweepAgain = false;
  /** The spacing after the last sweep, while it lasts. */
  #spacing: NodeJS.Timeout | undefined;

  /**
   * `record` writes the action journal: each action as started before it acts, then its outcome.
   * `isOpen` says whether an incident still fires (owed actions of closed ones are dropped);
   * `onOwedChange` hears every change of what is owed (the agent stores it with the incidents).
   */
  constructor(options: {
    actions: ReadonlyMap<string, Action>;
    bus: EventBus;
    metrics: AgentMetrics;
    logger: Logger;
    dryRun: boolean;
    now: () => number;
    record?: (record: ActionRecord) => void;
    isOpen?: (incident: string) => boolean;
    onOwedChange?: () => void;
    /** Whether this agent acts (a cluster's leader; always, alone): a follower runs nothing. */
    acting?: () => boolean;
    /**
     * A cluster's fenced start record, in place of `record`'s: undefined to go ahead, or why not
     * (this agent no longer leads, or another started this action for this incident).
     */
    claim?: (record: ActionRecord, retry: boolean) => Promise<string | undefined>;
    /** The actions a rule lists in the config that runs now (a reload or a restart may have renamed one); undefined for no such rule. */
    ruleActions?: (rule: string) => readonly string[] | undefined;
  }) {
    this.#actions = options.actions;
    this.#bus = options.bus;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#dryRun = options.dryRun;
    this.#now = options.now;
    this.#record = options.record ?? (() => undefined);
    this.#isOpen = options.isOpen ?? (() => true);
    this.#onOwedChange = options.onOwedChange ?? (() => undefined);
    this.#acting = options.acting ?? (() => true);
    this.#claim = options.claim;
    this.#ruleActions = options.ruleActions;
  }

  /** The actions a reload configured; runs in flight finish with the instances they started with. */
  replaceActions(actions: ReadonlyMap<string, Action>): void {
    this.#actions = actions;
  }

  /** The action instances by name (a reload keeps those whose config did not change, with their state). */
  get actions(): ReadonlyMap<string, Action> {
    return this.#actions;
  }

  /** Whether a run of `name` for `incident` that this agent started is still under way. */
  isRunning(incident: string, name: string): boolean {
    return this.#running.has(runKey(incident, name));
  }

  /** Whether `record` is one of this agent's runs that ended while it could not act, and that nothing has settled since. */
  leftToLeader(record: Pick<ActionRecord, 'incident' | 'action'>): boolean {
    return this.#leftToLeader.has(runKey(record.incident, record.action));
  }

  /** Whether this agent started (or settled) one of `names` for `incident`: only a leader does, so it opened that incident as the leader. */
  startedHere(incident: string, names: readonly string[]): boolean {
    return names.some((name) => this.#done.has(runKey(incident, name)));
  }

  /** Start the named actions for a firing incident; returns at once. */
  fire(names: readonly string[], context: ActionContext): void {
    // A follower's incidents are acted on by the leader, or by this agent once it takes over.
    if (!this.#acting()) return;
    for (const name of names) {
      const key = runKey(context.incident, name);
      if (this.#done.has(key)) continue;
      this.#remember(key);
      void this.run(name, context);
    }
  }

  /**
   * A resumed incident's actions that no run recorded starting (`recorded` says which did): the
   * agent stopped between opening the incident and starting them (a kill -9 a few writes after the
   * rule fired), so they never ran, and resuming "without repeating its actions" would leave it
   * firing with no page and no safe mode. They start now; those with a record are not repeated
   * (one still in flight is settled by reconcile()).
   */
  fireUnrecorded(names: readonly string[], context: ActionContext, recorded: (incident: string, action: string) => boolean): void {
    const unrecorded = names.filter((name) => !recorded(context.incident, name));
    if (unrecorded.length > 0) this.fire(unrecorded, context);
  }

  /**
   * Tell the named actions their incident resolved (alerts send a resolved notice); nothing is owed
   * to it any more. An action whose run for the incident is still under way resolves after it: an
   * incident can end before its later actions start (a rollback that heals it while a cluster's
   * claim for the alert is still at the database), and a resolved notice that overtook its firing
   * one would leave that alert firing with nothing left to resolve it.
   */
  resolve(names: readonly string[], context: ActionContext): void {
    for (const name of names) {
      this.#forgive(name, context.incident, 'its incident resolved');
      const action = this.#actions.get(name);
      if (!action?.resolve || !this.#acting()) continue;
      // (Leadership may pass while a run is awaited: the new leader resolves what it resumed.)
      const resolveNow = async () => {
        if (!this.#acting()) return;
        await action.resolve!(context, this.#shutdown.signal).then(
          (outcome) =>
            outcome &&
            this.#logger.info({ action: name, incident: context.incident }, outcome.outcome === 'succeeded' ? outcome.detail : 'resolve step did nothing'),
          (error: unknown) => this.#logger.error({ err: error, action: name, incident: context.incident }, `action ${name} failed while resolving`),
        );
      };
      const running = this.#running.get(runKey(context.incident, name));
      this.#track(running ? running.then(resolveNow, resolveNow) : resolveNow());
    }
  }

  /**
   * Run one action now and report its outcome (manual requests await this). Every run is tracked,
   * an operator's too: the agent's stop waits for it to end, so what it raised and recorded on
   * its way out (a switch step cut short by the stop) reaches the alerts and the journal before they close.
   */
  run(name: string, context: ActionContext, retry?: Retry): Promise<ActionOutcome> {
    const key = runKey(context.incident, name);
    const running = this.#run(name, context, retry);
    this.#track(running);
    this.#running.set(key, running);
    const settled = () => {
      if (this.#running.get(key) === running) this.#running.delete(key);
    };
    running.then(settled, settled);
    return running;
  }

  async #run(name: string, context: ActionContext, retry?: Retry): Promise<ActionOutcome> {
    const action = this.#actions.get(name);
    if (!action) throw new Error(`bug: no action named ${name}`);
    const key = runKey(context.incident, name);
    this.#leftToLeader.delete(key);
    const base = { action: name, type: action.type, incident: context.incident, dryRun: this.#dryRun, ...(retry ? retryData(context.incident, retry) : {}) };
    const scope = { env: context.env, rule: context.rule?.name ?? null };
    const started = this.#now();
    const record: ActionRecord = {
      incident: context.incident,
      action: name,
      type: action.type,
      state: 'started',
      context: storedContext(context),
      startedAt: started,
      ...(action.effect === 'state' ? { effect: 'state' } : {}),
    };
    if (this.#claim && !this.#dryRun) {
      const refusal = await this.#claim(record, retry !== undefined);
      if (refusal !== undefined) {
        // Not done: whoever leads next (this agent too, once the store answers) may still run it.
        this.#done.delete(runKey(context.incident, name));
        const outcome: ActionOutcome = { outcome: 'skipped', reason: `not run by this agent: ${refusal}`, data: { fenced: true } };
        this.#logger.warn({ action: name, incident: context.incident }, outcome.reason);
        this.#report(name, context, base, started, outcome);
        return outcome;
      }
    }
    const what = retry
      ? `retry ${retry.attempt} of the ${name} held for ${context.incident} (owed since ${new Date(retry.owedSince).toISOString()}: ${retry.heldBecause})`
      : `${name} (${action.type}) started for ${context.incident}`;
    this.#bus.publish({ type: 'action.started', severity: 'info', ...scope, message: what, data: base });
    if (!this.#dryRun) this.#record(record);
    const outcome = await this.#attempt(() => action.fire(context, this.#shutdown.signal));
    if (outcome.outcome !== 'succeeded' && this.#claim && !this.#dryRun && !this.#acting()) {
      // Deposed while it ran (paused past its lease, cut off from the database): the leader settles
      // this action from the shared journal, and may have already. A failure seen from here (its own
      // probes overdue after a pause, a switch cut off with its lease) would contradict that, and
      // blame the target for what the pause did: said as what it is, and the record left as it was.
      const deposed: ActionOutcome = {
        outcome: 'skipped',
        reason: `this agent stopped leading while it ran (it ended: ${describeOutcome(outcome)}); the leader settles it from the shared journal`,
        data: { deposed: true, ended: outcome.outcome },
      };
      this.#leftToLeader.add(key);
      this.#report(name, context, base, started, deposed);
      return deposed;
    }
    if (outcome.outcome === 'failed' && this.#shutdown.signal.aborted && !this.#dryRun) {
      // Cut short by a stop (SIGTERM): what it did is as unknown as after a kill -9. Its record stays
      // "started", so the next start (or the next leader) settles it by looking, as it does a crash's;
      // recording "failed" let a switch that reached the traffic layer count as never made.
      const interrupted: ActionOutcome = {
        outcome: 'failed',
        error: `interrupted by the stop (${outcome.error}); the next start settles it by checking what it did`,
        data: { ...outcome.data, interrupted: true },
      };
      this.#report(name, context, base, started, interrupted);
      return interrupted;
    }
    if (!this.#dryRun) this.#record({ ...record, state: outcome.outcome, finishedAt: this.#now(), detail: describeOutcome(outcome) });
    this.#report(name, context, base, started, outcome);
    this.#settle(name, context, outcome);
    return outcome;
  }

  /** Register an action as owed to an open incident (after a restart, from the stored incidents). */
  owe(name: string, context: ActionContext, reason: string, since = this.#now()): void {
    const key = runKey(context.incident, name);
    if (this.#owed.has(key)) return;
    this.#owed.set(key, { action: name, incident: context.incident, context, since, attempts: 0, reason, waiting: null, nextAt: 0, running: false });
    this.#onOwedChange();
  }

  /** What open incidents are still owed, oldest first. */
  owed(): OwedAction[] {
    return [...this.#owed.values()].map(({ action, incident, since, attempts, reason, waiting }) => ({ action, incident, since, attempts, reason, waiting }));
  }

  /**
   * The runs a crash (or a stop) left in flight, as the resume read them from the journal, that
   * reconcile() will settle. Until it has, no owed action is retried: a retry judged on the first
   * samples after the start would send again a switch whose first attempt may have landed, which
   * only looking may decide (a rollback's reconcile). Each resume replaces the last one's list, as
   * the pipeline replaces the records it will reconcile (a new leader reads them afresh).
   */
  interrupted(records: readonly ActionRecord[]): void {
    this.#unsettled.clear();
    for (const record of records) this.#unsettled.add(runKey(record.incident, record.action));
  }

  /**
   * Retry the owed actions that would now go ahead. Returns at once; one sweep runs at a time,
   * each followed by SWEEP_SPACING_MS of spacing, and a call during either asks for one more
   * sweep after them. Nothing is retried while a run a crash interrupted is unsettled.
   */
  retryOwed(): void {
    if (this.#owed.size === 0 || this.#unsettled.size > 0 || !this.#acting()) return;
    if (this.#sweeping || this.#spacing !== undefined) {
      this.#sweepAgain = true;
      return;
    }
    this.#sweeping = true;
    this.#sweepAgain = false;
    this.#track(
      this.#sweep().finally(() => {
        this.#sweeping = false;
        // A timer, not a wait inside the tracked run: idle() means no action is running, and
        // samples keep asking while an action is owed.
        if (!this.#shutdown.signal.aborted) this.#spacing = setTimeout(this.#spacingOver, SWEEP_SPACING_MS);
      }),
    );
  }

  readonly #spacingOver = (): void => {
    this.#spacing = undefined;
    if (this.#sweepAgain) this.retryOwed();
  };

  async #sweep(): Promise<void> {
    for (const [key, entry] of [...this.#owed]) {
      if (this.#shutdown.signal.aborted || this.#unsettled.size > 0) return;
      if (this.#owed.get(key) !== entry || entry.running || this.#now() < entry.nextAt) continue;
      if (!this.#isOpen(entry.incident)) {
        this.#forgive(entry.action, entry.incident, 'its incident is no longer firing');
        continue;
      }
      const listed = entry.context.rule ? this.#ruleActions?.(entry.context.rule.name) : undefined;
      const action = listed && !listed.includes(entry.action) ? undefined : this.#actions.get(entry.action);
      if (!action?.ready) {
        this.#carryOver(key, entry, listed);
        continue;
      }
      if (!(await this.#ready(action, entry))) continue;
      if (this.#owed.get(key) !== entry || entry.running) continue;
      entry.running = true;
      entry.attempts++;
      try {
        await this.run(entry.action, entry.context, { attempt: entry.attempts, owedSince: entry.since, heldBecause: entry.reason });
      } finally {
        entry.running = false;
      }
    }
  }

  async #ready(action: Action, entry: OwedEntry): Promise<boolean> {
    try {
      const verdict = await action.ready!(entry.context);
      entry.waiting = verdict.go ? null : verdict.why;
      return verdict.go;
    } catch (error) {
      this.#logger.error(
        { err: error, action: entry.action, incident: entry.incident },
        `bug: ${entry.action} could not judge whether its owed run may go ahead`,
      );
      return false;
    }
  }

  /** After a run: an owed outcome keeps (or starts) the debt, anything else ends it. */
  #settle(name: string, context: ActionContext, outcome: ActionOutcome): void {
    const key = runKey(context.incident, name);
    const entry = this.#owed.get(key);
    const owed = outcome.outcome !== 'succeeded' && outcome.data?.owed === true && context.rule !== null && this.#isOpen(context.incident);
    if (!owed) {
      if (entry) {
        this.#owed.delete(key);
        this.#onOwedChange();
      }
      return;
    }
    const reason = describeOutcome(outcome);
    if (!entry) {
      this.#owed.set(key, {
        action: name,
        incident: context.incident,
        context,
        since: this.#now(),
        attempts: 0,
        reason,
        waiting: null,
        nextAt: 0,
        running: false,
      });
      this.#logger.warn(
        { action: name, incident: context.incident },
        `${name} for ${context.incident} is owed: it is retried while the incident fires, as soon as it would go ahead (${reason})`,
      );
    } else {
      entry.reason = reason;
      entry.nextAt = this.#now() + Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS * 2 ** Math.max(0, entry.attempts - 1));
    }
    this.#onOwedChange();
  }

  /**
   * An owed action whose name the running config no longer has for its rule (renamed by a reload,
   * or before a restart): the debt goes on with the rule's one action of the same kind that can
   * retry (a rollback renamed `rb` is still the incident's rollback). Without one it is dropped,
   * loudly: an incident still firing is no longer owed its rollback, and a person must know.
   */
  #carryOver(key: string, entry: OwedEntry, listed: readonly string[] | undefined): void {
    const type = 'rollback';
    const successors = (listed ?? []).filter((name) => name !== entry.action && this.#actions.get(name)?.type === type && this.#actions.get(name)?.ready);
    this.#owed.delete(key);
    if (successors.length === 1) {
      const [successor] = successors as [string];
      this.#owed.set(runKey(entry.incident, successor), { ...entry, action: successor, running: false, nextAt: 0 });
      this.#logger.warn(
        { action: successor, was: entry.action, incident: entry.incident },
        `${entry.action}, owed to ${entry.incident}, is no longer configured for its rule: the debt goes on as ${successor}, the rule's ${type} action now`,
      );
      this.#onOwedChange();
      this.retryOwed();
      return;
    }
    const why =
      successors.length === 0
        ? `no ${type} action of its rule is configured any more (renamed or removed by a reload or before a restart)`
        : `its rule now has ${successors.length} ${type} actions (${successors.join(', ')}), and greenlight does not guess which`;
    this.#logger.error(
      { action: entry.action, incident: entry.incident },
      `the ${entry.action} owed to ${entry.incident} is dropped: ${why}. The incident still fires: move traffic by hand (greenlight rollback) if it must`,
    );
    this.#bus.publish({
      type: 'action.failed',
      severity: 'critical',
      env: entry.context.env,
      rule: entry.context.rule?.name ?? null,
      message: `${entry.action} owed to ${entry.incident} dropped: ${why}; roll back by hand (greenlight rollback) if it must`,
      data: { action: entry.action, type, incident: entry.incident, dryRun: this.#dryRun, owedSince: entry.since, dropped: true, durationMs: 0, error: why },
    });
    this.#onOwedChange();
  }

  #forgive(name: string, incident: string, why: string): void {
    if (!this.#owed.delete(runKey(incident, name))) return;
    this.#logger.info({ action: name, incident }, `${name} for ${incident} is no longer owed: ${why}`);
    this.#onOwedChange();
  }

  /**
   * Settle the actions a crash interrupted (recorded as started, never finished): each action
   * re-checks the world and completes or reports failure; none is repeated blindly. Every one
   * ends in an action.* event marked `reconciled`.
   */
  async reconcile(records: readonly ActionRecord[], contextOf: (stored: StoredActionContext) => ActionContext): Promise<void> {
    for (const record of records) {
      try {
        await this.#reconcileOne(record, contextOf);
      } finally {
        // Settled, or failed to: either way it no longer holds back what is owed.
        this.#unsettled.delete(runKey(record.incident, record.action));
      }
    }
    // What is still owed (a switch found never made, held again) is judged from here on.
    this.retryOwed();
  }

  async #reconcileOne(record: ActionRecord, contextOf: (stored: StoredActionContext) => ActionContext): Promise<void> {
    const context = contextOf(record.context);
    const action = this.#actions.get(record.action);
    const base = { action: record.action, type: record.type, incident: record.incident, dryRun: false, reconciled: true };
    const started = this.#now();
    this.#remember(runKey(record.incident, record.action));
    this.#leftToLeader.delete(runKey(record.incident, record.action));
    const outcome: ActionOutcome = !action
      ? {
          outcome: 'failed',
          error: `interrupted (greenlight restarted, or another agent took the lead) and no action named ${record.action} is configured any more: not run again`,
        }
      : action.reconcile
        ? await this.#attempt(() => action.reconcile!(context, this.#shutdown.signal))
        : {
            outcome: 'failed',
            error: `interrupted after it started (greenlight restarted, or another agent took the lead); a ${record.type} action may not be safe to run twice, so it is not repeated: check what it does by hand`,
          };
    this.#logger.warn(
      { action: record.action, incident: record.incident, outcome: outcome.outcome },
      `${record.action} for ${record.incident} was in flight when greenlight last stopped: ${describeOutcome(outcome)}`,
    );
    // A record read back from a cluster's store does not say the action's effect: the action does.
    const effect = action?.effect === 'state' ? { effect: 'state' as const } : {};
    this.#record({ ...record, ...effect, state: outcome.outcome, finishedAt: this.#now(), detail: describeOutcome(outcome) });
    this.#report(record.action, context, base, started, outcome);
    this.#settle(record.action, context, outcome);
  }

  async #attempt(act: () => Promise<ActionOutcome>): Promise<ActionOutcome> {
    try {
      return await act();
    } catch (error) {
      return { outcome: 'failed', error: (error as Error).message ?? String(error) };
    }
  }

  #report(
    name: string,
    context: ActionContext,
    base: Record<string, unknown> & { action: string; type: string; incident: string; dryRun: boolean },
    started: number,
    outcome: ActionOutcome,
  ): void {
    const scope = { env: context.env, rule: context.rule?.name ?? null };
    const durationMs = this.#now() - started;
    const label = base.retryOf === undefined ? name : `${name} (retry ${String(base.attempt)} for ${context.incident})`;
    if (outcome.outcome === 'succeeded') {
      this.#metrics.countAction(name, 'succeeded');
      this.#bus.publish({
        type: 'action.succeeded',
        severity: 'info',
        ...scope,
        message: `${label}: ${outcome.detail}`,
        data: { ...base, ...outcome.data, durationMs, detail: outcome.detail },
      });
    } else if (outcome.outcome === 'skipped') {
      const wouldFire = outcome.data?.wouldFire === true;
      this.#metrics.countAction(name, wouldFire ? 'dry_run' : 'skipped');
      const severity = outcome.data?.judgement ? 'critical' : 'info';
      this.#bus.publish({
        type: 'action.skipped',
        severity,
        ...scope,
        message: `${label} skipped: ${outcome.reason}`,
        data: { ...base, ...outcome.data, reason: outcome.reason },
      });
    } else {
      this.#metrics.countAction(name, 'failed');
      this.#bus.publish({
        type: 'action.failed',
        severity: context.severity === 'critical' ? 'critical' : 'warning',
        ...scope,
        message: `${label} failed: ${outcome.error}`,
        data: { ...base, ...outcome.data, durationMs, error: outcome.error },
      });
    }
  }

  /** Resolves when no action is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Cancel what is running (adapters and receivers see the abort) and wait for it to end. */
  async close(): Promise<void> {
    this.#shutdown.abort();
    clearTimeout(this.#spacing);
    this.#spacing = undefined;
    await this.idle();
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise
      .catch((error: unknown) => this.#logger.error({ err: error }, 'bug: an action run threw'))
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  #remember(key: string): void {
    this.#done.add(key);
    if (this.#done.size > REMEMBERED) this.#done.delete(this.#done.values().next().value!);
  }
}

function describeOutcome(outcome: ActionOutcome): string {
  return outcome.outcome === 'succeeded' ? outcome.detail : outcome.outcome === 'skipped' ? outcome.reason : outcome.error;
}

/** One action for one incident: what is done, owed or running. */
function runKey(incident: string, name: string): string {
  return `${incident}\u0000${name}`;
}

function retryData(incident: string, retry: Retry): Record<string, unknown> {
  return { retryOf: incident, attempt: retry.attempt, owedSince: new Date(retry.owedSince).toISOString(), heldBecause: retry.heldBecause };
}

/** What the action journal keeps of a context (the rule by name). */
export function storedContext(context: ActionContext): StoredActionContext {
  return {
    rule: context.rule?.name ?? null,
    incident: context.incident,
    env: context.env,
    severity: context.severity,
    message: context.message,
    actor: context.actor,
    startedAt: context.startedAt,
  };
}

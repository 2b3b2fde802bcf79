/**
 * Traffic control: which environment is live, and every switch of it, whoever asks (a rule's
 * rollback, an operator, a promotion and its revert, a restart's reconciliation).
 *
 * Invariants:
 * - One switch at a time, and never during a reload: switches and reloads share one lock, held
 *   from the switch's verification through its record (a reload from reading the file through
 *   applying it), so no switch runs on an adapter or targets a reload is replacing.
 * - A switch moves traffic only from the environment still live when it gets the lock.
 * - Every switch verifies its target now, not from memory: the target's interval probes run again
 *   with the verification deadline; a probe without a complete answer by then, or a scheduled one
 *   overdue, is unknown, never up. A refusal is a value naming the check.
 * - What happened is recorded before anyone hears of it: the live environment is persisted, then
 *   `traffic.switched` is published, then the rules are judged again against the new live one.
 * - Every switch ends with its phase of steps (switching.steps: CDN purge, public TLS, public
 *   verify URL; switch-steps.ts), still under the lock, so no reload swaps a step's plugin and no
 *   other switch starts before the public address has caught up. The steps' report is part of the
 *   result; the switch itself is recorded before they run and stands whatever they find.
 * - Health as the rollbacks judge it: failing, unknown and passing-for, from the schedule's
 *   results and the last failed verification (which counts until the schedule reports again).
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { ProbeTarget } from '../../probes/http-probe.js';
import { ProbeCanceller } from '../../probes/probe-canceller.js';
import { describeFailure, type ProbeResult, type ReasonCode } from '../../probes/probe-result.js';
import type { ActionContext, EnvironmentHealth, SwitchPlan, SwitchResult, Verification, VerificationCheck } from '../actions/action.js';
import type { EventBus } from '../events/events.js';
import type { SeriesEntry, SeriesRegistry } from '../pipeline/series-registry.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { Exclusive } from './exclusive.js';
import type { SwitchStepRequest, SwitchSteps, SwitchStepsReport } from './switch-steps.js';
import { TrafficError, type SwitchOutcome, type TrafficAdapter } from './traffic-adapter.js';

/** The agent's parts traffic control reads (looked up when used). */
export interface TrafficHost {
  readonly config: Config;
  readonly bus: EventBus;
  readonly metrics: Pick<AgentMetrics, 'setActiveEnvironment'>;
  readonly now: () => number;
  /** When the agent started: no environment has passed for longer. */
  readonly startedAt: number;
}

export interface TrafficControlOptions {
  adapter: TrafficAdapter;
  live: string;
  series: Pick<SeriesRegistry, 'intervalEntriesOf'>;
  /** One probe run now (the agent's pool and clock), for the fresh verification. */
  probe: (target: ProbeTarget, canceller: ProbeCanceller) => Promise<ProbeResult>;
  /**
   * Write through to the store, under `key`: the live environment (`activeEnvironment`), when
   * rollbacks last moved traffic away from each environment (`rolledBackFrom`, epoch ms), the
   * switches sent to the adapter (`switchesSent`) and a switch whose steps are under way (`stepsPending`).
   */
  persist: (key: 'activeEnvironment' | 'rolledBackFrom' | 'switchesSent' | 'stepsPending', value: unknown) => void;
  /** After every recorded switch: the live environment is a new subject for the rules. */
  onSwitched: () => void;
  /** The phase after every switch (CDN purge, public TLS, public verify URL). */
  steps: Pick<SwitchSteps, 'run'>;
  logger: Logger;
  /**
   * The last check before the adapter (a cluster's: this agent still leads and `from` is still
   * live in the shared state): the fencing token the switch carries, or why it may not go.
   * Default: token 1, the one term of an agent alone, with the switch written down as sent
   * (`switchesSent`) before the adapter is called, as a cluster's fence writes it.
   */
  fence?: (
    from: string,
    to: string,
    incident: string,
    manual: boolean,
  ) => Promise<
    | { token: number; confirm?: (rolledBackFrom: Record<string, number> | undefined) => Promise<void>; abandon?: () => Promise<void>; signal?: AbortSignal }
    | { refused: string }
  >;
  /** Whether a switch for an incident ever got past its fence (a cluster's journal of switches); undefined when unknown. */
  switchSent?: (incident: string) => Promise<boolean | undefined>;
}

/** Switches an agent alone keeps written down as sent: far more than the interrupted actions one restart settles. */
const SENT_KEPT = 32;

export class TrafficControl {
  readonly #host: TrafficHost;
  readonly #options: TrafficControlOptions;
  #adapter: TrafficAdapter;
  #live: string;
  /** When #live became live, if in this agent's life (the rules count its window facts from then). */
  #liveSince: number | undefined;
  /** Held by every switch (verification through record) and every reload (read through apply). */
  readonly #lock = new Exclusive();
  /** When a rollback last moved traffic away from each environment (the anti-flap's "recently"). */
  readonly #rolledBackFrom = new Map<string, number>();
  /** When each environment last failed a probe or a fresh verification. */
  readonly #failedAt = new Map<string, number>();
  /** Each environment's last failed fresh verification: its probes count as it found them until they report again. */
  readonly #refuted = new Map<string, { at: number; failing: string[]; unknown: string[] }>();
  /**
   * An agent alone: the incidents whose switch reached the adapter (the newest SENT_KEPT), kept in
   * its store before each call. A restart that finds a switch unrecorded asks this: one never sent
   * did not move traffic, so its rollback is judged again rather than left to a person.
   * Undefined while the store had none (written by an older greenlight): then nobody can tell.
   */
  #sent: Map<string, number> | undefined = new Map();
  /**
   * A switch whose steps (switching.steps: purge, verify) had not finished when the agent last
   * stopped (a crash, or a stop that cut them short), kept in its store while they run: the next
   * start runs them again (resumeSteps) instead of leaving a CDN serving the old side unsaid.
   */
  #stepsPending: SwitchStepRequest | undefined;

  constructor(host: TrafficHost, options: TrafficControlOptions) {
    this.#host = host;
    this.#options = options;
    this.#adapter = options.adapter;
    this.#live = options.live;
  }

  get live(): string {
    return this.#live;
  }

  /** When the live environment became live, if that was after this agent started (a switch, or one it followed). */
  get liveSince(): number | undefined {
    return this.#liveSince;
  }

  get adapter(): TrafficAdapter {
    return this.#adapter;
  }

  /** What holds the switch lock (a switch or a reload), and how many wait for it. */
  get lock(): { holder: string | undefined; waiting: number } {
    return { holder: this.#lock.holder, waiting: this.#lock.waiting };
  }

  get switching(): boolean {
    return this.#lock.holder?.startsWith('switch') === true;
  }

  /**
   * Pick up the live environment the store kept (`activeEnvironment` in the config only applies to
   * a first start), and when rollbacks last moved traffic away from each environment: a restart (a
   * crash loop, say) inside the anti-flap's `cooldown` must not let traffic return before `settle`.
   */
  resume(store: { readonly path: string; get<T>(key: string): T | undefined; unfinishedActions(): readonly unknown[] }): void {
    this.resumeRolledBack(store.get<Record<string, unknown>>('rolledBackFrom'));
    const sent = store.get<Record<string, unknown>>('switchesSent');
    if (sent !== null && typeof sent === 'object')
      this.#sent = new Map(Object.entries(sent).filter((entry): entry is [string, number] => typeof entry[1] === 'number'));
    // None kept, and nothing interrupted to ask about: from here on every switch is written down.
    else if (store.unfinishedActions().length > 0) this.#sent = undefined;
    else {
      // Written now, empty: a crash during the very first switch must find the key (a store without it is an older greenlight's).
      this.#sent = new Map();
      this.#options.persist('switchesSent', {});
    }
    const pending = store.get<SwitchStepRequest | null>('stepsPending');
    this.#stepsPending = pending !== null && typeof pending === 'object' && typeof pending.to === 'string' ? pending : undefined;
    const live = store.get<string>('activeEnvironment');
    if (live === undefined) return;
    if (!Object.hasOwn(this.#host.config.environments, live)) {
      // A renamed environment: traffic may well still go where the store says.
      this.#options.logger.error(
        { stored: live, live: this.#live },
        `${store.path} says ${live} is live, but the config has no environment ${live} (renamed?): starting with ${this.#live} live as the config says. Traffic may still go to the environment that was ${live}: check the traffic layer, then move it with greenlight promote or greenlight rollback if needed`,
      );
      return;
    }
    if (live !== this.#live)
      this.#options.logger.warn(
        { live },
        `resuming with ${live} live, as stored in ${store.path} (activeEnvironment in the config only applies to a first start)`,
      );
    this.#live = live;
  }

  /**
   * When rollbacks last moved traffic away from each environment, as a store kept them (at start, or
   * a new cluster leader's takeover). A time ahead of the clock (it stepped back while greenlight was
   * down) counts as now: the anti-flap waits its whole `settle` rather than none.
   */
  resumeRolledBack(stored: Record<string, unknown> | undefined): void {
    if (stored === undefined || stored === null || typeof stored !== 'object') return;
    const now = this.#host.now();
    for (const [env, at] of Object.entries(stored)) {
      if (!Object.hasOwn(this.#host.config.environments, env) || typeof at !== 'number' || !Number.isFinite(at)) continue;
      this.#rolledBackFrom.set(env, Math.min(at, now));
    }
  }

  /** Run `task` (a reload) holding the switch lock: no switch runs meanwhile, none is cut short. */
  exclusive<T>(holder: string, task: () => Promise<T>): Promise<T> {
    if (this.#lock.holder) this.#options.logger.info({ holder: this.#lock.holder }, `${holder} waits for ${this.#lock.holder} to finish`);
    return this.#lock.run(holder, task);
  }

  /** A reload changed the adapter's block (called under the lock): the old one is closed. */
  async replaceAdapter(adapter: TrafficAdapter): Promise<void> {
    const old = this.#adapter;
    this.#adapter = adapter;
    await old.close?.();
  }

  /** A scheduled result came in: the passing streaks and failure times health is judged on. */
  noteResult(entry: SeriesEntry, result: ProbeResult, change: { up: boolean; wasUp: boolean | undefined } | undefined): void {
    if (!result.ok && entry.interval) this.#failedAt.set(entry.series.env, this.#host.now());
    // A passing streak from the first result on is no recovery: it counts as healthy since ever.
    if (!result.ok) entry.upSince = undefined;
    else entry.upSince ??= change?.wasUp === undefined && change?.up === true ? Number.NEGATIVE_INFINITY : result.startedAt;
  }

  rolledBackFromAt(env: string): number | undefined {
    return this.#rolledBackFrom.get(env);
  }

  /**
   * The environment the traffic layer serves now, when the adapter can tell; otherwise, for an
   * interrupted `incident`, the live one when the cluster's journal shows its switch never got
   * past the fence (so never reached the adapter).
   */
  async serving(signal: AbortSignal, incident?: string): Promise<string | undefined> {
    const current = await (this.#adapter.current?.(signal) ?? Promise.resolve(undefined));
    if (current !== undefined || incident === undefined) return current;
    const sent = this.#options.switchSent ? await this.#options.switchSent(incident) : this.#sent && this.#sent.has(incident);
    return sent === false ? this.#live : undefined;
  }

  /** An agent alone: write down that `incident`'s switch goes to the adapter now (undone when the adapter says it did not). */
  #localFence(incident: string): { token: number; abandon: () => Promise<void> } {
    const sent = (this.#sent ??= new Map());
    sent.delete(incident);
    sent.set(incident, this.#host.now());
    for (const oldest of sent.keys()) {
      if (sent.size <= SENT_KEPT) break;
      sent.delete(oldest);
    }
    this.#options.persist('switchesSent', Object.fromEntries(sent));
    return {
      token: 1,
      abandon: () => {
        sent.delete(incident);
        this.#options.persist('switchesSent', Object.fromEntries(sent));
        return Promise.resolve();
      },
    };
  }

  /**
   * Another agent of the cluster switched (or a new leader found the shared state): take its live
   * environment as this agent's, without publishing or persisting anything (the switch was).
   */
  follow(live: string): void {
    if (live === this.#live || !Object.hasOwn(this.#host.config.environments, live)) return;
    this.#options.logger.info({ live }, `${live} is live, as the cluster's shared state says`);
    this.#live = live;
    this.#liveSince = this.#host.now();
    this.#host.metrics.setActiveEnvironment(live, Object.keys(this.#host.config.environments));
    this.#options.onSwitched();
  }

  /** An environment's interval probes as last seen: a probe in flight past the verification deadline is unknown. */
  health(env: string): EnvironmentHealth {
    const now = this.#host.now();
    const deadline = this.#host.config.switching.verifyTimeout;
    const failing: string[] = [];
    const reasons: Record<string, ReasonCode> = {};
    const unknown: string[] = [];
    const unprobed: string[] = [];
    let asOf: number | null = Number.POSITIVE_INFINITY;
    let healthySince = Number.NEGATIVE_INFINITY;
    const refuted = this.#refuted.get(env);
    // Sets: an environment may have thousands of probes, as many failing in an incident.
    const refutedFailing = new Set(refuted?.failing);
    const refutedUnknown = new Set(refuted?.unknown);
    for (const entry of this.#options.series.intervalEntriesOf(env)) {
      const { probe } = entry.series;
      // A failed fresh verification is newer than what the schedule last saw, until the schedule reports again.
      const stale = refuted !== undefined && refuted.at > (entry.series.lastStartedAt ?? Number.NEGATIVE_INFINITY);
      if (entry.series.up === false || (stale && refutedFailing.has(probe))) {
        failing.push(probe);
        const reason = stale ? undefined : entry.series.lastReason;
        if (reason !== undefined) reasons[probe] = reason;
      } else {
        const refutedUnanswered = stale && refutedUnknown.has(probe);
        const overdue = entry.inFlightSince !== undefined && now - entry.inFlightSince > deadline;
        if (entry.series.up === undefined || refutedUnanswered || overdue) unknown.push(probe);
        // Not seen yet, through nothing the environment did: its first probe is in flight and not late,
        // or not due yet. One not in flight after a skipped tick is greenlight failing to probe it.
        const waiting = entry.inFlightSince !== undefined || entry.series.skipped === 0;
        if (entry.series.up === undefined && !refutedUnanswered && !overdue && waiting) unprobed.push(probe);
      }
      const startedAt = entry.series.lastStartedAt;
      asOf = startedAt === undefined || asOf === null ? null : Math.min(asOf, startedAt);
      healthySince = Math.max(healthySince, entry.upSince ?? Number.POSITIVE_INFINITY);
    }
    const healthy = failing.length === 0 && unknown.length === 0 && healthySince !== Number.POSITIVE_INFINITY;
    // A failed fresh verification counts as a failure too: passing time starts after it.
    const passingSince = Math.max(healthySince, this.#failedAt.get(env) ?? Number.NEGATIVE_INFINITY, this.#host.startedAt);
    return {
      healthy,
      failing,
      reasons,
      unknown,
      unprobed,
      passingForMs: healthy ? Math.max(0, now - passingSince) : 0,
      healthySince: healthy && Number.isFinite(healthySince) ? healthySince : null,
      asOf: asOf === Number.POSITIVE_INFINITY ? null : asOf,
    };
  }

  /**
   * Every switch, whoever asks: under the lock (after any reload or other switch in progress),
   * check that `plan.from` is still live, verify `plan.to` now, switch through the adapter,
   * record. What did not happen is a value; only a bug throws.
   */
  switch(plan: SwitchPlan, context: ActionContext, signal: AbortSignal): Promise<SwitchResult> {
    return this.exclusive(`switch ${plan.from} → ${plan.to} (${context.incident})`, async (): Promise<SwitchResult> => {
      const from = this.#live;
      if (from !== plan.from)
        return { switched: false, why: 'not-live', reason: `${plan.from} is no longer live (${from} is): another switch came first, nothing to do` };
      if (plan.to === from) return { switched: false, why: 'not-live', reason: `${plan.to} is already live` };
      const verification = await this.#verify(plan.to, signal);
      if (!verification.ok) {
        this.#options.logger.warn(
          { incident: context.incident, to: plan.to, checks: verification.checks },
          `switch ${from} → ${plan.to} refused: ${plan.to} failed its fresh verification: ${verification.summary}`,
        );
        return { switched: false, why: 'unverified', reason: `${plan.to} failed its fresh verification (${verification.summary})`, verification };
      }
      const fence = this.#options.fence
        ? await this.#options.fence(from, plan.to, context.incident, context.rule === null)
        : this.#localFence(context.incident);
      if ('refused' in fence) {
        this.#options.logger.warn({ incident: context.incident, to: plan.to }, `switch ${from} → ${plan.to} not made: ${fence.refused}`);
        return { switched: false, why: 'not-live', reason: fence.refused };
      }
      // A cluster's switch ends with the term that claimed it: a leader that lost its lease (paused,
      // cut off from the database) sends no retry, with a token a newer leader has outranked.
      const termEnded = 'signal' in fence ? fence.signal : undefined;
      // Cut off while the fence was being written (a slow database, a stop): nothing was sent, and
      // the claim is withdrawn, or every later leader would take it for a switch that may have landed.
      if (signal.aborted || termEnded?.aborted) {
        if ('abandon' in fence && fence.abandon) await fence.abandon();
        const why = termEnded?.aborted ? 'this agent lost the cluster lease' : 'the agent is stopping';
        return { switched: false, why: 'adapter', reason: `${why} before the switch ${from} → ${plan.to} was sent: traffic was not switched`, verification };
      }
      let outcome: SwitchOutcome;
      try {
        outcome = await this.#adapter.switchTo(
          { from, to: plan.to, reason: context.message, rule: context.rule?.name ?? null, incident: context.incident, fencingToken: fence.token },
          termEnded ? AbortSignal.any([signal, termEnded]) : signal,
        );
      } catch (error) {
        if (error instanceof TrafficError && error.notSent) {
          if ('abandon' in fence && fence.abandon) await fence.abandon();
          return { switched: false, why: 'adapter', reason: error.message, verification };
        }
        if (termEnded?.aborted) {
          // A request may have reached the traffic layer: the claim stays unconfirmed, and the next
          // leader does not switch on a guess (an operator's rollback settles it).
          const reason = `this agent lost the cluster lease while switching ${from} → ${plan.to}; the traffic layer may or may not have switched: check it, then greenlight rollback if ${from} still serves`;
          this.#options.logger.error({ incident: context.incident, to: plan.to, err: error }, reason);
          return { switched: false, why: 'adapter', reason, verification };
        }
        const reason = (error as Error).message ?? String(error);
        // The adapter failed, but may have moved traffic first and not back (its undo failed too).
        // Where the traffic layer can say, greenlight's live environment follows what it serves:
        // watching the other one as live would leave the environment users reach unguarded.
        const served = this.#adapter.current ? await this.#adapter.current(signal).catch(() => undefined) : undefined;
        if (served !== plan.to) {
          // The adapter's own failure says it did not switch; a call cut short by the stop may have landed.
          if (!signal.aborted && 'abandon' in fence && fence.abandon) await fence.abandon();
          return { switched: false, why: 'adapter', reason, verification };
        }
        outcome = { detail: `the adapter failed (${reason}), but the traffic layer serves ${plan.to}: recorded as switched`, data: { unverified: true } };
        this.#options.logger.error({ incident: context.incident, to: plan.to }, `switch ${from} → ${plan.to}: ${outcome.detail}`);
      }
      // A cluster records the new live environment before anyone hears of the switch, and with it
      // when a rollback left `from`: a leader killed a moment later must not take the anti-flap along.
      const leftAt = this.#host.now();
      const rolledBackFrom = plan.kind === 'rollback' ? { ...Object.fromEntries(this.#rolledBackFrom), [from]: leftAt } : undefined;
      if ('confirm' in fence && fence.confirm) await fence.confirm(rolledBackFrom);
      this.#record(from, plan.to, context, outcome, plan.kind, verification, leftAt);
      const steps = await this.#runSteps(stepRequest(from, plan.to, plan.kind, context), signal);
      if (!steps.ok)
        this.#options.logger.error(
          { incident: context.incident, to: plan.to, step: steps.failed?.name },
          `switched ${from} → ${plan.to}, but the step ${steps.failed?.name} after it failed: ${steps.failed?.reason}`,
        );
      return { switched: true, from, to: plan.to, detail: outcome.detail, data: outcome.data ?? {}, verification, steps };
    });
  }

  /** The steps after a switch, kept in the store as pending until they end (a stop that cut them short leaves them pending). */
  async #runSteps(request: SwitchStepRequest, signal: AbortSignal): Promise<SwitchStepsReport> {
    this.#options.persist('stepsPending', request);
    const report = await this.#options.steps.run(request, signal);
    if (!signal.aborted) this.#options.persist('stepsPending', null);
    return report;
  }

  /**
   * At start: the steps of a switch the agent stopped in the middle of (see #stepsPending) run
   * again, under the switch lock, for the live environment. A purge is safe to repeat; a verify
   * step asks the public address anew; one that fails raises switch-step-failed, after a promotion
   * too (the promotion that would have switched back is gone with the stop).
   */
  async resumeSteps(signal: AbortSignal): Promise<void> {
    const pending = this.#stepsPending;
    this.#stepsPending = undefined;
    if (!pending) return;
    if (pending.to !== this.#live) {
      this.#options.logger.warn(
        { incident: pending.incident },
        `the steps after the switch ${pending.from} → ${pending.to} did not finish, but ${this.#live} is live now: not run again`,
      );
      this.#options.persist('stepsPending', null);
      return;
    }
    await this.exclusive(`switch steps after a restart (${pending.incident})`, async () => {
      const report = await this.#runSteps({ ...pending, resumed: true }, signal);
      const what =
        report.steps.length === 0
          ? 'the config has none now: nothing run'
          : `run again: ${report.ok ? 'all passed' : `${report.failed?.name} failed (${report.failed?.reason})`}`;
      this.#options.logger.warn(
        { incident: pending.incident, to: pending.to },
        `the steps after the switch ${pending.from} → ${pending.to} (${pending.incident}) had not finished when greenlight stopped; ${what}`,
      );
    });
  }

  /**
   * Record a switch found already done in the traffic layer (after a crash), without switching
   * again; then run the steps after it (switching.steps) under the lock: the crash came before
   * they ran, so no CDN was purged for this switch. They run as at a start (`resumed`): no caller is
   * left to act on a failure, so one raises switch-step-failed. A stop that cuts them short leaves
   * them pending for the next start, as after any switch.
   */
  async adopt(to: string, context: ActionContext, detail: string, kind: SwitchPlan['kind'], signal: AbortSignal): Promise<void> {
    const from = this.#live;
    this.#record(from, to, context, { detail }, kind);
    await this.exclusive(`switch steps after an adopted switch (${context.incident})`, async () => {
      // Another switch came first: the steps after it ran for the environment now live.
      if (this.#live !== to) return;
      await this.#runSteps({ ...stepRequest(from, to, kind, context), resumed: true }, signal);
    });
  }

  /**
   * The target's interval probes, run now through the same runProbe path with the verification
   * deadline; a probe with no complete answer by then is unknown, and so is one whose scheduled run
   * is overdue. Nothing is recorded in the series: their windows sample the schedule.
   */
  async #verify(env: string, signal: AbortSignal): Promise<Verification> {
    const begin = performance.now();
    const deadline = this.#host.config.switching.verifyTimeout;
    const entries = this.#options.series.intervalEntriesOf(env);
    // The caller's signal (an action's, the promotion's) ends it at shutdown; a revert's never does.
    const canceller = ProbeCanceller.following(signal);
    const results = await Promise.all(
      entries.map((entry) => this.#options.probe({ ...entry.target, timeoutMs: Math.min(entry.target.timeoutMs, deadline) }, canceller)),
    ).finally(() => canceller.release());
    const checks: VerificationCheck[] = results.map((result) => ({
      probe: result.probe,
      // A probe the agent could not run (its own want of sockets) says nothing of the target.
      result: result.ok ? 'ok' : result.reason === 'timeout' || result.local !== undefined ? 'unknown' : 'failed',
      detail: result.ok ? 'ok' : describeFailure(result),
      durationMs: round(result.durationMs),
    }));
    const now = this.#host.now();
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

  #record(
    from: string,
    to: string,
    context: ActionContext,
    outcome: SwitchOutcome,
    kind: SwitchPlan['kind'],
    verification?: Verification,
    at = this.#host.now(),
  ): void {
    const { bus, metrics, config } = this.#host;
    this.#live = to;
    this.#liveSince = at;
    if (kind === 'rollback') {
      this.#rolledBackFrom.set(from, at);
      this.#options.persist('rolledBackFrom', Object.fromEntries(this.#rolledBackFrom));
    }
    this.#options.persist('activeEnvironment', to);
    metrics.setActiveEnvironment(to, Object.keys(config.environments));
    bus.publish({
      type: 'traffic.switched',
      severity: 'warning',
      env: to,
      rule: context.rule?.name ?? null,
      message: `live traffic switched ${from} → ${to} (${this.#adapter.type}): ${context.message}`,
      data: {
        from,
        to,
        adapter: this.#adapter.type,
        reason: context.message,
        incident: context.incident,
        detail: outcome.detail,
        dryRun: false,
        kind,
        verification: verification ? { durationMs: verification.durationMs, probes: verification.checks.length } : null,
      },
    });
    this.#options.onSwitched();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** What the steps after a switch are told of it. */
function stepRequest(from: string, to: string, kind: SwitchPlan['kind'], context: ActionContext): SwitchStepRequest {
  return { from, to, kind, incident: context.incident, reason: context.message, rule: context.rule?.name ?? null };
}

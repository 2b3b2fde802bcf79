/**
 * Health-gated promotion: move live traffic to the idle environment only after it has passed
 * every gate, then watch it.
 *
 *   window → (deploy) → preflight → probes (N rounds in a row) → load → switch → verify → watch
 *
 * Each step ends as a `promote.step` event with ✅/❌, its duration and the figures that decided
 * it. A gate that fails ends the promotion before the switch: traffic stays where it was. The
 * switch goes through the agent's own switch path (the switch lock, a fresh verification of the
 * target, the traffic adapter, `traffic.switched`, the stored live environment, metrics). A failed
 * verification switches straight back, verified the same way. During the watch the critical
 * rules and the rollback action do the reverting, as for any incident: the promotion's switch
 * ended every rule cooldown, and a promotion is no rollback, so nothing holds the revert to the
 * old environment back; the promotion reports the rollback and fails.
 *
 * Every switch ends with the steps after it (switching.steps: CDN purge, public TLS, public verify
 * URL), run by traffic control under the switch lock; their `switch.*` events are lines of the
 * promotion's output. A failed step after the forward switch fails the verify step, so the
 * promotion switches back as for any failed verification; the steps run again after that switch,
 * and if one fails then, the switch phase alerts (critical) and nothing switches again.
 *
 * The controller also runs the rollback validation after every rollback (`rollback.validated`).
 * It reads the agent's config at call time, never keeps it: the config may be reloaded.
 */
import type { Logger } from 'pino';
import { Agent as UndiciAgent } from '../../probes/undici-core.js';
import { GreenlightError } from '../../config/errors.js';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import { ProbeCompiler, runProbe } from '../../probes/http-probe.js';
import { ProbeCanceller } from '../../probes/probe-canceller.js';
import { describeFailure } from '../../probes/probe-result.js';
import type { RuleStatus } from '../../rules/rule-evaluator.js';
import { alertKey, type ActionContext, type Controller, type SwitchPlan, type SwitchResult } from '../actions/action.js';
import { storedContext } from '../actions/action-runner.js';
import type { ActionRecord } from '../events/store.js';
import { PROMOTION_SWITCH } from './promotion-switch.js';
import { ONE_OFF_ALERT_MS } from '../alerts/alert-receiver.js';
import type { EventBus, GreenlightEvent, PromoteStepData, PromoteStepName, RollbackValidatedEvent } from '../events/events.js';
import { judgeLoad, runLoadTest, summarizeLoad } from './load-test.js';
import { runCommand, tailLines } from '../plugins/run-command.js';
import { probeConnect } from '../pipeline/tls-trust.js';
import { decideWindow, type ReleaseKind } from './deploy-window.js';
import { deployAndFollow, RenderApi } from '../plugins/render-api.js';
import { validateRollback, type LiveResults, type ValidationReport } from './rollback-validation.js';
import type { SwitchStepsReport } from '../traffic/switch-steps.js';

/** What the promotion uses of the agent. The Agent satisfies it. */
export interface PromotionHost {
  readonly config: Config;
  /** Hides the config's secrets in what the target answers. */
  readonly redactor: Redactor;
  readonly bus: EventBus;
  readonly controller: Controller;
  readonly flags: { get(env: string): Readonly<Record<string, boolean>> };
  readonly rules: { statuses(): RuleStatus[] };
  readonly traffic: { readonly liveSince: number | undefined };
  /** The agent runs with --dry-run: it switches no traffic, so it starts no promotion. */
  readonly dryRun: boolean;
  /** `env`'s results in its probes' `windowMs` windows from `since` on (SlidingWindow.totals), and its probes with no result since. */
  resultsSince(env: string, windowMs: number, since: number): LiveResults;
  /** Write a record of the action journal (a switch: started before the adapter is asked, then its outcome). */
  recordAction(record: ActionRecord): void;
}

export interface PromoteRequest {
  to: string;
  emergency: boolean;
  reason: string | null;
  kind: ReleaseKind;
  /** Trigger a Render deploy of the target's service first. */
  deploy: boolean;
  /** Overrides promote.watch. */
  watchMs?: number | undefined;
  actor: string;
}

/** A line of a promotion's progress, as streamed to the CLI (NDJSON): the promote.* events, progress, and the result. */
export type PromoteLine =
  GreenlightEvent | { type: 'progress'; step: PromoteStepName; message: string; data?: Record<string, unknown> } | ({ type: 'result' } & PromoteResult);

export interface PromoteResult {
  ok: boolean;
  promotion: string;
  from: string;
  to: string;
  /** The live environment at the end. */
  live: string;
  switched: boolean;
  rolledBack: boolean;
  /** The agent stopped while the switch was with the traffic layer: whether traffic moved is unknown (the next start settles it). */
  interrupted?: boolean;
  /** The step that failed, and why (with the figure). */
  failedStep: PromoteStepName | null;
  reason: string | null;
  durationMs: number;
  steps: Omit<PromoteStepData, 'promotion'>[];
}

/** A request refused before it starts (unknown environment, already live, another in flight); `status` is the HTTP answer. */
export class PromoteRefused extends GreenlightError {
  readonly status: number;

  constructor(status: number, message: string) {
    super('GL_ERR_PROMOTE_REFUSED', message);
    this.status = status;
  }
}

interface StepOutcome {
  ok: boolean;
  detail: string;
  figures?: Record<string, unknown>;
}

const WATCH_PROGRESS_MS = 10_000;

/** The steps that check rather than act: one the agent's stop cut short did not pass. */
const CHECKS: ReadonlySet<PromoteStepName> = new Set(['deploy', 'preflight', 'probes', 'load', 'verify']);
/** How often a rollback's validation looks whether every probe of the new live environment has answered. */
const VALIDATION_POLL_MS = 250;

interface RunDeps {
  host: PromotionHost;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  logger: Logger;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
}

export class PromotionController {
  readonly #host: PromotionHost;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #logger: Logger;
  readonly #shutdown = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  readonly #unsubscribe: () => void;
  #current: PromotionRun | undefined;
  #sequence = 0;

  constructor(options: { host: PromotionHost; now: () => number; sleep: (ms: number, signal?: AbortSignal) => Promise<void>; logger: Logger }) {
    this.#host = options.host;
    this.#now = options.now;
    this.#sleep = options.sleep;
    this.#logger = options.logger;
    this.#unsubscribe = options.host.bus.subscribe((event) => {
      if (event.type !== 'traffic.switched' || !this.#host.config.promote.validateAfterRollback) return;
      // A promotion's own forward switch is not a rollback; everything else (rules, operators, a promotion's revert) is.
      if (String(event.data.incident ?? '').match(/^promote:[^:]+$/)) return;
      this.#track(this.#validateAfter(event));
    });
  }

  /** The promotion in flight, if any. */
  get current(): PromotionRun | undefined {
    return this.#current;
  }

  /** Start a promotion; throws PromoteRefused when it cannot start at all. */
  start(request: PromoteRequest): PromotionRun {
    const environments = this.#host.controller.environments();
    if (!environments.includes(request.to)) throw new PromoteRefused(400, `${request.to} is not an environment (${environments.join(', ')})`);
    const live = this.#host.controller.activeEnvironment();
    if (request.to === live) throw new PromoteRefused(409, `${request.to} is already live: nothing to promote`);
    if (this.#host.dryRun)
      throw new PromoteRefused(
        409,
        'the agent runs with --dry-run, which switches no traffic: promote through an agent without it (greenlight loadtest tries the load gate alone)',
      );
    if (this.#current) throw new PromoteRefused(409, `promotion ${this.#current.id} to ${this.#current.to} is in flight; wait for it to end`);
    if (this.#host.controller.switching()) throw new PromoteRefused(409, 'a traffic switch is in flight; try again in a moment');
    if (request.emergency && !request.reason?.trim()) throw new PromoteRefused(400, 'an emergency promotion needs a reason: it is recorded with the promotion');
    const id = `${new Date(this.#now()).toISOString().replace(/[-:]/g, '').slice(0, 15)}-${++this.#sequence}`;
    const run = new PromotionRun(id, live, request, {
      host: this.#host,
      now: this.#now,
      sleep: this.#sleep,
      logger: this.#logger,
      signal: this.#shutdown.signal,
    });
    this.#current = run;
    const finished = run.done.finally(() => {
      if (this.#current === run) this.#current = undefined;
    });
    this.#track(finished);
    return run;
  }

  /** Validate now (greenlight rollback validate): publishes `rollback.validated` and returns the report. */
  async validate(trigger: string): Promise<ValidationReport> {
    const live = this.#host.controller.activeEnvironment();
    const idle = this.#host.controller.environments().find((env) => env !== live)!;
    const dispatcher = new UndiciAgent({ connections: 2, connect: probeConnect(this.#host.config) });
    try {
      const now = this.#now();
      const since = this.#countsFrom(now);
      const report = await validateRollback({
        config: this.#host.config,
        redactor: this.#host.redactor,
        live,
        idle,
        flags: (env) => this.#host.flags.get(env),
        results: this.#host.resultsSince(live, this.#host.config.promote.validation.errorWindow, since),
        since,
        now,
        dispatcher,
        signal: this.#shutdown.signal,
      });
      const failed = report.checks.filter((c) => !c.ok);
      this.#host.bus.publish<RollbackValidatedEvent>({
        type: 'rollback.validated',
        severity: report.ok ? 'info' : 'critical',
        env: live,
        message: report.ok
          ? `rollback validated: ${live} is live and safe (${report.checks.map((c) => c.name).join(', ')} pass)`
          : `rollback validation failed on ${live}: ${failed.map((c) => c.detail).join('; ')}`,
        data: { ok: report.ok, live, idle, trigger, checks: report.checks },
      });
      return report;
    } finally {
      await dispatcher.destroy();
    }
  }

  /** Cancel a promotion in flight (the agent is stopping) and wait for it and any validation to end. */
  async close(): Promise<void> {
    this.#unsubscribe();
    this.#shutdown.abort();
    await Promise.allSettled([...this.#background]);
  }

  /** Where the error-ratio check starts counting: when the live environment went live, or `errorWindow` ago if that is later. */
  #countsFrom(now: number): number {
    return Math.max(now - this.#host.config.promote.validation.errorWindow, this.#host.traffic.liveSince ?? Number.NEGATIVE_INFINITY);
  }

  async #validateAfter(event: GreenlightEvent): Promise<void> {
    const { settle, errorWindow } = this.#host.config.promote.validation;
    const signal = this.#shutdown.signal;
    await this.#sleep(settle, signal);
    // Then until every probe of the environment now live has answered since it went live (at
    // most errorWindow after the switch): its error ratio is judged on those results alone.
    const live = this.#host.controller.activeEnvironment();
    const until = this.#now() + errorWindow - settle;
    while (!signal.aborted && this.#now() < until && this.#host.resultsSince(live, errorWindow, this.#countsFrom(this.#now())).unanswered.length > 0)
      await this.#sleep(VALIDATION_POLL_MS, signal);
    if (signal.aborted) return;
    await this.validate(`traffic.switched #${event.id}`).catch((error: unknown) =>
      this.#logger.error({ err: error }, `rollback validation failed to run: ${(error as Error).message}`),
    );
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => undefined).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }
}

/** One promotion: its progress lines (kept, and told to listeners as they come) and its result. */
export class PromotionRun {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly done: Promise<PromoteResult>;
  /** The environment this promotion switched to, from the switch until its watch ends (the promotionWatch fact). */
  watchingEnv: string | undefined;
  readonly lines: PromoteLine[] = [];
  readonly #listeners = new Set<(line: PromoteLine) => void>();
  readonly #request: PromoteRequest;
  readonly #deps: RunDeps;
  readonly #steps: Omit<PromoteStepData, 'promotion'>[] = [];
  #switched = false;
  /** The agent stopped while the switch was with the traffic layer. */
  #interrupted = false;
  #switchedAt = 0;
  /** Traffic leaving the new environment (a rule's rollback, an operator), heard from the switch on: it may come before the watch starts. */
  #left: GreenlightEvent | undefined;
  #stopHearingLeave: (() => void) | undefined;
  #stopHearingSteps: (() => void) | undefined;
  /** What the steps after the forward switch found. */
  #afterSwitch: SwitchStepsReport | undefined;
  /** The forward switch's journal outcome, written once its verification has concluded (#closeForward). */
  #forwardRecord: ActionRecord | undefined;
  /** The target's address the gates ran against (a reload may change it before the switch). */
  readonly #gatedUrl: string | undefined;

  constructor(id: string, from: string, request: PromoteRequest, deps: RunDeps) {
    this.id = id;
    this.from = from;
    this.to = request.to;
    this.#request = request;
    this.#deps = deps;
    this.#gatedUrl = deps.host.config.environments[request.to]?.url;
    this.done = this.#run();
  }

  /** Hear every line from the start (those already emitted first); returns the unsubscribe. */
  listen(listener: (line: PromoteLine) => void): () => void {
    for (const line of this.lines) listener(line);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Whether the switch has happened (a --no-wait caller may leave then). */
  get switched(): boolean {
    return this.#switched;
  }

  #emit(line: PromoteLine): void {
    this.lines.push(line);
    for (const listener of this.#listeners) listener(line);
  }

  #progress(step: PromoteStepName, message: string, data?: Record<string, unknown>): void {
    this.#emit({ type: 'progress', step, message, ...(data ? { data } : {}) });
  }

  get #config(): Config {
    return this.#deps.host.config;
  }

  async #run(): Promise<PromoteResult> {
    const { host, now } = this.#deps;
    const started = now();
    const request = this.#request;
    const watchMs = request.watchMs ?? this.#config.promote.watch;
    const base = { promotion: this.id, from: this.from, to: this.to };
    this.#emit(
      host.bus.publish({
        type: 'promote.started',
        severity: 'info',
        env: this.to,
        message: `promotion ${this.id}: ${this.from} → ${this.to} (${request.kind}${request.emergency ? ', emergency' : ''}) by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`,
        data: { ...base, kind: request.kind, emergency: request.emergency, reason: request.reason, actor: request.actor, deploy: request.deploy, watchMs },
      }),
    );
    const dispatcher = new UndiciAgent({ keepAliveTimeout: 10_000, connections: 8, connect: probeConnect(this.#config) });
    let failure: { step: PromoteStepName; reason: string; rolledBack: boolean } | undefined;
    try {
      const gates: [PromoteStepName, () => Promise<StepOutcome>][] = [
        ['window', async () => this.#window()],
        ...(request.deploy ? ([['deploy', () => this.#deploy()]] as [PromoteStepName, () => Promise<StepOutcome>][]) : []),
        ['preflight', () => this.#preflight()],
        ['probes', () => this.#probeRounds(dispatcher, this.#config.promote.healthyRounds, 'probes')],
        ...(this.#config.promote.load.enabled ? ([['load', () => this.#load()]] as [PromoteStepName, () => Promise<StepOutcome>][]) : []),
        ['switch', () => this.#switch()],
      ];
      for (const [name, gate] of gates) {
        const outcome = await this.#step(name, gate);
        if (!outcome.ok) {
          failure = { step: name, reason: outcome.detail, rolledBack: false };
          break;
        }
      }
      if (!failure) {
        const verified = await this.#step('verify', () => this.#verify(dispatcher));
        if (!verified.ok) {
          const reverted = await this.#step('revert', () => this.#revert(verified.detail));
          failure = { step: 'verify', reason: verified.detail, rolledBack: reverted.ok };
        }
        this.#closeForward();
      }
      if (!failure) {
        const watched = await this.#step('watch', () => this.#watch(watchMs));
        if (!watched.ok) failure = { step: 'watch', reason: watched.detail, rolledBack: host.controller.activeEnvironment() !== this.to };
      }
    } finally {
      this.watchingEnv = undefined;
      this.#stopHearingLeave?.();
      this.#stopHearingSteps?.();
      await dispatcher.destroy();
    }

    const durationMs = now() - started;
    const live = host.controller.activeEnvironment();
    const steps = this.#steps.map(({ figures: _figures, ...rest }) => rest);
    if (failure) {
      this.#emit(
        host.bus.publish({
          type: 'promote.failed',
          severity: this.#switched ? 'critical' : 'warning',
          env: this.to,
          message: `promotion ${this.id} to ${this.to} failed at ${failure.step}: ${failure.reason}; ${live} is live${failure.rolledBack ? ' (rolled back)' : ''}`,
          data: { ...base, durationMs, step: failure.step, reason: failure.reason, switched: this.#switched, rolledBack: failure.rolledBack, live, steps },
        }),
      );
    } else {
      this.#emit(
        host.bus.publish({
          type: 'promote.succeeded',
          severity: 'info',
          env: this.to,
          message: `promotion ${this.id}: ${this.to} is live and held through the ${formatDuration(watchMs)} watch`,
          data: { ...base, durationMs, steps },
        }),
      );
    }
    const result: PromoteResult = {
      ok: !failure,
      ...base,
      live,
      switched: this.#switched,
      rolledBack: failure?.rolledBack ?? false,
      ...(this.#interrupted ? { interrupted: true } : {}),
      failedStep: failure?.step ?? null,
      reason: failure?.reason ?? null,
      durationMs,
      steps: this.#steps,
    };
    this.#emit({ type: 'result', ...result });
    return result;
  }

  async #step(step: PromoteStepName, gate: () => Promise<StepOutcome>): Promise<StepOutcome> {
    const { host, now } = this.#deps;
    const started = now();
    let outcome: StepOutcome;
    if (this.#deps.signal.aborted) outcome = { ok: false, detail: 'the agent is stopping' };
    else {
      try {
        outcome = await gate();
      } catch (error) {
        outcome = { ok: false, detail: (error as Error).message };
      }
      // A check the stop cut short passed nothing (a load gate of 21 of its 60 requests): it is
      // not journaled as passed. What did happen (the switch, a revert) stays as it was.
      if (outcome.ok && this.#deps.signal.aborted && CHECKS.has(step))
        outcome = { ok: false, detail: `the agent stopped during the ${step} check, before it finished`, figures: outcome.figures ?? {} };
    }
    const data: PromoteStepData = {
      promotion: this.id,
      step,
      ok: outcome.ok,
      durationMs: now() - started,
      detail: outcome.detail,
      figures: outcome.figures ?? {},
    };
    const { promotion: _promotion, ...kept } = data;
    this.#steps.push(kept);
    this.#emit(
      host.bus.publish({
        type: 'promote.step',
        severity: outcome.ok ? 'info' : this.#switched ? 'critical' : 'warning',
        env: this.to,
        message: `${outcome.ok ? '✅' : '❌'} ${step}: ${outcome.detail}`,
        data,
      }),
    );
    return outcome;
  }

  #window(): StepOutcome {
    const request = this.#request;
    const decision = decideWindow(this.#config.deployWindows, this.#config.timezone, request.kind, this.#deps.now());
    const figures = {
      kind: decision.kind,
      localTime: decision.localTime,
      window: decision.window,
      nextOpen: decision.nextOpen,
      emergency: request.emergency,
      reason: request.reason,
    };
    if (decision.open) return { ok: true, detail: decision.detail, figures };
    if (request.emergency) return { ok: true, detail: `${decision.detail}; allowed as an emergency: ${request.reason}`, figures };
    return { ok: false, detail: `${decision.detail}. Outside a window only --emergency --reason TEXT promotes`, figures };
  }

  async #deploy(): Promise<StepOutcome> {
    const render = this.#config.render;
    const dispatcher = new UndiciAgent({ connections: 2 });
    try {
      const api = new RenderApi(
        render,
        { dispatcher, sleep: this.#deps.sleep, logger: this.#deps.logger, redactor: this.#deps.host.redactor },
        this.#deps.signal,
      );
      const serviceId = api.serviceOf(this.to);
      const deploy = await deployAndFollow(api, serviceId, {
        pollIntervalMs: render.pollInterval,
        timeoutMs: render.deployTimeout,
        now: this.#deps.now,
        sleep: this.#deps.sleep,
        signal: this.#deps.signal,
        onStatus: ({ deploy: d, elapsedMs }) =>
          this.#progress('deploy', `Render deploy ${d.id} of ${this.to} (${serviceId}): ${d.status} after ${Math.round(elapsedMs / 1_000)}s`, {
            deploy: d.id,
            status: d.status,
          }),
      });
      return {
        ok: true,
        detail: `Render deploy ${deploy.id} of ${this.to} is live (${deploy.statuses.join(' → ')})`,
        figures: { service: serviceId, deploy: deploy.id, commit: deploy.commit, statuses: deploy.statuses },
      };
    } finally {
      await dispatcher.destroy();
    }
  }

  async #preflight(): Promise<StepOutcome> {
    const promote = this.#config.promote;
    const passed: string[] = [];
    const figures: Record<string, unknown> = {};
    // A critical rule still firing cannot fire again when the target degrades in the watch, so
    // the fast revert would never come: promoting in the middle of an incident is an emergency.
    const firing = this.#deps.host.rules
      .statuses()
      .filter((rule) => rule.state === 'firing' && rule.severity === 'critical')
      .map((rule) => rule.rule);
    figures.criticalFiring = firing;
    if (firing.length > 0 && !this.#request.emergency) {
      return {
        ok: false,
        detail: `critical rules are firing (${firing.join(', ')}): a rollback in the watch could not fire again for them; resolve the incident first, or promote with --emergency --reason`,
        figures,
      };
    }
    if (firing.length > 0) passed.push(`critical rules firing (${firing.join(', ')}), allowed as an emergency`);
    const holding = await this.#criticalHolding();
    figures.criticalHolding = holding.rules;
    if (holding.rules.length > 0 && !this.#request.emergency) return { ok: false, detail: holding.detail, figures };
    if (holding.rules.length > 0) passed.push(`${holding.detail}, allowed as an emergency`);
    if (promote.requireProtection) {
      const on = this.#deps.host.flags.get(this.to).ALPHASTACK_PROTECTION === true;
      figures.ALPHASTACK_PROTECTION = on;
      if (!on) return { ok: false, detail: `ALPHASTACK_PROTECTION is off on ${this.to}`, figures };
      passed.push('ALPHASTACK_PROTECTION on');
    }
    for (const check of promote.preflight) {
      const result = await runCommand(check.command, {
        redactor: this.#deps.host.redactor,
        timeoutMs: check.timeout,
        signal: this.#deps.signal,
        ...(check.cwd ? { cwd: check.cwd } : {}),
        env: { GREENLIGHT_FROM: this.from, GREENLIGHT_TO: this.to, GREENLIGHT_PROMOTION: this.id },
      });
      figures[check.name] = { exitCode: result.code, durationMs: Math.round(result.durationMs) };
      if (result.spawnError) return { ok: false, detail: `${check.name}: cannot start ${check.command[0]}: ${result.spawnError}`, figures };
      if (result.timedOut) return { ok: false, detail: `${check.name}: did not finish within ${formatDuration(check.timeout)}`, figures };
      if (result.code !== 0) {
        const tail = tailLines(`${result.stderr}${result.stdout}`, 300);
        return { ok: false, detail: `${check.name}: exited ${result.code ?? result.signal}${tail ? ` (${tail.replace(/\s+/g, ' ')})` : ''}`, figures };
      }
      passed.push(check.name);
      this.#progress('preflight', `✔ ${check.name} (${Math.round(result.durationMs)}ms)`);
    }
    return { ok: true, detail: passed.length ? passed.join(', ') : 'nothing to check', figures };
  }

  async #probeRounds(dispatcher: UndiciAgent, rounds: number, step: 'probes' | 'verify'): Promise<StepOutcome> {
    const config = this.#config;
    const targets = new ProbeCompiler(config, this.#deps.host.redactor).targetsOn(this.to);
    let slowest = 0;
    for (let round = 1; round <= rounds; round++) {
      if (round > 1) await this.#deps.sleep(config.promote.roundInterval, this.#deps.signal);
      const canceller = ProbeCanceller.following(this.#deps.signal);
      const results = await Promise.all(targets.map((target) => runProbe(target, dispatcher, this.#deps.now, canceller))).finally(() => canceller.release());
      const failed = results.filter((r) => !r.ok);
      slowest = Math.max(slowest, ...results.map((r) => r.durationMs));
      if (failed.length > 0) {
        return {
          ok: false,
          detail: `round ${round} of ${rounds}: ${failed.map((r) => `${r.probe} ${describeFailure(r)}`).join('; ')}`,
          figures: { round, rounds, failed: failed.map((r) => ({ probe: r.probe, reason: r.reason, status: r.status ?? null, detail: describeFailure(r) })) },
        };
      }
      this.#progress(step, `round ${round}/${rounds}: ${results.length} probes pass (slowest ${Math.round(Math.max(...results.map((r) => r.durationMs)))}ms)`);
    }
    return {
      ok: true,
      detail: `${rounds} rounds of ${targets.length} probes passed in a row on ${this.to} (slowest ${Math.round(slowest)}ms)`,
      figures: { rounds, probes: targets.length, slowestMs: Math.round(slowest) },
    };
  }

  async #load(): Promise<StepOutcome> {
    const config = this.#config;
    const load = config.promote.load;
    const targets = new ProbeCompiler(config, this.#deps.host.redactor).targetsOn(this.to);
    const report = await runLoadTest({
      targets,
      rps: load.rps,
      durationMs: load.duration,
      timeoutMs: load.timeout,
      connections: load.connections,
      connect: probeConnect(config),
      signal: this.#deps.signal,
      onProgress: (p) =>
        this.#progress(
          'load',
          `${(p.elapsedMs / 1_000).toFixed(1)}s: sent ${p.sent}, answered ${p.completed}, errors ${p.errors}, p95 ${p.recentP95Ms === null ? '-' : `${Math.round(p.recentP95Ms)}ms`}`,
        ),
    });
    const verdict = judgeLoad(report, { maxP95Ms: load.maxP95, maxErrorRatio: load.maxErrorRatio });
    const figures = {
      rps: load.rps,
      p50Ms: round(report.p50Ms),
      p95Ms: round(report.p95Ms),
      p99Ms: round(report.p99Ms),
      errorRatio: report.errorRatio,
      sent: report.sent,
      errors: report.errors,
      achievedRps: round(report.achievedRps),
      maxP95Ms: load.maxP95,
      maxErrorRatio: load.maxErrorRatio,
    };
    return verdict.ok
      ? { ok: true, detail: summarizeLoad(report), figures }
      : { ok: false, detail: `${verdict.failures.join('; ')} (${summarizeLoad(report)})`, figures };
  }

  /**
   * The critical rules that roll the live environment back whose condition already holds on the
   * target as things are now (its memory over the line for minutes): what would fire the moment it
   * took traffic, so that the watch would roll it back at once. A rollback refuses such a target
   * (`target-unhealthy`); a promotion does too. A rule over a window is not asked: a promoted
   * target is judged on its time as live, so a deploy's failures before the gates do not count;
   * nor one of the latest probes' pass or fail alone (a streak of failures while it deployed): the
   * probe gates ask that again, now.
   */
  async #criticalHolding(): Promise<{ rules: string[]; detail: string }> {
    const holding = (await this.#deps.host.controller.criticalRulesHoldingOn(this.to)).filter(
      ({ overWindow, latestPass, unsure }) => !overWindow && !latestPass && !unsure,
    );
    return {
      rules: holding.map(({ rule }) => rule),
      detail: `${holding.map(({ rule, found }) => `${rule} already holds on ${this.to} (${found})`).join('; ')}: it would fire as soon as ${this.to} took traffic, and the watch would roll back; wait until it no longer holds, or promote with --emergency --reason`,
    };
  }

  /**
   * Right before the switch, what may have changed during the gates (a load test, a deploy, a
   * preflight command can take minutes): the deploy window may have closed, and a critical rule
   * may have come to hold on the target. An emergency goes on, as at the start.
   */
  async #lastLook(): Promise<StepOutcome | undefined> {
    // What the gates tested must be what goes live: a reload may have pointed the target elsewhere.
    if (this.#config.environments[this.to]?.url !== this.#gatedUrl)
      return {
        ok: false,
        detail: `a reload changed ${this.to}'s address during the gates: what they tested is not what would go live; promote again`,
        figures: { addressChanged: true },
      };
    if (this.#request.emergency) return undefined;
    const window = this.#window();
    if (!window.ok) return { ok: false, detail: `the deploy window closed during the gates: ${window.detail}`, figures: window.figures };
    const holding = await this.#criticalHolding();
    if (holding.rules.length > 0) return { ok: false, detail: holding.detail, figures: { criticalHolding: holding.rules } };
    return undefined;
  }

  async #switch(): Promise<StepOutcome> {
    const { host, now } = this.#deps;
    const request = this.#request;
    const refused = await this.#lastLook();
    if (refused) return refused;
    const message = `promotion ${this.id} by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`;
    // Heard from the switch on: a rollback that lands between the switch and the watch (during
    // verification) is still the watch's to report.
    this.#stopHearingLeave = host.bus.subscribe((event) => {
      if (event.type === 'traffic.switched' && event.data.from === this.to) this.#left ??= event;
    });
    // The steps after this promotion's switches (forward, and the revert's) are lines of its output.
    const incident = `promote:${this.id}`;
    this.#stopHearingSteps = host.bus.subscribe((event) => {
      const step = event.type === 'switch.step_started' || event.type === 'switch.step_succeeded' || event.type === 'switch.step_failed';
      if (step && (event.data.incident === incident || event.data.incident === `${incident}:revert`)) this.#emit(event);
    });
    // A rollback during the gates may have moved traffic already: the switch then refuses (not-live).
    const result = await this.#journaledSwitch(
      { from: this.from, to: this.to, kind: 'promotion' },
      { rule: null, incident: `promote:${this.id}`, env: this.from, severity: 'info', message, figures: null, actor: request.actor, startedAt: now() },
      this.#deps.signal,
    );
    if (!result.switched) {
      if (this.#deps.signal.aborted && result.why === 'adapter') {
        this.#interrupted = true;
        return {
          ok: false,
          detail: `the agent stopped during the switch (${result.reason}): the next start settles it by asking the traffic layer`,
          figures: { interrupted: true },
        };
      }
      const figures = result.why === 'not-live' ? {} : { verification: result.verification };
      return { ok: false, detail: result.why === 'not-live' ? `${result.reason}; not switching, promote again` : `switch refused: ${result.reason}`, figures };
    }
    this.#switched = true;
    this.#switchedAt = now();
    this.watchingEnv = this.to;
    this.#afterSwitch = result.steps;
    const steps = result.steps.steps.map((step) => `${step.ok ? '✅' : '❌'} ${step.name}`).join(' ');
    return {
      ok: true,
      detail: `${this.from} → ${this.to}: ${result.detail}${steps ? `; after it: ${steps}` : ''}`,
      figures: { ...result.data, verifyMs: result.verification.durationMs, steps: result.steps.steps },
    };
  }

  /**
   * A switch of this promotion, in the action journal as PROMOTION_SWITCH: started before the
   * adapter is asked, finished with its outcome, so that one a crash interrupts is settled at the
   * next start (promotion-switch.ts). One cut off by a stop stays started, as a crash leaves it:
   * nobody knows whether the traffic layer moved.
   */
  async #journaledSwitch(plan: SwitchPlan, context: ActionContext, signal: AbortSignal): Promise<SwitchResult> {
    const { host, now } = this.#deps;
    const record: ActionRecord = {
      incident: context.incident,
      action: PROMOTION_SWITCH,
      type: 'promotion',
      state: 'started',
      context: storedContext(context),
      startedAt: now(),
    };
    host.recordAction(record);
    const result = await host.controller.switchTraffic(plan, context, signal);
    if (!result.switched && signal.aborted && result.why === 'adapter') return result;
    const finished: ActionRecord = {
      ...record,
      state: result.switched ? 'succeeded' : 'failed',
      finishedAt: now(),
      detail: result.switched ? `switched ${plan.from} → ${plan.to}: ${result.detail}` : result.reason,
    };
    // The forward switch (the revert's kind is a rollback's) stays open until its verification concludes (#closeForward).
    if (plan.kind === 'promotion' && result.switched) this.#forwardRecord = finished;
    else host.recordAction(finished);
    return result;
  }

  /**
   * The forward switch is finished in the journal once its verification has concluded: passed,
   * reverted, or its revert refused (and alerted). Until then a crash, or a stop that cut the
   * verification short with the target live, leaves it open: the revert the verification would
   * have made is gone with the process, and the next start judges the target instead
   * (promotion-switch.ts: a target failing its probes is paged), where it used to be "done".
   */
  #closeForward(): void {
    const record = this.#forwardRecord;
    if (!record) return;
    if (this.#deps.signal.aborted && this.#deps.host.controller.activeEnvironment() === this.to) return;
    this.#forwardRecord = undefined;
    this.#deps.host.recordAction(record);
  }

  async #verify(dispatcher: UndiciAgent): Promise<StepOutcome> {
    const live = this.#deps.host.controller.activeEnvironment();
    if (live !== this.to) return { ok: false, detail: `${live} is live, not ${this.to}: something switched back already` };
    const failed = this.#afterSwitch?.failed;
    if (failed)
      return {
        ok: false,
        detail: `the step ${failed.name} after the switch failed: ${failed.reason}`,
        figures: { failedStep: failed, skipped: this.#afterSwitch?.skipped ?? [] },
      };
    return this.#probeRounds(dispatcher, this.#config.promote.verifyRounds, 'verify');
  }

  async #revert(why: string): Promise<StepOutcome> {
    const { host, now } = this.#deps;
    if (host.controller.activeEnvironment() !== this.to) return { ok: true, detail: `${host.controller.activeEnvironment()} is already live` };
    const context = {
      rule: null,
      incident: `promote:${this.id}:revert`,
      env: this.to,
      severity: 'critical' as const,
      message: `promotion ${this.id}: verification failed (${why}), switching back`,
      figures: null,
      actor: this.#request.actor,
      startedAt: now(),
    };
    // A revert is never cut short, not even by a stopping agent; it is verified like any switch.
    const result = await this.#journaledSwitch({ from: this.to, to: this.from, kind: 'rollback' }, context, new AbortController().signal);
    if (result.switched) {
      const failed = result.steps.failed;
      return {
        ok: true,
        detail: `switched back ${this.to} → ${this.from}: ${result.detail}${failed ? `; then the step ${failed.name} failed: ${failed.reason} (no second switch; alert switch-step-failed raised)` : ''}`,
        figures: { steps: result.steps.steps, failedStep: failed },
      };
    }
    if (result.why === 'not-live') return { ok: true, detail: `${host.controller.activeEnvironment()} is already live` };
    // One reading of the clock: the alert lives exactly ONE_OFF_ALERT_MS from its start.
    const at = now();
    host.controller.alert({
      status: 'firing',
      key: alertKey(context.incident, 'revert-refused'),
      rule: 'promote-revert-refused',
      // Nothing ends a promotion's revert: the alert tells the others, then resolves by itself.
      expiresAt: new Date(at + ONE_OFF_ALERT_MS).toISOString(),
      severity: 'critical',
      env: this.to,
      summary: `Promotion ${this.id}: ${this.to} failed its verification and the switch back to ${this.from} was refused; ${this.to} stays live`,
      description: `${context.message}. greenlight did not switch back: ${result.reason}. ${
        result.why === 'unverified' ? 'Both environments look unhealthy' : `The traffic layer did not take the switch back to ${this.from}`
      }; a person must decide.`,
      labels: { judgement: result.why, from: this.to, to: this.from },
      figures: { verification: result.verification },
      startsAt: new Date(at).toISOString(),
      url: host.controller.stateUrl(),
    });
    return {
      ok: false,
      detail: `switch back to ${this.from} refused: ${result.reason}; ${this.to} stays live`,
      figures: { verification: result.verification },
    };
  }

  /** Until the watch ends or traffic leaves the new environment (a rule's rollback, an operator). */
  async #watch(watchMs: number): Promise<StepOutcome> {
    const { host, now } = this.#deps;
    const until = this.#switchedAt + watchMs;
    // A rollback during the verification already ended the watch.
    let left: GreenlightEvent | undefined = this.#left;
    const firing: string[] = [];
    const wake = new AbortController();
    const unsubscribe = host.bus.subscribe((event) => {
      if (event.type === 'rule.firing' && event.env === this.to) firing.push(event.rule ?? '?');
      if (event.type === 'traffic.switched' && event.data.from === this.to && !left) {
        left = event;
        wake.abort();
      }
    });
    try {
      const signal = AbortSignal.any([wake.signal, this.#deps.signal]);
      while (!left && !this.#deps.signal.aborted && now() < until) {
        await this.#deps.sleep(Math.min(WATCH_PROGRESS_MS, until - now()), signal);
        if (!left && now() < until)
          this.#progress(
            'watch',
            `${formatDuration(Math.round((now() - this.#switchedAt) / 1_000) * 1_000)} of ${formatDuration(watchMs)}: ${this.to} live, ${firing.length ? `firing: ${firing.join(', ')}` : 'no critical rule firing'}`,
          );
      }
    } finally {
      unsubscribe();
      this.watchingEnv = undefined;
    }
    if (left?.type === 'traffic.switched') {
      return {
        ok: false,
        detail: `rolled back to ${left.data.to} after ${formatDuration(Math.max(0, Math.round((Date.parse(left.time) - this.#switchedAt) / 100) * 100))}: ${left.data.reason}`,
        figures: { rolledBackTo: left.data.to, rule: left.rule, incident: left.data.incident, event: left.id },
      };
    }
    if (this.#deps.signal.aborted)
      return {
        ok: false,
        detail: `the agent stopped ${formatDuration(Math.round((now() - this.#switchedAt) / 1_000) * 1_000)} into the watch; ${this.to} stays live`,
      };
    // No rollback, but a critical rule firing on the target at the end (its rollback held: both
    // environments failing, the other one unhealthy) is an incident on the new release, not a pass.
    const judgesTarget = new Set(this.#config.rules.filter((rule) => rule.env === 'live' || rule.env === this.to).map((rule) => rule.name));
    const stillFiring = host.rules
      .statuses()
      .filter((rule) => rule.state === 'firing' && rule.severity === 'critical' && judgesTarget.has(rule.rule))
      .map((rule) => rule.rule);
    if (stillFiring.length > 0)
      return {
        ok: false,
        detail: `${this.to} stayed live, but critical rules are firing on it at the end of the watch (${stillFiring.join(', ')}): their rollback is held (greenlight state shows why); the release is not promoted`,
        figures: { watchMs, firing, stillFiring },
      };
    return {
      ok: true,
      detail: `${this.to} held for ${formatDuration(watchMs)} with no rollback${firing.length ? ` (rules fired: ${firing.join(', ')})` : ''}`,
      figures: { watchMs, firing },
    };
  }
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

/**
 * `rollback`: switch live traffic to the other environment, after judging that this helps.
 *
 * Invariants, in the order they are judged:
 * - Only the environment that is live can be rolled away from: when the incident's environment
 *   is no longer live, someone already switched and there is nothing to do.
 * - A rule's rollback goes ahead only while its condition holds on the live environment now: an
 *   incident that keeps firing (keepFiringFor, or resumed after a restart) over a recovered
 *   environment waits ("recovered"), owed, and goes ahead if the condition comes back. A rule over
 *   error-ratio windows alone remembers failures that are over: once the live environment has
 *   passed every probe for `settle`, or for longer than the target has, it has recovered too,
 *   whatever the window still says.
 * - Both environments failing at the same moment points at greenlight's own network or a shared
 *   dependency (the database), not at the release: hold, alert "inconclusive". Both failing: the
 *   same probes fail the same way on both now (no answer on both, or a wrong answer on both: a
 *   500 here and a hang there are two causes), or the rule's condition holds on the target too — unless the
 *   live environment fails its probes now while the target has passed every one for `settle`
 *   (the target's windows then remember a shared failure that is over).
 * - A rule's evidence about the live environment must be newer than the target's recovery: when
 *   both come back from a shared failure, the target's recovery may be seen before the live one's
 *   (up to one probe interval); until every probe of the live environment has answered since,
 *   wait ("stale").
 * - Never switch to an environment whose own probes are failing, have no result or are overdue,
 *   or on which a critical rollback rule of the live environment already holds (its windows
 *   show what its latest probes do not: half of them failing, memory over the line for minutes):
 *   alert critical instead ("target-unhealthy").
 * - Anti-flap judges the target, not a clock: for `cooldown` after a rollback moved traffic away
 *   from an environment, a rule's rollback back onto it needs every one of its probes to have
 *   passed for `settle` ("settling"). No timer holds a rollback onto an environment that has.
 * - The switch verifies the target with fresh probes under the agent's switch lock
 *   (Controller.switchTraffic); a refusal is a failed outcome naming the check, with a critical alert.
 * - A rule's rollback that did not happen for a reason that can pass (inconclusive,
 *   target-unhealthy, settling, unverified, the adapter failed) is owed (`data.owed`): the
 *   ActionRunner retries it while the incident fires, when `ready` says the judgement passes.
 * - An operator's rollback is judged the same way, without the anti-flap wait, and is never owed:
 *   the answer says why it was refused.
 * - Every alert a hold raised for an incident is resolved once its rollback switches or the
 *   incident ends. An operator's rollback has no incident to end: the alert its refusal raised
 *   (one per judgement, raised again by the next refusal) resolves when a rollback switches, or by
 *   itself ONE_OFF_ALERT_MS after the last refusal, so that it never fires, and mutes the live
 *   environment's warnings through inhibition, for ever.
 * - A rollback that switched has happened, whatever the steps after the switch found (CDN purge,
 *   public TLS, public verify URL): a failed step never makes it owed or switches again; the
 *   outcome names the step (`data.failedStep`), and the switch phase has raised a critical alert.
 */
import { z } from 'zod';
import { Duration, type ConditionConfig } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import { ONE_OFF_ALERT_MS, type AlertNotice } from '../alerts/alert-receiver.js';
import type { ReasonCode } from '../../probes/probe-result.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { settleInterruptedSwitch } from './interrupted-switch.js';
import { alertKey, type Action, type ActionContext, type ActionDeps, type ActionOutcome, type EnvironmentHealth, type Verification } from './action.js';

const RollbackSchema = z.strictObject({
  type: z.literal('rollback'),
  cooldown: Duration.default(600_000).meta({
    description:
      "For this long after a rollback moved traffic away from an environment, a rule's rollback back onto it waits until that environment has passed every probe for `settle`. A clock alone never holds a rollback. Default 10m.",
  }),
  settle: Duration.default(30_000).meta({
    description:
      'How long an environment traffic was rolled away from must pass every probe before a rule may roll back onto it again (anti-flap); also how long a target must have passed to outweigh figures that remember a failure both shared. Default 30s.',
  }),
});
type RollbackConfig = z.output<typeof RollbackSchema>;

export const rollbackAction: PluginDefinition<RollbackConfig, Action> = {
  type: 'rollback',
  schema: RollbackSchema,
  create: (config, deps) => new RollbackAction(config, deps as ActionDeps),
};

type Judgement = 'inconclusive' | 'target-unhealthy' | 'settling';

/** The incident an operator's refused rollbacks share their alerts under: one alert per judgement, not one per request. */
const OPERATOR = 'operator';

/** Held without an alert: nothing to page about. */
type QuietHold = 'not-live' | 'recovered' | 'stale' | 'unseen';

/** Whether to switch now, and if not, why (the data goes into the action.skipped event). */
type Verdict =
  | { go: true; live: string; target: string }
  | { go: false; live: string; target: string; judgement: Judgement | QuietHold; why: string; data: Record<string, unknown> };

class RollbackAction implements Action {
  readonly type = 'rollback';
  readonly name: string;
  readonly #config: RollbackConfig;
  readonly #deps: ActionDeps;
  /** Per open rule incident, the keys of the alerts its holds raised (resolved when it switches or ends). */
  readonly #held = new Map<string, Map<string, AlertNotice>>();

  constructor(config: RollbackConfig, deps: ActionDeps) {
    this.#config = config;
    this.#deps = deps;
    this.name = deps.name;
  }

  async ready(context: ActionContext): Promise<{ go: true } | { go: false; why: string }> {
    const verdict = await this.#judge(context);
    if (verdict.go) return { go: true };
    // A hold that pages, reached while owed (one that waited quietly, `unseen`, and is now known
    // to hold on the target): paged once per incident and purpose, as when fire() holds.
    if (context.rule !== null && (verdict.judgement === 'inconclusive' || verdict.judgement === 'target-unhealthy' || verdict.judgement === 'settling'))
      this.#alertHeld(context, verdict);
    return { go: false, why: `${verdict.judgement}: ${verdict.why}` };
  }

  async fire(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
    const { controller } = this.#deps;
    const owed = context.rule !== null;
    const verdict = await this.#judge(context);
    if (!verdict.go) {
      if (verdict.judgement === 'not-live') return { outcome: 'skipped', reason: verdict.why };
      if (verdict.judgement === 'recovered' || verdict.judgement === 'stale' || verdict.judgement === 'unseen')
        return { outcome: 'skipped', reason: verdict.why, data: { from: verdict.live, to: verdict.target, [verdict.judgement]: true, owed } };
      this.#alertHeld(context, verdict);
      return {
        outcome: 'skipped',
        reason: `${verdict.judgement}: ${verdict.why}`,
        data: { judgement: verdict.judgement, from: verdict.live, to: verdict.target, ...verdict.data, owed },
      };
    }
    const { live, target } = verdict;
    if (this.#deps.dryRun)
      return { outcome: 'skipped', reason: `dry run: would switch ${live} → ${target}`, data: { from: live, to: target, wouldFire: true } };

    const result = await controller.switchTraffic({ from: live, to: target, kind: 'rollback' }, context, signal);
    if (result.switched) {
      this.#resolveHeld(context.incident);
      // What an operator's refusals said ("blue stays live") is over too.
      this.#resolveHeld(OPERATOR);
      const { steps } = result;
      const after = steps.failed
        ? `; then the step ${steps.failed.name} failed: ${steps.failed.reason} (no second switch; alert switch-step-failed raised)`
        : steps.steps.length > 0
          ? `; then ${steps.steps.map((step) => step.name).join(', ')} passed`
          : '';
      return {
        outcome: 'succeeded',
        detail: `switched ${live} → ${target}: ${result.detail}${after}`,
        data: {
          from: live,
          to: target,
          verifyMs: result.verification.durationMs,
          ...result.data,
          steps: steps.steps,
          failedStep: steps.failed,
        },
      };
    }
    if (result.why === 'not-live') return { outcome: 'skipped', reason: result.reason };
    if (result.why === 'unverified') {
      this.#alertRefused(context, live, target, result.verification);
      return {
        outcome: 'failed',
        error: `refused: ${result.reason}; ${live} stays live`,
        data: { refused: 'unverified', from: live, to: target, verification: result.verification, owed },
      };
    }
    return { outcome: 'failed', error: result.reason, data: { from: live, to: target, owed } };
  }

  /** The incident ended: nothing is owed any more, and the alerts its holds raised resolve. */
  async resolve(context: ActionContext): Promise<ActionOutcome | undefined> {
    const resolved = this.#resolveHeld(context.incident);
    return resolved > 0 ? { outcome: 'succeeded', detail: `${resolved} rollback hold ${resolved === 1 ? 'alert' : 'alerts'} resolved` } : undefined;
  }

  /**
   * A crash came mid-rollback. The switch was recorded → done. The traffic layer already serves
   * the other side → record it. It still serves the incident's environment → the switch never
   * happened: do it now, judged and verified as usual. The adapter cannot tell (a webhook) →
   * report failed and page: repeating a switch whose first attempt may have landed is for a
   * person to decide.
   */
  async reconcile(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
    const { controller, now } = this.#deps;
    const found = await settleInterruptedSwitch(controller, context, signal, { what: 'the rollback' });
    if (typeof found === 'object') return found.settled;
    if (found === 'not-moved') {
      const outcome = await this.fire(context, signal);
      return outcome.outcome === 'succeeded' ? { ...outcome, detail: `completed after a restart interrupted it: ${outcome.detail}` } : outcome;
    }
    const live = controller.activeEnvironment();
    const target = controller.environments().find((env) => env !== live)!;
    this.#raise(context, {
      status: 'firing',
      key: alertKey(context.incident, 'rollback-interrupted'),
      rule: 'rollback-interrupted',
      severity: 'critical',
      env: live,
      summary: `Rollback ${live} → ${target} interrupted by a greenlight restart: state unknown`,
      description: `${context.message}. greenlight restarted while switching traffic and this adapter cannot report where traffic goes, so it does not switch again. Check the traffic layer; if ${live} still serves, run greenlight rollback --reason "…".`,
      labels: { judgement: 'interrupted', from: live, to: target },
      figures: {},
      startsAt: new Date(now()).toISOString(),
      url: controller.stateUrl(),
    });
    return {
      outcome: 'failed',
      error: `interrupted while switching ${live} → ${target} (greenlight restarted, or another agent took the lead); this traffic adapter cannot report where traffic goes, so the switch is not repeated: check the traffic layer, then greenlight rollback if ${live} still serves`,
      data: { from: live, to: target },
    };
  }

  /** The judgement, from what greenlight knows now; no side effects. */
  async #judge(context: ActionContext): Promise<Verdict> {
    const { controller, now } = this.#deps;
    const live = controller.activeEnvironment();
    const target = controller.environments().find((env) => env !== live)!;
    if (context.env !== live)
      return { go: false, live, target, judgement: 'not-live', why: `${context.env} is no longer live (${live} is): nothing to roll back`, data: {} };
    const there = controller.health(target);
    const here = controller.health(live);
    if (context.rule && (await controller.ruleHoldsOn(context.rule.name, live)) === false) {
      return {
        go: false,
        live,
        target,
        judgement: 'recovered',
        why: `${context.rule.name} no longer holds on ${live} (the incident still fires): nothing to roll back unless it comes back`,
        data: {},
      };
    }
    // A window of failures outlives them: the live environment has recovered when it has passed
    // every probe for `settle`, or for longer than the target has (it came back first: a held
    // rollback would now move traffic away from the environment that recovered before the other).
    if (
      context.rule &&
      countsFailuresOnly(context.rule.when) &&
      here.healthy &&
      (here.passingForMs >= this.#config.settle || (there.healthy && here.passingForMs >= there.passingForMs))
    ) {
      return {
        go: false,
        live,
        target,
        judgement: 'recovered',
        why: `${live} has passed every probe for ${seconds(here.passingForMs)} (${target} for ${seconds(there.passingForMs)}): ${context.rule.name}'s window still remembers failures that are over (nothing to roll back unless they come back)`,
        data: { passingForMs: Math.round(here.passingForMs), settleMs: this.#config.settle },
      };
    }
    const holdsThere = context.rule ? (await controller.ruleHoldsOn(context.rule.name, target)) === true : false;
    const hold = (judgement: Judgement, why: string, data: Record<string, unknown> = {}): Verdict => ({
      go: false,
      live,
      target,
      judgement,
      why,
      data: { failing: there.failing, unknown: there.unknown, ...data },
    });

    if (!there.healthy) {
      // The same probes failing the same way on both: one that answers 500 at once and one that
      // does not answer at all have two causes, and greenlight's network is not one of them.
      const failingHere = new Set(here.failing);
      const shared = there.failing.filter((probe) => failingHere.has(probe) && sameKind(here.reasons[probe], there.reasons[probe]));
      if (holdsThere || shared.length > 0) {
        const evidence = holdsThere ? `${context.rule!.name} holds on ${target} too` : `${shared.join(', ')} failing on both`;
        return hold(
          'inconclusive',
          `both environments are failing (${evidence}): suspect greenlight's own network or a shared dependency such as the database, not the release`,
        );
      }
      // Nothing failed: greenlight has only not probed some of them yet (it just started, or a reload
      // renewed them). That is no news of the target: a rule's rollback waits for their first answers,
      // owed and without a page (one that does not come makes the probe overdue, and that pages).
      const unprobed = new Set(there.unprobed);
      if (context.rule !== null && there.failing.length === 0 && there.unknown.every((probe) => unprobed.has(probe)))
        return {
          go: false,
          live,
          target,
          judgement: 'unseen',
          why: `greenlight has no answer yet from ${target}'s ${there.unprobed.join(', ')} since it started (or a reload renewed them): waiting for their first answers`,
          data: { unprobed: there.unprobed },
        };
      return hold('target-unhealthy', `${target}'s own probes are ${describeUnhealthy(there)}`);
    }

    if (context.rule !== null && there.healthySince !== null && (here.asOf === null || here.asOf < there.healthySince)) {
      return {
        go: false,
        live,
        target,
        judgement: 'stale',
        why: `${target} recovered ${seconds(now() - there.healthySince)} ago, after some of ${live}'s latest results: waiting for every probe of ${live} to answer again (a failure both shared may be ending)`,
        data: {},
      };
    }
    if (holdsThere && !(here.failing.length > 0 && there.passingForMs >= this.#config.settle)) {
      const now_ =
        here.failing.length > 0
          ? `${target} has passed its probes for ${seconds(there.passingForMs)} of the ${formatDuration(this.#config.settle)} that outweigh it`
          : `${live} passes its probes now too`;
      return hold(
        'inconclusive',
        `both environments show it (${context.rule!.name} holds on ${target} too, and ${now_}): suspect a shared cause, not the release`,
      );
    }
    if (context.rule !== null) {
      const left = controller.rolledBackFromAt(target);
      const since = left === undefined ? undefined : now() - left;
      if (since !== undefined && since < this.#config.cooldown && there.passingForMs < this.#config.settle) {
        return hold(
          'settling',
          `traffic was rolled back away from ${target} ${seconds(since)} ago, and it has passed every probe for ${seconds(there.passingForMs)} of the ${formatDuration(this.#config.settle)} it needs before traffic returns (anti-flap)`,
          {
            passingForMs: Math.round(there.passingForMs),
            settleMs: this.#config.settle,
          },
        );
      }
    }
    // Its latest probes pass, but what would judge it once live already holds there: a target
    // failing half its probes, or whose memory has stayed over the line for minutes, would fail
    // as soon as it took traffic. A rule over a window may remember a failure that is over (both
    // sides were down a minute ago): the target outweighs it by passing every probe for `settle`,
    // as against the incident's own rule above. A rule of how things are now is never outweighed.
    const found = await controller.criticalRulesHoldingOn(target, context.rule?.name);
    const against = found.filter(({ overWindow, unsure }) => !unsure && (!overWindow || there.passingForMs < this.#config.settle));
    if (against.length > 0) {
      return hold(
        'target-unhealthy',
        `${against.map(({ rule, found }) => `${rule} already holds on ${target} (${found})`).join('; ')}: it would fail as soon as it took traffic${
          against.every(({ overWindow }) => overWindow)
            ? `, unless it passes every probe for ${formatDuration(this.#config.settle)} (${seconds(there.passingForMs)} so far)`
            : ''
        }`,
        { holding: against.map(({ rule }) => rule), passingForMs: Math.round(there.passingForMs), settleMs: this.#config.settle },
      );
    }
    // A value above its line since greenlight first read it (it started since) may have been above
    // for minutes: a rule's rollback waits, owed, until the readings tell (at most the rule's own
    // duration); an operator decides with what they see.
    const unseen = context.rule === null ? [] : found.filter(({ unsure }) => unsure);
    if (unseen.length > 0)
      return {
        go: false,
        live,
        target,
        judgement: 'unseen',
        why: `greenlight cannot tell yet whether ${unseen.map(({ rule, found: seen }) => `${rule} holds on ${target} (not on what it has seen since it started: ${seen})`).join('; ')}: the value was already above its line at greenlight's first reading and may have been for longer; waiting until the readings tell`,
        data: { unsure: unseen.map(({ rule }) => rule) },
      };
    return { go: true, live, target };
  }

  #alertHeld(context: ActionContext, verdict: Extract<Verdict, { go: false }>): void {
    const { live, target, judgement, why } = verdict;
    const summaries: Record<string, string> = {
      inconclusive: `Rollback held: both ${live} and ${target} are failing (inconclusive)`,
      'target-unhealthy': `Rollback refused: ${target} is not healthy, ${live} stays live`,
      settling: `Rollback waiting: ${target} failed recently and has not passed its probes for ${formatDuration(this.#config.settle)} yet, ${live} stays live`,
    };
    const advice =
      judgement === 'settling'
        ? `It switches by itself once ${target} has passed every probe for ${formatDuration(this.#config.settle)} and verifies healthy, if the incident still fires.`
        : `Check the network between greenlight and both environments and shared dependencies; a person must decide. greenlight retries the rollback by itself if ${target} recovers while the incident fires.`;
    this.#raise(context, {
      status: 'firing',
      key: alertKey(context.incident, `rollback-${judgement}`),
      rule: `rollback-${judgement}`,
      severity: judgement === 'settling' ? 'warning' : 'critical',
      env: live,
      summary: summaries[judgement]!,
      description: `${context.message}. greenlight did not switch: ${why}. ${advice}`,
      labels: { judgement, from: live, to: target },
      figures: { health: this.#deps.controller.health(target), figures: context.figures },
      startsAt: new Date(this.#deps.now()).toISOString(),
      url: this.#deps.controller.stateUrl(),
    });
  }

  #alertRefused(context: ActionContext, live: string, target: string, verification: Verification): void {
    this.#raise(context, {
      status: 'firing',
      key: alertKey(context.incident, 'rollback-unverified'),
      rule: 'rollback-unverified',
      severity: 'critical',
      env: live,
      summary: `Rollback refused: ${target} failed its fresh verification, ${live} stays live`,
      description: `${context.message}. Just before switching, greenlight probed ${target} again and it did not pass: ${verification.summary}. A person must decide; greenlight retries the rollback by itself if ${target} recovers while the incident fires.`,
      labels: { judgement: 'unverified', from: live, to: target },
      figures: { verification },
      startsAt: new Date(this.#deps.now()).toISOString(),
      url: this.#deps.controller.stateUrl(),
    });
  }

  /**
   * Send a hold's alert once per incident and purpose (a retry that holds again does not page
   * again). An operator's refusal is sent each time, under one key per purpose, and expires.
   */
  #raise(context: ActionContext, held: AlertNotice): void {
    if (context.rule === null) {
      const notice: AlertNotice = {
        ...held,
        key: alertKey(OPERATOR, held.rule),
        expiresAt: new Date(this.#deps.now() + ONE_OFF_ALERT_MS).toISOString(),
      };
      let raised = this.#held.get(OPERATOR);
      if (!raised) this.#held.set(OPERATOR, (raised = new Map()));
      raised.set(notice.key, notice);
      this.#deps.controller.alert(notice);
      return;
    }
    // It belongs to the rule's incident: escalated and acknowledged with it.
    const notice: AlertNotice = { ...held, incident: context.incident };
    let raised = this.#held.get(context.incident);
    if (!raised) this.#held.set(context.incident, (raised = new Map()));
    if (raised.has(notice.key)) return;
    raised.set(notice.key, notice);
    this.#deps.controller.alert(notice);
  }

  #resolveHeld(incident: string): number {
    const raised = new Map(this.#held.get(incident));
    this.#held.delete(incident);
    // What this incident's holds raised before a restart: the dispatcher kept it, this action did not.
    for (const notice of this.#deps.controller.firingAlerts(incident))
      if (isHoldAlert(notice, incident) && !raised.has(notice.key)) raised.set(notice.key, notice);
    const now = this.#deps.now();
    // An operator's refusal that expired was resolved then (a second resolution would reach receivers that never heard it).
    const live = [...raised.values()].filter((notice) => notice.expiresAt === undefined || Date.parse(notice.expiresAt) > now);
    for (const notice of live) this.#deps.controller.alert({ ...notice, status: 'resolved', endsAt: new Date(now).toISOString() });
    return live.length;
  }
}

/**
 * An alert a hold of `incident`'s rollback raised (rollback-inconclusive, -target-unhealthy,
 * -settling, -unverified, -interrupted), keyed by its purpose: not the rule's own alert, even of a
 * rule named rollback-something.
 */
function isHoldAlert(notice: AlertNotice, incident: string): boolean {
  return notice.rule.startsWith('rollback-') && notice.key === alertKey(incident, notice.rule);
}

function describeUnhealthy(health: EnvironmentHealth): string {
  const parts: string[] = [];
  if (health.failing.length > 0) parts.push(`failing (${health.failing.join(', ')})`);
  if (health.unknown.length > 0) parts.push(`unknown: no result yet or overdue (${health.unknown.join(', ')})`);
  return parts.join('; ') || 'without results';
}

function seconds(ms: number): string {
  return `${(ms / 1_000).toFixed(1)}s`;
}

/**
 * Whether a condition reads nothing but error ratios over windows: facts that count failed probes,
 * so that every probe passing means they are over. Latency, memory and streaks say other things.
 */
function countsFailuresOnly(condition: ConditionConfig): boolean {
  if ('all' in condition) return condition.all.every(countsFailuresOnly);
  if ('any' in condition) return condition.any.every(countsFailuresOnly);
  if ('not' in condition) return false;
  return condition.fact === 'errorRatio';
}

/**
 * Whether two failures could share a cause: both with no answer (a timeout, refused, reset, DNS,
 * TLS: the network, or a dependency both hang on), or both answered wrong (a status, a check, a
 * body: a shared database, say). A reason not known (a failed fresh verification) counts as either.
 */
function sameKind(a: ReasonCode | undefined, b: ReasonCode | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return ANSWERED.has(a) === ANSWERED.has(b);
}

const ANSWERED: ReadonlySet<ReasonCode> = new Set(['status', 'assertion', 'body_too_large', 'invalid_json']);

/**
 * `rollback`: switch live traffic to the other environment, after judging that this helps.
 *
 * - Only the environment that is live can be rolled away from: when the incident's environment
 *   is no longer live, someone already switched and there is nothing to do.
 * - Both environments failing at the same moment points at greenlight's own network or a
 *   shared dependency (the database), not at the release: hold, alert "inconclusive".
 * - Never switch to an environment whose own health probes are failing: alert critical instead.
 * - One switch at a time; after a rule-driven rollback, no other for `cooldown`, except away
 *   from an environment a promotion has just switched to and is watching (the fast revert).
 */
import { z } from 'zod';
import { Duration } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import type { PluginDefinition } from '../plugin.js';
import { alertKey, type Action, type ActionContext, type ActionDeps, type ActionOutcome } from './action.js';

const RollbackSchema = z.strictObject({
  type: z.literal('rollback'),
  cooldown: Duration.default(600_000).meta({ description: 'After a rule-driven rollback, no other for this long (manual rollbacks are not held back).' }),
});
type RollbackConfig = z.output<typeof RollbackSchema>;

export const rollbackAction: PluginDefinition<RollbackConfig, Action> = {
  type: 'rollback',
  schema: RollbackSchema,
  create: (config, deps) => new RollbackAction(config, deps as ActionDeps),
};

class RollbackAction implements Action {
  readonly type = 'rollback';
  readonly name: string;
  readonly #config: RollbackConfig;
  readonly #deps: ActionDeps;
  #lastRollbackAt = Number.NEGATIVE_INFINITY;

  constructor(config: RollbackConfig, deps: ActionDeps) {
    this.#config = config;
    this.#deps = deps;
    this.name = deps.name;
  }

  async fire(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
    const { controller, now } = this.#deps;
    const live = controller.activeEnvironment();
    if (context.env !== live) return { outcome: 'skipped', reason: `${context.env} is no longer live (${live} is): nothing to roll back` };
    const target = controller.environments().find((env) => env !== live)!;
    if (controller.switching()) return { outcome: 'skipped', reason: 'a traffic switch is already in flight' };
    const manual = context.rule === null;
    const since = now() - this.#lastRollbackAt;
    if (!manual && since < this.#config.cooldown && controller.fastRevert?.(live) !== true) {
      return { outcome: 'skipped', reason: `cooldown: the last rollback was ${formatDuration(Math.round(since))} ago (cooldown ${formatDuration(this.#config.cooldown)})` };
    }

    const health = controller.health(target);
    if (!health.healthy) {
      // The same symptom on both sides at once (the rule holds there too, or the same probes
      // fail there) points at something they share, not at the release.
      const shared = health.failing.filter((probe) => controller.health(live).failing.includes(probe));
      const holdsThere = context.rule ? await controller.ruleHoldsOn(context.rule.name, target) : false;
      const both = holdsThere === true || shared.length > 0;
      const evidence = holdsThere ? `${context.rule!.name} holds on ${target} too` : `${shared.join(', ')} failing on both`;
      const why = both
        ? `both environments are failing (${evidence}): suspect greenlight's own network or a shared dependency such as the database, not the release`
        : `${target}'s own probes are ${health.failing.length ? `failing (${health.failing.join(', ')})` : `without results yet (${health.unknown.join(', ')})`}`;
      const judgement = both ? 'inconclusive' : 'target-unhealthy';
      controller.alert({
        status: 'firing',
        key: alertKey(context.incident, `rollback-${judgement}`),
        rule: `rollback-${judgement}`,
        severity: 'critical',
        env: live,
        summary: both ? `Rollback held: both ${live} and ${target} are failing (inconclusive)` : `Rollback refused: ${target} is not healthy, ${live} stays live`,
        description: `${context.message}. greenlight did not switch: ${why}. Check the network between greenlight and both environments and shared dependencies; a person must decide.`,
        labels: { judgement, from: live, to: target },
        figures: { health: health, figures: context.figures },
        startsAt: new Date(now()).toISOString(),
        url: controller.stateUrl(),
      });
      return { outcome: 'skipped', reason: `${judgement}: ${why}`, data: { judgement, from: live, to: target, failing: health.failing } };
    }

    if (this.#deps.dryRun) return { outcome: 'skipped', reason: `dry run: would switch ${live} → ${target}`, data: { from: live, to: target, wouldFire: true } };
    const switched = await controller.switchTraffic(target, context, signal);
    if (!manual) this.#lastRollbackAt = now();
    return { outcome: 'succeeded', detail: `switched ${live} → ${target}: ${switched.detail}`, data: { from: live, to: target, ...switched.data } };
  }

  /**
   * A crash came mid-rollback. The switch was recorded → done. The traffic layer already serves
   * the other side → record it. It still serves the incident's environment → the switch never
   * happened: do it now, judged as usual. The adapter cannot tell (a webhook) → report failed
   * and page: repeating a switch whose first attempt may have landed is for a person to decide.
   */
  async reconcile(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
    const { controller, now } = this.#deps;
    const live = controller.activeEnvironment();
    if (live !== context.env) return { outcome: 'succeeded', detail: `the switch ${context.env} → ${live} was recorded before the restart`, data: { from: context.env, to: live } };
    const serving = await controller.servingEnvironment(signal);
    if (serving !== undefined && serving !== live) {
      controller.adoptSwitch(serving, context, `found ${serving} serving after a restart interrupted the rollback`);
      if (context.rule) this.#lastRollbackAt = now();
      return { outcome: 'succeeded', detail: `the traffic layer already serves ${serving}: the interrupted switch ${live} → ${serving} had landed and is now recorded`, data: { from: live, to: serving } };
    }
    if (serving === live) {
      const outcome = await this.fire(context, signal);
      return outcome.outcome === 'succeeded' ? { ...outcome, detail: `completed after a restart interrupted it: ${outcome.detail}` } : outcome;
    }
    const target = controller.environments().find((env) => env !== live)!;
    controller.alert({
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
    return { outcome: 'failed', error: `interrupted by a restart while switching ${live} → ${target}; this traffic adapter cannot report where traffic goes, so the switch is not repeated: check the traffic layer, then greenlight rollback if ${live} still serves`, data: { from: live, to: target } };
  }
}

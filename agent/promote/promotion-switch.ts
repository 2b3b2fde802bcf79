/**
 * A promotion's switches (forward, and the revert) in the action journal. A promotion moves
 * traffic outside the rules' actions, but a crash or a stop mid-switch leaves the same question a
 * rollback's does: did the traffic layer move? Each switch is journaled as `promotion-switch`
 * started before the adapter is asked and finished after; one left started is settled at the next
 * start (or by the next leader) by this action's `reconcile`, never by switching again:
 *
 * - recorded before the restart (the live environment moved) → done;
 * - the traffic layer already serves the target → record it live and run the steps after it (its
 *   verification and watch did not run: the outcome says so);
 * - for the forward switch, recorded or adopted: its record stays open until the promotion's
 *   verification concludes, so the revert that verification would have made is gone with the
 *   stop; a target failing its probes now is paged (critical promote-interrupted), not switched back;
 * - it still serves the old one → nothing moved: promote again;
 * - the adapter cannot tell (a webhook) → a critical alert: a person checks the traffic layer.
 */
import { ONE_OFF_ALERT_MS, type AlertNotice } from '../alerts/alert-receiver.js';
import { alertKey, type Action, type ActionContext, type ActionOutcome, type Controller } from '../actions/action.js';
import { settleInterruptedSwitch } from '../actions/interrupted-switch.js';

/** The action journal's name for a promotion's switch (not a config entry). */
export const PROMOTION_SWITCH = 'promotion-switch';

export function promotionSwitchAction(deps: { controller: Controller; now: () => number }): Action {
  const { controller, now } = deps;
  /** The critical promote-interrupted alert on `live`: nothing else ends it, so it tells the others, then resolves by itself. */
  function interrupted(context: ActionContext, live: string, words: Pick<AlertNotice, 'summary' | 'description' | 'labels' | 'figures'>): void {
    const at = now();
    controller.alert({
      status: 'firing',
      key: alertKey(context.incident, 'promote-interrupted'),
      rule: 'promote-interrupted',
      expiresAt: new Date(at + ONE_OFF_ALERT_MS).toISOString(),
      severity: 'critical',
      env: live,
      ...words,
      startsAt: new Date(at).toISOString(),
      url: controller.stateUrl(),
    });
  }

  /**
   * A forward switch that landed, but whose promotion's verification had not concluded when
   * greenlight stopped (a crash right after the switch, during the steps after it or the
   * verification rounds): the revert that verification would have made is gone with the stop. A
   * target that passes its probes now stays live, said so; one that fails them is paged (a critical
   * promote-interrupted), never switched back blindly: a person decides (greenlight rollback).
   */
  function unverified(settled: ActionOutcome, context: ActionContext): ActionOutcome {
    const live = controller.activeEnvironment();
    if (settled.outcome !== 'succeeded' || live === context.env) return settled;
    const health = controller.health(live);
    if (health.healthy) return { ...settled, detail: `${settled.detail}; its verification had not concluded, and ${live} passes its probes now` };
    const failing =
      [...health.failing.map((probe) => `${probe} failing`), ...health.unknown.map((probe) => `${probe} unknown`)].join(', ') || 'not passing yet';
    interrupted(context, live, {
      summary: `Promotion ${context.env} → ${live} (${context.incident}) switched, but greenlight restarted before its verification ended, and ${live} fails its probes (${failing})`,
      description: `${context.message}. Traffic moved to ${live}; greenlight stopped before the promotion's verification, which would have switched back, concluded. ${live} fails its probes now (${failing}). greenlight does not switch back by itself after a restart: check ${live}, and run greenlight rollback --reason "…" if it is broken.`,
      labels: { judgement: 'unverified', from: context.env, to: live },
      figures: { failing: health.failing, unknown: health.unknown },
    });
    return {
      outcome: 'failed',
      error: `switched ${context.env} → ${live}, but its verification had not concluded when greenlight stopped, and ${live} fails its probes now (${failing}): not switched back by itself; check ${live}, then greenlight rollback if it is broken`,
      data: { ...settled.data, failing: health.failing, unknown: health.unknown },
    };
  }

  return {
    name: PROMOTION_SWITCH,
    type: 'promotion',
    fire: () => Promise.resolve({ outcome: 'failed', error: `${PROMOTION_SWITCH} is run by promotions only (greenlight promote)` }),
    async reconcile(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
      const revert = context.incident.endsWith(':revert');
      const found = await settleInterruptedSwitch(controller, context, signal, {
        what: context.incident,
        kind: revert ? 'rollback' : 'promotion',
        ...(revert
          ? {}
          : { adopted: (serving: string) => `; the promotion's verification and watch did not run, so check ${serving} (greenlight rollback if it fails)` }),
      });
      if (typeof found === 'object') return revert ? found.settled : unverified(found.settled, context);
      const live = controller.activeEnvironment();
      const target = controller.environments().find((env) => env !== live)!;
      if (found === 'not-moved')
        return { outcome: 'failed', error: `interrupted before its switch took effect: ${live} still serves; promote again`, data: { from: live, to: target } };
      interrupted(context, live, {
        summary: `Switch ${live} → ${target} of ${context.incident} interrupted by a greenlight restart: state unknown`,
        description: `${context.message}. greenlight stopped while switching traffic and this adapter cannot report where traffic goes, so it does not switch again. Check the traffic layer: if ${target} serves, greenlight watches the wrong environment until you run greenlight promote --to ${target} --emergency (or move traffic back).`,
        labels: { judgement: 'interrupted', from: live, to: target },
        figures: {},
      });
      return {
        outcome: 'failed',
        error: `interrupted while switching ${live} → ${target}; this traffic adapter cannot report where traffic goes, so the switch is not repeated: check the traffic layer`,
        data: { from: live, to: target },
      };
    },
  };
}

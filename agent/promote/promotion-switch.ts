/**
 * A promotion's switches (forward, and the revert) in the action journal. A promotion moves
 * traffic outside the rules' actions, but a crash or a stop mid-switch leaves the same question a
 * rollback's does: did the traffic layer move? Each switch is journaled as `promotion-switch`
 * started before the adapter is asked and finished after; one left started is settled at the next
 * start (or by the next leader) by this action's `reconcile`, never by switching again:
 *
 * - recorded before the restart (the live environment moved) → done;
 * - the traffic layer already serves the target → record it live (its verification and watch did
 *   not run: the outcome says so);
 * - it still serves the old one → nothing moved: promote again;
 * - the adapter cannot tell (a webhook) → a critical alert: a person checks the traffic layer.
 */
import { ONE_OFF_ALERT_MS } from '../alerts/alert-receiver.js';
import { alertKey, type Action, type ActionContext, type ActionOutcome, type Controller } from '../actions/action.js';
import { settleInterruptedSwitch } from '../actions/interrupted-switch.js';

/** The action journal's name for a promotion's switch (not a config entry). */
export const PROMOTION_SWITCH = 'promotion-switch';

export function promotionSwitchAction(deps: { controller: Controller; now: () => number }): Action {
  const { controller, now } = deps;
  return {
    name: PROMOTION_SWITCH,
    type: 'promotion',
    fire: () => Promise.resolve({ outcome: 'failed', error: `${PROMOTION_SWITCH} is run by promotions only (greenlight promote)` }),
    async reconcile(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome> {
      const found = await settleInterruptedSwitch(controller, context, signal, {
        what: context.incident,
        adopted: (serving) => `; the promotion's verification and watch did not run, so check ${serving} (greenlight rollback if it fails)`,
      });
      if (typeof found === 'object') return found.settled;
      const live = controller.activeEnvironment();
      const target = controller.environments().find((env) => env !== live)!;
      if (found === 'not-moved')
        return { outcome: 'failed', error: `interrupted before its switch took effect: ${live} still serves; promote again`, data: { from: live, to: target } };
      const at = now();
      controller.alert({
        status: 'firing',
        key: alertKey(context.incident, 'promote-interrupted'),
        rule: 'promote-interrupted',
        // Nothing else ends it: it tells the others, then resolves by itself.
        expiresAt: new Date(at + ONE_OFF_ALERT_MS).toISOString(),
        severity: 'critical',
        env: live,
        summary: `Switch ${live} → ${target} of ${context.incident} interrupted by a greenlight restart: state unknown`,
        description: `${context.message}. greenlight stopped while switching traffic and this adapter cannot report where traffic goes, so it does not switch again. Check the traffic layer: if ${target} serves, greenlight watches the wrong environment until you run greenlight promote --to ${target} --emergency (or move traffic back).`,
        labels: { judgement: 'interrupted', from: live, to: target },
        figures: {},
        startsAt: new Date(at).toISOString(),
        url: controller.stateUrl(),
      });
      return {
        outcome: 'failed',
        error: `interrupted while switching ${live} → ${target}; this traffic adapter cannot report where traffic goes, so the switch is not repeated: check the traffic layer`,
        data: { from: live, to: target },
      };
    },
  };
}

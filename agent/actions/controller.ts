/**
 * The Controller actions and promotions act through (actions/action.ts), made of the parts that
 * do the work: traffic control for the live environment, health and switches; the rules for the
 * "both failing" judgement; the alert dispatcher; the flag store.
 */
import type { Config } from '../../config/schema.js';
import type { RuleEvaluator } from '../../rules/rule-evaluator.js';
import type { AlertDispatcher } from '../alerts/alert-dispatcher.js';
import type { FlagStore } from '../flags/flag-store.js';
import type { TrafficControl } from '../traffic/traffic-control.js';
import type { Controller } from './action.js';

export function createController(parts: {
  config: () => Config;
  traffic: TrafficControl;
  rules: Pick<RuleEvaluator, 'holdsOn' | 'holdingOn'>;
  alerts: Pick<AlertDispatcher, 'notify' | 'firing'>;
  flags: Pick<FlagStore, 'applyPreset'>;
  /** The agent's own address (`http://127.0.0.1:9464`) once it listens, for links in alerts. */
  ownUrl: () => string | undefined;
}): Controller {
  const { traffic, rules, alerts, flags, config } = parts;
  return {
    activeEnvironment: () => traffic.live,
    environments: () => Object.keys(config().environments),
    health: (env) => traffic.health(env),
    ruleHoldsOn: async (rule, env) => (await rules.holdsOn(rule, env))?.holds,
    criticalRulesHoldingOn: (env, except) => {
      const { actions } = config();
      return rules.holdingOn(
        env,
        (rule) =>
          rule.name !== except && rule.severity === 'critical' && rule.env === 'live' && rule.actions.some((name) => actions[name]?.type === 'rollback'),
      );
    },
    switchTraffic: (plan, context, signal) => traffic.switch(plan, context, signal),
    switching: () => traffic.switching,
    rolledBackFromAt: (env) => traffic.rolledBackFromAt(env),
    servingEnvironment: (signal, incident) => traffic.serving(signal, incident),
    adoptSwitch: (to, context, detail, kind, signal) => traffic.adopt(to, context, detail, kind, signal),
    alert: (notice) => alerts.notify(notice),
    firingAlerts: (incident) => alerts.firing().filter((notice) => notice.incident === incident),
    applyFlagPreset: (preset, envs, actor, reason) => ({ changed: flags.applyPreset(preset, envs, { actor, reason }).length }),
    stateUrl: () => {
      const base = config().alerts.externalUrl ?? parts.ownUrl();
      return base === undefined ? undefined : `${base}/api/v1/state`;
    },
  };
}

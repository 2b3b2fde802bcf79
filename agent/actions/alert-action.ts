/** `alert`: page people through the receivers routed by the rule's severity; a resolved notice when the incident ends. */
import { z } from 'zod';
import { ruleProbe } from '../alerts/alert-labels.js';
import type { AlertNotice } from '../alerts/alert-receiver.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { alertKey, type Action, type ActionContext, type ActionDeps, type ActionOutcome } from './action.js';

const AlertSchema = z.strictObject({ type: z.literal('alert') });

export const alertAction: PluginDefinition<{ type: 'alert' }, Action> = {
  type: 'alert',
  schema: AlertSchema,
  create: (_config, deps) => {
    const { controller, dryRun, name, now } = deps as ActionDeps;
    const notice = (context: ActionContext, status: AlertNotice['status']): AlertNotice => ({
      status,
      key: alertKey(context.incident),
      rule: context.rule?.name ?? 'manual',
      severity: context.severity,
      env: context.env,
      summary: context.message,
      description: context.rule
        ? `${context.rule.description ?? context.rule.name}. greenlight's actions for this incident: ${context.rule.actions.join(', ') || 'none'}.`
        : context.message,
      // The contract's labels: the rule's own, and `probe` when the rule reads one probe (the lifecycle adds rule, severity, env).
      labels: { ...(context.rule?.labels ?? {}), ...(context.rule && ruleProbe(context.rule) ? { probe: ruleProbe(context.rule)! } : {}) },
      figures: { facts: context.figures?.facts ?? [], samples: context.figures?.samples ?? null },
      startsAt: new Date(context.startedAt).toISOString(),
      ...(status === 'resolved' ? { endsAt: new Date(now()).toISOString() } : {}),
      url: controller.stateUrl(),
      ...(context.rule?.repeatInterval !== undefined ? { repeatIntervalMs: context.rule.repeatInterval } : {}),
      // A rule's incident: what escalation and acknowledgement go by.
      ...(context.rule ? { incident: context.incident } : {}),
    });
    return {
      name,
      type: 'alert',
      effect: 'state',
      fire: async (context): Promise<ActionOutcome> => {
        if (dryRun) return { outcome: 'skipped', reason: `dry run: would send a ${context.severity} alert`, data: { wouldFire: true } };
        controller.alert(notice(context, 'firing'));
        return { outcome: 'succeeded', detail: `${context.severity} alert handed to the receivers` };
      },
      // Handing the notice over again after a crash is safe where it counts: PagerDuty and
      // Alertmanager de-duplicate on the incident's key (a chat receiver may show it twice).
      reconcile: async (context): Promise<ActionOutcome> => {
        controller.alert(notice(context, 'firing'));
        return { outcome: 'succeeded', detail: `${context.severity} alert handed to the receivers again after a restart interrupted the first hand-over` };
      },
      resolve: async (context): Promise<ActionOutcome | undefined> => {
        if (dryRun) return undefined;
        controller.alert(notice(context, 'resolved'));
        return { outcome: 'succeeded', detail: 'resolved notice handed to the receivers' };
      },
    };
  },
};

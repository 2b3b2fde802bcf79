/**
 * Actions: what a firing rule (or an operator) makes greenlight do. Each is a plugin
 * (`{type, schema, create}` in agent/plugins.ts) producing an Action; the ActionRunner runs
 * them once per incident, off the evaluation path, and records every outcome as events and
 * metrics. In a dry run every action decides as usual and reports what it would have done.
 */
import type { RuleConfig } from '../../config/schema.js';
import type { Figures } from '../../rules/rule-evaluator.js';
import type { AlertNotice } from '../alerts/alert-receiver.js';
import type { Severity } from '../events.js';
import type { PluginDeps } from '../plugin.js';
import type { SwitchOutcome } from '../traffic/traffic-adapter.js';

/** Why an action runs: a rule's incident, or an operator's request. */
export interface ActionContext {
  /** The rule that fired; null for a manual request. */
  rule: RuleConfig | null;
  /** `live-error-ratio-critical#3`, or `manual-<ISO time>-<n>`: actions run once per incident. */
  incident: string;
  /** The environment the incident is about (the one that was live when the rule fired). */
  env: string;
  severity: Severity;
  /** The rule's rendered message, or the operator's reason. */
  message: string;
  figures: Figures | null;
  /** `rule:<name>` or `api:admin` / `api:rollback`. */
  actor: string;
  startedAt: number;
}

export type ActionOutcome =
  | { outcome: 'succeeded'; detail: string; data?: Record<string, unknown> }
  | { outcome: 'skipped'; reason: string; data?: Record<string, unknown> }
  | { outcome: 'failed'; error: string; data?: Record<string, unknown> };

export interface Action {
  readonly name: string;
  readonly type: string;
  /** Run for a firing incident (or a manual request). Expected failures are outcomes, not throws. */
  fire(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome>;
  /** Run when the incident resolves, if the action has something to undo or announce. */
  resolve?(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome | undefined>;
  /**
   * After a crash interrupted `fire`: re-check the world, then complete the action or report it
   * failed — never repeat what may already have happened. Without it, an interrupted action is
   * reported failed and not run again.
   */
  reconcile?(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome>;
}

/** What actions may do to the world: the agent's control surface, nothing more. */
export interface Controller {
  activeEnvironment(): string;
  environments(): readonly string[];
  /**
   * Health of an environment's own probes: healthy when every probe has results and its latest
   * succeeded. `failing` names the probes that do not.
   */
  health(env: string): { healthy: boolean; failing: string[]; unknown: string[] };
  /** Whether the rule's condition also holds on `env` (the "both failing" judgement). */
  ruleHoldsOn(rule: string, env: string): Promise<boolean | undefined>;
  /** Move live traffic through the adapter and record the new live environment. Single flight. */
  switchTraffic(to: string, context: ActionContext, signal: AbortSignal): Promise<SwitchOutcome>;
  /** Whether a switch is in flight. */
  switching(): boolean;
  /** The environment the traffic layer serves now, when the adapter can tell (nginx can, a webhook cannot). */
  servingEnvironment(signal: AbortSignal): Promise<string | undefined>;
  /** Record a switch found already done in the traffic layer (after a crash), without switching again. */
  adoptSwitch(to: string, context: ActionContext, detail: string): void;
  /** Send an alert through the receivers (never waits for delivery). */
  alert(notice: AlertNotice): void;
  /** The flag store's emergency preset on one environment. */
  applyFlagPreset(preset: 'emergency-rollback', envs: string[], actor: string, reason: string): { changed: number };
  /**
   * Whether a promotion is watching `env` just after switching to it: a rollback away from it then
   * skips its cooldown (the fast revert to the still-warm old environment).
   */
  fastRevert?(env: string): boolean;
  /** A link for people (the agent's state URL), when known. */
  stateUrl(): string | undefined;
}

export interface ActionDeps extends PluginDeps {
  dryRun: boolean;
  controller: Controller;
  name: string;
}

/** A stable dedup key per incident and purpose (PagerDuty dedup_key, Alertmanager fingerprint). */
export function alertKey(incident: string, purpose = 'rule'): string {
  return `greenlight/${purpose}/${incident}`;
}

/**
 * Actions: what a firing rule (or an operator) makes greenlight do. Each is a plugin
 * (`{type, schema, create}` in agent/plugins/registry.ts) producing an Action; the ActionRunner runs
 * them once per incident, off the evaluation path, and records every outcome as events and
 * metrics. In a dry run every action decides as usual and reports what it would have done.
 */
import type { RuleConfig } from '../../config/schema.js';
import type { ReasonCode } from '../../probes/probe-result.js';
import type { Figures, RuleHolding } from '../../rules/rule-evaluator.js';
import type { AlertNotice } from '../alerts/alert-receiver.js';
import type { Severity } from '../events/events.js';
import type { PluginDeps } from '../plugins/plugin.js';
import type { SwitchStepsReport } from '../traffic/switch-steps.js';

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
  /**
   * `state` when what it does is state the agent itself keeps (a notice handed to the alert
   * lifecycle, flags set in the flag store), not something done to the world (a switch, a
   * command). In a cluster that state is the leader's, written under its lease, and so is such an
   * action's outcome: a leader whose lease ran out must not record "done" for a hand-over the next
   * leader never received (it settles the action as interrupted, and runs it again). Default `world`.
   */
  readonly effect?: 'world' | 'state';
  /**
   * Run for a firing incident (or a manual request). Expected failures are outcomes, not throws.
   * An outcome with `data.owed: true` (a rule's rollback held or refused for a reason that can
   * pass) stays owed: the runner retries it while the incident fires, once `ready` says so.
   */
  fire(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome>;
  /**
   * Whether an owed run would now go ahead, or why not: the judgement without the act. Its one side
   * effect: a hold that pages (a rollback's) pages once per incident and purpose, also when first
   * reached here.
   */
  ready?(context: ActionContext): Promise<{ go: true } | { go: false; why: string }>;
  /** Run when the incident resolves, if the action has something to undo or announce. */
  resolve?(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome | undefined>;
  /**
   * After a crash interrupted `fire`: re-check the world, then complete the action or report it
   * failed — never repeat what may already have happened. Without it, an interrupted action is
   * reported failed and not run again.
   */
  reconcile?(context: ActionContext, signal: AbortSignal): Promise<ActionOutcome>;
}

/**
 * What greenlight knows now of an environment's own probes: its interval probes (a cron probe
 * may not run for hours). A probe whose scheduled run has been in flight longer than
 * `switching.verifyTimeout` is overdue: unknown, never up, whatever its last result said.
 */
export interface EnvironmentHealth {
  /** Every interval probe has a result, its latest passed, and none is overdue. */
  healthy: boolean;
  /** Probes whose latest result failed. */
  failing: string[];
  /** Why each of `failing` failed, where a probe said (a failed fresh verification names none). */
  reasons: Record<string, ReasonCode>;
  /** Probes without a result yet, or overdue. */
  unknown: string[];
  /**
   * Those of `unknown` that greenlight has not had a chance to see: no result since it started (or
   * a reload renewed the series), the first probe in flight but not past the deadline, or not due
   * yet. That says nothing of the environment, only of greenlight; a probe that stays unanswered
   * is soon overdue, and leaves this list.
   */
  unprobed: string[];
  /** How long every probe has passed without a failure in between (since the last failed one); 0 while not healthy. */
  passingForMs: number;
  /** When it recovered: the first passing result of the probe that recovered last. Null while not healthy, or when every probe has passed since its first result. */
  healthySince: number | null;
  /** Every probe's latest result started at this time or later (null while one has none): how fresh the picture is. */
  asOf: number | null;
}

/** One probe of a fresh verification: `unknown` when no answer came within the deadline. */
export interface VerificationCheck {
  probe: string;
  result: 'ok' | 'failed' | 'unknown';
  /** `ok`, or why not: `timeout: no complete answer within 1000ms`, `status: 500 not in [200]`. */
  detail: string;
  durationMs: number;
}

/** The target's interval probes, run now, just before a switch. */
export interface Verification {
  env: string;
  ok: boolean;
  durationMs: number;
  checks: VerificationCheck[];
  /** One line: `4 probes pass on green (slowest 12ms)` or what failed. */
  summary: string;
}

/** A switch to make: `rollback` (rules, operators, a promotion's revert, a restart) or a `promotion`'s forward switch. */
export interface SwitchPlan {
  /** The environment that must still be live when the switch gets the lock; otherwise nothing happens. */
  from: string;
  to: string;
  kind: 'rollback' | 'promotion';
}

/** What a switch did: switched, or why not (as a value: these are expected). */
export type SwitchResult =
  | {
      switched: true;
      from: string;
      to: string;
      detail: string;
      data: Record<string, unknown>;
      verification: Verification;
      /** The steps after the switch (switching.steps); `ok` false names the one that failed. The switch stands either way. */
      steps: SwitchStepsReport;
    }
  | { switched: false; why: 'not-live'; reason: string }
  | { switched: false; why: 'unverified' | 'adapter'; reason: string; verification: Verification };

/** What actions may do to the world: the agent's control surface, nothing more. */
export interface Controller {
  activeEnvironment(): string;
  environments(): readonly string[];
  /** An environment's own probes, as last seen (see EnvironmentHealth). */
  health(env: string): EnvironmentHealth;
  /** Whether the rule's condition also holds on `env` (the "both failing" judgement). */
  ruleHoldsOn(rule: string, env: string): Promise<boolean | undefined>;
  /**
   * The critical rules that judge the live environment and roll it back (but `except`), whose
   * condition already holds on `env` on enough probes: what would fire on `env` once it is live.
   */
  criticalRulesHoldingOn(env: string, except?: string): Promise<RuleHolding[]>;
  /**
   * Move live traffic, one switch at a time and never during a reload: under the agent's switch
   * lock, check that `plan.from` is still live, verify `plan.to` with fresh probes, switch through
   * the adapter and record the new live environment. Expected failures are results, not throws.
   */
  switchTraffic(plan: SwitchPlan, context: ActionContext, signal: AbortSignal): Promise<SwitchResult>;
  /** Whether a switch holds the lock now. */
  switching(): boolean;
  /** When a rollback last moved traffic away from `env` (undefined: never, since this agent started). */
  rolledBackFromAt(env: string): number | undefined;
  /** The environment the traffic layer serves now, when the adapter can tell (nginx can, a webhook cannot). */
  servingEnvironment(signal: AbortSignal, incident?: string): Promise<string | undefined>;
  /**
   * Record a switch found already done in the traffic layer (after a crash), without switching
   * again, then run the steps after it (switching.steps), which the crash came before.
   */
  adoptSwitch(to: string, context: ActionContext, detail: string, kind: SwitchPlan['kind'], signal: AbortSignal): Promise<void>;
  /** Send an alert through the receivers (never waits for delivery). */
  alert(notice: AlertNotice): void;
  /** The alerts firing now that belong to `incident`, those raised before a restart included (the dispatcher keeps them). */
  firingAlerts(incident: string): AlertNotice[];
  /** The flag store's emergency preset on one environment. */
  applyFlagPreset(preset: 'emergency-rollback', envs: string[], actor: string, reason: string): { changed: number };
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

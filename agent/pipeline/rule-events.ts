/**
 * A rule's transition as everyone else hears of it: the rule.* event carrying the figures that
 * decided it, and the greenlight_rule_state gauge. A pending rule that clears is only logged.
 */
import type { Logger } from 'pino';
import type { RuleDecision } from '../../rules/rule-evaluator.js';
import type { EventBus } from '../events/events.js';
import type { AgentMetrics } from '../telemetry/metrics.js';

/** Publish `decision`; returns the incident id (`rule#N`) of a firing or resolved one. */
export function publishTransition(
  bus: Pick<EventBus, 'publish'>,
  metrics: Pick<AgentMetrics, 'setRuleState'>,
  logger: Logger,
  decision: RuleDecision,
): string | undefined {
  const { rule, transition, figures, message } = decision;
  const scope = { env: figures.env, rule: rule.name };
  const common = { severity: rule.severity, figures, labels: rule.labels };
  switch (transition.to) {
    case 'pending':
      metrics.setRuleState(rule.name, 'pending');
      bus.publish({ type: 'rule.pending', severity: 'info', ...scope, message: `${rule.name} pending: ${message}`, data: { ...common, for: rule.for } });
      return undefined;
    case 'cleared':
      metrics.setRuleState(rule.name, 'inactive');
      logger.info({ rule: rule.name, pendingForMs: transition.pendingForMs }, `${rule.name} no longer pending: the condition cleared before it fired`);
      return undefined;
    case 'firing': {
      const incident = `${rule.name}#${transition.incident}`;
      metrics.setRuleState(rule.name, 'firing');
      bus.publish({
        type: 'rule.firing',
        severity: rule.severity,
        ...scope,
        message: `${rule.name} firing: ${message}`,
        data: { ...common, incident, heldForMs: transition.heldForMs, actions: rule.actions },
      });
      return incident;
    }
    case 'resolved': {
      const incident = `${rule.name}#${transition.incident}`;
      metrics.setRuleState(rule.name, 'inactive');
      bus.publish({
        type: 'rule.resolved',
        severity: 'info',
        ...scope,
        message: `${rule.name} resolved: ${message}`,
        data: { ...common, incident, firedForMs: transition.firedForMs },
      });
      return incident;
    }
  }
}

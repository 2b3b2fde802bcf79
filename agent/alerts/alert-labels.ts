/**
 * The labels of an alert (CONTRACT.md, "Alert lifecycle"): `rule`, `severity`, `env`, `probe`
 * where one applies, plus the rule's own labels; and `alertname`, the rule's name again. Silences, inhibition, escalation policies and
 * grouping all match on these; the identifying ones always win over a rule's label of the same
 * name, so a rule cannot make its alert look like another's.
 */
import type { ConditionConfig, RuleConfig } from '../../config/schema.js';
import type { AlertNotice } from './alert-receiver.js';

/** Every label of a notice: its own (the rule's labels, a hold's judgement), then rule, severity, env. */
export function alertLabels(notice: Pick<AlertNotice, 'labels' | 'rule' | 'severity' | 'env'>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(notice.labels)) labels[name] = value;
  labels.rule = notice.rule;
  // Alertmanager's name for it, as the webhook payload carries it: a silence, an inhibition or a
  // grouping written with Alertmanager habits (alertname="…") works, instead of matching nothing.
  labels.alertname = notice.rule;
  labels.severity = notice.severity;
  if (notice.env === null) delete labels.env;
  else labels.env = notice.env;
  return labels;
}

/**
 * The one probe a rule reads, when it reads exactly one (every fact names the same single probe):
 * its alert's `probe` label. A rule over several probes, or over all (`*`), has none.
 */
export function ruleProbe(rule: Pick<RuleConfig, 'when'>): string | undefined {
  const probes = new Set<string>();
  let all = false;
  const visit = (condition: ConditionConfig): void => {
    if ('all' in condition) condition.all.forEach(visit);
    else if ('any' in condition) condition.any.forEach(visit);
    else if ('not' in condition) visit(condition.not);
    else if (condition.params?.probe === undefined) {
      // Facts that take no probe (activeEnvironment, promotionWatch, burnRate…) read no probe in particular.
      if (PROBE_FACTS.has(condition.fact)) all = true;
    } else {
      const named = condition.params.probe;
      for (const probe of Array.isArray(named) ? named : [named]) {
        if (probe === '*') all = true;
        else probes.add(String(probe));
      }
    }
  };
  visit(rule.when);
  return !all && probes.size === 1 ? [...probes][0] : undefined;
}

/** Facts that read probes, `*` (every probe) when their `probe` param is left out. */
const PROBE_FACTS = new Set([
  'errorRatio',
  'meanLatency',
  'p50Latency',
  'p95Latency',
  'p99Latency',
  'samples',
  'consecutiveFailures',
  'consecutiveSuccesses',
  'probeUp',
  'tlsDaysLeft',
  'tlsValid',
  'latencyRatio',
  'errorRatioDiff',
  'latencyRegressionP',
]);

/**
 * Inhibition, as Alertmanager has it: a firing alert matching a rule's source matchers mutes the
 * notifications of alerts matching its target matchers, when both have the same value (or both
 * lack) each label in `equal`. Two greenlight rules on top:
 *
 * - An alert never mutes itself, and a source that also matches the target side cannot mute a
 *   target that also matches the source side (two such alerts would mute each other: Alertmanager's
 *   rule).
 * - An inhibition never mutes an alert more severe than its source: a warning can never silence
 *   a critical.
 *
 * Any firing alert is a source, muted or not (as in Alertmanager). Inhibition mutes notifications
 * only: it never stops an action.
 */
import type { InhibitRuleConfig } from '../../config/schema.js';
import { compileMatchers, type LabelTest } from '../../config/matchers.js';
import type { Severity } from '../events/events.js';

/** What inhibition reads of an alert. */
export interface InhibitionCandidate {
  key: string;
  severity: Severity;
  labels: Readonly<Record<string, string>>;
}

/** Why an alert is muted: the rule and the source alert. */
export interface Inhibition {
  rule: string;
  source: string;
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

interface CompiledRule {
  name: string;
  source: LabelTest;
  target: LabelTest;
  equal: readonly string[];
}

export class Inhibitor {
  #rules: CompiledRule[];

  constructor(rules: readonly InhibitRuleConfig[]) {
    this.#rules = compile(rules);
  }

  /** A reload's rules. */
  reconfigure(rules: readonly InhibitRuleConfig[]): void {
    this.#rules = compile(rules);
  }

  get size(): number {
    return this.#rules.length;
  }

  /** The first inhibition that mutes `target` given the alerts firing now, or undefined. */
  inhibitedBy(target: InhibitionCandidate, firing: readonly InhibitionCandidate[]): Inhibition | undefined {
    for (const rule of this.#rules) {
      if (!rule.target(target.labels)) continue;
      const twoSided = rule.source(target.labels);
      for (const source of firing) {
        if (source.key === target.key || RANK[source.severity] < RANK[target.severity]) continue;
        if (!rule.source(source.labels)) continue;
        if (twoSided && rule.target(source.labels)) continue;
        if (rule.equal.every((name) => label(source.labels, name) === label(target.labels, name))) return { rule: rule.name, source: source.key };
      }
    }
    return undefined;
  }
}

function compile(rules: readonly InhibitRuleConfig[]): CompiledRule[] {
  return rules.map((rule, index) => ({
    name: rule.name ?? `inhibit[${index}]`,
    source: compileMatchers(rule.sourceMatchers),
    target: compileMatchers(rule.targetMatchers),
    equal: rule.equal,
  }));
}

function label(labels: Readonly<Record<string, string>>, name: string): string {
  return Object.hasOwn(labels, name) ? (labels[name] ?? '') : '';
}

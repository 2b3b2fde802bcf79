import { describe, expect, it } from 'vitest';
import { Inhibitor, type InhibitionCandidate } from '../../../agent/alerts/inhibitor.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { readFileSync } from 'node:fs';

const STOCK = parseAgentConfig(readFileSync(new URL('../../../config/greenlight.yaml', import.meta.url), 'utf8'), {}).alerts.inhibit;

const alert = (key: string, severity: 'warning' | 'critical', labels: Record<string, string>): InhibitionCandidate => ({
  key,
  severity,
  labels: { rule: key, severity, ...labels },
});

describe('the stock inhibitions', () => {
  const inhibitor = new Inhibitor(STOCK);

  it('a firing critical mutes the warnings of its environment, not those of the other', () => {
    const critical = alert('live-error-ratio-critical', 'critical', { env: 'blue' });
    const warning = alert('live-error-ratio-warning', 'warning', { env: 'blue' });
    const elsewhere = alert('tls-expiry-warning', 'warning', { env: 'green' });
    expect(inhibitor.inhibitedBy(warning, [critical, warning, elsewhere])).toEqual({ rule: 'critical-mutes-warnings', source: critical.key });
    expect(inhibitor.inhibitedBy(elsewhere, [critical, warning, elsewhere])).toBeUndefined();
    expect(inhibitor.inhibitedBy(critical, [critical, warning])).toBeUndefined();
  });

  it('a failing health probe mutes the alerts of the other probes on its environment, never a more severe one', () => {
    const health = alert('health-down', 'critical', { env: 'blue', probe: 'health' });
    const universe = alert('live-universe-failing', 'critical', { env: 'blue', probe: 'universe' });
    const pooled = alert('live-consecutive-failures', 'critical', { env: 'blue' });
    const otherEnv = alert('universe-green', 'critical', { env: 'green', probe: 'universe' });
    expect(inhibitor.inhibitedBy(universe, [health, universe, pooled, otherEnv])).toEqual({ rule: 'health-mutes-other-probes', source: health.key });
    // A rule over several probes has no probe label: not another probe's alert.
    expect(inhibitor.inhibitedBy(pooled, [health, universe, pooled])).toBeUndefined();
    expect(inhibitor.inhibitedBy(otherEnv, [health, otherEnv])).toBeUndefined();
    expect(inhibitor.inhibitedBy(health, [health, universe])).toBeUndefined();
    const healthWarning = alert('health-slow', 'warning', { env: 'blue', probe: 'health' });
    expect(inhibitor.inhibitedBy(universe, [healthWarning, universe])).toBeUndefined();
  });

  it('the both-environments-failing alert mutes the other alerts of its environment', () => {
    const inconclusive = alert('rollback-inconclusive', 'critical', { env: 'blue', judgement: 'inconclusive' });
    const rule = alert('live-universe-failing', 'critical', { env: 'blue', probe: 'universe' });
    const second = alert('live-consecutive-failures', 'critical', { env: 'blue' });
    const sibling = { ...inconclusive, key: 'rollback-inconclusive#2' };
    expect(inhibitor.inhibitedBy(rule, [inconclusive, rule, second])).toEqual({ rule: 'both-failing-mutes-environment', source: inconclusive.key });
    expect(inhibitor.inhibitedBy(second, [inconclusive, rule, second])?.source).toBe(inconclusive.key);
    // Two of them (two incidents held) never mute each other.
    expect(inhibitor.inhibitedBy(inconclusive, [inconclusive, sibling, rule])).toBeUndefined();
  });
});

describe('configured inhibitions', () => {
  it('needs the equal labels to agree, both absent counting as equal', () => {
    const inhibitor = new Inhibitor([
      {
        name: 'db',
        sourceMatchers: [{ name: 'rule', value: 'db-down', isRegex: false, isEqual: true }],
        targetMatchers: [{ name: 'team', value: 'desk', isRegex: false, isEqual: true }],
        equal: ['env', 'zone'],
      },
    ]);
    const source = alert('db-down', 'critical', { env: 'blue' });
    expect(inhibitor.inhibitedBy(alert('a', 'critical', { env: 'blue', team: 'desk' }), [source])?.rule).toBe('db');
    expect(inhibitor.inhibitedBy(alert('a', 'critical', { env: 'blue', team: 'desk', zone: 'x' }), [source])).toBeUndefined();
    expect(inhibitor.inhibitedBy(alert('a', 'critical', { env: 'green', team: 'desk' }), [source])).toBeUndefined();
  });

  it("two alerts matching both sides do not mute each other (Alertmanager's rule)", () => {
    const any = [{ name: 'severity', value: 'critical', isRegex: false, isEqual: true }];
    const inhibitor = new Inhibitor([{ sourceMatchers: any, targetMatchers: any, equal: ['env'] }]);
    const a = alert('a', 'critical', { env: 'blue' });
    const b = alert('b', 'critical', { env: 'blue' });
    expect(inhibitor.inhibitedBy(a, [a, b])).toBeUndefined();
    expect(inhibitor.inhibitedBy(b, [a, b])).toBeUndefined();
  });
});

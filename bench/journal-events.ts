/**
 * Realistic journal events for the journal benches: the mix an incident produces (probe state
 * changes, rule transitions with their figures, actions, alerts, flag changes, switches), with
 * the message and data sizes the agent writes. Deterministic: event `id` is always the same.
 */
import type { GreenlightEvent } from '../agent/events/events.js';

const PROBES = ['health', 'universe', 'discoveries', 'positions'];
const ENVS = ['blue', 'green'];
const RULES = ['live-error-ratio-critical', 'live-consecutive-failures', 'live-latency-warning', 'live-universe-failing'];

const figures = (id: number) => ({
  facts: [
    {
      fact: 'errorRatio',
      params: { probe: ['health', 'discoveries', 'positions'], window: '5m' },
      operator: 'greaterThan',
      value: 0.1,
      observed: 0.1 + (id % 90) / 100,
      result: true,
    },
    { fact: 'consecutiveFailures', params: { probe: 'universe' }, operator: 'greaterThanInclusive', value: 3, observed: 3 + (id % 7), result: id % 2 === 0 },
  ],
  samples: 60 + (id % 40),
  env: ENVS[id % 2]!,
});

/** The `id`-th event of a stream of incidents, stamped `time` (ms). */
export function realisticEvent(id: number, time: number): GreenlightEvent {
  const env = ENVS[id % 2]!;
  const probe = PROBES[id % PROBES.length]!;
  const rule = RULES[id % RULES.length]!;
  const base = { id, time: new Date(time).toISOString(), env, probe: null, rule: null };
  const incident = `${rule}#${1 + (id % 50)}`;
  switch (id % 10) {
    case 0:
    case 1:
    case 2:
      return {
        ...base,
        type: 'probe.down',
        severity: 'warning',
        probe,
        message: `${probe} on ${env} (live) is failing: status: HTTP 503 not in [200]; $.status ("degraded") in [healthy, ok]`,
        data: {
          reason: 'status',
          detail: 'HTTP 503 not in [200]; $.status ("degraded") in [healthy, ok]',
          status: 503,
          durationMs: 41.7,
          consecutiveFailures: 1 + (id % 12),
          active: true,
        },
      };
    case 3:
    case 4:
      return {
        ...base,
        type: 'probe.up',
        severity: 'info',
        probe,
        message: `${probe} on ${env} recovered after 42s`,
        data: { status: 200, durationMs: 35.2, downForMs: 42_118, active: true },
      };
    case 5:
      return {
        ...base,
        type: 'rule.firing',
        severity: 'critical',
        rule,
        message: `${rule} firing: errorRatio[health,discoveries,positions,5m] 0.42 > 0.1 on ${env}`,
        data: { severity: 'critical', incident, heldForMs: 0, figures: figures(id), labels: { team: 'desk' }, actions: ['rollback', 'safe-mode', 'page'] },
      };
    case 6:
      return {
        ...base,
        type: 'action.succeeded',
        severity: 'info',
        rule,
        message: `rollback for ${incident} succeeded: switched blue → green`,
        data: { action: 'rollback', type: 'rollback', incident, dryRun: false, durationMs: 12.4, detail: 'switched blue → green: recorded green as live' },
      };
    case 7:
      return {
        ...base,
        type: 'alert.sent',
        severity: 'info',
        rule,
        message: `firing alert "${rule} on ${env}" delivered to slack receiver desk`,
        data: {
          receiver: 'desk',
          receiverType: 'slack',
          status: 'firing',
          key: `{}:{env=${JSON.stringify(env)}}`,
          attempts: 1,
          kind: 'notify',
          alerts: 1,
          rules: [rule],
          incidents: [`${rule}#1`],
          escalationLevel: 1,
          httpStatus: 200,
        },
      };
    case 8:
      return {
        ...base,
        type: 'flag.changed',
        severity: 'warning',
        message: `emergency-rollback preset applied to ${env} by rule:${rule}: FORCE_V2_FALLBACK on, ALPHASTACK_V3_ENABLED off`,
        data: {
          actor: `rule:${rule}`,
          reason: `${rule} firing`,
          changes: [
            { flag: 'FORCE_V2_FALLBACK', env, old: false, new: true },
            { flag: 'ALPHASTACK_V3_ENABLED', env, old: true, new: false },
          ],
        },
      };
    default:
      return {
        ...base,
        type: 'rule.resolved',
        severity: 'info',
        rule,
        message: `${rule} resolved: errorRatio[health,discoveries,positions,5m] 0.01 <= 0.1 on ${env}`,
        data: { severity: 'critical', incident, firedForMs: 95_000, figures: figures(id), labels: { team: 'desk' } },
      };
  }
}

/**
 * The stock rules of config/greenlight.yaml against the probe results each fault produces, on a
 * simulated clock: every rule fires on its own fault (with the companions whose lines the same
 * fault necessarily crosses, such as the warning below a critical), no other rule fires, and
 * everything resolves once the fault is gone.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/agent-config.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { RuleEvaluator, watchedLines } from '../../rules/rule-evaluator.js';

const config = parseAgentConfig(readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8'), {});
const INTERVAL = 5_000;
const T0 = 1_800_000_000_000;

type Outcome = Pick<ProbeResult, 'ok' | 'durationMs'> & { extracted?: Record<string, number> };
type Fault = (probe: string, n: number) => Outcome;

const healthy: Fault = (probe) => ({ ok: true, durationMs: 12, extracted: probe === 'health' ? { memory_percent: 41.5 } : ({} as Record<string, number>) });
/** Evenly spread failures at `ratio`: the n-th probe fails when the running count of failures steps up. */
const failingAt = (ratio: number): Fault => (probe, n) => ({ ...healthy(probe, n), ok: Math.floor((n + 1) * ratio) === Math.floor(n * ratio) });
const slow = (ms: number): Fault => (probe, n) => ({ ...healthy(probe, n), durationMs: ms });
const memory = (percent: number): Fault => (probe, n) => ({ ...healthy(probe, n), extracted: probe === 'health' ? { memory_percent: percent } : ({} as Record<string, number>) });
const down = (which: string): Fault => (probe, n) => (probe === which ? { ok: false, durationMs: 5 } : healthy(probe, n));

function world() {
  const lines = watchedLines(config);
  const series = config.probes.map((probe) => {
    const extract = new Map(Object.entries(probe.extract).map(([name, e]) => [name, [...e.lines, ...(lines.get(probe.name)?.get(name) ?? [])]]));
    return new ProbeSeries(probe.name, 'blue', config.windows, extract, T0);
  });
  let now = T0;
  let n = 0;
  const fired: string[] = [];
  const resolved: string[] = [];
  const evaluator = new RuleEvaluator(
    config.rules,
    () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now, series: (env) => (env === 'blue' ? series : []) }),
    (decision) => {
      if (decision.transition.to === 'firing') fired.push(decision.rule.name);
      if (decision.transition.to === 'resolved') resolved.push(decision.rule.name);
    },
  );
  /** Feed `ms` of probe rounds with the fault; stop early when `until` says so. */
  const run = async (fault: Fault, ms: number, until?: () => boolean) => {
    for (const end = now + ms; now < end; now += INTERVAL, n++) {
      for (const s of series) {
        const outcome = fault(s.probe, n);
        s.record({ probe: s.probe, env: 'blue', status: outcome.ok ? 200 : 500, reason: outcome.ok ? undefined : 'status', checks: [], startedAt: now, extracted: {}, ...outcome });
        await evaluator.onSample(s.probe, 'blue');
      }
      if (until?.()) return now - T0;
    }
    return now - T0;
  };
  return { run, fired, resolved, evaluator };
}

const FAULTS: [string, Fault, string, string[], number][] = [
  ['7 % errors', failingAt(0.07), 'live-error-ratio-warning', [], 6 * 60_000],
  ['15 % errors', failingAt(0.15), 'live-error-ratio-critical', ['live-error-ratio-warning'], 4 * 60_000],
  ['2.5 s responses', slow(2_500), 'live-latency-warning', [], 3 * 60_000],
  ['6 s responses', slow(6_000), 'live-latency-critical', ['live-latency-warning'], 3 * 60_000],
  ['memory at 85 %', memory(85), 'live-memory-warning', [], 4 * 60_000],
  ['memory at 92 %', memory(92), 'live-memory-critical', ['live-memory-warning'], 4 * 60_000],
  ['an empty universe', down('universe'), 'live-universe-failing', [], 4 * 60_000],
  ['the positions endpoint down', down('positions'), 'live-consecutive-failures', [], 4 * 60_000],
];

describe('stock rules', () => {
  it('are all in the default config', () => {
    expect(config.rules.map((rule) => rule.name).sort()).toEqual(FAULTS.map(([, , rule]) => rule).sort());
  });

  it.each(FAULTS)('%s fires %s (and only the rules its lines cross), then resolves', async (_name, fault, own, companions, duration) => {
    const { run, fired, resolved, evaluator } = world();
    await run(healthy, 5 * 60_000);
    expect(fired).toEqual([]);
    const critical = config.rules.find((rule) => rule.name === own)!.severity === 'critical';
    // A critical rule rolls back when it fires: what matters is what fired up to that moment.
    await run(fault, duration, critical ? () => fired.includes(own) : undefined);
    expect(fired).toContain(own);
    expect(new Set(fired)).toEqual(new Set([own, ...companions.filter((c) => fired.includes(c))]));
    for (const companion of companions) if (!critical) expect(fired).toContain(companion);

    await run(healthy, 7 * 60_000);
    expect(new Set(resolved)).toEqual(new Set(fired));
    expect(evaluator.statuses().every((status) => status.state === 'inactive')).toBe(true);
  });

  it('does not fire on a quiet, healthy week-end of probes with the odd failure', async () => {
    const { run, fired } = world();
    // One failure in 40 probes (2.5 %), spread out.
    await run(failingAt(0.025), 30 * 60_000);
    expect(fired).toEqual([]);
  });
});

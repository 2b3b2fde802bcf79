/**
 * The stock rules of config/greenlight.yaml against the probe results each fault produces, on a
 * simulated clock: every rule fires on its own fault (with the companions whose lines the same
 * fault necessarily crosses, such as the warning below a critical), no other rule fires, and
 * everything resolves once the fault is gone. Both environments are probed, as the agent does:
 * blue is live, green idle; only the live one's probes count for the SLO.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import { ProbeSeries } from '../../probes/probe-series.js';
import { SloBook, sloDefinitions } from '../../probes/slo-window.js';
import type { ProbeTls } from '../../probes/tls.js';
import { RuleEvaluator, sloWindows } from '../../rules/rule-evaluator.js';
import { seriesSpecs } from '../../agent/pipeline/series-registry.js';

const config = parseAgentConfig(readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8'), {});
const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const ENVS = ['blue', 'green'];

type Outcome = Pick<ProbeResult, 'ok' | 'durationMs'> & { extracted?: Record<string, number>; tls?: ProbeTls };
type Fault = (probe: string, n: number, now: number) => Outcome;

const healthy: Fault = (probe) => ({ ok: true, durationMs: 12, extracted: probe === 'health' ? { memory_percent: 41.5 } : ({} as Record<string, number>) });
const PROBES = config.probes.map((probe) => probe.name);
/** Evenly spread failures at `ratio`: the k-th probe (counted over rounds and probes) fails when the running count of failures steps up. */
const failingAt =
  (ratio: number): Fault =>
  (probe, n, now) => {
    const k = n * PROBES.length + PROBES.indexOf(probe);
    return { ...healthy(probe, n, now), ok: Math.floor((k + 1) * ratio) === Math.floor(k * ratio) };
  };
const slow =
  (ms: number): Fault =>
  (probe, n, now) => ({ ...healthy(probe, n, now), durationMs: ms });
const memory =
  (percent: number): Fault =>
  (probe, n, now) => ({ ...healthy(probe, n, now), extracted: probe === 'health' ? { memory_percent: percent } : ({} as Record<string, number>) });
const down =
  (which: string): Fault =>
  (probe, n, now) =>
    probe === which ? { ok: false, durationMs: 5 } : healthy(probe, n, now);
/** An https target whose certificate expires at `expiresAt`. */
const certificate =
  (expiresAt: (now: number) => number): Fault =>
  (probe, n, now) => ({
    ...healthy(probe, n, now),
    tls: {
      expiresAt: expiresAt(now),
      expiring: 'alphastack.example',
      subject: 'alphastack.example',
      issuer: 'R11',
      chainLength: 2,
      valid: true,
      checkedAt: now,
      daysLeft: (expiresAt(now) - now) / DAY,
    },
  });
const expiringIn = (days: number): Fault => certificate((now) => now + days * DAY);
const renewed = expiringIn(90);

function world(options: { interval?: number } = {}) {
  const interval = options.interval ?? 5_000;
  // The series the agent builds (pipeline/series-registry.ts): each with the lines its probe extracts and the rules watch.
  const specs = seriesSpecs(config);
  const series = new Map(
    ENVS.map((env) => [env, specs.filter((spec) => spec.env === env).map((spec) => new ProbeSeries(spec.probe.name, env, config.windows, spec.lines, T0))]),
  );
  const slo = new SloBook(sloDefinitions(config), ENVS, sloWindows(config));
  let now = T0;
  let n = 0;
  const state = { watching: undefined as string | undefined };
  const fired: string[] = [];
  const resolved: string[] = [];
  const evaluator = new RuleEvaluator(
    config.rules,
    () => ({
      activeEnvironment: 'blue',
      environments: ENVS,
      now,
      series: (env) => series.get(env) ?? [],
      watching: state.watching,
      slo: (name) => slo.get(name),
    }),
    (decision) => {
      if (decision.transition.to === 'firing') fired.push(decision.rule.name);
      if (decision.transition.to === 'resolved') resolved.push(decision.rule.name);
    },
  );
  /** Feed `ms` of probe rounds with the fault on blue (green: `idle`); stop early when `until` says so. */
  const run = async (fault: Fault, ms: number, until?: () => boolean, idle: Fault = healthy) => {
    for (const end = now + ms; now < end; now += interval, n++) {
      for (const env of ENVS) {
        for (const s of series.get(env)!) {
          const outcome = (env === 'blue' ? fault : idle)(s.probe, n, now);
          const result: ProbeResult = {
            probe: s.probe,
            env,
            status: outcome.ok ? 200 : 500,
            reason: outcome.ok ? undefined : 'status',
            checks: [],
            startedAt: now,
            extracted: {},
            ...outcome,
          };
          s.record(result);
          slo.record(result, env === 'blue');
          await evaluator.onSample(s.probe, env);
        }
      }
      if (until?.()) return now - T0;
    }
    return now - T0;
  };
  return { run, fired, resolved, evaluator, state, elapsed: () => now - T0 };
}

const rule = (name: string) => config.rules.find((r) => r.name === name)!;

const FAULTS: [string, Fault, string, string[], number][] = [
  ['7 % errors', failingAt(0.07), 'live-error-ratio-warning', [], 6 * 60_000],
  ['15 % errors', failingAt(0.15), 'live-error-ratio-critical', ['live-error-ratio-warning'], 4 * 60_000],
  ['2.5 s responses', slow(2_500), 'live-latency-warning', [], 3 * 60_000],
  ['6 s responses', slow(6_000), 'live-latency-critical', ['live-latency-warning'], 3 * 60_000],
  ['memory at 85 %', memory(85), 'live-memory-warning', [], 4 * 60_000],
  ['memory at 92 %', memory(92), 'live-memory-critical', ['live-memory-warning'], 4 * 60_000],
  ['an empty universe', down('universe'), 'live-universe-failing', [], 4 * 60_000],
  ['the positions endpoint down', down('positions'), 'live-consecutive-failures', [], 4 * 60_000],
  ['a certificate expiring in 10 days', expiringIn(10), 'tls-expiry-warning', [], 60_000],
  ['a certificate expiring in 2 days', expiringIn(2), 'tls-expiry-critical', ['tls-expiry-warning'], 60_000],
];

/** Rules the tests below drive with faults that take hours (SLO burn) or two environments (a promotion's watch). */
const JUDGEMENT_RULES = ['watch-latency-regression', 'slo-fast-burn', 'slo-medium-burn', 'slo-slow-burn'];

describe('stock rules', () => {
  it('are all in the default config', () => {
    expect(config.rules.map((r) => r.name).sort()).toEqual([...FAULTS.map(([, , name]) => name), ...JUDGEMENT_RULES].sort());
  });

  it.each(FAULTS)('%s fires %s (and only the rules its lines cross), then resolves', async (_name, fault, own, companions, duration) => {
    const { run, fired, resolved, evaluator } = world();
    await run(healthy, 5 * 60_000);
    expect(fired).toEqual([]);
    const critical = rule(own).severity === 'critical';
    // A critical rule rolls back when it fires: what matters is what fired up to that moment.
    await run(fault, duration, critical ? () => fired.includes(own) : undefined);
    expect(fired).toContain(own);
    expect(new Set(fired)).toEqual(new Set([own, ...companions.filter((c) => fired.includes(c))]));
    for (const companion of companions) if (!critical) expect(fired).toContain(companion);

    // The mended target (a renewed certificate for the TLS faults), for longer than any rule keeps firing.
    const keepFiring = Math.max(...fired.map((name) => rule(name).keepFiringFor));
    await run(own.startsWith('tls-') ? renewed : healthy, Math.max(7 * 60_000, keepFiring + 2 * 60_000));
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

describe('stock TLS rules: one notification per threshold crossed', () => {
  it('a certificate running out over 21 days fires the warning once at 14 days and the critical once at 3, through probe failures without a handshake', async () => {
    const { run, fired, resolved, elapsed } = world({ interval: 600_000 });
    const expiry = T0 + 20 * DAY;
    const cert = certificate(() => expiry);
    // Every fifth round the target refuses connections: no handshake, no TLS facts on the result.
    const flaky: Fault = (probe, n, now) => (n % 5 === 4 ? { ok: false, durationMs: 1 } : cert(probe, n, now));
    const firedAt: Record<string, number> = {};
    await run(flaky, 21 * DAY, () => {
      for (const name of fired) firedAt[name] ??= elapsed();
      return false;
    });
    // (One probe in five failing also burns the availability budget: those rules are not this test's.)
    expect(fired.filter((name) => name.startsWith('tls-'))).toEqual(['tls-expiry-warning', 'tls-expiry-critical']);
    expect(resolved.filter((name) => name.startsWith('tls-'))).toEqual([]);
    // Within one probe interval of the line.
    expect(firedAt['tls-expiry-warning']! / DAY).toBeCloseTo(6, 1);
    expect(firedAt['tls-expiry-critical']! / DAY).toBeCloseTo(17, 1);
  });

  it('the rules never send reminders: their alerts go out once per incident', () => {
    for (const name of ['tls-expiry-warning', 'tls-expiry-critical']) expect(rule(name).repeatInterval).toBe(0);
  });

  it('a certificate of the idle environment counts too, and a switch does not end the incident', async () => {
    const { run, fired } = world({ interval: 60_000 });
    await run(healthy, 10 * 60_000, undefined, expiringIn(10));
    expect(fired).toEqual(['tls-expiry-warning']);
  });
});

describe('stock SLO rules (availability, 99.5 %), on a simulated clock', () => {
  it('8 % errors, under the 10 % critical line: the fast burn (14.4x over 1 h and 5 m) fires after about 54 minutes', async () => {
    const { run, fired, elapsed } = world();
    await run(healthy, 60 * 60_000);
    const start = elapsed();
    await run(failingAt(0.08), 2 * 60 * 60_000, () => fired.includes('slo-fast-burn'));
    expect(fired).toContain('slo-fast-burn');
    expect(new Set(fired)).toEqual(new Set(['live-error-ratio-warning', 'slo-fast-burn']));
    // 8 % over the hour's mix of healthy and failing reaches 7.2 % after 54 minutes.
    const minutes = (elapsed() - start) / 60_000;
    expect(minutes).toBeGreaterThan(51);
    expect(minutes).toBeLessThan(58);
  });

  it('4 % errors from the start, under every fixed line: the medium burn (6x over 6 h and 30 m) fires once half of 6 h is observed', async () => {
    const { run, fired, elapsed } = world();
    await run(failingAt(0.04), 5 * 60 * 60_000, () => fired.includes('slo-medium-burn'));
    expect(fired).toEqual(['slo-medium-burn']);
    // Half the window's thirty 12-minute buckets hold probes: 14 to 15 buckets of time, 2 h 48 to 3 h
    // (less the part of the first bucket before the start).
    expect(elapsed() / 3_600_000).toBeGreaterThan(2.6);
    expect(elapsed() / 3_600_000).toBeLessThanOrEqual(3.01);
  });

  it('1 % errors: the ticket (1x over 3 d and 6 h, a warning) after half of 3 days, and nothing pages', async () => {
    const { run, fired, elapsed } = world({ interval: 120_000 });
    await run(failingAt(0.01), 48 * 3_600_000, () => fired.includes('slo-slow-burn'));
    expect(fired).toEqual(['slo-slow-burn']);
    expect(rule('slo-slow-burn').severity).toBe('warning');
    expect(rule('slo-slow-burn').actions).toEqual(['page']);
    // Half the window's thirty 2.4-hour buckets hold probes: 14 to 15 buckets of time, 33.6 to 36 h
    // (less the part of the first bucket before the start).
    expect(elapsed() / 3_600_000).toBeGreaterThan(31.2);
    expect(elapsed() / 3_600_000).toBeLessThanOrEqual(36.01);
  });

  it('failures of the idle environment do not burn the budget (a deployment there)', async () => {
    const { run, fired } = world({ interval: 30_000 });
    await run(healthy, 5 * 60 * 60_000, undefined, () => ({ ok: false, durationMs: 5 }));
    expect(fired).toEqual([]);
  });
});

describe('stock rule watch-latency-regression', () => {
  const latency =
    (ms: number): Fault =>
    (probe, n, now) => ({ ...healthy(probe, n, now), durationMs: ms * (0.8 + (0.4 * ((n * 7919) % 101)) / 101) });

  it('fires during a promotion watch when the live environment is 3x slower than the other, under every fixed line', async () => {
    const { run, fired, state } = world();
    await run(latency(300), 5 * 60_000, undefined, latency(100));
    expect(fired).toEqual([]); // no watch, no judgement
    state.watching = 'blue';
    await run(latency(300), 30_000, () => fired.includes('watch-latency-regression'), latency(100));
    expect(fired).toEqual(['watch-latency-regression']);
  });

  it('stays quiet in a watch when both are alike', async () => {
    const { run, fired, state } = world();
    state.watching = 'blue';
    await run(latency(100), 10 * 60_000, undefined, latency(100));
    expect(fired).toEqual([]);
  });
});

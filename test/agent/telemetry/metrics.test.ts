import { describe, expect, it } from 'vitest';
import { AgentMetrics, RENDER_STEPS_PER_SLICE } from '../../../agent/telemetry/metrics.js';
import type { ProbeResult } from '../../../probes/probe-result.js';
import { ProbeSeries } from '../../../probes/probe-series.js';
import { hasTool, promtoolCheckMetrics } from '../../helpers/tools.js';

const T0 = 1_800_000_000_000;
const WINDOWS = [60_000, 300_000];

function setup() {
  let now = T0;
  const series = [new ProbeSeries('health', 'blue', WINDOWS, new Map(), T0), new ProbeSeries('health', 'green', WINDOWS, new Map(), T0)];
  const metrics = new AgentMetrics({ now: () => now, processMetrics: false });
  for (const s of series) metrics.addSeries(s, WINDOWS);
  metrics.setActiveEnvironment('blue', ['blue', 'green']);
  const record = (index: number, result: Partial<ProbeResult>) => {
    const s = series[index]!;
    const full: ProbeResult = { probe: s.probe, env: s.env, ok: true, durationMs: 20, startedAt: now, checks: [], extracted: {}, ...result };
    s.record(full);
    metrics.recordResult(s, full);
  };
  return { metrics, series, record, advance: (ms: number) => (now += ms) };
}

describe('AgentMetrics', () => {
  it('exposes the contract metric names with their labels', async () => {
    const { metrics, record } = setup();
    record(0, { ok: true, durationMs: 20 });
    record(0, { ok: false, reason: 'timeout', durationMs: 2_000 });
    record(1, { ok: true, durationMs: 30 });
    const { body, contentType } = await metrics.render(false);
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const lines = body.split('\n').filter((line) => !line.startsWith('#') && line !== '');
    expect(lines).toEqual(
      expect.arrayContaining([
        'greenlight_probe_success{probe="health",env="blue"} 0',
        'greenlight_probe_success{probe="health",env="green"} 1',
        'greenlight_probes_total{probe="health",env="blue",result="ok"} 1',
        'greenlight_probes_total{probe="health",env="blue",result="timeout"} 1',
        'greenlight_probes_total{probe="health",env="green",result="ok"} 1',
        'greenlight_probe_duration_seconds_bucket{le="0.025",probe="health",env="blue"} 1',
        'greenlight_probe_duration_seconds_bucket{le="2",probe="health",env="blue"} 2',
        'greenlight_probe_duration_seconds_count{probe="health",env="blue"} 2',
        'greenlight_window_error_ratio{probe="health",env="blue",window="1m"} 0.5',
        'greenlight_window_error_ratio{probe="health",env="green",window="5m"} 0',
        'greenlight_consecutive_failures{probe="health",env="blue"} 1',
        'greenlight_active_environment{env="blue"} 1',
        'greenlight_active_environment{env="green"} 0',
      ]),
    );
    const p99 = lines.find((line) => line.startsWith('greenlight_window_latency_seconds{probe="health",env="blue",window="1m",quantile="0.99"}'));
    expect(Number(p99!.split(' ')[1])).toBeGreaterThan(1.6);
    expect(Number(p99!.split(' ')[1])).toBeLessThan(2.4);
  });

  it("gives the window quantiles with a summary's _sum and _count as counters since the start, which never go down as the window slides (regression: rate() read 20 probes a second for 1)", async () => {
    const { metrics, record, advance } = setup();
    record(0, { ok: true, durationMs: 20 });
    record(0, { ok: true, durationMs: 40 });
    advance(120_000);
    const { body } = await metrics.render(false);
    // Both probes left the 1 m window: its quantiles say so, its counters do not go down.
    expect(body).toContain('greenlight_window_latency_seconds{probe="health",env="blue",window="1m",quantile="0.5"} NaN');
    expect(body).toContain('greenlight_window_latency_seconds_count{probe="health",env="blue",window="1m"} 2\n');
    expect(body).toContain('greenlight_window_latency_seconds_sum{probe="health",env="blue",window="1m"} 0.06\n');
  });

  it('reports NaN window figures for a series with no probe in the window yet', async () => {
    const { metrics } = setup();
    const { body } = await metrics.render(false);
    expect(body).toContain('greenlight_window_error_ratio{probe="health",env="blue",window="1m"} NaN');
    expect(body).toContain('greenlight_window_latency_seconds{probe="health",env="blue",window="5m",quantile="0.5"} NaN');
  });

  it('recomputes the window figures on every scrape, also when the clock has not moved', async () => {
    const { metrics, record } = setup();
    record(0, { ok: true });
    expect((await metrics.render(false)).body).toContain('greenlight_window_error_ratio{probe="health",env="blue",window="1m"} 0\n');
    record(0, { ok: false, reason: 'status' });
    expect((await metrics.render(false)).body).toContain('greenlight_window_error_ratio{probe="health",env="blue",window="1m"} 0.5\n');
  });

  it('lets old samples leave the windows as the clock moves', async () => {
    const { metrics, record, advance } = setup();
    record(0, { ok: false, reason: 'status' });
    advance(120_000);
    record(0, { ok: true });
    const { body } = await metrics.render(false);
    expect(body).toContain('greenlight_window_error_ratio{probe="health",env="blue",window="1m"} 0\n');
    expect(body).toContain('greenlight_window_error_ratio{probe="health",env="blue",window="5m"} 0.5\n');
  });

  it('a series rebuilt by a reload goes on from the counts of the one it replaced: no counter goes down in a process (regression: every change reset them)', async () => {
    const { metrics, series, record } = setup();
    record(0, { ok: true, durationMs: 20 });
    record(0, { ok: false, reason: 'timeout', durationMs: 2_000 });
    metrics.removeSeries(series[0]!);
    expect((await metrics.render(false)).body).not.toContain('probe="health",env="blue"');
    const rebuilt = new ProbeSeries('health', 'blue', WINDOWS, new Map(), T0);
    metrics.addSeries(rebuilt, WINDOWS);
    const result: ProbeResult = { probe: 'health', env: 'blue', ok: true, durationMs: 30, startedAt: T0, checks: [], extracted: {} };
    rebuilt.record(result);
    metrics.recordResult(rebuilt, result);
    const { body } = await metrics.render(false);
    expect(body).toContain('greenlight_probes_total{probe="health",env="blue",result="ok"} 2');
    expect(body).toContain('greenlight_probes_total{probe="health",env="blue",result="timeout"} 1');
    expect(body).toContain('greenlight_probe_duration_seconds_count{probe="health",env="blue"} 3');
  });

  it('counts skipped ticks', async () => {
    const { metrics, series } = setup();
    metrics.recordSkipped(series[0]!);
    expect((await metrics.render(false)).body).toContain('greenlight_probes_total{probe="health",env="blue",result="skipped"} 1');
  });

  it('serves OpenMetrics when asked, and the Prometheus format keeps its names afterwards', async () => {
    const { metrics, record } = setup();
    record(0, { ok: true });
    const open = await metrics.render(true);
    expect(open.contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(open.body).toContain('# TYPE greenlight_probes counter');
    expect(open.body).toContain('greenlight_probes_total{probe="health",env="blue",result="ok"} 1');
    expect(open.body.endsWith('# EOF\n')).toBe(true);
    // Regression: prom-client renames counters in place for OpenMetrics.
    const text = await metrics.render(false);
    expect(text.body).toContain('# TYPE greenlight_probes_total counter');
    expect(text.body).toContain('greenlight_probes_total{probe="health",env="blue",result="ok"} 1');
    expect(text.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('removes a series from the exposition', async () => {
    const { metrics, series, record } = setup();
    record(1, { ok: false, reason: 'refused' });
    metrics.removeSeries(series[1]!);
    const { body } = await metrics.render(false);
    expect(body).not.toContain('env="green",');
    expect(body).toContain('env="blue"');
  });

  it("declares every result of greenlight_probes_total at 0 from a series' start, and the confirmation counters of a probe that confirms (regression: a result appeared at 1, so increase() never counted the first timeout)", async () => {
    const { metrics, record } = setup();
    const confirming = new ProbeSeries('universe', 'blue', WINDOWS, new Map(), T0);
    metrics.addSeries(confirming, WINDOWS, true);
    let { body } = await metrics.render(false);
    for (const env of ['blue', 'green'])
      for (const result of ['ok', 'skipped', 'timeout', 'refused', 'dns', 'tls', 'reset', 'status', 'assertion', 'body_too_large', 'invalid_json'])
        expect(body).toContain(`greenlight_probes_total{probe="health",env="${env}",result="${result}"} 0\n`);
    expect(body).toContain('greenlight_confirmation_probes_total{probe="universe",env="blue"} 0\n');
    expect(body).toContain('greenlight_confirmation_capped_total{probe="universe",env="blue"} 0\n');
    expect(body).not.toContain('greenlight_confirmation_probes_total{probe="health"');
    record(0, { ok: false, reason: 'timeout' });
    ({ body } = await metrics.render(false));
    expect(body).toContain('greenlight_probes_total{probe="health",env="blue",result="timeout"} 1\n');
    expect(body).toContain('greenlight_probes_total{probe="health",env="blue",result="ok"} 0\n');
    if (hasTool('promtool')) expect(promtoolCheckMetrics(body).output).toBe('');
  });

  it('counts confirmation re-probes and capped ones, only for series that have confirmed', async () => {
    const { metrics, record, series } = setup();
    record(0, { ok: false, reason: 'status' });
    record(0, { ok: false, reason: 'status', confirmation: { of: 'failure', attempt: 1 } });
    metrics.recordConfirmationCapped(series[0]!);
    record(1, { ok: true });
    const { body } = await metrics.render(false);
    expect(body).toContain('greenlight_confirmation_probes_total{probe="health",env="blue"} 1\n');
    expect(body).toContain('greenlight_confirmation_capped_total{probe="health",env="blue"} 1\n');
    expect(body).not.toContain('greenlight_confirmation_probes_total{probe="health",env="green"}');
    // A re-probe is a probe: in the probe counts, not in the window.
    expect(body).toContain('greenlight_probes_total{probe="health",env="blue",result="status"} 2\n');
    expect(series[0]!.windows[0]!.totals(T0).count).toBe(1);
    expect((await setup().metrics.render(false)).body).not.toContain('greenlight_confirmation');
  });

  it('counts alert deliveries per receiver, status and outcome', async () => {
    const { metrics } = setup();
    metrics.countAlert('oncall', 'firing', 'sent');
    metrics.countAlert('oncall', 'firing', 'sent');
    metrics.countAlert('oncall', 'resolved', 'failed');
    const { body } = await metrics.render(false);
    expect(body).toContain('greenlight_alerts_total{receiver="oncall",status="firing",outcome="sent"} 2');
    expect(body).toContain('greenlight_alerts_total{receiver="oncall",status="resolved",outcome="failed"} 1');
  });

  it('declares every action and receiver at 0, so the first increase counts; an action or receiver no longer configured leaves (regression: series appeared at 1)', async () => {
    const { metrics } = setup();
    metrics.declare(['rollback', 'manual-rollback'], ['oncall', 'desk']);
    let { body } = await metrics.render(false);
    for (const outcome of ['succeeded', 'failed', 'skipped', 'dry_run'])
      expect(body).toContain(`greenlight_actions_total{action="rollback",outcome="${outcome}"} 0`);
    expect(body).toContain('greenlight_actions_total{action="manual-rollback",outcome="succeeded"} 0');
    for (const status of ['firing', 'resolved'])
      for (const outcome of ['sent', 'failed']) expect(body).toContain(`greenlight_alerts_total{receiver="desk",status="${status}",outcome="${outcome}"} 0`);
    metrics.countAlert('oncall', 'firing', 'sent');
    metrics.countAction('rollback', 'succeeded');
    // A reload keeps what was counted, and drops the receiver it removed.
    metrics.declare(['rollback', 'manual-rollback'], ['oncall']);
    ({ body } = await metrics.render(false));
    expect(body).toContain('greenlight_alerts_total{receiver="oncall",status="firing",outcome="sent"} 1');
    expect(body).toContain('greenlight_actions_total{action="rollback",outcome="succeeded"} 1');
    expect(body).not.toContain('receiver="desk"');
    // An action renamed by a reload leaves too (regression: greenlight_actions_total{action="rollback"} stayed beside the new name).
    metrics.declare(['rb', 'manual-rollback'], ['oncall']);
    ({ body } = await metrics.render(false));
    expect(body).not.toContain('action="rollback"');
    expect(body).toContain('greenlight_actions_total{action="rb",outcome="succeeded"} 0');
    expect(body).toContain('greenlight_actions_total{action="manual-rollback",outcome="succeeded"} 0');
  });

  it.skipIf(!hasTool('promtool'))('passes promtool check metrics', async () => {
    const { metrics, record, series } = setup();
    metrics.countAlert('oncall', 'firing', 'sent');
    record(0, { ok: false, reason: 'assertion' });
    record(0, { ok: false, reason: 'assertion', confirmation: { of: 'failure', attempt: 1 } });
    metrics.recordConfirmationCapped(series[0]!);
    record(1, { ok: true });
    const check = promtoolCheckMetrics((await metrics.render(false)).body);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });
});

describe('AgentMetrics: a scrape in slices', () => {
  /** `count` series with a result each (every family then has a line per series). */
  function many(count: number) {
    const metrics = new AgentMetrics({ now: () => T0, processMetrics: false });
    for (let i = 0; i < count; i++) {
      const series = new ProbeSeries(`probe-${i}`, 'blue', WINDOWS, new Map(), T0);
      metrics.addSeries(series, WINDOWS);
      const ok = i % 3 !== 0;
      const result: ProbeResult = {
        probe: series.probe,
        env: 'blue',
        ok,
        ...(ok ? {} : { reason: 'timeout' as const }),
        durationMs: 10 + i,
        startedAt: T0,
        checks: [],
        extracted: {},
      };
      series.record(result);
      metrics.recordResult(series, result);
    }
    return metrics;
  }

  it('renders the per-series families a bounded part per slice, each in its own turn, with the same text as all at once (regression: 400 ms of the loop in one go at 10,000 series)', async () => {
    const metrics = many(1_000);
    const whole = (await metrics.render(false)).body;
    let slices = 0;
    const sliced = await metrics.render(false, async (work) => {
      await new Promise((resolve) => setImmediate(resolve)); // its own turn, as the TurnQueue gives
      slices++;
      return work();
    });
    expect(sliced.body).toBe(whole);
    // Six families with a line or more for each of 1,000 series: 6,000 steps, at most
    // RENDER_STEPS_PER_SLICE a slice.
    expect(slices).toBeGreaterThanOrEqual(Math.ceil(6_000 / RENDER_STEPS_PER_SLICE));
    expect(slices).toBeLessThanOrEqual(Math.ceil(6_000 / RENDER_STEPS_PER_SLICE) + 1);
  });

  it('a render whose slice will not run (the agent is stopping) fails with a reason, and the next render works', async () => {
    const metrics = many(10);
    await expect(metrics.render(false, async () => undefined)).rejects.toThrow(/stopping/);
    expect((await metrics.render(false)).body).toContain('greenlight_probe_success{probe="probe-1",env="blue"} 1');
  });
});

/**
 * The cost of a /metrics scrape with N series that have probe data: the real Agent probes two
 * simulator processes for a few seconds (so every series has results in its windows), then
 * `agent.metrics.render(false)` (Prometheus text) and `render(true)` (OpenMetrics) are timed
 * many times. Target: median < 25 ms. Also reports the size of the text.
 *
 * Runs in the bench process: render is what is timed, with performance.now() and cpuUsage().
 */
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { Agent } from '../agent/agent.js';
import { parseAgentConfig } from '../agent/reload/agent-config.js';
import {
  buildConfigText,
  cpuMicros,
  fmt,
  freshDataDir,
  log,
  quantile,
  section,
  sleep,
  sortedCopy,
  startSimulatorProcess,
  verdict,
  type SimulatorProcess,
  type SummaryRow,
} from './harness.js';

export interface MetricsRenderOptions {
  series: number;
  /** Seconds of probing after the first round (default 4). */
  probeSeconds?: number;
  /** Timed renders per format (default 50). */
  renders?: number;
}

export interface RenderFigures {
  format: 'prometheus' | 'openmetrics';
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  cpuMsPerRender: number;
  bytes: number;
  lines: number;
}

export interface MetricsRenderResult {
  name: 'metrics-render';
  series: number;
  prometheus: RenderFigures;
  openMetrics: RenderFigures;
  /** Median of a few Prometheus renders while the agent was still probing. */
  whileProbingMedianMs: number | undefined;
  rows: SummaryRow[];
}

export async function runMetricsRender(options: MetricsRenderOptions): Promise<MetricsRenderResult> {
  const { series } = options;
  const probeSeconds = options.probeSeconds ?? 4;
  const renders = options.renders ?? 50;
  section(`metrics-render: ${series} series with probe data, ${renders} timed renders per format`);

  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  let agent: Agent | undefined;
  let closed = false;
  const dataDir = freshDataDir('metrics');
  try {
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    const config = parseAgentConfig(buildConfigText({ series, blueUrl: blue.url, greenUrl: green.url, dataDir }), {});
    agent = new Agent({ config, logger: pino({ level: 'silent' }) });
    await agent.start();
    const readyBy = performance.now() + 20_000;
    while (!agent.ready && performance.now() < readyBy) await sleep(100);
    if (!agent.ready) log('WARNING: the agent did not finish its first probe round within 20 s');
    await sleep(probeSeconds * 1_000);

    // A few scrapes while probing: shows what a scrape costs with probe callbacks interleaved.
    const whileProbing: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await agent.metrics.render(false);
      whileProbing.push(performance.now() - t);
      await sleep(200);
    }
    const whileProbingMedianMs = quantile(sortedCopy(whileProbing), 0.5);

    const state = agent.state();
    const withData = state.series.filter((s) => Object.values(s.windows).some((w) => w.count > 0)).length;
    const probes = state.series.reduce((sum, s) => sum + Math.max(...Object.values(s.windows).map((w) => w.count)), 0);
    await agent.close();
    closed = true;
    log(`${state.series.length} series, ${withData} with probe data (${probes} probes recorded); agent stopped, timing renders`);
    log(`Prometheus render while probing (10 renders): median ${fmt(whileProbingMedianMs, 1)} ms`);

    const prometheus = await timeRenders(agent, false, renders);
    const openMetrics = await timeRenders(agent, true, renders);
    // An OpenMetrics render renames counters in place and puts them back: check that it did.
    const after = await agent.metrics.render(false);
    const namesRestored = after.body.includes('\ngreenlight_probes_total{');
    if (!namesRestored) log('WARNING: after an OpenMetrics render, the Prometheus text no longer has greenlight_probes_total');

    for (const f of [prometheus, openMetrics]) {
      log(
        `${f.format.padEnd(11)}: median ${fmt(f.medianMs, 2)} ms, p95 ${fmt(f.p95Ms, 2)} ms, max ${fmt(f.maxMs, 2)} ms, ` +
          `CPU ${fmt(f.cpuMsPerRender, 2)} ms/render; ${fmt(f.bytes / 1024, 0)} KiB, ${f.lines} lines (${fmt(f.bytes / series, 0)} bytes per series)`,
      );
    }

    const rows: SummaryRow[] = [
      {
        bench: 'metrics-render',
        figure: 'render(false) median / p95',
        target: 'median < 25 ms',
        measured: `${fmt(prometheus.medianMs, 1)} / ${fmt(prometheus.p95Ms, 1)} ms`,
        verdict: verdict(prometheus.medianMs < 25),
      },
      {
        bench: 'metrics-render',
        figure: 'render(true) OpenMetrics median / p95',
        target: 'median < 25 ms',
        measured: `${fmt(openMetrics.medianMs, 1)} / ${fmt(openMetrics.p95Ms, 1)} ms`,
        verdict: verdict(openMetrics.medianMs < 25),
      },
      { bench: 'metrics-render', figure: 'render(false) while probing, median', target: '-', measured: `${fmt(whileProbingMedianMs, 1)} ms`, verdict: 'info' },
      {
        bench: 'metrics-render',
        figure: 'exposition size',
        target: '-',
        measured: `${fmt(prometheus.bytes / 1024, 0)} KiB, ${prometheus.lines} lines`,
        verdict: 'info',
      },
      {
        bench: 'metrics-render',
        figure: 'counter names after OpenMetrics',
        target: 'restored',
        measured: namesRestored ? 'restored' : 'NOT restored',
        verdict: verdict(namesRestored),
      },
    ];
    return { name: 'metrics-render', series, prometheus, openMetrics, whileProbingMedianMs, rows };
  } finally {
    if (!closed) await agent?.close().catch(() => undefined);
    await Promise.all(sims.map((sim) => sim.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function timeRenders(agent: Agent, openMetrics: boolean, count: number): Promise<RenderFigures> {
  for (let i = 0; i < 3; i++) await agent.metrics.render(openMetrics); // warm-up
  const times: number[] = [];
  let body = '';
  const cpu0 = cpuMicros();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    ({ body } = await agent.metrics.render(openMetrics));
    times.push(performance.now() - t);
  }
  const cpuMsPerRender = (cpuMicros() - cpu0) / 1_000 / count;
  const sorted = sortedCopy(times);
  let lines = 0;
  for (let i = body.indexOf('\n'); i !== -1; i = body.indexOf('\n', i + 1)) lines++;
  return {
    format: openMetrics ? 'openmetrics' : 'prometheus',
    medianMs: quantile(sorted, 0.5)!,
    p95Ms: quantile(sorted, 0.95)!,
    maxMs: sorted[sorted.length - 1]!,
    cpuMsPerRender,
    bytes: Buffer.byteLength(body),
    lines,
  };
}

/**
 * The memory the SLO count windows cost (issue 15), with 1,000 probe × environment series:
 *
 * - structure bytes, counted exactly in this process: the series' sliding windows (what the
 *   agent keeps without SLOs) against the SLO count windows of one SLO over every probe, and of
 *   one SLO per probe (500 SLOs, each counted on both environments: the most a config can ask
 *   for). Every SLO keeps the stock burn-rate windows 5m, 30m, 1h, 6h, 3d and its 30-day period:
 *   30 buckets of two 32-bit counts each, 240 bytes a window, whatever the traffic.
 * - RSS and heap after a full GC of the real agent in a forked worker probing two simulators at
 *   1 s, after a warm-up, for the three configs in turn (same machine, same run).
 */
import { parseAgentConfig } from '../agent/reload/agent-config.js';
import { ProbeSeries } from '../probes/probe-series.js';
import { SloBook, sloDefinitions } from '../probes/slo-window.js';
import { sloWindows } from '../rules/rule-evaluator.js';
import { buildConfigText, fmt, forkWorker, log, mb, section, sleep, startSimulatorProcess, table, type SimulatorProcess, type SummaryRow } from './harness.js';

export interface SloMemoryOptions {
  series: number;
  /** Seconds each worker probes before it is measured (default 45). */
  warmupSeconds?: number;
}

type Variant = 'none' | 'one' | 'per-probe';
const VARIANTS: Variant[] = ['none', 'one', 'per-probe'];
const LABEL: Record<Variant, string> = { none: 'without SLOs', one: 'one SLO over every probe', 'per-probe': 'one SLO per probe' };

/**
 * A series' windows as they stand once it has been probed at `everyMs` for its longest window:
 * a window's memory grows with its busiest bucket (sliding-window.ts), so a fresh one would
 * understate it. Each answer lands 5 ms after its tick, and every third one 700 ms after, as slow
 * answers do, so a 1-minute window's bucket of a 1 s probe sometimes holds three.
 */
function probed(series: ProbeSeries, everyMs: number): ProbeSeries {
  const longest = Math.max(...series.windows.map((w) => w.windowMs));
  for (let i = 0; i * everyMs < longest; i++) {
    for (const window of series.windows) window.add(true, 20, i * everyMs + (i % 3 === 0 ? 700 : 5));
  }
  return series;
}

/** The config below is parsed for its windows only: no agent opens its state. */
const UNOPENED_DATA_DIR = '/nonexistent/greenlight-bench';

/** Bytes of the series' sliding windows (after probing, see `probed`) and of the SLO count windows a config asks for. */
function structureBytes(series: number, variant: Variant): { windows: number; slo: number; trackers: number } {
  const config = parseAgentConfig(
    buildConfigText({ series, blueUrl: 'http://127.0.0.1:1', greenUrl: 'http://127.0.0.1:2', slo: variant, dataDir: UNOPENED_DATA_DIR }),
    {},
  );
  const envs = Object.keys(config.environments);
  let windows = 0;
  for (const probe of config.probes) {
    for (const env of probe.environments ?? envs) {
      const series = probed(new ProbeSeries(probe.name, env, config.windows, new Map(), 0), probe.every ?? config.probeDefaults.every);
      for (const window of series.windows) windows += window.footprint().bytes;
    }
  }
  const book = new SloBook(sloDefinitions(config), envs, sloWindows(config));
  return { windows, slo: book.bytes, trackers: book.size * envs.length };
}

export async function runSloMemory(options: SloMemoryOptions): Promise<{ rows: SummaryRow[] }> {
  const { series } = options;
  const warmup = options.warmupSeconds ?? 45;
  section(`slo-memory: the SLO count windows with ${series} series (structure bytes; RSS after ${warmup} s of probing at 1 s)`);

  const bytes = Object.fromEntries(VARIANTS.map((v) => [v, structureBytes(series, v)])) as Record<Variant, ReturnType<typeof structureBytes>>;
  log(
    table(
      ['config', 'sliding windows', 'SLO count windows', 'SLO x env', 'SLO / sliding'],
      VARIANTS.map((v) => [
        LABEL[v],
        mb(bytes[v].windows),
        `${fmt(bytes[v].slo / 1_024, 1)} KiB`,
        String(bytes[v].trackers),
        `${((bytes[v].slo / bytes[v].windows) * 100).toFixed(2)} %`,
      ]),
    ),
  );

  const rss: Partial<Record<Variant, { rss: number; heap: number | undefined }>> = {};
  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    for (const variant of VARIANTS) {
      const worker = forkWorker(['--mode', 'agent', '--series', String(series), '--blue', blue.url, '--green', green.url, '--slo', variant], ['--expose-gc']);
      try {
        await worker.call({ cmd: 'start' });
        await sleep(warmup * 1_000);
        // RSS follows the GC sawtooth: the median of three samples 5 s apart, each after a full GC.
        const samples = [];
        for (let i = 0; i < 3; i++) {
          if (i > 0) await sleep(5_000);
          samples.push(await worker.sample({ gc: true }));
        }
        const median = (values: number[]) => values.sort((a, b) => a - b)[1]!;
        rss[variant] = { rss: median(samples.map((x) => x.memory.rss)), heap: median(samples.map((x) => x.heapAfterGc ?? 0)) };
        log(
          `${LABEL[variant]}: RSS ${mb(rss[variant]!.rss)}, heap after GC ${mb(rss[variant]!.heap)} (medians of 3), ${fmt(samples.at(-1)!.ratePerSecond, 0)} probes/s`,
        );
      } finally {
        await worker.stop();
      }
    }
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
  }

  const delta = (variant: Variant, key: 'rss' | 'heap') => {
    const base = rss.none?.[key];
    const value = rss[variant]?.[key];
    return base === undefined || value === undefined ? '-' : `${value - base >= 0 ? '+' : ''}${fmt((value - base) / 1_048_576, 1)} MB`;
  };
  const rows: SummaryRow[] = [
    {
      bench: 'slo-memory',
      figure: `structure bytes, ${series} series: sliding windows (no SLO)`,
      target: 'report',
      measured: mb(bytes.none.windows),
      verdict: 'info',
    },
    ...(['one', 'per-probe'] as const).map((v): SummaryRow => ({
      bench: 'slo-memory',
      figure: `+ SLO count windows, ${LABEL[v]} (${bytes[v].trackers} SLO x env, 6 windows)`,
      target: 'report',
      measured: `${fmt(bytes[v].slo / 1_024, 1)} KiB (${((bytes[v].slo / bytes[v].windows) * 100).toFixed(2)} % of the sliding windows)`,
      verdict: 'info',
    })),
    ...VARIANTS.map((v): SummaryRow => ({
      bench: 'slo-memory',
      figure: `RSS / heap after GC, ${LABEL[v]}`,
      target: v === 'none' ? 'baseline' : 'report',
      measured: `${mb(rss[v]?.rss)} (${delta(v, 'rss')}) / ${mb(rss[v]?.heap)} (${delta(v, 'heap')})`,
      verdict: 'info',
    })),
  ];
  return { rows };
}

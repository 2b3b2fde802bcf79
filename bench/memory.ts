/**
 * Memory of the agent with N series at 1 s: RSS after warm-up (target < 150 MB), then RSS sampled
 * every ~10 s over a soak (default 10 minutes) and its growth over the soak (target: flat within
 * 5%), judged on medians of the first and last thirds of the samples because single samples
 * land on random phases of the GC sawtooth; first -> last sample is printed too. The agent runs in a forked worker
 * (bench/agent-process.ts, with --expose-gc) so the bench harness does not pollute the figures;
 * the simulators run in their own processes. The soak's agent starts from an empty state
 * directory; after it, another agent starts over a month of state for the same series (30 days of
 * rollups and events, as the report bench makes them) and its RSS is read after the same warm-up.
 */
import { rmSync } from 'node:fs';
import { HOUR_MS } from '../agent/reports/rollup-store.js';
import {
  benchProbeName,
  fmt,
  forkWorker,
  freshDataDir,
  log,
  mb,
  pct,
  quantile,
  section,
  sleep,
  sortedCopy,
  startSimulatorProcess,
  verdict,
  type SimulatorProcess,
  type SummaryRow,
  type WorkerSample,
} from './harness.js';
import { generate } from './report.js';

export interface MemoryOptions {
  series: number;
  /** Soak length in seconds after warm-up (default 600). */
  soakSeconds?: number;
  /**
   * Seconds before the first sample (default 60): the config parse and the first probe round
   * leave garbage that the first major GCs only clear after about a minute at 1,000 series.
   */
  warmupSeconds?: number;
  /** Seconds between samples (default 10). */
  intervalSeconds?: number;
}

export interface MemorySample {
  /** Seconds since the first sample after warm-up. */
  t: number;
  rss: number;
  heapUsed: number;
  ratePerSecond: number | undefined;
}

export interface MemoryResult {
  name: 'memory';
  series: number;
  soakSeconds: number;
  samples: MemorySample[];
  /** Median RSS of the first third of the samples. */
  rssAfterWarmup: number;
  rssLast: number;
  rssMax: number;
  /** (last - first) / first. */
  rssGrowth: number;
  /** Median RSS of the last third of the samples vs the first third (the growth verdict). */
  rssTrend: number;
  heapAfterGcFirst: number | undefined;
  heapAfterGcLast: number | undefined;
  /** Median RSS of an agent restarted over a month of state, after the same warm-up. */
  rssRestarted?: number;
  rows: SummaryRow[];
}

export async function runMemory(options: MemoryOptions): Promise<MemoryResult> {
  const { series } = options;
  const soak = options.soakSeconds ?? 600;
  const warmup = options.warmupSeconds ?? 60;
  const interval = options.intervalSeconds ?? 10;
  section(`memory: ${series} series at 1 s (warm-up ${warmup} s, soak ${soak} s, a sample every ${interval} s)`);

  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    const worker = forkWorker(['--mode', 'agent', '--series', String(series), '--blue', blue.url, '--green', green.url], ['--expose-gc']);
    let result: MemoryResult;
    try {
      const started = await worker.call<Record<string, unknown>>({ cmd: 'start' });
      log(`agent worker pid ${worker.pid}: ${JSON.stringify(started)}; warming up ${warmup} s`);
      // A full GC a quarter into the warm-up clears what the config parse and the first round
      // left behind (tens of MB, otherwise gone only at the first major GCs) and gives the heap
      // reference for the leak signal; the rest of the warm-up lets the heap find its rhythm.
      await sleep((warmup / 4) * 1_000);
      const reference = await worker.sample({ gc: true });
      await sleep(((warmup * 3) / 4) * 1_000);

      const samples: MemorySample[] = [];
      const t0 = performance.now();
      const first = { ...(await worker.sample()), heapAfterGc: reference.heapAfterGc };
      samples.push(toSample(first, 0));
      const breakdown = (s: WorkerSample) =>
        `RSS ${mb(s.memory.rss)} (heap total ${mb(s.memory.heapTotal)}, heap used ${mb(s.memory.heapUsed)}${s.heapAfterGc === undefined ? '' : `, ${mb(s.heapAfterGc)} after GC`}, array buffers ${mb(s.memory.arrayBuffers)})`;
      log(`after warm-up: ${breakdown(first)}, ${fmt(first.ratePerSecond, 0)} probes/s`);
      let last: WorkerSample = first;
      const count = Math.max(1, Math.round(soak / interval));
      for (let i = 1; i <= count; i++) {
        // Keep to the planned times so the soak lasts `soak` seconds whatever a sample costs.
        const due = t0 + i * interval * 1_000;
        await sleep(Math.max(0, due - performance.now()));
        const at = (performance.now() - t0) / 1_000;
        // The last sample's RSS is read before its GC; heap after GC is the leak signal.
        last = await worker.sample({ gc: i === count });
        samples.push(toSample(last, at));
        if (i % 6 === 0 || i === count) {
          const s = samples[samples.length - 1]!;
          log(`  t+${fmt(s.t, 0)} s: RSS ${mb(s.rss)}, heap ${mb(s.heapUsed)}, ${fmt(s.ratePerSecond, 0)} probes/s`);
        }
      }

      const rssFirst = first.memory.rss;
      const rssLast = last.memory.rss;
      const rssMax = Math.max(...samples.map((s) => s.rss));
      const growth = (rssLast - rssFirst) / rssFirst;
      // RSS follows the old generation's GC sawtooth (tens of MB over tens of seconds at 1,000
      // series), so a single sample is a random phase of it: first vs last sample can show -20%
      // or +10% with no leak. The verdicts use medians of the first and last thirds instead.
      const third = Math.max(1, Math.floor(samples.length / 3));
      const medianRss = (part: MemorySample[]) => quantile(sortedCopy(part.map((s) => s.rss)), 0.5)!;
      const trend = (medianRss(samples.slice(-third)) - medianRss(samples.slice(0, third))) / medianRss(samples.slice(0, third));
      const heapGrowth =
        first.heapAfterGc !== undefined && last.heapAfterGc !== undefined ? (last.heapAfterGc - first.heapAfterGc) / first.heapAfterGc : undefined;
      log(`RSS samples (MB, every ${interval} s): ${samples.map((s) => fmt(s.rss / 1_048_576, 1)).join(' ')}`);
      log(`heap used samples (MB): ${samples.map((s) => fmt(s.heapUsed / 1_048_576, 1)).join(' ')}`);
      log(
        `RSS ${mb(rssFirst)} -> ${mb(rssLast)} (max ${mb(rssMax)}): ${growth >= 0 ? '+' : ''}${pct(growth, 1)} over ${fmt(samples[samples.length - 1]!.t, 0)} s`,
      );
      log(`RSS trend (median of the last third of the samples vs the first third): ${trend >= 0 ? '+' : ''}${pct(trend, 1)}`);
      log(
        `heap after GC ${mb(first.heapAfterGc)} -> ${mb(last.heapAfterGc)}${heapGrowth === undefined ? '' : ` (${heapGrowth >= 0 ? '+' : ''}${pct(heapGrowth, 1)})`}`,
      );
      log(`at the end: ${breakdown(last)}`);

      const rssEarly = medianRss(samples.slice(0, third));
      const rows: SummaryRow[] = [
        {
          bench: 'memory',
          figure: `RSS after ${warmup} s warm-up (median, first third)`,
          target: '< 150 MB',
          measured: `${mb(rssEarly)} (first sample ${mb(rssFirst)})`,
          verdict: verdict(rssEarly < 150 * 1_048_576),
        },
        {
          bench: 'memory',
          figure: `RSS growth over ${fmt(samples[samples.length - 1]!.t, 0)} s (medians, last vs first third)`,
          target: 'within 5%',
          measured: `${trend >= 0 ? '+' : ''}${pct(trend, 1)}`,
          verdict: verdict(Math.abs(trend) <= 0.05),
        },
        {
          bench: 'memory',
          figure: 'RSS first -> last sample (GC-phase noise)',
          target: '(info)',
          measured: `${growth >= 0 ? '+' : ''}${pct(growth, 1)} (${mb(rssFirst)} -> ${mb(rssLast)}, max ${mb(rssMax)})`,
          verdict: 'info',
        },
        {
          bench: 'memory',
          figure: 'heap after GC, first -> last',
          target: '(leak signal)',
          measured: `${mb(first.heapAfterGc)} -> ${mb(last.heapAfterGc)}${heapGrowth === undefined ? '' : ` (${heapGrowth >= 0 ? '+' : ''}${pct(heapGrowth, 1)})`}`,
          verdict: 'info',
        },
        {
          bench: 'memory',
          figure: 'probe rate during soak (1m windows)',
          target: `~${series}/s`,
          measured: `${fmt(last.ratePerSecond, 0)}/s`,
          verdict: 'info',
        },
      ];
      result = {
        name: 'memory',
        series,
        soakSeconds: soak,
        samples,
        rssAfterWarmup: rssEarly,
        rssLast,
        rssMax,
        rssGrowth: growth,
        rssTrend: trend,
        heapAfterGcFirst: first.heapAfterGc,
        heapAfterGcLast: last.heapAfterGc,
        rows,
      };
    } finally {
      await worker.stop();
    }
    const restarted = await restartOverAMonth(series, blue, green, warmup);
    result.rssRestarted = restarted.rss;
    result.rows.push(restarted.row);
    return result;
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
  }
}

/**
 * The agent restarted over a month of its own state: the databases an agent keeps after probing
 * these series every second for 30 days (the report bench's `generate`, with this agent's probe
 * names), the same warm-up, then RSS every 10 s for 30 s. An agent in service restarts over its
 * databases; the soak above starts from an empty directory.
 */
async function restartOverAMonth(series: number, blue: SimulatorProcess, green: SimulatorProcess, warmup: number): Promise<{ rss: number; row: SummaryRow }> {
  const dataDir = freshDataDir('memory-month');
  try {
    const began = performance.now();
    generate(dataDir, series, Math.floor(Date.now() / HOUR_MS) * HOUR_MS, benchProbeName);
    log(`restart over a month of state (generated in ${fmt((performance.now() - began) / 1_000, 1)} s); warming up ${warmup} s`);
    const worker = forkWorker(
      ['--mode', 'agent', '--series', String(series), '--blue', blue.url, '--green', green.url, '--data-dir', dataDir],
      ['--expose-gc'],
    );
    try {
      await worker.call({ cmd: 'start' });
      // As above: a full GC a quarter into the warm-up, then the rest of it.
      await sleep((warmup / 4) * 1_000);
      await worker.sample({ gc: true });
      await sleep(((warmup * 3) / 4) * 1_000);
      const rss: number[] = [];
      for (let i = 0; i < 4; i++) {
        if (i > 0) await sleep(10_000);
        rss.push((await worker.sample()).memory.rss);
      }
      const median = quantile(sortedCopy(rss), 0.5)!;
      log(`after a restart over a month of state: RSS ${rss.map((bytes) => mb(bytes)).join(', ')}`);
      return {
        rss: median,
        row: {
          bench: 'memory',
          figure: `RSS after ${warmup} s warm-up, restarted over 30 days of state (median of 4)`,
          target: '< 150 MB',
          measured: mb(median),
          verdict: verdict(median < 150 * 1_048_576),
        },
      };
    } finally {
      await worker.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function toSample(sample: WorkerSample, t: number): MemorySample {
  return { t, rss: sample.memory.rss, heapUsed: sample.memory.heapUsed, ratePerSecond: sample.ratePerSecond };
}

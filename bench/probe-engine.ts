/**
 * "1,000 probe × env series at 1 s against a local simulator": the CPU cost per probe of the
 * real greenlight Agent, against two baselines measured in the same run at the same rate:
 *
 *   1. a bare undici keep-alive request loop (what any HTTP client must spend): target ≤ 1.5x
 *   2. Prometheus blackbox_exporter probing the same targets (what greenlight replaces): ≤ 0.2
 *
 * The agent and the undici loop each run in a forked worker (bench/agent-process.ts) and report
 * their own process.cpuUsage(); blackbox_exporter's CPU is read from /proc/<pid>/stat. The two
 * simulators (blue, green) run in their own processes, so their CPU is never counted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as UndiciAgent, request } from 'undici';
import {
  APP_PATHS,
  fmt,
  forkWorker,
  freePort,
  log,
  pct,
  procStat,
  section,
  sleep,
  startPacedLoop,
  startSimulatorProcess,
  stopChild,
  summarizeLatency,
  track,
  verdict,
  type LatencySummary,
  type SimulatorProcess,
  type SummaryRow,
  type WorkerSample,
} from './harness.js';

export interface ProbeEngineOptions {
  series: number;
  /**
   * Seconds of probing before the measurement starts. Default: enough for ~5,000 probes (JIT
   * compilation dominates the first thousands), 5 s at 1,000 series, at most 20 s.
   */
  warmupSeconds?: number;
  /** Seconds measured (default 20). */
  measureSeconds?: number;
}

/** One contender's figures over the measurement period. */
export interface EngineFigures {
  label: string;
  cpuUs: number;
  probes: number;
  failed: number;
  skipped: number;
  seconds: number;
  intendedRate: number;
  /** Completed probes per second over the period. */
  rate: number;
  /** CPU µs per completed probe. */
  usPerProbe: number;
  /** CPU used, in cores (1.0 = one core busy). */
  cores: number;
  latency: LatencySummary | undefined;
  /** Probe results since the start (warm-up included) by result code, when known. */
  results?: Record<string, number>;
  /** Resident set size at the end of the measurement period (bytes), when known. */
  rssBytes?: number;
}

export interface ProbeEngineResult {
  name: 'probe-engine';
  series: number;
  greenlight: EngineFigures;
  baseline: EngineFigures;
  blackbox: EngineFigures | undefined;
  blackboxSkipped: string | undefined;
  rows: SummaryRow[];
}

const BLACKBOX_NAMES = ['prometheus-blackbox-exporter', 'blackbox_exporter'];

export async function runProbeEngine(options: ProbeEngineOptions): Promise<ProbeEngineResult> {
  const series = options.series;
  const warmup = options.warmupSeconds ?? Math.min(20, Math.max(5, Math.ceil(5_000 / series)));
  const measure = options.measureSeconds ?? 20;
  section(`probe-engine: ${series} series at 1 s (warm-up ${warmup} s, measure ${measure} s each)`);

  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    log(`simulators: blue ${blue.url} (pid ${blue.pid}), green ${green.url} (pid ${green.pid})`);
    const args = ['--series', String(series), '--blue', blue.url, '--green', green.url];

    log('\n[1/3] greenlight Agent (forked worker)');
    const greenlight = await measureWorker('greenlight agent', ['--mode', 'agent', ...args], series, warmup, measure);
    printFigures(greenlight);

    log('\n[2/3] baseline: bare undici keep-alive request loop at the same rate and paths (forked worker)');
    const baseline = await measureWorker('undici loop', ['--mode', 'baseline', ...args], series, warmup, measure);
    printFigures(baseline);

    log('\n[3/3] blackbox_exporter driven at the same rate over the same targets');
    const bin = findBlackbox();
    let blackbox: EngineFigures | undefined;
    let blackboxSkipped: string | undefined;
    if (!bin) {
      blackboxSkipped = `blackbox_exporter is not installed (looked for ${BLACKBOX_NAMES.join(', ')} on PATH); skipping the greenlight vs blackbox comparison`;
      log(`SKIPPED: ${blackboxSkipped}`);
    } else {
      blackbox = await measureBlackbox(bin, [blue, green], series, Math.min(warmup, 3), measure);
      printFigures(blackbox);
      if (blackbox.rate < 0.95 * blackbox.intendedRate) {
        log(
          `  note: blackbox_exporter kept up with ${pct(blackbox.rate / blackbox.intendedRate, 0)} of the intended rate on this machine (it opens a new connection per probe); its CPU per probe is over the probes it completed`,
        );
      }
    }

    const ratio = greenlight.usPerProbe / baseline.usPerProbe;
    const vsBlackbox = blackbox ? greenlight.usPerProbe / blackbox.usPerProbe : undefined;
    log('');
    log(`greenlight CPU per probe / undici request: ${fmt(ratio, 2)}x (target <= 1.5x)`);
    if (vsBlackbox !== undefined) log(`greenlight CPU per probe / blackbox_exporter's: ${fmt(vsBlackbox, 3)} (target <= 0.2)`);

    const rateOk = (f: EngineFigures) => f.rate >= 0.95 * f.intendedRate;
    const rateText = (f: EngineFigures) => `${fmt(f.rate, 0)}/s of ${fmt(f.intendedRate, 0)}/s (${pct(f.rate / f.intendedRate, 0)})`;
    const latencyText = (l: LatencySummary | undefined) => (l ? `${fmt(l.p50Ms, 2)} / ${fmt(l.p99Ms, 2)} ms` : '-');
    const rows: SummaryRow[] = [
      {
        bench: 'probe-engine',
        figure: 'greenlight CPU per probe',
        target: '-',
        measured: `${fmt(greenlight.usPerProbe, 0)} µs (${fmt(greenlight.cores, 2)} cores)`,
        verdict: 'info',
      },
      {
        bench: 'probe-engine',
        figure: 'undici loop CPU per request',
        target: '-',
        measured: `${fmt(baseline.usPerProbe, 0)} µs (${fmt(baseline.cores, 2)} cores)`,
        verdict: 'info',
      },
      { bench: 'probe-engine', figure: 'greenlight / undici loop CPU', target: '<= 1.5x', measured: `${fmt(ratio, 2)}x`, verdict: verdict(ratio <= 1.5) },
      blackbox
        ? {
            bench: 'probe-engine',
            figure: 'blackbox_exporter CPU per probe',
            target: '-',
            measured: `${fmt(blackbox.usPerProbe, 0)} µs (${fmt(blackbox.cores, 2)} cores)`,
            verdict: 'info',
          }
        : { bench: 'probe-engine', figure: 'blackbox_exporter CPU per probe', target: '-', measured: 'not installed', verdict: 'n/a' },
      {
        bench: 'probe-engine',
        figure: 'greenlight / blackbox CPU per probe',
        target: '<= 0.2',
        measured: vsBlackbox === undefined ? 'skipped' : fmt(vsBlackbox, 3),
        verdict: vsBlackbox === undefined ? 'n/a' : verdict(vsBlackbox <= 0.2),
      },
      {
        bench: 'probe-engine',
        figure: 'greenlight achieved probe rate',
        target: '>= 95% of intended',
        measured: rateText(greenlight),
        verdict: verdict(rateOk(greenlight)),
      },
      { bench: 'probe-engine', figure: 'undici loop achieved rate', target: '(baseline)', measured: rateText(baseline), verdict: 'info' },
      ...(blackbox
        ? [{ bench: 'probe-engine', figure: 'blackbox achieved rate', target: '(baseline)', measured: rateText(blackbox), verdict: 'info' as const }]
        : []),
      { bench: 'probe-engine', figure: 'greenlight probe p50 / p99', target: '-', measured: latencyText(greenlight.latency), verdict: 'info' },
      { bench: 'probe-engine', figure: 'undici loop request p50 / p99', target: '(baseline)', measured: latencyText(baseline.latency), verdict: 'info' },
      {
        bench: 'probe-engine',
        figure: 'greenlight failed / skipped probes',
        target: '0 / 0',
        measured: `${greenlight.failed} / ${greenlight.skipped}${greenlight.failed > 0 && greenlight.results ? ` (since start: ${failureCodes(greenlight.results)})` : ''}`,
        verdict: verdict(greenlight.failed === 0 && greenlight.skipped === 0),
      },
    ];
    return { name: 'probe-engine', series, greenlight, baseline, blackbox, blackboxSkipped, rows };
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
  }
}

/**
 * Start a worker, let it warm up, measure CPU and probes over `measure` seconds, then (outside
 * the CPU window, since collecting costs CPU) collect probe durations for LATENCY_SECONDS.
 */
export async function measureWorker(
  label: string,
  args: string[],
  rate: number,
  warmup: number,
  measure: number,
  options: { latency?: boolean; quiet?: boolean } = {},
): Promise<EngineFigures> {
  const worker = forkWorker(args);
  try {
    const started = await worker.call<Record<string, unknown>>({ cmd: 'start' });
    if (!options.quiet) log(`  started (pid ${worker.pid}): ${JSON.stringify(started)}; load average ${os.loadavg()[0]!.toFixed(2)}`);
    await sleep(warmup * 1_000);
    const first = await worker.sample();
    await sleep(measure * 1_000);
    const last = await worker.sample();
    if (options.latency === false) return { ...engineFigures(label, first, last, rate, undefined), rssBytes: last.memory.rss };
    await worker.call({ cmd: 'latency-start' });
    await sleep(LATENCY_SECONDS * 1_000);
    const latency = await worker.call<LatencySummary>({ cmd: 'latency-stop' });
    const results = await worker.call<Record<string, number>>({ cmd: 'results' });
    return { ...engineFigures(label, first, last, rate, latency), results, rssBytes: last.memory.rss };
  } finally {
    await worker.stop();
  }
}

/** Seconds of duration sampling after the CPU window. */
const LATENCY_SECONDS = 5;

/** A worker's figures between two of its samples: the period is [first's end, last's start], so the counting itself stays outside it. */
export function engineFigures(
  label: string,
  first: WorkerSample,
  last: WorkerSample,
  intendedRate: number,
  latency: LatencySummary | undefined,
): EngineFigures {
  const cpuUs = last.cpuBeforeUs - first.cpuAfterUs;
  const seconds = (last.wallBeforeMs - first.wallAfterMs) / 1_000;
  const probes = last.completed - first.completed;
  return {
    label,
    cpuUs,
    probes,
    failed: last.failed - first.failed,
    skipped: last.skipped - first.skipped,
    seconds,
    intendedRate,
    rate: probes / seconds,
    usPerProbe: cpuUs / Math.max(1, probes),
    cores: cpuUs / 1e6 / seconds,
    latency,
  };
}

function printFigures(f: EngineFigures): void {
  log(
    `  ${f.label}: ${f.probes} probes in ${fmt(f.seconds, 1)} s = ${fmt(f.rate, 0)}/s (intended ${f.intendedRate}/s), ` +
      `failed ${f.failed}, skipped ${f.skipped}; CPU ${fmt(f.cpuUs / 1e6, 2)} s = ${fmt(f.cores, 2)} cores = ${fmt(f.usPerProbe, 1)} µs per probe`,
  );
  if (f.results)
    log(
      `  results since start (warm-up included): ${Object.entries(f.results)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ')}`,
    );
  if (f.latency)
    log(
      `  duration p50 ${fmt(f.latency.p50Ms, 2)} ms, p99 ${fmt(f.latency.p99Ms, 2)} ms, max ${fmt(f.latency.maxMs, 1)} ms over ${f.latency.count} probes (${f.latency.source})`,
    );
}

export function findBlackbox(): string | undefined {
  for (const name of BLACKBOX_NAMES) {
    try {
      const path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (path) return path;
    } catch {
      // not on PATH
    }
  }
  return undefined;
}

const BLACKBOX_CONFIG = `modules:
  http_2xx:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: []
`;

/**
 * Run blackbox_exporter on a free port, drive /probe at `rate` per second over the same eight
 * targets from this process (a keep-alive undici loop), and read blackbox's CPU from /proc.
 */
export async function measureBlackbox(
  bin: string,
  sims: SimulatorProcess[],
  rate: number,
  warmup: number,
  measure: number,
  options: { quiet?: boolean } = {},
): Promise<EngineFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'greenlight-bench-'));
  const configPath = join(dir, 'blackbox.yml');
  await writeFile(configPath, BLACKBOX_CONFIG);
  const port = await freePort();
  const child = track(
    spawn(bin, [`--config.file=${configPath}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );
  const dispatcher = new UndiciAgent({ keepAliveTimeout: 30_000 });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/-/healthy`, dispatcher, 10_000);
    if (!options.quiet) log(`  blackbox_exporter ${bin} (pid ${child.pid}) on ${base}; load average ${os.loadavg()[0]!.toFixed(2)}`);
    const targets = sims.flatMap((sim) => APP_PATHS.map((path) => `${sim.url}${path}`));
    const urls = targets.map((target) => `${base}/probe?target=${encodeURIComponent(target)}&module=http_2xx`);
    // blackbox reports its own view of the probe's duration; keep it for the percentiles.
    const durations: number[] = [];
    const loop = startPacedLoop({
      rate,
      urls,
      dispatcher,
      keepLatencies: false,
      check: (status, body) => {
        const duration = /^probe_duration_seconds ([0-9.e+-]+)$/m.exec(body);
        if (duration) durations.push(Number(duration[1]) * 1_000);
        return status === 200 && /^probe_success 1$/m.test(body);
      },
    });
    try {
      await sleep(warmup * 1_000);
      const pid = child.pid!;
      const t0 = performance.now();
      const c0 = loop.completed;
      const f0 = loop.failed;
      const s0 = loop.skipped;
      const d0 = durations.length;
      const cpu0 = procStat(pid).cpuUs;
      await sleep(measure * 1_000);
      const { cpuUs: cpu1, rssBytes } = procStat(pid);
      const seconds = (performance.now() - t0) / 1_000;
      const probes = loop.completed - c0;
      const latency = summarizeLatency("blackbox's probe_duration_seconds over the period", durations.slice(d0));
      return {
        label: 'blackbox_exporter',
        cpuUs: cpu1 - cpu0,
        probes,
        failed: loop.failed - f0,
        skipped: loop.skipped - s0,
        seconds,
        intendedRate: rate,
        rate: probes / seconds,
        usPerProbe: (cpu1 - cpu0) / Math.max(1, probes),
        cores: (cpu1 - cpu0) / 1e6 / seconds,
        latency,
        rssBytes,
      };
    } finally {
      await loop.stop();
    }
  } finally {
    await dispatcher.close();
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitForHttp(url: string, dispatcher: UndiciAgent, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const response = await request(url, { dispatcher });
      await response.body.dump();
      if (response.statusCode < 500) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function failureCodes(results: Record<string, number>): string {
  return Object.entries(results)
    .filter(([code, n]) => code !== 'ok' && code !== 'skipped' && n > 0)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}

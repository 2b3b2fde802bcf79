/**
 * A benchmark worker, forked by the benches (harness.ts forkWorker) so that what is measured
 * (CPU, RSS) is this process alone, not the bench harness nor the simulators.
 *
 *   node dist/bench/agent-process.js --mode agent|baseline --series N --blue URL --green URL [--slo none|one|per-probe]
 *
 * Modes:
 *   agent     the real greenlight Agent with a generated config of N series at `--every` (1s)
 *   baseline  a bare undici keep-alive request loop issuing N requests/s at the same paths
 *
 * IPC requests ({ id, cmd }) and replies ({ id, ok, result | error }):
 *   start           start probing; replies { series, ... }
 *   sample          a WorkerSample (harness.ts): CPU, wall clock, probe counts, memory
 *   latency-start   start collecting probe durations (costs CPU: keep it out of CPU windows)
 *   latency-stop    stop collecting; replies a LatencySummary
 *   lateness-start  start a timer chain beside the agent's (every 20 ms) that notes how late each
 *                   of its callbacks runs: what a probe's start, or any other timer, waits
 *   lateness-stop   stop; replies a LatencySummary of those latenesses
 *   isolated-start  start a worker thread in this process with the same timer chain and a probe
 *                   of `url` every 500 ms: what the probe path would see in a thread of its own
 *   isolated-stop   stop it; replies { lateness, probes } LatencySummaries
 *   events          events published since start, by type (agent only)
 *   results         probe results since start by result code (agent: greenlight_probes_total)
 *   parse-cost      parse and validate the config a `reload` of { change } would load, without
 *                   applying it; replies { parseMs } (it holds the loop as long: ask well before)
 *   reload          reload a changed config ({ change }: harness.ts ReloadChange); replies ReloadFigures
 *   tally           probe results and skipped ticks by code since the last tally, counted as they
 *                   are recorded (agent only: unlike `results`, series a reload replaced count too)
 *   stop            close everything; the process then exits
 *
 * Agent options: --data-dir DIR (where the agent keeps its state; required: forkWorker gives each
 * agent worker an empty one), --jitter J, --extra YAML (top-level config keys added to the
 * generated config), --rules none|stock|many (harness.ts BenchRules).
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  APP_PATHS,
  buildConfigText,
  cpuMicros,
  loadUndici,
  startPacedLoop,
  summarizeLatency,
  type BenchRules,
  type LatencySummary,
  type PacedLoop,
  type ReloadChange,
  type ReloadFigures,
  type WorkerCommand,
  type WorkerSample,
} from './harness.js';
import { answerParent } from './child-ipc.js';

interface Engine {
  start(): Promise<Record<string, unknown>>;
  events?(): Record<string, number>;
  counts(): Pick<WorkerSample, 'completed' | 'failed' | 'skipped' | 'ratePerSecond'>;
  latencyStart(): void;
  latencyStop(): LatencySummary;
  results(): Promise<Record<string, number>>;
  parseCost?(change: ReloadChange): number;
  reload?(change: ReloadChange): Promise<ReloadFigures>;
  tally?(): Record<string, number>;
  stop(): Promise<void>;
}

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'agent' },
    series: { type: 'string', default: '1000' },
    blue: { type: 'string' },
    green: { type: 'string' },
    every: { type: 'string', default: '1s' },
    'tick-ms': { type: 'string' },
    slo: { type: 'string', default: 'none' },
    'data-dir': { type: 'string' },
    jitter: { type: 'string' },
    extra: { type: 'string' },
    rules: { type: 'string', default: 'none' },
  },
  strict: true,
});

const series = Number(values.series);
if (!Number.isInteger(series) || series < 1) throw new Error(`--series must be a positive integer (got ${values.series})`);
if (!values.blue || !values.green) throw new Error('--blue URL and --green URL are required');
const blueUrl = values.blue;
const greenUrl = values.green;
const dataDir = values['data-dir'];
if (values.mode === 'agent' && dataDir === undefined) throw new Error('--data-dir DIR is required in agent mode (forkWorker gives each worker an empty one)');

/**
 * The agent's modules are imported here, not at the top: the baseline's process then holds undici
 * alone, as a bare client would, and its RSS is a fair floor (with greenlight's code loaded beside
 * it, the bare loop measured 84–98 MB at 1,000 series).
 */
async function agentEngine(): Promise<Engine> {
  const [{ Agent }, { parseAgentConfig }, { pino }, { applyRuntimeFlags }] = await Promise.all([
    import('../agent/agent.js'),
    import('../agent/reload/agent-config.js'),
    import('pino'),
    import('../agent/cli/runtime-flags.js'),
  ]);
  // What `greenlight run` does first: its flags (already on this process's command line) and the
  // heap's growth adapted as it runs.
  applyRuntimeFlags();
  const jitter = values.jitter === undefined ? undefined : Number(values.jitter);
  /** The config's text; a reload toggles its windows (every series) or its health probes' path (a quarter). */
  const shape = { windows: false, path: false };
  const toggled = (change: ReloadChange) => ({ windows: shape.windows !== (change === 'all'), path: shape.path !== (change === 'quarter') });
  const configText = (of = shape) => {
    const text = buildConfigText({
      series,
      blueUrl,
      greenUrl,
      every: values.every,
      jitter,
      dataDir: dataDir!,
      extra: values.extra,
      slo: values.slo as 'none' | 'one' | 'per-probe',
      rules: values.rules as BenchRules,
      ...(of.windows ? { windows: '[1m, 5m, 10m]' } : {}),
    });
    return of.path ? text.replaceAll('path: /api/health\n', 'path: /api/health?reloaded=1\n') : text;
  };
  let text = configText();
  const config = parseAgentConfig(text, {});
  const agent = new Agent({ config, logger: pino({ level: 'silent' }), reloadConfig: () => Promise.resolve(parseAgentConfig(text, {})) });
  // A tap on what the agent records, for `tally`: counted as results come in, whatever series they belong to.
  let tally: Record<string, number> = {};
  const { metrics } = agent;
  const recordResult = metrics.recordResult.bind(metrics);
  const recordSkipped = metrics.recordSkipped.bind(metrics);
  metrics.recordResult = (target, result) => {
    const code = result.ok ? 'ok' : result.reason!;
    tally[code] = (tally[code] ?? 0) + 1;
    recordResult(target, result);
  };
  metrics.recordSkipped = (target) => {
    tally.skipped = (tally.skipped ?? 0) + 1;
    recordSkipped(target);
  };
  const published: Record<string, number> = {};
  agent.bus.subscribe((event) => (published[event.type] = (published[event.type] ?? 0) + 1));
  let poll: NodeJS.Timeout | undefined;
  const seen = new Map<string, number>();
  let durations: number[] = [];
  /** Every series' latest result; with a poll well under the interval, each probe is seen once. */
  const collect = () => {
    for (const s of agent.state().series) {
      if (!s.last) continue;
      const key = `${s.probe}@${s.env}`;
      if (seen.get(key) === s.last.startedAt) continue;
      seen.set(key, s.last.startedAt);
      durations.push(s.last.durationMs);
    }
  };
  return {
    start: async () => {
      await agent.start();
      return { series: agent.state().series.length, address: agent.address };
    },
    counts: () => {
      let completed = 0;
      let failed = 0;
      let skipped = 0;
      let perMinute = 0;
      for (const s of agent.state().series) {
        // The longest window (5m) drops nothing for the first ~290 s: its count is every probe so far.
        const longest = Object.values(s.windows).reduce((a, b) => (b.windowMs > a.windowMs ? b : a));
        completed += longest.count;
        failed += longest.failures;
        skipped += s.skipped;
        perMinute += s.probesPerMinute;
      }
      return { completed, failed, skipped, ratePerSecond: perMinute / 60 };
    },
    latencyStart: () => {
      seen.clear();
      collect(); // results from before the start only mark what has been seen
      durations = [];
      poll = setInterval(collect, 400);
    },
    latencyStop: () => {
      clearInterval(poll);
      collect();
      return summarizeLatency("each series' latest result, polled every 400 ms", durations);
    },
    events: () => ({ ...published }),
    results: async () => {
      // A scrape costs CPU: ask for this only after the measurement.
      const { body } = await agent.metrics.render(false);
      const out: Record<string, number> = {};
      for (const match of body.matchAll(/^greenlight_probes_total\{[^}]*result="([^"]+)"[^}]*\} (\S+)$/gm)) {
        out[match[1]!] = (out[match[1]!] ?? 0) + Number(match[2]);
      }
      return out;
    },
    parseCost: (change) => {
      const next = configText(toggled(change));
      const started = performance.now();
      parseAgentConfig(next, {});
      return performance.now() - started;
    },
    reload: async (change) => {
      Object.assign(shape, toggled(change));
      text = configText();
      let longestTurnMs = 0;
      let last = performance.now();
      const chain = setInterval(() => {
        const now = performance.now();
        longestTurnMs = Math.max(longestTurnMs, now - last);
        last = now;
      }, 5);
      const started = performance.now();
      const result = await agent.reload('bench');
      const reloadMs = performance.now() - started;
      clearInterval(chain);
      longestTurnMs = Math.max(longestTurnMs, performance.now() - last);
      if (!result.ok) return { ok: false, error: result.error, rebuilt: 0, reloadMs, longestTurnMs };
      return { ok: true, rebuilt: result.probes.added.length + result.probes.changed.length, reloadMs, longestTurnMs };
    },
    tally: () => {
      const counted = tally;
      tally = {};
      return counted;
    },
    stop: async () => {
      clearInterval(poll);
      await agent.close();
    },
  };
}

function baselineEngine(): Engine {
  const dispatcher = new (loadUndici().Agent)();
  const urls = [blueUrl, greenUrl].flatMap((base) => APP_PATHS.map((path) => `${base}${path}`));
  let loop: PacedLoop | undefined;
  let startedAt = 0;
  let mark = 0;
  return {
    start: async () => {
      startedAt = performance.now();
      // About one request per tick (1 ms at 1,000/s), so requests spread over the second as the
      // agent's per-series timers spread its probes: coarser ticks batch requests, which makes
      // each cheaper, and finer ones add idle wake-ups the agent does not have.
      const tickMs = values['tick-ms'] !== undefined ? Number(values['tick-ms']) : Math.min(20, Math.max(1, Math.round(1_000 / series)));
      loop = startPacedLoop({ rate: series, urls, dispatcher, tickMs });
      return { series, urls: urls.length, tickMs };
    },
    counts: () => {
      if (!loop) return { completed: 0, failed: 0, skipped: 0, ratePerSecond: undefined };
      const elapsed = (performance.now() - startedAt) / 1_000;
      return { completed: loop.completed, failed: loop.failed, skipped: loop.skipped, ratePerSecond: elapsed > 0 ? loop.completed / elapsed : undefined };
    },
    latencyStart: () => {
      mark = loop?.latencies.length ?? 0;
    },
    latencyStop: () => summarizeLatency('every request', loop?.latencies.slice(mark) ?? []),
    results: async (): Promise<Record<string, number>> => (loop ? { ok: loop.completed - loop.failed, failed: loop.failed, skipped: loop.skipped } : {}),
    stop: async () => {
      await loop?.stop();
      await dispatcher.close();
    },
  };
}

const engine = values.mode === 'agent' ? await agentEngine() : values.mode === 'baseline' ? baselineEngine() : undefined;
if (!engine) throw new Error(`--mode must be agent or baseline (got ${values.mode})`);

/** A timer chain every 20 ms on the agent's event loop: how late each callback runs (ms). */
const CANARY_MS = 20;
let canary: { timer: NodeJS.Timeout; lateness: number[] } | undefined;

function startCanary(): void {
  clearTimeout(canary?.timer);
  const lateness: number[] = [];
  let planned = performance.now() + CANARY_MS;
  const tick = () => {
    const now = performance.now();
    lateness.push(now - planned);
    planned = Math.max(planned + CANARY_MS, now + 1);
    canary!.timer = setTimeout(tick, planned - now);
  };
  canary = { timer: setTimeout(tick, CANARY_MS), lateness };
}

function stopCanary(): LatencySummary {
  clearTimeout(canary?.timer);
  const summary = summarizeLatency(`a ${CANARY_MS} ms timer chain on the agent's event loop: how late each callback ran`, canary?.lateness ?? []);
  canary = undefined;
  return summary;
}

/**
 * The other way to keep probing clear of client load: a thread of its own. This one runs the
 * canary's timer chain and a bare probe (fetch, read the body) every 500 ms in a worker thread
 * beside the agent, sharing its process and CPU but not its event loop.
 */
const ISOLATED = `
const { parentPort, workerData } = require('node:worker_threads');
const lateness = [];
const durations = [];
let planned = performance.now() + ${CANARY_MS};
let timer = setTimeout(function tick() {
  const now = performance.now();
  lateness.push(now - planned);
  planned = Math.max(planned + ${CANARY_MS}, now + 1);
  timer = setTimeout(tick, planned - now);
}, ${CANARY_MS});
let due = performance.now() + 500;
let warm = false; // the first fetch loads the HTTP client: not a probe's cost
let probeTimer = setTimeout(async function probe() {
  const started = performance.now();
  try { await (await fetch(workerData.url)).text(); } catch {}
  if (warm) durations.push(performance.now() - started);
  warm = true;
  due = Math.max(due + 500, performance.now());
  probeTimer = setTimeout(probe, due - performance.now());
}, 500);
parentPort.once('message', () => {
  clearTimeout(timer);
  clearTimeout(probeTimer);
  parentPort.postMessage({ lateness, durations });
});
`;
let isolated: Worker | undefined;

async function stopIsolated(): Promise<{ lateness: LatencySummary; probes: LatencySummary }> {
  const worker = isolated;
  isolated = undefined;
  if (!worker) throw new Error('isolated-start first');
  const result = await new Promise<{ lateness: number[]; durations: number[] }>((resolve) => {
    worker.once('message', resolve);
    worker.postMessage('stop');
  });
  await worker.terminate();
  return {
    lateness: summarizeLatency(`a ${CANARY_MS} ms timer chain in a worker thread of the agent's process`, result.lateness),
    probes: summarizeLatency('a bare probe every 500 ms from that worker thread', result.durations),
  };
}

function sample(gc: boolean): WorkerSample {
  const cpuBeforeUs = cpuMicros();
  const wallBeforeMs = performance.now();
  const counts = engine!.counts();
  const memory = process.memoryUsage();
  let heapAfterGc: number | undefined;
  let arrayBuffersAfterGc: number | undefined;
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect) {
    collect();
    ({ heapUsed: heapAfterGc, arrayBuffers: arrayBuffersAfterGc } = process.memoryUsage());
  }
  const wallAfterMs = performance.now();
  const cpuAfterUs = cpuMicros();
  return { cpuBeforeUs, cpuAfterUs, wallBeforeMs, wallAfterMs, memory, heapAfterGc, arrayBuffersAfterGc, ...counts };
}

async function handle(command: WorkerCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'start':
      return engine!.start();
    case 'sample':
      return sample(command.gc ?? false);
    case 'latency-start':
      engine!.latencyStart();
      return {};
    case 'latency-stop':
      return engine!.latencyStop();
    case 'lateness-start':
      startCanary();
      return {};
    case 'lateness-stop':
      return stopCanary();
    case 'isolated-start':
      await isolated?.terminate();
      isolated = new Worker(ISOLATED, { eval: true, workerData: { url: command.url } });
      return {};
    case 'isolated-stop':
      return stopIsolated();
    case 'events':
      if (!engine!.events) throw new Error('events are counted in agent mode only');
      return engine!.events();
    case 'results':
      return engine!.results();
    case 'parse-cost':
      if (!engine!.parseCost) throw new Error('parse-cost is for agent mode only');
      return { parseMs: engine!.parseCost(command.change) };
    case 'reload':
      if (!engine!.reload) throw new Error('reload is for agent mode only');
      return engine!.reload(command.change);
    case 'tally':
      if (!engine!.tally) throw new Error('tally is for agent mode only');
      return engine!.tally();
    case 'stop':
      clearTimeout(canary?.timer);
      await isolated?.terminate();
      await engine!.stop();
      setImmediate(() => process.disconnect?.());
      return { stopped: true };
  }
}

answerParent<WorkerCommand>(handle, { exitAfterMs: 2_000 });

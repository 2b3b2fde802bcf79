/**
 * Shared pieces of the benchmarks: config generation, child processes (simulators, the agent
 * worker, blackbox_exporter), a paced request loop, CPU accounting and table formatting.
 *
 * Benchmarks print figures and ratios against a baseline measured in the same run; they never
 * assert wall-clock numbers (the machine is small and noisy). All traffic goes to 127.0.0.1.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { RUNTIME_V8_FLAGS } from '../agent/cli/runtime-flags.js';

export { sleep };

/** dist/ (this file runs as dist/bench/harness.js). */
export const DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SIMULATOR_SCRIPT = resolve(DIST_DIR, 'simulator/alphastack-simulator.js');
export const AGENT_PROCESS_SCRIPT = resolve(DIST_DIR, 'bench/agent-process.js');
/**
 * The node flags greenlight's launchers set (bin/greenlight.js's shebang, the Dockerfile's
 * NODE_OPTIONS, the systemd unit): benches run the agent as it ships, and its baselines alike.
 */
export const LAUNCHER_NODE_FLAGS = ['--max-semi-space-size=2'];
/**
 * The environment greenlight's launchers set (the shebang through `env -S`, the Dockerfile's ENV,
 * the systemd unit, npm start). GLIBC_TUNABLES fixes glibc malloc's trim threshold at 128 KiB. By
 * default it rises each time malloc frees a block it had mapped on its own (to twice that block,
 * up to 64 MiB), and memory freed below it stays with the process: the arenas of V8's compiler
 * and GC threads kept about 9 MB at 1,000 series, 0.3 MB of it in use. glibc reads it as the
 * process starts; other C libraries ignore it.
 */
export const LAUNCHER_ENV: Readonly<Record<string, string>> = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072' };
/** This process's environment with the launchers' added: what a greenlight process or bench worker starts with. */
export function launcherEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...LAUNCHER_ENV };
}
/** The launchers' flags and those the CLI sets itself as it starts (agent/cli/runtime-flags.ts). */
export const SHIPPED_NODE_FLAGS = [...LAUNCHER_NODE_FLAGS, ...RUNTIME_V8_FLAGS];

// ---------------------------------------------------------------------------------------------
// Config generation

/** The four AlphaStack endpoints, with the assertions of config/greenlight.yaml. */
export const APP_PATHS = ['/api/health', '/api/alphastack/universe', '/api/discoveries', '/api/portfolio/positions'] as const;

const PROBE_KINDS: readonly { kind: string; path: string; body: string }[] = [
  {
    kind: 'health',
    path: '/api/health',
    body: `    expect:
      status: [200]
      maxLatency: 2s
      json:
        - path: $.status
          in: [healthy, ok]
        - path: $.database.connected
          equals: true
    extract:
      memory_percent:
        path: $.memory.percent
        lines: [80, 90]
      cpu_percent: $.cpu.percent
`,
  },
  {
    kind: 'universe',
    path: '/api/alphastack/universe',
    body: `    expect:
      status: [200]
      json:
        - path: $.universe
          nonEmpty: true
`,
  },
  {
    kind: 'discoveries',
    path: '/api/discoveries',
    body: `    expect:
      status: [200]
      json:
        - path: $.discoveries
          exists: true
`,
  },
  {
    kind: 'positions',
    path: '/api/portfolio/positions',
    body: `    expect:
      status: [200]
      json:
        - path: $.positions
          exists: true
`,
  },
];

export interface BenchConfigOptions {
  /** Probe × environment series wanted: ceil(series / 2) probes over blue and green. */
  series: number;
  blueUrl: string;
  greenUrl: string;
  every?: string;
  windows?: string;
  /**
   * SLOs (bench/slo-memory.ts): none (default); `one` over every probe; `per-probe`, one for each
   * probe (the most count windows a config can ask for). Each keeps the stock rules' burn-rate
   * windows (5m, 30m, 1h, 6h, 3d) and its 30-day period.
   */
  slo?: 'none' | 'one' | 'per-probe';
  /** Default 0.1. */
  jitter?: number;
  /**
   * Where the agent keeps its state: a directory of the run's own (`freshDataDir`), so that what
   * earlier runs left there (other series, other benches' events) never weighs on the figures.
   */
  dataDir: string;
  /** YAML inserted before `probes:` (top-level keys such as `api:`). */
  extra?: string;
  /**
   * Rules (bench/scale.ts): none (default); `stock`, the rules, actions and SLO of
   * config/greenlight.yaml (the first four probes then carry the stock names health, universe,
   * discoveries, positions, which those rules read); `many`, {@link manyBenchRules}.
   */
  rules?: BenchRules;
}

export type BenchRules = 'none' | 'stock' | 'many';
export const BENCH_RULES: readonly BenchRules[] = ['none', 'stock', 'many'];

/** config/greenlight.yaml, from the repository (dist/bench/harness.js → ../../config). */
export const DEFAULT_CONFIG_PATH = resolve(DIST_DIR, '..', 'config', 'greenlight.yaml');

/** The stock `actions`, `slo` and `rules` of config/greenlight.yaml, as YAML top-level keys. */
function stockRulesYaml(): string {
  const stock = parseYaml(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')) as Record<string, unknown>;
  return stringifyYaml({ actions: stock.actions, slo: stock.slo, rules: stock.rules });
}

/**
 * 200 rules over the generated probes, as rule-decision.ts loads them: 100 reading every probe
 * (the same errorRatio, so one computation a pass serves them all), 99 reading one probe each
 * (p95Latency), and one consecutiveFailures rule; none fires against a healthy simulator.
 */
export function manyBenchRules(names: readonly string[]): string {
  const rules: string[] = ['actions:', '  mark: { type: alert }', 'rules:'];
  for (let i = 0; i < 100; i++)
    rules.push(
      `  - { name: all-${i}, severity: warning, when: { all: [ { fact: errorRatio, params: { window: 1m }, operator: greaterThan, value: 0.99 } ] }, minSamples: 1000000 }`,
    );
  for (let i = 0; i < 99; i++)
    rules.push(
      `  - { name: one-${i}, severity: warning, when: { all: [ { fact: p95Latency, params: { probe: ${names[i % names.length]} }, operator: greaterThan, value: 30 } ] } }`,
    );
  rules.push(
    `  - { name: target, severity: critical, when: { all: [ { fact: consecutiveFailures, params: { probe: ${names[0]} }, operator: greaterThanInclusive, value: 1000 } ] }, actions: [mark] }`,
  );
  return rules.join('\n') + '\n';
}

const STOCK_PROBE_NAMES = ['health', 'universe', 'discoveries', 'positions'];

/** The name buildConfigText gives probe `i` (from 0): the stock rules name the first four. */
export function benchProbeName(i: number, rules?: BenchRules): string {
  if (rules === 'stock' && i < STOCK_PROBE_NAMES.length) return STOCK_PROBE_NAMES[i]!;
  return `${PROBE_KINDS[i % PROBE_KINDS.length]!.kind}-${String(i).padStart(4, '0')}`;
}

/**
 * Config text in the style of config/greenlight.yaml with `series` probe × env series: probes
 * cycle over the four AlphaStack paths and run against both environments (an odd count gives
 * the last probe blue only). Listens on 127.0.0.1:0; dataDir is under the OS temp directory.
 */
export function buildConfigText(options: BenchConfigOptions): string {
  const probes = Math.ceil(options.series / 2);
  const lines: string[] = [
    'listen: 127.0.0.1:0',
    // Never the repository's ./data: the agent may keep state there.
    `dataDir: ${JSON.stringify(options.dataDir)}`,
    'timezone: America/New_York',
    'activeEnvironment: blue',
    'environments:',
    '  blue:',
    `    url: ${options.blueUrl}`,
    '  green:',
    `    url: ${options.greenUrl}`,
    'probeDefaults:',
    `  every: ${options.every ?? '1s'}`,
    '  timeout: 2s',
    '  maxBodyBytes: 1MiB',
    `  jitter: ${options.jitter ?? 0.1}`,
    `windows: ${options.windows ?? '[1m, 5m]'}`,
    'log:',
    '  level: warn',
    '  format: json',
    ...(options.extra ? [options.extra.trimEnd()] : []),
    'probes:',
  ];
  let text = lines.join('\n') + '\n';
  const names: string[] = [];
  for (let i = 0; i < probes; i++) {
    const kind = PROBE_KINDS[i % PROBE_KINDS.length]!;
    const name = benchProbeName(i, options.rules);
    names.push(name);
    text += `  - name: ${name}\n    path: ${kind.path}\n`;
    if (i === probes - 1 && options.series % 2 === 1) text += '    environments: [blue]\n';
    text += kind.body;
  }
  const windows = 'windows: [5m, 30m, 1h, 6h, 3d]';
  if (options.slo === 'one') text += `slo:\n  availability: { objective: 0.995, period: 30d, ${windows} }\n`;
  if (options.slo === 'per-probe')
    text += `slo:\n${names.map((name) => `  ${name}: { objective: 0.995, period: 30d, probes: [${name}], ${windows} }\n`).join('')}`;
  if (options.rules === 'stock') text += stockRulesYaml();
  if (options.rules === 'many') text += manyBenchRules(names);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Child processes

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Track a child so it is killed (by its pid) if the bench process exits early. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
    // Interrupted: 'exit' only runs on process.exit, so exit explicitly and let it clean up.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  }
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface SimulatorProcess {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `node dist/simulator/alphastack-simulator.js --name NAME --port 0`, in its own process. */
export async function startSimulatorProcess(name: string): Promise<SimulatorProcess> {
  const child = track(
    spawn(process.execPath, [SIMULATOR_SCRIPT, '--name', name, '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`simulator ${name} did not start within 10s; output: ${seen}`)), 10_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => fail(new Error(`simulator ${name} exited with ${code}: ${seen}`)));
  });
  child.stdout!.resume();
  return { name, url, pid: child.pid!, child, stop: () => stopChild(child) };
}

/** Set a simulator's faults through its `/__faults` API (POST the patch), or clear them all (undefined: DELETE). */
export async function setSimulatorFaults(sim: SimulatorProcess, faults: Record<string, unknown> | undefined): Promise<void> {
  const response = await fetch(`${sim.url}/__faults`, faults ? { method: 'POST', body: JSON.stringify(faults) } : { method: 'DELETE' });
  if (!response.ok) throw new Error(`simulator ${sim.name} refused the fault: HTTP ${response.status}: ${await response.text()}`);
  await response.arrayBuffer();
}

/** A free TCP port on 127.0.0.1 (for programs that cannot report the one they picked). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The IPC messages the agent worker (bench/agent-process.ts) understands. */
export type WorkerCommand =
  | { cmd: 'start' }
  | { cmd: 'sample'; gc?: boolean }
  | { cmd: 'latency-start' }
  | { cmd: 'latency-stop' }
  | { cmd: 'lateness-start' }
  | { cmd: 'lateness-stop' }
  | { cmd: 'isolated-start'; url: string }
  | { cmd: 'isolated-stop' }
  | { cmd: 'events' }
  | { cmd: 'results' }
  | { cmd: 'parse-cost'; change: ReloadChange }
  | { cmd: 'reload'; change: ReloadChange }
  | { cmd: 'tally' }
  | { cmd: 'stop' };

/**
 * What a bench reload changes (agent-process.ts): `none` reloads the same config; `quarter` the
 * path of every health probe (a quarter of the series), `all` the windows (every series).
 * Each toggles, so two of a kind in a row change back.
 */
export type ReloadChange = 'none' | 'quarter' | 'all';

/** What a reload in the worker did and cost (agent mode). */
export interface ReloadFigures {
  ok: boolean;
  error?: string;
  /** Series the reload rebuilt (changed or added) and dropped. */
  rebuilt: number;
  /** From the call to the reply. */
  reloadMs: number;
  /** The longest turn of the event loop meanwhile (a 5 ms timer chain's longest gap). */
  longestTurnMs: number;
}

/** What a worker reports for `sample`. CPU and wall times are taken just before and after counting. */
export interface WorkerSample {
  /** process.cpuUsage() user+system in µs, before and after the counting below. */
  cpuBeforeUs: number;
  cpuAfterUs: number;
  /** performance.now() before and after the counting. */
  wallBeforeMs: number;
  wallAfterMs: number;
  /** Completed probes (requests) since start; for the agent, the sum of the longest window's counts. */
  completed: number;
  /** Probes that failed (did not pass all checks). */
  failed: number;
  /** Ticks skipped because the previous probe was still in flight (or the in-flight cap was hit). */
  skipped: number;
  /** Probes per second over the last minute (agent: from the 1m windows), when known. */
  ratePerSecond: number | undefined;
  memory: NodeJS.MemoryUsage;
  /** heapUsed after a full GC, when asked (`gc: true`) and the worker runs with --expose-gc. */
  heapAfterGc: number | undefined;
  /** arrayBuffers after that GC (Buffers, socket queues). */
  arrayBuffersAfterGc?: number | undefined;
}

/** Probe (request) durations collected between `latency-start` and `latency-stop`. */
export interface LatencySummary {
  /** How the figures were obtained. */
  source: string;
  count: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
}

/** Percentiles of durations (ms). */
export function summarizeLatency(source: string, durations: ArrayLike<number>): LatencySummary {
  const sorted = sortedCopy(durations);
  return { source, count: sorted.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: sorted[sorted.length - 1] };
}

export interface WorkerHandle {
  pid: number;
  child: ChildProcess;
  call<T = unknown>(command: WorkerCommand): Promise<T>;
  sample(options?: { gc?: boolean }): Promise<WorkerSample>;
  stop(): Promise<void>;
}

/**
 * Two simulator processes (blue, green) and a forked agent worker probing them with `series`
 * series at 1 s and the stock rules, started and warmed up for `warmupSeconds`; `work` runs
 * against them, and all three are stopped after it, whatever it does.
 */
export async function withStockAgent<T>(
  series: number,
  warmupSeconds: number,
  work: (worker: WorkerHandle, sims: { blue: SimulatorProcess; green: SimulatorProcess }) => Promise<T>,
): Promise<T> {
  const [blue, green] = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const worker = forkWorker(['--mode', 'agent', '--series', String(series), '--blue', blue.url, '--green', green.url, '--rules', 'stock']);
    try {
      await worker.call({ cmd: 'start' });
      await sleep(warmupSeconds * 1_000);
      return await work(worker, { blue, green });
    } finally {
      await worker.stop();
    }
  } finally {
    await Promise.all([blue.stop(), green.stop()]);
  }
}

/**
 * An empty directory for one run's state under the OS temp directory; the caller removes it.
 * Every bench agent starts from empty state: a shared directory kept what earlier runs had
 * written (10,008 series of rollups and 49,648 events after a day of benches), and an agent at
 * 1,000 series that opened it sat 3-9 MB higher in RSS than one that started empty.
 */
export function freshDataDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `greenlight-bench-${label}-`));
}

/**
 * Fork bench/agent-process.js with `args` (--mode agent|baseline --series N --blue URL --green URL)
 * and talk to it over IPC, one request at a time. An agent worker given no `--data-dir` gets an
 * empty one of its own (`freshDataDir`), removed when the worker exits.
 */
export function forkWorker(args: string[], execArgv: string[] = []): WorkerHandle {
  const baseline = args[args.indexOf('--mode') + 1] === 'baseline';
  const ownDataDir = baseline || args.includes('--data-dir') ? undefined : freshDataDir('agent');
  if (ownDataDir !== undefined) args = [...args, '--data-dir', ownDataDir];
  const child = track(
    fork(AGENT_PROCESS_SCRIPT, args, {
      execArgv: [...SHIPPED_NODE_FLAGS, ...execArgv],
      env: launcherEnv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  child.on('message', (message: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(`agent worker: ${message.error}`));
  });
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`agent worker exited (${code ?? signal}) with a request pending`));
    pending.clear();
    if (ownDataDir !== undefined) rmSync(ownDataDir, { recursive: true, force: true });
  });
  const call = <T>(command: WorkerCommand): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, ...command }, (error) => {
        if (error) {
          pending.delete(id);
          reject(error);
        }
      });
    });
  return {
    pid: child.pid!,
    child,
    call,
    sample: (options = {}) => call<WorkerSample>({ cmd: 'sample', ...options }),
    stop: async () => {
      if (child.connected) await call({ cmd: 'stop' }).catch(() => undefined);
      await stopChild(child);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement

/** User + system CPU of this process in µs. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, usually 100). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU (utime + stime, all threads) of another process in µs, and its RSS in bytes, from /proc. */
export function procStat(pid: number): { cpuUs: number; rssBytes: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) in parentheses: state is field 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuUs: ((utime + stime) * 1_000_000) / clockTicksPerSecond(), rssBytes: rssPages * 4096 };
}

export interface PacedLoopOptions {
  /** Requests per second. */
  rate: number;
  /** Targets, used round-robin. */
  urls: readonly string[];
  dispatcher: Dispatcher;
  /** Decides whether an answer counts as a success (default: a 2xx status). */
  check?: (status: number, body: string) => boolean;
  /** Ticks due while this many requests are in flight are skipped (default 256). */
  maxInFlight?: number;
  /** Pacing granularity (default 5 ms). */
  tickMs?: number;
  /** Keep request durations (ms) for percentiles (default true). */
  keepLatencies?: boolean;
}

export interface PacedLoop {
  readonly issued: number;
  readonly completed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly inFlight: number;
  /** Durations (ms) of completed requests, in completion order. */
  readonly latencies: number[];
  stop(): Promise<void>;
}

/**
 * All of undici, as the bare loop uses it (its top-level `request`). Loaded when a loop starts,
 * not with this file: the agent's worker imports the harness too, and the agent itself loads only
 * undici's dispatcher (probes/undici-core.ts), so the rest would be counted as the agent's memory.
 */
export function loadUndici(): typeof Undici {
  return createRequire(import.meta.url)('undici') as typeof Undici;
}

/**
 * Issue `rate` requests per second, paced on a timer (never a tight loop): every tick issues the
 * requests due by then, reads each whole answer (`body.text()`), and counts it.
 */
export function startPacedLoop(options: PacedLoopOptions): PacedLoop {
  const { rate, urls, dispatcher } = options;
  const { request } = loadUndici();
  const check = options.check ?? ((status) => status >= 200 && status < 300);
  const maxInFlight = options.maxInFlight ?? 256;
  const keepLatencies = options.keepLatencies ?? true;
  const state = { issued: 0, completed: 0, failed: 0, skipped: 0, inFlight: 0, latencies: [] as number[] };
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();

  const fire = (url: string) => {
    const t0 = performance.now();
    state.inFlight++;
    const done = request(url, { dispatcher })
      .then(async (response) => {
        const body = await response.body.text();
        const ok = check(response.statusCode, body);
        state.completed++;
        if (!ok) state.failed++;
        if (keepLatencies) state.latencies.push(performance.now() - t0);
      })
      .catch(() => {
        state.completed++;
        state.failed++;
      })
      .finally(() => {
        state.inFlight--;
        inFlight.delete(done);
      });
    inFlight.add(done);
  };

  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 1_000) * rate);
    while (state.issued < due) {
      const url = urls[state.issued % urls.length]!;
      state.issued++;
      if (state.inFlight >= maxInFlight) state.skipped++;
      else fire(url);
    }
  }, options.tickMs ?? 5);

  return {
    get issued() {
      return state.issued;
    },
    get completed() {
      return state.completed;
    },
    get failed() {
      return state.failed;
    },
    get skipped() {
      return state.skipped;
    },
    get inFlight() {
      return state.inFlight;
    },
    get latencies() {
      return state.latencies;
    },
    stop: async () => {
      clearInterval(timer);
      await Promise.allSettled([...inFlight]);
    },
  };
}

/** The middle of `values` (the mean of the two middles for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** q-quantile (0..1) of ascending-sorted values, nearest rank; undefined when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

/** An ascending copy (numeric order). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

// ---------------------------------------------------------------------------------------------
// Reporting

export type Verdict = 'ok' | 'MISS' | 'n/a' | 'info';

/** One line of the final summary. */
export interface SummaryRow {
  bench: string;
  figure: string;
  target: string;
  measured: string;
  verdict: Verdict;
}

export function verdict(pass: boolean | undefined): Verdict {
  return pass === undefined ? 'n/a' : pass ? 'ok' : 'MISS';
}

export function fmt(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mb(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${fmt(bytes / 1_048_576, 1)} MB`;
}

export function pct(fraction: number | undefined, digits = 1): string {
  return fraction === undefined || !Number.isFinite(fraction) ? '-' : `${fmt(fraction * 100, digits)}%`;
}

/** A plain-text table with a header line. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function log(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function section(title: string): void {
  log(`\n=== ${title} ${'='.repeat(Math.max(0, 72 - title.length))}`);
}

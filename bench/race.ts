/**
 * Issue 7's race: greenlight against what a team builds instead — blackbox_exporter, a
 * Prometheus alerting rule and an Alertmanager webhook — tuned as hard as it goes, both watching
 * the same live simulator, in the same run.
 *
 *   npm run bench:race                       # build; 10 trials × {no confirmation, confirmation} × {webhook, nginx}
 *   node dist/bench/race.js --trials 20 --traffic webhook --modes confirm
 *
 * Per trial: a fault (every app request answers 500) is injected into the live simulator at a
 * random phase of the probe cycle; the stack's time is fault → Alertmanager's firing webhook at a
 * local recorder; greenlight's is fault → its traffic.switched event (the switch itself included:
 * through nginx when installed — reload and verify — else the webhook adapter to the recorder).
 * Then the fault is cleared and both are left to recover before the next trial. Printed: every
 * trial, medians with min–max, the ratio, greenlight's RSS and CPU against the three peer
 * processes together, how many extra probes confirmation spent, and what the fresh verification
 * of the target (issue 11: every switch probes its target again first) adds to fault → switch.
 *
 * The peer side needs Debian's prometheus-blackbox-exporter, prometheus and
 * prometheus-alertmanager; without them it is skipped with a message and greenlight runs alone.
 * Figures are informational (exit 0 when the race ran): wall-clock numbers on a shared machine
 * are too noisy to assert.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os, { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { findNginx, startNginxFront, type NginxFront } from '../simulator/nginx-front.js';
import {
  clockTicksPerSecond,
  DIST_DIR,
  fmt,
  freePort,
  launcherEnv,
  log,
  quantile,
  section,
  sleep,
  SHIPPED_NODE_FLAGS,
  setSimulatorFaults,
  sortedCopy,
  startSimulatorProcess,
  stopChild,
  table,
  track,
  type SimulatorProcess,
} from './harness.js';

const BLACKBOX = '/usr/bin/prometheus-blackbox-exporter';
const PROMETHEUS = '/usr/bin/prometheus';
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';
const GREENLIGHT_BIN = resolve(DIST_DIR, '..', 'bin', 'greenlight.js');

const USAGE = `usage: node dist/bench/race.js [--trials N] [--traffic webhook,nginx] [--modes plain,confirm]
  --trials N     fault injections per mode and adapter (default 10, at least 1)
  --traffic T    how greenlight switches, one or both: webhook (the webhook adapter to a local
                 recorder), nginx (real nginx in front of the pair: write, nginx -t, reload, verify).
                 Default both; nginx is left out with a message when it is not installed
  --modes M      plain (no confirmation), confirm (count 2, spacing 100ms), or both (default)
  --node-options O  node flags for the greenlight process, after the shipped --max-semi-space-size=2 (e.g. "--optimize-for-size")`;

// ---------------------------------------------------------------------------------------------
// Small helpers

/** VmRSS of a process in bytes (/proc/PID/status), 0 when it is gone. */
function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1_024 : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of a process (all threads) in µs, from /proc/PID/stat. */
function cpuOf(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / clockTicksPerSecond();
  } catch {
    return 0;
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) return false;
    await sleep(stepMs);
  }
  return true;
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) return undefined;
    return (await response.json()) as T;
  } catch {
    return undefined;
  }
}

/** Start a program, fail with its output if it exits early. */
function startProgram(name: string, file: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = track(spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => output };
}

async function waitReady(name: string, url: string, program: { child: ChildProcess; output: () => string }): Promise<void> {
  const ok = await waitFor(
    async () => {
      if (program.child.exitCode !== null) throw new Error(`${name} exited with ${program.child.exitCode}: ${program.output()}`);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        return response.ok;
      } catch {
        return false;
      }
    },
    30_000,
    100,
  );
  if (!ok) throw new Error(`${name} did not answer ${url} within 30 s: ${program.output()}`);
}

// ---------------------------------------------------------------------------------------------
// The recorder: receives Alertmanager's webhooks and greenlight's traffic webhook

interface Arrival {
  at: number;
  path: string;
  body: unknown;
}

async function startRecorder(): Promise<{ url: string; arrivals: Arrival[]; close(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      arrivals.push({ at, path: req.url ?? '/', body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The peer stack

interface PeerStack {
  pids: number[];
  promUrl: string;
  amUrl: string;
  close(): Promise<void>;
}

function peersInstalled(): string[] {
  return [BLACKBOX, PROMETHEUS, ALERTMANAGER].filter((file) => !existsSync(file));
}

/**
 * blackbox_exporter, Prometheus and Alertmanager on free 127.0.0.1 ports, tuned as hard as they
 * go: 1 s scrape and evaluation, `max_over_time(probe_success[3s]) == 0` with no `for`,
 * group_wait 0, a short group_interval, a webhook receiver at the recorder.
 */
async function startPeerStack(dir: string, sims: SimulatorProcess[], recorderUrl: string): Promise<PeerStack> {
  const [bbPort, promPort, amPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'blackbox.yml'),
    `modules:
  http_2xx:
    prober: http
    timeout: 900ms
    http:
      valid_status_codes: [200]
      fail_if_body_not_matches_regexp: ['"status":"healthy"']
`,
  );
  writeFileSync(
    join(dir, 'rules.yml'),
    `groups:
  - name: live
    interval: 1s
    rules:
      - alert: LiveHealthFailing
        expr: max_over_time(probe_success{job="alphastack"}[3s]) == 0
        labels: { severity: critical }
        annotations: { summary: "health probe failing on {{ $labels.env }}" }
`,
  );
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [${JSON.stringify(join(dir, 'rules.yml'))}]
alerting:
  alertmanagers:
    - static_configs: [ { targets: ['127.0.0.1:${amPort}'] } ]
scrape_configs:
  - job_name: alphastack
    metrics_path: /probe
    params: { module: [http_2xx] }
    static_configs:
${sims.map((sim) => `      - targets: ['${sim.url}/api/health']\n        labels: { env: ${sim.name} }`).join('\n')}
    relabel_configs:
      - { source_labels: [__address__], target_label: __param_target }
      - { source_labels: [__param_target], target_label: instance }
      - { target_label: __address__, replacement: '127.0.0.1:${bbPort}' }
`,
  );
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: rollback
  group_by: [alertname, env]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: rollback
    webhook_configs:
      - url: ${recorderUrl}/alertmanager
        send_resolved: true
`,
  );
  const bb = startProgram('blackbox_exporter', BLACKBOX, [`--config.file=${join(dir, 'blackbox.yml')}`, `--web.listen-address=127.0.0.1:${bbPort}`], dir);
  const am = startProgram(
    'alertmanager',
    ALERTMANAGER,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
    ],
    dir,
  );
  const prom = startProgram(
    'prometheus',
    PROMETHEUS,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'prom-data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    dir,
  );
  await waitReady('blackbox_exporter', `http://127.0.0.1:${bbPort}/metrics`, bb);
  await waitReady('alertmanager', `http://127.0.0.1:${amPort}/-/ready`, am);
  await waitReady('prometheus', `http://127.0.0.1:${promPort}/-/ready`, prom);
  return {
    pids: [bb.child.pid!, prom.child.pid!, am.child.pid!],
    promUrl: `http://127.0.0.1:${promPort}`,
    amUrl: `http://127.0.0.1:${amPort}`,
    close: async () => {
      await Promise.all([stopChild(prom.child), stopChild(am.child), stopChild(bb.child)]);
    },
  };
}

/** Whether the stack has no alert about `env` left: none pending or firing in Prometheus, none active in Alertmanager. */
async function stackQuiet(stack: PeerStack, env: string): Promise<boolean> {
  const prom = await getJson<{ data: { alerts: { labels: Record<string, string> }[] } }>(`${stack.promUrl}/api/v1/alerts`);
  const am = await getJson<{ labels: Record<string, string> }[]>(`${stack.amUrl}/api/v2/alerts?active=true&silenced=false&inhibited=false`);
  if (!prom || !am) return false;
  return !prom.data.alerts.some((a) => a.labels.env === env) && !am.some((a) => a.labels.env === env);
}

// ---------------------------------------------------------------------------------------------
// greenlight

interface Greenlight {
  pid: number;
  base: string;
  switched: { at: number; from: string; to: string; verifyMs: number | undefined }[];
  /** rule.firing events: when greenlight knew (the switch follows). */
  fired: { at: number; env: string }[];
  close(): Promise<void>;
}

function greenlightConfig(options: { port: number; dataDir: string; blue: string; green: string; confirm: boolean; traffic: Record<string, unknown> }): string {
  // The stock probes and checks, at 1 s, with the stock confirmation (health and universe); the
  // stock "three in a row" line (live-universe-failing) over health and universe; cooldowns 0 so
  // that trials can follow each other.
  return `listen: 127.0.0.1:${options.port}
dataDir: ${JSON.stringify(options.dataDir)}
activeEnvironment: blue
environments:
  blue: { url: ${options.blue} }
  green: { url: ${options.green} }
probeDefaults:
  every: 1s
  timeout: 2s
  jitter: 0.1
  confirm: { count: 0, spacing: 100ms, maxPerSecond: 5 }
log: { level: warn, format: json }
traffic: ${JSON.stringify(options.traffic)}
actions:
  rollback: { type: rollback, cooldown: 0s }
rules:
  - name: live-failing
    description: health or universe failed three times in a row on the live environment
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: [health, universe] }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback]
probes:
  - name: health
    path: /api/health
    confirm: { count: ${options.confirm ? 2 : 0} }
    expect:
      status: [200]
      json:
        - { path: $.status, in: [healthy, ok] }
        - { path: $.database.connected, equals: true }
    extract:
      memory_percent: { path: $.memory.percent, lines: [80, 90] }
      cpu_percent: $.cpu.percent
  - name: universe
    path: /api/alphastack/universe
    confirm: { count: ${options.confirm ? 2 : 0} }
    expect: { status: [200], json: [ { path: $.universe, nonEmpty: true } ] }
  - name: discoveries
    path: /api/discoveries
    expect: { status: [200], json: [ { path: $.discoveries, exists: true } ] }
  - name: positions
    path: /api/portfolio/positions
    expect: { status: [200], json: [ { path: $.positions, exists: true } ] }
`;
}

async function startGreenlight(dir: string, text: string, port: number, nodeOptions: string[]): Promise<Greenlight> {
  const configFile = join(dir, 'greenlight.yaml');
  writeFileSync(configFile, text);
  const program = startProgram(
    'greenlight',
    process.execPath,
    [...SHIPPED_NODE_FLAGS, ...nodeOptions, GREENLIGHT_BIN, 'run', '--config', configFile],
    dir,
    launcherEnv(),
  );
  const base = `http://127.0.0.1:${port}`;
  await waitReady('greenlight', `${base}/readyz`, program);
  const switched: Greenlight['switched'] = [];
  const fired: Greenlight['fired'] = [];
  const socket = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream`);
  socket.on('message', (data) => {
    const at = performance.now();
    const event = JSON.parse(String(data)) as { type: string; env: string; data: { from: string; to: string; verification?: { durationMs: number } | null } };
    if (event.type === 'traffic.switched') switched.push({ at, from: event.data.from, to: event.data.to, verifyMs: event.data.verification?.durationMs });
    if (event.type === 'rule.firing') fired.push({ at, env: event.env });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    pid: program.child.pid!,
    base,
    switched,
    fired,
    close: async () => {
      socket.close();
      await stopChild(program.child);
    },
  };
}

interface GreenlightState {
  activeEnvironment: string;
  environments: Record<string, { up: boolean | undefined }>;
  rules: { state: string }[];
}

/** Sums of a counter family in greenlight's /metrics. */
async function counterSums(base: string): Promise<{ probes: number; confirmations: number; capped: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((total, match) => total + Number(match[1]), 0);
  return {
    probes:
      sum('greenlight_probes_total') -
      [...text.matchAll(/^greenlight_probes_total\{[^}]*result="skipped"[^}]*\} (\S+)$/gm)].reduce((t, m) => t + Number(m[1]), 0),
    confirmations: sum('greenlight_confirmation_probes_total'),
    capped: sum('greenlight_confirmation_capped_total'),
  };
}

// ---------------------------------------------------------------------------------------------
// One mode: a fresh greenlight, N trials

interface Trial {
  env: string;
  phaseMs: number;
  stackMs: number | undefined;
  greenlightMs: number | undefined;
  /** Fault → rule.firing: the detection part of greenlightMs. */
  detectMs: number | undefined;
  /** The target's fresh verification inside the switch (part of greenlightMs). */
  verifyMs: number | undefined;
}

interface ModeResult {
  mode: string;
  traffic: string;
  trials: Trial[];
  greenlightRss: number[];
  peerRss: number[];
  greenlightCpuUs: number;
  peerCpuUs: number;
  wallMs: number;
  extra: { probes: number; confirmations: number; capped: number };
}

async function runMode(
  mode: 'plain' | 'confirm',
  options: {
    trials: number;
    sims: Record<string, SimulatorProcess>;
    stack: PeerStack | undefined;
    recorder: Awaited<ReturnType<typeof startRecorder>>;
    traffic: 'nginx' | 'webhook';
    nodeOptions: string[];
  },
): Promise<ModeResult> {
  const { sims, stack, recorder } = options;
  section(
    `${mode === 'plain' ? 'Without confirmation' : 'With confirmation (count 2, spacing 100ms)'}: ${options.trials} trials at a 1 s interval, switch through ${options.traffic}`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'greenlight-race-'));
  let front: NginxFront | undefined;
  let greenlight: Greenlight | undefined;
  try {
    await Promise.all([setSimulatorFaults(sims.blue!, undefined), setSimulatorFaults(sims.green!, undefined)]);
    const hostPort = (sim: SimulatorProcess) => new URL(sim.url).host;
    let traffic: Record<string, unknown> = { type: 'webhook', url: `${recorder.url}/greenlight`, timeout: '2s', retries: 0 };
    if (options.traffic === 'nginx') {
      front = await startNginxFront(hostPort(sims.blue!));
      traffic = front.adapterBlock({ blue: hostPort(sims.blue!), green: hostPort(sims.green!) });
    }
    const port = await freePort();
    greenlight = await startGreenlight(
      dir,
      greenlightConfig({ port, dataDir: join(dir, 'data'), blue: sims.blue!.url, green: sims.green!.url, confirm: mode === 'confirm', traffic }),
      port,
      options.nodeOptions,
    );
    const gl = greenlight;
    const state = () => getJson<GreenlightState>(`${gl.base}/api/v1/state`);
    await sleep(3_000); // a few rounds: windows and the stack's series have data

    const trials: Trial[] = [];
    const greenlightRss: number[] = [];
    const peerRss: number[] = [];
    const cpu0 = { gl: cpuOf(gl.pid), peers: stack ? stack.pids.reduce((sum, pid) => sum + cpuOf(pid), 0) : 0, wall: performance.now() };
    const before = await counterSums(gl.base);
    for (let i = 0; i < options.trials; i++) {
      const live = (await state())?.activeEnvironment ?? 'blue';
      const sim = sims[live]!;
      // A random phase of the 1 s probe (and scrape) cycle.
      const phaseMs = Math.random() * 1_000;
      await sleep(1_000 + phaseMs);
      const faultAt = performance.now();
      await setSimulatorFaults(sim, { errorRatio: 1 });
      const stackSeen = () =>
        recorder.arrivals.find(
          (a) =>
            a.at >= faultAt &&
            a.path === '/alertmanager' &&
            (a.body as { status?: string; alerts?: { labels: Record<string, string>; status: string }[] })?.alerts?.some(
              (alert) => alert.status === 'firing' && alert.labels.env === live,
            ),
        );
      const glSeen = () => gl.switched.find((s) => s.at >= faultAt && s.from === live);
      const glFired = () => gl.fired.find((f) => f.at >= faultAt && f.env === live);
      await waitFor(() => glSeen() !== undefined && (stack === undefined || stackSeen() !== undefined), 20_000);
      const trial: Trial = {
        env: live,
        phaseMs,
        stackMs: stack ? (stackSeen()?.at ?? NaN) - faultAt : undefined,
        greenlightMs: (glSeen()?.at ?? NaN) - faultAt,
        detectMs: (glFired()?.at ?? NaN) - faultAt,
        verifyMs: glSeen()?.verifyMs,
      };
      trials.push(trial);
      greenlightRss.push(rssOf(gl.pid));
      if (stack) peerRss.push(stack.pids.reduce((sum, pid) => sum + rssOf(pid), 0));
      log(
        `trial ${String(i + 1).padStart(2)}: fault on ${live.padEnd(5)} phase ${fmt(phaseMs, 0).padStart(3)} ms  stack ${stack ? `${fmt(trial.stackMs! / 1_000, 2)} s` : 'skipped'}  greenlight ${fmt(trial.greenlightMs! / 1_000, 2)} s (knew at ${fmt(trial.detectMs! / 1_000, 2)} s, verified the target in ${trial.verifyMs === undefined ? '-' : `${fmt(trial.verifyMs, 1)} ms`})${stack ? `  ratio ${fmt(trial.greenlightMs! / trial.stackMs!, 2)}` : ''}`,
      );
      await setSimulatorFaults(sim, undefined);
      // Recover: greenlight sees the old environment healthy again and no rule left firing; the stack has no alert left about it.
      const recovered = await waitFor(
        async () => {
          const s = await state();
          if (!s || s.environments[live]?.up !== true || s.rules.some((r) => r.state !== 'inactive')) return false;
          return stack === undefined || (await stackQuiet(stack, live));
        },
        30_000,
        200,
      );
      if (!recovered) log(`  (trial ${i + 1}: not fully recovered after 30 s; going on)`);
    }
    const after = await counterSums(gl.base);
    const result: ModeResult = {
      mode,
      traffic: options.traffic,
      trials,
      greenlightRss,
      peerRss,
      greenlightCpuUs: cpuOf(gl.pid) - cpu0.gl,
      peerCpuUs: stack ? stack.pids.reduce((sum, pid) => sum + cpuOf(pid), 0) - cpu0.peers : 0,
      wallMs: performance.now() - cpu0.wall,
      extra: { probes: after.probes - before.probes, confirmations: after.confirmations - before.confirmations, capped: after.capped - before.capped },
    };
    return result;
  } finally {
    await greenlight?.close();
    await front?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function spread(values: number[]): { median: number | undefined; min: number | undefined; max: number | undefined; n: number } {
  const finite = values.filter(Number.isFinite);
  const sorted = sortedCopy(finite);
  return { median: quantile(sorted, 0.5), min: sorted[0], max: sorted[sorted.length - 1], n: finite.length };
}

const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${fmt(ms / 1_000, 2)} s`);
const mib = (bytes: number | undefined) => (bytes === undefined ? '-' : `${fmt(bytes / 1_048_576, 1)} MiB`);

function report(results: ModeResult[], hasStack: boolean): void {
  section('Summary');
  const rows: string[][] = [];
  for (const r of results) {
    const gl = spread(r.trials.map((t) => t.greenlightMs ?? NaN));
    const detect = spread(r.trials.map((t) => t.detectMs ?? NaN));
    const verify = spread(r.trials.map((t) => t.verifyMs ?? NaN));
    const st = spread(r.trials.map((t) => t.stackMs ?? NaN));
    const ratios = spread(r.trials.map((t) => (t.greenlightMs ?? NaN) / (t.stackMs ?? NaN)));
    const target = r.mode === 'plain' ? '<= 0.9x' : '<= 0.5x, < 1.5 s';
    const medianRatio = gl.median !== undefined && st.median !== undefined ? gl.median / st.median : undefined;
    const met = medianRatio === undefined ? 'n/a' : (r.mode === 'plain' ? medianRatio <= 0.9 : medianRatio <= 0.5 && gl.median! < 1_500) ? 'ok' : 'MISS';
    rows.push([
      `${r.mode} / ${r.traffic}`,
      `${gl.n}/${r.trials.length}`,
      `${seconds(gl.median)} (${seconds(gl.min)}–${seconds(gl.max)})`,
      seconds(detect.median),
      verify.median === undefined ? '-' : `${fmt(verify.median, 1)} ms (max ${fmt(verify.max, 1)})`,
      hasStack ? `${seconds(st.median)} (${seconds(st.min)}–${seconds(st.max)})` : 'skipped',
      hasStack ? `${fmt(medianRatio, 2)}x (per trial ${fmt(ratios.min, 2)}–${fmt(ratios.max, 2)}x)` : '-',
      target,
      met,
    ]);
  }
  log(
    table(
      [
        'mode / switch',
        'trials',
        'greenlight fault→switch median (min–max)',
        'of which detection',
        'of which fresh verification',
        'stack fault→webhook median (min–max)',
        'ratio of medians',
        'target',
        'verdict',
      ],
      rows,
    ),
  );

  log('');
  const resources: string[][] = [];
  for (const r of results) {
    const glRss = spread(r.greenlightRss);
    const peerRss = spread(r.peerRss);
    resources.push([
      `${r.mode} / ${r.traffic}`,
      `${mib(glRss.median)} (max ${mib(glRss.max)})`,
      hasStack ? `${mib(peerRss.median)} (max ${mib(peerRss.max)})` : 'skipped',
      `${fmt((r.greenlightCpuUs / 1_000 / r.wallMs) * 100, 2)} %`,
      hasStack ? `${fmt((r.peerCpuUs / 1_000 / r.wallMs) * 100, 2)} %` : 'skipped',
      hasStack && glRss.median !== undefined && peerRss.median !== undefined ? (glRss.median < peerRss.median ? 'ok' : 'MISS') : 'n/a',
    ]);
  }
  log(
    table(
      ['mode / switch', 'greenlight RSS median', 'peers RSS together (bb+prom+am)', 'greenlight CPU (of a core)', 'peers CPU together', 'RSS below peers'],
      resources,
    ),
  );

  log('');
  for (const r of results) {
    const { probes, confirmations, capped } = r.extra;
    log(
      `${r.mode} / ${r.traffic}: ${probes} probes during the trials, of which ${confirmations} confirmation re-probes (${fmt((confirmations / Math.max(1, probes)) * 100, 1)} %, ${fmt(confirmations / Math.max(1, r.trials.length), 1)} per trial); ${capped} withheld by the rate cap`,
    );
  }
  log('\nRSS from /proc/PID/status VmRSS, sampled after each trial; CPU from /proc/PID/stat utime+stime over the trials, as a share of one core.');
  log('Figures are wall-clock times on this machine: compare within the run, not across machines.');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        trials: { type: 'string', default: '10' },
        traffic: { type: 'string', default: 'webhook,nginx' },
        modes: { type: 'string', default: 'plain,confirm' },
        'node-options': { type: 'string', default: '' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    log(USAGE);
    return 0;
  }
  const trials = Number(values.trials);
  const modes = values.modes.split(',').map((m) => m.trim());
  if (!Number.isInteger(trials) || trials < 1) {
    process.stderr.write(`--trials must be a positive integer (got "${values.trials}")\n${USAGE}\n`);
    return 2;
  }
  if (modes.length === 0 || modes.some((m) => m !== 'plain' && m !== 'confirm')) {
    process.stderr.write(`--modes must list plain and/or confirm (got "${values.modes}")\n${USAGE}\n`);
    return 2;
  }
  const asked = values.traffic.split(',').map((t) => t.trim());
  if (asked.length === 0 || asked.some((t) => t !== 'nginx' && t !== 'webhook')) {
    process.stderr.write(`--traffic must list webhook and/or nginx (got "${values.traffic}")\n${USAGE}\n`);
    return 2;
  }
  const hasNginx = findNginx() !== undefined;
  const adapters = asked.filter((t) => t !== 'nginx' || hasNginx) as ('nginx' | 'webhook')[];
  if (adapters.length < asked.length) log('nginx is not installed (apt-get install nginx): the nginx runs are skipped');
  if (adapters.length === 0) return 2;

  const nodeOptions = values['node-options'].split(/\s+/).filter(Boolean);
  if (nodeOptions.length > 0) log(`greenlight runs with node ${nodeOptions.join(' ')}`);
  log(`greenlight race: ${trials} trials per mode and adapter (${modes.join(', ')} × ${adapters.join(', ')})`);
  log(
    `machine: node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const missing = peersInstalled();
  if (missing.length > 0)
    log(
      `peer stack skipped: ${missing.join(', ')} not installed (apt-get install prometheus-blackbox-exporter prometheus prometheus-alertmanager); greenlight runs alone`,
    );

  const dir = mkdtempSync(join(tmpdir(), 'greenlight-race-stack-'));
  const recorder = await startRecorder();
  const simList = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  const sims = Object.fromEntries(simList.map((sim) => [sim.name, sim]));
  let stack: PeerStack | undefined;
  try {
    if (missing.length === 0) {
      stack = await startPeerStack(dir, simList, recorder.url);
      log(`peer stack: blackbox_exporter, prometheus ${stack.promUrl}, alertmanager ${stack.amUrl} (pids ${stack.pids.join(', ')})`);
      await sleep(4_000); // the [3s] range needs samples
    }
    const results: ModeResult[] = [];
    for (const traffic of adapters) {
      for (const mode of modes as ('plain' | 'confirm')[]) results.push(await runMode(mode, { trials, sims, stack, recorder, traffic, nodeOptions }));
    }
    report(results, stack !== undefined);
    return 0;
  } finally {
    await stack?.close();
    await Promise.all(simList.map((sim) => sim.stop()));
    await recorder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();

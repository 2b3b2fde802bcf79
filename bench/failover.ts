/**
 * `npm run bench:failover`: three agents (the built CLI, as processes) on a throwaway PostgreSQL
 * (simulator/postgres-server.ts), two simulators, and a traffic webhook that records every switch
 * with its fencing token and refuses a stale one. Trials of each fault, at the default cluster
 * settings (lease 2s, renewed every 250ms), probes every 100ms and a rule that rolls back after
 * three consecutive failures of the live environment's universe probe:
 *
 * - `kill`: the live environment fails and the leader is killed (SIGKILL) at the same moment;
 * - `pause`: the same with SIGSTOP instead (SIGCONT once the new leader has switched).
 *
 * Per trial: failover time (the fault → another agent reports itself leader, read from
 * GET /api/v1/cluster every 20ms) and fault → switch (→ the webhook takes the switch); switches
 * the webhook took (more than one is a duplicate) and switches it refused for a stale token.
 * Baseline, measured in the same run: fault → switch with a healthy leader (no fault on it).
 *
 * Two more parts (issue 13), before the trials, on the same server:
 *
 * - `ingest`: events/s appended through the SQLite journal against the cluster's PostgreSQL path,
 *   the same 20,000 events each (bench/cluster-ingest.ts); SQLite is the baseline;
 * - `stream`: cross-agent stream latency. Two agents (a, b) on their own database, no rules; a
 *   WebSocket client on b's /api/v1/stream; the live environment's universe probe is made to fail
 *   and recover in turn, and for each probe event that agent a published (data.node = a), the
 *   time b's client received it minus the event's own time (stamped by a; one machine, one clock).
 *
 * `--only ingest,stream` runs just those (about a minute); the default runs all three.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../simulator/alphastack-simulator.js';
import { startPostgres } from '../simulator/postgres-server.js';
import { runClusterIngest } from './cluster-ingest.js';

const BIN = new URL('../../bin/greenlight.js', import.meta.url).pathname;
const NAMES = ['a', 'b', 'c'] as const;

interface Switch {
  token: number;
  accepted: boolean;
  at: number;
}

interface Trial {
  failoverMs: number | null;
  faultToSwitchMs: number;
  accepted: number;
  refused: number;
}

interface Running {
  child: ChildProcess;
  base: string;
}

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '10' },
    only: { type: 'string', default: 'ingest,stream,failover' },
    events: { type: 'string', default: '100' },
  },
});
const trials = Number(values.trials);
const parts = new Set(values.only.split(','));

async function main(): Promise<void> {
  const postgres = await startPostgres();
  try {
    if (parts.has('ingest')) await ingest(await postgres.database('ingest'));
    if (parts.has('stream')) await streamLatency(await postgres.database('stream'), Number(values.events));
  } catch (error) {
    postgres.close();
    throw error;
  }
  if (!parts.has('failover')) {
    postgres.close();
    return;
  }
  const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const switches: Switch[] = [];
  let highest = 0;
  const target: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const token = Number(req.headers['greenlight-fencing-token']);
      const accepted = token >= highest;
      if (accepted) highest = token;
      switches.push({ token, accepted, at: performance.now() });
      res.writeHead(accepted ? 200 : 409).end('{}');
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  const databaseUrl = await postgres.database('failover');
  const agents = new Map<string, Running>();
  const configs = new Map<string, string>();
  for (const name of NAMES) {
    const dir = mkdtempSync(join(tmpdir(), `greenlight-failover-${name}-`));
    const file = join(dir, 'greenlight.yaml');
    writeFileSync(file, configText(blue, green, targetUrl, dir));
    configs.set(name, file);
  }
  const start = async (name: string) => agents.set(name, await startAgent(configs.get(name)!, databaseUrl, name));
  const stopAll = async () => {
    for (const agent of agents.values()) {
      agent.child.kill('SIGCONT');
      agent.child.kill('SIGKILL');
    }
    target.closeAllConnections();
    target.close();
    await Promise.all([blue.close(), green.close()]);
    postgres.close();
  };
  try {
    await Promise.all(NAMES.map(start));
    const results: Record<'baseline' | 'kill' | 'pause', Trial[]> = { baseline: [], kill: [], pause: [] };
    const envs = { blue, green };
    for (let i = 0; i < trials * 3; i++) {
      const kind = (['baseline', 'kill', 'pause'] as const)[i % 3]!;
      const leader = await leaderOf(agents);
      const live = await liveOf(agents.get(leader)!);
      const faulty = envs[live as 'blue' | 'green'];
      const before = switches.length;
      const t0 = performance.now();
      faulty.setFaults({ emptyUniverse: true });
      if (kind === 'kill') agents.get(leader)!.child.kill('SIGKILL');
      if (kind === 'pause') agents.get(leader)!.child.kill('SIGSTOP');
      const others = NAMES.filter((name) => name !== leader);
      let failoverMs: number | null = null;
      const deadline = t0 + 30_000;
      while (switches.slice(before).filter((s) => s.accepted).length === 0 || (kind !== 'baseline' && failoverMs === null)) {
        if (performance.now() > deadline) throw new Error(`trial ${i} (${kind}): no switch within 30s`);
        if (kind !== 'baseline' && failoverMs === null) {
          const view = await getJson<{ leader: string | null }>(agents.get(others[0]!)!, '/api/v1/cluster').catch(() => undefined);
          if (view?.leader && view.leader !== leader) failoverMs = performance.now() - t0;
        }
        await sleep(20);
      }
      const firstSwitch = switches.slice(before).find((s) => s.accepted)!;
      // Settle: the paused leader comes back (and must be fenced); every agent sees the new live environment.
      if (kind === 'pause') agents.get(leader)!.child.kill('SIGCONT');
      if (kind === 'kill') await start(leader);
      await waitFor(
        async () => (await Promise.all([...agents.values()].map((agent) => liveOf(agent).catch(() => live)))).every((l) => l !== live),
        'every agent to follow the switch',
      );
      await sleep(2_500);
      faulty.resetFaults();
      await waitFor(async () => (await leaderOf(agents).catch(() => undefined)) !== undefined, 'a leader');
      await sleep(1_000);
      const trial = {
        failoverMs,
        faultToSwitchMs: firstSwitch.at - t0,
        accepted: switches.slice(before).filter((s) => s.accepted).length,
        refused: switches.slice(before).filter((s) => !s.accepted).length,
      };
      results[kind].push(trial);
      console.log(`trial ${i + 1}/${trials * 3} ${kind}: ${JSON.stringify(trial)}`);
    }
    console.log('\nfailover at the default settings (lease 2s, renewEvery 250ms; probes every 100ms, rule at 3 failures)');
    console.log('| fault | trials | failover p50 / p90 / max (ms) | fault → switch p50 / p90 / max (ms) | duplicate switches | stale tokens refused |');
    console.log('|---|---|---|---|---|---|');
    for (const kind of ['baseline', 'kill', 'pause'] as const) {
      const list = results[kind];
      const failover = list.map((t) => t.failoverMs).filter((ms): ms is number => ms !== null);
      const dup = list.reduce((sum, t) => sum + Math.max(0, t.accepted - 1), 0);
      const refused = list.reduce((sum, t) => sum + t.refused, 0);
      console.log(
        `| ${kind === 'baseline' ? 'none (baseline)' : kind} | ${list.length} | ${kind === 'baseline' ? '—' : spread(failover)} | ${spread(list.map((t) => t.faultToSwitchMs))} | ${dup} | ${refused} |`,
      );
    }
  } finally {
    await stopAll();
  }
}

async function ingest(databaseUrl: string): Promise<void> {
  const results = await runClusterIngest(databaseUrl, { events: 20_000, sizes: [100, 1], maxSeconds: 10 });
  console.log('\njournal ingest: the same realistic events through the SQLite journal (baseline) and the cluster path into PostgreSQL');
  console.log('(the throwaway PostgreSQL runs fsync=off, synchronous_commit=off; SQLite fsyncs every commit: PostgreSQL is an upper bound)');
  console.log('| batch (events per transaction) | SQLite events/s (baseline) | PostgreSQL events/s | PG / SQLite |');
  console.log('|---|---|---|---|');
  for (const { sqlite, postgres } of results) {
    const figure = (f: typeof sqlite) =>
      `${Math.round(f.perSecond).toLocaleString('en-US')} (${f.events.toLocaleString('en-US')} in ${f.seconds.toFixed(2)} s)`;
    console.log(`| ${sqlite.batch} | ${figure(sqlite)} | ${figure(postgres)} | ${(postgres.perSecond / sqlite.perSecond).toFixed(2)}x |`);
  }
}

interface StreamEvent {
  id: number;
  time: string;
  type: string;
  env: string | null;
  data: { node?: string };
}

async function streamLatency(databaseUrl: string, wanted: number): Promise<void> {
  const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const target: Server = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end('{}')));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  const running: Running[] = [];
  let socket: WebSocket | undefined;
  try {
    for (const name of ['a', 'b']) {
      const dir = mkdtempSync(join(tmpdir(), `greenlight-stream-${name}-`));
      const file = join(dir, 'greenlight.yaml');
      writeFileSync(file, streamConfigText(blue, green, targetUrl, dir));
      running.push(await startAgent(file, databaseUrl, name));
    }
    const [a, b] = running as [Running, Running];
    const live = await liveOf(a);
    const faulty = live === 'blue' ? blue : green;
    const latencies: number[] = [];
    socket = new WebSocket(`${b.base.replace('http', 'ws')}/api/v1/stream?type=probe`);
    socket.on('message', (raw: Buffer) => {
      const received = Date.now();
      const event = JSON.parse(String(raw)) as StreamEvent;
      if (event.data?.node === 'a' && event.env === live) latencies.push(received - Date.parse(event.time));
    });
    await new Promise<void>((resolve, reject) => socket!.once('open', resolve).once('error', reject));
    let failing = false;
    while (latencies.length < wanted) {
      const before = latencies.length;
      failing = !failing;
      if (failing) faulty.setFaults({ emptyUniverse: true });
      else faulty.resetFaults();
      await waitFor(async () => latencies.length > before, `agent a's probe event on agent b's stream`, 15_000);
      await sleep(50);
    }
    console.log(`\ncross-agent stream latency: probe events published by agent a, received by a WebSocket client on agent b (one PostgreSQL)`);
    console.log("| events | a publishes → b's client receives p50 / p99 / max (ms) |");
    console.log('|---|---|');
    console.log(`| ${latencies.length} | ${quantiles(latencies)} |`);
  } finally {
    socket?.terminate();
    for (const agent of running) agent.child.kill('SIGKILL');
    target.closeAllConnections();
    target.close();
    await Promise.all([blue.close(), green.close()]);
  }
}

function streamConfigText(blue: Simulator, green: Simulator, target: string, dir: string): string {
  return `listen: 127.0.0.1:0
dataDir: ${dir}
log: { level: info, format: json }
cluster:
  databaseUrl: \${GREENLIGHT_DATABASE_URL}
  nodeName: \${GREENLIGHT_NODE_NAME}
environments: { blue: { url: ${blue.url} }, green: { url: ${green.url} } }
probeDefaults: { every: 100ms, timeout: 1s, jitter: 0 }
traffic: { type: webhook, url: ${target}/traffic, timeout: 5s, retries: 0 }
rules: []
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`;
}

function configText(blue: Simulator, green: Simulator, target: string, dir: string): string {
  return `listen: 127.0.0.1:0
dataDir: ${dir}
log: { level: info, format: json }
cluster:
  databaseUrl: \${GREENLIGHT_DATABASE_URL}
  nodeName: \${GREENLIGHT_NODE_NAME}
environments: { blue: { url: ${blue.url} }, green: { url: ${green.url} } }
probeDefaults: { every: 100ms, timeout: 1s, jitter: 0 }
traffic: { type: webhook, url: ${target}/traffic, timeout: 5s, retries: 0 }
actions:
  rollback: { type: rollback, cooldown: 0s }
rules:
  - name: universe-failing
    severity: critical
    cooldown: 0s
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback]
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`;
}

async function startAgent(file: string, databaseUrl: string, name: string): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'run', '--config', file], {
    env: { PATH: process.env.PATH, GREENLIGHT_DATABASE_URL: databaseUrl, GREENLIGHT_NODE_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // Only the start of its log is kept: enough for the port and for a failure to start.
  const keep = (chunk: Buffer) => {
    if (output.length < 200_000) output += String(chunk);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // The port it bound (listen port 0), from its own log line.
  let base: string | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    if (base === undefined) console.error(`agent ${name} exited before it was ready:\n${output.slice(-2_000)}`);
  });
  await waitFor(async () => {
    const port = /"msg":"listening on [^"]*:(\d+)"/.exec(output)?.[1];
    base ??= port === undefined ? undefined : `http://127.0.0.1:${port}`;
    return base !== undefined && (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
  }, `agent ${name} to be ready`);
  return { child, base: base! };
}

async function leaderOf(agents: Map<string, Running>): Promise<string> {
  let leader: string | undefined;
  await waitFor(async () => {
    const views = await Promise.all([...agents.values()].map((agent) => getJson<{ leader: string | null }>(agent, '/api/v1/cluster').catch(() => undefined)));
    leader = views[0]?.leader ?? undefined;
    return leader !== undefined && views.every((view) => view?.leader === leader);
  }, 'the agents to agree on a leader');
  return leader!;
}

async function liveOf(agent: Running): Promise<string> {
  return (await getJson<{ activeEnvironment: string }>(agent, '/api/v1/state')).activeEnvironment;
}

async function getJson<T>(agent: Running, path: string): Promise<T> {
  return (await (await fetch(`${agent.base}${path}`, { signal: AbortSignal.timeout(1_000) })).json()) as T;
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function quantiles(values: number[]): string {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return `${at(0.5)} / ${at(0.99)} / ${Math.round(sorted.at(-1)!)}`;
}

function spread(values: number[]): string {
  if (values.length === 0) return '—';
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return `${at(0.5)} / ${at(0.9)} / ${Math.round(sorted.at(-1)!)}`;
}

await main();

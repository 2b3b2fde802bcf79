/**
 * Issue 11's "no client can slow probing or deciding": the real agent (a forked worker,
 * bench/agent-process.ts) probing two simulator processes, first idle, then with a large
 * journal being replayed to many stream clients while hundreds more never read.
 *
 * Setup: a state database of `--stream-events` realistic events (300,000 by default; written
 * straight through Store before the agent starts), the four AlphaStack probes on both
 * environments every 500 ms with no jitter (so each probe's planned start is known).
 *
 * Two phases of `--stream-seconds` each, measured the same way:
 *   idle    the agent alone, the journal untouched
 *   loaded  20 `ws` clients replaying since=0 (and reading), plus 500 raw sockets that send a
 *           WebSocket upgrade for since=0 and never read (bench/stream-load-clients.ts, forked)
 *
 * The loaded phase starts as the clients connect (the replays start at once), so it covers the
 * replays themselves, not what comes after.
 *
 * Figures: probe lateness p50/p99/max — probes are started by timers on the agent's event loop,
 * and a 20 ms timer chain beside them in the agent process notes how late each of its callbacks
 * runs (what a probe's start waits; 50 samples a second, where the probes themselves give two);
 * probe durations as the agent measured them (a blocked loop lengthens them, and a timeout is a
 * false probe.down); `GET /healthz` latency p50/p99 from this process at 50 requests/s; the
 * agent's RSS (median of the idle phase, highest of the loaded one); probe.down events and failed
 * probes per phase (the targets are healthy throughout, so any is a false alarm); what the
 * readers received. Targets: lateness and /healthz p99 loaded within 2x of idle, RSS growth
 * < 128 MB, no probe.down.
 *
 * The other design, measured in the same run: a worker thread in the agent's process runs the
 * same timer chain and a bare probe every 500 ms (bench/agent-process.ts, isolated-*), i.e. what
 * the probe path would see on an event loop of its own, sharing the process and the CPU.
 */
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setPriority } from 'node:os';
import { resolve } from 'node:path';
import { Agent as UndiciAgent } from 'undici';
import { Store } from '../agent/events/store.js';
import { realisticEvent } from './journal-events.js';
import {
  DIST_DIR,
  fmt,
  forkWorker,
  freshDataDir,
  log,
  mb,
  quantile,
  section,
  sleep,
  sortedCopy,
  startPacedLoop,
  startSimulatorProcess,
  stopChild,
  summarizeLatency,
  track,
  verdict,
  type LatencySummary,
  type SimulatorProcess,
  type SummaryRow,
  type WorkerHandle,
} from './harness.js';

export interface StreamLoadOptions {
  /** Events in the journal (default 300,000). */
  events?: number;
  /** Clients replaying since=0 that read (default 20). */
  readers?: number;
  /** Sockets that upgrade with since=0 and never read (default 500). */
  stalled?: number;
  /** Seconds per phase (default 30). */
  seconds?: number;
  /**
   * The clients' process niceness (default 10): remote clients decode on their own machines; on
   * this one their decoding would otherwise take a core from the agent and the bench.
   */
  clientsNice?: number;
}

interface ClientsReport {
  received: number;
  bytes: number;
  minReceived: number;
  upgraded: number;
  refused: Record<string, number>;
  closes: Record<string, number>;
}

interface Phase {
  lateness: LatencySummary;
  probes: LatencySummary;
  /** The same timer chain, and a bare probe, in a worker thread of the agent's process: the other design. */
  isolated: { lateness: LatencySummary; probes: LatencySummary };
  healthz: LatencySummary;
  healthzFailed: number;
  rssMedian: number;
  rssMax: number;
  /** The sample with the highest RSS: where it went. */
  atMax: NodeJS.MemoryUsage;
  /** At the phase's end, clients still connected, after a full GC: what is held rather than not yet collected. */
  afterGc: { heap: number | undefined; arrayBuffers: number | undefined };
  probeDown: number;
  failedProbes: number;
}

const EVERY_MS = 500;
const HEALTHZ_PER_SECOND = 50;

/** Write `count` realistic events into a fresh state database, as the agent would have journaled them. */
function writeJournal(dataDir: string, count: number): void {
  const store = Store.open(dataDir);
  try {
    const start = Date.now() - count * 10;
    for (let id = 1; id <= count; id += 5_000) {
      const batch = [];
      for (let i = id; i < Math.min(count + 1, id + 5_000); i++) batch.push(realisticEvent(i, start + i * 10));
      store.appendEvents(batch);
    }
    store.checkpoint();
  } finally {
    store.close();
  }
}

function forkClients(niceness: number) {
  const child = track(fork(resolve(DIST_DIR, 'bench/stream-load-clients.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  setPriority(child.pid!, niceness);
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  child.on('message', (message: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.ok) waiter?.resolve(message.result);
    else waiter?.reject(new Error(`stream clients: ${message.error}`));
  });
  child.once('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`stream clients exited (${code})`));
  });
  return {
    call: <T>(command: Record<string, unknown>) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, ...command });
      }),
    stop: () => stopChild(child),
  };
}

async function failedProbes(worker: WorkerHandle): Promise<number> {
  const results = await worker.call<Record<string, number>>({ cmd: 'results' });
  return Object.entries(results).reduce((sum, [result, n]) => sum + (result === 'ok' || result === 'skipped' ? 0 : n), 0);
}

/** Lateness, /healthz and RSS over `seconds`, and the probe.down events and failed probes in that time. */
async function measurePhase(worker: WorkerHandle, base: string, target: string, seconds: number, onSecond?: (second: number) => Promise<void>): Promise<Phase> {
  const downBefore = (await worker.call<Record<string, number>>({ cmd: 'events' }))['probe.down'] ?? 0;
  const failedBefore = await failedProbes(worker);
  const dispatcher = new UndiciAgent({ connections: 4 });
  await worker.call({ cmd: 'lateness-start' });
  await worker.call({ cmd: 'latency-start' });
  await worker.call({ cmd: 'isolated-start', url: `${target}/api/health` });
  const loop = startPacedLoop({ rate: HEALTHZ_PER_SECOND, urls: [`${base}/healthz`], dispatcher, tickMs: 5 });
  const rss: number[] = [];
  let atMax: NodeJS.MemoryUsage | undefined;
  for (let second = 0; second < seconds; second++) {
    await sleep(1_000);
    const { memory } = await worker.sample();
    rss.push(memory.rss);
    if (!atMax || memory.rss > atMax.rss) atMax = memory;
    await onSecond?.(second + 1);
  }
  await loop.stop();
  await dispatcher.close();
  const collected = await worker.sample({ gc: true });
  const afterGc = { heap: collected.heapAfterGc, arrayBuffers: collected.arrayBuffersAfterGc };
  const lateness = await worker.call<LatencySummary>({ cmd: 'lateness-stop' });
  const probes = await worker.call<LatencySummary>({ cmd: 'latency-stop' });
  const isolated = await worker.call<Phase['isolated']>({ cmd: 'isolated-stop' });
  const probeDown = ((await worker.call<Record<string, number>>({ cmd: 'events' }))['probe.down'] ?? 0) - downBefore;
  const sorted = sortedCopy(rss);
  return {
    lateness,
    probes,
    isolated,
    healthz: summarizeLatency('GET /healthz, every request', loop.latencies),
    healthzFailed: loop.failed,
    rssMedian: quantile(sorted, 0.5)!,
    rssMax: sorted[sorted.length - 1]!,
    atMax: atMax!,
    afterGc,
    probeDown,
    failedProbes: (await failedProbes(worker)) - failedBefore,
  };
}

function describe(name: string, phase: Phase): string {
  const l = phase.lateness;
  const h = phase.healthz;
  const p = phase.probes;
  return `${name}: timer lateness p50 ${fmt(l.p50Ms, 2)} ms, p99 ${fmt(l.p99Ms, 2)} ms, max ${fmt(l.maxMs, 1)} ms (${l.count} samples); probe duration p50 ${fmt(p.p50Ms, 2)} ms, p99 ${fmt(p.p99Ms, 2)} ms, max ${fmt(p.maxMs, 1)} ms (${p.count} probes); in a worker thread: timer lateness p99 ${fmt(phase.isolated.lateness.p99Ms, 2)} ms, bare probe p99 ${fmt(phase.isolated.probes.p99Ms, 2)} ms; /healthz p50 ${fmt(h.p50Ms, 2)} ms, p99 ${fmt(h.p99Ms, 2)} ms, max ${fmt(h.maxMs, 1)} ms (${h.count} requests, ${phase.healthzFailed} failed); RSS median ${mb(phase.rssMedian)}, max ${mb(phase.rssMax)} (then heap ${mb(phase.atMax.heapUsed)} of ${mb(phase.atMax.heapTotal)}, array buffers ${mb(phase.atMax.arrayBuffers)}; held after a full GC at the phase's end: heap ${mb(phase.afterGc.heap)}, array buffers ${mb(phase.afterGc.arrayBuffers)}); ${phase.probeDown} probe.down, ${phase.failedProbes} failed probes`;
}

export async function runStreamLoad(options: StreamLoadOptions = {}): Promise<{ rows: SummaryRow[] }> {
  const events = options.events ?? 300_000;
  const readers = options.readers ?? 20;
  const stalledCount = options.stalled ?? 500;
  const seconds = options.seconds ?? 30;
  section(
    `stream load: ${events.toLocaleString('en-US')}-event journal, ${readers} clients replaying since=0, ${stalledCount} sockets that never read; ${seconds} s per phase`,
  );

  const dataDir = freshDataDir('stream');
  const sims = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  try {
    const written = performance.now();
    writeJournal(dataDir, events);
    log(`journal: ${events.toLocaleString('en-US')} events written in ${fmt((performance.now() - written) / 1_000, 1)} s`);
    const [blue, green] = sims as [SimulatorProcess, SimulatorProcess];
    // Every bench client comes from 127.0.0.1: the limits are raised so that all of them are
    // admitted and what is measured is what each one may hold, not the refusals.
    const admitted = readers + stalledCount + 16;
    const extra = `api:\n  stream:\n    maxClients: ${admitted}\n    maxClientsPerAddress: ${admitted}\n`;
    const worker = forkWorker(
      [
        '--mode',
        'agent',
        '--series',
        '8',
        '--blue',
        blue.url,
        '--green',
        green.url,
        '--every',
        `${EVERY_MS}ms`,
        '--jitter',
        '0',
        '--data-dir',
        dataDir,
        '--extra',
        extra,
      ],
      ['--expose-gc'],
    );
    const clients = forkClients(options.clientsNice ?? 10);
    try {
      const started = await worker.call<{ address: { host: string; port: number } }>({ cmd: 'start' });
      const base = `http://${started.address.host}:${started.address.port}`;
      await sleep(3_000);

      const idle = await measurePhase(worker, base, blue.url, seconds);
      log(describe('idle', idle));

      // The clients connect as the loaded phase starts: it measures the replays, not their aftermath.
      const connected = performance.now();
      const connecting = clients
        .call<ClientsReport>({ cmd: 'connect', url: `${base.replace('http', 'ws')}/api/v1/stream`, readers, stalled: stalledCount, since: 0 })
        .then((opened) => {
          log(
            `  clients: ${opened.upgraded} of ${stalledCount} stalled sockets upgraded${Object.keys(opened.refused).length ? `, refused ${JSON.stringify(opened.refused)}` : ''}; all ${stalledCount + readers} answered in ${fmt((performance.now() - connected) / 1_000, 1)} s`,
          );
          return opened;
        });
      let report: ClientsReport | undefined;
      const loaded = await measurePhase(worker, base, blue.url, seconds, async (second) => {
        if (second % 10 !== 0) return;
        report = await clients.call<ClientsReport>({ cmd: 'report' });
        log(
          `  ${second} s: readers received ${report.received.toLocaleString('en-US')} events (${mb(report.bytes)}; the slowest ${report.minReceived.toLocaleString('en-US')})${Object.keys(report.closes).length ? `, closes ${JSON.stringify(report.closes)}` : ''}`,
        );
      });
      log(describe('loaded', loaded));
      report = await clients.call<ClientsReport>({ cmd: 'report' });
      await connecting;
      await clients.call({ cmd: 'close' });

      const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);
      const latenessRatio = ratio(loaded.lateness.p99Ms, idle.lateness.p99Ms);
      const healthzRatio = ratio(loaded.healthz.p99Ms, idle.healthz.p99Ms);
      const growth = loaded.rssMax - idle.rssMedian;
      const perSecond = report.received / seconds;
      log(
        `timer lateness p99 ${fmt(idle.lateness.p99Ms, 2)} → ${fmt(loaded.lateness.p99Ms, 2)} ms (${fmt(latenessRatio, 2)}x); /healthz p99 ${fmt(idle.healthz.p99Ms, 2)} → ${fmt(loaded.healthz.p99Ms, 2)} ms (${fmt(healthzRatio, 2)}x); RSS ${mb(idle.rssMedian)} → ${mb(loaded.rssMax)} (+${mb(growth)}); replay ${fmt(perSecond, 0)} events/s to ${readers} readers together`,
      );
      const load = `${readers} replaying + ${stalledCount} stalled`;
      return {
        rows: [
          {
            bench: 'stream-load',
            figure: `probe (timer) lateness p99, idle → ${load}`,
            target: '≤ 2x idle',
            measured: `${fmt(idle.lateness.p99Ms, 2)} → ${fmt(loaded.lateness.p99Ms, 2)} ms (${fmt(latenessRatio, 2)}x)`,
            verdict: verdict(latenessRatio === undefined ? undefined : latenessRatio <= 2),
          },
          {
            bench: 'stream-load',
            figure: `/healthz p99, idle → ${load}`,
            target: '≤ 2x idle',
            measured: `${fmt(idle.healthz.p99Ms, 2)} → ${fmt(loaded.healthz.p99Ms, 2)} ms (${fmt(healthzRatio, 2)}x)`,
            verdict: verdict(healthzRatio === undefined ? undefined : healthzRatio <= 2),
          },
          {
            bench: 'stream-load',
            figure: 'agent RSS growth under that load',
            target: '< 128 MB',
            measured: `${mb(idle.rssMedian)} → ${mb(loaded.rssMax)} (+${mb(growth)})`,
            verdict: verdict(growth < 128 * 1_048_576),
          },
          {
            bench: 'stream-load',
            figure: 'probe.down on healthy targets under that load',
            target: '0',
            measured: `${loaded.probeDown} (idle ${idle.probeDown}); failed probes ${loaded.failedProbes} (idle ${idle.failedProbes})`,
            verdict: verdict(loaded.probeDown === 0 && idle.probeDown === 0),
          },
          {
            bench: 'stream-load',
            figure: 'the other design: timer lateness p99 in a worker thread',
            target: 'report',
            measured: `${fmt(idle.isolated.lateness.p99Ms, 2)} → ${fmt(loaded.isolated.lateness.p99Ms, 2)} ms (${fmt(ratio(loaded.isolated.lateness.p99Ms, idle.isolated.lateness.p99Ms), 2)}x); bare probe p99 ${fmt(idle.isolated.probes.p99Ms, 2)} → ${fmt(loaded.isolated.probes.p99Ms, 2)} ms`,
            verdict: 'info',
          },
          {
            bench: 'stream-load',
            figure: `replay throughput to ${readers} readers`,
            target: 'report',
            measured: `${fmt(perSecond, 0)} events/s together (${report.received.toLocaleString('en-US')} in ${seconds} s, the slowest reader ${report.minReceived.toLocaleString('en-US')})`,
            verdict: 'info',
          },
        ],
      };
    } finally {
      await clients.stop();
      await worker.stop();
    }
  } finally {
    await Promise.all(sims.map((sim) => sim.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

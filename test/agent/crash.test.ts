/**
 * The agent as a real process (the built CLI), killed with SIGKILL and started again on the same
 * data directory, and starved of disk space while it runs:
 * - during bursts of events: no id is reused, and every event a stream client was sent is in the
 *   history after the restart;
 * - during a rollback: the interrupted action is reconciled on start — reported, not repeated;
 * - with its file-size limit cut to below the database's size (prlimit, as a full disk looks to
 *   SQLite): it goes on probing and switching, raises journal.failed, and once the limit is lifted
 *   writes everything it held, losing nothing.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { useSimulatorPair, waitUntil } from '../helpers/agent-harness.js';
import { startRecorder } from '../helpers/recorder.js';
import { hasTool, tempDir, writeTempFile } from '../helpers/tools.js';
import { startAgentProcess, stopProcess, type AgentProcess } from '../helpers/cli.js';

const ADMIN = 'admin-token-crash-test-0001';

type Running = AgentProcess;

async function kill9(running: Running): Promise<void> {
  const exited = new Promise((resolve) => running.child.once('exit', resolve));
  running.child.kill('SIGKILL');
  await exited;
}

async function stop(running: Running): Promise<void> {
  await stopProcess(running.child);
}

async function history(base: string): Promise<GreenlightEvent[]> {
  const all: GreenlightEvent[] = [];
  for (let since = 0; ;) {
    const page = (await (await fetch(`${base}/api/v1/events?since=${since}&limit=1000`)).json()) as { events: GreenlightEvent[]; next: number };
    all.push(...page.events);
    if (page.events.length < 1000) return all;
    since = page.next;
  }
}

function follow(base: string, since: number): { received: GreenlightEvent[]; socket: WebSocket } {
  const received: GreenlightEvent[] = [];
  const socket = new WebSocket(`${base.replace('http', 'ws')}/api/v1/stream?since=${since}`);
  socket.on('message', (data) => received.push(JSON.parse(String(data)) as GreenlightEvent));
  socket.on('error', () => undefined);
  return { received, socket };
}

function putFlag(base: string, value: boolean): Promise<Response> {
  return fetch(`${base}/api/v1/flags`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ set: { READ_ONLY_MODE: value }, reason: 'crash test burst' }),
  });
}

describe('a killed agent', () => {
  const pair = useSimulatorPair();
  let recorder: Awaited<ReturnType<typeof startRecorder>>;

  beforeAll(async () => {
    recorder = await startRecorder();
  });
  afterAll(async () => {
    await recorder.close();
  });

  function config(dataDir: string): string {
    return writeTempFile(
      'crash.yaml',
      `listen: 127.0.0.1:0
dataDir: ${dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 100ms, timeout: 2s, jitter: 0 }
api: { adminToken: ${ADMIN} }
traffic: { type: webhook, url: ${recorder.url}/traffic, timeout: 60s, retries: 0 }
alerts: { receivers: [ { type: webhook, name: recorder, url: ${recorder.url}/alerts } ] }
actions:
  rollback: { type: rollback }
  safe-mode: { type: flags }
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [safe-mode, page, rollback]
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`,
    );
  }

  it('never reuses an id and never loses an event a client was sent, across repeated kill -9 during bursts', async () => {
    const dataDir = tempDir('greenlight-crash-');
    const file = config(dataDir);
    const sent: GreenlightEvent[] = [];
    for (let round = 0; round < 3; round++) {
      const agent = await startAgentProcess(file);
      const { received, socket } = follow(agent.base, sent.at(-1)?.id ?? 0);
      await new Promise((resolve) => socket.once('open', resolve));
      // A burst of flag changes, killed part-way at a moment that differs each round.
      let value = round % 2 === 0;
      const burst = (async () => {
        for (let i = 0; i < 400; i++) {
          value = !value;
          const answer = await putFlag(agent.base, value).catch(() => undefined);
          if (!answer) return;
        }
      })();
      await waitUntil(() => received.filter((e) => e.type === 'flag.changed').length >= 20 + round * 15, 'part of the burst to reach the client');
      await kill9(agent);
      await burst;
      socket.terminate();
      sent.push(...received);
    }

    const agent = await startAgentProcess(file);
    try {
      const journal = await history(agent.base);
      const ids = journal.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      const byId = new Map(journal.map((e) => [e.id, e]));
      const missing = sent.filter((event) => byId.get(event.id)?.message !== event.message);
      expect(missing).toEqual([]);
      // Each life went on from the last id of the one before: the started events climb.
      const starts = journal.filter((e) => e.type === 'agent.started').map((e) => e.id);
      expect(starts).toHaveLength(4);
      expect(sent.length).toBeGreaterThan(100);
    } finally {
      await stop(agent);
    }
  }, 120_000);

  it('reconciles a rollback killed in flight: reported as interrupted and paged, never sent twice', async () => {
    const dataDir = tempDir('greenlight-crash-');
    const file = config(dataDir);
    recorder.requests.length = 0;
    recorder.setResponder((path) => (path === '/traffic' ? 'hang' : 200));
    pair.blue.resetFaults();
    const first = await startAgentProcess(file);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => recorder.requests.some((r) => r.path === '/traffic'), 'the rollback to reach the traffic webhook', 30_000);
      await kill9(first);
    } finally {
      await stop(first);
    }
    recorder.setResponder(() => 200);

    const second = await startAgentProcess(file);
    try {
      let journal: GreenlightEvent[] = [];
      await waitUntil(
        async () => (journal = await history(second.base)).some((e) => e.type === 'action.failed' && e.data.reconciled === true),
        'the interrupted rollback to be reconciled',
        30_000,
      );
      const reconciled = journal.find((e) => e.type === 'action.failed' && e.data.reconciled === true)!;
      expect(reconciled.data).toMatchObject({ action: 'rollback', type: 'rollback', reconciled: true });
      expect(reconciled.message).toContain('not repeated');
      await waitUntil(
        () => recorder.requests.some((r) => r.path === '/alerts' && JSON.stringify(r.body).includes('rollback-interrupted')),
        'the page about the interrupted rollback',
      );
      // The actions that had finished before the kill ran once; the rollback was sent once.
      const afterRestart = journal.slice(journal.findLastIndex((e) => e.type === 'agent.started'));
      expect(afterRestart.filter((e) => e.type === 'action.started')).toEqual([]);
      expect(recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(1);
      const state = (await (await fetch(`${second.base}/api/v1/state`)).json()) as { activeEnvironment: string; rules: { rule: string; state: string }[] };
      expect(state.activeEnvironment).toBe('blue');
      expect(state.rules.find((r) => r.rule === 'universe-failing')?.state).toBe('firing');
    } finally {
      await stop(second);
      pair.blue.resetFaults();
    }
  }, 120_000);

  it.runIf(hasTool('prlimit'))(
    'keeps probing and switching on a full disk, raises journal.failed, and writes what it held once space returns',
    async () => {
      const dataDir = tempDir('greenlight-crash-');
      const file = config(dataDir);
      recorder.requests.length = 0;
      recorder.setResponder(() => 200);
      pair.blue.resetFaults();
      const agent = await startAgentProcess(file);
      try {
        // Writes past 1 KiB now fail with EFBIG: SQLite sees an I/O error, as on a full disk.
        expect(spawnSync('prlimit', ['--pid', String(agent.child.pid), '--fsize=1024:unlimited']).status).toBe(0);
        await putFlag(agent.base, true);
        await waitUntil(async () => (await history(agent.base)).some((e) => e.type === 'journal.failed'), 'journal.failed');
        const failed = (await history(agent.base)).find((e) => e.type === 'journal.failed')!;
        expect(failed.severity).toBe('critical');

        // Still acting: a fault now is rolled back while nothing reaches the disk.
        pair.blue.setFaults({ emptyUniverse: true });
        await waitUntil(async () => (await history(agent.base)).some((e) => e.type === 'traffic.switched'), 'the rollback during the outage', 30_000);
        expect(recorder.requests.filter((r) => r.path === '/traffic')).toHaveLength(1);

        expect(spawnSync('prlimit', ['--pid', String(agent.child.pid), '--fsize=unlimited:unlimited']).status).toBe(0);
        await waitUntil(async () => (await history(agent.base)).some((e) => e.type === 'journal.recovered'), 'journal.recovered', 30_000);
        const seen = await history(agent.base);
        await stop(agent);

        // After a clean stop, everything the agent published is on disk, in order, once.
        const restarted = await startAgentProcess(file);
        try {
          const stored = await history(restarted.base);
          const ids = stored.map((e) => e.id);
          expect(new Set(ids).size).toBe(ids.length);
          for (const event of seen) expect(stored.find((e) => e.id === event.id)?.type).toBe(event.type);
          const state = (await (await fetch(`${restarted.base}/api/v1/state`)).json()) as { activeEnvironment: string };
          expect(state.activeEnvironment).toBe('green');
        } finally {
          await stop(restarted);
        }
      } finally {
        await stop(agent);
        pair.blue.resetFaults();
      }
    },
    120_000,
  );
});

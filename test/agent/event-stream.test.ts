import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { tailCommand } from '../../agent/commands/tail.js';
import type { GreenlightEvent } from '../../agent/events.js';
import { startPair, waitUntil, type Harness } from '../helpers/agent-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** A stream client that records what it receives. */
function connect(h: Harness, query: string, headers: Record<string, string> = {}) {
  const received: GreenlightEvent[] = [];
  const socket = new WebSocket(`${h.base.replace('http', 'ws')}/api/v1/stream${query}`, { headers });
  socket.on('message', (data) => received.push(JSON.parse(String(data)) as GreenlightEvent));
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    socket.once('error', reject);
  });
  return { socket, received, opened };
}

/** A burst of real events: flag changes, each its own flag.changed. */
function burst(h: Harness, count: number, tag: string) {
  for (let i = 0; i < count; i++) h.agent.flags.set(['blue'], { CIRCUIT_BREAKER: i % 2 === 0 }, { actor: 'test', reason: `${tag} ${i}` });
}

describe('the event stream', () => {
  it('replays the journal after `since`, then goes on live, with no gap and no duplicate', async () => {
    harness = await startPair();
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    burst(h, 20, 'before');
    const cut = h.events.at(-10)!.id;
    const client = connect(h, `?since=${cut}`);
    await client.opened;
    burst(h, 30, 'after');
    await waitUntil(() => client.received.length >= h.events.filter((e) => e.id > cut).length, 'every event after the cut');
    const expected = h.events.filter((e) => e.id > cut).map((e) => e.id);
    expect(client.received.map((e) => e.id)).toEqual(expected);
    expect(client.received[0]).toMatchObject({ id: cut + 1 });
    client.socket.close();
  });

  it('filters by type prefix, environment and severity', async () => {
    harness = await startPair();
    const h = harness;
    const client = connect(h, '?since=0&type=probe&env=green&severity=info');
    await client.opened;
    h.green.setFaults({ errorRatio: 1 });
    h.blue.setFaults({ errorRatio: 1 });
    await waitUntil(() => client.received.length >= 1 && h.events.some((e) => e.type === 'probe.down' && e.env === 'blue'), 'probe.down events');
    expect(client.received.length).toBeGreaterThan(0);
    expect(client.received.every((e) => e.type.startsWith('probe.') && e.env === 'green' && e.severity === 'info')).toBe(true);
    client.socket.close();
  });

  it('answers a bad query with 400 and an unknown WebSocket path with 404', async () => {
    harness = await startPair();
    await expect(connect(harness, '?since=soon').opened).rejects.toThrow('HTTP 400');
    const other = new WebSocket(`${harness.base.replace('http', 'ws')}/api/v1/other`);
    await expect(new Promise((resolve, reject) => (other.once('open', resolve), other.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)))))).rejects.toThrow('HTTP 404');
  });

  it('feeds greenlight tail: one line per event, and --json for the raw events', async () => {
    harness = await startPair();
    const h = harness;
    await waitUntil(() => h.agent.ready, 'the first probe round');
    const lines: string[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const done = tailCommand({ url: h.base, since: '0', type: 'flag', json: false, color: false, stop: stopped }, { out: (t) => lines.push(t), err: () => undefined, env: {} });
    burst(h, 3, 'tail');
    await waitUntil(() => lines.length >= 3, 'three lines');
    stop();
    expect(await done).toBe(0);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d #\d+ info\s+flag\.changed\s+blue: /);
    expect(lines.every((line) => line.includes('flag.changed'))).toBe(true);
  });
});

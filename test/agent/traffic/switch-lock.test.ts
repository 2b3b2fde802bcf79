/**
 * A reload and a switch exclude each other for their whole duration (agent/traffic/exclusive.ts): a
 * rollback asked while a reload runs waits for it and then switches through the adapter the
 * reload put in place; a reload asked while a switch runs waits for the switch, and never swaps
 * the adapter under it. Real simulators, a real traffic receiver that holds requests on demand,
 * and a reload whose config read the test holds open.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { Config } from '../../../config/schema.js';
import { useSimulatorPair, startAgent, waitUntil } from '../../helpers/agent-harness.js';
import { tempDir } from '../../helpers/tools.js';

/** A traffic receiver that records each switch and answers it when the test releases it (at once unless held). */
async function startTrafficReceiver() {
  const received: { path: string; body: { to: string } }[] = [];
  const held: ServerResponse[] = [];
  let holding = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', body: JSON.parse(text) as { to: string } });
      if (holding) held.push(res);
      else res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      for (const res of held.splice(0)) res.writeHead(200).end('{}');
    },
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('the switch lock', () => {
  const pair = useSimulatorPair();
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  const configText = (dataDir: string, trafficUrl: string) => `listen: 127.0.0.1:0
dataDir: ${dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 100ms, timeout: 500ms, jitter: 0 }
traffic: { type: webhook, url: ${trafficUrl}, timeout: 10s, retries: 0 }
probes:
  - { name: health, path: /api/health }
`;

  async function boot(trafficUrl: string, reloadConfig: () => Promise<Config>) {
    const dataDir = tempDir('greenlight-lock-');
    const { agent, events } = await startAgent(parseAgentConfig(configText(dataDir, trafficUrl)), { reloadConfig, processMetrics: false, ready: true });
    cleanup.push(() => agent.close());
    return { agent, events, dataDir };
  }

  it('a rollback asked during a reload waits for it, then switches through the adapter the reload put in place', async () => {
    const receiver = await startTrafficReceiver();
    cleanup.push(() => receiver.close());
    const reading = deferred();
    const gate = deferred();
    let next: Config | undefined;
    const { agent, events, dataDir } = await boot(`${receiver.url}/old`, async () => {
      reading.resolve();
      await gate.promise; // the reload is under way: reading the file (or waiting on a probe)
      return next!;
    });
    next = parseAgentConfig(configText(dataDir, `${receiver.url}/new`));

    const reloaded = agent.reload('test');
    await reading.promise;
    let answered = false;
    const rollback = agent.manualRollback('bad release', 'api:rollback').finally(() => (answered = true));
    // Either the rollback is queued behind the reload, or (the defect) it went through meanwhile.
    await waitUntil(() => answered || agent.state().traffic.waiting > 0, 'the rollback to queue behind the reload');
    expect(agent.state().traffic.lock).toBe('reload (test)');
    gate.resolve();
    expect(await reloaded).toMatchObject({ ok: true, components: ['traffic'] });
    expect(await rollback).toMatchObject({ outcome: 'succeeded' });

    expect(receiver.received.map((r) => r.path)).toEqual(['/new']);
    const order = events.filter((e) => e.type === 'config.reloaded' || e.type === 'traffic.switched').map((e) => e.type);
    expect(order).toEqual(['config.reloaded', 'traffic.switched']);
    expect(agent.activeEnvironment).toBe('green');
  });

  it('a reload asked during a switch waits for the switch to finish, and only then swaps the adapter', async () => {
    const receiver = await startTrafficReceiver();
    cleanup.push(() => receiver.close());
    let next: Config | undefined;
    const { agent, events, dataDir } = await boot(`${receiver.url}/old`, async () => next!);
    next = parseAgentConfig(configText(dataDir, `${receiver.url}/new`));

    receiver.hold();
    const rollback = agent.manualRollback('bad release', 'api:rollback');
    await waitUntil(() => receiver.received.length === 1, 'the switch to reach the adapter');
    expect(agent.state().traffic).toMatchObject({ switching: true });
    let reloadDone = false;
    const reloaded = agent.reload('test').finally(() => (reloadDone = true));
    await waitUntil(() => reloadDone || agent.state().traffic.waiting > 0, 'the reload to queue behind the switch');
    expect(reloadDone).toBe(false);
    receiver.release();
    expect(await rollback).toMatchObject({ outcome: 'succeeded' });
    expect(await reloaded).toMatchObject({ ok: true, components: ['traffic'] });

    expect(receiver.received.map((r) => r.path)).toEqual(['/old']);
    const order = events.filter((e) => e.type === 'config.reloaded' || e.type === 'traffic.switched').map((e) => e.type);
    expect(order).toEqual(['traffic.switched', 'config.reloaded']);
  });
});

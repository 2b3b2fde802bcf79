/**
 * The whole path against real nginx: clients load the live environment through nginx, the live
 * environment starts failing, greenlight's rule fires and the nginx adapter switches traffic.
 * Clients see the fault's errors until the switch, and none caused by the switch itself.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { findNginx, startNginxFront, type NginxFront } from '../../simulator/nginx-front.js';
import { startAgent, waitUntil } from '../helpers/agent-harness.js';
import { startClientLoad, type ClientRequest } from '../helpers/client-load.js';
import { tempDir } from '../helpers/tools.js';

const HAS_NGINX = findNginx() !== undefined;
if (!HAS_NGINX && process.env.CI) throw new Error('nginx is not installed; .ci/run must apt-get install nginx');

describe.skipIf(!HAS_NGINX)('a rollback through real nginx under client load', () => {
  let blue: Simulator;
  let green: Simulator;
  let front: NginxFront;
  let agent: Agent;
  const events: { at: number; event: GreenlightEvent }[] = [];

  beforeAll(async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    front = await startNginxFront(`127.0.0.1:${blue.port}`);
    const traffic = front.adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: ${blue.url} }
  green: { url: ${green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
traffic: ${JSON.stringify(traffic)}
actions:
  rollback: { type: rollback }
rules:
  - name: live-health-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: health }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback]
probes:
  - name: health
    path: /api/health
    expect: { json: [ { path: $.status, in: [healthy] } ] }
`);
    // Timed as they are published: the switch's latency is measured from these.
    ({ agent } = await startAgent(config, { ready: true }));
    agent.bus.subscribe((event) => events.push({ at: performance.now(), event }));
  });

  afterAll(async () => {
    await agent?.close();
    await front?.close();
    await Promise.all([blue?.close(), green?.close()]);
  });

  it('switches nginx to green; the clients see no error from the switch itself', async () => {
    // Eight clients, each a sequential keep-alive loop: about a few hundred requests a second, bounded by time below.
    const load = startClientLoad(front.url, '/api/portfolio/positions');
    const results = load.requests;
    const ok = (r: ClientRequest) => r.status === 200;
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const faultAt = performance.now();
      blue.setFaults({ errorRatio: 1 });
      await waitUntil(() => events.some((e) => e.event.type === 'traffic.switched'), 'the switch', 15_000);
      const switchedAt = events.find((e) => e.event.type === 'traffic.switched')!.at;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await load.stop();

      const startedAt = events.find((e) => e.event.type === 'action.started')!.at;
      expect(results.length).toBeGreaterThan(200);
      // At most one re-send per client connection (each closed once by the reload).
      expect(load.resent()).toBeLessThanOrEqual(8);
      // Nothing broke at the transport level, before, during or after the switch.
      expect(results.filter((r) => r.error !== null)).toEqual([]);
      // Answered before the fault: no errors. (A request sent just before it may be answered after.)
      expect(results.filter((r) => r.doneAt < faultAt && !ok(r))).toEqual([]);
      // nginx's old worker finishes the keep-alive connections it holds after the reload, so a
      // request or two may still reach blue just after the switch; past a second none may.
      expect(results.filter((r) => r.at > switchedAt + 1_000 && !ok(r))).toEqual([]);
      // Every failure is blue's simulated 500: the fault's, never the switch's.
      const failures = results.filter((r) => !ok(r));
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((r) => r.status === 500 && r.doneAt >= faultAt)).toBe(true);
      const late = failures.filter((r) => r.at > switchedAt).length;
      expect(agent.activeEnvironment).toBe('green');
      const health = await (await fetch(`${front.url}/api/health`)).json();
      expect(health).toMatchObject({ environment: 'green' });
      const switched = events.find((e) => e.event.type === 'traffic.switched')!.event;
      expect(switched.data).toMatchObject({ from: 'blue', to: 'green', adapter: 'nginx' });
      expect(String((switched.data as { detail: string }).detail)).toMatch(/verified/);
      // For the record: how long detection and the switch took.
      console.info(
        `nginx switch: fault→action ${Math.round(startedAt - faultAt)} ms, fault→switched ${Math.round(switchedAt - faultAt)} ms, ${failures.length} of ${results.length} client requests failed (${late} just after the switch, from the old worker), ${load.resent()} re-sent after a keep-alive close`,
      );
    } finally {
      await load.stop();
    }
  });
});

describe.skipIf(!HAS_NGINX)('a switch nginx took but that cannot be undone', () => {
  let blue: Simulator;
  let green: Simulator;
  let front: NginxFront;
  let agent: Agent;

  afterAll(async () => {
    await agent?.close();
    await front?.close();
    await Promise.all([blue?.close(), green?.close()]);
  });

  it("leaves greenlight's live environment on the one nginx serves (regression: nginx served green while greenlight watched blue as live)", async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    front = await startNginxFront(`127.0.0.1:${blue.port}`);
    const block = front.adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` }, '400ms') as { reloadCommand: string[] };
    // The switch's reload works; verifyUrl never names green where the adapter looks; reloading back fails.
    const once = join(tempDir('greenlight-reload-'), 'reloaded');
    const traffic = {
      ...block,
      verifyJsonPath: '$.nothing',
      reloadCommand: ['sh', '-c', '[ -e "$0" ] && exit 1; : > "$0"; exec "$@"', once, ...block.reloadCommand],
    };
    ({ agent } = await startAgent(
      parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: ${blue.url} }
  green: { url: ${green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
api: { adminToken: admin-token-nginx-undo-0001 }
traffic: ${JSON.stringify(traffic)}
probes:
  - name: health
    path: /api/health
`),
      { ready: true },
    ));
    const answer = await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/rollback`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-token-nginx-undo-0001', 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'test an undo that fails' }),
    });
    const body = (await answer.json()) as { ok: boolean; detail: string };
    expect(body.detail).toContain('reloading nginx back failed');
    expect(body.detail).toContain('but the traffic layer serves green: recorded as switched');
    expect(agent.activeEnvironment).toBe('green');
    const served = (await (await fetch(`${front.url}/api/health`)).json()) as { environment: string };
    expect(served.environment).toBe('green');
  });
});

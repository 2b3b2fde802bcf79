/**
 * A promotion through real nginx under continuous client load: clients keep requesting through
 * nginx while greenlight gates green, switches the upstream and watches. Not one client request
 * may fail, before, during or after the switch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { findNginx, startNginxFront, type NginxFront } from '../../../simulator/nginx-front.js';
import { startAgent } from '../../helpers/agent-harness.js';
import { startClientLoad } from '../../helpers/client-load.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';

const HAS_NGINX = findNginx() !== undefined;
if (!HAS_NGINX && process.env.CI) throw new Error('nginx is not installed; .ci/run must apt-get install nginx');

describe.skipIf(!HAS_NGINX)('a promotion through real nginx under client load', () => {
  let blue: Simulator;
  let green: Simulator;
  let front: NginxFront;
  let agent: Agent;
  let events: GreenlightEvent[];

  beforeAll(async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    front = await startNginxFront(`127.0.0.1:${blue.port}`);
    const traffic = front.adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const config = parseAgentConfig(
      promoteConfig(
        blue.url,
        green.url,
        `${FAST_GATES.replace('watch: 1s', 'watch: 2s')}deployWindows: { enabled: false }\n`,
        `traffic: ${JSON.stringify(traffic)}`,
      ),
    );
    ({ agent, events } = await startAgent(config, { processMetrics: false, ready: true }));
  });

  afterAll(async () => {
    await agent?.close();
    await front?.close();
    await Promise.all([blue?.close(), green?.close()]);
  });

  it('promotes green with zero failed client requests', async () => {
    // As in the rollback test: clients through nginx, re-sending an idempotent GET once on a keep-alive close (counted, bounded).
    const load = startClientLoad(front.url, '/api/health');
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const response = await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/promote`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'green', reason: 'release under load' }),
      });
      const result = (await response.json()) as { ok: boolean; live: string };
      await new Promise((resolve) => setTimeout(resolve, 500));
      await load.stop();
      const requests = load.requests.length;
      const failures = load.requests.filter((r) => r.status !== 200).map((r) => r.error ?? `HTTP ${r.status}`);
      const served: Record<string, number> = {};
      for (const r of load.requests.filter((r) => r.status === 200)) {
        const env = (JSON.parse(r.body) as { environment?: string }).environment ?? '?';
        served[env] = (served[env] ?? 0) + 1;
      }
      const resent = load.resent();

      expect(response.status).toBe(200);
      expect(result).toMatchObject({ ok: true, live: 'green' });
      expect(failures).toEqual([]);
      expect(requests).toBeGreaterThan(100);
      expect(served.blue).toBeGreaterThan(0);
      expect(served.green).toBeGreaterThan(0);
      expect(resent).toBeLessThanOrEqual(8);
      const switched = events.find((e) => e.type === 'traffic.switched')!;
      expect(switched.data).toMatchObject({ from: 'blue', to: 'green', adapter: 'nginx' });
      expect(((await (await fetch(`${front.url}/api/health`)).json()) as { environment: string }).environment).toBe('green');
      console.info(
        `promote through nginx: ${requests} client requests, 0 failed (${served.blue} on blue, ${served.green} on green), ${resent} re-sent after a keep-alive close`,
      );
    } finally {
      await load.stop();
    }
  }, 60_000);
});

/**
 * A promotion through real nginx under continuous client load: clients keep requesting through
 * nginx while greenlight gates green, switches the upstream and watches. Not one client request
 * may fail, before, during or after the switch.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { findNginx, startNginxFront, type NginxFront } from '../../../simulator/nginx-front.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { ADMIN, FAST_GATES, promoteConfig } from '../../helpers/promote.js';

const HAS_NGINX = findNginx() !== undefined;
if (!HAS_NGINX && process.env.CI) throw new Error('nginx is not installed; .ci/run must apt-get install nginx');

describe.skipIf(!HAS_NGINX)('a promotion through real nginx under client load', () => {
  let blue: Simulator;
  let green: Simulator;
  let front: NginxFront;
  let agent: Agent;
  const events: GreenlightEvent[] = [];

  beforeAll(async () => {
    [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
    front = await startNginxFront(`127.0.0.1:${blue.port}`);
    const traffic = front.adapterBlock({ blue: `127.0.0.1:${blue.port}`, green: `127.0.0.1:${green.port}` });
    const config = parseAgentConfig(promoteConfig(blue.url, green.url, `${FAST_GATES.replace('watch: 1s', 'watch: 2s')}deployWindows: { enabled: false }\n`, `traffic: ${JSON.stringify(traffic)}`));
    agent = new Agent({ config, logger: pino({ level: 'silent' }, new Writable({ write: (_c, _e, done) => done() })), processMetrics: false });
    agent.bus.subscribe((event) => events.push(event));
    await agent.start();
    await waitUntil(() => agent.ready, 'the first probe round');
  });

  afterAll(async () => {
    await agent?.close();
    await front?.close();
    await Promise.all([blue?.close(), green?.close()]);
  });

  it('promotes green with zero failed client requests', async () => {
    const client = new Pool(front.url, { connections: 8, keepAliveTimeout: 30_000 });
    const failures: string[] = [];
    const served: Record<string, number> = {};
    let requests = 0;
    let resent = 0;
    let running = true;
    const loops = Array.from({ length: 8 }, async () => {
      while (running) {
        // As in the rollback test: an idempotent GET is re-sent once when nginx's old worker closed an
        // idle keep-alive connection as the request went out (HTTP/1.1's race on a reload). Counted and bounded.
        for (let attempt = 1; ; attempt++) {
          try {
            const response = await client.request({ path: '/api/health', method: 'GET' });
            const body = (await response.body.json()) as { environment?: string };
            requests++;
            if (response.statusCode !== 200) failures.push(`HTTP ${response.statusCode}`);
            else served[body.environment ?? '?'] = (served[body.environment ?? '?'] ?? 0) + 1;
            break;
          } catch (error) {
            if (attempt === 1 && /other side closed|ECONNRESET|EPIPE|socket/i.test(`${(error as Error).message} ${(error as { code?: string }).code ?? ''}`)) {
              resent++;
              continue;
            }
            requests++;
            failures.push((error as Error).message);
            break;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const response = await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/promote`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: 'green', reason: 'release under load' }),
      });
      const result = (await response.json()) as { ok: boolean; live: string };
      await new Promise((resolve) => setTimeout(resolve, 500));
      running = false;
      await Promise.all(loops);

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
      console.info(`promote through nginx: ${requests} client requests, 0 failed (${served.blue} on blue, ${served.green} on green), ${resent} re-sent after a keep-alive close`);
    } finally {
      running = false;
      await client.close();
    }
  }, 60_000);
});

/**
 * A switch's fresh verification opens connections of its own. The probes' keep-alive pool may hold
 * connections from before a change that no new client gets past (a certificate replaced by an
 * expired one, a listener closed while old connections drain): over those the target still
 * answers, and a verification through the pool vouched for it. Here green's listener closes while
 * its old connections keep serving, as a draining server does.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { startAgent, useSimulatorPair, waitUntil } from '../../helpers/agent-harness.js';
import { tempDir } from '../../helpers/tools.js';

/** A healthy AlphaStack-shaped target that the test can make drop every new connection while its open ones go on answering. */
async function drainingTarget(): Promise<{ url: string; server: Server; served: () => number; refuseNew: () => void }> {
  let served = 0;
  let refusing = false;
  const server = createServer((_req, res) => {
    served++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}');
  });
  server.keepAliveTimeout = 60_000;
  server.prependListener('connection', (socket) => {
    if (refusing) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, served: () => served, refuseNew: () => (refusing = true) };
}

describe('the fresh verification before a switch', () => {
  const pair = useSimulatorPair();
  let green: Awaited<ReturnType<typeof drainingTarget>> | undefined;
  afterEach(() => {
    green?.server.closeAllConnections();
    green?.server.close();
    green = undefined;
  });

  it('refuses a target that answers only over connections opened before it stopped taking new ones (regression: the pooled connections vouched for it, and traffic moved)', async () => {
    green = await drainingTarget();
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-fresh-')}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${green.url} } }
probeDefaults: { every: 100ms, timeout: 1s, jitter: 0 }
switching: { verifyTimeout: 1s }
probes:
  - { name: health, path: /api/health, expect: { json: [ { path: $.status, equals: healthy } ] } }
`);
    const { agent, events } = await startAgent(config, { ready: true });
    try {
      // Green stops taking connections; the pool's keep-alive one goes on answering its probes.
      green.refuseNew();
      const before = green.served();
      await waitUntil(() => green!.served() >= before + 5, 'green to answer five more probes over its old connection');
      expect(agent.state(false).environments.green!.health.healthy).toBe(true);

      const outcome = await agent.manualRollback('test', 'tester');
      expect(outcome.outcome).toBe('failed');
      expect(agent.activeEnvironment).toBe('blue');
      expect(events.some((e) => e.type === 'traffic.switched')).toBe(false);
      expect(outcome.outcome === 'failed' ? outcome.error : '').toMatch(/green failed its fresh verification \(health failed: /);
    } finally {
      await agent.close();
    }
  });
});

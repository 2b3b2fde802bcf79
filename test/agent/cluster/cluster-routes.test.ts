import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { pairConfig, startAgent, useSimulatorPair, type StartedAgent } from '../../helpers/agent-harness.js';

describe('GET /api/v1/cluster without a database', () => {
  const pair = useSimulatorPair();
  const started: StartedAgent[] = [];
  afterAll(async () => {
    for (const { agent } of started) await agent.close();
  });

  it('answers a cluster of one: the agent itself, leading, with epoch 1', async () => {
    const { agent, api, base } = await startAgent(parseAgentConfig(pairConfig(pair.blue.url, pair.green.url, { extra: 'cluster: { nodeName: solo }' })));
    started.push({ agent, api, base, events: [] });
    const { status, body } = await api('GET', '/api/v1/cluster');
    expect(status).toBe(200);
    expect(body).toEqual({ self: 'solo', leader: 'solo', epoch: 1, members: [{ name: 'solo', url: base, role: 'leader', lastSeen: expect.any(String) }] });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^greenlight_cluster_is_leader 1$/m);
    expect(metrics).toMatch(/^greenlight_cluster_epoch 1$/m);
    expect(metrics).toMatch(/^greenlight_cluster_members 1$/m);
  });

  it.each([
    ['cluster: { databaseUrl: "mysql://x" }', 'cluster.databaseUrl'],
    ['cluster: { lease: 1s, renewEvery: 500ms }', 'cluster.renewEvery'],
    ['cluster: { lease: 100ms, renewEvery: 10ms }', 'cluster.lease'],
  ])('refuses %s', (extra, key) => {
    expect(() => parseAgentConfig(pairConfig(pair.blue.url, pair.green.url, { extra }))).toThrow(key);
  });
});

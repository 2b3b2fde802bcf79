/**
 * An advertised URL may carry the credentials of a proxy in front of the agent: GET
 * /api/v1/cluster and the status page's overview (no auth) show it as every URL of the API is
 * shown, without them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { pairConfig, startAgent, useSimulatorPair, type StartedAgent } from '../../helpers/agent-harness.js';
import { usePostgres } from '../../helpers/postgres.js';

const pair = useSimulatorPair();
const postgres = usePostgres();
let started: StartedAgent | undefined;
afterEach(async () => {
  await started?.agent.close();
  started = undefined;
});

const ADVERTISED = 'http://proxy-user:proxy-Pass-5f2a9c7e@10.0.0.11:9464/?token=proxy-Token-9c7e5f2a';

describe("an advertised URL's credentials (regression: GET /api/v1/cluster showed them to anyone)", () => {
  it.each([
    ['an agent alone', async () => ''],
    ['an agent of a cluster', async () => `\n  databaseUrl: ${await postgres.server.database()}`],
  ])('%s: the members list it without its user information and query', async (_name, database) => {
    const extra = `cluster:\n  nodeName: one\n  advertiseUrl: "${ADVERTISED}"${await database()}`;
    started = await startAgent(parseAgentConfig(pairConfig(pair.blue.url, pair.green.url, { extra })));
    const { api } = started;
    const cluster = await api('GET', '/api/v1/cluster');
    expect(cluster.status).toBe(200);
    expect(cluster.body.members).toEqual([expect.objectContaining({ name: 'one', url: 'http://redacted@10.0.0.11:9464/?redacted' })]);
    const overview = await api('GET', '/api/v1/overview');
    expect(overview.status).toBe(200);
    for (const answer of [cluster, overview]) expect(JSON.stringify(answer.body)).not.toMatch(/5f2a9c7e|9c7e5f2a|proxy-user/);
  });
});

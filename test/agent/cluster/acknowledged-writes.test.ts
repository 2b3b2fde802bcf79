/**
 * An operator's change the leader answered is the cluster's: the leader answers once the change is
 * in PostgreSQL, so killing it right after the answer loses nothing. (Found from outside, with the
 * database 60 ms away: a flag change answered 200 and a silence answered 201 were gone after a
 * kill -9, with no audit entry: both were still queued for the background writer.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../../helpers/agent-harness.js';
import { CLUSTER_ADMIN, startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { startDelayProxy, type DelayProxy } from '../../helpers/delay-proxy.js';
import { usePostgres } from '../../helpers/postgres.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;
let proxy: DelayProxy | undefined;

afterEach(async () => {
  await world?.close();
  await proxy?.close();
  world = undefined;
  proxy = undefined;
});

describe('an acknowledged change survives the leader', () => {
  it('a flag change and a silence answered by a leader killed at once are there when the next one leads', async () => {
    const databaseUrl = await postgres.server.database();
    proxy = await startDelayProxy(databaseUrl);
    world = await startCluster(databaseUrl, []);
    const w = world;
    const a = await w.start('a', proxy.url);
    await waitUntil(async () => (await w.view('a')).leader === 'a', 'a to lead');
    await w.start('b');
    await waitUntil(async () => (await w.view('b')).leader === 'a', 'b to follow a');
    // Each answer of the database 80 ms late: a fenced write (a transaction of several statements) takes a few hundred.
    proxy.delayMs = 80;
    const admin = { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' };
    const flag = await fetch(`${a.base}/api/v1/flags`, {
      method: 'PUT',
      headers: admin,
      body: JSON.stringify({ set: { CIRCUIT_BREAKER: true }, reason: 'kill test' }),
    });
    expect(flag.status).toBe(200);
    const now = Date.now();
    const silence = await fetch(`${a.base}/api/v1/silences`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({
        matchers: [{ name: 'rule', value: 'universe-failing', isRegex: false, isEqual: true }],
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString(),
        createdBy: 'test',
        comment: 'kill test',
      }),
    });
    expect(silence.status).toBe(201);
    const { silenceID } = (await silence.json()) as { silenceID: string };
    a.child.kill('SIGKILL');
    await waitUntil(async () => (await w.view('b')).leader === 'b', 'b to lead', 30_000);
    const flags = await w.agents.get('b')!.get<{ environments: Record<string, Record<string, boolean>>; audit: { reason?: string }[] }>('/api/v1/flags');
    expect(flags.environments.blue?.CIRCUIT_BREAKER).toBe(true);
    expect(flags.audit.map((entry) => entry.reason)).toContain('kill test');
    const silences = await w.agents.get('b')!.get<{ silences: { id: string }[] }>('/api/v1/silences');
    expect(silences.silences.map((s) => s.id)).toContain(silenceID);
  });
});

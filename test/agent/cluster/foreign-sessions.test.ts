/**
 * What other sessions of the cluster's database may do to it: anyone who can connect may NOTIFY on
 * greenlight's channels or edit a row by hand. None of it may end an agent, nor stop the cluster
 * acting on what it can still read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { waitUntil } from '../../helpers/agent-harness.js';
import { CLUSTER_ADMIN, startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { usePostgres } from '../../helpers/postgres.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;
let session: pg.Client | undefined;

afterEach(async () => {
  await session?.end();
  await world?.close();
  session = undefined;
  world = undefined;
});

/** Agents `names` on a fresh database, and a session of its own on that database (an operator's psql). */
async function cluster(names: readonly string[]): Promise<{ w: ClusterWorld; sql: pg.Client }> {
  const databaseUrl = await postgres.server.database();
  world = await startCluster(databaseUrl, names);
  session = new pg.Client({ connectionString: databaseUrl });
  await session.connect();
  return { w: world, sql: session };
}

function running(w: ClusterWorld, name: string): boolean {
  const { child } = w.agents.get(name)!;
  return child.exitCode === null && child.signalCode === null;
}

describe('a NOTIFY on the shared-state channel that greenlight did not send', () => {
  it('ends no agent, and the followers go on following the leader (regression: every agent exited on the JSON.parse)', async () => {
    const { w, sql } = await cluster(['a', 'b']);
    const leader = await w.leader();
    const follower = leader === 'a' ? 'b' : 'a';
    for (const payload of ['not json', 'null', '42', '{"key":7}', '']) await sql.query('SELECT pg_notify($1, $2)', ['greenlight_state', payload]);
    // A flag change reaches the follower through the same LISTEN connection, after those notifications.
    const answer = await fetch(`${w.agents.get(leader)!.base}/api/v1/flags`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ set: { READ_ONLY_MODE: true }, reason: 'foreign notify test' }),
    });
    expect(answer.status).toBe(200);
    await waitUntil(
      async () => JSON.stringify(await w.agents.get(follower)!.get('/api/v1/flags')).includes('"READ_ONLY_MODE":true'),
      `${follower} to show the flag set on ${leader}`,
    );
    expect([running(w, 'a'), running(w, 'b')]).toEqual([true, true]);
    expect(w.agents.get(follower)!.output.join('')).toContain('reading the whole shared state again');
  });
});

describe('an event row of the shared history whose data is not a JSON object', () => {
  it('keeps its place in every history, and the events after it reach every agent (regression: every mirror stopped at it, and each agent raised store_unavailable and store_recovered several times a second)', async () => {
    const { w, sql } = await cluster(['a', 'b']);
    const leader = await w.leader();
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO greenlight_events (time, type, severity, message, data, node)
       VALUES (now()::text, 'agent.started', 'info', 'written by hand', '{not json', 'psql'), (now()::text, 'agent.started', 'info', 'null data', 'null', 'psql')
       RETURNING id`,
    );
    const [bad, nullData] = rows.map((row) => Number(row.id));
    // An event published after them: the leader's flag change.
    const answer = await fetch(`${w.agents.get(leader)!.base}/api/v1/flags`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ set: { READ_ONLY_MODE: true }, reason: 'after the bad rows' }),
    });
    expect(answer.status).toBe(200);
    for (const name of ['a', 'b']) {
      await waitUntil(
        async () => (await w.history(name)).some((e) => e.type === 'flag.changed' && e.id > nullData!),
        `${name}'s history to go past the bad rows`,
      );
      const history = await w.history(name);
      expect(history.filter((e) => e.id === bad || e.id === nullData)).toEqual([
        expect.objectContaining({ id: bad, message: 'written by hand', data: { node: 'psql', unreadable: expect.stringContaining('not JSON') } }),
        expect.objectContaining({ id: nullData, message: 'null data', data: { node: 'psql', unreadable: expect.stringContaining('not an object') } }),
      ]);
      expect(history.filter((e) => e.type === 'cluster.store_unavailable')).toEqual([]);
      expect(running(w, name)).toBe(true);
    }
  });
});

describe('a row of the shared state edited by hand into something that is not JSON', () => {
  it('names the row and how to remove it, at a takeover and at a start, and the agents do not take the lease in turn every round meanwhile (regression: a new epoch and two events every 250 ms, with only a JSON.parse message)', async () => {
    const { w, sql } = await cluster(['a', 'b']);
    const leader = await w.leader();
    const survivor = leader === 'a' ? 'b' : 'a';
    await sql.query("UPDATE greenlight_state SET value = '{bad' WHERE key = 'incidents'");
    w.agents.get(leader)!.child.kill('SIGKILL');
    const remedy = "remove that one row to start it afresh: DELETE FROM greenlight_state WHERE key = 'incidents'";
    await waitUntil(() => w.agents.get(survivor)!.output.join('').includes(remedy), `${survivor}'s takeover to fail, naming the row`, 30_000);
    const epoch = async () => Number((await sql.query<{ epoch: string }>('SELECT epoch FROM greenlight_lease')).rows[0]!.epoch);
    const failed = await epoch();
    // A start reads the same row: it stops with the same words.
    await expect(w.start('c')).rejects.toThrow(remedy);
    // The survivor holds off (5 leases, 10 s) before it tries to lead again: the epoch stays.
    expect(await epoch()).toBe(failed);
    await sql.query("UPDATE greenlight_state SET value = '{}' WHERE key = 'incidents'");
    await waitUntil(async () => (await w.view(survivor)).leader === survivor, `${survivor} to lead once the row is mended`, 30_000);
    expect(running(w, survivor)).toBe(true);
  });
});

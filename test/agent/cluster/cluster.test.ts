/**
 * Three agents as child processes on one real PostgreSQL (test/helpers/postgres.ts), each fault
 * asserting exactly one switch at a fenced traffic webhook and no lost event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../../helpers/agent-harness.js';
import { CLUSTER_ADMIN, startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { usePostgres } from '../../helpers/postgres.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;

afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function cluster(names = ['a', 'b', 'c']): Promise<ClusterWorld> {
  world = await startCluster(await postgres.server.database(), names);
  return world;
}

describe('a cluster of three agents', () => {
  it('elects one leader; every agent names it, lists the members and counts itself in the metrics', async () => {
    const w = await cluster();
    const leader = await w.leader();
    for (const name of ['a', 'b', 'c']) {
      await waitUntil(async () => (await w.view(name)).members.length === 3, `${name} to see three members`);
      const view = await w.view(name);
      expect(view).toMatchObject({ self: name, leader, epoch: expect.any(Number) });
      expect(view.members.map((m) => [m.name, m.role])).toEqual(['a', 'b', 'c'].map((n) => [n, n === leader ? 'leader' : 'follower']));
      const metrics = await (await fetch(`${w.agents.get(name)!.base}/metrics`)).text();
      expect(metrics).toContain(`greenlight_cluster_is_leader ${name === leader ? 1 : 0}`);
      expect(metrics).toContain('greenlight_cluster_members 3');
      expect(metrics).toContain(`greenlight_cluster_epoch ${view.epoch}`);
    }
  });
});

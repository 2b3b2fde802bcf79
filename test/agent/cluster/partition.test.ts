/**
 * One agent cut from the database while it leads (a TCP proxy the test controls sits between it
 * and PostgreSQL): it stops acting before its lease can lapse, another agent takes over and
 * switches once; when the link comes back the cut-off agent follows and its held events land.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../../helpers/agent-harness.js';
import { startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { startDbProxy, type DbProxy } from '../../helpers/db-proxy.js';
import { usePostgres } from '../../helpers/postgres.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;
let proxy: DbProxy | undefined;

afterEach(async () => {
  await world?.close();
  await proxy?.close();
  world = undefined;
  proxy = undefined;
});

describe('an agent cut from the database', () => {
  it('stops acting while it leads; another takes over and switches exactly once; it follows when the link is back', async () => {
    const databaseUrl = await postgres.server.database();
    proxy = await startDbProxy(databaseUrl);
    // `a` reaches the database through the proxy and starts first, so it leads.
    world = await startCluster(databaseUrl, []);
    const w = world;
    await w.start('a', proxy.url);
    await waitUntil(async () => (await w.view('a')).leader === 'a', 'a to lead');
    await Promise.all([w.start('b'), w.start('c')]);
    const before = (await w.view('a')).epoch;
    proxy.cut();
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.target.accepted().length > 0, 'a switch by another agent');
    let leader = '';
    await waitUntil(async () => {
      leader = (await w.view('b')).leader ?? '';
      return leader === 'b' || leader === 'c';
    }, 'b to see b or c lead');
    await waitUntil(
      async () => (await (await fetch(`${w.agents.get('a')!.base}/metrics`)).text()).includes('greenlight_cluster_is_leader 0'),
      'a to stop acting',
    );
    proxy.restore();
    await waitUntil(
      async () => (await w.history(leader)).some((e) => e.type === 'cluster.leader_lost' && (e.data as { node?: string }).node === 'a'),
      'a to step down, in the history once its held events land',
    );
    await waitUntil(
      async () => (await w.agents.get('a')!.get<{ activeEnvironment: string }>('/api/v1/state')).activeEnvironment === 'green',
      'a to follow the switch',
    );
    const epoch = (await w.view(leader)).epoch;
    expect(epoch).toBeGreaterThan(before);
    expect(w.target.switches).toEqual([expect.objectContaining({ accepted: true, token: epoch, to: 'green' })]);
  });
});

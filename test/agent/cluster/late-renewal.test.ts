/**
 * A leader whose lease renewals come back late (a TCP proxy the test controls holds PostgreSQL's
 * answers) but go through: each passes its acting deadline, so it stops acting, yet its lease
 * never lapses and its epoch never changes. It must act again as the same leader: no takeover of
 * its own work, its open incident keeps its number, and no action runs twice or is settled as
 * interrupted. (It took over from itself once per late renewal: `universe-failing#2` opened for
 * the same fault and every action started again.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { startCluster, type ClusterWorld } from '../../helpers/cluster.js';
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

const ofType = (history: GreenlightEvent[], type: string) => history.filter((e) => e.type === type);

describe('a leader whose lease renewals come back late', () => {
  it('acts again as the same leader: one incident, each action started once, nothing of its own settled as interrupted', async () => {
    const databaseUrl = await postgres.server.database();
    proxy = await startDelayProxy(databaseUrl);
    world = await startCluster(databaseUrl, []);
    const w = world;
    const a = await w.start('a', proxy.url);
    await waitUntil(async () => (await w.view('a')).leader === 'a', 'a to lead');

    // Both environments fail: the incident stays open (the rollback has nowhere to go).
    w.blue.setFaults({ emptyUniverse: true });
    w.green.setFaults({ emptyUniverse: true });
    await waitUntil(async () => ofType(await w.history('a'), 'action.started').length > 0, 'the first action to start', 30_000);
    const before = (await w.history('a')).length;

    // Every answer 300ms late: a round (three queries) ends ~0.9s after it was sent and the next
    // is sent 250ms later, so no renewal comes back within the 1.5s acting deadline (the next
    // one's answer is due ~1.75s after), while the database renews the 2s lease every ~1.15s.
    proxy.delayMs = 300;
    await waitUntil(async () => ofType((await w.history('a')).slice(before), 'cluster.leader_lost').length >= 2, 'a to pass its acting deadline twice', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    proxy.delayMs = 0;
    await waitUntil(async () => (await (await fetch(`${a.base}/metrics`)).text()).includes('greenlight_cluster_is_leader 1'), 'a to act again');
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    const history = await w.history('a');
    const incidents = new Set(ofType(history, 'rule.firing').map((e) => (e.data as { incident?: string }).incident));
    expect([...incidents]).toEqual(['universe-failing#1']);
    const starts = ofType(history, 'action.started').map((e) => `${(e.data as { incident: string }).incident} ${(e.data as { action: string }).action}`);
    expect(starts).toEqual([...new Set(starts)]);
    expect(ofType(history, 'action.failed').map((e) => e.message)).toEqual([]);
    // A takeover only with a new term: a late renewal that went through resumed the same one.
    const takeovers = [...a.output.join('').matchAll(/\(epoch (\d+)\): taking over/g)].map((m) => Number(m[1]));
    expect(takeovers).toEqual([...new Set(takeovers)]);
    const resumed = ofType(history, 'cluster.leader_elected').map((e) => (e.data as { epoch: number }).epoch);
    expect(resumed.length, 'a renewal that came back late and went through').toBeGreaterThan(new Set(resumed).size);
  });
});

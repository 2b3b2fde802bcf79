/**
 * The alert lifecycle in a cluster: only the leader notifies, the lifecycle's routes (reads too)
 * are answered by the leader whichever agent is asked, and a new leader starts from the records
 * the last one wrote to PostgreSQL (its silences and incidents), sending nothing again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { CLUSTER_ADMIN, startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { usePostgres } from '../../helpers/postgres.js';
import { startRecorder } from '../../helpers/recorder.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;
let recorder: Awaited<ReturnType<typeof startRecorder>> | undefined;

afterEach(async () => {
  await world?.close();
  await recorder?.close();
  world = undefined;
  recorder = undefined;
});

/** The notifications the receiver took, by status. */
function notifications(status: 'firing' | 'resolved'): unknown[] {
  return recorder!.requests.filter((request) => (request.body as { status?: string }).status === status);
}

function sent(history: GreenlightEvent[], status: 'firing' | 'resolved'): GreenlightEvent[] {
  return history.filter((event) => event.type === 'alert.sent' && (event.data as { status?: string }).status === status);
}

describe('the alert lifecycle in a cluster', () => {
  it('notifies once, from the leader; its routes are answered by the leader; a new leader resumes its silences and incidents', async () => {
    recorder = await startRecorder();
    const alerts = `alerts:
  repeatInterval: 1h
  group: { wait: 100ms, interval: 200ms }
  receivers:
    - { type: webhook, name: hook, url: ${recorder.url}/hook, severities: [warning, critical] }
`;
    world = await startCluster(await postgres.server.database(), ['a', 'b'], alerts, true);
    const w = world;
    const leader = await w.leader();
    const follower = leader === 'a' ? 'b' : 'a';
    const leaderBase = w.agents.get(leader)!.base;

    // A silence asked of the follower is made by the leader; reads on either agent show it.
    const created = await fetch(`${w.agents.get(follower)!.base}/api/v1/silences`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'rule', value: 'no-such-rule' }],
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'on-call',
        comment: 'cluster test',
      }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('greenlight-answered-by')).toBe(leaderBase);
    const { silenceID } = (await created.json()) as { silenceID: string };
    for (const name of [leader, follower]) {
      const { silences } = await w.agents.get(name)!.get<{ silences: { id: string }[] }>('/api/v1/silences');
      expect(silences.map((s) => s.id)).toEqual([silenceID]);
    }

    // The live environment fails: one rollback, one firing and one resolved notification, by the leader.
    w.blue.setFaults({ emptyUniverse: true });
    // Rollback, recovery, keepFiringFor and the group's wait: seconds alone, more beside a full suite on 2 cores.
    // (A resolution after the firing notification went out waits for the group's interval: 200ms here, not the default minute.)
    await waitUntil(async () => sent(await w.history(leader), 'resolved').length > 0, 'the resolved notification', 60_000);
    const history = await w.history(leader);
    expect(w.target.accepted()).toHaveLength(1);
    // (The incident may end before the group's wait: then its one notification is the resolved one.)
    const deliveries = history.filter((e) => e.type === 'alert.sent');
    expect(new Set(deliveries.map((e) => (e.data as { node?: string }).node))).toEqual(new Set([leader]));
    expect(sent(history, 'resolved')).toHaveLength(1);
    expect(sent(history, 'firing').length).toBeLessThanOrEqual(1);
    expect(recorder.requests).toHaveLength(deliveries.length);
    expect(notifications('resolved')).toHaveLength(1);

    // The leader dies: the follower takes over with the lifecycle's records from the database.
    const exited = new Promise((resolve) => w.agents.get(leader)!.child.once('exit', resolve));
    w.agents.get(leader)!.child.kill('SIGKILL');
    await exited;
    await waitUntil(async () => (await w.view(follower)).leader === follower, `${follower} to lead`);
    // A 200 it answered itself: while it still forwards to the dead leader, its 503 ("could not be reached") carries no answered-by header either.
    await waitUntil(async () => {
      const response = await fetch(`${w.agents.get(follower)!.base}/api/v1/silences`);
      await response.body?.cancel();
      return response.status === 200 && response.headers.get('greenlight-answered-by') === null;
    }, `${follower} to answer the lifecycle's routes itself`);
    const { silences } = await w.agents.get(follower)!.get<{ silences: { id: string }[] }>('/api/v1/silences');
    expect(silences.map((s) => s.id)).toEqual([silenceID]);
    const { incidents } = await w.agents.get(follower)!.get<{ incidents: { id: string; state: string }[] }>('/api/v1/incidents');
    expect(incidents).toEqual([expect.objectContaining({ id: 'universe-failing#1', state: 'resolved' })]);
    expect(recorder.requests).toHaveLength(deliveries.length);
  });
});

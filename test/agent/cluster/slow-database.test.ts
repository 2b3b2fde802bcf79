/**
 * A cluster whose PostgreSQL is slow (a TCP proxy the test controls holds the database's answers).
 *
 * A leader whose lease renewals come back late but go through: each passes its acting deadline,
 * so it stops acting, yet its lease never lapses and its epoch never changes. It must act again as
 * the same leader: no takeover of its own work, its open incident keeps its number, and no action
 * runs twice or is settled as interrupted. (It took over from itself once per late renewal:
 * `universe-failing#2` opened for the same fault and every action started again.)
 *
 * An operator's change the leader answered is the cluster's: the leader answers once the change is
 * in PostgreSQL, so killing it right after the answer loses nothing. (Found from outside, with the
 * database 60 ms away: a flag change answered 200 and a silence answered 201 were gone after a
 * kill -9, with no audit entry: both were still queued for the background writer.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { CLUSTER_ADMIN, startCluster, type ClusterWorld } from '../../helpers/cluster.js';
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

/** A cluster whose agent `a` reaches PostgreSQL through the proxy and leads. */
async function leaderBehindProxy() {
  const databaseUrl = await postgres.server.database();
  proxy = await startDbProxy(databaseUrl);
  world = await startCluster(databaseUrl, []);
  const w = world;
  const a = await w.start('a', proxy.url);
  await waitUntil(async () => (await w.view('a')).leader === 'a', 'a to lead');
  return { w, a, db: proxy };
}

const ofType = (history: GreenlightEvent[], type: string) => history.filter((e) => e.type === type);

describe('a leader whose lease renewals come back late', () => {
  it('acts again as the same leader: one incident, each action started once, nothing of its own settled as interrupted', async () => {
    const { w, a, db } = await leaderBehindProxy();

    // Both environments fail: the incident stays open (the rollback has nowhere to go).
    w.blue.setFaults({ emptyUniverse: true });
    w.green.setFaults({ emptyUniverse: true });
    await waitUntil(async () => ofType(await w.history('a'), 'action.started').length > 0, 'the first action to start', 30_000);
    const before = (await w.history('a')).length;

    // Every answer 300ms late: a round (three queries) ends ~0.9s after it was sent and the next
    // is sent 250ms later, so no renewal comes back within the 1.5s acting deadline (the next
    // one's answer is due ~1.75s after), while the database renews the 2s lease every ~1.15s.
    db.delayMs = 300;
    await waitUntil(async () => ofType((await w.history('a')).slice(before), 'cluster.leader_lost').length >= 2, 'a to pass its acting deadline twice', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    db.delayMs = 0;
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

describe('a rollback cut off by its own acting deadline, in a term that goes on', () => {
  it('is settled by the same leader once it acts again: the switch is made, once (regression: its record stayed "started", left to a next leader that never came, and the failing side stayed live)', async () => {
    const { w, db } = await leaderBehindProxy();
    // Each answer 300ms late (see above): a's start record of the rollback goes through under
    // its lease, but its acting deadline passes before the switch's fence, which refuses it.
    db.delayMs = 300;
    w.blue.setFaults({ emptyUniverse: true });
    let cut: GreenlightEvent | undefined;
    await waitUntil(
      async () =>
        (cut = (await w.history('a')).find((e) => {
          const data = e.data as { action?: string; deposed?: boolean };
          return e.type === 'action.skipped' && data.action === 'rollback' && data.deposed === true;
        })) !== undefined,
      'the rollback to end on a deadline that passed while it ran',
      60_000,
    );
    expect(w.target.switches).toEqual([]);
    db.delayMs = 0;
    // The same term goes on: nobody takes over, so a itself settles the rollback it left.
    await waitUntil(() => w.target.accepted().length > 0, 'the rollback to be made', 30_000);
    await waitUntil(
      async () => (await w.agents.get('a')!.get<{ activeEnvironment: string }>('/api/v1/state?series=false')).activeEnvironment === 'green',
      'green live',
    );
    expect(w.target.switches.map((s) => [s.to, s.incident])).toEqual([['green', (cut!.data as { incident: string }).incident]]);
    const epochs = new Set(ofType(await w.history('a'), 'cluster.leader_elected').map((e) => (e.data as { epoch: number }).epoch));
    expect(epochs.size, 'one term throughout').toBe(1);
  });
});

describe('an acknowledged change survives the leader', () => {
  it('a flag change and a silence answered by a leader killed at once are there when the next one leads', async () => {
    const { w, a, db } = await leaderBehindProxy();
    await w.start('b');
    await waitUntil(async () => (await w.view('b')).leader === 'a', 'b to follow a');
    // Each answer of the database 80 ms late: a fenced write (a transaction of several statements) takes a few hundred.
    db.delayMs = 80;
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

describe('a flag change the database refused to a leader that was paused before writing it', () => {
  it.each([
    ['with no flag changed in the cluster before', false],
    ['after an earlier change', true],
  ])(
    "does not stay on that agent once it follows, %s: it answers the cluster's flags again (regression: its flags and OFREP kept the refused value until the next change anywhere)",
    async (_case, earlier) => {
      const { w, a, db } = await leaderBehindProxy();
      await w.start('b');
      await waitUntil(async () => (await w.view('b')).leader === 'a', 'b to follow a');
      if (earlier) {
        const first = await fetch(`${a.base}/api/v1/flags`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ set: { READ_ONLY_MODE: true }, reason: 'an earlier change' }),
        });
        expect(first.status).toBe(200);
      }
      // A fenced write is a transaction of several statements: 300 ms each keeps it in flight.
      db.delayMs = 300;
      const answer = fetch(`${a.base}/api/v1/flags`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${CLUSTER_ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ set: { CIRCUIT_BREAKER: true }, reason: 'refused after a pause' }),
      });
      const breaker = async (name: string) =>
        (await w.agents.get(name)!.get<{ environments: Record<string, Record<string, boolean>> }>('/api/v1/flags')).environments.blue?.CIRCUIT_BREAKER;
      // Applied on a (its answer waits for the database), then a is paused past its lease.
      await waitUntil(async () => (await breaker('a')) === true, 'a to apply the change');
      a.child.kill('SIGSTOP');
      await waitUntil(async () => (await w.view('b')).leader === 'b', 'b to take over', 30_000);
      db.delayMs = 0;
      a.child.kill('SIGCONT');
      expect((await answer).status).toBe(503);
      await waitUntil(async () => (await breaker('a')) === false, "a to answer the cluster's flags again", 30_000);
      expect(await breaker('b')).toBe(false);
    },
  );
});

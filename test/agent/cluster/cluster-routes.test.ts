import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { FORWARDED_HEADER, leaderOnly, type ClusterRole } from '../../../agent/cluster/cluster-routes.js';
import { flagRoutes } from '../../../agent/flags/flag-routes.js';
import { FlagStore } from '../../../agent/flags/flag-store.js';
import { startHttpServer } from '../../../agent/http/http-server.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { pairConfig, startAgent, useSimulatorPair, type StartedAgent } from '../../helpers/agent-harness.js';
import { startRecorder } from '../../helpers/recorder.js';

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

describe('leaderOnly: a body is screened where the request is carried out', () => {
  const ADMIN = 'admin-token-for-the-cluster-test';
  const LOCKED = 'ALPHASTACK_PROTECTION';
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  /** An agent's flag API behind leaderOnly, leading or following the agent at `leaderUrl`. */
  async function flagApi(role: { leader: boolean; leaderUrl?: string; written?: () => Promise<string | undefined> }) {
    const events: unknown[] = [];
    const store = new FlagStore({ environments: ['blue', 'green'], readOnlyOnEmergency: false, now: Date.now, publish: (event) => events.push(event) });
    const cluster: ClusterRole = {
      isLeader: () => role.leader,
      leaderUrl: () => role.leaderUrl,
      view: () => ({ self: role.leader ? 'a' : 'b', leader: 'a', epoch: 1, members: [] }),
      ...(role.written ? { written: role.written } : {}),
    };
    const routes = leaderOnly(flagRoutes(store, { activeEnvironment: () => 'blue' }), cluster);
    const server = await startHttpServer({
      listen: { host: '127.0.0.1', port: 0 },
      routes,
      tokens: () => ({ admin: ADMIN }),
      logger: pino({ level: 'silent' }),
    });
    closers.push(() => server.close());
    const put = (text: string, extra: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${server.address.port}/api/v1/flags`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...extra },
        body: text,
      });
    return { store, events, put };
  }

  const hidden = `{"set":{"${LOCKED}":false,"${LOCKED}":true},"reason":"twice"}`;

  it('the leader refuses an attempt a later value hides: 409 and an audit entry', async () => {
    const leader = await flagApi({ leader: true });
    const answer = await leader.put(hidden);
    expect(answer.status).toBe(409);
    expect(leader.store.audit().at(-1)).toMatchObject({ flag: LOCKED, outcome: 'rejected' });
    const twice = await leader.put('{"set":{"READ_ONLY_MODE":true,"READ_ONLY_MODE":false},"reason":"x"}');
    expect(twice.status).toBe(400);
    expect(((await twice.json()) as { error: string }).error).toContain('set.READ_ONLY_MODE twice');
  });

  it('a follower forwards the body as sent, and keeps no audit entry of its own', async () => {
    const leader = await startRecorder(() => 409);
    closers.push(() => leader.close());
    const follower = await flagApi({ leader: false, leaderUrl: leader.url });
    const answer = await follower.put(hidden);
    expect(answer.status).toBe(409);
    expect(answer.headers.get('greenlight-answered-by')).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(leader.requests.map((request) => ({ text: request.text, forwardedBy: request.headers[FORWARDED_HEADER] }))).toEqual([
      { text: hidden, forwardedBy: 'b' },
    ]);
    expect(follower.store.audit()).toEqual([]);
    expect(follower.events).toEqual([]);
  });

  it('a leader that dies after taking the request: the follower says it may have been carried out, not "try again" (regression: "could not be reached")', async () => {
    // Reads the whole request, then drops the connection without an answer: a leader killed mid-rollback.
    const dying = createServer((req) => req.resume().on('end', () => req.socket.destroy()));
    await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => dying.close(() => resolve())));
    const follower = await flagApi({ leader: false, leaderUrl: `http://127.0.0.1:${(dying.address() as AddressInfo).port}` });
    const answer = await follower.put('{"set":{"READ_ONLY_MODE":true},"reason":"x"}');
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toMatch(
      /^the leader at http:\/\/127\.0\.0\.1:\d+ took the request but did not answer it \(.+\): it may have been carried out; check greenlight tail/,
    );

    // A leader that is not there at all: nothing was sent, so asking again is safe.
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const refused = await (await flagApi({ leader: false, leaderUrl: `http://127.0.0.1:${port}` })).put('{"set":{"READ_ONLY_MODE":true},"reason":"x"}');
    expect(((await refused.json()) as { error: string }).error).toMatch(/could not be reached \(.*ECONNREFUSED.*\): try again in a few seconds$/);
  });

  it('a leader frozen with the request while another takes the lease: the follower answers at once that the leader changed (regression: it waited up to 15 minutes)', async () => {
    // Takes the request and never answers: a leader stopped (SIGSTOP, a frozen VM) past its lease.
    const frozen = createServer(() => undefined);
    await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => (frozen.closeAllConnections(), frozen.close(() => resolve()))));
    const role = { leader: false, leaderUrl: `http://127.0.0.1:${(frozen.address() as AddressInfo).port}` };
    const follower = await flagApi(role);
    const asked = Date.now();
    const answering = follower.put('{"set":{"READ_ONLY_MODE":true},"reason":"x"}');
    setTimeout(() => (role.leaderUrl = 'http://127.0.0.1:1'), 300);
    const answer = await answering;
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toMatch(
      /^the leader changed while the request was at http:\/\/127\.0\.0\.1:\d+ \(http:\/\/127\.0\.0\.1:1 leads now\): it may or may not have been carried out; check greenlight tail/,
    );
    // Bounded by the lease, not the 15 minutes a promotion may take (generous: this machine may be busy).
    expect(Date.now() - asked).toBeLessThan(30_000);
  });

  it("the leader answers a change once it is the cluster's; one the database refused or has not taken is a 503 saying so", async () => {
    let problem: string | undefined;
    const leader = await flagApi({ leader: true, written: () => Promise.resolve(problem) });
    expect((await leader.put('{"set":{"READ_ONLY_MODE":true},"reason":"x"}')).status).toBe(200);
    problem = 'saving the flags was refused: fenced: a no longer holds the lease of epoch 1';
    const refused = await leader.put('{"set":{"READ_ONLY_MODE":false},"reason":"x"}');
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toBe(
      "done on this agent (a), but not yet the cluster's: saving the flags was refused: fenced: a no longer holds the lease of epoch 1; check GET /api/v1/flags before asking again",
    );
  });

  it('a deposed leader that receives a forwarded request says who leads now, and that it did nothing', async () => {
    const deposed = await flagApi({ leader: false, leaderUrl: 'http://127.0.0.1:1' });
    const answer = await deposed.put('{"set":{"READ_ONLY_MODE":true},"reason":"x"}', { [FORWARDED_HEADER]: 'c' });
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: string }).error).toBe(
      'this agent no longer leads the cluster (http://127.0.0.1:1 does now): the request was not carried out; send it again',
    );
    expect(deposed.store.audit()).toEqual([]);
  });
});

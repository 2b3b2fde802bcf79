/**
 * The alert lifecycle's API on a real agent (CONTRACT.md, "Alert lifecycle"): the exact shapes of
 * the silences and incidents endpoints, who may call what, bad bodies answered 400 naming the
 * field, and the maintenance endpoints with their metric.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { startPair, waitUntil, type Harness } from '../../helpers/agent-harness.js';
import { startRecorder } from '../../helpers/recorder.js';

const ADMIN = 'admin-token-routes-0001';
const ROLLBACK = 'rollback-token-routes-0001';

let h: Harness;
let recorder: Awaited<ReturnType<typeof startRecorder>>;

beforeAll(async () => {
  recorder = await startRecorder();
  h = await startPair({
    extra: `api: { adminToken: ${ADMIN}, rollbackToken: ${ROLLBACK} }
alerts:
  group: { wait: 200ms, interval: 1s }
  receivers:
    - { type: webhook, name: recorder, url: ${recorder.url}/alerts, retries: 0 }
actions:
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 2 } ] }
    labels: { team: desk }
    actions: [page]
`,
  });
  await waitUntil(() => h.agent.ready, 'the first probe round');
});

afterAll(async () => {
  await h.close();
  await recorder.close();
});

async function call(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(`${h.base}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const later = (ms: number) => new Date(Date.now() + ms).toISOString();
const silence = (overrides: Record<string, unknown> = {}) => ({
  matchers: [{ name: 'rule', value: 'universe-failing', isRegex: false, isEqual: true }],
  startsAt: new Date().toISOString(),
  endsAt: later(3_600_000),
  createdBy: 'alice',
  comment: 'known issue, fix deploying',
  ...overrides,
});
const of = <T extends GreenlightEvent['type']>(type: T) => h.events.filter((event): event is Extract<GreenlightEvent, { type: T }> => event.type === type);

describe('silences API', () => {
  it('POST needs the admin token: 401 without, 403 with the rollback token', async () => {
    expect((await call('POST', '/api/v1/silences', { body: silence() })).status).toBe(401);
    expect((await call('POST', '/api/v1/silences', { token: ROLLBACK, body: silence() })).status).toBe(403);
  });

  it.each([
    [{ comment: '' }, 'comment'],
    [{ createdBy: undefined }, 'createdBy'],
    [{ matchers: [] }, 'matchers'],
    [{ matchers: [{ name: 'env', value: 'green', isEqual: false }] }, 'would mute every alert'],
    // Regression: these need a value, yet match every rule's alert whatever the rule: the critical rollback page went unsent.
    [{ matchers: [{ name: 'rule', value: '.+', isRegex: true }] }, 'matches the critical alerts of every rule on every environment'],
    [{ matchers: [{ name: 'rule', value: '', isEqual: false }] }, 'matches the critical alerts of every rule on every environment'],
    // Regression: patterns that select no rule but do not match a name with a NUL were taken.
    [{ matchers: [{ name: 'rule', value: '[a-z-]+', isRegex: true }] }, 'matches the critical alerts of every rule on every environment'],
    [{ matchers: [{ name: 'rule', value: '[^\u0000]+', isRegex: true }] }, 'matches the critical alerts of every rule on every environment'],
    // Regression: every page, named by its severity or by Alertmanager's label, was accepted.
    [{ matchers: [{ name: 'severity', value: 'critical' }] }, 'matches the critical alerts of every rule on every environment'],
    [{ matchers: [{ name: 'alertname', value: '.+', isRegex: true }] }, 'matches the critical alerts of every rule on every environment'],
    [{ matchers: [{ name: 'rule', value: '((', isRegex: true }] }, 'not a valid regular expression'],
    [{ endsAt: 'tomorrow' }, 'endsAt'],
    // Regression: a day that does not exist was taken as another (2030-02-30: March 2), and a time without an offset in the agent's zone.
    [{ endsAt: '2030-02-30T00:00:00Z' }, 'endsAt'],
    [{ endsAt: '2030-01-01T10:00:00' }, 'endsAt'],
    [{ startsAt: '2030-04-31T00:00:00Z', endsAt: '2030-06-01T00:00:00Z' }, 'startsAt'],
    [{ endsAt: new Date(Date.now() - 60_000).toISOString() }, 'already past'],
    [{ extra: 1 }, 'extra'],
  ])('answers 400 to %j, naming %s', async (change, why) => {
    const answer = await call('POST', '/api/v1/silences', { token: ADMIN, body: silence(change) });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toContain(why);
  });

  it('takes a silence that selects rules, even one that matches every rule this config has by their names', async () => {
    const rules = h.agent.config.rules.map((rule) => rule.name);
    expect(rules.length).toBeGreaterThan(0);
    for (const matchers of [
      [{ name: 'rule', value: rules.join('|'), isRegex: true }],
      [{ name: 'rule', value: rules[0]! }],
      [{ name: 'rule', value: 'live-.*', isRegex: true }],
      [{ name: 'env', value: 'green' }],
    ]) {
      const created = await call('POST', '/api/v1/silences', { token: ADMIN, body: silence({ matchers }) });
      expect(created.status).toBe(201);
      await call('DELETE', `/api/v1/silences/${created.body.silenceID as string}`, { token: ADMIN });
    }
  });

  it('creates (201 {silenceID}), lists with its state (no auth), and expires one (admin), each as an event', async () => {
    const created = await call('POST', '/api/v1/silences', { token: ADMIN, body: silence({ matchers: [{ name: 'rule', value: 'other-rule' }] }) });
    expect(created).toEqual({ status: 201, body: { silenceID: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    const id = created.body.silenceID as string;
    const listed = await call('GET', '/api/v1/silences');
    expect(listed.status).toBe(200);
    expect(listed.body.silences).toContainEqual(
      expect.objectContaining({
        id,
        matchers: [{ name: 'rule', value: 'other-rule', isRegex: false, isEqual: true }],
        createdBy: 'alice',
        comment: 'known issue, fix deploying',
        status: { state: 'active' },
      }),
    );
    expect((await call('DELETE', `/api/v1/silences/${id}`)).status).toBe(401);
    expect((await call('DELETE', '/api/v1/silences/no-such-silence', { token: ADMIN })).status).toBe(404);
    const expired = await call('DELETE', `/api/v1/silences/${id}?by=bob`, { token: ADMIN });
    expect(expired).toMatchObject({ status: 200, body: { silenceID: id, status: { state: 'expired' } } });
    expect((await call('GET', '/api/v1/silences?state=expired')).body.silences.map((s: { id: string }) => s.id)).toContain(id);
    await waitUntil(() => of('silence.expired').length > 0, 'the silence.expired event');
    expect(of('silence.created').find((e) => e.data.silenceID === id)).toMatchObject({ data: { createdBy: 'alice', actor: 'api:admin' } });
    expect(of('silence.expired').find((e) => e.data.silenceID === id)).toMatchObject({ data: { expiredBy: 'bob', actor: 'api:admin' } });
  });
});

describe('incidents API', () => {
  it("lists an incident with the contract's fields, and acknowledges it (rollback or admin token)", async () => {
    h.blue.setFaults({ emptyUniverse: true });
    await waitUntil(async () => (await call('GET', '/api/v1/incidents')).body.incidents.length > 0, 'the incident');
    const [incident] = (await call('GET', '/api/v1/incidents')).body.incidents;
    expect(incident).toMatchObject({
      id: 'universe-failing#1',
      rule: 'universe-failing',
      env: 'blue',
      severity: 'critical',
      state: 'firing',
      escalationLevel: 1,
      acknowledgedBy: null,
      policy: 'critical',
    });
    expect(Date.parse(incident.startedAt)).toBeGreaterThan(0);
    expect(incident.labels).toMatchObject({ rule: 'universe-failing', severity: 'critical', env: 'blue', probe: 'universe', team: 'desk' });
    // The page went out grouped, with the contract's labels.
    await waitUntil(() => recorder.requests.length > 0, 'the page');
    expect((recorder.requests[0]!.body as any).alerts[0].labels).toMatchObject({
      rule: 'universe-failing',
      severity: 'critical',
      env: 'blue',
      probe: 'universe',
      team: 'desk',
    });

    const ack = { incident: 'universe-failing#1', by: 'alice', comment: 'on it' };
    expect((await call('POST', '/api/v1/incidents/ack', { body: ack })).status).toBe(401);
    expect((await call('POST', '/api/v1/incidents/ack', { token: ROLLBACK, body: { ...ack, by: '' } })).status).toBe(400);
    expect((await call('POST', '/api/v1/incidents/ack', { token: ROLLBACK, body: { ...ack, incident: 'nope#1' } })).status).toBe(404);
    const answer = await call('POST', '/api/v1/incidents/ack', { token: ROLLBACK, body: ack });
    expect(answer).toMatchObject({
      status: 200,
      body: { incident: { id: 'universe-failing#1', state: 'acknowledged', acknowledgedBy: 'alice', comment: 'on it' } },
    });
    expect((await call('POST', '/api/v1/incidents/ack', { token: ADMIN, body: { ...ack, by: 'bob' } })).body).toMatchObject({
      alreadyAcknowledged: true,
      incident: { acknowledgedBy: 'alice' },
    });
    expect(of('incident.acknowledged')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ incident: 'universe-failing#1', by: 'alice', actor: 'api:rollback' }) }),
    ]);

    h.blue.resetFaults();
    await waitUntil(async () => (await call('GET', '/api/v1/incidents')).body.incidents[0].state === 'resolved', 'the incident to resolve');
    expect((await call('POST', '/api/v1/incidents/ack', { token: ROLLBACK, body: ack })).status).toBe(409);
  });
});

describe('maintenance API', () => {
  it('starts a window (admin), shows it and its metric, and stops it', async () => {
    const body = { env: 'green', for: '2h', reason: 'db upgrade', by: 'alice' };
    expect((await call('POST', '/api/v1/maintenance', { token: ROLLBACK, body })).status).toBe(403);
    expect((await call('POST', '/api/v1/maintenance', { token: ADMIN, body: { ...body, env: 'red' } })).status).toBe(400);
    expect((await call('POST', '/api/v1/maintenance', { token: ADMIN, body: { ...body, for: '30d' } })).status).toBe(400);
    expect((await call('POST', '/api/v1/maintenance', { token: ADMIN, body: { ...body, for: undefined } })).status).toBe(400);
    const impossible = `${new Date(Date.now() + 3_600_000).toISOString().slice(0, 10)}T24:00:00Z`;
    expect((await call('POST', '/api/v1/maintenance', { token: ADMIN, body: { ...body, for: undefined, until: impossible } })).status).toBe(400);
    const started = await call('POST', '/api/v1/maintenance', { token: ADMIN, body });
    expect(started).toMatchObject({ status: 201, body: { window: { env: 'green', kind: 'ad-hoc', reason: 'db upgrade', createdBy: 'alice', muting: true } } });
    expect((await call('GET', '/api/v1/maintenance')).body).toMatchObject({
      environments: { green: { open: true, muting: true }, blue: { open: false, muting: false } },
    });
    expect(await (await fetch(`${h.base}/metrics`)).text()).toContain('greenlight_maintenance{env="green"} 1');
    const overview = await call('GET', '/api/v1/overview');
    expect(overview.body.alerts.maintenance.open).toEqual([expect.objectContaining({ env: 'green', muting: true })]);
    expect((await call('DELETE', '/api/v1/maintenance/green', { token: ADMIN })).status).toBe(200);
    expect((await call('DELETE', '/api/v1/maintenance/green', { token: ADMIN })).status).toBe(404);
    expect(await (await fetch(`${h.base}/metrics`)).text()).toContain('greenlight_maintenance{env="green"} 0');
    expect(of('maintenance.started').map((e) => e.env)).toEqual(['green']);
    expect(of('maintenance.ended').map((e) => e.data.endedBy)).toEqual(['api:admin']);
  });
});

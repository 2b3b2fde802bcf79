/**
 * The alert lifecycle end to end with the built CLI: `greenlight run` on two simulators, the fake
 * Slack, Discord, PagerDuty and Alertmanager-webhook services of fake-server.ts, and the operator's
 * `greenlight silence`, `greenlight incidents`, `greenlight ack` and `greenlight maintenance`.
 * Nothing is asserted about elapsed time except what the code bounds: notifications counted in
 * the first minute after the fault (the stock group interval is a minute), levels counted after
 * their delays.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { useSimulatorPair, waitUntil } from '../../helpers/agent-harness.js';
import { cli, startAgentProcess, type AgentProcess } from '../../helpers/cli.js';
import { startRecorder } from '../../helpers/recorder.js';
import { tempDir, writeTempFile } from '../../helpers/tools.js';
import { alertmanagerService, discordService, pagerDutyService, slackService, startFakeServer, type FakeServer } from './fake-server.js';

const ADMIN = 'admin-token-lifecycle-cli-01';
const ROLLBACK = 'rollback-token-lifecycle-cli-01';
const ROUTING_KEY = 'R0uT1nGkEy0123456789abcdefABCDEF';
const STOCK = new URL('../../../config/greenlight.yaml', import.meta.url).pathname;

describe('the alert lifecycle, end to end', () => {
  const pair = useSimulatorPair();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    pair.blue.resetFaults();
    pair.green.resetFaults();
  });

  async function fakes(): Promise<Record<'slack' | 'discord' | 'pagerduty' | 'webhook', FakeServer>> {
    const made = {
      slack: await startFakeServer(slackService),
      discord: await startFakeServer(discordService),
      pagerduty: await startFakeServer(pagerDutyService),
      webhook: await startFakeServer(alertmanagerService),
    };
    cleanups.push(async () => void (await Promise.all(Object.values(made).map((server) => server.close()))));
    return made;
  }

  async function run(configFile: string, env: Record<string, string> = {}): Promise<AgentProcess> {
    const agent = await startAgentProcess(configFile, { ADMIN_TOKEN: ADMIN, ROLLBACK_TOKEN: ROLLBACK, ...env });
    cleanups.push(() => agent.stop());
    return agent;
  }

  const of = <T extends GreenlightEvent['type']>(events: GreenlightEvent[], type: T) =>
    events.filter((event): event is Extract<GreenlightEvent, { type: T }> => event.type === type);

  it('both environments failing: at most two notifications per receiver in the first minute (the stock config)', async () => {
    const f = await fakes();
    const agent = await run(STOCK, {
      GREENLIGHT_LISTEN: '127.0.0.1:0',
      GREENLIGHT_DATA_DIR: tempDir('greenlight-lifecycle-both-'),
      GREENLIGHT_PROBE_INTERVAL: '1s',
      BLUE_URL: pair.blue.url,
      GREEN_URL: pair.green.url,
      SLACK_WEBHOOK_URL: `${f.slack.origin}/services/T0/B0/secret`,
      DISCORD_WEBHOOK_URL: `${f.discord.origin}/api/webhooks/1/secret`,
      PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
      PAGERDUTY_URL: `${f.pagerduty.origin}/v2/enqueue`,
      ALERT_WEBHOOK_URL: `${f.webhook.origin}/hook`,
    });
    const faultAt = Date.now();
    pair.blue.setFaults({ errorRatio: 1 });
    pair.green.setFaults({ errorRatio: 1 });
    await waitUntil(async () => of(await agent.events(), 'rule.firing').length >= 2, 'the rules to fire', 30_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, faultAt + 60_000 - Date.now())));
    const counts = Object.fromEntries(Object.entries(f).map(([name, server]) => [name, server.received.length]));
    const events = await agent.events();
    // Several alerts fired (rules and the holds' "inconclusive")…
    const keys = new Set(
      f.webhook.received.flatMap((request) => (request.body as { alerts: { fingerprint: string }[] }).alerts.map((alert) => alert.fingerprint)),
    );
    expect(of(events, 'rule.firing').length + of(events, 'action.skipped').length).toBeGreaterThanOrEqual(4);
    // …and each receiver heard them in at most two notifications.
    for (const [name, count] of Object.entries(counts)) {
      expect(count, `${name} got ${count} notifications`).toBeGreaterThanOrEqual(1);
      expect(count, `${name} got ${count} notifications`).toBeLessThanOrEqual(2);
    }
    // The holds' alert mutes the per-environment ones (the stock inhibition): what went out is about both failing.
    const sent = f.webhook.received.flatMap((request) =>
      (request.body as { alerts: { labels: Record<string, string> }[] }).alerts.map((alert) => alert.labels.alertname),
    );
    expect(sent).toContain('rollback-inconclusive');
    expect(keys.size).toBeGreaterThanOrEqual(1);
    expect(agent.child.exitCode).toBeNull();
  }, 120_000);

  it("a silence mutes a rule's notices while its rollback still happens", async () => {
    const f = await fakes();
    const traffic = await startRecorder();
    cleanups.push(() => traffic.close());
    const file = writeTempFile(
      'greenlight.yaml',
      `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-lifecycle-silence-')}
environments:
  blue: { url: ${pair.blue.url} }
  green: { url: ${pair.green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
api: { adminToken: "\${ADMIN_TOKEN}", rollbackToken: "\${ROLLBACK_TOKEN}" }
traffic: { type: webhook, url: ${traffic.url}/traffic, retries: 0 }
promote: { validateAfterRollback: false }
alerts:
  group: { wait: 500ms, interval: 2s }
  receivers:
    - { type: webhook, name: hook, url: ${f.webhook.origin}/hook, retries: 0 }
actions:
  rollback: { type: rollback }
  page: { type: alert }
rules:
  - name: live-universe-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback, page]
probes:
  - { name: health, path: /api/health }
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`,
    );
    const agent = await run(file);
    const env = { ADMIN_TOKEN: ADMIN, USER: 'alice' };
    const added = await cli(
      ['silence', 'add', 'rule=live-universe-failing', '--comment', 'blue is being rebuilt', '--duration', '1h', '--url', agent.base],
      env,
    );
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const id = /silence ([0-9a-f-]{36})/.exec(added.stdout)![1]!;
    const listed = await cli(['silence', 'list', '--url', agent.base], {});
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+active\\s+rule="live-universe-failing".*alice\\s+blue is being rebuilt`));

    pair.blue.setFaults({ emptyUniverse: true });
    await waitUntil(async () => of(await agent.events(), 'traffic.switched').length > 0, 'the rollback', 20_000);
    expect(traffic.requests.filter((request) => request.path === '/traffic')).toHaveLength(1);
    const events = await agent.events();
    await waitUntil(async () => of(await agent.events(), 'alert.muted').length > 0, 'the muted alert');
    expect(of(await agent.events(), 'alert.muted')[0]).toMatchObject({ rule: 'live-universe-failing', data: { by: 'silence', silences: [id] } });
    // Past the group's wait and interval: still nothing went out about it.
    await waitUntil(async () => of(await agent.events(), 'rule.resolved').length > 0, 'the incident to resolve');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(f.webhook.received).toEqual([]);
    expect(of(events, 'action.succeeded').some((event) => event.data.action === 'rollback')).toBe(true);

    const expired = await cli(['silence', 'expire', id, '--url', agent.base], env);
    expect(expired.code).toBe(0);
    expect((await cli(['silence', 'list', '--url', agent.base], {})).stdout).toContain('no pending or active silences');
    expect((await cli(['silence', 'add', 'env!=x', '--comment', 'x', '--url', agent.base], env)).stderr).toContain('would mute every alert');
    expect((await cli(['silence', 'add', 'rule=x', '--url', agent.base], env)).code).toBe(2);
    expect((await cli(['silence', 'add', 'rule=x', '--comment', 'x', '--url', agent.base], { USER: 'alice', ROLLBACK_TOKEN: ROLLBACK })).code).toBe(1);
  }, 60_000);

  /** A rule that only pages: its incident fires as long as the fault lasts (nothing rolls it away). */
  function pageOnlyConfig(levels: string, webhook: FakeServer, pagerduty: FakeServer, dataDir: string): string {
    return writeTempFile(
      'greenlight.yaml',
      `listen: 127.0.0.1:0
dataDir: ${dataDir}
environments:
  blue: { url: ${pair.blue.url} }
  green: { url: ${pair.green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
api: { adminToken: "\${ADMIN_TOKEN}", rollbackToken: "\${ROLLBACK_TOKEN}" }
alerts:
  group: { wait: 300ms, interval: 1s }
  escalation:
    - name: desk
      matchers: [severity=critical]
      levels: ${levels}
  receivers:
    - { type: webhook, name: hook, url: ${webhook.origin}/hook, retries: 0 }
    - { type: pagerduty, routingKey: ${ROUTING_KEY}, url: ${pagerduty.origin}/v2/enqueue, retries: 0 }
actions:
  page: { type: alert }
rules:
  - name: universe-down
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [page]
probes:
  - { name: health, path: /api/health }
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`,
    );
  }

  const levelsSent = (webhook: FakeServer) =>
    webhook.received.map((request) =>
      Number((request.body as { alerts: { annotations: { escalation_level?: string } }[] }).alerts[0]!.annotations.escalation_level),
    );

  it('an unacknowledged critical reaches level 2 after its delay and stops at acknowledgement', async () => {
    const f = await fakes();
    const agent = await run(
      pageOnlyConfig('[ { after: 0s }, { after: 3s }, { after: 15s } ]', f.webhook, f.pagerduty, tempDir('greenlight-lifecycle-escalate-')),
    );
    pair.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => f.webhook.received.length >= 1, 'the first page');
    expect(levelsSent(f.webhook)).toEqual([1]);
    await waitUntil(() => f.webhook.received.length >= 2, 'level 2', 10_000);
    expect(levelsSent(f.webhook)).toEqual([1, 2]);
    const listed = await cli(['incidents', '--url', agent.base], {});
    expect(listed.stdout).toMatch(/universe-down#1\s+firing\s+critical\s+blue\s+\S+\s+2\s/);

    const acked = await cli(['ack', 'universe-down#1', '--comment', 'on it', '--url', agent.base], { ROLLBACK_TOKEN: ROLLBACK, USER: 'alice' });
    expect(acked.stderr).toBe('');
    expect(acked.stdout).toContain('universe-down#1 acknowledged by alice: escalation stops at level 2');
    await waitUntil(
      () => f.pagerduty.received.some((request) => (request.body as { event_action: string }).event_action === 'acknowledge'),
      'PagerDuty to hear acknowledge',
    );
    // Level 3 was due 15 s after the start: wait past it, nothing more.
    const events = await agent.events();
    const started = Date.parse(of(events, 'rule.firing')[0]!.time);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 17_000 - Date.now())));
    expect(levelsSent(f.webhook)).toEqual([1, 2]);
    expect(of(await agent.events(), 'incident.escalated').map((event) => event.data.level)).toEqual([2]);
    expect((await cli(['ack', 'universe-down#1', '--url', agent.base], { ROLLBACK_TOKEN: ROLLBACK, USER: 'bob' })).stdout).toContain(
      'already acknowledged by alice',
    );
    expect((await cli(['ack', 'nope#1', '--url', agent.base], { ROLLBACK_TOKEN: ROLLBACK, USER: 'bob' })).code).toBe(1);
    expect((await cli(['ack', '--url', agent.base], { ROLLBACK_TOKEN: ROLLBACK })).code).toBe(2);
  }, 60_000);

  it('a restart between levels neither repeats nor skips one', async () => {
    const f = await fakes();
    const dataDir = tempDir('greenlight-lifecycle-restart-');
    const file = pageOnlyConfig('[ { after: 0s }, { after: 8s }, { after: 14s } ]', f.webhook, f.pagerduty, dataDir);
    const first = await run(file);
    pair.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => f.webhook.received.length >= 1, 'level 1');
    const started = Date.parse(of(await first.events(), 'rule.firing')[0]!.time);
    await first.stop();
    expect(levelsSent(f.webhook)).toEqual([1]);

    const second = await run(file);
    await waitUntil(() => f.webhook.received.length >= 3, 'levels 2 and 3', 30_000);
    // Past level 3 and a while more: nothing else.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 17_000 - Date.now())));
    expect(levelsSent(f.webhook)).toEqual([1, 2, 3]);
    const events = await second.events();
    expect(of(events, 'incident.escalated').map((event) => event.data.level)).toEqual([2, 3]);
    expect(of(events, 'rule.firing')).toHaveLength(1);
  }, 60_000);

  it('greenlight maintenance start, list and stop', async () => {
    const f = await fakes();
    const agent = await run(pageOnlyConfig('[ { after: 0s } ]', f.webhook, f.pagerduty, tempDir('greenlight-lifecycle-maintenance-')));
    const env = { ADMIN_TOKEN: ADMIN, USER: 'alice' };
    const started = await cli(['maintenance', 'start', '--env', 'green', '--for', '2h', '--reason', 'db upgrade', '--url', agent.base], env);
    expect(started.stderr).toBe('');
    expect(started.stdout).toMatch(/maintenance on green until .*: db upgrade/);
    expect(started.stdout).toContain('notifications about green are muted');
    const live = await cli(['maintenance', 'start', '--env', 'blue', '--for', '1h', '--reason', 'x', '--url', agent.base], env);
    expect(live.stdout).toContain('blue is live: nothing is muted while it is');
    const listed = await cli(['maintenance', 'list', '--url', agent.base], {});
    expect(listed.stdout).toContain('green: in maintenance (notifications muted)');
    expect(listed.stdout).toContain('blue: in maintenance, but live: nothing muted');
    expect(await (await fetch(`${agent.base}/metrics`)).text()).toContain('greenlight_maintenance{env="green"} 1');
    expect((await cli(['maintenance', 'stop', '--env', 'green', '--url', agent.base], env)).code).toBe(0);
    expect((await cli(['maintenance', 'stop', '--env', 'green', '--url', agent.base], env)).code).toBe(1);
    expect((await cli(['maintenance', 'start', '--env', 'green', '--reason', 'x', '--url', agent.base], env)).code).toBe(2);
    expect((await cli(['maintenance', 'start', '--env', 'green', '--for', '2h', '--reason', 'x', '--url', agent.base], { USER: 'alice' })).code).toBe(1);
  }, 60_000);
});

/**
 * The alert lifecycle on a simulated clock: grouping, the first critical page, inhibition,
 * silences, maintenance, escalation and acknowledgement, and a restart between levels. The
 * receivers are the real plugins; what they send is answered by the fake services of
 * fake-server.ts (each checks its service's documented wire format) behind an undici MockAgent,
 * so fake timers move every wait, retries and group timers included.
 */
import { pino } from 'pino';
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AlertDelivery } from '../../../agent/alerts/alert-dispatcher.js';
import { AlertLifecycle } from '../../../agent/alerts/alert-lifecycle.js';
import type { AlertNotice, AlertReceiver } from '../../../agent/alerts/alert-receiver.js';
import { memoryLifecycleStore, type LifecycleStore } from '../../../agent/alerts/lifecycle-store.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { EventBus, type GreenlightEvent } from '../../../agent/events/events.js';
import { AgentMetrics } from '../../../agent/telemetry/metrics.js';
import { ALERT_RECEIVERS, createPlugin } from '../../../agent/plugins/registry.js';
import { Redactor } from '../../../config/redactor.js';
import { alertmanagerService, discordService, pagerDutyService, slackService, type Service } from './fake-server.js';

const T0 = Date.parse('2026-03-13T08:00:00Z');
const MIN = 60_000;
const ROUTING_KEY = 'R0uT1nGkEy0123456789abcdefABCDEF';

interface Received {
  service: string;
  at: number;
  body: any;
}

interface World {
  lifecycle: AlertLifecycle;
  events: GreenlightEvent[];
  received: Received[];
  deliveries: AlertDelivery[];
  metrics: AgentMetrics;
  live: { env: string };
  /** Requests to one service, in order. */
  to(service: string): Received[];
  /** Publish rule.firing for an incident, as the agent does before its actions run. */
  fire(rule: string, n: number, severity: 'warning' | 'critical', env?: string, labels?: Record<string, string>): string;
  resolveIncident(incident: string): void;
  /** Move live traffic to `env`, as a rollback does: the live environment changes, then traffic.switched. */
  switchTo(env: string): void;
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

const worlds: World[] = [];
afterEach(async () => {
  for (const world of worlds.splice(0)) await world.close();
  vi.useRealTimers();
});

const SERVICES: Record<string, Service> = { slack: slackService, discord: discordService, pagerduty: pagerDutyService, alertmanager: alertmanagerService };

/** The lifecycle as the agent builds it, on `alerts` YAML (receivers appended), with a store that may outlive it. */
async function start(
  alerts = '',
  options: {
    store?: LifecycleStore;
    open?: Parameters<AlertLifecycle['start']>[1];
    fakeTimers?: boolean;
    startAt?: number;
    acting?: () => boolean;
    live?: string;
    rolledBackFromAt?: (env: string) => number | undefined;
  } = {},
): Promise<World> {
  if (options.fakeTimers !== false)
    vi.useFakeTimers({
      now: options.startAt ?? T0,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date'],
    });
  const config = parseAgentConfig(`environments:
  blue: { url: http://blue.test }
  green: { url: http://green.test }
probes: [ { name: health, path: /api/health }, { name: universe, path: /api/alphastack/universe } ]
alerts:
${alerts}
  receivers:
    - { type: slack, url: http://hooks.test/slack, retries: 0 }
    - { type: discord, url: http://hooks.test/discord, retries: 0 }
    - { type: pagerduty, routingKey: ${ROUTING_KEY}, url: http://hooks.test/pagerduty, retries: 0 }
    - { type: webhook, name: alertmanager, url: http://hooks.test/alertmanager, retries: 0 }
`);
  const received: Received[] = [];
  const mock = new MockAgent();
  mock.disableNetConnect();
  mock
    .get('http://hooks.test')
    .intercept({ path: () => true, method: () => true })
    .reply((request) => {
      const service = request.path.slice(1);
      const body = JSON.parse(String(request.body));
      received.push({ service, at: Date.now() - T0, body });
      const answer = SERVICES[service]!({ method: request.method, path: request.path, headers: { 'content-type': 'application/json' }, body });
      return { statusCode: answer.status, data: answer.body ?? '', responseOptions: { headers: answer.headers ?? {} } };
    })
    .persist();
  const logger = pino({ level: 'silent' });
  const deps = { logger, dispatcher: mock, now: () => Date.now(), sleep: async () => undefined, redactor: new Redactor() };
  const receivers = config.alerts.receivers.map((block) => createPlugin<AlertReceiver, typeof deps>(ALERT_RECEIVERS, block, deps));
  const bus = new EventBus({
    now: () => Date.now(),
    onListenerError: (error) => {
      throw error;
    },
  });
  const events: GreenlightEvent[] = [];
  bus.subscribe((event) => events.push(event));
  const metrics = new AgentMetrics({ now: () => Date.now(), processMetrics: false });
  const deliveries: AlertDelivery[] = [];
  const live = { env: options.live ?? 'blue' };
  const lifecycle = new AlertLifecycle({
    config: () => config,
    receivers,
    bus,
    metrics,
    logger,
    now: () => Date.now(),
    activeEnvironment: () => live.env,
    onDelivery: (delivery) => void deliveries.push(delivery),
    ...(options.acting ? { acting: options.acting } : {}),
    ...(options.rolledBackFromAt ? { rolledBackFromAt: options.rolledBackFromAt } : {}),
  });
  lifecycle.start(options.store ?? memoryLifecycleStore(), options.open ?? []);
  const world: World = {
    lifecycle,
    events,
    received,
    deliveries,
    metrics,
    live,
    to: (service) => received.filter((r) => r.service === service),
    fire: (rule, n, severity, env = 'blue', labels = {}) => {
      const incident = `${rule}#${n}`;
      bus.publish({
        type: 'rule.firing',
        severity,
        env,
        rule,
        message: `${rule} firing`,
        data: { severity, incident, heldForMs: 0, figures: { facts: [], samples: 0, env }, labels, actions: ['page'] },
      });
      return incident;
    },
    resolveIncident: (incident) => {
      const rule = incident.split('#')[0]!;
      bus.publish({
        type: 'rule.resolved',
        severity: 'info',
        env: 'blue',
        rule,
        message: `${rule} resolved`,
        data: { severity: 'critical', incident, firedForMs: 0, figures: { facts: [], samples: 0, env: 'blue' }, labels: {} },
      });
    },
    switchTo: (env) => {
      const from = live.env;
      live.env = env;
      bus.publish({
        type: 'traffic.switched',
        severity: 'warning',
        env,
        rule: null,
        message: `live traffic switched ${from} → ${env}`,
        data: { from, to: env, adapter: 'none', reason: 'test', incident: null, detail: 'test', dryRun: false, kind: 'rollback' },
      });
    },
    advance: async (ms) => {
      await vi.advanceTimersByTimeAsync(ms);
    },
    close: async () => {
      await lifecycle.close();
      await mock.close();
    },
  };
  worlds.push(world);
  return world;
}

/** A rule's alert, as the alert action hands it over. */
function notice(rule: string, severity: 'warning' | 'critical', overrides: Partial<AlertNotice> = {}): AlertNotice {
  return {
    status: 'firing',
    key: `greenlight/rule/${overrides.incident ?? `${rule}#1`}`,
    rule,
    severity,
    env: 'blue',
    summary: `${rule} on blue`,
    description: `${rule}: greenlight's actions for this incident: page.`,
    labels: {},
    figures: { facts: [], samples: 10 },
    startsAt: new Date(Date.now()).toISOString(),
    incident: `${rule}#1`,
    ...overrides,
  };
}

const resolved = (n: AlertNotice): AlertNotice => ({ ...n, status: 'resolved', endsAt: new Date(Date.now()).toISOString() });
const alertNames = (body: any): string[] => body.alerts.map((alert: any) => `${alert.labels.alertname}:${alert.status}`);

describe('grouping', () => {
  it('alerts of one environment that start within the wait go out as one notification per receiver, each rendering the group', async () => {
    const w = await start();
    for (const [rule, severity] of [
      ['live-universe-failing', 'critical'],
      ['live-consecutive-failures', 'critical'],
      ['live-latency-warning', 'warning'],
    ] as const) {
      w.fire(rule, 1, severity);
      w.lifecycle.notify(notice(rule, severity));
      await w.advance(1_000);
    }
    expect(w.received).toEqual([]);
    await w.advance(2_000); // the group's wait (5 s) from its first alert
    const hook = w.to('alertmanager');
    expect(hook).toHaveLength(1);
    expect(hook[0]!.at).toBe(5_000);
    // The warning is muted by the stock inhibition: a firing critical on the same environment.
    expect(alertNames(hook[0]!.body)).toEqual(['live-universe-failing:firing', 'live-consecutive-failures:firing']);
    expect(hook[0]!.body).toMatchObject({ groupKey: '{}:{env="blue"}', groupLabels: { env: 'blue' }, commonLabels: { env: 'blue', severity: 'critical' } });
    const slack = w.to('slack');
    expect(slack).toHaveLength(1);
    expect(slack[0]!.body.blocks.filter((block: any) => block.type === 'divider')).toHaveLength(2);
    expect(slack[0]!.body.text).toContain('2 alerts on blue');
    const pd = w.to('pagerduty');
    expect(pd).toHaveLength(1);
    expect(pd[0]!.body).toMatchObject({ event_action: 'trigger', dedup_key: '{}:{env="blue"}', payload: { severity: 'critical' } });
    expect(pd[0]!.body.payload.custom_details.alerts).toHaveLength(2);
    expect(w.to('discord')[0]!.body.embeds[0].fields).toHaveLength(2);
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([
      expect.objectContaining({ rule: 'live-latency-warning', data: expect.objectContaining({ by: 'inhibition', inhibitRule: 'critical-mutes-warnings' }) }),
    ]);
  });

  it('later changes go out at the group interval, not one message per rule; a resolution too', async () => {
    const w = await start();
    const first = notice('live-universe-failing', 'critical');
    w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(first);
    await w.advance(5_000);
    expect(w.to('alertmanager')).toHaveLength(1);
    for (let i = 0; i < 5; i++) {
      w.fire(`rule-${i}`, 1, 'critical');
      w.lifecycle.notify(notice(`rule-${i}`, 'critical'));
      await w.advance(5_000);
    }
    w.lifecycle.notify(resolved(first));
    expect(w.to('alertmanager')).toHaveLength(1);
    await w.advance(60_000 - 25_000 - 1);
    expect(w.to('alertmanager')).toHaveLength(1);
    await w.advance(1);
    const second = w.to('alertmanager')[1]!;
    expect(second.at).toBe(65_000);
    expect(alertNames(second.body)).toEqual([...[0, 1, 2, 3, 4].map((i) => `rule-${i}:firing`), 'live-universe-failing:resolved']);
  });

  it('the first critical page is never held back by more than the wait, even in a group that already notified', async () => {
    const w = await start();
    w.fire('live-latency-warning', 1, 'warning');
    w.lifecycle.notify(notice('live-latency-warning', 'warning'));
    await w.advance(5_000);
    expect(w.to('slack')).toHaveLength(1);
    await w.advance(10_000);
    w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(5_000);
    // 20 s, not at the group interval (65 s): within the wait of its arrival.
    expect(w.to('slack')).toHaveLength(2);
    expect(w.to('slack')[1]!.at).toBe(20_000);
    expect(w.to('pagerduty')).toHaveLength(1);
    expect(w.to('pagerduty')[0]!.at).toBe(20_000);
  });

  it('an alert that fired and resolved within the wait (a rollback ended its incident) still pages: PagerDuty triggers then resolves', async () => {
    const w = await start();
    const n = notice('live-universe-failing', 'critical');
    w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(n);
    await w.advance(300);
    w.lifecycle.notify(resolved(n));
    await w.advance(5_000);
    expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger', 'resolve']);
    expect(w.to('alertmanager').map((r) => alertNames(r.body))).toEqual([['live-universe-failing:resolved']]);
    await w.advance(10 * MIN);
    expect(w.to('pagerduty')).toHaveLength(2);
  });
});

describe('inhibition', () => {
  it.each([
    ['source first', true],
    ['target first', false],
  ])(
    'an alert inhibited until it resolves, in the same turn as its source (%s), is told to nobody (regression: resolving both environments paged PagerDuty a trigger for the muted rule)',
    async (_, sourceFirst) => {
      const w = await start();
      // Both environments fail: the rule fires, its rollback is held and raises rollback-inconclusive,
      // which mutes the rule's own alert through the stock both-failing-mutes-environment.
      const incident = w.fire('live-universe-failing', 1, 'critical');
      const rule = notice('live-universe-failing', 'critical');
      const held = notice('rollback-inconclusive', 'critical', { key: `greenlight/rollback-inconclusive/${incident}`, incident });
      w.lifecycle.notify(rule);
      w.lifecycle.notify(held);
      await w.advance(5_000);
      expect(w.to('alertmanager').map((r) => alertNames(r.body))).toEqual([['rollback-inconclusive:firing']]);
      expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger']);

      // Both recover: the incident ends, and its actions resolve their alerts one after the other
      // in one turn (the rollback's hold alert, then the page's), as the action runner does.
      await w.advance(MIN);
      w.resolveIncident(incident);
      for (const n of sourceFirst ? [held, rule] : [rule, held]) w.lifecycle.notify(resolved(n));
      await w.advance(10 * MIN);

      expect(w.to('alertmanager').map((r) => alertNames(r.body))).toEqual([['rollback-inconclusive:firing'], ['rollback-inconclusive:resolved']]);
      expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger', 'resolve']);
      expect(w.to('slack')).toHaveLength(2);
      expect(w.to('slack')[1]!.body.text).not.toContain('live-universe-failing');
    },
  );
});

describe('silences', () => {
  // alertname: Alertmanager's name for the rule, as the webhook payload carries it (regression: a silence on it matched nothing).
  it.each(['rule', 'alertname'])(
    "mute a rule's notices (matched on %s) only while active; the resolution of one delivered before still goes out",
    async (label) => {
      const w = await start();
      const a = notice('rule-a', 'critical');
      w.fire('rule-a', 1, 'critical');
      w.lifecycle.notify(a);
      await w.advance(5_000);
      expect(w.to('alertmanager')).toHaveLength(1);
      w.lifecycle.createSilence(
        {
          matchers: [{ name: label, value: 'rule-.*', isRegex: true, isEqual: true }],
          endsAt: new Date(Date.now() + 30 * MIN).toISOString(),
          createdBy: 'alice',
          comment: 'known issue',
        },
        'api:admin',
      );
      const b = notice('rule-b', 'critical', { incident: 'rule-b#1', key: 'greenlight/rule/rule-b#1' });
      w.fire('rule-b', 1, 'critical');
      w.lifecycle.notify(b);
      await w.advance(2 * MIN);
      // rule-b silenced from the start: nothing. rule-a silenced after it was told: no repeats…
      expect(w.to('alertmanager')).toHaveLength(1);
      w.lifecycle.notify(resolved(a));
      await w.advance(2 * MIN);
      // …but its resolution goes out (Alertmanager's issue 226).
      expect(w.to('alertmanager').map((r) => alertNames(r.body))).toEqual([['rule-a:firing'], ['rule-a:resolved']]);
      expect(w.events.filter((e) => e.type === 'alert.muted').map((e) => e.rule)).toEqual(expect.arrayContaining(['rule-a', 'rule-b']));
      expect(w.events.find((e) => e.type === 'silence.created')).toMatchObject({
        data: { createdBy: 'alice', comment: 'known issue', state: 'active', actor: 'api:admin' },
      });
      // At its end, the silenced alert still firing is told.
      await w.advance(30 * MIN);
      expect(w.events.find((e) => e.type === 'silence.expired')).toMatchObject({ data: { expiredBy: null } });
      expect(
        w
          .to('alertmanager')
          .map((r) => alertNames(r.body))
          .at(-1),
      ).toEqual(['rule-b:firing']);
    },
  );

  it('a silence that starts later mutes from its start: alert.muted and the overview say so then (regression: not until something else changed, hours later)', async () => {
    const w = await start();
    w.fire('rule-w', 1, 'warning');
    w.lifecycle.notify(notice('rule-w', 'warning', { incident: 'rule-w#1', key: 'greenlight/rule/rule-w#1' }));
    await w.advance(5_000);
    expect(w.to('alertmanager')).toHaveLength(1);
    w.lifecycle.createSilence(
      {
        matchers: [{ name: 'rule', value: 'rule-w', isRegex: false, isEqual: true }],
        startsAt: new Date(Date.now() + 10 * MIN).toISOString(),
        endsAt: new Date(Date.now() + 60 * MIN).toISOString(),
        createdBy: 'alice',
        comment: 'from ten past',
      },
      'api:admin',
    );
    await w.advance(10 * MIN - 1);
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([]);
    expect(w.lifecycle.overview().muted).toEqual([]);
    await w.advance(1);
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([
      expect.objectContaining({ rule: 'rule-w', data: expect.objectContaining({ by: 'silence' }) }),
    ]);
    expect(w.lifecycle.overview().muted).toEqual([expect.objectContaining({ rule: 'rule-w', reason: expect.objectContaining({ by: 'silence' }) })]);
  });
});

describe('maintenance', () => {
  it('mutes the notifications of the idle environment in maintenance, never those of the live one', async () => {
    const w = await start();
    const window = w.lifecycle.startMaintenance({ env: 'green', endsAt: Date.now() + 2 * 3_600_000, reason: 'db upgrade', by: 'alice' });
    expect(window).toMatchObject({ env: 'green', kind: 'ad-hoc' });
    expect(await w.metrics.render(false).then((r) => r.body)).toContain('greenlight_maintenance{env="green"} 1');
    w.fire('green-rule', 1, 'critical', 'green');
    w.lifecycle.notify(notice('green-rule', 'critical', { env: 'green', incident: 'green-rule#1', key: 'greenlight/rule/green-rule#1' }));
    w.fire('blue-rule', 1, 'critical');
    w.lifecycle.notify(notice('blue-rule', 'critical', { incident: 'blue-rule#1', key: 'greenlight/rule/blue-rule#1' }));
    await w.advance(10_000);
    expect(w.to('alertmanager').flatMap((r) => alertNames(r.body))).toEqual(['blue-rule:firing']);
    expect(w.events.find((e) => e.type === 'maintenance.started')).toMatchObject({
      env: 'green',
      data: { muting: true, reason: 'db upgrade', createdBy: 'alice' },
    });
    // Traffic moves to green: the window no longer mutes it.
    w.live.env = 'green';
    w.lifecycle.dispatcher.recheck();
    await w.advance(2 * MIN);
    expect(w.to('alertmanager').flatMap((r) => alertNames(r.body))).toContain('green-rule:firing');
    w.live.env = 'blue';
    w.lifecycle.stopMaintenance('green', 'bob');
    expect(w.events.find((e) => e.type === 'maintenance.ended')).toMatchObject({ data: { endedBy: 'bob' } });
    expect(await w.metrics.render(false).then((r) => r.body)).toContain('greenlight_maintenance{env="green"} 0');
  });

  it('after a restart, the page of an alert that started before the rollback it caused still goes out, though a window is open on the environment it left (the switch was not heard: the rollback time the agent keeps says it)', async () => {
    // The agent restarted on green after rolling blue back at T0 + 50 ms; the alert started at T0, while blue was live.
    const w = await start('', { live: 'green', rolledBackFromAt: (env) => (env === 'blue' ? T0 + 50 : undefined) });
    w.lifecycle.startMaintenance({ env: 'blue', endsAt: Date.now() + 2 * 3_600_000, reason: 'db upgrade', by: 'alice' });
    w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(10_000);
    expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger']);
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([]);
  });

  it('an incident of the live environment that rolls it back still pages, though a window is open on it (regression: told to nobody once the environment was idle)', async () => {
    const w = await start();
    w.lifecycle.startMaintenance({ env: 'blue', endsAt: Date.now() + 2 * 3_600_000, reason: 'db upgrade', by: 'alice' });
    // blue is live: its critical fires, the rollback switches to green and heals the incident within the wait.
    const page = notice('live-universe-failing', 'critical');
    w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(page);
    await w.advance(100);
    w.switchTo('green');
    await w.advance(100);
    w.lifecycle.notify(resolved(page));
    await w.advance(10_000);
    expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger', 'resolve']);
    expect(w.to('alertmanager').map((r) => alertNames(r.body))).toEqual([['live-universe-failing:resolved']]);
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([]);
    // blue idle now: an alert that starts on it from now on is the window's to mute.
    w.fire('idle-blue-rule', 1, 'critical');
    w.lifecycle.notify(notice('idle-blue-rule', 'critical', { incident: 'idle-blue-rule#1', key: 'greenlight/rule/idle-blue-rule#1' }));
    await w.advance(MIN);
    expect(w.to('alertmanager').flatMap((r) => alertNames(r.body))).not.toContain('idle-blue-rule:firing');
    expect(w.events.filter((e) => e.type === 'alert.muted')).toEqual([
      expect.objectContaining({ rule: 'idle-blue-rule', data: expect.objectContaining({ by: 'maintenance' }) }),
    ]);
  });
});

describe('escalation and acknowledgement', () => {
  it('an unacknowledged critical reaches level 2 at 5 minutes and stops at acknowledgement; PagerDuty hears acknowledge, then resolve', async () => {
    const w = await start();
    const incident = w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(5 * MIN - 1);
    expect(w.to('slack')).toHaveLength(1);
    expect(w.lifecycle.incidents.get(incident)).toMatchObject({ escalationLevel: 1, state: 'firing' });
    const gauge = async () => (await w.metrics.render(false)).body.split('\n').filter((line) => line.startsWith('greenlight_incidents{'));
    expect(await gauge()).toEqual(['greenlight_incidents{state="firing"} 1', 'greenlight_incidents{state="acknowledged"} 0']);
    await w.advance(1);
    expect(w.lifecycle.incidents.get(incident)!.escalationLevel).toBe(2);
    expect(w.to('slack')).toHaveLength(2);
    expect(w.to('slack')[1]!.body.text).toContain('ESCALATION L2');
    expect(JSON.stringify(w.to('slack')[1]!.body.blocks)).toContain('greenlight ack live-universe-failing#1');
    expect(w.to('alertmanager')[1]!.body.alerts[0].annotations).toMatchObject({ incident, escalation_level: '2' });
    expect(w.events.find((e) => e.type === 'incident.escalated')).toMatchObject({ data: { incident, level: 2, kind: 'level', notifications: 4 } });

    await w.advance(MIN);
    w.lifecycle.acknowledge(incident, 'alice', 'on it', 'api:rollback');
    await w.advance(1_000);
    expect(w.to('pagerduty').map((r) => r.body.event_action)).toEqual(['trigger', 'trigger', 'acknowledge']);
    expect(w.events.find((e) => e.type === 'incident.acknowledged')).toMatchObject({ data: { incident, by: 'alice', level: 2 } });
    expect(await gauge()).toEqual(['greenlight_incidents{state="firing"} 0', 'greenlight_incidents{state="acknowledged"} 1']);
    const before = w.received.length;
    await w.advance(60 * MIN);
    // No level 3 at 15 minutes, nor reminders: acknowledged.
    expect(w.received).toHaveLength(before);
    w.resolveIncident(incident);
    w.lifecycle.notify(resolved(notice('live-universe-failing', 'critical')));
    await w.advance(MIN);
    expect(w.to('pagerduty').at(-1)!.body).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: '{}:{env="blue"}' });
    expect(w.lifecycle.incidents.get(incident)!.state).toBe('resolved');
    expect(await gauge()).toEqual(['greenlight_incidents{state="firing"} 0', 'greenlight_incidents{state="acknowledged"} 0']);
  });

  it('an incident new to a group PagerDuty has acknowledged pages as an incident of its own; both resolve at the end (regression: it joined the acknowledged one and paged nobody)', async () => {
    const w = await start();
    const first = w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(10_000);
    w.lifecycle.acknowledge(first, 'alice', 'on it', 'api:rollback');
    await w.advance(1_000);
    const pd = () => w.to('pagerduty').map((r) => `${r.body.event_action} ${r.body.dedup_key}`);
    expect(pd()).toEqual(['trigger {}:{env="blue"}', 'acknowledge {}:{env="blue"}']);

    w.fire('live-health-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-health-failing', 'critical'));
    await w.advance(2 * MIN);
    expect(pd().slice(2)).toEqual(['trigger {}:{env="blue"}#1']);

    w.resolveIncident(first);
    w.lifecycle.notify(resolved(notice('live-universe-failing', 'critical')));
    w.resolveIncident('live-health-failing#1');
    w.lifecycle.notify(resolved(notice('live-health-failing', 'critical')));
    await w.advance(2 * MIN);
    expect(pd().slice(3)).toEqual(['resolve {}:{env="blue"}', 'resolve {}:{env="blue"}#1']);
  });

  it('a restart keeps the round: the resolve after it reaches both PagerDuty incidents', async () => {
    const store = memoryLifecycleStore();
    const first = await start('', { store });
    const a = first.fire('live-universe-failing', 1, 'critical');
    first.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await first.advance(10_000);
    first.lifecycle.acknowledge(a, 'alice', 'on it', 'api:rollback');
    await first.advance(1_000);
    const b = first.fire('live-health-failing', 1, 'critical');
    first.lifecycle.notify(notice('live-health-failing', 'critical'));
    await first.advance(2 * MIN);
    expect(
      first
        .to('pagerduty')
        .map((r) => r.body.dedup_key)
        .at(-1),
    ).toBe('{}:{env="blue"}#1');
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();

    const open = [a, b].map((incident) => ({ incident, rule: incident.split('#')[0]!, env: 'blue', severity: 'critical' as const, startedAt: T0 }));
    const second = await start('', { store, startAt: T0 + 3 * MIN, open });
    second.resolveIncident(a);
    second.lifecycle.notify(resolved(notice('live-universe-failing', 'critical')));
    second.resolveIncident(b);
    second.lifecycle.notify(resolved(notice('live-health-failing', 'critical')));
    await second.advance(2 * MIN);
    expect(second.to('pagerduty').map((r) => `${r.body.event_action} ${r.body.dedup_key}`)).toEqual(['resolve {}:{env="blue"}', 'resolve {}:{env="blue"}#1']);
  });

  it('after a restart, an incident new to a group PagerDuty has acknowledged still pages as an incident of its own (regression: it joined the acknowledged one)', async () => {
    const store = memoryLifecycleStore();
    const first = await start('', { store });
    const a = first.fire('live-universe-failing', 1, 'critical');
    first.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await first.advance(10_000);
    first.lifecycle.acknowledge(a, 'alice', 'on it', 'api:rollback');
    await first.advance(1_000);
    expect(first.to('pagerduty').map((r) => `${r.body.event_action} ${r.body.dedup_key}`)).toEqual(['trigger {}:{env="blue"}', 'acknowledge {}:{env="blue"}']);
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();

    const open = [{ incident: a, rule: 'live-universe-failing', env: 'blue', severity: 'critical' as const, startedAt: T0 }];
    const second = await start('', { store, startAt: T0 + 3 * MIN, open });
    second.fire('live-health-failing', 1, 'critical');
    second.lifecycle.notify(notice('live-health-failing', 'critical'));
    await second.advance(2 * MIN);
    expect(second.to('pagerduty').map((r) => `${r.body.event_action} ${r.body.dedup_key}`)).toEqual(['trigger {}:{env="blue"}#1']);
  });

  it('an acknowledgement that timed out pages again at PagerDuty, as an incident of its own (regression: the trigger joined the acknowledged one, which tells nobody)', async () => {
    const w = await start(`  escalation:
    - name: critical
      matchers: ["severity=critical"]
      levels: [{ after: 0s, receivers: ["*"] }]
      acknowledgeTimeout: 10m
`);
    const incident = w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(10_000);
    w.lifecycle.acknowledge(incident, 'alice', 'on it', 'api:rollback');
    await w.advance(10 * MIN);
    expect(w.events.filter((e) => e.type === 'incident.escalated')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ kind: 'retrigger' }) }),
    ]);
    const pd = () => w.to('pagerduty').map((r) => `${r.body.event_action} ${r.body.dedup_key}`);
    expect(pd()).toEqual(['trigger {}:{env="blue"}', 'acknowledge {}:{env="blue"}', 'trigger {}:{env="blue"}#1']);
    w.resolveIncident(incident);
    w.lifecycle.notify(resolved(notice('live-universe-failing', 'critical')));
    await w.advance(2 * MIN);
    expect(pd().slice(3)).toEqual(['resolve {}:{env="blue"}', 'resolve {}:{env="blue"}#1']);
  });

  it('a kept alert (a switch step that failed) outlives a restart that finds no incident open, still firing, not resolved', async () => {
    const store = memoryLifecycleStore();
    const first = await start('', { store });
    const stepFailed = notice('switch-step-failed', 'critical', { key: 'greenlight/switch-step-failed/live-universe-failing#1', kept: true });
    delete stepFailed.incident;
    first.lifecycle.notify(stepFailed);
    await first.advance(10_000);
    expect(first.to('slack')).toHaveLength(1);
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();

    const second = await start('', { store, startAt: T0 + 3 * MIN, open: [] });
    await second.advance(2 * MIN);
    expect(second.lifecycle.dispatcher.firing().map((n) => n.key)).toEqual([stepFailed.key]);
    expect(second.received).toEqual([]);
  });

  it('an escalation while the incident is silenced says it notified nobody, and notifies nobody (regression: the event said "notifying every receiver")', async () => {
    const w = await start();
    const incident = w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await w.advance(10_000);
    const before = w.to('slack').length;
    w.lifecycle.createSilence(
      {
        matchers: [{ name: 'rule', value: 'live-universe-failing', isRegex: false, isEqual: true }],
        endsAt: new Date(Date.now() + 30 * MIN).toISOString(),
        createdBy: 'alice',
        comment: 'working on it',
      },
      'api:admin',
    );
    await w.advance(5 * MIN);
    const escalated = w.events.find((e) => e.type === 'incident.escalated')!;
    expect(escalated).toMatchObject({ data: { incident, level: 2, notifications: 0 } });
    expect(escalated.message).toContain('nothing to notify (its alerts are muted, or none is firing)');
    expect(w.to('slack')).toHaveLength(before);
  });

  it('a restart between levels neither repeats nor skips one', async () => {
    const store = memoryLifecycleStore();
    const first = await start('', { store });
    const incident = first.fire('live-universe-failing', 1, 'critical');
    first.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await first.advance(6 * MIN);
    expect(first.to('slack').map((r) => r.at)).toEqual([5_000, 5 * MIN]);
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();

    // Down from minute 6 to minute 10; the agent resumes the incident as firing.
    const second = await start('', {
      store,
      startAt: T0 + 10 * MIN,
      open: [{ incident, rule: 'live-universe-failing', env: 'blue', severity: 'critical', startedAt: T0 }],
    });
    await second.advance(MIN);
    expect(second.received).toEqual([]);
    expect(second.lifecycle.incidents.get(incident)!.escalationLevel).toBe(2);
    await second.advance(4 * MIN);
    // Level 3 at 15 minutes, once: the alert the first run held is known to the second.
    expect(second.to('slack').map((r) => r.at)).toEqual([15 * MIN]);
    expect(second.to('slack')[0]!.body.text).toContain('ESCALATION L3');
    expect(second.events.filter((e) => e.type === 'incident.escalated').map((e) => (e.data as { level: number }).level)).toEqual([3]);
  });

  it('in a cluster, a follower is dormant and a new leader goes on from the records the last one wrote', async () => {
    const shared = memoryLifecycleStore();
    const first = await start('', { store: shared });
    const incident = first.fire('live-universe-failing', 1, 'critical');
    first.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await first.advance(6 * MIN);
    expect(first.to('slack').map((r) => r.at)).toEqual([5_000, 5 * MIN]);
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();

    // Another agent follows: the rule fires there too, and it opens, notifies, escalates and publishes nothing.
    let leads = false;
    const second = await start('', { store: memoryLifecycleStore(), startAt: T0 + 6 * MIN, acting: () => leads });
    second.fire('live-universe-failing', 1, 'critical');
    second.lifecycle.notify(notice('live-universe-failing', 'critical'));
    await second.advance(10 * MIN);
    expect(second.received).toEqual([]);
    expect(second.lifecycle.incidents.list()).toEqual([]);
    expect(second.events.filter((e) => e.type !== 'rule.firing')).toEqual([]);

    // It takes over at minute 16 from the shared records: level 3 (due at 15) once, nothing sent again.
    leads = true;
    second.lifecycle.start(shared, [{ incident, rule: 'live-universe-failing', env: 'blue', severity: 'critical', startedAt: T0 }]);
    await second.advance(MIN);
    expect(second.to('slack')).toHaveLength(1);
    expect(second.to('slack')[0]!.body.text).toContain('ESCALATION L3');
    expect(second.events.filter((e) => e.type === 'incident.escalated').map((e) => (e.data as { level: number }).level)).toEqual([3]);
  });

  it('a leader that could not act when its first page came due sends it as soon as it acts again in the same term (regression: it went out at the next escalation step, 5 minutes on)', async () => {
    let leads = true;
    const w = await start('', { acting: () => leads });
    const incident = w.fire('live-universe-failing', 1, 'critical');
    w.lifecycle.notify(notice('live-universe-failing', 'critical'));
    // Its acting deadline passes within the group's 5 s wait: the notification is held back.
    leads = false;
    await w.advance(10_000);
    // Another rule fired meanwhile: the lifecycle did not follow it while it could not act.
    const later = w.fire('memory-critical', 1, 'critical', 'green');
    w.lifecycle.notify(notice('memory-critical', 'critical', { env: 'green', incident: later }));
    expect(w.lifecycle.incidents.get(later)).toBeUndefined();
    await w.advance(10_000);
    expect(w.received).toEqual([]);
    leads = true;
    w.lifecycle.wake([
      { incident, rule: 'live-universe-failing', env: 'blue', severity: 'critical', startedAt: T0 },
      { incident: later, rule: 'memory-critical', env: 'green', severity: 'critical', startedAt: T0 + 10_000 },
    ]);
    await w.advance(1_000);
    expect(w.lifecycle.incidents.get(later)?.state).toBe('firing');
    const texts = w.to('slack').map((r) => `${r.at} ${String(r.body.text)}`);
    expect(texts).toEqual([expect.stringMatching(/^20000 .*live-universe-failing/), expect.stringMatching(/^20000 .*memory-critical/)]);
  });

  it('an incident the agent no longer has after a restart is resolved, with its resolved notices', async () => {
    const store = memoryLifecycleStore();
    const first = await start('', { store });
    const incident = first.fire('removed-rule', 1, 'critical');
    first.lifecycle.notify(notice('removed-rule', 'critical'));
    await first.advance(10_000);
    await first.close();
    worlds.splice(worlds.indexOf(first), 1);
    vi.useRealTimers();
    const second = await start('', { store, startAt: T0 + MIN, open: [] });
    expect(second.lifecycle.incidents.get(incident)!.state).toBe('resolved');
    await second.advance(MIN);
    expect(second.to('pagerduty').map((r) => r.body.event_action)).toEqual(['resolve']);
  });
});

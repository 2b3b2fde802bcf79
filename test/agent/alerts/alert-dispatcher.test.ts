import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AlertDispatcher,
  MAX_RATE_LIMIT_HOLD_MS,
  type AlertDelivery,
  type NotificationPolicy,
  type StoredAlert,
} from '../../../agent/alerts/alert-dispatcher.js';
import { AlertError, type AlertGroupNotice, type AlertNotice, type AlertReceiver } from '../../../agent/alerts/alert-receiver.js';
import { pagerDutyReceiver } from '../../../agent/alerts/pagerduty-receiver.js';
import { slackReceiver } from '../../../agent/alerts/slack-receiver.js';
import { webhookReceiver } from '../../../agent/alerts/webhook-receiver.js';
import type { Severity } from '../../../agent/events/events.js';
import { OutboundError } from '../../../agent/plugins/outbound.js';
import {
  alertmanagerService,
  firingNotice,
  pagerDutyService,
  resolvedNotice,
  slackService,
  startFakeServer,
  testDeps,
  type FakeServer,
  type TestDeps,
} from './fake-server.js';

const NOW = Date.parse('2025-03-14T03:00:00Z');
const SLACK_TOKEN = 'sEcReTsLaCkToKeN01234567';
const ROUTING_KEY = 'R0uT1nGkEy0123456789abcdefABCDEF';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(service: Parameters<typeof startFakeServer>[0]): Promise<FakeServer> {
  const started = await startFakeServer(service);
  cleanups.push(() => started.close());
  return started;
}

function deps(): TestDeps {
  const made = testDeps(() => NOW);
  cleanups.push(() => made.dispatcher.destroy());
  return made;
}

/** A dispatcher on the test's clock: Date.now, which fake timers move (scheduling reads it). */
function dispatcher(receivers: AlertReceiver[], options: { repeatIntervalMs?: number; logLines?: string[]; now?: () => number } = {}) {
  const deliveries: AlertDelivery[] = [];
  const logLines = options.logLines ?? [];
  const made = new AlertDispatcher({
    receivers,
    repeatIntervalMs: options.repeatIntervalMs ?? 3_600_000,
    now: options.now ?? (() => Date.now()),
    logger: pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) }),
    onDelivery: (delivery) => void deliveries.push(delivery),
  });
  cleanups.push(() => made.close());
  return { dispatcher: made, deliveries, logLines };
}

interface Recorder extends AlertReceiver {
  sent: AlertNotice[];
  sendGroup?: AlertReceiver['sendGroup'];
}

/** A receiver that records what it was given and answers with `answer` (default: delivered at once). */
function recorder(
  name: string,
  severities: Severity[],
  answer?: (notice: AlertNotice, signal: AbortSignal) => Promise<{ attempts: number; status?: number }>,
): Recorder {
  const sent: AlertNotice[] = [];
  return {
    name,
    type: 'test',
    severities,
    sent,
    send: async (notice, signal) => {
      sent.push(notice);
      return answer ? answer(notice, signal) : { attempts: 1, status: 200 };
    },
  };
}

/** Dispatchers on one store: what one agent, then the same agent restarted, holds. */
function oneStore() {
  const saved = new Map<string, StoredAlert>();
  const persistence = { save: (alert: StoredAlert) => void saved.set(alert.notice.key, alert), remove: (key: string) => void saved.delete(key) };
  const open = (receivers: AlertReceiver[], policy?: NotificationPolicy) => {
    const made = new AlertDispatcher({
      receivers,
      repeatIntervalMs: 3_600_000,
      now: () => Date.now(),
      logger: pino({ level: 'silent' }),
      onDelivery: () => undefined,
      persistence,
      ...(policy ? { policy } : {}),
    });
    cleanups.push(() => made.close());
    return made;
  };
  return { saved, open };
}

/** An answer that waits until the signal aborts, then fails like a cancelled delivery. */
const untilAborted = (_notice: AlertNotice, signal: AbortSignal) =>
  new Promise<never>((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new AlertError('test receiver: cancelled after 1 attempts', 1)), { once: true }),
  );

describe('AlertDispatcher', () => {
  it('returns from notify at once; a fast receiver gets the notice while a hanging one still hangs, which then times out as a failure', async () => {
    const fast = await server(slackService);
    const stuck = await server(alertmanagerService);
    stuck.script('hang');
    const d = deps();
    const slack = slackReceiver.create(slackReceiver.schema.parse({ type: 'slack', name: 'desk', url: `${fast.origin}/services/T0/B0/${SLACK_TOKEN}` }), d);
    const hook = webhookReceiver.create(
      webhookReceiver.schema.parse({ type: 'webhook', name: 'router', url: `${stuck.origin}/hook`, timeout: '300ms', retries: 0 }),
      d,
    );
    // The hanging receiver is listed first: it must not hold up the one after it.
    const { dispatcher: alerts, deliveries } = dispatcher([hook, slack]);

    alerts.notify(firingNotice());
    // Nothing was sent or reported inside notify: it only queued the work.
    expect(fast.received).toHaveLength(0);
    expect(deliveries).toEqual([]);

    await fast.waitFor(1);
    await vi.waitFor(() => expect(deliveries).toHaveLength(1));
    expect(deliveries[0]).toMatchObject({ receiver: slack, ok: true, attempts: 1, httpStatus: 200 });
    expect(stuck.received).toHaveLength(1);
    expect(stuck.hanging()).toBe(1);

    await alerts.idle();
    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]).toMatchObject({
      receiver: hook,
      ok: false,
      attempts: 1,
      error: 'webhook receiver "router": gave up after 1 attempts; last: no answer within 300ms',
    });
    expect(deliveries[1]!.notice.key).toBe(firingNotice().key);
  });

  it('routes by severity: a warning does not reach pagerduty set to critical', async () => {
    const slackServer = await server(slackService);
    const pdServer = await server(pagerDutyService);
    const d = deps();
    const slack = slackReceiver.create(slackReceiver.schema.parse({ type: 'slack', url: `${slackServer.origin}/services/T0/B0/${SLACK_TOKEN}` }), d);
    const pd = pagerDutyReceiver.create(
      pagerDutyReceiver.schema.parse({ type: 'pagerduty', routingKey: ROUTING_KEY, url: `${pdServer.origin}/v2/enqueue` }),
      d,
    );
    expect(pd.severities).toEqual(['critical']);
    const { dispatcher: alerts, deliveries } = dispatcher([slack, pd]);

    alerts.notify(firingNotice({ key: 'latency-warning:blue:1', rule: 'latency-warning', severity: 'warning' }));
    await alerts.idle();
    expect(slackServer.received).toHaveLength(1);
    expect(pdServer.received).toHaveLength(0);
    expect(deliveries.map((delivery) => delivery.receiver.name)).toEqual(['slack']);

    alerts.notify(firingNotice());
    await alerts.idle();
    expect(slackServer.received).toHaveLength(2);
    expect(pdServer.received).toHaveLength(1);
    expect(deliveries.slice(1).map((delivery) => [delivery.receiver.name, delivery.ok, delivery.httpStatus])).toEqual(
      expect.arrayContaining([
        ['slack', true, 200],
        ['pagerduty', true, 202],
      ]),
    );
  });

  it('sends a firing notice again every repeat interval and stops once it resolves', async () => {
    vi.useFakeTimers();
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { repeatIntervalMs: 60_000 });
    const notice = firingNotice();

    alerts.notify(notice);
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent).toHaveLength(1);
    expect(alerts.firing()).toEqual([notice]);

    await vi.advanceTimersByTimeAsync(150_000);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing', 'firing', 'firing']);

    alerts.notify(resolvedNotice(notice));
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing', 'firing', 'firing', 'resolved']);
    expect(alerts.firing()).toEqual([]);

    await vi.advanceTimersByTimeAsync(600_000);
    expect(pager.sent).toHaveLength(4);
  });

  it('a notice with its own repeat interval of 0 goes out once per incident: 21 simulated days, one delivery', async () => {
    vi.useFakeTimers();
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { repeatIntervalMs: 4 * 3_600_000 });
    const once = { ...firingNotice(), key: 'greenlight/rule/tls-expiry-critical#1', repeatIntervalMs: 0 };
    const repeated = { ...firingNotice(), key: 'greenlight/rule/other#1' };
    alerts.notify(once);
    alerts.notify(repeated);
    await vi.advanceTimersByTimeAsync(21 * 86_400_000);
    expect(pager.sent.filter((sent) => sent.key === once.key)).toHaveLength(1);
    // The other notice follows alerts.repeatInterval: every 4 hours for 21 days.
    expect(pager.sent.filter((sent) => sent.key === repeated.key)).toHaveLength(1 + 21 * 6);
    alerts.notify(resolvedNotice(once));
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent.filter((sent) => sent.key === once.key).map((sent) => sent.status)).toEqual(['firing', 'resolved']);
  });

  it("a notice with its own repeat interval repeats at that pace, not the dispatcher's", async () => {
    vi.useFakeTimers();
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { repeatIntervalMs: 3_600_000 });
    alerts.notify({ ...firingNotice(), repeatIntervalMs: 600_000 });
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(pager.sent).toHaveLength(7);
  });

  it('alerts.repeatInterval 0s means never again, not a resend loop (regression: setInterval(…, 0))', async () => {
    vi.useFakeTimers();
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { repeatIntervalMs: 0 });
    alerts.notify(firingNotice());
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pager.sent).toHaveLength(1);
  });

  it('repeats over HTTP with the same PagerDuty dedup_key, then resolves it', async () => {
    const pdServer = await server(pagerDutyService);
    const pd = pagerDutyReceiver.create(
      pagerDutyReceiver.schema.parse({ type: 'pagerduty', routingKey: ROUTING_KEY, url: `${pdServer.origin}/v2/enqueue` }),
      deps(),
    );
    const { dispatcher: alerts, deliveries } = dispatcher([pd], { repeatIntervalMs: 40 });

    alerts.notify(firingNotice());
    await pdServer.waitFor(3);
    alerts.notify(resolvedNotice(firingNotice()));
    await alerts.idle();
    const count = pdServer.received.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(pdServer.received).toHaveLength(count);

    const bodies = pdServer.received.map((request) => request.body);
    expect(bodies.at(-1)).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: firingNotice().key });
    expect(bodies.slice(0, -1).every((body) => body.event_action === 'trigger' && body.dedup_key === firingNotice().key)).toBe(true);
    expect(deliveries.every((delivery) => delivery.ok && delivery.httpStatus === 202)).toBe(true);
  });

  it('sends a resolution to every receiver that got the firing notice', async () => {
    const pager = recorder('pager', ['critical']);
    const chat = recorder('chat', ['warning', 'critical']);
    const { dispatcher: alerts } = dispatcher([pager, chat]);
    const notice = firingNotice();
    alerts.notify(notice);
    await alerts.idle();
    // The resolution says warning, yet the pager that was paged must hear it is over.
    alerts.notify({ ...resolvedNotice(notice), severity: 'warning' });
    await alerts.idle();
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing', 'resolved']);
    expect(chat.sent.map((sent) => sent.status)).toEqual(['firing', 'resolved']);
  });

  it('delivers a resolution for a key it never saw firing, routed by severity', async () => {
    const pager = recorder('pager', ['critical']);
    const chat = recorder('chat', ['warning']);
    const { dispatcher: alerts } = dispatcher([pager, chat]);
    alerts.notify(resolvedNotice(firingNotice({ key: 'from-before-the-restart' })));
    await alerts.idle();
    expect(pager.sent.map((sent) => [sent.key, sent.status])).toEqual([['from-before-the-restart', 'resolved']]);
    expect(chat.sent).toEqual([]);
  });

  it('an alert that fires and resolves before its first notification is still told, once, as resolved (unseen)', async () => {
    const pager = recorder('pager', ['critical']);
    const grouped = recorder('grouped', ['critical']);
    const groups: AlertGroupNotice[] = [];
    grouped.sendGroup = async (group) => {
      groups.push(group);
      return { attempts: 1, status: 200 };
    };
    const { dispatcher: alerts } = dispatcher([pager, grouped]);
    alerts.notify(firingNotice());
    alerts.notify(resolvedNotice(firingNotice()));
    await alerts.idle();
    expect(pager.sent.map((sent) => sent.status)).toEqual(['resolved']);
    expect(groups).toMatchObject([{ status: 'resolved', unseen: [firingNotice().key], alerts: [{ status: 'resolved' }] }]);
    expect(alerts.firing()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await alerts.idle();
    expect(pager.sent).toHaveLength(1);
  });

  it('dates a resolution without endsAt by its clock', async () => {
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { now: () => NOW });
    alerts.notify({ ...resolvedNotice(firingNotice()), endsAt: undefined });
    await alerts.idle();
    expect(pager.sent[0]!.endsAt).toBe('2025-03-14T03:00:00.000Z');
  });

  it('never lets a resolution overtake the firing delivery to the same receiver', async () => {
    let release!: () => void;
    const order: string[] = [];
    const slow = recorder('slow', ['critical'], async (notice) => {
      order.push(`start ${notice.status}`);
      if (notice.status === 'firing') await new Promise<void>((resolve) => (release = resolve));
      order.push(`end ${notice.status}`);
      return { attempts: 1, status: 202 };
    });
    const { dispatcher: alerts, deliveries } = dispatcher([slow]);
    alerts.notify(firingNotice());
    await vi.waitFor(() => expect(order).toEqual(['start firing']));
    // Resolved while its trigger is still being delivered: the resolution waits for it.
    alerts.notify(resolvedNotice(firingNotice()));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(order).toEqual(['start firing']);
    release();
    await alerts.idle();
    expect(order).toEqual(['start firing', 'end firing', 'start resolved', 'end resolved']);
    expect(deliveries.map((delivery) => delivery.notice.status)).toEqual(['firing', 'resolved']);
  });

  it('never stacks repeats behind a delivery still under way: the next comes one interval after it ended', async () => {
    vi.useFakeTimers();
    let release!: () => void;
    const stuck = recorder('stuck', ['critical'], () => new Promise((resolve) => (release = () => resolve({ attempts: 1, status: 200 }))));
    const { dispatcher: alerts } = dispatcher([stuck], { repeatIntervalMs: 1_000 });
    alerts.notify(firingNotice());
    await vi.advanceTimersByTimeAsync(3_500);
    expect(stuck.sent).toHaveLength(1);
    release();
    await vi.advanceTimersByTimeAsync(999);
    expect(stuck.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(stuck.sent).toHaveLength(2);
    // The repeat now hangs too: while it does, nothing more is sent.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(stuck.sent).toHaveLength(2);
    release();
  });

  it('reports failures with attempts, HTTP status and message, and never a secret in deliveries or logs', async () => {
    const slackServer = await server(slackService);
    const pdServer = await server(pagerDutyService);
    const d = deps();
    const slack = slackReceiver.create(
      slackReceiver.schema.parse({ type: 'slack', name: 'desk', url: `${slackServer.origin}/services/T0/B0/${SLACK_TOKEN}`, retries: 1 }),
      d,
    );
    const pd = pagerDutyReceiver.create(
      pagerDutyReceiver.schema.parse({ type: 'pagerduty', name: 'oncall', routingKey: ROUTING_KEY, url: `${pdServer.origin}/v2/enqueue` }),
      d,
    );
    slackServer.script(
      { status: 500, body: `Cannot POST /services/T0/B0/${SLACK_TOKEN}` },
      { status: 404, body: `Cannot POST /services/T0/B0/${SLACK_TOKEN}` },
    );
    pdServer.script({ status: 400, body: JSON.stringify({ status: 'invalid event', errors: [`routing key ${ROUTING_KEY} unknown`] }) });
    const { dispatcher: alerts, deliveries, logLines } = dispatcher([slack, pd]);

    alerts.notify(firingNotice());
    await alerts.idle();
    const byName = Object.fromEntries(deliveries.map((delivery) => [delivery.receiver.name, delivery]));
    expect(byName.desk).toMatchObject({
      ok: false,
      attempts: 2,
      httpStatus: 404,
      error: 'slack receiver "desk": rejected with HTTP 404: Cannot POST [redacted]; not retried, fix the request or its credentials',
    });
    expect(byName.oncall).toMatchObject({
      ok: false,
      attempts: 1,
      httpStatus: 400,
      error: expect.stringContaining('pagerduty receiver "oncall": rejected with HTTP 400'),
    });

    const everything = [JSON.stringify(deliveries.map(({ receiver, ...rest }) => ({ receiver: receiver.name, ...rest }))), ...logLines, ...d.logLines].join(
      '\n',
    );
    expect(d.logLines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(SLACK_TOKEN);
    expect(everything).not.toContain(ROUTING_KEY);
  });

  it('reports a receiver that throws, even synchronously, without notify throwing', async () => {
    const broken: AlertReceiver = {
      name: 'broken',
      type: 'test',
      severities: ['critical'],
      send: () => {
        throw new Error('bug in receiver');
      },
    };
    const fine = recorder('fine', ['critical']);
    const { dispatcher: alerts, deliveries } = dispatcher([broken, fine]);
    expect(() => alerts.notify(firingNotice())).not.toThrow();
    await alerts.idle();
    expect(deliveries.map((delivery) => [delivery.receiver.name, delivery.ok, delivery.attempts, delivery.error])).toEqual(
      expect.arrayContaining([
        ['broken', false, 0, 'bug in receiver'],
        ['fine', true, 1, undefined],
      ]),
    );
  });

  it('keeps delivering when the delivery listener throws', async () => {
    const pager = recorder('pager', ['critical']);
    const logLines: string[] = [];
    const alerts = new AlertDispatcher({
      receivers: [pager],
      repeatIntervalMs: 60_000,
      now: () => NOW,
      logger: pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) }),
      onDelivery: () => {
        throw new Error('listener broke');
      },
    });
    cleanups.push(() => alerts.close());
    alerts.notify(firingNotice());
    alerts.notify(firingNotice({ key: 'second' }));
    await alerts.idle();
    expect(pager.sent).toHaveLength(2);
    expect(logLines.filter((line) => line.includes('alert delivery listener failed'))).toHaveLength(2);
  });

  it('a firing notice sent again under the same key is no news: it replaces what the next repeat says', async () => {
    vi.useFakeTimers();
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager], { repeatIntervalMs: 10_000 });
    alerts.notify(firingNotice({ summary: 'first' }));
    await vi.advanceTimersByTimeAsync(6_000);
    alerts.notify(firingNotice({ summary: 'worse' }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pager.sent.map((sent) => sent.summary)).toEqual(['first']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(pager.sent.map((sent) => sent.summary)).toEqual(['first', 'worse']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pager.sent.map((sent) => sent.summary)).toEqual(['first', 'worse', 'worse']);
    expect(alerts.firing().map((notice) => notice.summary)).toEqual(['worse']);
  });

  it('close() cancels deliveries in flight, reports them failed, stops repeating and drops later notices', async () => {
    vi.useFakeTimers();
    const stuck = recorder('stuck', ['critical'], untilAborted);
    const { dispatcher: alerts, deliveries, logLines } = dispatcher([stuck], { repeatIntervalMs: 1_000 });
    alerts.notify(firingNotice());
    await vi.advanceTimersByTimeAsync(1);
    expect(stuck.sent).toHaveLength(1);

    await alerts.close();
    expect(deliveries).toMatchObject([{ ok: false, attempts: 1, error: expect.stringContaining('cancelled') }]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(stuck.sent).toHaveLength(1);

    alerts.notify(firingNotice({ key: 'late' }));
    await vi.advanceTimersByTimeAsync(1);
    expect(stuck.sent).toHaveLength(1);
    expect(logLines.some((line) => line.includes('dropped: the alert dispatcher is closed'))).toBe(true);
  });

  it('a notice with expiresAt resolves by itself then; raised again it lives on; resolved before, it is not resolved twice', async () => {
    vi.useFakeTimers({ now: NOW });
    const pager = recorder('pager', ['critical']);
    const warnings = recorder('desk', ['warning']);
    const logLines: string[] = [];
    const { dispatcher: alerts } = dispatcher([pager, warnings], { logLines });
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    const refused = firingNotice({ key: 'refused', rule: 'rollback-target-unhealthy', expiresAt: at(300_000) });

    alerts.notify(refused);
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing']);
    // Raised again before it expires: it fires on, until the later time.
    await vi.advanceTimersByTimeAsync(200_000);
    alerts.notify({ ...refused, expiresAt: at(500_000) });
    await vi.advanceTimersByTimeAsync(299_000);
    expect(alerts.firing().map((notice) => notice.key)).toEqual(['refused']);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(alerts.firing()).toEqual([]);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing', 'resolved']);
    expect(pager.sent[1]).toMatchObject({ key: 'refused', endsAt: at(500_000) });
    expect(logLines.some((line) => line.includes('alert rollback-target-unhealthy resolved: it reported a moment'))).toBe(true);
    // A receiver that never heard it fire hears nothing of it.
    expect(warnings.sent).toEqual([]);

    // Resolved before its time: no second resolution when the time comes.
    const other = firingNotice({ key: 'other', expiresAt: at(800_000) });
    alerts.notify(other);
    await vi.advanceTimersByTimeAsync(1);
    alerts.notify(resolvedNotice(other, at(600_000)));
    await vi.advanceTimersByTimeAsync(600_000);
    expect(pager.sent.filter((sent) => sent.key === 'other').map((sent) => sent.status)).toEqual(['firing', 'resolved']);
  });

  it('keeps an expiring alert across a restart: restored past its time, it resolves to those who heard it fire', async () => {
    vi.useFakeTimers({ now: NOW });
    const { saved, open } = oneStore();
    const first = open([recorder('pager', ['critical'])]);
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    // No incident: before, such an alert was not stored, and a restart forgot it firing.
    first.notify(firingNotice({ key: 'refused', expiresAt: at(300_000) }));
    await vi.advanceTimersByTimeAsync(1);
    expect(saved.get('refused')).toMatchObject({ firing: true, sent: { pager: NOW } });
    await first.close();

    await vi.advanceTimersByTimeAsync(400_000);
    const pagerAgain = recorder('pager', ['critical']);
    const second = open([pagerAgain]);
    second.restore([...saved.values()]);
    await vi.advanceTimersByTimeAsync(1);
    expect(second.firing()).toEqual([]);
    expect(pagerAgain.sent.map((sent) => [sent.key, sent.status])).toEqual([['refused', 'resolved']]);
    expect(saved.has('refused')).toBe(false);
  });

  it('restored resolved and never told (a leader killed within the group wait), an alert is still told once, as resolved', async () => {
    vi.useFakeTimers({ now: NOW });
    const pager = recorder('pager', ['critical']);
    const { dispatcher: alerts } = dispatcher([pager]);
    const notice = firingNotice({ incident: 'universe-failing#7' });
    alerts.restore([{ notice: resolvedNotice(notice), firing: false, sent: {} }]);
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent.map((sent) => [sent.key, sent.status])).toEqual([[notice.key, 'resolved']]);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(pager.sent).toHaveLength(1);
  });

  it.each([
    ['the silence expires, then the agent restarts', false],
    ['the silence expires in the same turn as the resolution comes, before the group is looked at', true],
  ])('an alert muted from firing to resolution is never sent, and forgotten: %s (regression: a restart paged PagerDuty for it)', async (_, liftFirst) => {
    vi.useFakeTimers({ now: NOW });
    const { saved, open } = oneStore();
    let silenced = true;
    const policy: NotificationPolicy = {
      muted: () => (silenced ? { by: 'silence', silences: ['s1'] } : undefined),
      receivers: () => 'all',
      decorate: (notice) => notice,
    };
    const pager = recorder('pager', ['critical']);
    const first = open([pager], policy);
    const notice = firingNotice({ incident: 'universe-failing#6' });
    first.notify(notice);
    await vi.advanceTimersByTimeAsync(1_000);
    if (liftFirst) {
      // The silence's end and the resolution come together: the mute as it stood while it fired decides.
      silenced = false;
      first.notify(resolvedNotice(notice));
    } else {
      first.notify(resolvedNotice(notice));
      silenced = false;
    }
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pager.sent).toEqual([]);
    expect(saved.has(notice.key)).toBe(false);
    await first.close();

    const pagerAgain = recorder('pager', ['critical']);
    open([pagerAgain], policy).restore([...saved.values()]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pagerAgain.sent).toEqual([]);
  });

  it('after a restart, a receiver already told of the resolution hears nothing more; only the one still owed it does (regression: PagerDuty was paged again)', async () => {
    vi.useFakeTimers({ now: NOW });
    const { saved, open } = oneStore();
    let hookDown = true;
    const pager = recorder('pager', ['critical']);
    const hook = recorder('hook', ['critical'], async (notice) => {
      if (hookDown && notice.status === 'resolved') throw new AlertError('hook: 500 after 1 attempts', 1);
      return { attempts: 1, status: 200 };
    });
    const first = open([pager, hook]);
    const notice = firingNotice({ incident: 'universe-failing#3' });
    first.notify(notice);
    await vi.advanceTimersByTimeAsync(1);
    first.notify(resolvedNotice(notice));
    await vi.advanceTimersByTimeAsync(1);
    expect(pager.sent.map((sent) => sent.status)).toEqual(['firing', 'resolved']);
    expect(saved.get(notice.key)).toMatchObject({ firing: false, sent: { hook: NOW }, resolvedTo: ['pager'] });
    await first.close();

    hookDown = false;
    const pagerAgain = recorder('pager', ['critical']);
    const hookAgain = recorder('hook', ['critical']);
    open([pagerAgain, hookAgain]).restore([...saved.values()]);
    await vi.advanceTimersByTimeAsync(1);
    expect(pagerAgain.sent).toEqual([]);
    expect(hookAgain.sent.map((sent) => [sent.key, sent.status])).toEqual([[notice.key, 'resolved']]);
    expect(saved.has(notice.key)).toBe(false);
  });

  it.each([
    [400, 1],
    [404, 1],
    [429, 3],
    [500, 3],
  ])('a receiver answering %i: tried %i times over a minute (a refusal is final; regression: a 400 was sent again for ever)', async (status, times) => {
    vi.useFakeTimers({ now: NOW });
    const logLines: string[] = [];
    const refusing = recorder('pager', ['critical'], async () => {
      throw new AlertError(`pager: ${status}`, 1, { cause: new OutboundError(`pager: ${status}`, 1, status) });
    });
    const { dispatcher: alerts, deliveries } = dispatcher([refusing], { logLines });
    alerts.notify(firingNotice());
    await vi.advanceTimersByTimeAsync(60_000);
    expect(refusing.sent).toHaveLength(times);
    expect(deliveries.every((delivery) => !delivery.ok && delivery.httpStatus === status)).toBe(true);
    expect(logLines.some((line) => line.includes('refused the notification for good'))).toBe(times === 1);
  });

  it('a 429 with a long Retry-After holds every notification to that receiver until then, not only its own (regression: 147 a second to a rate-limited webhook)', async () => {
    vi.useFakeTimers({ now: NOW });
    let limited = true;
    const hook = recorder('hook', ['critical'], async () => {
      if (!limited) return { attempts: 1, status: 200 };
      limited = false;
      throw new AlertError('hook: rate limited', 1, { cause: new OutboundError('hook: rate limited', 1, 429, { retryAfterMs: 45_000 }) });
    });
    const other = recorder('other', ['critical']);
    const { dispatcher: alerts } = dispatcher([hook, other]);
    alerts.notify(firingNotice({ key: 'a', rule: 'a' }));
    await vi.advanceTimersByTimeAsync(1_000);
    alerts.notify(firingNotice({ key: 'b', rule: 'b' }));
    await vi.advanceTimersByTimeAsync(43_000);
    expect(hook.sent.map((notice) => notice.key)).toEqual(['a']);
    // Another receiver is not held.
    expect(other.sent.map((notice) => notice.key)).toEqual(['a', 'b']);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(hook.sent.map((notice) => notice.key).sort()).toEqual(['a', 'a', 'b']);
  });

  it('a Retry-After of days holds the receiver for MAX_RATE_LIMIT_HOLD_MS, then tries it again (regression: one 429 muted a pager for 11 days)', async () => {
    vi.useFakeTimers({ now: NOW });
    let limited = true;
    const hook = recorder('hook', ['critical'], async () => {
      if (!limited) return { attempts: 1, status: 200 };
      limited = false;
      throw new AlertError('hook: rate limited', 1, { cause: new OutboundError('hook: rate limited', 1, 429, { retryAfterMs: 3_000_000_000 }) });
    });
    const { dispatcher: alerts, logLines } = dispatcher([hook]);
    const timers = vi.spyOn(globalThis, 'setTimeout');
    alerts.notify(firingNotice({ key: 'a', rule: 'a' }));
    await vi.advanceTimersByTimeAsync(1_000);
    alerts.notify(firingNotice({ key: 'b', rule: 'b' }));
    await vi.advanceTimersByTimeAsync(10_000);
    // Held, without a timer armed every millisecond (regression: a delay past 2^31 - 1 ms fired at once, ~1,000 a second).
    expect(timers.mock.calls.length).toBeLessThan(20);
    expect(hook.sent.map((notice) => notice.key)).toEqual(['a']);
    expect(logLines.some((line) => line.includes('asks for 3000000s: nothing more is sent to it for 600s'))).toBe(true);
    await vi.advanceTimersByTimeAsync(MAX_RATE_LIMIT_HOLD_MS);
    expect(hook.sent.map((notice) => notice.key).sort()).toEqual(['a', 'a', 'b']);
  });

  it('a group due more than 24.8 days ahead (a repeat interval of 30 days) arms no timer that fires at once (regression: a 1 ms loop)', async () => {
    vi.useFakeTimers({ now: NOW });
    const hook = recorder('hook', ['critical']);
    const { dispatcher: alerts } = dispatcher([hook], { repeatIntervalMs: 30 * 86_400_000 });
    alerts.notify(firingNotice());
    await vi.advanceTimersByTimeAsync(1_000);
    expect(hook.sent).toHaveLength(1);
    const timers = vi.spyOn(globalThis, 'setTimeout');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(timers.mock.calls.length).toBeLessThan(5);
    expect(hook.sent).toHaveLength(1);
  });

  it("an alert that fired and resolved within the group wait goes out with what it fired on, not the resolution's figures (regression: the page said observed 0)", async () => {
    vi.useFakeTimers({ now: NOW });
    const pager = recorder('pager', ['critical']);
    const alerts = new AlertDispatcher({
      receivers: [pager],
      repeatIntervalMs: 3_600_000,
      now: () => Date.now(),
      logger: pino({ level: 'silent' }),
      onDelivery: () => undefined,
      grouping: { by: ['rule'], waitMs: 30_000, intervalMs: 300_000 },
    });
    cleanups.push(() => alerts.close());
    const fired = firingNotice();
    alerts.notify(fired);
    await vi.advanceTimersByTimeAsync(1_000);
    alerts.notify({ ...resolvedNotice(fired), figures: { facts: [{ fact: 'errorRatio', observed: 0, result: false }] } });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pager.sent).toHaveLength(1);
    expect(pager.sent[0]).toMatchObject({ status: 'resolved', summary: fired.summary, figures: fired.figures });
  });

  it('idle() resolves at once when nothing is in flight', async () => {
    const { dispatcher: alerts } = dispatcher([]);
    await expect(alerts.idle()).resolves.toBeUndefined();
    alerts.notify(firingNotice());
    await expect(alerts.idle()).resolves.toBeUndefined();
  });
});

describe('AlertDispatcher of a cluster agent (acting)', () => {
  it('sends nothing while it does not lead (no grouped send, no escalation, no repeat); what is owed goes out once it leads', async () => {
    let leads = false;
    const desk = recorder('desk', ['warning', 'critical']);
    const deliveries: AlertDelivery[] = [];
    const alerts = new AlertDispatcher({
      receivers: [desk],
      repeatIntervalMs: 1,
      now: () => Date.now(),
      logger: pino({ level: 'silent' }),
      onDelivery: (delivery) => void deliveries.push(delivery),
      grouping: { by: ['rule'], waitMs: 0, intervalMs: 0 },
      acting: () => leads,
    });
    cleanups.push(() => alerts.close());

    alerts.notify(firingNotice({ incident: 'error-ratio-critical#1' }));
    alerts.notify(firingNotice({ key: 'other', incident: 'error-ratio-critical#1' }));
    expect(alerts.escalate('error-ratio-critical#1', 2, 'all')).toBe(1);
    await alerts.idle();
    expect(desk.sent).toEqual([]);
    expect(deliveries).toEqual([]);

    leads = true;
    alerts.recheck();
    await vi.waitFor(() => expect(deliveries.length).toBeGreaterThan(0));
    expect(desk.sent.slice(0, 2).map((notice) => notice.key)).toEqual([firingNotice().key, 'other']);
    // It leads: the repeat (every millisecond here) goes out.
    await vi.waitFor(() => expect(deliveries.length).toBeGreaterThan(1));

    // Deposed again: no repeat is sent any more.
    leads = false;
    await alerts.idle();
    const before = desk.sent.length;
    vi.useFakeTimers();
    alerts.recheck();
    await vi.advanceTimersByTimeAsync(1_000);
    await alerts.idle();
    expect(desk.sent).toHaveLength(before);
  });
});

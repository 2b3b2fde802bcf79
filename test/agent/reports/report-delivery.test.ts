/**
 * Scheduled reports: the `reports:` config (checked with key paths and lines), the schedule's
 * next run in its time zone, and a real agent posting the Markdown summary to local fakes of
 * Slack, Discord and a webhook (each speaking its documented wire format), a failing receiver
 * recorded as report.failed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { loadAgentConfig, parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { AlertReceiver } from '../../../agent/alerts/alert-receiver.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import type { Report } from '../../../agent/reports/report-builder.js';
import { receiversSwitchedOff } from '../../../agent/reports/report-config.js';
import { ReportDelivery } from '../../../agent/reports/report-delivery.js';
import { startPair, waitUntil } from '../../helpers/agent-harness.js';
import { startRecorder } from '../../helpers/recorder.js';
import { writeSyntheticHistory } from '../../helpers/synthetic-history.js';
import { tempDir } from '../../helpers/tools.js';

const BASE = `listen: 127.0.0.1:0
environments:
  blue: { url: "http://127.0.0.1:1" }
  green: { url: "http://127.0.0.1:2" }
probes:
  - { name: health, path: /api/health }
`;
const RECEIVERS = `alerts:
  receivers:
    - { type: slack, url: "https://hooks.slack.example/T/B/X" }
    - { type: pagerduty, routingKey: "0123456789abcdef0123456789abcdef" }
    - { type: discord, url: "\${DISCORD_WEBHOOK_URL}" }
`;

describe('the reports config', () => {
  it('defaults: no schedule; rollups kept 90 days, under 256 MiB, minutes for a day', () => {
    const config = parseAgentConfig(BASE);
    expect(config.reports).toEqual([]);
    expect(config.rollups.retention).toEqual({ maxAge: 90 * 86_400_000, maxSize: 256 * 1_048_576, minuteAge: 86_400_000, every: 600_000 });
  });

  it('takes a weekly schedule, Monday 08:00 New York time, posting to a receiver that is on and one that is off', () => {
    const config = parseAgentConfig(
      `${BASE}${RECEIVERS}reports:\n  - { name: weekly, cron: "0 8 * * 1", timezone: America/New_York, since: 7d, receivers: [slack, discord] }\n`,
      {},
    );
    expect(config.reports).toEqual([
      { name: 'weekly', cron: '0 8 * * 1', timezone: 'America/New_York', since: 7 * 86_400_000, receivers: ['slack', 'discord'] },
    ]);
    // discord's variable is unset: it is off, which is a notice at start, not an error.
    expect(receiversSwitchedOff(config).get('discord')).toEqual({ type: 'discord', variables: 'DISCORD_WEBHOOK_URL' });
  });

  it.each([
    [
      'reports:\n  - { cron: "0 8 * * 1", receivers: [pager] }\n',
      'reports[0].receivers[0]: "pager" is not a receiver of alerts.receivers; use one of slack, pagerduty (line',
    ],
    [
      'reports:\n  - { cron: "0 8 * * 1", receivers: [pagerduty] }\n',
      'reports[0].receivers[0]: "pagerduty" is a pagerduty receiver, which takes alerts only; post reports to a slack, discord, webhook receiver',
    ],
    [
      'reports:\n  - { cron: "every monday", receivers: [slack] }\n',
      'reports[0].cron: "every monday" is not a cron expression such as "0 8 * * 1" (Mondays 08:00)',
    ],
    ['reports:\n  - { cron: "0 8 * * 1", timezone: Mars/Olympus, receivers: [slack] }\n', 'reports[0].timezone: "Mars/Olympus" is not an IANA time zone'],
    ['reports:\n  - { cron: "0 8 * * 1", since: 0d, receivers: [slack] }\n', 'reports[0].since: must be from 1m to 400d'],
    ['reports:\n  - { cron: "0 8 * * 1", receivers: [] }\n', 'reports[0].receivers: needs at least one receiver name from alerts.receivers'],
    ['reports:\n  - { cron: "0 8 * * 1", receivers: [slack], channel: ops }\n', 'reports[0].channel: unknown key'],
    [
      'reports:\n  - { name: weekly, cron: "0 8 * * 1", receivers: [slack] }\n  - { name: weekly, cron: "0 9 * * 1", receivers: [slack] }\n',
      'reports[1].name: "weekly" is already the name of reports[0]',
    ],
    ['rollups: { retention: { minuteAge: 1h } }\n', 'rollups.retention.minuteAge: must be at least 2h'],
    ['rollups: { retention: { maxSize: lots } }\n', 'rollups.retention.maxSize: "lots" is not a size'],
  ])('refuses %j naming the key', (yaml, message) => {
    expect(() => parseAgentConfig(`${BASE}${RECEIVERS}${yaml}`, {})).toThrow(message);
  });
});

describe('a report schedule', () => {
  it('next posts on a Monday at 08:00 in its time zone', async () => {
    const delivery = new ReportDelivery({
      build: () => Promise.reject(new Error('not now')),
      receiver: () => undefined,
      switchedOff: () => undefined,
      link: () => undefined,
      publish: () => undefined,
      logger: pino({ level: 'silent' }),
    });
    onTestFinished(() => delivery.close());
    delivery.schedule([{ name: 'weekly', cron: '0 8 * * 1', timezone: 'America/New_York', sinceMs: 7 * 86_400_000, receivers: ['slack'] }]);
    const next = delivery.nextRun('weekly')!;
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
        .formatToParts(next)
        .map((p) => [p.type, p.value]),
    );
    expect(parts).toMatchObject({ weekday: 'Mon', hour: '08', minute: '00' });
    expect(next).toBeGreaterThan(Date.now());
    expect(next - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
  });

  it('replaced by new schedules, the old ones stop', () => {
    const delivery = new ReportDelivery({
      build: () => Promise.reject(new Error('not now')),
      receiver: () => undefined,
      switchedOff: () => undefined,
      link: () => undefined,
      publish: () => undefined,
      logger: pino({ level: 'silent' }),
    });
    onTestFinished(() => delivery.close());
    delivery.schedule([{ name: 'a', cron: '0 8 * * 1', timezone: 'UTC', sinceMs: 86_400_000, receivers: ['slack'] }]);
    expect(delivery.nextRun('a')).toBeDefined();
    delivery.schedule([{ name: 'b', cron: '0 9 * * *', timezone: 'UTC', sinceMs: 86_400_000, receivers: ['slack'] }]);
    expect(delivery.nextRun('a')).toBeUndefined();
    expect(delivery.nextRun('b')).toBeDefined();
  });

  it('records a report it could not build as report.failed for each receiver, and posts nothing', async () => {
    const events: { type: string; data: unknown }[] = [];
    const posted: string[] = [];
    const receiver = {
      name: 'slack',
      type: 'slack',
      severities: [],
      send: () => Promise.resolve({ attempts: 1 }),
      post: (m: { markdown: string }) => (posted.push(m.markdown), Promise.resolve({ attempts: 1, parts: 1 })),
    } as unknown as AlertReceiver;
    const delivery = new ReportDelivery({
      build: () => Promise.reject(new Error('the journal is unreadable')),
      receiver: () => receiver,
      switchedOff: () => undefined,
      link: () => undefined,
      publish: (e) => events.push(e),
      logger: pino({ level: 'silent' }),
    });
    await delivery.deliver({ name: 'weekly', cron: '0 8 * * 1', timezone: 'UTC', sinceMs: 86_400_000, receivers: ['slack'] });
    expect(posted).toEqual([]);
    expect(events).toMatchObject([{ type: 'report.failed', data: { schedule: 'weekly', receiver: 'slack', error: 'the journal is unreadable' } }]);
  });
});

describe('scheduled delivery from a running agent', () => {
  it('posts the Markdown summary to Slack (mrkdwn), Discord (messages of 2,000 characters) and a webhook (JSON), and records each', async () => {
    const recorder = await startRecorder((path) => (path === '/broken' ? 400 : 200));
    onTestFinished(() => recorder.close());
    const extra = `alerts:
  externalUrl: https://greenlight.desk.example
  receivers:
    - { type: slack, url: "${recorder.url}/slack" }
    - { type: discord, url: "${recorder.url}/discord" }
    - { type: webhook, name: hook, url: "${recorder.url}/hook" }
    - { type: slack, name: broken, url: "${recorder.url}/broken", retries: 0 }
reports:
  - { name: weekly, cron: "* * * * * *", since: 30d, receivers: [slack, discord, hook, broken] }
`;
    const h = await startPair({ dataDir: writeSyntheticHistory().dataDir, extra, every: '1s' });
    onTestFinished(() => h.close());
    const delivered = (type: string, receiver: string) =>
      h.events.find((e) => e.type === type && (e.data as { receiver?: string }).receiver === receiver) as
        (GreenlightEvent & { data: Record<string, unknown> }) | undefined;
    await waitUntil(
      () => ['slack', 'discord', 'hook'].every((r) => delivered('report.sent', r)) && delivered('report.failed', 'broken') !== undefined,
      'the first scheduled report at every receiver',
    );

    const slackParts = delivered('report.sent', 'slack')!.data.parts as number;
    const slackMessages = recorder.requests
      .filter((r) => r.path === '/slack')
      .slice(0, slackParts)
      .map((r) => (r.body as { text: string }).text);
    for (const text of slackMessages) expect(text.length).toBeLessThanOrEqual(3_900);
    const slack = { text: slackMessages.join('\n') };
    expect(slack.text.split('\n')[0]).toBe('*greenlight report: the last 30d*');
    expect(slack.text).toContain('- *Deployments:* 9 promotions: 5 succeeded, 2 failed, 2 rolled back: *56 % success* (1 unfinished)');
    expect(slack.text).not.toContain('**');
    expect(slack.text).toContain('Full report with charts: https://greenlight.desk.example/api/v1/report?since=30d&amp;format=html');

    const discordEvent = delivered('report.sent', 'discord')!;
    const parts = discordEvent.data.parts as number;
    expect(parts).toBeGreaterThan(1);
    const discord = recorder.requests
      .filter((r) => r.path === '/discord')
      .slice(0, parts)
      .map((r) => r.body as { content: string; allowed_mentions: unknown });
    for (const message of discord) {
      expect(message.content.length).toBeLessThanOrEqual(2_000);
      expect(message.allowed_mentions).toEqual({ parse: [] });
    }
    expect(discord[0]!.content.split('\n')[0]).toBe('## greenlight report: the last 30d');
    expect(discord.map((m) => m.content).join('\n')).toContain('### Incidents');

    const hook = recorder.requests.find((r) => r.path === '/hook')!.body as { version: string; title: string; text: string; data: Report };
    expect(hook).toMatchObject({ version: 'greenlight.text/1', title: 'greenlight report: the last 30d' });
    expect(hook.text).toMatch(/^## greenlight report: the last 30d\n/);
    expect(hook.data.deployments).toMatchObject({ total: 9, succeeded: 5 });

    expect(delivered('report.sent', 'slack')!.data).toMatchObject({
      schedule: 'weekly',
      receiverType: 'slack',
      since: '30d',
      attempts: slackParts,
      parts: slackParts,
      httpStatus: 200,
    });
    const failed = delivered('report.failed', 'broken')!;
    expect(failed.severity).toBe('warning');
    expect(failed.data).toMatchObject({ schedule: 'weekly', receiver: 'broken', attempts: 1 });
    expect(String(failed.data.error)).toMatch(/400/);
    expect(failed.message).not.toContain(recorder.url);
  });
});

describe('a reload', () => {
  it('applies the new schedules: a report added by a reload is posted', async () => {
    const recorder = await startRecorder();
    onTestFinished(() => recorder.close());
    const file = join(tempDir(), 'greenlight.yaml');
    const text = (reports: string) => `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: "http://127.0.0.1:1" }
  green: { url: "http://127.0.0.1:2" }
probeDefaults: { every: 1s, timeout: 100ms }
alerts:
  receivers:
    - { type: webhook, name: hook, url: "${recorder.url}/hook" }
reports: ${reports}
probes:
  - { name: health, path: /api/health }
`;
    writeFileSync(file, text('[]'));
    const agent = new Agent({
      config: await loadAgentConfig(file, {}),
      logger: pino({ level: 'silent' }),
      reloadConfig: () => loadAgentConfig(file, {}),
      configSource: file,
    });
    const events: GreenlightEvent[] = [];
    agent.bus.subscribe((event) => events.push(event));
    await agent.start();
    onTestFinished(() => agent.close());
    writeFileSync(file, text('[{ name: often, cron: "* * * * * *", since: 1h, receivers: [hook] }]'));
    const reloaded = await agent.reload('test');
    expect(reloaded).toMatchObject({ ok: true, components: expect.arrayContaining(['reports']) });
    await waitUntil(() => events.some((e) => e.type === 'report.sent'), 'a report from the schedule the reload added');
    expect(recorder.requests.some((r) => r.path === '/hook')).toBe(true);
  });
});

describe('scheduled reports in a cluster', () => {
  it("posts nothing at a schedule's tick while this agent does not lead, and posts once it leads", async () => {
    let leads = false;
    let asked = 0;
    let builds = 0;
    const delivery = new ReportDelivery({
      build: () => {
        builds++;
        return Promise.reject(new Error('not now'));
      },
      receiver: () => undefined,
      switchedOff: () => undefined,
      link: () => undefined,
      publish: () => undefined,
      logger: pino({ level: 'silent' }),
      acting: () => {
        asked++;
        return leads;
      },
    });
    onTestFinished(() => delivery.close());
    delivery.schedule([{ name: 'every-second', cron: '* * * * * *', timezone: 'UTC', sinceMs: 86_400_000, receivers: ['slack'] }]);
    await waitUntil(() => asked >= 2, 'two ticks of the schedule');
    expect(builds).toBe(0);
    leads = true;
    await waitUntil(() => builds > 0, 'a tick that builds the report, now that it leads');
  });
});

import { describe, expect, it } from 'vitest';
import { slackMessage, slackReceiver, SlackReceiverSchema } from '../../../agent/alerts/slack-receiver.js';
import { firingNotice, resolvedNotice, slackService, useFakeService } from './fake-server.js';

const TOKEN = 'sEcReTsLaCkToKeN01234567';
const fake = useFakeService(slackService);

const signal = () => new AbortController().signal;

describe('slack receiver config', () => {
  it('fills the defaults', () => {
    expect(SlackReceiverSchema.parse({ type: 'slack', url: 'https://hooks.slack.com/services/T0/B0/abc' })).toEqual({
      type: 'slack',
      name: 'slack',
      severities: ['warning', 'critical'],
      timeout: 5_000,
      retries: 3,
      url: 'https://hooks.slack.com/services/T0/B0/abc',
    });
  });

  it.each([
    [{ type: 'slack' }, 'url'],
    [{ type: 'slack', url: 'ftp://hooks.slack.com/x' }, 'url'],
    [{ type: 'slack', url: 'https://x.test', timeout: '5x' }, 'timeout'],
    [{ type: 'slack', url: 'https://x.test', retries: -1 }, 'retries'],
    [{ type: 'slack', url: 'https://x.test', retries: 1.5 }, 'retries'],
    [{ type: 'slack', url: 'https://x.test', severities: ['page'] }, 'severities'],
    [{ type: 'slack', url: 'https://x.test', severities: [] }, 'severities'],
    [{ type: 'slack', url: 'https://x.test', name: 'Desk Channel' }, 'name'],
    [{ type: 'slack', url: 'https://x.test', channel: '#desk' }, ''],
  ])('rejects %j, naming %s', (block, path) => {
    const result = SlackReceiverSchema.safeParse(block);
    expect(result.success).toBe(false);
    const issue = result.error!.issues[0]!;
    if (path === '') expect(issue).toMatchObject({ code: 'unrecognized_keys', keys: ['channel'] });
    else expect(issue.path[0]).toBe(path);
  });
});

describe('slack receiver', () => {
  it('posts text and blocks that show severity, status, rule, environment, summary, figures, what was done and the link', async () => {
    const receiver = slackReceiver.create(
      SlackReceiverSchema.parse({ type: 'slack', name: 'desk', url: `${fake.server.origin}/services/T0/B0/${TOKEN}` }),
      fake.deps,
    );
    expect(await receiver.send(firingNotice(), signal())).toEqual({ attempts: 1, status: 200 });
    expect(fake.server.received).toHaveLength(1);
    const request = fake.server.received[0]!;
    expect(request.path).toBe(`/services/T0/B0/${TOKEN}`);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.body).toEqual({
      text: '🔴 [FIRING · CRITICAL] error-ratio-critical on blue: error ratio 42% on blue (live) over 5m',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '🔴 FIRING: error-ratio-critical on blue', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: '*error ratio 42% on blue (live) over 5m*' } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Severity*\n🔴 critical' },
            { type: 'mrkdwn', text: '*Status*\nFIRING' },
            { type: 'mrkdwn', text: '*Rule*\nerror-ratio-critical' },
            { type: 'mrkdwn', text: '*Environment*\nblue' },
          ],
        },
        { type: 'section', text: { type: 'mrkdwn', text: '*Figures*\n• errorRatio(window=5m): 0.4212 (&gt; 0.1)\n• samples: 60\n• env: blue' } },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: '*What greenlight did*\nRolled back: traffic switched from blue to green; emergency flags set (ALPHASTACK_PROTECTION on). Check the blue deployment logs.',
          },
        },
        { type: 'section', text: { type: 'mrkdwn', text: '<http://greenlight.internal:9464/api/v1/state|Open greenlight state>' } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'started 2025-03-14T02:55:00.000Z · key error-ratio-critical:blue:1741921200000 · team=desk' }] },
      ],
    });
  });

  it('says RESOLVED with a check mark, how long it fired and when it ended', () => {
    const message = slackMessage(resolvedNotice(firingNotice()));
    expect(message.text).toBe('✅ [RESOLVED · CRITICAL] error-ratio-critical on blue: error ratio back to 0.5% on green (live)');
    expect(message.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: '✅ RESOLVED: error-ratio-critical on blue', emoji: true } });
    expect(message.blocks[2]).toMatchObject({
      fields: expect.arrayContaining([
        { type: 'mrkdwn', text: '*Status*\nRESOLVED' },
        { type: 'mrkdwn', text: '*Firing for*\n12m 30s' },
      ]),
    });
    expect(JSON.stringify(message.blocks.at(-1))).toContain('resolved 2025-03-14T03:07:30.000Z');
  });

  it('marks a warning with its own emoji and a notice about greenlight itself without an environment', () => {
    const message = slackMessage(firingNotice({ severity: 'warning', env: null, rule: 'rollback-inconclusive', url: undefined }));
    expect(message.text.startsWith('🟠 [FIRING · WARNING] rollback-inconclusive: ')).toBe(true);
    expect(JSON.stringify(message.blocks)).toContain('*Environment*\\n(greenlight itself)');
    expect(JSON.stringify(message.blocks)).not.toContain('Open greenlight state');
  });

  it('escapes Slack markup so a summary cannot ping a channel', () => {
    const message = slackMessage(firingNotice({ summary: 'latency <!channel> & co > 5s' }));
    expect(message.text).toContain('latency &lt;!channel&gt; &amp; co &gt; 5s');
    expect(JSON.stringify(message)).not.toContain('<!channel>');
  });

  it('keeps long texts within Slack limits, so Slack accepts them', async () => {
    const receiver = slackReceiver.create(SlackReceiverSchema.parse({ type: 'slack', url: `${fake.server.origin}/services/T0/B0/${TOKEN}` }), fake.deps);
    const long = firingNotice({ rule: `r${'x'.repeat(200)}`, summary: '€'.repeat(5_000), description: 'd'.repeat(10_000) });
    expect(await receiver.send(long, signal())).toEqual({ attempts: 1, status: 200 });
  });
});

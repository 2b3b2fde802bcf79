import { describe, expect, it } from 'vitest';
import { AlertError } from '../../../agent/alerts/alert-receiver.js';
import { DISCORD_COLORS, discordMessage, discordReceiver, DiscordReceiverSchema, discordRetryAfter } from '../../../agent/alerts/discord-receiver.js';
import { discordService, firingNotice, resolvedNotice, useFakeService } from './fake-server.js';

const TOKEN = 'sEcReTdIsCoRdToKeN_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ';
const fake = useFakeService(discordService);

const signal = () => new AbortController().signal;
const create = (block: Record<string, unknown> = {}) =>
  discordReceiver.create(
    DiscordReceiverSchema.parse({ type: 'discord', name: 'ops', url: `${fake.server.origin}/api/webhooks/1234567890123456789/${TOKEN}`, ...block }),
    fake.deps,
  );

describe('discord receiver config', () => {
  it('fills the defaults', () => {
    expect(DiscordReceiverSchema.parse({ type: 'discord', url: 'https://discord.com/api/webhooks/1/abc' })).toEqual({
      type: 'discord',
      name: 'discord',
      severities: ['warning', 'critical'],
      timeout: 5_000,
      retries: 3,
      url: 'https://discord.com/api/webhooks/1/abc',
    });
  });

  it.each([
    [{ type: 'discord' }, 'url'],
    [{ type: 'discord', url: 'not a url' }, 'url'],
    [{ type: 'discord', url: 'https://x.test', timeout: 5 }, 'timeout'],
    [{ type: 'discord', url: 'https://x.test', severities: 'critical' }, 'severities'],
  ])('rejects %j, naming %s', (block, path) => {
    const result = DiscordReceiverSchema.safeParse(block);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path[0]).toBe(path);
  });
});

describe('discord receiver', () => {
  it('posts content and an embed with title, link, colour, fields and timestamp', async () => {
    expect(await create().send(firingNotice(), signal())).toEqual({ attempts: 1, status: 204 });
    expect(fake.server.received[0]!.body).toEqual({
      content: '🔴 **FIRING** · CRITICAL · error-ratio-critical on blue: error ratio 42% on blue (live) over 5m',
      embeds: [
        {
          title: '🔴 FIRING: error-ratio-critical on blue',
          url: 'http://greenlight.internal:9464/api/v1/state',
          description:
            '**error ratio 42% on blue (live) over 5m**\n\n**What greenlight did**\nRolled back: traffic switched from blue to green; emergency flags set (ALPHASTACK\\_PROTECTION on). Check the blue deployment logs.',
          color: 0xe01e1e,
          fields: [
            { name: 'Severity', value: '🔴 critical', inline: true },
            { name: 'Status', value: 'FIRING', inline: true },
            { name: 'Environment', value: 'blue', inline: true },
            { name: 'Rule', value: 'error-ratio-critical', inline: true },
            { name: 'Figures', value: '• errorRatio(window=5m): 0.4212 (> 0.1)\n• samples: 60\n• env: blue', inline: false },
            { name: 'Labels', value: 'team=desk', inline: false },
          ],
          timestamp: '2025-03-14T02:55:00.000Z',
          footer: { text: 'greenlight · key error-ratio-critical:blue:1741921200000' },
        },
      ],
      allowed_mentions: { parse: [] },
    });
  });

  it.each([
    ['critical firing', firingNotice(), DISCORD_COLORS.critical],
    ['warning firing', firingNotice({ severity: 'warning' }), DISCORD_COLORS.warning],
    ['resolved', resolvedNotice(firingNotice()), DISCORD_COLORS.resolved],
  ])('colours a %s notice', (_name, notice, color) => {
    expect((discordMessage(notice).embeds as { color: number }[])[0]!.color).toBe(color);
  });

  it('shows markdown from a remote answer as text: no masked link, mention tag, heading or quote (regression: a probe answer put a "Click here to acknowledge" link before the on-call)', () => {
    const remote = '[Click here to acknowledge](http://evil.example/ack) <@&123> <#456>\n# HEAD\n> quote\n-# small';
    const message = discordMessage(firingNotice({ description: `verification failed: ${remote}`, summary: 'universe [x](http://y) on blue' }));
    const embed = (message.embeds as { description: string }[])[0]!;
    expect(embed.description).toContain('\\[Click here to acknowledge\\](http://evil.example/ack) \\<@&123> \\<#456>\n\\# HEAD\n\\> quote\n\\-# small');
    expect(embed.description).not.toMatch(/(^|[^\\])\[Click/);
    expect(message.content).toContain('universe \\[x\\](http://y) on blue');
  });

  it('dates a resolved embed at its end and says how long it fired', () => {
    const embed = (discordMessage(resolvedNotice(firingNotice())).embeds as Record<string, unknown>[])[0]!;
    expect(embed.title).toBe('✅ RESOLVED: error-ratio-critical on blue');
    expect(embed.timestamp).toBe('2025-03-14T03:07:30.000Z');
    expect(embed.fields).toContainEqual({ name: 'Firing for', value: '12m 30s', inline: true });
  });

  it('keeps long texts within Discord limits, so Discord accepts them', async () => {
    const long = firingNotice({
      key: 'k'.repeat(3_000),
      rule: 'r'.repeat(300),
      summary: 's'.repeat(3_000),
      description: 'd'.repeat(10_000),
      figures: { big: 'x'.repeat(5_000) },
      labels: { big: 'l'.repeat(5_000) },
    });
    expect(await create().send(long, signal())).toEqual({ attempts: 1, status: 204 });
  });

  it('waits for retry_after from the 429 body when the Retry-After header is missing', async () => {
    fake.server.script({
      status: 429,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'You are being rate limited.', retry_after: 1.5, global: false }),
    });
    expect(await create().send(firingNotice(), signal())).toEqual({ attempts: 2, status: 204 });
    expect(fake.deps.sleeps).toEqual([1_500]);
  });

  it('prefers the Retry-After header to the body', async () => {
    fake.server.script({ status: 429, headers: { 'content-type': 'application/json', 'retry-after': '2' }, body: JSON.stringify({ retry_after: 9 }) });
    await create().send(firingNotice(), signal());
    expect(fake.deps.sleeps).toEqual([2_000]);
  });

  it('reads retry_after only from a JSON body that has it', () => {
    expect(discordRetryAfter('{"retry_after":0.25}')).toBe(250);
    expect(discordRetryAfter('{"retry_after":"soon"}')).toBeUndefined();
    expect(discordRetryAfter('<html>429</html>')).toBeUndefined();
  });

  it('does not retry a 400 and hides the webhook token', async () => {
    fake.server.script({
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 50035, message: `Invalid Form Body for webhook ${TOKEN}` }),
    });
    const error: unknown = await create()
      .send(firingNotice(), signal())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlertError);
    expect(error).toMatchObject({ attempts: 1, message: expect.stringContaining('discord receiver "ops": rejected with HTTP 400') });
    expect((error as Error).message).not.toContain(TOKEN);
    expect(fake.server.received).toHaveLength(1);
  });
});

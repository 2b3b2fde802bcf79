import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertError, type AlertReceiver } from '../../../agent/alerts/alert-receiver.js';
import { discordReceiver } from '../../../agent/alerts/discord-receiver.js';
import { pagerDutyReceiver } from '../../../agent/alerts/pagerduty-receiver.js';
import { OutboundError, retryPolicyOf } from '../../../agent/plugins/outbound.js';
import { slackReceiver } from '../../../agent/alerts/slack-receiver.js';
import { webhookReceiver } from '../../../agent/alerts/webhook-receiver.js';
import { ALERT_RECEIVERS, PLUGIN_SCHEMAS } from '../../../agent/plugins/registry.js';
import { ConfigError } from '../../../config/errors.js';
import { parseConfig } from '../../../config/load-config.js';
import { Redactor, secretsOfUrl } from '../../../config/redactor.js';
import { buildConfigSchema } from '../../../config/schema.js';
import {
  alertmanagerService,
  discordService,
  firingNotice,
  pagerDutyService,
  slackService,
  startFakeServer,
  testDeps,
  type FakeServer,
  type Service,
  type TestDeps,
} from './fake-server.js';

const SLACK_TOKEN = 'sEcReTsLaCkToKeN01234567';
const DISCORD_TOKEN = 'sEcReTdIsCoRdToKeN_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ';
const ROUTING_KEY = 'R0uT1nGkEy0123456789abcdefABCDEF';
const HOOK_TOKEN = 'sEcReThOoKtOkEnXYZ';

interface Case {
  type: string;
  service: Service;
  /** The secret a leak would show, and the receiver built against `origin`. */
  secret: string;
  /** What a misrouted request's error page would echo. */
  path: string;
  build: (origin: string, deps: TestDeps, block: Record<string, unknown>) => AlertReceiver;
  okStatus: number;
}

const CASES: Case[] = [
  {
    type: 'slack',
    service: slackService,
    secret: SLACK_TOKEN,
    path: `/services/T0/B0/${SLACK_TOKEN}`,
    build: (origin, deps, block) =>
      slackReceiver.create(slackReceiver.schema.parse({ type: 'slack', name: 'desk', url: `${origin}/services/T0/B0/${SLACK_TOKEN}`, ...block }), deps),
    okStatus: 200,
  },
  {
    type: 'discord',
    service: discordService,
    secret: DISCORD_TOKEN,
    path: `/api/webhooks/1234567890123456789/${DISCORD_TOKEN}`,
    build: (origin, deps, block) =>
      discordReceiver.create(
        discordReceiver.schema.parse({ type: 'discord', name: 'desk', url: `${origin}/api/webhooks/1234567890123456789/${DISCORD_TOKEN}`, ...block }),
        deps,
      ),
    okStatus: 204,
  },
  {
    type: 'pagerduty',
    service: pagerDutyService,
    secret: ROUTING_KEY,
    path: '/v2/enqueue',
    build: (origin, deps, block) =>
      pagerDutyReceiver.create(
        pagerDutyReceiver.schema.parse({ type: 'pagerduty', name: 'desk', routingKey: ROUTING_KEY, url: `${origin}/v2/enqueue`, ...block }),
        deps,
      ),
    okStatus: 202,
  },
  {
    type: 'webhook',
    service: alertmanagerService,
    secret: HOOK_TOKEN,
    path: `/hooks/${HOOK_TOKEN}`,
    build: (origin, deps, block) =>
      webhookReceiver.create(webhookReceiver.schema.parse({ type: 'webhook', name: 'desk', url: `${origin}/hooks/${HOOK_TOKEN}`, ...block }), deps),
    okStatus: 200,
  },
];

let server: FakeServer | undefined;
let deps: TestDeps | undefined;
afterEach(async () => {
  await deps?.dispatcher.destroy();
  await server?.close();
  server = undefined;
  deps = undefined;
});

async function setUp(c: Case, block: Record<string, unknown> = {}) {
  server = await startFakeServer(c.service);
  deps = testDeps();
  return { server, deps, receiver: c.build(server.origin, deps, block) };
}

const signal = () => new AbortController().signal;
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.fail('expected AlertError'),
    (error: unknown) => error as AlertError,
  );

describe.each(CASES)('$type receiver delivery', (c) => {
  it('retries a 500 and delivers on the second attempt', async () => {
    const { server, deps, receiver } = await setUp(c);
    server.script({ status: 500, body: 'internal error' });
    expect(await receiver.send(firingNotice(), signal())).toEqual({ attempts: 2, status: c.okStatus });
    expect(server.received).toHaveLength(2);
    expect(server.received[1]!.body).toEqual(server.received[0]!.body);
    expect(deps.sleeps).toHaveLength(1);
    expect(deps.sleeps[0]).toBeGreaterThanOrEqual(400);
    expect(deps.sleeps[0]).toBeLessThanOrEqual(600);
  });

  it('waits the Retry-After of a 429, then delivers', async () => {
    const { server, deps, receiver } = await setUp(c);
    server.script({ status: 429, headers: { 'retry-after': '1' }, body: 'slow down' });
    expect(await receiver.send(firingNotice(), signal())).toEqual({ attempts: 2, status: c.okStatus });
    expect(deps.sleeps).toEqual([1_000]);
  });

  it.each([
    ['-1', 'a negative number'],
    ['+5', 'a signed number'],
    ['1e3', 'an exponent'],
    ['soon', 'a word'],
    ['0', 'no wait at all'],
    ['Sun, 06 Nov 1994 08:49:37 GMT', 'a date long past'],
  ])(
    'a 429 with Retry-After %s (%s) waits at least the first backoff before asking again (regression: "-1" read as a date in 2001 sent 14 requests in 70 ms)',
    async (retryAfter) => {
      const { server, deps, receiver } = await setUp(c);
      const limited = { status: 429, headers: { 'retry-after': retryAfter }, body: 'slow down' };
      server.script(limited, limited, limited);
      expect(await receiver.send(firingNotice(), signal())).toEqual({ attempts: 4, status: c.okStatus });
      expect(deps.sleeps).toHaveLength(3);
      for (const ms of deps.sleeps) expect(ms).toBeGreaterThanOrEqual(400);
    },
  );

  it('gives a Retry-After longer than it waits itself back to the dispatcher, asking nothing meanwhile (regression: it asked again after 30 s when told 45)', async () => {
    const { server, deps, receiver } = await setUp(c);
    server.script({ status: 429, headers: { 'retry-after': '45' }, body: 'slow down' });
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error).toBeInstanceOf(AlertError);
    expect(error.message).toContain('rate limited');
    expect(error.message).toContain('the service asks to wait 45s');
    expect((error.cause as OutboundError).retryAfterMs).toBe(45_000);
    expect(server.received).toHaveLength(1);
    expect(deps.sleeps).toEqual([]);
  });

  it('does not retry a 400: AlertError after one attempt', async () => {
    const { server, deps, receiver } = await setUp(c);
    server.script({ status: 400, body: 'invalid_payload' });
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error).toBeInstanceOf(AlertError);
    expect(error.code).toBe('GL_ERR_ALERT');
    expect(error.attempts).toBe(1);
    expect(error.message).toBe(`${c.type} receiver "desk": rejected with HTTP 400: invalid_payload; not retried, fix the request or its credentials`);
    expect(server.received).toHaveLength(1);
    expect(deps.sleeps).toEqual([]);
  });

  it.each([301, 302, 307, 308])('fails a %i at once: a redirect delivered nothing (regression: taken as delivered, the page was lost)', async (status) => {
    const { server, deps, receiver } = await setUp(c);
    server.script({ status, headers: { location: `https://moved.example${c.path}` } });
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error).toBeInstanceOf(AlertError);
    expect(error.attempts).toBe(1);
    expect(error.message).toBe(
      `${c.type} receiver "desk": answered HTTP ${status}, a redirect to https://moved.example: nothing was delivered, and greenlight does not follow redirects (the request may carry a secret): point the config at the new address`,
    );
    expect(server.received).toHaveLength(1);
    expect(deps.sleeps).toEqual([]);
  });

  it('gives up after retries + 1 attempts of 503', async () => {
    const { server, receiver } = await setUp(c, { retries: 2 });
    server.script({ status: 503 }, { status: 503 }, { status: 503 });
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error.attempts).toBe(3);
    expect(error.message).toBe(`${c.type} receiver "desk": gave up after 3 attempts; last: HTTP 503`);
    expect(server.received).toHaveLength(3);
  });

  it('times out each attempt against a receiver that hangs, then gives up', async () => {
    const { server, receiver } = await setUp(c, { timeout: '150ms', retries: 1 });
    server.script('hang', 'hang');
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error.attempts).toBe(2);
    expect(error.message).toBe(`${c.type} receiver "desk": gave up after 2 attempts; last: no answer within 150ms`);
    expect(server.received).toHaveLength(2);
  });

  it('regression: the attempt deadline still fires after a garbage collection (AbortSignal.timeout inside AbortSignal.any did not)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { server, receiver } = await setUp(c, { timeout: '200ms', retries: 0 });
    server.script('hang');
    const sending = failure(receiver.send(firingNotice(), signal()));
    await server.waitFor(1);
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const error = await Promise.race([sending, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 3_000))]);
    expect(error).toBeInstanceOf(AlertError);
    expect((error as AlertError).message).toContain('no answer within 200ms');
  });

  it('stops when its signal aborts', async () => {
    const { server, receiver } = await setUp(c, { timeout: '10s' });
    server.script('hang');
    const controller = new AbortController();
    const sending = failure(receiver.send(firingNotice(), controller.signal));
    await server.waitFor(1);
    controller.abort();
    const error = await sending;
    expect(error.message).toContain('cancelled');
  });

  it('never shows its secret in errors or logs, even when the server echoes it', async () => {
    const { server, deps, receiver } = await setUp(c, { retries: 1 });
    const echo = `Cannot POST ${c.path} (key ${c.secret}, url ${server.origin}${c.path})`;
    server.script({ status: 500, body: echo }, { status: 404, body: echo });
    const error = await failure(receiver.send(firingNotice(), signal()));
    expect(error.message).toContain('HTTP 404');
    expect(error.message).toContain('[redacted]');
    const seen = [error.message, String((error.cause as Error).message), ...deps.logLines].join('\n');
    expect(seen).not.toContain(c.secret);
    expect(deps.logLines.length).toBeGreaterThan(0);
  });
});

describe('receiver options', () => {
  it('turns retries into attempts and timeout into the per-attempt deadline', () => {
    expect(retryPolicyOf({ retries: 0, timeout: 2_000 })).toMatchObject({ attempts: 1, timeoutMs: 2_000 });
    expect(retryPolicyOf({ retries: 3, timeout: 5_000 })).toMatchObject({ attempts: 4, timeoutMs: 5_000 });
  });

  it('lists the URL, its path and its long segments and query values as secrets', () => {
    expect(secretsOfUrl('https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx')).toEqual([
      'https://hooks.slack.com/services/T0/B0/abcdefghijklmnopqrstuvwx',
      '/services/T0/B0/abcdefghijklmnopqrstuvwx',
      'abcdefghijklmnopqrstuvwx',
    ]);
    expect(secretsOfUrl('http://h.test/hook?token=s3cr3tvalue')).toContain('s3cr3tvalue');
  });

  it("does not take a path shorter than a token for a secret: the API's own paths stay whole in what the agent says (regression: GET /api/v1[redacted])", () => {
    expect(secretsOfUrl('http://127.0.0.1:9093/alerts')).toEqual(['http://127.0.0.1:9093/alerts']);
    const redactor = new Redactor(secretsOfUrl('http://127.0.0.1:9093/alerts'));
    expect(redactor.text('GET /api/v1/alerts answered 200; posted to http://127.0.0.1:9093/alerts')).toBe(
      'GET /api/v1/alerts answered 200; posted to [redacted]',
    );
    // A path as long as a token still is one.
    expect(secretsOfUrl('https://hooks.desk.example/hooks/abc123def')).toContain('/hooks/abc123def');
  });

  it('registers the four receivers', () => {
    expect(ALERT_RECEIVERS.map((plugin) => plugin.type)).toEqual(['slack', 'discord', 'pagerduty', 'webhook']);
  });
});

describe('receiver blocks in a config file', () => {
  const schema = buildConfigSchema(PLUGIN_SCHEMAS);
  const config = (receivers: string) =>
    [
      'environments:',
      '  blue: { url: "http://127.0.0.1:8081" }',
      '  green: { url: "http://127.0.0.1:8082" }',
      'probes:',
      '  - { name: health, path: /api/health }',
      'alerts:',
      '  receivers:',
      receivers,
    ].join('\n');

  it('reads the contract variables into receivers with their defaults', () => {
    const text = config(
      [
        '    - { type: slack, url: "${SLACK_WEBHOOK_URL}" }',
        '    - { type: discord, url: "${DISCORD_WEBHOOK_URL}" }',
        '    - { type: pagerduty, routingKey: "${PAGERDUTY_ROUTING_KEY}", url: "${PAGERDUTY_URL:-https://events.pagerduty.com/v2/enqueue}" }',
        '    - { type: webhook, url: "${ALERT_WEBHOOK_URL}" }',
      ].join('\n'),
    );
    const env = {
      SLACK_WEBHOOK_URL: `https://hooks.slack.com/services/T0/B0/${SLACK_TOKEN}`,
      DISCORD_WEBHOOK_URL: `https://discord.com/api/webhooks/1/${DISCORD_TOKEN}`,
      PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
      ALERT_WEBHOOK_URL: 'http://alerts.internal/hook',
    };
    const receivers = parseConfig(text, env, { schema }).alerts.receivers;
    expect(receivers.map((r) => [r.type, r.name, r.severities])).toEqual([
      ['slack', 'slack', ['warning', 'critical']],
      ['discord', 'discord', ['warning', 'critical']],
      ['pagerduty', 'pagerduty', ['critical']],
      ['webhook', 'webhook', ['warning', 'critical']],
    ]);
    expect(receivers[2]).toMatchObject({ url: 'https://events.pagerduty.com/v2/enqueue', source: 'greenlight', timeout: 5_000, retries: 3 });
  });

  it('names the key path and line of a bad receiver key', () => {
    const text = config(['    - type: slack', '      url: "https://hooks.slack.com/services/x"', '      timeout: soon'].join('\n'));
    const error = (() => {
      try {
        parseConfig(text, {}, { schema });
      } catch (e) {
        return e as ConfigError;
      }
      return expect.fail('expected ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues).toEqual([{ path: 'alerts.receivers[0].timeout', message: expect.stringContaining('"soon" is not a duration'), line: 10 }]);
  });
});

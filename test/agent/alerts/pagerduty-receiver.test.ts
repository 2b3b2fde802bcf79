import { describe, expect, it } from 'vitest';
import { AlertError } from '../../../agent/alerts/alert-receiver.js';
import { dedupKeyOf, PAGERDUTY_EVENTS_URL, pagerDutyEvent, pagerDutyReceiver, PagerDutyReceiverSchema } from '../../../agent/alerts/pagerduty-receiver.js';
import { firingNotice, pagerDutyService, resolvedNotice, useFakeService } from './fake-server.js';

const ROUTING_KEY = 'R0uT1nGkEy0123456789abcdefABCDEF';
const fake = useFakeService(pagerDutyService);

const signal = () => new AbortController().signal;
const create = (block: Record<string, unknown> = {}) =>
  pagerDutyReceiver.create(
    PagerDutyReceiverSchema.parse({ type: 'pagerduty', routingKey: ROUTING_KEY, url: `${fake.server.origin}/v2/enqueue`, ...block }),
    fake.deps,
  );

describe('pagerduty receiver config', () => {
  it('fills the defaults: critical only, the Events API v2 address, source greenlight', () => {
    expect(PagerDutyReceiverSchema.parse({ type: 'pagerduty', routingKey: ROUTING_KEY })).toEqual({
      type: 'pagerduty',
      name: 'pagerduty',
      severities: ['critical'],
      timeout: 5_000,
      retries: 3,
      routingKey: ROUTING_KEY,
      url: 'https://events.pagerduty.com/v2/enqueue',
      source: 'greenlight',
    });
    expect(PAGERDUTY_EVENTS_URL).toBe('https://events.pagerduty.com/v2/enqueue');
  });

  it.each([
    [{ type: 'pagerduty' }, 'routingKey'],
    [{ type: 'pagerduty', routingKey: '' }, 'routingKey'],
    [{ type: 'pagerduty', routingKey: ROUTING_KEY, url: 'events.pagerduty.com' }, 'url'],
    [{ type: 'pagerduty', routingKey: ROUTING_KEY, source: '' }, 'source'],
    [{ type: 'pagerduty', routingKey: ROUTING_KEY, retries: 'three' }, 'retries'],
  ])('rejects %j, naming %s', (block, path) => {
    const result = PagerDutyReceiverSchema.safeParse(block);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path[0]).toBe(path);
  });
});

describe('pagerduty receiver', () => {
  it('triggers with the full payload, then resolves with the same dedup_key and nothing else', async () => {
    const receiver = create({ source: 'greenlight-prod' });
    const notice = firingNotice();
    expect(await receiver.send(notice, signal())).toEqual({ attempts: 1, status: 202 });
    expect(await receiver.send(resolvedNotice(notice), signal())).toEqual({ attempts: 1, status: 202 });

    const [trigger, resolve] = fake.server.received.map((request) => request.body);
    expect(fake.server.received.map((request) => request.path)).toEqual(['/v2/enqueue', '/v2/enqueue']);
    expect(trigger).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'error-ratio-critical:blue:1741921200000',
      payload: {
        summary: '[CRITICAL] error-ratio-critical on blue: error ratio 42% on blue (live) over 5m',
        source: 'greenlight-prod',
        severity: 'critical',
        timestamp: '2025-03-14T02:55:00.000Z',
        component: 'blue',
        group: 'alphastack',
        class: 'error-ratio-critical',
        custom_details: {
          status: 'FIRING',
          rule: 'error-ratio-critical',
          environment: 'blue',
          what_greenlight_did: notice.description,
          figures: notice.figures,
          figures_text: ['errorRatio(window=5m): 0.4212 (> 0.1)', 'samples: 60', 'env: blue'],
          labels: { team: 'desk' },
          started_at: '2025-03-14T02:55:00.000Z',
        },
      },
      client: 'greenlight',
      client_url: 'http://greenlight.internal:9464/api/v1/state',
      links: [{ href: 'http://greenlight.internal:9464/api/v1/state', text: 'greenlight state' }],
    });
    expect(resolve).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'error-ratio-critical:blue:1741921200000' });
  });

  it.each([
    ['critical', 'critical'],
    ['warning', 'warning'],
    ['info', 'info'],
  ] as const)('maps greenlight severity %s to PagerDuty %s', async (severity, expected) => {
    await create({ severities: ['warning', 'critical'] }).send(firingNotice({ severity }), signal());
    expect(fake.server.received[0]!.body.payload.severity).toBe(expected);
  });

  it('keeps the summary within 1024 characters, so PagerDuty accepts it', async () => {
    await create().send(firingNotice({ summary: 'ü'.repeat(5_000) }), signal());
    const summary: string = fake.server.received[0]!.body.payload.summary;
    expect(summary.length).toBeLessThanOrEqual(1_024);
    expect(summary.startsWith('[CRITICAL] error-ratio-critical on blue: üüü')).toBe(true);
    expect(summary.endsWith('…')).toBe(true);
  });

  it('hashes a key longer than 255 characters the same way for trigger and resolve', async () => {
    const notice = firingNotice({ key: 'k'.repeat(300) });
    const receiver = create();
    await receiver.send(notice, signal());
    await receiver.send(resolvedNotice(notice), signal());
    const keys = fake.server.received.map((request) => request.body.dedup_key);
    expect(keys[0]).toBe(dedupKeyOf('k'.repeat(300)));
    expect(keys[0]).toHaveLength(64);
    expect(keys[1]).toBe(keys[0]);
  });

  it('names greenlight itself as the component of a notice without an environment, and omits links without a URL', () => {
    const event = pagerDutyEvent(firingNotice({ env: null, url: undefined }), { routingKey: ROUTING_KEY, source: 'greenlight' });
    expect(event.payload).toMatchObject({ component: 'greenlight', summary: '[CRITICAL] error-ratio-critical: error ratio 42% on blue (live) over 5m' });
    expect(event).not.toHaveProperty('links');
    expect(event).not.toHaveProperty('client_url');
  });

  it('does not retry an invalid event and never shows the routing key', async () => {
    fake.server.script({
      status: 400,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'invalid event', message: `Event object is invalid: unknown routing key ${ROUTING_KEY}` }),
    });
    const error: unknown = await create({ name: 'oncall' })
      .send(firingNotice(), signal())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlertError);
    expect(error).toMatchObject({ attempts: 1, message: expect.stringContaining('pagerduty receiver "oncall": rejected with HTTP 400') });
    expect((error as Error).message).toContain('[redacted]');
    expect((error as Error).message).not.toContain(ROUTING_KEY);
    expect(fake.deps.logLines.join('\n')).not.toContain(ROUTING_KEY);
  });
});

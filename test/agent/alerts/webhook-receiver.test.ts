import { describe, expect, it } from 'vitest';
import { alertmanagerPayload, fingerprintOf, NOT_ENDED, webhookReceiver, WebhookReceiverSchema } from '../../../agent/alerts/webhook-receiver.js';
import { alertmanagerService, firingNotice, resolvedNotice, useFakeService } from './fake-server.js';

const fake = useFakeService(alertmanagerService);

const signal = () => new AbortController().signal;
const create = (block: Record<string, unknown> = {}) =>
  webhookReceiver.create(
    WebhookReceiverSchema.parse({ type: 'webhook', name: 'router', url: `${fake.server.origin}/hooks/greenlight?token=s3cr3tQueryToken`, ...block }),
    fake.deps,
  );

describe('webhook receiver config', () => {
  it('fills the defaults: every severity', () => {
    expect(WebhookReceiverSchema.parse({ type: 'webhook', url: 'http://alerts.internal/hook' })).toEqual({
      type: 'webhook',
      name: 'webhook',
      severities: ['warning', 'critical'],
      timeout: 5_000,
      retries: 3,
      url: 'http://alerts.internal/hook',
    });
  });

  it.each([
    [{ type: 'webhook' }, 'url'],
    [{ type: 'webhook', url: 'http://x.test', method: 'PUT' }, ''],
    [{ type: 'webhook', url: 'http://x.test', severities: ['info'] }, 'severities'],
  ])('rejects %j, naming %s', (block, path) => {
    const result = WebhookReceiverSchema.safeParse(block);
    expect(result.success).toBe(false);
    const issue = result.error!.issues[0]!;
    if (path === '') expect(issue.code).toBe('unrecognized_keys');
    else expect(issue.path[0]).toBe(path);
  });
});

describe('webhook receiver (Alertmanager format)', () => {
  it('posts a version 4 body with one firing alert whose endsAt is the zero time', async () => {
    expect(await create().send(firingNotice(), signal())).toEqual({ attempts: 1, status: 200 });
    const labels = { team: 'desk', alertname: 'error-ratio-critical', rule: 'error-ratio-critical', severity: 'critical', env: 'blue' };
    const annotations = {
      summary: 'error ratio 42% on blue (live) over 5m',
      description: firingNotice().description,
      figures: 'errorRatio(window=5m): 0.4212 (> 0.1)\nsamples: 60\nenv: blue',
    };
    expect(fake.server.received[0]!.path).toBe('/hooks/greenlight?token=s3cr3tQueryToken');
    expect(fake.server.received[0]!.body).toEqual({
      version: '4',
      groupKey: '{}:{alertname="error-ratio-critical"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'router',
      groupLabels: { alertname: 'error-ratio-critical' },
      commonLabels: labels,
      commonAnnotations: annotations,
      externalURL: 'http://greenlight.internal:9464',
      alerts: [
        {
          status: 'firing',
          labels,
          annotations,
          startsAt: '2025-03-14T02:55:00.000Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://greenlight.internal:9464/api/v1/state',
          fingerprint: fingerprintOf('error-ratio-critical:blue:1741921200000'),
        },
      ],
    });
  });

  it('sends the resolution with status resolved, endsAt set and the same fingerprint', async () => {
    const receiver = create();
    const notice = firingNotice();
    await receiver.send(notice, signal());
    await receiver.send(notice, signal());
    await receiver.send(resolvedNotice(notice), signal());
    const bodies = fake.server.received.map((request) => request.body);
    expect(bodies.map((body) => body.status)).toEqual(['firing', 'firing', 'resolved']);
    expect(bodies[2].alerts[0]).toMatchObject({ status: 'resolved', endsAt: '2025-03-14T03:07:30.000Z', startsAt: '2025-03-14T02:55:00.000Z' });
    const fingerprints = new Set(bodies.map((body) => body.alerts[0].fingerprint));
    expect(fingerprints.size).toBe(1);
    expect([...fingerprints][0]).toMatch(/^[0-9a-f]{16}$/);
  });

  it('gives different keys different fingerprints', () => {
    expect(fingerprintOf('a')).not.toBe(fingerprintOf('b'));
  });

  it('dates a resolution without endsAt by the injected clock, never the zero time', () => {
    const resolved = { ...resolvedNotice(firingNotice()), endsAt: undefined };
    const payload = alertmanagerPayload(resolved, 'router', () => Date.parse('2025-03-14T03:10:00Z'));
    expect(payload.alerts[0]!.endsAt).toBe('2025-03-14T03:10:00.000Z');
    expect(payload.alerts[0]!.endsAt).not.toBe(NOT_ENDED);
  });

  it('keeps alertname, rule, severity and env even when the rule labels name them', () => {
    const payload = alertmanagerPayload(
      firingNotice({ labels: { alertname: 'spoof', rule: 'spoof', severity: 'none', env: 'spoof', team: 'desk' }, env: null, url: undefined }),
      'router',
      Date.now,
    );
    expect(payload.alerts[0]!.labels).toEqual({ alertname: 'error-ratio-critical', rule: 'error-ratio-critical', severity: 'critical', team: 'desk' });
    expect(payload.externalURL).toBe('');
    expect(payload.alerts[0]!.generatorURL).toBe('');
  });
});

/**
 * The CDN purgers the `cdn` step runs: cloudflare against a local fake of Cloudflare's documented
 * purge-cache API (the exact request: method, path, Authorization, body), its failures and a
 * hanging answer; the generic webhook and command forms.
 */
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PluginDeps } from '../../../agent/plugins/plugin.js';
import { CdnError } from '../../../agent/traffic/cdn-purger.js';
import { CloudflareCdnSchema, cloudflareCdn } from '../../../agent/traffic/cloudflare-cdn.js';
import { CommandCdnSchema, commandCdn } from '../../../agent/traffic/command-cdn.js';
import { WebhookCdnSchema, webhookCdn } from '../../../agent/traffic/webhook-cdn.js';
import { Redactor } from '../../../config/redactor.js';
import { startFakeCloudflare, type FakeCloudflare } from '../../helpers/fake-cloudflare.js';
import { startRecorder } from '../../helpers/recorder.js';
import { writeTempFile } from '../../helpers/tools.js';

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const TOKEN = 'cf-purge-token-Y3k9x7Qm2LpZ';
const REQUEST = { from: 'blue', to: 'green', incident: 'live-health-failing#2', reason: 'rule live-health-failing: 3 failures' };

let cloudflare: FakeCloudflare;
const dispatcher = new Agent();
const deps = (): PluginDeps => ({
  logger: pino({ level: 'silent' }),
  dispatcher,
  now: () => Date.parse('2026-12-05T02:00:00Z'),
  sleep: async () => undefined,
  redactor: new Redactor(),
});

beforeAll(async () => {
  cloudflare = await startFakeCloudflare(TOKEN);
});
beforeEach(() => {
  cloudflare.calls.length = 0;
  cloudflare.script();
});
afterAll(async () => {
  await cloudflare.close();
  await dispatcher.close();
});

function cloudflarePurger(extra: Record<string, unknown> = {}, pluginDeps = deps()) {
  const config = CloudflareCdnSchema.parse({ type: 'cloudflare', zoneId: ZONE, apiToken: TOKEN, baseUrl: cloudflare.baseUrl, retries: 0, ...extra });
  return cloudflareCdn.create(config, pluginDeps);
}

describe('cloudflare', () => {
  it.each([
    ['everything', {}, { purge_everything: true }, 'cloudflare purged everything in zone'],
    [
      'files',
      { files: ['https://dash.desk.example/api/health', 'https://dash.desk.example/'] },
      { files: ['https://dash.desk.example/api/health', 'https://dash.desk.example/'] },
      'cloudflare purged 2 URLs',
    ],
    ['prefixes', { prefixes: ['dash.desk.example/api'] }, { prefixes: ['dash.desk.example/api'] }, 'cloudflare purged 1 prefix'],
  ])('purges %s with the documented request', async (_kind, extra, body, detail) => {
    const outcome = await cloudflarePurger(extra).purge(REQUEST, AbortSignal.timeout(10_000));
    expect(cloudflare.calls).toHaveLength(1);
    const [call] = cloudflare.calls;
    expect(call).toMatchObject({
      method: 'POST',
      path: `/client/v4/zones/${ZONE}/purge_cache`,
      authorization: `Bearer ${TOKEN}`,
      contentType: 'application/json',
    });
    expect(call!.text).toBe(JSON.stringify(body));
    expect(outcome.detail).toContain(detail);
    expect(outcome.detail).toContain(`(purge ${ZONE})`);
    expect(outcome.data).toMatchObject({ status: 200, attempts: 1, purgeId: ZONE });
  });

  it("a refused purge is a CdnError quoting Cloudflare's errors; the token appears nowhere", async () => {
    const redactor = new Redactor();
    const purger = cloudflarePurger({ apiToken: `${TOKEN}-wrong` }, { ...deps(), redactor });
    const error = await purger.purge(REQUEST, AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CdnError);
    expect((error as CdnError).code).toBe('GL_ERR_SWITCH_STEP');
    expect((error as Error).message).toMatch(/HTTP 403.*Authentication error/);
    expect((error as Error).message).toContain('Cache Purge permission');
    // The plugin registered its token with the agent's redactor when it was created.
    expect(redactor.text(`Bearer ${TOKEN}-wrong`)).toBe('Bearer [redacted]');
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it('HTTP 200 without "success": true is a failure; 5xx is retried', async () => {
    cloudflare.script({ status: 200, code: 1134, message: 'purge queue full' });
    await expect(cloudflarePurger().purge(REQUEST, AbortSignal.timeout(10_000))).rejects.toThrow(/without "success": true \(1134: purge queue full\)/);
    cloudflare.script({ status: 503, code: 1000, message: 'unavailable' }, 'ok');
    const outcome = await cloudflarePurger({ retries: 2 }).purge(REQUEST, AbortSignal.timeout(10_000));
    expect(outcome.data).toMatchObject({ attempts: 2 });
  });

  it('a hanging answer ends with the signal (the step timeout)', async () => {
    cloudflare.script('hang');
    const error = await cloudflarePurger({ timeout: '30s' })
      .purge(REQUEST, AbortSignal.timeout(200))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CdnError);
    expect((error as Error).message).toMatch(/cancelled|no answer/);
  });

  it('refuses configs Cloudflare would', () => {
    const issues = (value: Record<string, unknown>) =>
      CloudflareCdnSchema.safeParse({ type: 'cloudflare', zoneId: ZONE, apiToken: TOKEN, ...value }).error?.issues.map(
        (i) => `${i.path.join('.')}: ${i.message}`,
      ) ?? [];
    expect(issues({ zoneId: 'example.com' })).toEqual(['zoneId: is not a Cloudflare zone id: 32 hexadecimal characters, from the zone overview page']);
    expect(issues({ files: Array.from({ length: 101 }, (_, i) => `https://a.example/${i}`) })[0]).toContain('at most 100 per purge request');
    expect(issues({ files: ['https://a.example/'], prefixes: ['a.example/x'] })[0]).toContain('takes one kind');
    expect(issues({ prefixes: ['https://a.example/x'] })[0]).toContain('host and path only');
  });
});

describe('webhook and command', () => {
  it('webhook: POSTs the switch, a 2xx is a purge; a 4xx is a CdnError without the URL', async () => {
    const recorder = await startRecorder();
    try {
      const url = `${recorder.url}/purge/SECRET-hook-token-0123456789`;
      const redactor = new Redactor();
      const purger = webhookCdn.create(WebhookCdnSchema.parse({ type: 'webhook', url, retries: 0 }), { ...deps(), redactor });
      const outcome = await purger.purge(REQUEST, AbortSignal.timeout(10_000));
      expect(outcome.detail).toContain('CDN purge webhook accepted the purge: HTTP 200');
      expect(recorder.requests[0]!.body).toEqual({ event: 'purge', ...REQUEST, time: '2026-12-05T02:00:00.000Z' });
      recorder.setResponder(() => 404);
      const error = await purger.purge(REQUEST, AbortSignal.timeout(10_000)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CdnError);
      expect(redactor.text((error as Error).message)).toBe((error as Error).message);
      expect((error as Error).message).not.toContain('SECRET-hook-token');
    } finally {
      await recorder.close();
    }
  });

  it('command: gets the switch in its environment; exit 0 is a purge, anything else a CdnError with stderr', async () => {
    const script = writeTempFile(
      'purge.sh',
      '#!/bin/sh\necho "purged for $GREENLIGHT_TO after $GREENLIGHT_INCIDENT"\n[ "$FAIL" = 1 ] && { echo "edge API down" >&2; exit 3; }\nexit 0\n',
    );
    const ok = commandCdn.create(CommandCdnSchema.parse({ type: 'command', command: ['sh', script] }), deps());
    expect((await ok.purge(REQUEST, AbortSignal.timeout(10_000))).detail).toContain('exited 0');
    expect((await ok.purge(REQUEST, AbortSignal.timeout(10_000))).detail).toContain('purged for green after live-health-failing#2');
    const failing = commandCdn.create(CommandCdnSchema.parse({ type: 'command', command: ['env', 'FAIL=1', 'sh', script] }), deps());
    await expect(failing.purge(REQUEST, AbortSignal.timeout(10_000))).rejects.toThrow(/exited with code 3 .*edge API down/);
  });
});

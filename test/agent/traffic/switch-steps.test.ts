/**
 * The switch phase on its own: the configured steps built as the agent builds them (PluginFactory)
 * and run by SwitchSteps, against a local fake of Cloudflare's purge API, a public address served
 * over HTTPS with certificates generated at test time, and a public verify URL. Order, events,
 * timeouts (a hanging purge), the TLS margin and host name, a verify URL naming the wrong
 * environment, the rollback alert and its resolution, and redaction of the token.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertNotice } from '../../../agent/alerts/alert-receiver.js';
import { EventBus, type GreenlightEvent } from '../../../agent/events/events.js';
import { PluginFactory } from '../../../agent/plugins/plugin-factory.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { SwitchSteps, type SwitchStepRequest } from '../../../agent/traffic/switch-steps.js';
import { Redactor } from '../../../config/redactor.js';
import { makeCa, type TestCa, type TestCert } from '../../helpers/certs.js';
import { startFakeCloudflare, type FakeCloudflare } from '../../helpers/fake-cloudflare.js';
import { issuesOf } from '../../helpers/config-issues.js';
import { hasTool } from '../../helpers/tools.js';

const DAY = 86_400_000;
const ZONE = '9a7806061c88ada191ed06f989cc3dac';
const TOKEN = 'cf-switch-token-Q8v2Lk5Zp1Xw';
const ROLLBACK: SwitchStepRequest = {
  from: 'blue',
  to: 'green',
  kind: 'rollback',
  incident: 'live-health-failing#4',
  reason: 'health failing on blue',
  rule: 'live-health-failing',
};

let cloudflare: FakeCloudflare;
let ca: TestCa;
let certs: { soon: TestCert; later: TestCert; otherHost: TestCert };
let publicTls: HttpsServer;
let tlsUrl: string;
let verifyServer: Server;
let verifyUrl: string;
/** The environment the public verify URL names. */
let serving = 'green';
const dispatcher = new UndiciAgent();

beforeAll(async () => {
  cloudflare = await startFakeCloudflare(TOKEN);
  if (hasTool('openssl')) {
    ca = makeCa('desk public CA', 365);
    const notBefore = new Date(Date.now() - 3_600_000);
    certs = {
      soon: ca.issue({ hosts: ['127.0.0.1'], notBefore, notAfter: new Date(Date.now() + 2 * DAY) }),
      later: ca.issue({ hosts: ['127.0.0.1'], notBefore, notAfter: new Date(Date.now() + 60 * DAY) }),
      otherHost: ca.issue({ hosts: ['dashboard.desk.example'], notBefore, notAfter: new Date(Date.now() + 60 * DAY) }),
    };
    publicTls = createHttpsServer({ cert: certs.later.cert, key: certs.later.key }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => publicTls.listen(0, '127.0.0.1', resolve));
    tlsUrl = `https://127.0.0.1:${(publicTls.address() as AddressInfo).port}`;
  }
  verifyServer = createHttpServer((_req, res) => {
    // A maintenance page the CDN serves with 200 while the origin is away: HTML, not the app's JSON.
    if (serving === 'maintenance page') return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Back soon</html>');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'healthy', environment: serving }));
  });
  await new Promise<void>((resolve) => verifyServer.listen(0, '127.0.0.1', resolve));
  verifyUrl = `http://127.0.0.1:${(verifyServer.address() as AddressInfo).port}/api/health`;
});

afterAll(async () => {
  await cloudflare?.close();
  publicTls?.closeAllConnections();
  verifyServer?.closeAllConnections();
  await Promise.all([
    new Promise((resolve) => (publicTls ? publicTls.close(resolve) : resolve(undefined))),
    new Promise((resolve) => verifyServer.close(resolve)),
  ]);
  await dispatcher.close();
});

function serveCertificate(cert: TestCert): void {
  publicTls.setSecureContext({ cert: cert.cert, key: cert.key });
}

/**
 * A phase of `steps` (YAML list items), as the agent builds it, with what it published and alerted;
 * `kept`: the alerts the dispatcher holds firing (from before a restart).
 */
function phase(steps: string, kept: AlertNotice[] = []) {
  const config = parseAgentConfig(
    `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: health, path: /api/health } ]
switching:
  steps:
${steps}`,
    { CLOUDFLARE_API_TOKEN: TOKEN },
  );
  const redactor = Redactor.of(config);
  const logger = pino({ level: 'silent' });
  const events: GreenlightEvent[] = [];
  const alerts: AlertNotice[] = [];
  const bus = new EventBus({
    now: Date.now,
    redactor,
    onListenerError: (error) => {
      throw error;
    },
  });
  bus.subscribe((event) => events.push(event));
  const plugins = new PluginFactory({ logger, dispatcher: () => dispatcher, now: Date.now, redactor });
  const runner = new SwitchSteps({
    bus,
    steps: () => plugins.switchSteps(config),
    alert: (notice) => alerts.push(notice),
    firing: () => kept,
    stateUrl: () => 'http://127.0.0.1:9464/api/v1/state',
    now: Date.now,
    logger,
    redact: (text) => redactor.text(text),
  });
  return { runner, events, alerts };
}

const cdn = (extra = '') =>
  `    - { step: cdn, purge: { type: cloudflare, zoneId: ${ZONE}, apiToken: "\${CLOUDFLARE_API_TOKEN}", baseUrl: "${cloudflare.baseUrl}", retries: 0 }${extra} }\n`;
const tls = (extra = '') => `    - { step: tls, url: "${tlsUrl}", ca: "${ca.certPath}"${extra} }\n`;
const verify = (extra = '') => `    - { step: verify, url: "${verifyUrl}", streak: 2, interval: 20ms${extra} }\n`;
const kinds = (events: GreenlightEvent[]) => events.map((e) => `${e.type}:${(e.data as { step?: string }).step}`);

describe.skipIf(!hasTool('openssl'))('the switch phase', () => {
  it('runs cdn, tls and verify in the configured order, each published as it starts and ends', async () => {
    serveCertificate(certs.later);
    serving = 'green';
    cloudflare.calls.length = 0;
    const { runner, events, alerts } = phase(verify() + cdn() + tls());
    const report = await runner.run({ ...ROLLBACK, kind: 'promotion', incident: 'promote:x' }, AbortSignal.timeout(30_000));
    expect(report).toMatchObject({ ok: true, failed: null, skipped: [] });
    expect(report.steps.map((s) => s.name)).toEqual(['verify', 'cdn', 'tls']);
    expect(kinds(events)).toEqual([
      'switch.step_started:verify',
      'switch.step_succeeded:verify',
      'switch.step_started:cdn',
      'switch.step_succeeded:cdn',
      'switch.step_started:tls',
      'switch.step_succeeded:tls',
    ]);
    const ended = events.filter((e) => e.type === 'switch.step_succeeded');
    expect(ended.map((e) => e.data)).toEqual([
      expect.objectContaining({
        index: 1,
        of: 3,
        from: 'blue',
        to: 'green',
        switch: 'promotion',
        incident: 'promote:x',
        detail: expect.stringContaining('$.environment is "green"'),
      }),
      expect.objectContaining({ index: 2, kind: 'cdn', detail: expect.stringContaining(`cloudflare purged everything in zone ${ZONE}`) }),
      expect.objectContaining({ index: 3, kind: 'tls', figures: expect.objectContaining({ valid: true, issuer: 'desk public CA' }) }),
    ]);
    expect(cloudflare.calls).toHaveLength(1);
    expect(cloudflare.calls[0]).toMatchObject({
      method: 'POST',
      path: `/client/v4/zones/${ZONE}/purge_cache`,
      authorization: `Bearer ${TOKEN}`,
      body: { purge_everything: true },
    });
    expect(alerts).toEqual([]);
  });

  it('a hanging purge fails at its timeout; the steps after it do not run; after a rollback a critical alert names the step, and the next passing phase resolves it', async () => {
    serveCertificate(certs.later);
    cloudflare.script('hang');
    const { runner, events, alerts } = phase(cdn(', timeout: 300ms') + tls() + verify());
    const report = await runner.run(ROLLBACK, AbortSignal.timeout(30_000));
    expect(report.ok).toBe(false);
    expect(report.failed).toEqual({ name: 'cdn', kind: 'cdn', reason: 'did not finish within 300ms (its timeout)' });
    expect(report.skipped).toEqual(['tls', 'verify']);
    expect(report.steps).toHaveLength(1);
    expect(report.steps[0]).toMatchObject({ timedOut: true, ok: false });
    expect(kinds(events)).toEqual(['switch.step_started:cdn', 'switch.step_failed:cdn']);
    expect(events[1]).toMatchObject({
      severity: 'critical',
      data: { timedOut: true, skipped: ['tls', 'verify'], switch: 'rollback', incident: ROLLBACK.incident },
    });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      status: 'firing',
      rule: 'switch-step-failed',
      severity: 'critical',
      env: 'green',
      key: `greenlight/switch-step-failed/${ROLLBACK.incident}`,
      labels: { step: 'cdn', kind: 'cdn', from: 'blue', to: 'green', incident: ROLLBACK.incident },
    });
    expect(alerts[0]!.description).toContain('purge its cache by hand');
    expect(alerts[0]!.description).toContain('does not switch again');

    const again = await runner.run({ ...ROLLBACK, incident: 'live-health-failing#5' }, AbortSignal.timeout(30_000));
    expect(again.ok).toBe(true);
    expect(alerts).toHaveLength(2);
    expect(alerts[1]).toMatchObject({ status: 'resolved', key: alerts[0]!.key });
  });

  it("a rule's and an operator's alerts are kept, tied to no incident and no expiry, so both outlive a restart; the next passing phase resolves what was raised before it", async () => {
    serveCertificate(certs.later);
    const manual: SwitchStepRequest = { ...ROLLBACK, incident: 'manual-2026-12-07T18:40:00.000Z-3', rule: null, reason: 'manual rollback by api:admin' };
    const before = phase(cdn(', timeout: 200ms'));
    cloudflare.script('hang');
    await before.runner.run(ROLLBACK, AbortSignal.timeout(30_000));
    cloudflare.script('hang');
    await before.runner.run(manual, AbortSignal.timeout(30_000));
    const [rules, operators] = before.alerts;
    // Not the incident's: the rollback usually ends it at once, and a restart would resolve the alert with it (regression).
    for (const [notice, incident] of [
      [rules, ROLLBACK.incident],
      [operators, manual.incident],
    ] as const) {
      expect(notice).toMatchObject({ status: 'firing', kept: true, labels: { incident } });
      expect(notice!.incident).toBeUndefined();
      expect(notice!.expiresAt).toBeUndefined();
    }

    // The agent restarted: the dispatcher kept them.
    const other: AlertNotice = { ...rules!, key: 'greenlight/rollback-unverified/x', rule: 'rollback-unverified' };
    const after = phase(cdn(), [rules!, operators!, other]);
    cloudflare.script();
    expect((await after.runner.run({ ...ROLLBACK, incident: 'live-health-failing#9' }, AbortSignal.timeout(30_000))).ok).toBe(true);
    expect(after.alerts.map((a) => `${a.status} ${a.key}`)).toEqual([`resolved ${rules!.key}`, `resolved ${operators!.key}`]);
  });

  it('a phase with no steps (the config lost them) resolves no alert a failed one raised', async () => {
    const raised: AlertNotice = {
      status: 'firing',
      key: `greenlight/switch-step-failed/${ROLLBACK.incident}`,
      rule: 'switch-step-failed',
      severity: 'critical',
      env: 'green',
      summary: 'x',
      description: 'x',
      labels: {},
      figures: {},
      startsAt: new Date().toISOString(),
      incident: ROLLBACK.incident,
    };
    const empty = phase('    []', [raised]);
    expect(await empty.runner.run({ ...ROLLBACK, incident: 'live-health-failing#9' }, AbortSignal.timeout(5_000))).toMatchObject({ ok: true, steps: [] });
    expect(empty.alerts).toEqual([]);
  });

  it("a promotion's failed step is reported but raises no alert (the promotion switches back)", async () => {
    cloudflare.script({ status: 500, code: 1000, message: 'internal error' });
    const { runner, events, alerts } = phase(cdn());
    const report = await runner.run({ ...ROLLBACK, kind: 'promotion', incident: 'promote:y' }, AbortSignal.timeout(30_000));
    expect(report.failed).toMatchObject({ name: 'cdn', reason: expect.stringMatching(/HTTP 500: .*internal error/) });
    expect(events.at(-1)).toMatchObject({ type: 'switch.step_failed', severity: 'warning' });
    expect(alerts).toEqual([]);
  });

  it.each([
    [
      'expires within the margin',
      () => certs.soon,
      '',
      /127\.0\.0\.1:\d+'s certificate chain expires in [12]\.\d days \(\d{4}-\d\d-\d\d, 127\.0\.0\.1\), within the 7d margin: renew it/,
    ],
    ['serves another host name', () => certs.otherHost, '', /does not verify: ERR_TLS_CERT_ALTNAME_INVALID \(subject dashboard\.desk\.example/],
  ])('tls fails when the public certificate %s', async (_what, cert, extra, reason) => {
    serveCertificate(cert());
    const { runner, events } = phase(tls(extra));
    const report = await runner.run(ROLLBACK, AbortSignal.timeout(30_000));
    expect(report.failed?.reason).toMatch(reason);
    expect(events.at(-1)).toMatchObject({ type: 'switch.step_failed', data: { kind: 'tls', timedOut: false } });
  });

  it('tls: the same certificate passes with a smaller margin, and fails without its CA', async () => {
    serveCertificate(certs.soon);
    expect((await phase(tls(', margin: 1d')).runner.run(ROLLBACK, AbortSignal.timeout(30_000))).ok).toBe(true);
    const untrusted = await phase(`    - { step: tls, url: "${tlsUrl}" }\n`).runner.run(ROLLBACK, AbortSignal.timeout(30_000));
    expect(untrusted.failed?.reason).toMatch(/does not verify: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate)/);
  });

  it('verify fails when the public URL names the old environment, saying what it saw', async () => {
    serving = 'blue';
    try {
      const { runner } = phase(verify(', timeout: 1s'));
      const report = await runner.run(ROLLBACK, AbortSignal.timeout(30_000));
      expect(report.failed?.name).toBe('verify');
      expect(report.failed?.reason).toMatch(
        /did not name green 2 times in a row within .* \(last: \$\.environment is "blue"\): the CDN or the traffic layer may still serve blue/,
      );
    } finally {
      serving = 'green';
    }
  });

  it('verify says so when the public URL answers something that is not JSON', async () => {
    serving = 'maintenance page';
    try {
      const report = await phase(verify(', timeout: 300ms')).runner.run(ROLLBACK, AbortSignal.timeout(30_000));
      expect(report.failed?.name).toBe('verify');
      expect(report.failed?.reason).toContain("(last: the answer is not JSON: expected a value at byte 0, found '<')");
    } finally {
      serving = 'green';
    }
  });

  it('the CDN token appears in no event, alert or reason, even when the API echoes it', async () => {
    cloudflare.script({ status: 400, code: 6003, message: `Invalid request headers: Authorization: Bearer ${TOKEN}` });
    const { runner, events, alerts } = phase(cdn());
    const report = await runner.run(ROLLBACK, AbortSignal.timeout(30_000));
    expect(report.failed?.reason).toContain('Bearer [redacted]');
    const everything = JSON.stringify({ events, alerts, report });
    expect(everything).toContain('[redacted]');
    expect(everything).not.toContain(TOKEN);
  });
});

describe('switching.steps in the config', () => {
  it.each([
    ['an unknown step', '    - { step: purge }', 'switching.steps[0].step: "purge" is not a step after a switch: use one of cdn, tls, verify (line 5)'],
    [
      'an unknown CDN',
      '    - { step: cdn, purge: { type: fastly } }',
      'switching.steps[0].purge.type: "fastly" is not a CDN type: use one of cloudflare, webhook, command (line 5)',
    ],
    [
      'a zone that is no zone id',
      `    - { step: cdn, purge: { type: cloudflare, zoneId: desk.example, apiToken: t0k3n-value } }`,
      'switching.steps[0].purge.zoneId: is not a Cloudflare zone id',
    ],
    ['tls over http', '    - { step: tls, url: "http://dash.desk.example" }', 'switching.steps[0].url: is not an https:// URL'],
    [
      'a CA file that is not there',
      '    - { step: tls, url: "https://dash.desk.example", ca: /nonexistent/ca.pem }',
      'switching.steps[0].ca: cannot read "/nonexistent/ca.pem": ENOENT',
    ],
    [
      'two steps of one name',
      '    - { step: verify, url: "https://a.example/h" }\n    - { step: verify, url: "https://b.example/h" }',
      'switching.steps[1].name: "verify" is already the name of switching.steps[0]',
    ],
    ['an unknown key', '    - { step: verify, url: "https://a.example/h", every: 1s }', 'switching.steps[0].every: unknown key'],
  ])('%s is an error with its key path and line', (_what, steps, expected) => {
    const text = `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: health, path: /api/health } ]
switching:
  steps:
${steps}
`;
    expect(issuesOf(parseAgentConfig, text).join('\n')).toContain(expected);
  });
});

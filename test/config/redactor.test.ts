import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { collectSecrets, Redactor, REDACTED } from '../../config/redactor.js';

const TOKEN = 'tok-5f2a9c7e1b3d';

describe('Redactor', () => {
  const redactor = new Redactor([TOKEN, 'pass with spaces&/"', 'ops:s3cret-pass']);

  it.each([
    ['as is', `got ${TOKEN}!`],
    ['URL-encoded', `got ${encodeURIComponent('pass with spaces&/"')}`],
    ['URL-encoded, lower-case hex', `got ${encodeURIComponent('pass with spaces&/"').toLowerCase()}`],
    ['form-encoded', 'got pass+with+spaces%26%2F%22'],
    ['JSON-escaped', `got ${JSON.stringify('pass with spaces&/"')}`],
    ['JSON-escaped twice', `got ${JSON.stringify(JSON.stringify('pass with spaces&/"'))}`],
    ['JSON with \\/ and \\u0026', 'got pass with spaces\\u0026\\/\\"'],
    ['HTML-escaped', 'got pass with spaces&amp;/&quot;'],
    ['as a Basic credential', `Authorization: Basic ${Buffer.from('ops:s3cret-pass').toString('base64')}`],
    ['inside base64 after a user name of any length', `Basic ${Buffer.from(`someone-else:${TOKEN}`).toString('base64')}`],
    ['inside base64, one byte further', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`],
    ['inside url-safe base64', `cookie=${Buffer.from(`ab:${TOKEN}`).toString('base64url')}`],
    // Found from outside: JSON may escape any character (a PHP app writes \/ and echoed the token).
    ['with any of its characters a JSON \\u escape', `{"echo":"\\u0074ok-5f2a9c7e1b3d"}`],
    ['with a \\u escape inside', `{"echo":"tok\\u002d5f2a9c7e1b3d"}`],
    ['with escapes in JSON quoted in JSON', `"{\\"echo\\":\\"\\\\u0074ok-5f2a9c7e1b3d\\"}"`],
  ])('finds a secret %s', (_name, text) => {
    const redacted = redactor.text(text);
    expect(redacted).toContain(REDACTED);
    expect(redacted).not.toMatch(/5f2a9c7e|spaces|s3cret|tok-5f/);
    expect(redacted).not.toContain(Buffer.from(TOKEN).subarray(2, 8).toString('base64'));
  });

  it('shows a text whose escapes hid a secret decoded, its controls escaped again; one whose escapes hide none as it came', () => {
    expect(redactor.text('{"echo":"\\u0074ok-5f2a9c7e1b3d","n":"a\\u0001b"}')).toBe(`{"echo":"${REDACTED}","n":"a\\u0001b"}`);
    expect(redactor.text('{"path":"a\\/b","unicode":"\\u00e9t\\u00e9"}')).toBe('{"path":"a\\/b","unicode":"\\u00e9t\\u00e9"}');
  });

  it('leaves other text alone, and ignores values too short to be secrets', () => {
    const short = new Redactor(['abc', '']);
    expect(short.size).toBe(0);
    expect(short.text('abc abc')).toBe('abc abc');
    expect(redactor.text('status 500 not in [200]')).toBe('status 500 not in [200]');
  });

  it('cuts after redacting, so no part of a secret survives a cut (regression: a prefix of an echoed token showed)', () => {
    for (let at = 0; at < 90; at++) {
      const text = `${'x'.repeat(at)}${TOKEN}${'y'.repeat(100)}`;
      const excerpt = redactor.excerpt(text, 80);
      expect(excerpt.length).toBeLessThanOrEqual(80);
      for (let i = 0; i + 6 <= TOKEN.length; i++) expect(excerpt).not.toContain(TOKEN.slice(i, i + 6));
    }
    // Without secrets it only cuts, and marks the cut.
    expect(new Redactor().excerpt('x'.repeat(81), 80)).toBe(`${'x'.repeat(77)}...`);
    expect(new Redactor().excerpt('x'.repeat(80), 80)).toBe('x'.repeat(80));
    // Many secrets shrink the text on redaction: what follows them must still be whole or absent.
    const many = Array.from({ length: 12 }, () => TOKEN).join(' ');
    expect(redactor.excerpt(many, 80)).not.toMatch(/tok-|5f2a/);
  });

  it('redacts every string and key of a value, keeping __proto__ a plain key', () => {
    const value = JSON.parse(`{"reason":"${TOKEN}","list":[1,"a ${TOKEN}"],"${TOKEN}":true,"__proto__":{"x":"${TOKEN}"}}`) as Record<string, unknown>;
    const redacted = redactor.value(value);
    expect(JSON.stringify(redacted)).not.toContain(TOKEN);
    expect(Object.getPrototypeOf(redacted)).toBe(Object.prototype);
    expect(Object.keys(redacted)).toEqual(['reason', 'list', REDACTED, '__proto__']);
    const untouched = { a: 'fine' };
    expect(redactor.value(untouched)).toBe(untouched);
    // A body nested thousands deep keeps its shape (a locked flag's name deep inside stays visible to the flag routes).
    let deep: unknown = { ALPHASTACK_PROTECTION: false };
    for (let i = 0; i < 5_000; i++) deep = [deep];
    expect(redactor.value(deep)).toBe(deep);
  });

  it('add() hides more secrets later (a reload), keeping the earlier ones', () => {
    const later = new Redactor([TOKEN]);
    later.add(['rotated-secret-value']);
    expect(later.text(`${TOKEN} rotated-secret-value`)).toBe(`${REDACTED} ${REDACTED}`);
  });
});

describe('collectSecrets', () => {
  const env = {
    API_TOKEN: 'bearer-value-1234',
    CUSTOMER: 'customer-value-5678',
    QUERY_KEY: 'query-value-9012',
    ADMIN_TOKEN: 'admin-token-value-3456',
    RENDER_API_KEY: 'rnd_render-key-7890',
    PD_KEY: 'pd-routing-key-1234',
    SLACK: 'http://127.0.0.1:9/services/T0/B0/slackwebhooktoken123',
    EVERY: '5s',
  };
  const config = parseAgentConfig(
    `environments:
  blue: { url: "http://ops:url-password-1@127.0.0.1:1", headers: { x-customer: "\${CUSTOMER}", accept: application/json } }
  green: { url: http://127.0.0.1:2, headers: { x-api-key: literal-key-value } }
probeDefaults: { every: "\${EVERY}" }
api: { adminToken: "\${ADMIN_TOKEN}" }
alerts:
  receivers:
    - { type: slack, url: "\${SLACK}" }
    - { type: pagerduty, routingKey: "\${PD_KEY}" }
render: { apiKey: "\${RENDER_API_KEY}" }
probes:
  - name: health
    path: "/api/health?api_key=\${QUERY_KEY}"
    headers: { authorization: "Bearer \${API_TOKEN}", x-request-source: greenlight-probe }
`,
    env,
  );

  it('finds tokens, keys, webhook URLs, URL passwords and what variables put into headers and queries', () => {
    const secrets = config.secrets;
    for (const value of [
      env.API_TOKEN,
      `Bearer ${env.API_TOKEN}`,
      env.CUSTOMER,
      env.QUERY_KEY,
      env.ADMIN_TOKEN,
      env.RENDER_API_KEY,
      env.PD_KEY,
      env.SLACK,
      'slackwebhooktoken123',
      'url-password-1',
      'literal-key-value',
    ]) {
      expect(secrets).toContain(value);
    }
  });

  it("finds the CDN purgers' secrets: the Cloudflare token, a purge webhook's URL and its credential header; not the zone id or Cloudflare's address", () => {
    const cdn = parseAgentConfig(
      `environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: health, path: /api/health } ]
switching:
  steps:
    - { step: cdn, name: cloudflare, purge: { type: cloudflare, zoneId: 023e105f4ecef8ad9ca31a8372d0c353, apiToken: literal-cf-token-1 } }
    - { step: cdn, name: fastly, purge: { type: webhook, url: "https://hooks.desk.example/purge/purgehooktoken12345", headers: { x-purge-key: purge-key-value-2 } } }
`,
    );
    for (const value of ['literal-cf-token-1', 'https://hooks.desk.example/purge/purgehooktoken12345', 'purgehooktoken12345', 'purge-key-value-2'])
      expect(cdn.secrets).toContain(value);
    expect(cdn.secrets.some((secret) => secret.includes('023e105f') || secret.includes('api.cloudflare.com'))).toBe(false);
  });

  it('leaves what is not secret: plain header values, other variables, the PagerDuty address', () => {
    expect(config.secrets).not.toContain('application/json');
    expect(config.secrets).not.toContain('greenlight-probe');
    expect(config.secrets).not.toContain('5s');
    expect(config.secrets.some((secret) => secret.includes('events.pagerduty.com'))).toBe(false);
    expect(collectSecrets({ probes: [{ headers: { authorization: 'abc' } }] })).toEqual([]);
    expect(collectSecrets({ rules: [{ labels: { 'auth-team': 'payments', owner: 'desk-ops' } }] })).toEqual([]);
  });

  it('takes what a variable puts into a command argument or a path segment; not a whole address', () => {
    const env = {
      SWITCH_TOKEN: 'switch-token-111222',
      PATH_TOKEN: 'path-token-333444',
      HOOK: 'hook-token-555666',
      BLUE_URL: 'http://127.0.0.1:1',
      HEALTH: '/api/health',
    };
    const config = parseAgentConfig(
      `environments:
  blue: { url: "\${BLUE_URL}" }
  green: { url: "http://127.0.0.1:2/tenant/\${HOOK}" }
traffic: { type: command, command: [/usr/local/bin/switch, --token, "\${SWITCH_TOKEN}"] }
probes:
  - { name: health, path: "\${HEALTH}" }
  - { name: deep, path: "/api/\${PATH_TOKEN}/health" }
`,
      env,
    );
    for (const value of [env.SWITCH_TOKEN, env.PATH_TOKEN, env.HOOK]) expect(config.secrets).toContain(value);
    for (const value of [env.BLUE_URL, env.HEALTH]) expect(config.secrets).not.toContain(value);
  });

  it.each([
    ['a valid URL', 'https://ghp_userOnlyToken55aa11bb@127.0.0.1:1'],
    ['a URL with a bad port', 'https://ghp_userOnlyToken55aa11bb@127.0.0.1:99999'],
  ])('takes a user name without a password as the credential it is, in %s (regression: https://<token>@host leaked, base64 whole)', (_name, url) => {
    const secrets = collectSecrets({ environments: { blue: { url } } });
    expect(secrets).toContain('ghp_userOnlyToken55aa11bb');
    const redactor = new Redactor(secrets);
    // What greenlight sends for it (probes/http-probe.ts), echoed back by a target, and cut short.
    const header = `Basic ${Buffer.from('ghp_userOnlyToken55aa11bb:').toString('base64')}`;
    const echoed = redactor.excerpt(`you sent ${header} / ghp_userOnlyToken55aa11bb:`, 60);
    expect(echoed).not.toMatch(/ghp_|Z2hw/);
  });

  it.each([
    ['no password: PGPASSWORD, ~/.pgpass or trust', 'postgres://greenlight@db.internal:5432/greenlight', []],
    ['the password in the query', 'postgresql://greenlight@db.internal/greenlight?password=db-Pass-5f2a9c', ['db-Pass-5f2a9c']],
    ['the password in the user information', 'postgres://greenlight:db-Pass-5f2a9c@db.internal/greenlight', ['db-Pass-5f2a9c', 'greenlight:db-Pass-5f2a9c']],
    ['a text that is no valid URL (port 99999)', 'postgres://greenlight@127.0.0.1:99999/greenlight', []],
    ['an upper-case scheme', 'POSTGRES://greenlight@db.internal/greenlight', []],
  ])(
    'takes the user name of a database URL for the role it is, %s (regression: "greenlight" was redacted from every log line and event)',
    (_name, databaseUrl, expected) => {
      const secrets = collectSecrets({ cluster: { databaseUrl } });
      expect(secrets).toEqual(expect.arrayContaining(expected));
      expect(secrets).not.toContain('greenlight');
      expect(secrets).not.toContain('greenlight:');
      const redactor = new Redactor(secrets);
      expect(redactor.text('greenlight 0.1.0 watching blue and green')).toBe('greenlight 0.1.0 watching blue and green');
      for (const secret of expected) expect(redactor.text(`sent ${secret}`)).toBe(`sent ${REDACTED}`);
    },
  );

  it('reads the credential inside a Basic header', () => {
    const basic = Buffer.from('deploy:basic-password-9').toString('base64');
    expect(collectSecrets({ environments: { blue: { headers: { Authorization: `Basic ${basic}` } } } })).toEqual(
      expect.arrayContaining([`Basic ${basic}`, basic, 'deploy:basic-password-9', 'basic-password-9']),
    );
  });
});

import { describe, expect, it, vi } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { parseConfig } from '../../config/load-config.js';
import { issuesOf as issuesOfConfig } from '../helpers/config-issues.js';

/** A valid config to start from; tests splice their lines into it. */
const BASE = `environments:
  blue:
    url: http://127.0.0.1:8081
  green:
    url: http://127.0.0.1:8082
probes:
  - name: health
    path: /api/health
`;

const issuesOf = (text: string, env: Record<string, string> = {}) => issuesOfConfig(parseConfig, text, env);

describe('parseConfig', () => {
  it('applies the defaults to a minimal config', () => {
    const config = parseConfig(BASE);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(config.timezone).toBe('America/New_York');
    expect(config.activeEnvironment).toBe('blue');
    expect(config.windows).toEqual([60_000, 300_000]);
    expect(config.probeDefaults).toEqual({
      every: 5_000,
      timeout: 2_000,
      maxBodyBytes: 1_048_576,
      jitter: 0.1,
      confirm: { count: 0, spacing: 100, maxPerSecond: 5 },
    });
    expect(config.probes[0]!.method).toBe('GET');
    expect(config.probes[0]!.expect.status).toEqual([[200, 299]]);
    expect(config.journal.retention).toEqual({ maxAge: 90 * 86_400_000, maxSize: 512 * 1_048_576, every: 600_000 });
  });

  it('accepts time zone aliases and other spellings ICU accepts, as well as canonical names', () => {
    for (const zone of ['America/New_York', 'Asia/Kolkata', 'Asia/Calcutta', 'US/Eastern', 'UTC', 'Etc/GMT+5', 'america/new_york'])
      expect(parseConfig(`timezone: ${zone}\n${BASE}`).timezone).toBe(zone);
  });

  it('checks a canonical time zone without building a formatter (the first one costs ICU tables that stay resident)', () => {
    const built = vi.spyOn(Intl, 'DateTimeFormat');
    try {
      parseConfig(`timezone: Europe/London\n${BASE}`);
      expect(built).not.toHaveBeenCalled();
      expect(() => parseConfig(`timezone: Mars/Olympus\n${BASE}`)).toThrow(/Mars\/Olympus/);
      expect(built).toHaveBeenCalledTimes(1);
    } finally {
      built.mockRestore();
    }
  });

  it('reads journal retention in days and sizes', () => {
    const config = parseConfig(`journal:\n  retention: { maxAge: 30d, maxSize: 64MiB, every: 1m }\n${BASE}`);
    expect(config.journal.retention).toEqual({ maxAge: 30 * 86_400_000, maxSize: 64 * 1_048_576, every: 60_000 });
  });

  it('writes allowed hosts and origins as the agent compares them', () => {
    const config = parseConfig(
      `api:\n  allowedHosts: [GreenLight.Internal., "status.example.com:8443", "[::1]"]\n  allowedOrigins: ["https://Dash.Example.com:443/", "http://10.0.0.5:3000"]\n${BASE}`,
    );
    expect(config.api.allowedHosts).toEqual(['greenlight.internal', 'status.example.com:8443', '[::1]']);
    expect(config.api.allowedOrigins).toEqual(['https://dash.example.com', 'http://10.0.0.5:3000']);
    expect(parseConfig(BASE).api).toEqual({ stream: { maxClients: 256, maxClientsPerAddress: 32 }, allowedOrigins: [], allowedHosts: [] });
  });

  it('returns a frozen value', () => {
    const config = parseConfig(BASE);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.probes[0]!.expect)).toBe(true);
  });

  it.each([
    ['a bad duration', `${BASE}    every: 5x\n`, 'probes[0].every: "5x" is not a duration such as 500ms, 5s or 2m (line 9)'],
    // A probe every 0 ms would plan its ticks back to back: the agent would never leave that turn.
    ['an interval of 0', `${BASE}    every: 0ms\n`, 'probes[0].every: must be at least 10ms (line 9)'],
    ['an interval under 10 ms', `probeDefaults:\n  every: 5ms\n${BASE}`, 'probeDefaults.every: must be at least 10ms (line 2)'],
    // The same for what else repeats: sweeps and polls.
    ['a retention sweep every 0', `journal:\n  retention: { every: 0s }\n${BASE}`, 'journal.retention.every: must be at least 1s (line 2)'],
    ['a rollup sweep every 500 ms', `rollups:\n  retention:\n    every: 500ms\n${BASE}`, 'rollups.retention.every: must be at least 1s (line 3)'],
    [
      'a Render poll every 0',
      `render: { apiKey: k, services: { blue: a, green: b }, pollInterval: 0ms }\n${BASE}`,
      'render.pollInterval: must be at least 10ms (line 1)',
    ],
    [
      'a verify step polling every 0',
      `switching:\n  steps:\n    - { step: verify, url: "https://x.example/api/health", interval: 0ms }\n${BASE}`,
      'switching.steps[0].interval: must be at least 10ms (line 3)',
    ],
    // A probe holds the whole answer while its checks read it: 100GiB let an endless answer take the agent's memory.
    [
      'a body limit past 64 MiB',
      `probeDefaults:\n  maxBodyBytes: 100GiB\n${BASE}`,
      'probeDefaults.maxBodyBytes: must be at most 64MiB: a probe holds the whole answer in memory while its checks read it (line 2)',
    ],
    ['a misspelt key', `${BASE}    evry: 5s\n`, 'probes[0].evry: unknown key; did you mean every? (line 9)'],
    ['an unknown top-level key', `${BASE}listn: 1\n`, 'listn: unknown key; did you mean listen? (line 9)'],
    ['a path without /', BASE.replace('/api/health', 'api/health'), 'probes[0].path: "api/health" is not a path: it must start with / (line 8)'],
    [
      'a bad status',
      `${BASE}    expect:\n      status: [200, abc]\n`,
      'probes[0].expect.status[1]: "abc" is not a status code, a class such as 2xx, or a range such as 200-299 (line 10)',
    ],
    [
      'a bad JSON path',
      `${BASE}    expect:\n      json:\n        - path: status\n          equals: ok\n`,
      'probes[0].expect.json[0].path: "status" is not a JSON path such as $.status, $.database.connected or $.universe[0].symbol (line 11)',
    ],
    [
      'an assertion without operator',
      `${BASE}    expect:\n      json:\n        - path: $.status\n`,
      'probes[0].expect.json[0]: names no operator: add one of equals, notEquals, in, exists, nonEmpty, is, gt, gte, lt, lte, length, matches (line 11)',
    ],
    [
      'a bad regex',
      `${BASE}    expect:\n      json:\n        - path: $.status\n          matches: "(("\n`,
      'probes[0].expect.json[0].matches: "((" is not a valid regular expression: Invalid regular expression: /((/: Unterminated group (line 12)',
    ],
    [
      'a regex that could backtrack without bound',
      `${BASE}    expect:\n      headers:\n        - name: etag\n          matches: '(\\w+)-\\1'\n`,
      'probes[0].expect.headers[0].matches: "(\\\\w+)-\\\\1" could take time without bound to match, so greenlight does not run it: write it without back-references (\\1), look-arounds ((?=, (?!, (?<=, (?<!) and repeat counts in the hundreds, as Prometheus and Alertmanager require (line 12)',
    ],
    [
      'a bad cron',
      `${BASE}    cron: "every day"\n`,
      'probes[0].cron: "every day" is not a cron expression such as "*/10 * * * * *" or "0 9-16 * * 1-5" (line 9)',
    ],
    ['every and cron together', `${BASE}    every: 5s\n    cron: "* * * * *"\n`, 'probes[0].cron: give either every or cron, not both (line 10)'],
    ['a bad time zone', `timezone: Mars/Olympus\n${BASE}`, 'timezone: "Mars/Olympus" is not an IANA time zone such as America/New_York (line 1)'],
    ['a bad listen address', `listen: localhost\n${BASE}`, 'listen: "localhost" is not a listen address such as 127.0.0.1:9464, :9464 or [::1]:9464 (line 1)'],
    ['a non-http url', BASE.replace('http://127.0.0.1:8081', 'ftp://x'), 'environments.blue.url: "ftp://x" is not an http:// or https:// URL (line 3)'],
    [
      'an unknown active environment',
      `activeEnvironment: purple\n${BASE}`,
      'activeEnvironment: "purple" is not one of the environments (blue, green) (line 1)',
    ],
    ['a wrong type', `windows: 5m\n${BASE}`, 'windows: expected a list, got string "5m" (line 1)'],
    ['a bad size', `${BASE}    maxBodyBytes: lots\n`, 'probes[0].maxBodyBytes: "lots" is not a size such as 65536, 512KiB or 1MiB (line 9)'],
    ['a bad method', `${BASE}    method: FETCH\n`, 'probes[0].method: string "FETCH" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (line 9)'],
    ['no probes', BASE.slice(0, BASE.indexOf('probes:')), 'probes: is required (a list)'],
    ['YAML syntax', 'probes: [unclosed\n', 'YAML syntax: '],
    // The contract: the message names the key path and the line (regression: only the line).
    ['a duplicate key, by its path', `timezone: UTC\ntimezone: Europe/London\n${BASE}`, 'timezone: YAML syntax: Map keys must be unique (line 2)'],
    ['a duplicate key deep down', `${BASE}    path: /again\n`, 'probes[0].path: YAML syntax: Map keys must be unique (line 9)'],
    [
      'a bad retention size',
      `journal:\n  retention:\n    maxSize: huge\n${BASE}`,
      'journal.retention.maxSize: "huge" is not a size such as 65536, 512KiB or 1MiB (line 3)',
    ],
    ['a misspelt retention key', `journal:\n  retention:\n    maxAges: 30d\n${BASE}`, 'journal.retention.maxAges: unknown key; did you mean maxAge? (line 3)'],
    ['no room for stream clients', `api:\n  stream:\n    maxClients: 0\n${BASE}`, 'api.stream.maxClients: must be at least 1 (line 3)'],
    [
      'a fractional per-address limit',
      `api:\n  stream:\n    maxClientsPerAddress: 1.5\n${BASE}`,
      'api.stream.maxClientsPerAddress: expected an integer, got number 1.5 (line 3)',
    ],
    ['a misspelt stream limit', `api:\n  stream:\n    maxClient: 3\n${BASE}`, 'api.stream.maxClient: unknown key; did you mean maxClients? (line 3)'],
    [
      'an origin without a scheme',
      `api:\n  allowedOrigins: [dash.example.com]\n${BASE}`,
      'api.allowedOrigins[0]: "dash.example.com" is not an origin such as https://dash.example.com or http://10.0.0.5:3000 (scheme, host and port; no path) (line 2)',
    ],
    [
      'an origin with a path',
      `api:\n  allowedOrigins: ["https://dash.example.com/grafana"]\n${BASE}`,
      'api.allowedOrigins[0]: "https://dash.example.com/grafana" is not an origin',
    ],
    [
      'a URL for a host name',
      `api:\n  allowedHosts: ["https://greenlight.internal"]\n${BASE}`,
      'api.allowedHosts[0]: "https://greenlight.internal" is not a host name such as greenlight.internal or greenlight.internal:9464 (line 2)',
    ],
    [
      'a host name with a bad port',
      `api:\n  allowedHosts: ["greenlight.internal:99999"]\n${BASE}`,
      'api.allowedHosts[0]: "greenlight.internal:99999" is not a host name',
    ],
  ])('reports %s with key path, what is expected and the line', (_name, text, expected) => {
    expect(issuesOf(text).join('\n')).toContain(expected);
  });

  it.each([
    [
      '__proto__ in a header map',
      `${BASE}    headers:\n      __proto__: x\n`,
      'probes[0].headers.__proto__: is not allowed as a key: __proto__, constructor and prototype are reserved names in greenlight configs; rename or remove it (line 10)',
    ],
    [
      'constructor in labels',
      `rules:\n  - name: r\n    severity: warning\n    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\n    labels: { constructor: x }\n${BASE}`,
      'rules[0].labels.constructor: is not allowed as a key',
    ],
    [
      'prototype at the top',
      `prototype: 1\n${BASE}`,
      'prototype: is not allowed as a key: __proto__, constructor and prototype are reserved names in greenlight configs; rename or remove it (line 1)',
    ],
    [
      '__proto__ deep in a body',
      `${BASE}    body: { a: [ { b: { __proto__: { admin: true } } } ] }\n`,
      'probes[0].body.a[0].b.__proto__: is not allowed as a key',
    ],
  ])('refuses %s with its line (regression: prototype-named keys were taken, or silently dropped)', (_name, text, expected) => {
    expect(issuesOf(text).join('\n')).toContain(expected);
  });

  it.each([
    ['a space', 'adminToken: "adm token-0123456789"', 'api.adminToken: has a space at position 4'],
    ['a tab', 'rollbackToken: "rbk\\ttoken-0123456789"', 'api.rollbackToken: has a control character (U+0009) at position 4'],
    ['a control character', 'streamToken: "str\\u0007token-0123456789"', 'api.streamToken: has a control character (U+0007) at position 4'],
    ['a non-ASCII letter', 'adminToken: "adm-töken-0123456789"', 'api.adminToken: has a non-ASCII character (ö) at position 6'],
    ['only spaces', 'adminToken: "          "', 'api.adminToken: has a space at position 1'],
    ['nothing', 'adminToken: ""', 'api.adminToken: is empty'],
  ])('refuses a token with %s: it could never authenticate (regression: accepted, and every call answered 401)', (_name, line, expected) => {
    const issues = issuesOf(`api:\n  ${line}\n${BASE}`).join('\n');
    expect(issues).toContain(expected);
    expect(issues).toContain('(line 2)');
    expect(issues).not.toContain('0123456789');
  });

  it('refuses a token of spaces that comes from a variable, naming the key', () => {
    expect(issuesOf(`api:\n  adminToken: \${ADMIN_TOKEN}\n${BASE}`, { ADMIN_TOKEN: '   token with spaces  ' }).join('\n')).toContain(
      'api.adminToken: has a space at position 1',
    );
  });

  it.each([
    ['no token at all', '', ['controls disabled: api.adminToken and api.rollbackToken are not set']],
    ['only the rollback token', 'api: { rollbackToken: rollback-token-0123 }\n', ['admin controls disabled: api.adminToken is not set']],
    ['the admin token', 'api: { adminToken: admin-token-0123 }\n', []],
  ])('with %s, says which controls are disabled in the notices', (_name, api, expected) => {
    const notices = parseConfig(`${api}${BASE}`).notices;
    expect(notices.filter((notice) => notice.includes('controls disabled')).map((notice) => notice.slice(0, expected[0]?.length ?? 0))).toEqual(expected);
  });

  it('reports cross-reference problems once the structure is valid', () => {
    const text = `${BASE}  - name: health\n    path: /x\n    environments: [purple]\n  - name: three\n    path: /y\n`;
    expect(issuesOf(text)).toEqual([
      'probes[1].name: "health" is already the name of probes[0]; probe names must be unique (line 9)',
      'probes[1].environments[0]: "purple" is not one of the environments (blue, green) (line 11)',
    ]);
    expect(issuesOf(BASE.replace('  green:\n    url: http://127.0.0.1:8082\n', ''))[0]).toBe(
      'environments: needs exactly two environments (blue and green), found 1: blue (line 2)',
    );
  });

  it('reports every problem at once, in line order', () => {
    const text = `listen: nowhere\n${BASE}    evry: 5s\n    timeout: 2x\n`;
    const issues = issuesOf(text);
    expect(issues).toHaveLength(3);
    expect(issues.map((issue) => issue.split(':')[0])).toEqual(['listen', 'probes[0].evry', 'probes[0].timeout']);
  });

  it('puts every issue in the error message', () => {
    expect(() => parseConfig(`${BASE}    every: 5x\n    evry: 1\n`, {}, { source: 'my.yaml' })).toThrow(
      /^my\.yaml: invalid configuration \(2 problems\):\n {2}- probes\[0\]\.every: "5x" is not a duration such as 500ms, 5s or 2m \(line 9\)\n {2}- probes\[0\]\.evry: unknown key/,
    );
  });
});

describe("a rule's condition names the part that is wrong (regression: every mistake in a leaf was 'is not a condition' at when)", () => {
  const rule = (leaf: string) => `rules:\n  - name: r\n    severity: warning\n    when:\n      all:\n        - ${leaf}\n${BASE}`;

  it.each([
    [
      'a NaN value',
      '{ fact: errorRatio, operator: greaterThan, value: .nan }',
      "rules[0].when.all[0].value: expected a string, a number, true or false, null or a list, got NaN (YAML's .nan) (line 6)",
    ],
    ['an infinite value', '{ fact: errorRatio, operator: greaterThan, value: -.inf }', "got -Infinity (YAML's -.inf)"],
    [
      'a mapping as the value',
      '{ fact: errorRatio, operator: greaterThan, value: { a: 1 } }',
      'rules[0].when.all[0].value: expected a string, a number, true or false, null or a list, got a mapping',
    ],
    [
      'a mapping in a list value',
      '{ fact: errorRatio, operator: in, value: [0.1, { x: 1 }] }',
      'rules[0].when.all[0].value[1]: expected a string, a number or true or false, got a mapping',
    ],
    [
      'a misspelt operator key',
      '{ fact: errorRatio, operater: greaterThan, value: 0.1 }',
      'rules[0].when.all[0].operater: unknown key; did you mean operator?',
    ],
    ['a missing value', '{ fact: errorRatio, operator: greaterThan }', 'rules[0].when.all[0].value: is required'],
    ['an operator that is a number', '{ fact: errorRatio, operator: 5, value: 0.1 }', 'rules[0].when.all[0].operator: expected a string, got number 5'],
    ['a misspelt all', '{ al: [] }', 'rules[0].when.all[0]: is not a condition'],
  ])('%s', (_name, leaf, expected) => {
    const issues = issuesOf(rule(leaf));
    expect(issues.join('\n')).toContain(expected);
    expect(issues).toHaveLength(expected.includes('operater') ? 2 : 1);
  });

  it('keeps the general message when the leaf mixes two shapes', () => {
    expect(issuesOf(rule('{ fact: errorRatio, operator: greaterThan, value: 0.1, all: [] }'))).toEqual([
      'rules[0].when.all[0]: is not a condition: use {all: [...]}, {any: [...]}, {not: ...} or {fact, operator, value, params} (line 6)',
    ]);
  });
});

describe('interpolation', () => {
  const text = `listen: \${LISTEN:-127.0.0.1:9999}
environments:
  blue:
    url: \${BLUE_URL}
  green:
    url: \${GREEN_URL:-http://127.0.0.1:8082}
probeDefaults:
  every: \${INTERVAL:-5s}
  jitter: \${JITTER:-0.2}
probes:
  - name: health
    path: /api/health
    headers:
      authorization: Bearer \${API_TOKEN:-none}
      x-price: $$5
`;

  it('substitutes variables and defaults, typing whole-value references', () => {
    const config = parseConfig(text, { BLUE_URL: 'http://blue.internal:80', INTERVAL: '1s', API_TOKEN: 't0ken' });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(config.environments.blue!.url).toBe('http://blue.internal:80');
    expect(config.environments.green!.url).toBe('http://127.0.0.1:8082');
    expect(config.probeDefaults.every).toBe(1_000);
    expect(config.probeDefaults.jitter).toBe(0.2);
    expect(config.probes[0]!.headers).toEqual({ authorization: 'Bearer t0ken', 'x-price': '$5' });
  });

  it.each([
    ['LISTEN', '19475', "listen: expected a string, got number 19475 from ${LISTEN:-127.0.0.1:9999}: set the variable to this key's whole form"],
    ['INTERVAL', '5', "probeDefaults.every: expected a string, got number 5 from ${INTERVAL:-5s}: set the variable to this key's whole form"],
  ])('a number from %s where a string goes: says to change the variable, not to quote it (regression: "put it in quotes")', (name, value, expected) => {
    const issues = issuesOf(text, { BLUE_URL: 'http://b', [name]: value }).join('\n');
    expect(issues).toContain(expected);
    expect(issues).not.toContain('put it in quotes');
  });

  it('treats an empty variable as unset, so the default applies', () => {
    expect(parseConfig(text, { BLUE_URL: 'http://b', INTERVAL: '' }).probeDefaults.every).toBe(5_000);
  });

  it('names an unset variable that a required key needs', () => {
    expect(issuesOf(text)).toEqual([
      'environments.blue.url: environment variable BLUE_URL is not set; set it, or give a default with ${BLUE_URL:-value} (line 4)',
    ]);
  });

  it('drops an optional key whose variable is unset', () => {
    const config = parseConfig(`${BASE}    timeout: \${PROBE_TIMEOUT}\n`);
    expect(config.probes[0]!.timeout).toBeUndefined();
  });

  it('never re-parses an interpolated value as YAML', () => {
    const config = parseConfig(`${BASE}    headers:\n      x-note: \${NOTE}\n`, { NOTE: 'a: b\n- c' });
    expect(config.probes[0]!.headers['x-note']).toBe('a: b\n- c');
  });

  it.each([
    ['an empty reference', '${}'],
    ['an unterminated one', 'Bearer ${API_TOKEN'],
    ['a default holding another reference', '${API_TOKEN:-${OTHER}}'],
  ])('refuses %s, naming the key and not quoting the value (regression: kept as its own text, it went out as a header)', (_name, value) => {
    const issues = issuesOf(`${BASE}    headers:\n      authorization: "${value}"\n`, { API_TOKEN: 't0ken' });
    expect(issues).toEqual([
      'probes[0].headers.authorization: has a ${ that begins no variable reference such as ${VAR} or ${VAR:-default} (a name of letters, digits and _, closed by }; a default cannot hold another ${…}): write $${ for a literal ${ (line 10)',
    ]);
  });

  it('takes $${ as a literal ${', () => {
    expect(parseConfig(`${BASE}    headers:\n      x-template: "$\${NAME}"\n`).probes[0]!.headers['x-template']).toBe('${NAME}');
  });
});

describe('a refused config never quotes a secret (regression: webhook URLs and passwords were quoted into the log, the reload event and the journal)', () => {
  const receivers = `alerts:
  receivers:
    - { type: webhook, name: hook, url: "\${HOOK_URL}" }
`;
  const traffic = `traffic: { type: webhook, url: "\${TRAFFIC_URL}" }\n`;
  it.each([
    [
      'a webhook URL without its scheme',
      `${BASE}${receivers}`,
      { HOOK_URL: 'hooks.slack.example/services/T0/B0/HookSecret123456' },
      ['HookSecret123456', 'hooks.slack.example'],
    ],
    ['a traffic webhook on another scheme', `${BASE}${traffic}`, { TRAFFIC_URL: 'ftp://switch.example/TrafficSecret987654' }, ['TrafficSecret987654']],
    ['a password in a URL with a bad port', BASE.replace('http://127.0.0.1:8081', 'http://ops:UrlPassw0rd99@blue.example:99999'), {}, ['UrlPassw0rd99']],
    ['a password in a URL of another scheme', BASE.replace('http://127.0.0.1:8081', 'htp://ops:UrlPassw0rd99@blue.example'), {}, ['UrlPassw0rd99']],
    [
      'a routing key of digits written unquoted',
      `${BASE}alerts:\n  receivers:\n    - { type: pagerduty, routingKey: 12345678901234567890123 }\n`,
      {},
      ['1.2345678901234568e+22', '12345678901'],
    ],
  ])('%s', (_name, text, env, hidden) => {
    const issues = issuesOfConfig(parseAgentConfig, text, env).join('\n');
    expect(issues).toContain('[redacted]');
    for (const secret of hidden) expect(issues).not.toContain(secret);
  });

  it('keeps a variable of digits in a secret place a string: a valid token, not a number refused and quoted', () => {
    const config = parseAgentConfig(`${BASE}    headers:\n      x-api-key: \${KEY}\napi:\n  adminToken: \${ADMIN}\n`, {
      KEY: '4815162342108',
      ADMIN: '98765432109876543210',
    });
    expect(config.probes[0]!.headers['x-api-key']).toBe('4815162342108');
    expect(config.api.adminToken).toBe('98765432109876543210');
    // Elsewhere a whole-value reference still takes the type it reads as.
    expect(parseConfig(`${BASE}probeDefaults:\n  jitter: \${J}\n`, { J: '0.25' }).probeDefaults.jitter).toBe(0.25);
  });

  it('an unquoted value starting with * is an alias: the line is named, the name (maybe a token) is not', () => {
    const issues = issuesOf(`${BASE}api:\n  rollbackToken: *RbkAlias_secret123\n`);
    expect(issues).toEqual(['YAML: a value starting with * is an alias, and no anchor (&name) before it has its name: put the value in quotes (line 10)']);
  });

  it('an alias inside its own anchor is refused, not followed for ever', () => {
    expect(issuesOf(`${BASE}x: &loop [1, *loop]\n`)).toEqual(['YAML: an alias (*name) is inside the value its anchor (&name) names, a value without end']);
  });

  it('a receiver that fails its own checks is not also reported as a duplicate name', () => {
    const issues = issuesOfConfig(parseAgentConfig, `${BASE}alerts:\n  receivers:\n    - { type: webhook }\n    - { type: webhook }\n`);
    expect(issues.join('\n')).not.toContain('is already the name of');
  });

  it('refuses a database URL node-postgres cannot read, without quoting it', () => {
    const issues = issuesOf(`${BASE}cluster:\n  databaseUrl: "postgres://gl:DbPassw0rd99@127.0.0.1:notaport/gl"\n`).join('\n');
    expect(issues).toContain('cluster.databaseUrl: is not a URL that node-postgres can read');
    expect(issues).not.toContain('DbPassw0rd99');
  });
});

describe('environments at one address', () => {
  it('says so (every failure would show on both, and a rollback would always be held), without refusing it', () => {
    const config = parseConfig(BASE.replace('http://127.0.0.1:8082', 'http://127.0.0.1:8081'));
    expect(config.notices).toContainEqual(expect.stringMatching(/^environments blue and green have the same url: every failure shows on both/));
    expect(parseConfig(BASE).notices.join('\n')).not.toContain('the same url');
  });
});

describe('durations greenlight waits for on a timer (regression: 30d passed validate, and Node waited 1 ms instead)', () => {
  const LONGER = 'is longer than 24d: greenlight waits for this on a timer, and a timer cannot wait longer than 24.8 days';
  it.each([
    ['a probe timeout', `probeDefaults:\n  timeout: 25d\n${BASE}`, `probeDefaults.timeout: 25d ${LONGER} (line 2)`],
    ['a probe interval', `${BASE}    every: 30d\n`, `probes[0].every: 30d ${LONGER} (line 9)`],
    ['a traffic timeout', `traffic: { type: webhook, url: "http://127.0.0.1:9/switch", timeout: 30d }\n${BASE}`, `traffic.timeout: 30d ${LONGER} (line 1)`],
    ['a repeat interval', `alerts:\n  repeatInterval: 30d\n${BASE}`, `alerts.repeatInterval: 30d ${LONGER} (line 2)`],
    ['a retention sweep', `journal:\n  retention: { every: 30d }\n${BASE}`, `journal.retention.every: 30d ${LONGER} (line 2)`],
  ])('refuses %s of more than 24d, naming it', (_name, text, expected) => {
    expect(issuesOfConfig(parseAgentConfig, text, {})).toEqual([expected]);
  });

  it('takes 24d, and spans nothing waits for (periods, ages, windows) of any length', () => {
    expect(parseConfig(`probeDefaults:\n  timeout: 24d\n${BASE}`).probeDefaults.timeout).toBe(24 * 86_400_000);
    const config = parseConfig(`windows: [1m, 30d]\njournal:\n  retention: { maxAge: 400d }\nrollups:\n  retention: { maxAge: 400d, minuteAge: 30d }\n${BASE}`);
    expect(config.windows).toEqual([60_000, 30 * 86_400_000]);
    expect(config.journal.retention.maxAge).toBe(400 * 86_400_000);
    expect(config.rollups.retention.minuteAge).toBe(30 * 86_400_000);
  });
});

describe('windows too short or too long to count (regression: `windows: [0s]` passed validate, and the agent spun at full CPU answering nothing, not even SIGTERM)', () => {
  const SHORT = 'must be at least 300ms: a window is 30 time buckets, none shorter than the shortest probe interval (10ms)';
  const SLO = 'slo:\n  avail:\n    objective: 0.99\n';
  it.each([
    ['a zero window', `windows: [0s]\n${BASE}`, [`windows[0]: ${SHORT} (line 1)`]],
    ['a window of a fraction of a millisecond', `windows: [1m, 0.0000001ms]\n${BASE}`, [`windows[1]: ${SHORT} (line 1)`]],
    ['a window of more digits than a double holds', `windows: [${'9'.repeat(400)}d]\n${BASE}`, ['windows[0]: is too large a number to be a duration (line 1)']],
    ['a zero SLO period', `${SLO}    period: 0s\n${BASE}`, [`slo.avail.period: ${SHORT} (line 4)`]],
    ['a zero SLO window', `${SLO}    windows: [0ms]\n${BASE}`, [`slo.avail.windows[0]: ${SHORT} (line 4)`]],
    [
      "a burn rate's own window",
      `${SLO}rules:\n  - name: burn\n    severity: warning\n    when: { all: [{ fact: burnRate, params: { window: 1ms }, operator: greaterThan, value: 1 }] }\n${BASE}`,
      ['rules[0].when.all[0].params.window: 1ms is shorter than 300ms, the shortest window (for fact burnRate) (line 7)'],
    ],
  ])('refuses %s, naming it', (_name, text, expected) => {
    expect(issuesOfConfig(parseAgentConfig, text, {})).toEqual(expected);
  });

  it('takes 300ms', () => {
    expect(parseConfig(`windows: [300ms]\n${BASE}`).windows).toEqual([300]);
  });
});

describe("YAML tags other than the core schema's (regression: `!custom 1s` was read as 1s, `!!float 1` as the string 1, and `!!timestamp`, `!!binary`, `!!set` became a date, bytes and a map)", () => {
  const WHY = 'write the value without it (greenlight reads strings, numbers, booleans, null, maps and lists)';
  it.each([
    ['an unknown tag', `timezone: !custom UTC\n${BASE}`, [`timezone: YAML: the tag !custom is not taken: ${WHY} (line 1)`]],
    ['a timestamp', `${BASE}    body: !!timestamp 2001-12-14\n`, [`probes[0].body: YAML: the tag !!timestamp is not taken: ${WHY} (line 9)`]],
    ['bytes', `${BASE}    body: !!binary aGVsbG8=\n`, [`probes[0].body: YAML: the tag !!binary is not taken: ${WHY} (line 9)`]],
    ['a set', `${BASE}    headers: !!set {x, y}\n`, [`probes[0].headers: YAML: the tag !!set is not taken: ${WHY} (line 9)`]],
    [
      'a core tag its value does not fit',
      `${BASE}    timeout: !!float 1\n`,
      [`probes[0].timeout: YAML: the tag !!float does not fit its value: ${WHY} (line 9)`],
    ],
  ])('refuses %s, naming the key and the line', (_name, text, expected) => {
    expect(issuesOf(text)).toEqual(expected);
  });

  it('takes the core tags that fit', () => {
    const config = parseConfig(`${BASE}    path: !!str /api/health\n`.replace('    path: /api/health\n', ''));
    expect(config.probes[0]!.path).toBe('/api/health');
  });
});

describe('a block turned off for an unset variable is still checked (regression: validate passed in CI what the agent refused where the secret is set)', () => {
  it.each([
    ['traffic: { type: webhook, url: "${HOOK}", timeout: 5x }\n', 'traffic.timeout: "5x" is not a duration such as 500ms, 5s or 2m (line 9)'],
    ['traffic: { type: webhook, url: "${HOOK}", urll: x }\n', 'traffic.urll: unknown key; did you mean url? (line 9)'],
    [
      'alerts:\n  receivers:\n    - { type: slack, url: "${HOOK}" }\n    - { type: webhook, name: am, url: "${HOOK}", bogus: 1 }\n',
      'alerts.receivers[1].bogus: unknown key; expected one of type, name, severities, timeout, retries, url (line 12)',
    ],
  ])('%s', (extra, expected) => {
    expect(issuesOfConfig(parseAgentConfig, `${BASE}${extra}`, {})).toEqual([expected]);
  });

  it('is only a notice when the rest of the block is right', () => {
    const config = parseAgentConfig(`${BASE}traffic: { type: webhook, url: "\${HOOK}", timeout: 5s }\n`, {});
    expect(config.traffic.type).toBe('none');
    expect(config.notices.join('\n')).toContain('traffic (webhook) is off because HOOK is not set');
  });
});

describe('keys that are not plain words', () => {
  it('are quoted in the path, never split the line, and a refused one says the naming rule (regression: a raw newline and "Invalid key in record")', () => {
    const issues = issuesOfConfig(parseAgentConfig, `${BASE}actions:\n  "pa\\"ge.x": { type: alert }\n`, {});
    expect(issues).toEqual([
      'actions["pa\\"ge.x"]: the key "pa\\"ge.x" is not a name: use lower-case letters, digits, - and _, starting with a letter (line 10)',
    ]);
  });

  it.each([
    [
      'a receiver URL that lost its colon',
      `${BASE}alerts:\n  receivers:\n    - type: webhook\n      url https://hooks.slack.com/services/T0/B0/SlackSecretPathAA11\n      severities: [critical]\n`,
    ],
    ['a token run onto the next key', `${BASE}api:\n  adminToken:\n  AdminMisindentTok77\n  rollbackToken: x\n`],
    ['a URL with a password and a stray colon', BASE.replace(/url: (\S+)/, 'url: http://gu:GreenPwDD44@127.0.0.1:21082: x')],
    ['a key with a space in a record', `${BASE}actions:\n  "pa ge\\nSecretKeyEE55": { type: alert }\n`],
  ])('that may hold a value are not quoted, as they may be secrets: %s (regression: the key path quoted a Slack URL, a token, a password)', (_, text) => {
    const issues = issuesOfConfig(parseAgentConfig, text, {});
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.join('\n')).toContain('a key with a space or a URL in it, not shown');
    expect(issues.join('\n')).not.toMatch(/SlackSecretPathAA11|AdminMisindentTok77|GreenPwDD44|SecretKeyEE55/);
    expect(issues.join('')).not.toContain('\n');
  });

  it.each([
    ['a token with a colon after it', `${BASE}api:\n  adminToken: 4f8a9c2e1b7d0a11: the admin token\n`, 'api.adminToken[part of a secret value, not shown]'],
    [
      'a credential header with a colon after it',
      BASE.replace('    path: /api/health\n', '    path: /api/health\n    headers:\n      x-api-key: 4f8a9c2e1b7d0a11: from the vault\n'),
      'probes[0].headers.x-api-key[part of a secret value, not shown]',
    ],
    [
      'a key named like a secret in a plugin block',
      `${BASE}traffic:\n  type: webhook\n  url: http://127.0.0.1:1/x\n  apiKey: 4f8a9c2e1b7d0a11: x\n`,
      'traffic.apiKey[',
    ],
  ])('below a key whose value is a secret are not shown: %s (regression: the YAML error named api.adminToken.<the token>)', (_, text, path) => {
    const issues = issuesOfConfig(parseAgentConfig, text, {});
    expect(issues.join('\n')).toContain(path);
    expect(issues.join('\n')).toContain('YAML syntax');
    expect(issues.join('\n')).not.toContain('4f8a9c2e1b7d0a11');
  });
});

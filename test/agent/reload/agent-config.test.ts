import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_CONFIG_SCHEMA, parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { issuesOf as issuesOfConfig } from '../../helpers/config-issues.js';
import { configJsonSchema } from '../../../config/json-schema.js';
import { FACTS } from '../../../rules/facts.js';
import { RuleEvaluator } from '../../../rules/rule-evaluator.js';
import { writeTempFile } from '../../helpers/tools.js';

const DEFAULT_TEXT = readFileSync(new URL('../../../config/greenlight.yaml', import.meta.url), 'utf8');

const issuesOf = (text: string, env: Record<string, string> = {}) => issuesOfConfig(parseAgentConfig, text, env);

describe('the default config', () => {
  it('is valid with no environment variables set and uses the contract defaults', () => {
    const config = parseAgentConfig(DEFAULT_TEXT, {});
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(config.dataDir).toBe('./data');
    expect(config.activeEnvironment).toBe('blue');
    expect(config.environments).toEqual({ blue: { url: 'http://127.0.0.1:8081', headers: {} }, green: { url: 'http://127.0.0.1:8082', headers: {} } });
    expect(config.probeDefaults.every).toBe(5_000);
    expect(config.probes.map((probe) => probe.path)).toEqual(['/api/health', '/api/alphastack/universe', '/api/discoveries', '/api/portfolio/positions']);
    expect(config.api).toEqual({ stream: { maxClients: 256, maxClientsPerAddress: 32 }, allowedOrigins: [], allowedHosts: [] });
  });

  it('turns off the traffic webhook and every receiver whose variable is unset, saying which', () => {
    const config = parseAgentConfig(DEFAULT_TEXT, {});
    expect(config.traffic).toEqual({ type: 'none' });
    expect(config.alerts.receivers).toEqual([]);
    expect(config.notices).toEqual([
      'traffic (webhook) is off because TRAFFIC_WEBHOOK_URL is not set; using {"type":"none"}',
      'alerts.receivers[0] (slack) is off because SLACK_WEBHOOK_URL is not set',
      'alerts.receivers[1] (discord) is off because DISCORD_WEBHOOK_URL is not set',
      'alerts.receivers[2] (pagerduty) is off because PAGERDUTY_ROUTING_KEY is not set',
      'alerts.receivers[3] (webhook "alertmanager") is off because ALERT_WEBHOOK_URL is not set',
      expect.stringMatching(/^controls disabled: api.adminToken and api.rollbackToken are not set \(ADMIN_TOKEN, ROLLBACK_TOKEN/),
    ]);
  });

  it('reads the contract variables', () => {
    const config = parseAgentConfig(DEFAULT_TEXT, {
      GREENLIGHT_LISTEN: '0.0.0.0:9000',
      GREENLIGHT_DATA_DIR: '/var/lib/greenlight',
      BLUE_URL: 'https://blue.example',
      GREEN_URL: 'https://green.example',
      GREENLIGHT_ACTIVE: 'green',
      GREENLIGHT_PROBE_INTERVAL: '2s',
      ADMIN_TOKEN: 'admin-token-0123456789',
      ROLLBACK_TOKEN: 'rollback-token-0123456789',
      TRAFFIC_WEBHOOK_URL: 'https://switch.example/hook',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.example/T/B/x',
      PAGERDUTY_ROUTING_KEY: 'R0UT1NGKEY',
      ALERT_WEBHOOK_URL: 'https://am.example/hook',
    });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(config.dataDir).toBe('/var/lib/greenlight');
    expect(config.environments.blue!.url).toBe('https://blue.example');
    expect(config.activeEnvironment).toBe('green');
    expect(config.probeDefaults.every).toBe(2_000);
    expect(config.api).toMatchObject({ adminToken: 'admin-token-0123456789', rollbackToken: 'rollback-token-0123456789' });
    expect(config.traffic).toMatchObject({ type: 'webhook', url: 'https://switch.example/hook' });
    expect(config.alerts.receivers.map((r) => r.type)).toEqual(['slack', 'pagerduty', 'webhook']);
    expect(config.alerts.receivers[1]).toMatchObject({ routingKey: 'R0UT1NGKEY', url: 'https://events.pagerduty.com/v2/enqueue' });
    expect(config.notices).toEqual(['alerts.receivers[1] (discord) is off because DISCORD_WEBHOOK_URL is not set']);
  });

  it('points editors at the committed JSON Schema', () => {
    expect(DEFAULT_TEXT.split('\n')[0]).toBe('# yaml-language-server: $schema=./greenlight.schema.json');
  });
});

describe('config/greenlight.schema.json', () => {
  it('is what `greenlight schema` generates (run `npm run schema` after changing a schema)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../../config/greenlight.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(configJsonSchema(AGENT_CONFIG_SCHEMA));
  });

  it('rejects unknown keys, as the loader does', () => {
    const schema = configJsonSchema(AGENT_CONFIG_SCHEMA) as {
      additionalProperties?: unknown;
      properties: { probes: { items: { additionalProperties?: unknown } } };
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.probes.items.additionalProperties).toBe(false);
  });
});

const BASE = `environments:
  blue:
    url: http://127.0.0.1:8081
  green:
    url: http://127.0.0.1:8082
probes:
  - name: health
    path: /api/health
    extract:
      memory_percent: $.memory.percent
actions:
  page:
    type: alert
rules:
  - name: r
    severity: critical
`;

describe('rules and plugin blocks are checked before anything starts', () => {
  it.each([
    [
      'an unknown fact',
      `    when: { all: [ { fact: errorRate, operator: greaterThan, value: 0.1 } ] }\n`,
      'rules[0].when.all[0].fact: "errorRate" is not a fact; use one of errorRatio,',
    ],
    [
      'an unknown operator',
      `    when: { all: [ { fact: errorRatio, operator: above, value: 0.1 } ] }\n`,
      'rules[0].when.all[0].operator: "above" is not an operator; use one of equal,',
    ],
    [
      'an unknown probe',
      `    when: { all: [ { fact: errorRatio, params: { probe: helth }, operator: greaterThan, value: 0.1 } ] }\n`,
      'rules[0].when.all[0].params.probe: "helth" is not a probe; use one of health or *',
    ],
    [
      'an unknown window',
      `    when: { all: [ { fact: errorRatio, params: { window: 2m }, operator: greaterThan, value: 0.1 } ] }\n`,
      'rules[0].when.all[0].params.window: "2m" is not one of the configured windows (1m, 5m)',
    ],
    [
      'an unknown extracted value',
      `    when: { all: [ { fact: value, params: { probe: health, name: cpu }, operator: greaterThan, value: 1 } ] }\n`,
      'rules[0].when.all[0].params.name: probe health extracts no "cpu"; it extracts memory_percent',
    ],
    [
      'a wrong param',
      `    when: { all: [ { fact: errorRatio, params: { probes: health }, operator: greaterThan, value: 0.1 } ] }\n`,
      'rules[0].when.all[0].params',
    ],
    [
      'a non-number for greaterThan',
      `    when: { all: [ { fact: errorRatio, operator: greaterThan, value: "10%" } ] }\n`,
      'rules[0].when.all[0].value: "10%" is not a number, which greaterThan compares with',
    ],
    [
      'a share compared as a percentage, which can never hold (regression: value 10 for 10 % silently disabled the rule)',
      `    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 10 } ] }\n`,
      'rules[0].when.all[0].value: errorRatio is from 0 to 1: greaterThan 10 can never hold, so the rule would never fire (for 10 %, write 0.1)',
    ],
    [
      'a streak below 0, which can never hold',
      `    when: { all: [ { fact: consecutiveFailures, operator: lessThan, value: 0 } ] }\n`,
      'rules[0].when.all[0].value: consecutiveFailures is 0 or more: lessThan 0 can never hold, so the rule would never fire',
    ],
    [
      'a comparison that always holds',
      `    when: { all: [ { fact: errorRatio, operator: greaterThanInclusive, value: 0 } ] }\n`,
      'rules[0].when.all[0].value: errorRatio is from 0 to 1: greaterThanInclusive 0 always holds, so the rule would fire at once',
    ],
    [
      'a difference of shares beyond 1',
      `    when: { all: [ { fact: errorRatioDiff, operator: greaterThan, value: 5 } ] }\n`,
      'rules[0].when.all[0].value: errorRatioDiff is from -1 to 1: greaterThan 5 can never hold',
    ],
    [
      'a bad duration for longerThan',
      `    when: { all: [ { fact: aboveFor, params: { probe: health, name: memory_percent, line: 90 }, operator: longerThan, value: soon } ] }\n`,
      'rules[0].when.all[0].value: "soon" is not a duration such as 90s or 2m',
    ],
    [
      'a negative latency line, which always holds (regression: the range check skipped slowerThan, longerThan, shorterThan and outside)',
      `    when: { all: [ { fact: meanLatency, operator: slowerThan, value: -1 } ] }\n`,
      'rules[0].when.all[0].value: meanLatency is 0 or more: slowerThan -1 always holds, so the rule would fire at once',
    ],
    [
      'a share compared as a duration, which can never hold',
      `    when: { all: [ { fact: errorRatio, operator: slowerThan, value: 2s } ] }\n`,
      'rules[0].when.all[0].value: errorRatio is from 0 to 1: slowerThan 2s can never hold, so the rule would never fire',
    ],
    [
      'a streak shorter than nothing, which can never hold',
      `    when: { all: [ { fact: aboveFor, params: { probe: health, name: memory_percent, line: 90 }, operator: shorterThan, value: 0s } ] }\n`,
      'rules[0].when.all[0].value: aboveFor is 0 or more: shorterThan 0s can never hold',
    ],
    [
      'outside a pair that covers every share, which can never hold',
      `    when: { all: [ { fact: errorRatio, operator: outside, value: [0, 1] } ] }\n`,
      'rules[0].when.all[0].value: errorRatio is from 0 to 1: outside [0,1] can never hold',
    ],
    [
      'outside a pair beyond every share, which always holds',
      `    when: { all: [ { fact: errorRatio, operator: outside, value: [2, 3] } ] }\n`,
      'rules[0].when.all[0].value: errorRatio is from 0 to 1: outside [2,3] always holds',
    ],
    [
      'value of * (regression: it read whichever probe came first, unchecked for the value)',
      `    when: { all: [ { fact: value, params: { probe: "*", name: memory_percent }, operator: greaterThan, value: 80 } ] }\n`,
      "rules[0].when.all[0].params.probe: names one probe: this fact reads one probe's extracted value, not * (every probe) (for fact value)",
    ],
    [
      'a true-or-false fact compared with a number (regression: probeUp equal 0 passed validate and never held, json-rules-engine compares strictly)',
      `    when: { all: [ { fact: probeUp, operator: equal, value: 0 } ] }\n`,
      'rules[0].when.all[0].value: probeUp is true or false: equal with 0 compares it with what it never is',
    ],
    [
      'a misspelt environment for activeEnvironment',
      `    when: { all: [ { fact: activeEnvironment, operator: in, value: [blue, gren] } ] }\n`,
      'rules[0].when.all[0].value: activeEnvironment is an environment name (blue, green): in with "gren" compares it with what it never is',
    ],
    [
      'a number fact compared with a string',
      `    when: { all: [ { fact: consecutiveFailures, operator: notEqual, value: "0" } ] }\n`,
      'rules[0].when.all[0].value: consecutiveFailures is a number: notEqual with "0" compares it with what it never is',
    ],
    [
      'contains on a fact that is no list, which never holds',
      `    when: { all: [ { fact: activeEnvironment, operator: contains, value: blue } ] }\n`,
      'rules[0].when.all[0].value: activeEnvironment is an environment name (blue, green), not a list: contains never holds on it',
    ],
    [
      'a number comparison on a true-or-false fact, which never holds',
      `    when: { all: [ { fact: probeUp, operator: lessThan, value: 1 } ] }\n`,
      'rules[0].when.all[0].value: probeUp is true or false: lessThan compares numbers and never holds on it',
    ],
    [
      'aboveFor of *',
      `    when: { all: [ { fact: aboveFor, params: { probe: "*", name: memory_percent, line: 90 }, operator: longerThan, value: 2m } ] }\n`,
      "rules[0].when.all[0].params.probe: names one probe: this fact reads one probe's extracted value, not * (every probe) (for fact aboveFor)",
    ],
    [
      'an unknown action',
      `    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\n    actions: [rollback]\n`,
      'rules[0].actions[0]: "rollback" is not an action of this config; define it under actions or use one of page',
    ],
  ])('reports %s with its key path and line', (_name, rule, expected) => {
    const issues = issuesOf(BASE + rule);
    expect(issues.join('\n')).toContain(expected);
    expect(issues.join('\n')).toMatch(/\(line \d+\)/);
  });

  it('reports a misspelt receiver key with its line', () => {
    const issues = issuesOf(
      `${BASE}    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\nalerts:\n  receivers:\n    - type: slack\n      ulr: https://hooks.example/x\n`,
    );
    expect(issues.join('\n')).toContain('alerts.receivers[0].ulr: unknown key');
    expect(issues.join('\n')).toContain('(line 21)');
  });

  it('reports an unknown plugin type naming the known ones', () => {
    const issues = issuesOf(`${BASE}    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\ntraffic:\n  type: haproxy\n`);
    expect(issues.join('\n')).toMatch(/traffic\.type: "haproxy" is not a traffic adapter type: use one of none, /);
  });

  it('accepts a rule that reads another environment explicitly', () => {
    const config = parseAgentConfig(
      `${BASE}    env: idle\n    when: { any: [ { fact: probeUp, params: { env: green }, operator: equal, value: false }, { not: { fact: errorRatio, operator: lessThan, value: 0.5 } } ] }\n`,
    );
    expect(config.rules[0]!.env).toBe('idle');
  });
});

describe('the judgement facts (TLS, baseline, SLO) are checked like every other', () => {
  const SLO = `slo:\n  availability:\n    objective: 0.995\n    period: 30d\n`;
  const leaf = (fact: string, params: string, operator = 'greaterThan', value = '1') =>
    `    when: { all: [ { fact: ${fact}, params: ${params}, operator: ${operator}, value: ${value} } ] }\n`;

  it.each([
    [
      'an unknown param of latencyRatio',
      leaf('latencyRatio', '{ quantil: 0.9 }'),
      '',
      'rules[0].when.all[0].params: Unrecognized key: "quantil" (for fact latencyRatio)',
    ],
    ['a quantile of 1.5', leaf('latencyRatio', '{ quantile: 1.5 }'), '', 'rules[0].when.all[0].params.quantile'],
    ['minSamples of 0', leaf('latencyRegressionP', '{ minSamples: 0 }', 'lessThan', '0.01'), '', 'rules[0].when.all[0].params.minSamples'],
    [
      'an unknown window of errorRatioDiff',
      leaf('errorRatioDiff', '{ window: 10m }'),
      '',
      'rules[0].when.all[0].params.window: "10m" is not one of the configured windows (1m, 5m)',
    ],
    [
      'a param of tlsDaysLeft it does not take',
      leaf('tlsDaysLeft', '{ window: 1m }', 'lessThan', '14'),
      '',
      'rules[0].when.all[0].params: Unrecognized key: "window" (for fact tlsDaysLeft)',
    ],
    [
      'a burnRate without an SLO',
      leaf('burnRate', '{ window: 1h }'),
      '',
      'rules[0].when.all[0].params.slo: no SLO is configured: add one under slo (for fact burnRate)',
    ],
    [
      'a burnRate of an unknown SLO',
      leaf('burnRate', '{ slo: latency, window: 1h }'),
      SLO,
      'rules[0].when.all[0].params.slo: "latency" is not an SLO of this config; use one of availability (for fact burnRate)',
    ],
    [
      'a burnRate window that is no duration',
      leaf('burnRate', '{ window: hourly }'),
      SLO,
      'rules[0].when.all[0].params.window: "hourly" is not a duration such as 5m, 1h or 3d (for fact burnRate)',
    ],
    [
      'a burnRate window longer than the period',
      leaf('burnRate', '{ window: 40d }'),
      SLO,
      "rules[0].when.all[0].params.window: 40d is longer than the SLO's period (30d) (for fact burnRate)",
    ],
    ['a burnRate without its window', leaf('burnRate', '{ slo: availability }'), SLO, 'rules[0].when.all[0].params.window'],
    [
      'budgetRemaining not naming one of two SLOs',
      leaf('budgetRemaining', '{}', 'lessThan', '0.5'),
      `${SLO}  latency:\n    objective: 0.99\n`,
      'rules[0].when.all[0].params.slo: name the SLO: one of availability, latency (for fact budgetRemaining)',
    ],
    [
      'an SLO over an unknown probe',
      leaf('budgetRemaining', '{}', 'lessThan', '0.5'),
      `slo:\n  availability:\n    objective: 0.995\n    probes: [helth]\n`,
      'slo.availability.probes[0]: "helth" is not a probe of this config; use one of health',
    ],
    [
      'an objective of 1',
      leaf('budgetRemaining', '{}', 'lessThan', '0.5'),
      `slo:\n  availability:\n    objective: 1\n`,
      'slo.availability.objective: must be below 1',
    ],
    [
      'an unknown SLO key',
      leaf('budgetRemaining', '{}', 'lessThan', '0.5'),
      `slo:\n  availability:\n    objective: 0.99\n    windw: 1h\n`,
      'slo.availability.windw: unknown key',
    ],
  ])('reports %s with its key path and line', (_name, rule, extra, expected) => {
    const issues = issuesOf(BASE + rule + extra);
    expect(issues.join('\n')).toContain(expected);
    expect(issues.join('\n')).toMatch(/\(line \d+\)/);
  });

  it('a CA file that cannot be read, or is no certificate, or sits on an http environment', () => {
    const notPem = writeTempFile('not-a-ca.pem', 'hello\n');
    const text = (url: string, ca: string) =>
      BASE.replace('url: http://127.0.0.1:8081', `url: ${url}\n    tls:\n      ca: ${ca}`) + leaf('tlsDaysLeft', '{}', 'lessThan', '14');
    expect(issuesOf(text('https://127.0.0.1:8443', '/nonexistent/ca.pem')).join('\n')).toMatch(
      /environments\.blue\.tls\.ca: cannot read "\/nonexistent\/ca.pem": ENOENT .*\(line 5\)/,
    );
    expect(issuesOf(text('https://127.0.0.1:8443', notPem)).join('\n')).toMatch(
      /environments\.blue\.tls\.ca: ".*not-a-ca.pem" holds no PEM certificate .*\(line 5\)/,
    );
    expect(issuesOf(text('http://127.0.0.1:8081', notPem)).join('\n')).toMatch(/environments\.blue\.tls\.ca: blue's url is not https:\/\//);
  });

  it('every fact runs on an empty snapshot (the self-test at start and reload)', async () => {
    const rules = Object.keys(FACTS).map((fact, index) => {
      const text =
        (
          {
            value: '{ probe: health, name: memory_percent }',
            aboveFor: '{ probe: health, name: memory_percent, line: 90 }',
            burnRate: '{ window: 1h }',
          } as Record<string, string>
        )[fact] ?? '{}';
      // A value of the fact's kind: another would be refused (it never equals the fact).
      const kind = FACTS[fact]!.kind;
      const value = kind === 'boolean' ? 'true' : kind === 'environment' ? 'blue' : '1';
      return `  - name: r${index}\n    severity: warning\n    when: { all: [ { fact: ${fact}, params: ${text}, operator: equal, value: ${value} } ] }\n`;
    });
    const config = parseAgentConfig(BASE.replace(/rules:\n[\s\S]*$/, `rules:\n${rules.join('')}`) + SLO);
    expect(config.rules).toHaveLength(Object.keys(FACTS).length);
    await expect(
      new RuleEvaluator(config.rules, () => ({ activeEnvironment: 'blue', environments: ['blue', 'green'], now: Date.now(), series: () => [] })).selfTest(),
    ).resolves.toBeUndefined();
  });
});

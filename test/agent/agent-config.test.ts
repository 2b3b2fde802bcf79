import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_CONFIG_SCHEMA, parseAgentConfig } from '../../agent/agent-config.js';
import { issuesOf as issuesOfConfig } from '../helpers/config-issues.js';
import { configJsonSchema } from '../../config/json-schema.js';

const DEFAULT_TEXT = readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8');

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
    const committed = JSON.parse(readFileSync(new URL('../../config/greenlight.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(configJsonSchema(AGENT_CONFIG_SCHEMA));
  });

  it('rejects unknown keys, as the loader does', () => {
    const schema = configJsonSchema(AGENT_CONFIG_SCHEMA) as { additionalProperties?: unknown; properties: { probes: { items: { additionalProperties?: unknown } } } };
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
    ['an unknown fact', `    when: { all: [ { fact: errorRate, operator: greaterThan, value: 0.1 } ] }\n`, 'rules[0].when.all[0].fact: "errorRate" is not a fact; use one of errorRatio,'],
    ['an unknown operator', `    when: { all: [ { fact: errorRatio, operator: above, value: 0.1 } ] }\n`, 'rules[0].when.all[0].operator: "above" is not an operator; use one of equal,'],
    ['an unknown probe', `    when: { all: [ { fact: errorRatio, params: { probe: helth }, operator: greaterThan, value: 0.1 } ] }\n`, 'rules[0].when.all[0].params.probe: "helth" is not a probe; use one of health or *'],
    ['an unknown window', `    when: { all: [ { fact: errorRatio, params: { window: 2m }, operator: greaterThan, value: 0.1 } ] }\n`, 'rules[0].when.all[0].params.window: "2m" is not one of the configured windows (1m, 5m)'],
    ['an unknown extracted value', `    when: { all: [ { fact: value, params: { probe: health, name: cpu }, operator: greaterThan, value: 1 } ] }\n`, 'rules[0].when.all[0].params.name: probe health extracts no "cpu"; it extracts memory_percent'],
    ['a wrong param', `    when: { all: [ { fact: errorRatio, params: { probes: health }, operator: greaterThan, value: 0.1 } ] }\n`, 'rules[0].when.all[0].params'],
    ['a non-number for greaterThan', `    when: { all: [ { fact: errorRatio, operator: greaterThan, value: "10%" } ] }\n`, 'rules[0].when.all[0].value: "10%" is not a number, which greaterThan compares with'],
    ['a bad duration for longerThan', `    when: { all: [ { fact: aboveFor, params: { probe: health, name: memory_percent, line: 90 }, operator: longerThan, value: soon } ] }\n`, 'rules[0].when.all[0].value: "soon" is not a duration such as 90s or 2m'],
    ['an unknown action', `    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\n    actions: [rollback]\n`, 'rules[0].actions[0]: "rollback" is not an action of this config; define it under actions or use one of page'],
  ])('reports %s with its key path and line', (_name, rule, expected) => {
    const issues = issuesOf(BASE + rule);
    expect(issues.join('\n')).toContain(expected);
    expect(issues.join('\n')).toMatch(/\(line \d+\)/);
  });

  it('reports a misspelt receiver key with its line', () => {
    const issues = issuesOf(`${BASE}    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\nalerts:\n  receivers:\n    - type: slack\n      ulr: https://hooks.example/x\n`);
    expect(issues.join('\n')).toContain('alerts.receivers[0].ulr: unknown key');
    expect(issues.join('\n')).toContain('(line 21)');
  });

  it('reports an unknown plugin type naming the known ones', () => {
    const issues = issuesOf(`${BASE}    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\ntraffic:\n  type: haproxy\n`);
    expect(issues.join('\n')).toMatch(/traffic\.type: "haproxy" is not a traffic adapter type: use one of none, /);
  });

  it('accepts a rule that reads another environment explicitly', () => {
    const config = parseAgentConfig(`${BASE}    env: idle\n    when: { any: [ { fact: probeUp, params: { env: green }, operator: equal, value: false }, { not: { fact: errorRatio, operator: lessThan, value: 0.5 } } ] }\n`);
    expect(config.rules[0]!.env).toBe('idle');
  });
});

/**
 * The alert lifecycle's config keys (alerts.group, inhibit, escalation, maintenance): their
 * defaults, and every mistake reported with its key path and line.
 */
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { STOCK_ESCALATION, STOCK_INHIBITIONS } from '../../config/schema.js';
import { issuesOf as issuesOfConfig } from '../helpers/config-issues.js';

const BASE = `environments:
  blue: { url: http://127.0.0.1:8081 }
  green: { url: http://127.0.0.1:8082 }
probes:
  - { name: health, path: /api/health }
alerts:
  receivers:
    - { type: webhook, name: oncall, url: http://127.0.0.1:9/hook }
`;

const issuesOf = (text: string) => issuesOfConfig(parseAgentConfig, text);

describe('alerts config: the lifecycle', () => {
  it('defaults to grouping by env (wait 5s, interval 1m), the stock inhibitions and the seed escalation matrix, no windows', () => {
    const { alerts } = parseAgentConfig(BASE);
    expect(alerts.group).toEqual({ by: ['env'], wait: 5_000, interval: 60_000 });
    expect(alerts.inhibit.map((rule) => rule.name)).toEqual(STOCK_INHIBITIONS.map((rule) => rule.name));
    expect(alerts.escalation.map((policy) => policy.name)).toEqual(STOCK_ESCALATION.map((policy) => policy.name));
    expect(alerts.escalation[0]!.levels.map((level) => level.after)).toEqual([0, 300_000, 900_000, 1_800_000]);
    expect(alerts.maintenance).toEqual([]);
  });

  it('takes [] to turn the stock inhibitions and escalation off', () => {
    const { alerts } = parseAgentConfig(`${BASE}  inhibit: []\n  escalation: []\n`);
    expect(alerts.inhibit).toEqual([]);
    expect(alerts.escalation).toEqual([]);
  });

  it.each([
    ['a bad group label', '  group: { by: ["env-name"] }\n', 'alerts.group.by[0]: "env-name" is not a label name'],
    ['a bad matcher', '  inhibit: [ { sourceMatchers: ["severity"], targetMatchers: ["severity=warning"] } ]\n', 'alerts.inhibit[0].sourceMatchers[0]'],
    [
      'an inhibition without targets',
      '  inhibit: [ { sourceMatchers: ["severity=critical"], targetMatchers: [] } ]\n',
      'alerts.inhibit[0].targetMatchers: needs at least one matcher',
    ],
    [
      'levels out of order',
      '  escalation: [ { name: p, levels: [ { after: 5m }, { after: 1m } ] } ]\n',
      "alerts.escalation[0].levels[1].after: must be later than level 1's",
    ],
    [
      'a level naming no receiver',
      '  escalation: [ { name: p, levels: [ { after: 0s, receivers: [pager] } ] } ]\n',
      'alerts.escalation[0].levels[0].receivers[0]: "pager" is not one of alerts.receivers (oncall); use a receiver\'s name or "*" (line 9)',
    ],
    [
      'two policies of one name',
      '  escalation: [ { name: p, levels: [ { after: 0s } ] }, { name: p, levels: [ { after: 0s } ] } ]\n',
      'alerts.escalation[1].name: "p" is already the name of alerts.escalation[0]',
    ],
    [
      'a window on no environment',
      '  maintenance: [ { name: w, env: red, start: "02:00", duration: 1h, reason: r } ]\n',
      'alerts.maintenance[0].env: "red" is not one of the environments (blue, green)',
    ],
    [
      'a window too long',
      '  maintenance: [ { name: w, env: green, start: "02:00", duration: 8d, reason: r } ]\n',
      'alerts.maintenance[0].duration: must be more than 0 and at most 7d',
    ],
    ['a window without a reason', '  maintenance: [ { name: w, env: green, start: "02:00", duration: 1h } ]\n', 'alerts.maintenance[0].reason'],
    ['a misspelt key', '  grup: { wait: 5s }\n', 'alerts.grup: unknown key; did you mean group?'],
  ])('reports %s with its key path', (_name, lines, expected) => {
    expect(issuesOf(`${BASE}${lines}`).join('\n')).toContain(expected);
  });
});

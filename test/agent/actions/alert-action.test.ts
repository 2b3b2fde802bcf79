/**
 * The alert action hands the rule's own repeat interval to the dispatcher with the notice, so a
 * rule with `repeatInterval: 0s` (the stock TLS rules) is notified once per incident.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ActionContext, ActionDeps, Controller } from '../../../agent/actions/action.js';
import { alertAction } from '../../../agent/actions/alert-action.js';
import type { AlertNotice } from '../../../agent/alerts/alert-receiver.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';

const config = parseAgentConfig(`environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: health, path: / } ]
actions: { page: { type: alert } }
rules:
  - { name: once, severity: warning, repeatInterval: 0s, when: { all: [ { fact: tlsDaysLeft, operator: lessThan, value: 14 } ] }, actions: [page] }
  - { name: hourly, severity: warning, repeatInterval: 1h, when: { all: [ { fact: tlsDaysLeft, operator: lessThan, value: 14 } ] }, actions: [page] }
  - { name: default, severity: warning, when: { all: [ { fact: tlsDaysLeft, operator: lessThan, value: 14 } ] }, actions: [page] }
`);

async function noticeOf(ruleName: string): Promise<AlertNotice> {
  const sent: AlertNotice[] = [];
  const controller = { alert: (notice: AlertNotice) => sent.push(notice), stateUrl: () => undefined } as unknown as Controller;
  const deps = {
    logger: pino({ level: 'silent' }),
    now: Date.now,
    sleep: async () => undefined,
    dryRun: false,
    controller,
    name: 'page',
  } as unknown as ActionDeps;
  const action = alertAction.create({ type: 'alert' }, deps);
  const rule = config.rules.find((r) => r.name === ruleName)!;
  const context: ActionContext = {
    rule,
    incident: `${rule.name}#1`,
    env: 'blue',
    severity: 'warning',
    message: 'm',
    figures: null,
    actor: `rule:${rule.name}`,
    startedAt: Date.now(),
  };
  await action.fire(context, new AbortController().signal);
  return sent[0]!;
}

describe('alert action', () => {
  it.each([
    ['once', 0],
    ['hourly', 3_600_000],
    ['default', undefined],
  ])('rule %s: repeatIntervalMs %s on the notice', async (rule, expected) => {
    expect((await noticeOf(rule)).repeatIntervalMs).toBe(expected);
  });
});

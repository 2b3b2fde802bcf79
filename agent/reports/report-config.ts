/**
 * Checks of `reports:` beyond the schema, run with the agent's other config checks (so
 * `greenlight validate` reports them with their key path and line): each receiver a schedule
 * names must be one of alerts.receivers that can post a text message — or one that is off
 * because its variable is unset, which the start log then names instead of failing.
 */
import type { Config } from '../../config/schema.js';

/** Receiver types that can post a report (AlertReceiver.post): a chat message or a JSON body. */
export const REPORT_RECEIVER_TYPES: readonly string[] = ['slack', 'discord', 'webhook'];

type Issue = { path: (string | number)[]; message: string };

/** The schedule's name as events and logs show it. */
export function scheduleName(config: Config, index: number): string {
  return config.reports[index]?.name ?? `report-${index + 1}`;
}

/**
 * Receivers the loader turned off because a variable they need is unset, by name. The loader
 * leaves them out of alerts.receivers and says so in a notice (config/load-config.ts, switchOff):
 * `alerts.receivers[0] (slack) is off because …` or `… (webhook "alertmanager") is off …`.
 */
export function receiversSwitchedOff(config: Pick<Config, 'notices'>): Map<string, { type: string; variables: string }> {
  const off = new Map<string, { type: string; variables: string }>();
  for (const notice of config.notices) {
    const match = /^alerts\.receivers\[\d+\] \(([a-z]+)(?: "([^"]+)")?\) is off because (.*) (?:is|are) not set/.exec(notice);
    if (match) off.set(match[2] ?? match[1]!, { type: match[1]!, variables: match[3]! });
  }
  return off;
}

export function checkReports(config: Config): Issue[] {
  const issues: Issue[] = [];
  const receivers = new Map((config.alerts.receivers as { name?: string; type: string }[]).map((block) => [block.name ?? block.type, block.type]));
  const off = receiversSwitchedOff(config);
  const names = new Map<string, number>();
  config.reports.forEach((schedule, index) => {
    const name = scheduleName(config, index);
    if (names.has(name))
      issues.push({ path: ['reports', index, 'name'], message: `"${name}" is already the name of reports[${names.get(name)}]; schedule names must be unique` });
    names.set(name, index);
    schedule.receivers.forEach((receiver, receiverIndex) => {
      const type = receivers.get(receiver) ?? off.get(receiver)?.type;
      const path = ['reports', index, 'receivers', receiverIndex];
      if (type === undefined) {
        const known = [...receivers.keys()];
        issues.push({
          path,
          message: `"${receiver}" is not a receiver of alerts.receivers; ${known.length ? `use one of ${known.join(', ')}` : 'define it under alerts.receivers first'}`,
        });
      } else if (!REPORT_RECEIVER_TYPES.includes(type)) {
        issues.push({
          path,
          message: `"${receiver}" is a ${type} receiver, which takes alerts only; post reports to a ${REPORT_RECEIVER_TYPES.join(', ')} receiver`,
        });
      }
    });
  });
  return issues;
}

/**
 * `pagerduty`: PagerDuty Events API v2 (`POST /v2/enqueue`, answered 202
 * `{status, message, dedup_key}`). A firing group is a `trigger` with the full payload (every
 * alert of the group in custom_details); a group whose alerts have all resolved is a `resolve`,
 * and one whose firing alerts are all acknowledged in greenlight an `acknowledge` — both with only
 * routing_key, event_action and dedup_key. The group's key is the dedup_key, so a group's trigger,
 * its updates, repeats, acknowledgement and resolve are one PagerDuty alert. (A PagerDuty alert
 * that is acknowledged makes no new notification on later triggers; after its resolve, a trigger
 * with the same key opens a new one.)
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HttpUrl } from '../../config/schema.js';
import type { Severity } from '../events/events.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { AlertGroupNotice, AlertNotice, AlertReceiver } from './alert-receiver.js';
import { figureLines, firedFor, groupSeverity, groupStatusWord, groupSubject, lifecycleLine, statusWord, subject, truncate } from './notice-format.js';
import { deliverNotice, receiverLabel, receiverOptions } from './receiver-options.js';
import { secretsOfUrl } from '../../config/redactor.js';

/** The Events API v2 address, the default `url`. */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** The `pagerduty` block: the common receiver keys, `routingKey`, `url` and `source`. */
export const PagerDutyReceiverSchema = z.strictObject({
  ...receiverOptions('pagerduty', ['critical']),
  routingKey: z
    .string({ error: 'needs the Events API v2 integration key: take it from ${PAGERDUTY_ROUTING_KEY}' })
    .min(1, { error: 'is empty: set PAGERDUTY_ROUTING_KEY to the Events API v2 integration key' })
    .meta({ description: "The service's Events API v2 integration key (a secret): take it from ${PAGERDUTY_ROUTING_KEY}." }),
  url: HttpUrl.default(PAGERDUTY_EVENTS_URL).meta({ description: `The Events API v2 enqueue URL. Default ${PAGERDUTY_EVENTS_URL}.` }),
  source: z.string().min(1).default('greenlight').meta({ description: 'The payload source: where the problem is seen. Default greenlight.' }),
});

/** A validated `pagerduty` block. */
export type PagerDutyReceiverConfig = z.output<typeof PagerDutyReceiverSchema>;

/** PagerDuty's limits: summary 1024 characters, dedup_key 255. */
export const SUMMARY_MAX = 1_024;
const DEDUP_KEY_MAX = 255;

const PAGERDUTY_SEVERITY: Record<Severity, 'critical' | 'error' | 'warning' | 'info'> = { critical: 'critical', warning: 'warning', info: 'info' };

/** Triggers and resolves PagerDuty alerts. */
export const pagerDutyReceiver: PluginDefinition<PagerDutyReceiverConfig, AlertReceiver> = {
  type: 'pagerduty',
  schema: PagerDutyReceiverSchema,
  create(config, deps) {
    const label = receiverLabel('pagerduty', config.name);
    deps.redactor.add([config.routingKey, ...(config.url === PAGERDUTY_EVENTS_URL ? [] : secretsOfUrl(config.url))]);
    return {
      name: config.name,
      type: 'pagerduty',
      severities: config.severities,
      send: (notice, signal) => deliverNotice(deps, config, { label, url: config.url, json: pagerDutyEvent(notice, config) }, signal),
      sendGroup: async (group, signal) => {
        // The group ended: the incidents of its earlier rounds (acknowledged, then left for a new
        // one) are resolved too.
        let earlier = 0;
        if (group.status === 'resolved')
          for (let round = 0; round < (group.round ?? 0); round++) {
            const json = { routing_key: config.routingKey, event_action: 'resolve', dedup_key: dedupKeyOf(group.key, round) };
            earlier += (await deliverNotice(deps, config, { label, url: config.url, json }, signal)).attempts;
          }
        // Alerts that fired and resolved before PagerDuty heard of them: trigger, then resolve, so the page is not lost.
        if (group.status === 'resolved' && (group.unseen?.length ?? 0) > 0) {
          const fired = group.alerts.filter((alert) => group.unseen!.includes(alert.key)).map((alert) => ({ ...alert, status: 'firing' as const }));
          const first = await deliverNotice(
            deps,
            config,
            { label, url: config.url, json: pagerDutyGroupEvent({ ...group, status: 'firing', alerts: fired }, config) },
            signal,
          );
          const then = await deliverNotice(deps, config, { label, url: config.url, json: pagerDutyGroupEvent(group, config) }, signal);
          return { attempts: earlier + first.attempts + then.attempts, status: then.status };
        }
        const sent = await deliverNotice(deps, config, { label, url: config.url, json: pagerDutyGroupEvent(group, config) }, signal);
        return { ...sent, attempts: earlier + sent.attempts };
      },
      acknowledge: (group, signal) =>
        deliverNotice(
          deps,
          config,
          { label, url: config.url, json: { routing_key: config.routingKey, event_action: 'acknowledge', dedup_key: dedupKeyOf(group.key, group.round) } },
          signal,
        ),
    };
  },
};

/** The Events API v2 body for one notice. */
export function pagerDutyEvent(notice: AlertNotice, config: Pick<PagerDutyReceiverConfig, 'routingKey' | 'source'>): Record<string, unknown> {
  const dedupKey = dedupKeyOf(notice.key);
  if (notice.status === 'resolved') return { routing_key: config.routingKey, event_action: 'resolve', dedup_key: dedupKey };
  const details: Record<string, unknown> = {
    status: statusWord(notice),
    rule: notice.rule,
    environment: notice.env,
    what_greenlight_did: notice.description,
    figures: notice.figures,
    figures_text: figureLines(notice.figures),
    labels: notice.labels,
    started_at: notice.startsAt,
  };
  const duration = firedFor(notice);
  if (duration) details.fired_for = duration;
  const event: Record<string, unknown> = {
    routing_key: config.routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: truncate(`[${notice.severity.toUpperCase()}] ${subject(notice)}: ${notice.summary}`, SUMMARY_MAX),
      source: config.source,
      severity: PAGERDUTY_SEVERITY[notice.severity],
      timestamp: notice.startsAt,
      component: notice.env ?? 'greenlight',
      group: 'alphastack',
      class: notice.rule,
      custom_details: details,
    },
    client: 'greenlight',
  };
  if (notice.url) {
    event.client_url = notice.url;
    event.links = [{ href: notice.url, text: 'greenlight state' }];
  }
  return event;
}

/**
 * The Events API v2 body for a group: `resolve` once every alert in it has resolved, else a
 * `trigger` whose summary names the alerts and whose custom_details carry each of them.
 */
export function pagerDutyGroupEvent(group: AlertGroupNotice, config: Pick<PagerDutyReceiverConfig, 'routingKey' | 'source'>): Record<string, unknown> {
  const dedupKey = dedupKeyOf(group.key, group.round);
  if (group.status === 'resolved') return { routing_key: config.routingKey, event_action: 'resolve', dedup_key: dedupKey };
  const only = group.alerts.length === 1 ? group.alerts[0]! : undefined;
  if (only && !group.escalation && only.status === 'firing') {
    const event: Record<string, unknown> = { ...pagerDutyEvent({ ...only, key: group.key }, config), dedup_key: dedupKey };
    const line = lifecycleLine(only);
    if (line) ((event.payload as Record<string, unknown>).custom_details as Record<string, unknown>).incident = line;
    return event;
  }
  const severity = groupSeverity(group);
  const firing = group.alerts.filter((alert) => alert.status === 'firing');
  const parts = (firing.length > 0 ? firing : group.alerts).map((alert) => `${alert.rule}: ${alert.summary}`);
  const prefix = group.escalation ? `[ESCALATION L${group.escalation.level} · ${severity.toUpperCase()}]` : `[${severity.toUpperCase()}]`;
  const url = group.alerts.find((alert) => alert.url)?.url;
  const event: Record<string, unknown> = {
    routing_key: config.routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    payload: {
      summary: truncate(`${prefix} ${groupSubject(group)}: ${parts.join('; ')}`, SUMMARY_MAX),
      source: config.source,
      severity: PAGERDUTY_SEVERITY[severity],
      timestamp: firing[0]?.startsAt ?? group.alerts[0]!.startsAt,
      component: group.labels.env || firing[0]?.env || 'greenlight',
      group: 'alphastack',
      class: only?.rule ?? 'greenlight-group',
      custom_details: {
        status: groupStatusWord(group),
        group: group.labels,
        escalation: group.escalation ?? null,
        alerts: group.alerts.map((alert) => ({
          status: statusWord(alert),
          rule: alert.rule,
          severity: alert.severity,
          environment: alert.env,
          summary: alert.summary,
          what_greenlight_did: alert.description,
          figures_text: figureLines(alert.figures),
          labels: alert.labels,
          started_at: alert.startsAt,
          ...(alert.endsAt ? { ended_at: alert.endsAt } : {}),
          ...(alert.incident ? { incident: alert.incident } : {}),
          ...(alert.acknowledgedBy ? { acknowledged_by: alert.acknowledgedBy } : {}),
        })),
      },
    },
    client: 'greenlight',
  };
  if (url) {
    event.client_url = url;
    event.links = [{ href: url, text: 'greenlight state' }];
  }
  return event;
}

/** The notice key, or its SHA-256 when longer than PagerDuty takes: the same for trigger and resolve. */
export function dedupKeyOf(key: string, round = 0): string {
  const keyed = round > 0 ? `${key}#${round}` : key;
  return keyed.length <= DEDUP_KEY_MAX ? keyed : createHash('sha256').update(keyed).digest('hex');
}

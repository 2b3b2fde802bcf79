/**
 * `webhook`: any HTTP endpoint that understands Alertmanager's webhook body (version 4), so
 * tools built for Alertmanager (alert routers, chat bridges, incident bots) take greenlight's
 * alerts unchanged. A group is one POST with its alerts in `alerts` and its grouping labels as
 * `groupLabels` (`send` of a single notice: a group of one, by alertname). Each alert's
 * fingerprint is derived from its notice key, so a firing alert, its repeats and its resolution
 * share it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HttpUrl } from '../../config/schema.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { AlertGroupNotice, AlertNotice, AlertReceiver } from './alert-receiver.js';
import { figureLines } from './notice-format.js';
import { deliverNotice, deliverParts, receiverLabel, receiverOptions } from './receiver-options.js';
import { webhookTextBody } from './text-message.js';
import { secretsOfUrl } from '../../config/redactor.js';

/** The `webhook` block: the common receiver keys and the `url` to POST to. */
export const WebhookReceiverSchema = z.strictObject({
  ...receiverOptions('webhook', ['warning', 'critical']),
  url: HttpUrl.meta({ description: 'Where to POST the Alertmanager-format body: take it from ${ALERT_WEBHOOK_URL}.' }),
});

/** A validated `webhook` block. */
export type WebhookReceiverConfig = z.output<typeof WebhookReceiverSchema>;

/** Alertmanager's endsAt of an alert that has not ended (Go's zero time). */
export const NOT_ENDED = '0001-01-01T00:00:00Z';

/** One alert of an Alertmanager webhook body. */
export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook body, version 4. */
export interface AlertmanagerPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: AlertmanagerAlert[];
}

/** Posts each notice in Alertmanager's webhook format. */
export const webhookReceiver: PluginDefinition<WebhookReceiverConfig, AlertReceiver> = {
  type: 'webhook',
  schema: WebhookReceiverSchema,
  create(config, deps) {
    const label = receiverLabel('webhook', config.name);
    deps.redactor.add(secretsOfUrl(config.url));
    return {
      name: config.name,
      type: 'webhook',
      severities: config.severities,
      send: (notice, signal) => deliverNotice(deps, config, { label, url: config.url, json: alertmanagerPayload(notice, config.name, deps.now) }, signal),
      // A report: one JSON body with the Markdown and the report itself (not Alertmanager's shape).
      post: (message, signal) =>
        deliverParts([message], (whole) => deliverNotice(deps, config, { label, url: config.url, json: webhookTextBody(whole) }, signal)),
      sendGroup: (group, signal) =>
        deliverNotice(deps, config, { label, url: config.url, json: alertmanagerGroupPayload(group, config.name, deps.now) }, signal),
    };
  },
};

/** The version 4 body for one notice, addressed as coming from `receiver`; `now` dates a resolution that carries no endsAt. */
export function alertmanagerPayload(notice: AlertNotice, receiver: string, now: () => number): AlertmanagerPayload {
  return alertmanagerGroupPayload(
    { key: `{}:{alertname=${JSON.stringify(notice.rule)}}`, labels: { alertname: notice.rule }, status: notice.status, alerts: [notice], repeat: false },
    receiver,
    now,
  );
}

/** The version 4 body for a group: one entry in `alerts` per alert, the labels and annotations they share as common ones. */
export function alertmanagerGroupPayload(group: AlertGroupNotice, receiver: string, now: () => number): AlertmanagerPayload {
  const alerts = group.alerts.map((notice) => alertmanagerAlert(notice, now));
  const url = group.alerts.find((notice) => notice.url)?.url;
  return {
    version: '4',
    groupKey: group.key,
    truncatedAlerts: 0,
    status: group.status,
    receiver,
    groupLabels: { ...group.labels },
    commonLabels: common(alerts.map((alert) => alert.labels)),
    commonAnnotations: common(alerts.map((alert) => alert.annotations)),
    externalURL: url ? new URL(url).origin : '',
    alerts,
  };
}

function alertmanagerAlert(notice: AlertNotice, now: () => number): AlertmanagerAlert {
  // The rule's own labels never override the ones that identify the alert.
  const labels: Record<string, string> = { ...notice.labels, alertname: notice.rule, rule: notice.rule, severity: notice.severity };
  if (notice.env !== null) labels.env = notice.env;
  else delete labels.env;
  const annotations: Record<string, string> = { summary: notice.summary, description: notice.description };
  const figures = figureLines(notice.figures);
  if (figures.length > 0) annotations.figures = figures.join('\n');
  if (notice.incident) annotations.incident = notice.incident;
  if (notice.acknowledgedBy) annotations.acknowledged_by = notice.acknowledgedBy;
  if (notice.escalationLevel !== undefined) annotations.escalation_level = String(notice.escalationLevel);
  return {
    status: notice.status,
    labels,
    annotations,
    startsAt: notice.startsAt,
    endsAt: notice.status === 'resolved' ? (notice.endsAt ?? new Date(now()).toISOString()) : NOT_ENDED,
    generatorURL: notice.url ?? '',
    fingerprint: fingerprintOf(notice.key),
  };
}

/** The name/value pairs every one of `sets` has. */
function common(sets: readonly Record<string, string>[]): Record<string, string> {
  const [first, ...rest] = sets;
  const shared: Record<string, string> = {};
  for (const [name, value] of Object.entries(first ?? {})) if (rest.every((set) => Object.hasOwn(set, name) && set[name] === value)) shared[name] = value;
  return shared;
}

/** 16 hex digits, like Alertmanager's, the same for every notice with this key. */
export function fingerprintOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

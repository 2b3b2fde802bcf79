/**
 * Alert receivers deliver notices to people: slack, discord, pagerduty, webhook (Alertmanager
 * format). A receiver sends one notice, retrying with backoff itself (honouring 429
 * Retry-After); it resolves when delivered and throws AlertError when it gave up.
 */
import { GreenlightError } from '../../config/errors.js';
import type { Severity } from '../events/events.js';

/**
 * How long a notice that reports a moment (an operator's rollback refused, a promotion's switch
 * back refused) fires unless raised again: Alertmanager's default resolve_timeout. Whoever acted
 * had the answer at once; the alert tells the others, then resolves (`AlertNotice.expiresAt`).
 */
export const ONE_OFF_ALERT_MS = 5 * 60_000;

export interface AlertNotice {
  status: 'firing' | 'resolved';
  /** Stable per incident: the PagerDuty dedup_key, the Alertmanager fingerprint. */
  key: string;
  /** The rule's name, or a synthetic name such as `rollback-inconclusive`. */
  rule: string;
  severity: Severity;
  /** The environment the alert is about (null when about greenlight itself). */
  env: string | null;
  /** One line: `error ratio 42% on blue (live) over 5m`. */
  summary: string;
  /** Longer text: what was decided and why, what to do. */
  description: string;
  labels: Record<string, string>;
  /** The figures that decided, for the payload's details/annotations. */
  figures: Record<string, unknown>;
  /** ISO-8601 */
  startsAt: string;
  /** ISO-8601; set when resolved. */
  endsAt?: string;
  /**
   * ISO-8601; a firing notice that nothing else will resolve (it reports a moment: an operator's
   * rollback refused) resolves by itself then, unless raised again with a later one.
   */
  expiresAt?: string;
  /** Where to look: the agent's state URL. */
  url?: string;
  /** How often to send it again while it fires, instead of alerts.repeatInterval; 0: never. */
  repeatIntervalMs?: number;
  /** The rule incident it belongs to (`live-universe-failing#3`): escalation and acknowledgement go by it. */
  incident?: string;
  /**
   * Kept across restarts until whoever raised it resolves it, tied to no incident and no expiry (a
   * switch step that failed: resolved by the next switch whose steps pass, whenever that is).
   */
  kept?: true;
  /** Who acknowledged its incident, when someone has (set by the alert lifecycle as it is sent). */
  acknowledgedBy?: string;
  /** The escalation level its incident has reached (set by the alert lifecycle as it is sent). */
  escalationLevel?: number;
}

/**
 * One notification to one receiver: the alerts of a group (those that agree on alerts.group.by)
 * as the receiver is to hear them now — the firing ones not muted, and those resolved since it
 * was told they fire. Each receiver renders it its own way: one Slack message, one PagerDuty
 * alert per group key, one Alertmanager POST with several `alerts`.
 */
export interface AlertGroupNotice {
  /** Stable per group: the Alertmanager groupKey, the PagerDuty dedup_key. */
  key: string;
  /** The grouping labels and their values: `{env: "blue"}`. */
  labels: Record<string, string>;
  /** firing while any alert in it fires. */
  status: 'firing' | 'resolved';
  /** Firing alerts first (criticals first), then the resolved ones. */
  alerts: AlertNotice[];
  /** Set when an incident's escalation reached a level and this notification is that level's. */
  escalation?: { level: number; incidents: string[] };
  /** Nothing changed since the last notification: a reminder (the repeat interval came round). */
  repeat: boolean;
  /**
   * Keys of resolved alerts in it that this receiver never heard fire (they fired and resolved
   * within the group's wait: a rollback ends its incident at once). PagerDuty triggers before it
   * resolves them, so the page is not lost.
   */
  unseen?: string[];
  /**
   * The group's round at PagerDuty (0 when absent): it goes up when a group PagerDuty was told is
   * acknowledged gains a new alert, so that alert opens (and pages for) an incident of its own
   * instead of joining the acknowledged one, where PagerDuty would tell nobody.
   */
  round?: number;
}

/** A message that is no alert: a scheduled report's summary (issue 16). */
export interface TextMessage {
  /** One line saying what it is. */
  title: string;
  /** The text, as Markdown; a receiver adapts it to its app (text-message.ts). */
  markdown: string;
  /** The structured form, for receivers that post JSON (the report itself). */
  data?: unknown;
}

export interface AlertReceiver {
  readonly name: string;
  readonly type: string;
  /** Severities this receiver takes. */
  readonly severities: readonly Severity[];
  send(notice: AlertNotice, signal: AbortSignal): Promise<{ attempts: number; status?: number }>;
  /**
   * Post a text message, in as many messages as the app needs (`parts`); absent on receivers that
   * take alerts only (pagerduty). Throws AlertError when it gave up, as `send` does.
   */
  post?(message: TextMessage, signal: AbortSignal): Promise<{ attempts: number; status?: number; parts: number }>;
  /** Deliver a group as one notification; without it, each alert of the group goes through `send`. */
  sendGroup?(group: AlertGroupNotice, signal: AbortSignal): Promise<{ attempts: number; status?: number }>;
  /** Tell the receiver every firing alert of the group is acknowledged (PagerDuty's `acknowledge`). */
  acknowledge?(group: AlertGroupNotice, signal: AbortSignal): Promise<{ attempts: number; status?: number }>;
}

export class AlertError extends GreenlightError {
  readonly attempts: number;

  constructor(message: string, attempts: number, options?: { cause?: unknown }) {
    super('GL_ERR_ALERT', message, options);
    this.attempts = attempts;
  }
}

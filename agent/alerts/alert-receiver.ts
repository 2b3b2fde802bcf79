/**
 * Alert receivers deliver notices to people: slack, discord, pagerduty, webhook (Alertmanager
 * format). A receiver sends one notice, retrying with backoff itself (honouring 429
 * Retry-After); it resolves when delivered and throws AlertError when it gave up.
 */
import { GreenlightError } from '../../config/errors.js';
import type { Severity } from '../events/events.js';

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
  /** Where to look: the agent's state URL. */
  url?: string;
  /** How often to send it again while it fires, instead of alerts.repeatInterval; 0: never. */
  repeatIntervalMs?: number;
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
}

export class AlertError extends GreenlightError {
  readonly attempts: number;

  constructor(message: string, attempts: number, options?: { cause?: unknown }) {
    super('GL_ERR_ALERT', message, options);
    this.attempts = attempts;
  }
}

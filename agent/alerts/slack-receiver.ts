/**
 * `slack`: a Slack incoming webhook. The JSON body is `{text, blocks}`: `text` is what the
 * notification and screen readers show, `blocks` the message (Block Kit: header, sections,
 * context, dividers; at most 50 blocks). A group is one message: a header, then a section per
 * alert. Slack answers 200 `ok`; 400/403/404/410 mean a bad payload or a dead webhook and are not
 * retried; 429 carries Retry-After.
 */
import { z } from 'zod';
import { HttpUrl } from '../../config/schema.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { AlertGroupNotice, AlertNotice, AlertReceiver } from './alert-receiver.js';
import {
  ackHint,
  figureLines,
  firedFor,
  groupHeadline,
  groupTitle,
  headline,
  labelLine,
  lifecycleLine,
  severityEmoji,
  statusEmoji,
  statusWord,
  title,
  truncate,
} from './notice-format.js';
import { deliverNotice, deliverParts, receiverLabel, receiverOptions } from './receiver-options.js';
import { slackMrkdwn, splitMessage } from './text-message.js';
import { secretsOfUrl } from '../../config/redactor.js';

/** The `slack` block: the common receiver keys and the webhook `url`. */
export const SlackReceiverSchema = z.strictObject({
  ...receiverOptions('slack', ['warning', 'critical']),
  url: HttpUrl.meta({ description: 'The incoming webhook URL (a secret): take it from ${SLACK_WEBHOOK_URL}.' }),
});

/** A validated `slack` block. */
export type SlackReceiverConfig = z.output<typeof SlackReceiverSchema>;

/** Slack's limits: header text 150, section text 3000, field text 2000 characters. */
const HEADER_MAX = 150;
const SECTION_MAX = 3_000;
const FIELD_MAX = 2_000;
/** A text message's length above which Slack advises splitting it. */
const SLACK_TEXT_MAX = 3_900;

/** Posts each notice to a Slack channel through an incoming webhook. */
export const slackReceiver: PluginDefinition<SlackReceiverConfig, AlertReceiver> = {
  type: 'slack',
  schema: SlackReceiverSchema,
  create(config, deps) {
    const label = receiverLabel('slack', config.name);
    deps.redactor.add(secretsOfUrl(config.url));
    return {
      name: config.name,
      type: 'slack',
      severities: config.severities,
      send: (notice, signal) => deliverNotice(deps, config, { label, url: config.url, json: slackMessage(notice) }, signal),
      // A report: mrkdwn text, cut under Slack's recommended 4,000 characters a message.
      post: (message, signal) =>
        deliverParts(splitMessage(slackMrkdwn(message.markdown), SLACK_TEXT_MAX), (text) =>
          deliverNotice(deps, config, { label, url: config.url, json: { text } }, signal),
        ),
      sendGroup: (group, signal) => deliverNotice(deps, config, { label, url: config.url, json: slackGroupMessage(group) }, signal),
    };
  },
};

/** The `{text, blocks}` body for one notice. */
export function slackMessage(notice: AlertNotice): { text: string; blocks: unknown[] } {
  const fields: [name: string, value: string][] = [
    ['Severity', `${severityEmoji(notice.severity)} ${notice.severity}`],
    ['Status', statusWord(notice)],
    ['Rule', notice.rule],
    ['Environment', notice.env ?? '(greenlight itself)'],
  ];
  const duration = firedFor(notice);
  if (duration) fields.push(['Firing for', duration]);

  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(title(notice), HEADER_MAX), emoji: true } },
    { type: 'section', text: mrkdwn(`*${truncate(escape(notice.summary), SECTION_MAX - 2)}*`) },
    { type: 'section', fields: fields.map(([name, value]) => mrkdwn(`*${name}*\n${truncate(escape(value), FIELD_MAX - 20)}`)) },
  ];
  const figures = figureLines(notice.figures);
  if (figures.length > 0) {
    blocks.push({ type: 'section', text: mrkdwn(`*Figures*\n${truncate(figures.map((line) => `• ${escape(line)}`).join('\n'), SECTION_MAX - 20)}`) });
  }
  if (notice.description.trim() !== '') {
    blocks.push({ type: 'section', text: mrkdwn(`*What greenlight did*\n${truncate(escape(notice.description), SECTION_MAX - 30)}`) });
  }
  if (notice.url) blocks.push({ type: 'section', text: mrkdwn(`<${escape(notice.url)}|Open greenlight state>`) });
  const context = [`started ${notice.startsAt}`];
  if (notice.endsAt) context.push(`resolved ${notice.endsAt}`);
  context.push(`key ${notice.key}`);
  const labels = labelLine(notice.labels);
  if (labels) context.push(labels);
  blocks.push({ type: 'context', elements: [mrkdwn(truncate(escape(context.join(' · ')), SECTION_MAX))] });

  return { text: truncate(escape(headline(notice)), SECTION_MAX), blocks };
}

/** Alerts a group message shows in full: 3 blocks each, inside Slack's 50 blocks with the header and footer. */
const GROUP_ALERTS_SHOWN = 12;

/**
 * The `{text, blocks}` body for a group: one alert alone reads as `slackMessage` does (with the
 * escalation and acknowledgement lines when there are any); several get a header, then per alert
 * a section (severity, status, rule, summary, figures) and a context line, then how to acknowledge.
 */
export function slackGroupMessage(group: AlertGroupNotice): { text: string; blocks: unknown[] } {
  const notes: string[] = [];
  if (group.escalation) notes.push(`*Escalation level ${group.escalation.level}*: not acknowledged (${group.escalation.incidents.join(', ')})`);
  if (group.repeat) notes.push('*Reminder*: still firing');
  const hint = ackHint(group);
  if (group.alerts.length === 1) {
    const message = slackMessage(group.alerts[0]!);
    const line = lifecycleLine(group.alerts[0]!);
    const extra = [...notes, ...(line ? [escape(line)] : []), ...(hint ? [`\`${escape(hint)}\``] : [])];
    if (extra.length > 0) message.blocks.splice(1, 0, { type: 'section', text: mrkdwn(truncate(extra.join('\n'), SECTION_MAX)) });
    return { text: truncate(escape(groupHeadline(group)), SECTION_MAX), blocks: message.blocks };
  }
  const blocks: unknown[] = [{ type: 'header', text: { type: 'plain_text', text: truncate(groupTitle(group), HEADER_MAX), emoji: true } }];
  if (notes.length > 0) blocks.push({ type: 'section', text: mrkdwn(truncate(notes.join('\n'), SECTION_MAX)) });
  for (const alert of group.alerts.slice(0, GROUP_ALERTS_SHOWN)) {
    const head = `${statusEmoji(alert)} *${escape(alert.rule)}*${alert.env ? ` on ${escape(alert.env)}` : ''} · ${statusWord(alert)} · ${alert.severity}`;
    const figures = figureLines(alert.figures).map((line) => `• ${escape(line)}`);
    blocks.push({ type: 'section', text: mrkdwn(truncate([head, escape(alert.summary), ...figures].join('\n'), SECTION_MAX)) });
    const context = [`started ${alert.startsAt}`];
    if (alert.endsAt) context.push(`resolved ${alert.endsAt}${firedFor(alert) ? ` after ${firedFor(alert)}` : ''}`);
    const line = lifecycleLine(alert);
    if (line) context.push(line);
    blocks.push({ type: 'context', elements: [mrkdwn(truncate(escape(context.join(' · ')), SECTION_MAX))] });
    blocks.push({ type: 'divider' });
  }
  const footer: string[] = [];
  if (group.alerts.length > GROUP_ALERTS_SHOWN) footer.push(`and ${group.alerts.length - GROUP_ALERTS_SHOWN} more alerts (see greenlight's state)`);
  if (hint) footer.push(hint);
  const url = group.alerts.find((alert) => alert.url)?.url;
  if (url) blocks.push({ type: 'section', text: mrkdwn(`<${escape(url)}|Open greenlight state>`) });
  if (footer.length > 0) blocks.push({ type: 'context', elements: [mrkdwn(truncate(escape(footer.join(' · ')), SECTION_MAX))] });
  return { text: truncate(escape(groupHeadline(group)), SECTION_MAX), blocks };
}

function mrkdwn(text: string): { type: 'mrkdwn'; text: string } {
  return { type: 'mrkdwn', text };
}

/** Slack reads `&`, `<` and `>` as markup (`<!channel>` would page a whole channel). */
function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

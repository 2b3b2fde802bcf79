/**
 * `discord`: a Discord channel webhook. The JSON body is `{content, embeds, allowed_mentions}`;
 * the embed carries title (linked to the agent), description, colour, fields and timestamp. A
 * group is one message with one embed: a field per alert.
 * Discord answers 204 (200 with `?wait=true`); a 429 names the wait in its Retry-After header
 * and as `retry_after` (seconds) in its JSON body, which is used when the header is missing.
 */
import { z } from 'zod';
import { HttpUrl } from '../../config/schema.js';
import type { Severity } from '../events/events.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { AlertGroupNotice, AlertNotice, AlertReceiver } from './alert-receiver.js';
import {
  ackHint,
  figureLines,
  firedFor,
  groupHeadline,
  groupSeverity,
  groupTitle,
  labelLine,
  lifecycleLine,
  severityEmoji,
  statusEmoji,
  statusWord,
  subject,
  title,
  truncate,
} from './notice-format.js';
import { deliverNotice, deliverParts, receiverLabel, receiverOptions } from './receiver-options.js';
import { splitMessage } from './text-message.js';
import { secretsOfUrl } from '../../config/redactor.js';

/** The `discord` block: the common receiver keys and the webhook `url`. */
export const DiscordReceiverSchema = z.strictObject({
  ...receiverOptions('discord', ['warning', 'critical']),
  url: HttpUrl.meta({ description: 'The channel webhook URL (a secret): take it from ${DISCORD_WEBHOOK_URL}.' }),
});

/** A validated `discord` block. */
export type DiscordReceiverConfig = z.output<typeof DiscordReceiverSchema>;

/** Embed colours: red critical, orange warning, blue info, green resolved. */
export const DISCORD_COLORS = { critical: 0xe01e1e, warning: 0xf2a900, info: 0x3b82f6, resolved: 0x2eb67d } as const satisfies Record<
  Severity | 'resolved',
  number
>;

/**
 * Discord's limits: content 2000, title 256, description 4096, field value 1024, footer 2048,
 * and 6000 for all of an embed's text; description and footer are kept short enough that the
 * longest notice stays under the total.
 */
const CONTENT_MAX = 2_000;
const TITLE_MAX = 256;
const DESCRIPTION_MAX = 2_800;
const FIELD_MAX = 1_024;
const FOOTER_MAX = 300;

/** Posts each notice to a Discord channel through a webhook. */
export const discordReceiver: PluginDefinition<DiscordReceiverConfig, AlertReceiver> = {
  type: 'discord',
  schema: DiscordReceiverSchema,
  create(config, deps) {
    const label = receiverLabel('discord', config.name);
    deps.redactor.add(secretsOfUrl(config.url));
    return {
      name: config.name,
      type: 'discord',
      severities: config.severities,
      send: (notice, signal) =>
        deliverNotice(deps, config, { label, url: config.url, json: discordMessage(notice), retryAfterFromBody: discordRetryAfter }, signal),
      // A report: Markdown as is, in messages of at most 2,000 characters, mentions disabled.
      post: (message, signal) =>
        deliverParts(splitMessage(message.markdown, CONTENT_MAX), (content) =>
          deliverNotice(
            deps,
            config,
            { label, url: config.url, json: { content, allowed_mentions: { parse: [] } }, retryAfterFromBody: discordRetryAfter },
            signal,
          ),
        ),
      sendGroup: (group, signal) =>
        deliverNotice(deps, config, { label, url: config.url, json: discordGroupMessage(group), retryAfterFromBody: discordRetryAfter }, signal),
    };
  },
};

/** The `{content, embeds}` body for one notice. */
export function discordMessage(notice: AlertNotice): Record<string, unknown> {
  const fields: { name: string; value: string; inline: boolean }[] = [
    { name: 'Severity', value: `${severityEmoji(notice.severity)} ${notice.severity}`, inline: true },
    { name: 'Status', value: statusWord(notice), inline: true },
    { name: 'Environment', value: escape(notice.env ?? '(greenlight itself)'), inline: true },
    { name: 'Rule', value: escape(truncate(notice.rule, FIELD_MAX - 10)), inline: true },
  ];
  const duration = firedFor(notice);
  if (duration) fields.push({ name: 'Firing for', value: duration, inline: true });
  const figures = figureLines(notice.figures);
  if (figures.length > 0) fields.push({ name: 'Figures', value: truncate(figures.map((line) => `• ${escape(line)}`).join('\n'), FIELD_MAX), inline: false });
  const labels = labelLine(notice.labels);
  if (labels) fields.push({ name: 'Labels', value: truncate(escape(labels), FIELD_MAX), inline: false });

  const description = [`**${escape(notice.summary)}**`];
  if (notice.description.trim() !== '') description.push('', '**What greenlight did**', escape(notice.description));
  const embed: Record<string, unknown> = {
    title: truncate(title(notice), TITLE_MAX),
    description: truncate(description.join('\n'), DESCRIPTION_MAX),
    color: notice.status === 'resolved' ? DISCORD_COLORS.resolved : DISCORD_COLORS[notice.severity],
    fields,
    timestamp: notice.status === 'resolved' ? (notice.endsAt ?? notice.startsAt) : notice.startsAt,
    footer: { text: truncate(`greenlight · key ${notice.key}`, FOOTER_MAX) },
  };
  if (notice.url) embed.url = notice.url;
  return {
    content: truncate(
      `${statusEmoji(notice)} **${statusWord(notice)}** · ${notice.severity.toUpperCase()} · ${escape(subject(notice))}: ${escape(notice.summary)}`,
      CONTENT_MAX,
    ),
    embeds: [embed],
    // Text from rules and environments must never ping @everyone or a role.
    allowed_mentions: { parse: [] },
  };
}

/**
 * A group embed within Discord's 6000 characters: 12 alert fields of at most 80 + 250 characters
 * (3960), the "more" field, title 256, description 800 and footer 300 come to under 5400.
 */
const GROUP_FIELDS = 12;
const GROUP_FIELD_NAME_MAX = 80;
const GROUP_FIELD_MAX = 250;
const GROUP_DESCRIPTION_MAX = 800;

/**
 * The body for a group: one alert alone reads as `discordMessage` does (with the escalation and
 * acknowledgement lines); several share one embed with a field per alert (summary and figures).
 */
export function discordGroupMessage(group: AlertGroupNotice): Record<string, unknown> {
  const notes: string[] = [];
  if (group.escalation) notes.push(`**Escalation level ${group.escalation.level}**: not acknowledged (${escape(group.escalation.incidents.join(', '))})`);
  if (group.repeat) notes.push('**Reminder**: still firing');
  const hint = ackHint(group);
  if (hint) notes.push(`\`${hint}\``);
  if (group.alerts.length === 1) {
    const message = discordMessage(group.alerts[0]!);
    const line = lifecycleLine(group.alerts[0]!);
    const embed = (message.embeds as Record<string, unknown>[])[0]!;
    const extra = [...notes, ...(line ? [escape(line)] : [])];
    if (extra.length > 0) embed.description = truncate(`${extra.join('\n')}\n\n${String(embed.description)}`, DESCRIPTION_MAX);
    return { ...message, content: truncate(escape(groupHeadline(group)), CONTENT_MAX) };
  }
  const fields = group.alerts.slice(0, GROUP_FIELDS).map((alert) => {
    const line = lifecycleLine(alert);
    const value = [escape(alert.summary), ...figureLines(alert.figures).map((figure) => `• ${escape(figure)}`), ...(line ? [escape(line)] : [])].join('\n');
    return {
      name: truncate(`${statusEmoji(alert)} ${alert.rule} · ${statusWord(alert)}`, GROUP_FIELD_NAME_MAX),
      value: truncate(value, GROUP_FIELD_MAX) || '-',
      inline: false,
    };
  });
  if (group.alerts.length > GROUP_FIELDS)
    fields.push({ name: 'More', value: `and ${group.alerts.length - GROUP_FIELDS} more alerts (see greenlight's state)`, inline: false });
  const url = group.alerts.find((alert) => alert.url)?.url;
  const embed: Record<string, unknown> = {
    title: truncate(groupTitle(group), TITLE_MAX),
    description: truncate(notes.join('\n') || `${group.alerts.length} alerts`, GROUP_DESCRIPTION_MAX),
    color: group.status === 'resolved' ? DISCORD_COLORS.resolved : DISCORD_COLORS[groupSeverity(group)],
    fields,
    timestamp: group.alerts[0]!.startsAt,
    footer: { text: truncate(`greenlight · group ${group.key}`, FOOTER_MAX) },
  };
  if (url) embed.url = url;
  return { content: truncate(escape(groupHeadline(group)), CONTENT_MAX), embeds: [embed], allowed_mentions: { parse: [] } };
}

/** Milliseconds from a 429 body's `retry_after` (seconds), undefined when absent or unreadable. */
export function discordRetryAfter(body: string): number | undefined {
  try {
    const seconds = (JSON.parse(body) as { retry_after?: unknown }).retry_after;
    return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1_000) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Discord markdown, escaped: `_`, `*`, `~`, `|`, `` ` `` and `\` would restyle rule names and
 * summaries; `[` and `]` would make a masked link (`[Click to acknowledge](http://…)`, from a
 * probe's answer, shown as a link to the on-call); `<` a mention, channel or timestamp tag; and
 * `#`, `>` or `-` at the start of a line a heading, a quote or a list. A backslash before any
 * punctuation shows that character as it is.
 */
function escape(text: string): string {
  return text.replace(/([\\*_~|`[\]<])/g, '\\$1').replace(/^(\s*)([#>-])/gm, '$1\\$2');
}

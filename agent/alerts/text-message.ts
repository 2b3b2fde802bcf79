/**
 * Text messages through alert receivers (a scheduled report, issue 16): Markdown as each chat app
 * takes it, cut into messages the app accepts. Slack's mrkdwn has no headings and bolds with one
 * asterisk; Discord takes Markdown but 2,000 characters a message. A cut never leaves a code block
 * open: the block is closed at the end of one message and opened again at the start of the next.
 */
import type { TextMessage } from './alert-receiver.js';

/** Markdown → Slack mrkdwn for what the report writes: headings, bold, links; `&`, `<`, `>` escaped. */
export function slackMrkdwn(markdown: string): string {
  let inCode = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (line.startsWith('```')) inCode = !inCode;
      const escaped = line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      if (inCode || line.startsWith('```')) return escaped;
      return escaped
        .replace(/^#{1,6}\s+(.*)$/, '*$1*')
        .replace(/\*\*([^*]+)\*\*/g, '*$1*')
        .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<$2|$1>');
    })
    .join('\n');
}

/** Cut `text` at line ends into pieces of at most `max` characters, code blocks closed and reopened across a cut. */
export function splitMessage(text: string, max: number): string[] {
  const fence = '```';
  const parts: string[] = [];
  let current: string[] = [];
  let length = 0;
  let inCode = false;
  const push = () => {
    if (current.length === 0) return;
    if (inCode) current.push(fence);
    parts.push(current.join('\n'));
    current = inCode ? [fence] : [];
    length = inCode ? fence.length + 1 : 0;
  };
  for (const raw of text.replace(/\n+$/, '').split('\n')) {
    // A single line longer than a message (never written by greenlight) is cut where it must be.
    const line = raw.length > max - 2 * (fence.length + 1) ? `${raw.slice(0, max - 2 * (fence.length + 1) - 3)}...` : raw;
    const reserve = inCode || line.startsWith(fence) ? fence.length + 1 : 0;
    if (length + line.length + 1 + reserve > max && current.length > (inCode ? 1 : 0)) push();
    current.push(line);
    length += line.length + 1;
    if (line.startsWith(fence)) inCode = !inCode;
  }
  if (current.length > (inCode ? 1 : 0) || parts.length === 0) {
    if (inCode) current.push(fence);
    parts.push(current.join('\n'));
  }
  return parts;
}

/** The JSON body a `webhook` receiver posts for a text message. */
export function webhookTextBody(message: TextMessage): Record<string, unknown> {
  return { version: 'greenlight.text/1', title: message.title, text: message.markdown, ...(message.data !== undefined ? { data: message.data } : {}) };
}

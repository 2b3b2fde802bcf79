import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import { parseDuration } from '../../../config/units.js';
import type { CommandIo } from '../cli.js';
import type { PromoteResult } from '../../promote/promotion.js';
import { ApiError, createApiClient } from './api-client.js';
import { PROMOTE_USAGE } from '../command-usage.js';
import { escapeControls } from '../../telemetry/terminal-text.js';

/** What the summary reads of a promotion's result. */
type PromoteSummary = Pick<PromoteResult, 'ok' | 'from' | 'to' | 'live' | 'switched' | 'rolledBack' | 'interrupted' | 'reason' | 'durationMs'> & {
  failedStep: string | null;
  steps: { step: string; ok: boolean; durationMs: number }[];
};

/** The events formatLine prints; any other event of the answer is passed over. */
const PRINTED_EVENTS = new Set(['promote.started', 'promote.step', 'switch.step_succeeded', 'switch.step_failed']);

/**
 * A line of the agent's NDJSON answer (agent/promote/promotion.ts PromoteLine, and `detached`),
 * as far as this command reads it: the result decides the exit code, and a line that only looks
 * like one (`{"type":"result","ok":true}`) must not pass for a promotion done.
 */
const PromoteLineShape = z.union([
  z.looseObject({
    type: z.literal('result'),
    ok: z.boolean(),
    from: z.string(),
    to: z.string(),
    live: z.string(),
    switched: z.boolean(),
    rolledBack: z.boolean(),
    interrupted: z.boolean().optional(),
    failedStep: z.string().nullable(),
    reason: z.string().nullable(),
    durationMs: z.number(),
    steps: z.array(z.looseObject({ step: z.string(), ok: z.boolean(), durationMs: z.number() })),
  }),
  z.looseObject({ type: z.literal('detached'), message: z.string() }),
  z.looseObject({ type: z.literal('progress'), step: z.string(), message: z.string() }),
  z.looseObject({
    type: z.literal('promote.started'),
    data: z.looseObject({ promotion: z.string(), from: z.string(), to: z.string(), watchMs: z.number(), reason: z.string().nullish() }),
  }),
  z.looseObject({
    type: z.literal('promote.step'),
    data: z.looseObject({ ok: z.boolean(), step: z.string(), durationMs: z.number(), detail: z.string() }),
  }),
  z.looseObject({
    type: z.literal('switch.step_succeeded'),
    data: z.looseObject({ switch: z.string(), step: z.string(), durationMs: z.number(), detail: z.string() }),
  }),
  z.looseObject({
    type: z.literal('switch.step_failed'),
    data: z.looseObject({ switch: z.string(), step: z.string(), durationMs: z.number(), reason: z.string() }),
  }),
  z.looseObject({ type: z.string().refine((type) => !['result', 'detached', 'progress'].includes(type) && !PRINTED_EVENTS.has(type)) }),
]);
type PromoteLineShape = z.output<typeof PromoteLineShape>;

/**
 * `greenlight promote --to green`: a health-gated switch through the running agent (ADMIN_TOKEN).
 * The agent streams each step as it happens (POST /api/v1/promote with Accept:
 * application/x-ndjson); this prints them with ✅/❌, durations and figures, then a summary.
 * Exit 0 when the switch held through the watch (or, with --no-wait, once it is verified),
 * 1 when a gate failed, the window is closed, or the new environment was rolled back; 2 usage.
 */
export async function promoteCommand(values: Record<string, string | boolean | undefined>, io: CommandIo): Promise<number> {
  const to = typeof values.to === 'string' ? values.to : undefined;
  if (!to) throw new UsageError(`promote needs --to NAME, the environment to make live (for example --to green)\nusage: ${PROMOTE_USAGE}`);
  const reason = typeof values.reason === 'string' ? values.reason.trim() : undefined;
  const emergency = values.emergency === true;
  if (emergency && !reason)
    throw new UsageError('--emergency needs --reason TEXT: it is recorded with the promotion (for example --reason "hotfix for the order book")');
  const watch = typeof values.watch === 'string' ? values.watch : undefined;
  if (watch !== undefined && parseDuration(watch) === undefined) throw new UsageError(`--watch must be a duration such as 30s or 5m, not ${watch}`);
  const json = values.json === true;
  const body = {
    to,
    emergency,
    ...(reason ? { reason } : {}),
    kind: values.major === true ? 'major' : 'feature',
    deploy: values.deploy === true,
    ...(watch ? { watch } : {}),
    wait: values['no-wait'] !== true,
  };

  const client = createApiClient({ url: typeof values.url === 'string' ? values.url : undefined, env: io.env });
  let result: PromoteSummary | undefined;
  let detached = false;
  let last: string | undefined;
  try {
    if (!json)
      io.out(`promote → ${to} (${body.kind}${emergency ? ', emergency' : ''}${body.deploy ? ', Render deploy first' : ''}) through ${client.displayUrl}`);
    await client.stream('/api/v1/promote', {
      auth: 'admin',
      body,
      line: PromoteLineShape,
      onLine: (line) => {
        if (json) io.out(JSON.stringify(line));
        if (line.type === 'result') result = line as PromoteSummary;
        else if (line.type === 'detached') {
          detached = true;
          if (!json) io.out(`↪ ${escapeControls(String(line.message))}`);
        } else if (!json) {
          const text = formatLine(line);
          if (text !== undefined && text !== last) io.out(text);
          last = text;
        }
      },
    });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    io.err(`❌ ${error.message}`);
    return 1;
  }
  if (detached) {
    if (!json) io.out(`\nsummary: ✅ ${to} is live and verified; the watch goes on in the agent (greenlight tail --type promote)`);
    return 0;
  }
  if (!result) {
    io.err('❌ the agent ended the answer without a result: the promotion may still be running; see greenlight tail --type promote');
    return 1;
  }
  if (!json) io.out(`\n${summarize(result)}`);
  return result.ok ? 0 : 1;
}

/**
 * One streamed line as the terminal shows it, on one line: its texts come from the agent and, through
 * it, from targets (a certificate's name, a body quoted in a check), so their control characters
 * are written out (the CLI's last pass keeps newlines and greenlight's own colors, which a target
 * could use to forge a line of the verdict).
 */
export function formatLine(line: PromoteLineShape): string | undefined {
  const text = describeLine(line);
  return text === undefined ? undefined : escapeControls(text);
}

function describeLine(line: PromoteLineShape): string | undefined {
  const event = line as Extract<PromoteLineShape, { type: 'progress' | 'promote.started' | 'promote.step' | 'switch.step_succeeded' | 'switch.step_failed' }>;
  switch (event.type) {
    case 'progress':
      return `   ${event.step}: ${event.message}`;
    case 'promote.started':
      return `promotion ${event.data.promotion}: ${event.data.from} → ${event.data.to}, watch ${seconds(event.data.watchMs)}${event.data.reason ? `, reason: ${event.data.reason}` : ''}`;
    case 'promote.step':
      return `${event.data.ok ? '✅' : '❌'} ${event.data.step.padEnd(9)} ${seconds(event.data.durationMs).padStart(7)}  ${event.data.detail}`;
    case 'switch.step_succeeded':
    case 'switch.step_failed': {
      const after = event.data.switch === 'promotion' ? 'switch' : 'revert';
      const ok = event.type === 'switch.step_succeeded';
      const detail = ok ? event.data.detail : event.data.reason;
      return `   ${after}: ${ok ? '✅' : '❌'} ${event.data.step.padEnd(8)} ${seconds(event.data.durationMs).padStart(6)}  ${detail}`;
    }
    default:
      return undefined;
  }
}

/** The closing lines: the verdict, where traffic is, and each step's time. */
export function summarize(result: PromoteSummary): string {
  const steps = result.steps.map((s) => `${s.ok ? '✅' : '❌'} ${s.step} ${seconds(s.durationMs)}`).join(' · ');
  if (result.ok) return `summary: ✅ promoted ${result.from} → ${result.to} in ${seconds(result.durationMs)}; ${result.to} is live\n         ${steps}`;
  const where = result.rolledBack
    ? `rolled back: ${result.live} is live`
    : result.switched
      ? `${result.live} is live`
      : result.interrupted
        ? `the agent stopped while the traffic layer had the switch: whether ${result.to} took traffic is unknown; its next start settles it (greenlight tail --type action)`
        : result.live === result.from
          ? `traffic never moved: ${result.live} is still live`
          : `this promotion moved no traffic, but ${result.live} is live now: another switch (a rule's rollback, an operator's) came meanwhile`;
  return `summary: ❌ not promoted: ${result.failedStep} failed: ${escapeControls(String(result.reason))}\n         ${where}\n         ${steps}`;
}

function seconds(ms: number): string {
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1_000)}s`;
  return `${(ms / 1_000).toFixed(1)}s`;
}

/**
 * "Which environment answers there?": polls a URL whose JSON names the environment that answered
 * (AlphaStack's /api/health says `"environment": "green"`) until it names the expected one
 * `streak` times in a row, each on a new connection. Used after a switch through nginx (the nginx
 * adapter's verifyUrl) and through the CDN (the `verify` step): right after a reload old workers
 * or edge caches may still answer for a moment, so one new answer proves little.
 */
import type { CompiledPath } from '../../config/schema.js';
import { quote } from '../../config/units.js';
import { JsonSelector, JsonSlice } from '../../probes/json-select.js';
import { OutboundError, sendWithRetry } from '../plugins/outbound.js';
import type { PluginDeps } from '../plugins/plugin.js';

export interface EnvironmentPoll {
  /** Names the URL in messages (`nginx verifyUrl`). */
  label: string;
  url: string;
  path: CompiledPath;
  env: string;
  streak: number;
  intervalMs: number;
  /** Clock time (deps.now) after which no new poll starts. */
  deadline: number;
}

export type PollResult = { ok: true; polls: number } | { ok: false; polls: number; cancelled: boolean; seen: string };

/** A poll's own time limit; the last one before the deadline gets what is left. */
const POLL_TIMEOUT_MS = 2_000;
const NOTHING_SEEN = 'no answer yet';

type PollDeps = Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>;

/**
 * One GET of the URL on a new connection (so that polls sample the workers or edges, not one
 * kept-alive connection): the value at the path (undefined when missing), or what went wrong.
 */
async function askOnce(
  ask: Pick<EnvironmentPoll, 'label' | 'url'>,
  selector: JsonSelector,
  deps: PollDeps,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<{ value: unknown } | { problem: string; transport: boolean }> {
  try {
    const request = { label: ask.label, url: ask.url, method: 'GET' as const, headers: { connection: 'close' } };
    const response = await sendWithRetry(deps, request, { attempts: 1, timeoutMs, backoffMs: 0, maxBackoffMs: 0 }, signal);
    const selection = selector.select(Buffer.from(response.body));
    return selection.ok ? { value: selection.values[0] } : { problem: `the answer is not JSON: ${selection.problem}`, transport: false };
  } catch (error) {
    if (!(error instanceof OutboundError)) throw error;
    return { problem: error.message, transport: true };
  }
}

/** Poll until the answer names `poll.env` `poll.streak` times in a row, the deadline passes or `signal` aborts. Never throws for what the URL does. */
export async function pollEnvironment(poll: EnvironmentPoll, deps: PollDeps & Pick<PluginDeps, 'now'>, signal: AbortSignal): Promise<PollResult> {
  const selector = new JsonSelector([poll.path.segments]);
  const maxPolls = Math.ceil(Math.max(0, poll.deadline - deps.now()) / Math.max(1, poll.intervalMs)) + poll.streak;
  let seen = NOTHING_SEEN;
  let streak = 0;
  let polls = 0;
  while (polls < maxPolls) {
    if (signal.aborted) return { ok: false, polls, cancelled: true, seen };
    polls++;
    const remaining = poll.deadline - deps.now();
    const answer = await askOnce(poll, selector, deps, signal, Math.max(50, Math.min(POLL_TIMEOUT_MS, remaining)));
    if ('value' in answer) {
      const { value } = answer;
      streak = value === poll.env ? streak + 1 : 0;
      if (streak === poll.streak) return { ok: true, polls };
      seen =
        value === undefined ? `${poll.path.text} missing from the answer` : `${poll.path.text} is ${quote(value instanceof JsonSlice ? value.value() : value)}`;
    } else {
      streak = 0;
      // A poll the deadline cut short (a busy machine, a slow answer) says less than the last
      // answer did: "no answer within 52ms" would hide "$.environment is "blue"".
      if (!answer.transport || remaining >= POLL_TIMEOUT_MS || seen === NOTHING_SEEN) seen = answer.problem;
    }
    if (deps.now() >= poll.deadline) break;
    await deps.sleep(poll.intervalMs, signal);
  }
  return { ok: false, polls, cancelled: signal.aborted, seen };
}

/**
 * Which environment answers at `url` now: asked `times` times, each on a new connection, and
 * named only when every answer names the same one (undefined otherwise: no answer, no JSON, or
 * old and new workers still answering side by side).
 */
export async function askEnvironment(
  ask: Pick<EnvironmentPoll, 'label' | 'url' | 'path'>,
  deps: PollDeps,
  signal: AbortSignal,
  times = 3,
): Promise<string | undefined> {
  const selector = new JsonSelector([ask.path.segments]);
  let named: string | undefined;
  for (let i = 0; i < times; i++) {
    const answer = await askOnce(ask, selector, deps, signal, POLL_TIMEOUT_MS);
    if (!('value' in answer) || typeof answer.value !== 'string' || (named !== undefined && answer.value !== named)) return undefined;
    named = answer.value;
  }
  return named;
}

import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { HEARTBEAT_MS } from '../../events/event-stream.js';
import { parseEventId, typeFilterProblem } from '../../events/journal-pages.js';
import { AGENT_HEADER } from '../../http/http-server.js';
import { escapeControls } from '../../telemetry/terminal-text.js';
import { bearerToken, firstIssue, NOT_AN_AGENT, parseAgentUrl } from './api-client.js';

const COLORS: Record<string, string> = { info: '\u001b[36m', warning: '\u001b[33m', critical: '\u001b[31m' };
const RESET = '\u001b[0m';
/**
 * A connection that has carried nothing, not even the agent's ping, for this long is dead (the
 * agent paused, a cable pulled, a proxy that swallowed the upgrade): drop it and reconnect.
 */
const SILENCE_MS = HEARTBEAT_MS * 2.5;

/** An event as the stream sends it (the contract's shape), as far as tail reads it. */
const StreamEvent = z.looseObject({
  id: z.number().int().positive(),
  time: z.string(),
  type: z.string(),
  severity: z.enum(['info', 'warning', 'critical']),
  env: z.string().nullable(),
  probe: z.string().nullable(),
  rule: z.string().nullable(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()),
});
type StreamEvent = z.output<typeof StreamEvent>;

/**
 * `greenlight tail [--url U] [--since ID] [--type T] [--json]`: follow the event stream, one line
 * an event (colored on a terminal) or the raw JSON with --json. When the connection drops it
 * reconnects by itself and resumes after the last event it printed, so nothing is missed or
 * printed twice. Runs until Ctrl-C or SIGTERM (exit 0), or `stop` resolves (tests). A request the agent
 * refuses as bad (HTTP 400: a filter it cannot match) is not retried: exit 2 with its reason.
 */
export async function tailCommand(
  options: {
    url: string | undefined;
    since: string | undefined;
    type: string | undefined;
    json: boolean;
    color?: boolean;
    stop?: Promise<void>;
    /** How long a connection may carry nothing before it counts as dead (default SILENCE_MS). */
    silenceMs?: number;
  },
  io: CommandIo,
): Promise<number> {
  const base = parseAgentUrl(options.url);
  const given = options.since === undefined ? undefined : parseEventId(options.since, '--since');
  if (typeof given === 'string') throw new UsageError(given);
  const typeProblem = options.type === undefined ? undefined : typeFilterProblem(options.type);
  if (typeProblem) throw new UsageError(`--type: ${typeProblem}`);
  let since = given;
  const color = options.color ?? process.stdout.isTTY === true;
  // Ctrl-C, or a supervisor's stop (systemd, docker stop, timeout): a clean end either way.
  const stop = options.stop ?? new Promise<void>((resolve) => (process.once('SIGINT', () => resolve()), process.once('SIGTERM', () => resolve())));
  const silenceMs = options.silenceMs ?? SILENCE_MS;
  let stopped = false;
  void stop.then(() => (stopped = true));
  // The stream takes its own token, or the admin or rollback token (the contract's CLI tokens).
  const tokenVariable = (['GREENLIGHT_STREAM_TOKEN', 'ADMIN_TOKEN', 'ROLLBACK_TOKEN'] as const).find((name) => io.env[name]);
  const token = tokenVariable ? bearerToken(tokenVariable, io.env[tokenVariable]!) : undefined;

  // What the agent answered 400 with: asking again would be answered the same.
  let badRequest: string | undefined;
  for (let attempt = 0; !stopped; attempt++) {
    const url = new URL('/api/v1/stream', base);
    url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    if (since !== undefined) url.searchParams.set('since', String(since));
    if (options.type) url.searchParams.set('type', options.type);
    // Set once the agent's stream is open; cleared when what came over it is no agent's. Only a
    // connection that held resets the backoff: a server that is not greenlight, or sends what is no
    // event, is asked again ever more slowly, not every 0.25 s.
    let held = false;
    const socket = new WebSocket(url, { handshakeTimeout: silenceMs, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
    let silence: NodeJS.Timeout | undefined;
    const ended = new Promise<string>((resolve) => {
      const heard = () => {
        clearTimeout(silence);
        silence = setTimeout(() => resolve(`silent for ${silenceMs / 1_000} s (the agent pings every ${HEARTBEAT_MS / 1_000} s)`), silenceMs);
      };
      // 'upgrade' comes first: only an agent's answer makes the opened connection one that held.
      let agent = false;
      socket.on('open', () => {
        held = agent;
        heard();
      });
      socket.on('ping', heard);
      // Only an agent's stream is followed: a WebSocket server that is not greenlight is a wrong --url.
      socket.on('upgrade', (res) => {
        const notAgent = notAnAgent(res);
        agent = notAgent === undefined;
        if (notAgent) resolve(notAgent);
      });
      socket.on('message', (data) => {
        // Nothing more is read from a connection judged to be no agent's (frames that came with it included).
        if (!agent) return;
        heard();
        // What is not the agent's next event is never printed, nor taken as where to resume: the
        // connection is dropped and tail resumes after the last event it printed.
        const problem = eventProblem(String(data), since);
        if (typeof problem === 'string') {
          agent = held = false;
          return resolve(problem);
        }
        since = problem.id;
        io.out(options.json ? String(data) : formatEvent(problem, color));
      });
      socket.on('close', (code, reason) => resolve(`closed (${code}${reason.length ? ` ${String(reason)}` : ''})`));
      socket.on('error', (error) => resolve(error.message));
      // Refused at the upgrade (a limit, the Host or Origin check, a token): say what the agent said.
      socket.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        res.on('end', () => {
          let error = body.slice(0, 300);
          try {
            error = (JSON.parse(body) as { error?: string }).error ?? error;
          } catch {
            // not JSON: the text as it came
          }
          // A proxy's own 400 is no verdict of the agent's on the filter: reported, and asked again.
          const notAgent = notAnAgent(res);
          if (notAgent) return resolve(`${notAgent}: HTTP ${res.statusCode}: ${error}`);
          if (res.statusCode === 400) badRequest = error;
          resolve(`refused (HTTP ${res.statusCode}): ${error}`);
        });
        res.on('error', () => resolve(`refused (HTTP ${res.statusCode})`));
      });
    });
    const why = await Promise.race([ended, stop.then(() => 'stopped')]);
    clearTimeout(silence);
    socket.terminate();
    if (stopped || why === 'stopped') break;
    if (held) attempt = 0;
    if (badRequest !== undefined) throw new UsageError(`the agent refused the stream as asked: ${badRequest}`);
    const wait = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
    io.err(`stream ${why}; reconnecting in ${(wait / 1_000).toFixed(1)} s${since === undefined ? '' : ` from event ${since}`}`);
    await Promise.race([new Promise((resolve) => setTimeout(resolve, wait)), stop]);
  }
  return 0;
}

/**
 * `12:03:04 #42 critical rule.firing blue live-error-ratio-critical: …`: one line per event, with
 * every control character in it written out (`\u001b[2J`, `\r`, `\n`), since the message quotes
 * remote text (probe answers, reasons typed into the API); only then is the line colored.
 */
export function formatEvent(event: Pick<StreamEvent, 'id' | 'time' | 'type' | 'severity' | 'env' | 'probe' | 'rule' | 'message'>, color: boolean): string {
  const time = String(event.time).slice(11, 19);
  const scope = [event.env, event.probe, event.rule].filter(Boolean).join(' ');
  const severity = String(event.severity).padEnd(8);
  const line = escapeControls(`${time} #${event.id} ${severity} ${String(event.type).padEnd(16)} ${scope ? `${scope}: ` : ''}${event.message}`);
  return color ? `${COLORS[event.severity] ?? ''}${line}${RESET}` : line;
}

/** Why an answer to the upgrade is not an agent's (no AGENT_HEADER), or undefined when it is. */
function notAnAgent(res: IncomingMessage): string | undefined {
  return res.headers[AGENT_HEADER] === undefined ? `answered ${NOT_AN_AGENT}` : undefined;
}

/** The event a stream message carries, or why it is none: not an event's JSON, or not after `since` (the stream never repeats one). */
function eventProblem(text: string, since: number | undefined): StreamEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'sent a message that is not JSON';
  }
  const parsed = StreamEvent.safeParse(value);
  if (!parsed.success) return `sent a message that is not a greenlight event (${firstIssue(parsed.error, 'the message')})`;
  if (since !== undefined && parsed.data.id <= since) return `sent event ${parsed.data.id} after event ${since}: ids only increase`;
  return parsed.data;
}

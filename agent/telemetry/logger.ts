import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { Redactor } from '../../config/redactor.js';
import type { GreenlightEvent } from '../events/events.js';
import { escapeJsonControls } from './terminal-text.js';

/**
 * Paths pino blanks out. Components never log headers or config secrets on purpose; this is the
 * safety net for the day someone does.
 */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.authorization',
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'routingKey',
  '*.routingKey',
  'webhookUrl',
  '*.webhookUrl',
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface LoggerOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
  /** Where JSON lines go; default stdout. Tests pass a stream to read what was logged. */
  destination?: DestinationStream;
  /** The agent's redactor: every line is redacted as a whole before it is written. */
  redactor?: Redactor;
}

/**
 * The root logger: JSON lines, or pretty on a terminal. Components take `logger.child({ component })`.
 * Every line, once serialized, has the config's secrets redacted (whatever field, message or
 * stack they hide in) and its control characters escaped: in JSON, DEL and C1 too (JSON.stringify
 * leaves them raw); pretty, all but newlines and tabs, so a remote ESC[2J prints as `\u001b[2J`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const usePretty = options.format === 'pretty' || (options.format === 'auto' && !options.destination && process.stdout.isTTY === true);
  const { redactor } = options;
  const streamWrite = (line: string) => escapeJsonControls(redactor ? redactor.text(line) : line, usePretty);
  const base = { level: options.level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { pid: process.pid }, hooks: { streamWrite } };
  if (usePretty) return pino(base, loadPretty()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false }));
}

/**
 * pino-pretty and the modules it brings, loaded only for a terminal: an agent in service writes
 * JSON and never needs them (they and node-postgres, loaded at start, kept 310 K characters of
 * source for good; issue 18).
 */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}

/** Every event as a log line, at the level its severity says (the bus's first subscriber). */
export function logEvent(logger: Logger, event: GreenlightEvent): void {
  const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
  logger[level](
    { event: event.type, id: event.id, env: event.env ?? undefined, probe: event.probe ?? undefined, rule: event.rule ?? undefined },
    event.message,
  );
}

/**
 * A warning for something that may happen thousands of times a second (connections refused,
 * probes not run): logged at most every `everyMs` (monotonic), with how many happened since the
 * last and the latest of them (`say(count, latest)`), so a flood is said without becoming a flood
 * of lines. `warn(occurrence)` counts one and logs when due; what happened since the last line is
 * said `everyMs` after it even when nothing more happens (found from outside: a burst of 2,004
 * connections closed in under a second was logged as "1", and its other 2,003 were logged 45 s
 * later with the next burst, as if they were part of it).
 */
export function spacedWarning<T>(
  logger: Logger,
  everyMs: number,
  say: (count: number, latest: T) => { fields: Record<string, unknown>; message: string },
): (occurrence: T) => void {
  let count = 0;
  let latest: T | undefined;
  let warnedAt = Number.NEGATIVE_INFINITY;
  let due: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(due);
    due = undefined;
    if (count === 0) return;
    const { fields, message } = say(count, latest as T);
    logger.warn(fields, message);
    warnedAt = performance.now();
    count = 0;
  };
  return (occurrence) => {
    count++;
    latest = occurrence;
    const waited = performance.now() - warnedAt;
    if (waited >= everyMs) flush();
    else due ??= setTimeout(flush, everyMs - waited).unref();
  };
}

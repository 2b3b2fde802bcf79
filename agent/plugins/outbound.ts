/**
 * Outbound HTTP with retries, shared by every plugin that calls out (traffic webhook, Render,
 * alert receivers): a deadline per attempt, exponential backoff with jitter on network errors
 * and 5xx, 429 honoured through Retry-After, no retry on other 4xx. Messages name the target
 * by its label, never its URL: webhook URLs are secrets.
 */
import { GreenlightError } from '../../config/errors.js';
import type { PluginDeps } from './plugin.js';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Deadline of one attempt. */
  timeoutMs: number;
  /** First backoff; doubles each retry, with ±20 % jitter. */
  backoffMs: number;
  /** Cap on one wait, Retry-After included. */
  maxBackoffMs: number;
}

/** 429s in one call that use up no try (each waited out as it asks, up to maxBackoffMs). */
const MAX_RATE_LIMITED = 10;

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, timeoutMs: 5_000, backoffMs: 500, maxBackoffMs: 30_000 };

/** The retry policy of a config block: `retries` more tries after the first, each within `timeout`. */
export function retryPolicyOf(block: { timeout: number; retries: number }): RetryPolicy {
  return { ...DEFAULT_RETRY, attempts: block.retries + 1, timeoutMs: block.timeout };
}

/** An answer's body as JSON, or undefined when it is not JSON (the caller says what it expected). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface OutboundRequest {
  /** Names the target in messages and logs: `slack receiver "desk"`. */
  label: string;
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /**
   * Milliseconds to wait, read from a 429 answer's body when it has no usable Retry-After header
   * (Discord puts `retry_after` in the JSON body); undefined to fall back to the backoff.
   */
  retryAfterFromBody?: (body: string) => number | undefined;
  /**
   * A 429 whose wait is longer than the policy's longest (or comes on the last attempt) ends the
   * call with OutboundError.retryAfterMs instead of a shorter wait and another try: for a caller
   * that can hold everything to the service until then (the alert dispatcher). Without it the wait
   * is cut to maxBackoffMs and the call goes on (a switch does not give up on a rate limit).
   */
  handBackLongWaits?: boolean;
  /**
   * A 2xx status is the whole answer: its body is not waited for (the answer's `body` is empty).
   * For a caller that reads only the status (the traffic webhook): a receiver that accepted and
   * then streams, trickles or breaks off its body has answered, and must not be sent it again.
   */
  statusOnly?: boolean;
}

export interface OutboundResponse {
  status: number;
  attempts: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export class OutboundError extends GreenlightError {
  readonly attempts: number;
  readonly status: number | undefined;
  /** A 429's wait (Retry-After) that was longer than the policy waits itself: the caller's to honour. */
  readonly retryAfterMs: number | undefined;

  /**
   * Some request went out and got no answer (no answer in time, or the connection broke after it
   * was sent): the receiver may have acted on it. A refused connection or an unknown host is not that.
   */
  readonly unanswered: boolean;

  constructor(message: string, attempts: number, status: number | undefined, options?: { cause?: unknown; retryAfterMs?: number; unanswered?: boolean }) {
    super('GL_ERR_OUTBOUND', message, options);
    this.attempts = attempts;
    this.status = status;
    this.retryAfterMs = options?.retryAfterMs;
    this.unanswered = options?.unanswered === true;
  }
}

/**
 * Send `request`, retrying per `policy`. Resolves with the first 2xx answer; throws
 * OutboundError otherwise (a 3xx at once: a redirect is not followed, nor taken as delivered). What the server answers is redacted (`deps.redactor`) before it is put
 * in any message: a server may echo the request path (a webhook token), a header or the body (a
 * routing key) in its error page.
 */
export async function sendWithRetry(
  deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>,
  request: OutboundRequest,
  policy: RetryPolicy,
  signal: AbortSignal,
): Promise<OutboundResponse> {
  const url = new URL(request.url);
  const headers: Record<string, string> = { 'user-agent': 'greenlight', ...request.headers };
  // https://user:secret@host/hook: the credentials go as Basic auth (a request target cannot carry them).
  if ((url.username || url.password) && !Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) {
    headers.authorization = `Basic ${Buffer.from(`${safeDecode(url.username)}:${safeDecode(url.password)}`).toString('base64')}`;
  }
  let body: string | undefined;
  if (request.json !== undefined) {
    body = JSON.stringify(request.json);
    headers['content-type'] ??= 'application/json';
  }
  let lastProblem = 'not attempted';
  let lastStatus: number | undefined;
  let rateLimited = 0;
  /** Requests made: the tries, and the 429s that used up none. */
  let sent = 0;
  let unanswered = false;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    if (signal.aborted) throw new OutboundError(`${request.label}: cancelled after ${sent} attempts (${lastProblem})`, sent, lastStatus, { unanswered });
    let wait = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
    // A timer we hold, not AbortSignal.timeout: inside AbortSignal.any the latter can be garbage
    // collected before it fires (Node 20), and a hanging receiver would then hang for ever.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`no answer within ${policy.timeoutMs}ms`, 'TimeoutError')), policy.timeoutMs);
    const attemptSignal = AbortSignal.any([signal, deadline.signal]);
    sent++;
    try {
      const response = await deps.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method ?? 'POST',
        headers,
        body,
        signal: attemptSignal,
      });
      if (request.statusOnly && response.statusCode >= 200 && response.statusCode < 300) {
        discard(response.body);
        return { status: response.statusCode, attempts: sent, body: '', headers: response.headers };
      }
      const text = await readLimited(response.body, 64 * 1024);
      lastStatus = response.statusCode;
      if (response.statusCode < 300) return { status: response.statusCode, attempts: sent, body: text, headers: response.headers };
      if (response.statusCode < 400) {
        // A redirect delivered nothing (the request was not followed: it may carry a secret to
        // wherever the answer points), and the next try would be answered the same.
        throw new OutboundError(
          `${request.label}: answered HTTP ${response.statusCode}, a redirect${redirectTarget(response.headers.location, url)}: nothing was delivered, and greenlight does not follow redirects (the request may carry a secret): point the config at the new address`,
          sent,
          response.statusCode,
          { unanswered },
        );
      }
      lastProblem = `HTTP ${response.statusCode}${text ? `: ${oneLine(deps.redactor.text(text))}` : ''}`;
      if (response.statusCode === 429) {
        const retryAfter =
          parseRetryAfter(response.headers['retry-after'], Date.now()) ??
          parseRateLimitReset(response.headers['ratelimit-reset'], Date.now()) ??
          request.retryAfterFromBody?.(text);
        if (request.handBackLongWaits && retryAfter !== undefined && (retryAfter > policy.maxBackoffMs || attempt === policy.attempts))
          throw new OutboundError(`${request.label}: rate limited (${lastProblem}); the service asks to wait ${Math.ceil(retryAfter / 1_000)}s`, sent, 429, {
            retryAfterMs: retryAfter,
            unanswered,
          });
        // A rate limit that asks for no wait at all (`Retry-After: 0`, a date already past) still
        // gets the first backoff: ten free tries in a row would otherwise go out in one burst.
        if (retryAfter !== undefined) wait = Math.min(policy.maxBackoffMs, Math.max(policy.backoffMs, retryAfter));
        // A rate limit is waited out, not a failure of the service: it uses up no try (up to
        // MAX_RATE_LIMITED in one call), so three short 429s do not end a switch (regression).
        if (rateLimited < MAX_RATE_LIMITED && policy.maxBackoffMs > 0) {
          rateLimited++;
          attempt--;
        }
      } else if (response.statusCode < 500 && response.statusCode !== 408) {
        // An earlier try that got no answer may still have been acted on: this refusal says nothing of it.
        throw new OutboundError(`${request.label}: rejected with ${lastProblem}; not retried, fix the request or its credentials`, sent, lastStatus, {
          unanswered,
        });
      }
    } catch (error) {
      if (error instanceof OutboundError) throw error;
      lastProblem = signal.aborted ? 'cancelled' : attemptSignal.aborted ? `no answer within ${policy.timeoutMs}ms` : deps.redactor.text(describe(error));
      lastStatus = undefined;
      if (attemptSignal.aborted || !unreached(error)) unanswered = true;
    } finally {
      clearTimeout(timer);
    }
    if (attempt < policy.attempts) {
      deps.logger.warn(
        { target: request.label, attempt: sent, problem: lastProblem, retryInMs: Math.round(wait) },
        `${request.label}: attempt ${sent} failed (${lastProblem}); retrying`,
      );
      await deps.sleep(wait, signal);
    }
  }
  throw new OutboundError(`${request.label}: gave up after ${sent} attempts; last: ${lastProblem}`, sent, lastStatus, { unanswered });
}

/** Errors that say the request never reached the receiver: no connection was made. */
const UNREACHED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EMFILE',
  'ENFILE',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function unreached(error: unknown): boolean {
  for (
    let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    current = current.cause as typeof current, depth++
  )
    if (typeof current.code === 'string' && UNREACHED_CODES.has(current.code)) return true;
  return false;
}

/** Milliseconds to wait for a Retry-After header (seconds or an HTTP date), undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text.trim())) return Number(text) * 1_000;
  // Otherwise only an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT", or the obsolete RFC 850 and
  // asctime forms): Date.parse alone reads "-1" or "+5" as dates in 2001, a wait of nothing.
  if (!/^[A-Za-z]{3,9},? /.test(text.trim()) || !/\b\d{1,2}:\d{2}:\d{2}\b/.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Milliseconds until a `Ratelimit-Reset` header (Render and the IETF RateLimit draft send it
 * instead of Retry-After): seconds from now, or epoch seconds when it is that large.
 */
export function parseRateLimitReset(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text.trim())) return undefined;
  const seconds = Number(text);
  return seconds > 1e9 ? Math.max(0, seconds * 1_000 - now) : seconds * 1_000;
}

async function readLimited(
  body: AsyncIterable<Buffer> & { destroy(): void; on(event: 'error', listener: () => void): unknown },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.on('error', () => undefined);
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Drops an answer's body unread (its connection is closed rather than drained). */
function discard(body: { destroy(): void; on(event: 'error', listener: () => void): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Where a redirect points, by origin only (its path may hold a token, as a webhook's does): ` to https://host`. */
function redirectTarget(location: string | string[] | undefined, from: URL): string {
  const text = Array.isArray(location) ? location[0] : location;
  if (text === undefined) return '';
  try {
    const target = new URL(text, from);
    return target.origin === from.origin ? ` to another path on ${target.origin}` : ` to ${target.origin}`;
  } catch {
    return '';
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

function describe(error: unknown): string {
  const err = error as { code?: unknown; message?: string; cause?: { code?: unknown; message?: string } };
  const code = typeof err.cause?.code === 'string' ? err.cause.code : typeof err.code === 'string' ? err.code : undefined;
  const message = (err.cause?.message ?? err.message ?? String(error)).replace(/https?:\/\/\S+/g, '[url]');
  return code ? `${code}: ${message}` : message;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The client CLI commands use to talk to a running agent: JSON in and out, the token the call
 * needs taken from the environment, and every failure turned into one line that says what to do.
 * Tokens go into the Authorization header and nowhere else: no message, no error, no log.
 */
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { getGlobalDispatcher } from '../../../probes/undici-core.js';
import { GreenlightError, UsageError } from '../../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { AGENT_HEADER } from '../../http/http-server.js';

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:9464';
const DEFAULT_TIMEOUT_MS = 10_000;
/** More than any agent answer; a larger body is not an agent's. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * undici's `request(url, options)`: through its global dispatcher, which the top-level function
 * uses too (that function lives in undici's index, which the agent does not load:
 * probes/undici-core.ts).
 */
function request(url: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
  const { origin, pathname, search } = new URL(url);
  return getGlobalDispatcher().request({ ...options, origin, path: pathname + search });
}

/**
 * A call to the agent failed: unreachable, refused, or answered with an error. `status` is the
 * HTTP status when the agent answered.
 */
export class ApiError extends GreenlightError {
  readonly status: number | undefined;
  readonly body: unknown;

  constructor(message: string, status?: number, body?: unknown, options?: { cause?: unknown }) {
    super('GL_ERR_API', message, options);
    this.status = status;
    this.body = body;
  }
}

/** Which token a call sends: admin is ADMIN_TOKEN; rollback is ROLLBACK_TOKEN, else ADMIN_TOKEN. */
export type ApiAuth = 'none' | 'admin' | 'rollback';

export interface ApiClientOptions {
  /** `--url`; the default agent address when omitted. */
  url?: string | undefined;
  /** Where ADMIN_TOKEN and ROLLBACK_TOKEN are read. */
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * What a command reads from an answer, as a zod schema: every answer is checked against its
 * command's before the command sees it. Loose objects (z.looseObject) keep what the schema does
 * not name, so `--json` prints the answer whole. An answer of another shape (a proxy's or another
 * program's JSON that carries the agent's header, an agent of another version) is an ApiError,
 * never a success printed with `undefined` in it nor a crash.
 */
export type AnswerShape = z.ZodType;

export interface ApiClient {
  /** The agent's address as it may be printed (without credentials). */
  readonly displayUrl: string;
  /** Send `body` as JSON, resolve with the 2xx answer once it has the shape `answer`, or throw ApiError. */
  call<S extends AnswerShape>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    options: { auth?: ApiAuth; body?: unknown; answer: S },
  ): Promise<z.output<S>>;
  /**
   * POST `body` asking for NDJSON, and hand each line to `onLine` as it arrives (a promotion's
   * progress) once it has the shape `line`; resolves when the agent ends the answer. No deadline
   * between lines: the agent sends one at least every 10 s. Throws ApiError like `call`.
   */
  stream<S extends AnswerShape>(path: string, options: { auth?: ApiAuth; body?: unknown; line: S; onLine: (line: z.output<S>) => void }): Promise<void>;
}

/** Throws UsageError for a `--url` that is not an http(s) URL. */
export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = parseAgentUrl(options.url);
  const displayUrl = `${base.origin}${base.pathname.replace(/\/$/, '')}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return {
    displayUrl,
    async call<S extends AnswerShape>(
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      path: string,
      call: { auth?: ApiAuth; body?: unknown; answer: S },
    ): Promise<z.output<S>> {
      const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'greenlight-cli' };
      const auth = call.auth ?? 'none';
      if (auth !== 'none') headers.authorization = `Bearer ${tokenFor(auth, options.env)}`;
      let payload: string | undefined;
      if (call.body !== undefined) {
        payload = JSON.stringify(call.body);
        headers['content-type'] = 'application/json';
      }

      let response;
      try {
        response = await request(`${displayUrl}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        throw new ApiError(unreachable(error, displayUrl, timeoutMs), undefined, undefined, { cause: error });
      }
      notAnAgent(response, `${method} ${path}`, displayUrl);
      let text: string;
      try {
        text = await readLimited(response.body);
      } catch (error) {
        throw new ApiError(`agent at ${displayUrl} broke off its answer to ${method} ${path}: ${(error as Error).message}`, response.statusCode, undefined, {
          cause: error,
        });
      }
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (response.statusCode >= 200 && response.statusCode < 300) {
        if (parsed === undefined && text !== '')
          throw new ApiError(
            `agent at ${displayUrl} answered ${method} ${path} with something other than JSON: is --url a greenlight agent?`,
            response.statusCode,
            text,
          );
        return shaped(call.answer, parsed, response, `${method} ${path}`, displayUrl);
      }
      throw new ApiError(`HTTP ${response.statusCode}: ${errorText(parsed, text, response.statusCode, auth)}`, response.statusCode, parsed ?? text);
    },
    async stream(path, call): Promise<void> {
      const auth = call.auth ?? 'none';
      const headers: Record<string, string> = { accept: 'application/x-ndjson', 'user-agent': 'greenlight-cli', 'content-type': 'application/json' };
      if (auth !== 'none') headers.authorization = `Bearer ${tokenFor(auth, options.env)}`;
      let response;
      try {
        response = await request(`${displayUrl}${path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(call.body ?? {}),
          headersTimeout: timeoutMs,
          bodyTimeout: 0,
        });
      } catch (error) {
        throw new ApiError(unreachable(error, displayUrl, timeoutMs), undefined, undefined, { cause: error });
      }
      notAnAgent(response, `POST ${path}`, displayUrl);
      if (response.statusCode < 200 || response.statusCode >= 300) {
        const text = await readLimited(response.body).catch(() => '');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        throw new ApiError(`HTTP ${response.statusCode}: ${errorText(parsed, text, response.statusCode, auth)}`, response.statusCode, parsed ?? text);
      }
      let pending = '';
      try {
        for await (const chunk of response.body) {
          pending += String(chunk);
          for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (line !== '') call.onLine(shaped(call.line, JSON.parse(line), response, `POST ${path}`, displayUrl));
          }
        }
      } catch (error) {
        // A line of another shape says so itself; anything else broke the answer off.
        if (error instanceof ApiError) throw error;
        throw new ApiError(`agent at ${displayUrl} broke off its answer to POST ${path}: ${(error as Error).message}`, response.statusCode, undefined, {
          cause: error,
        });
      }
    },
  };
}

/**
 * The agent's address from `--url` (the default address without it), for every command that
 * talks to a running agent. Throws UsageError for one that is not an http(s) URL or carries
 * credentials; the message quotes the text without what may be a password or a token.
 */
export function parseAgentUrl(text: string = DEFAULT_AGENT_URL): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${quoteUrl(text)} is not a URL; give the agent's address such as ${DEFAULT_AGENT_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be an http:// or https:// address, not ${url.protocol}`);
  if (url.username || url.password) throw new UsageError('--url must not carry credentials: the CLI sends ADMIN_TOKEN or ROLLBACK_TOKEN from the environment');
  return url;
}

/**
 * A `--url` that is no URL, as a message may quote it: what stands between `://` and the last `@`
 * (a user name and password, `http://ops:pa/ss@host:99999`) and everything from a `?` or `#` on
 * (a token in the query) are left out. It is no URL, so nothing can tell where each part ends.
 */
function quoteUrl(text: string): string {
  return JSON.stringify(text.replace(/^([^:/?#]*:\/\/).*@/s, '$1[redacted]@').replace(/[?#].*$/s, '?[redacted]'));
}

function tokenFor(auth: Exclude<ApiAuth, 'none'>, env: NodeJS.ProcessEnv): string {
  const name = auth === 'admin' || !env.ROLLBACK_TOKEN ? 'ADMIN_TOKEN' : 'ROLLBACK_TOKEN';
  const token = env[name];
  if (!token) {
    const which = auth === 'admin' ? 'ADMIN_TOKEN' : 'ROLLBACK_TOKEN (or ADMIN_TOKEN)';
    throw new ApiError(`this needs ${which} in the environment: set it to the agent's token`);
  }
  return bearerToken(name, token);
}

/**
 * A token from the environment variable `name`, as an Authorization header can carry it (visible
 * ASCII). A control character or a letter beyond ASCII (a paste gone wrong) is a usage error
 * naming the variable, never the value, and never a crash in the HTTP client.
 */
export function bearerToken(name: string, token: string): string {
  if (!/^[\x21-\x7e]+$/.test(token))
    throw new UsageError(
      `${name} holds a character an HTTP header cannot carry (a space, a control character or one beyond ASCII): set it to the agent's token`,
    );
  return token;
}

function unreachable(error: unknown, url: string, timeoutMs: number): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  const name = (error as Error)?.name;
  if (code === 'ECONNREFUSED') return `agent at ${url} refused the connection: is greenlight running? (--url)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `agent at ${url}: the host name does not resolve (--url)`;
  if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT')
    return `agent at ${url} did not answer within ${timeoutMs / 1_000}s (--url)`;
  return `cannot reach the agent at ${url}: ${(error as Error)?.message ?? String(error)} (--url)`;
}

function errorText(parsed: unknown, text: string, status: number, auth: ApiAuth): string {
  const message =
    typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string'
      ? (parsed as { error: string }).error
      : text.trim().slice(0, 200) || 'no message';
  if (status === 401 && auth !== 'none') return `${message} (check ${auth === 'admin' ? 'ADMIN_TOKEN' : 'ROLLBACK_TOKEN'})`;
  return message;
}

async function readLimited(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A command's exit code from its body: what it returns; 2 with the usage for a UsageError; 1 with
 * the message for an ApiError (the agent refused, or could not be reached). Anything else is a
 * bug and propagates.
 */
export async function exitCode(command: string, usage: string, io: CommandIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`greenlight ${command}: ${error.message}\nusage: ${usage}`);
      return 2;
    }
    if (error instanceof ApiError) {
      io.err(`greenlight ${command}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

/**
 * `value` (a 2xx answer, or a line of one) checked against `shape`: the parsed value, or an
 * ApiError naming the first thing that differs and the version the answer claims. Nothing of the
 * answer's text is quoted beyond the schema's path: it is not an agent's.
 */
function shaped<S extends AnswerShape>(shape: S, value: unknown, response: Dispatcher.ResponseData, request: string, displayUrl: string): z.output<S> {
  const result = shape.safeParse(value);
  if (result.success) return result.data;
  const version = response.headers[AGENT_HEADER];
  throw new ApiError(
    `agent at ${displayUrl} answered ${request} with JSON that is not greenlight's answer (${firstIssue(result.error, 'the answer')}; it says it is version ${JSON.stringify(String(version).slice(0, 40))}): is --url a greenlight agent, of the same version as this CLI?`,
    response.statusCode,
    value,
  );
}

/** The first thing a value of another shape gets wrong, as `path: what` (`whole` when it is the value itself). */
export function firstIssue(error: z.ZodError, whole: string): string {
  const issue = error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? whole : issue.path.map(String).join('.');
  return `${where}: ${issue?.message ?? 'unexpected'}`;
}

/** What an answer without AGENT_HEADER is, and what to check: the CLI's calls and tail's stream say it alike. */
export const NOT_AN_AGENT = `not as a greenlight agent (no ${AGENT_HEADER} header): is --url the agent's address, and is the agent up behind any proxy?`;

/**
 * Throws ApiError for an answer without the header every agent sends (AGENT_HEADER): another
 * service, or a proxy's own page, whatever its status and body. Its body is left unread.
 */
function notAnAgent(response: Dispatcher.ResponseData, request: string, displayUrl: string): void {
  if (response.headers[AGENT_HEADER] !== undefined) return;
  response.body.resume();
  throw new ApiError(`${displayUrl} answered ${request} with HTTP ${response.statusCode} but ${NOT_AN_AGENT}`, response.statusCode);
}

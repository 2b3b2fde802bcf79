/**
 * The one HTTP listener. Routes are data: method, path, who may call it, the body schema, and
 * a handler returning a status and a JSON body. The server does the rest the same way for every
 * route: the Host check against DNS rebinding (421), bearer-token roles (compared in constant
 * time), size-limited JSON bodies validated with zod (400 naming the field), 404/405 naming what
 * exists, and never a secret in a message. Protocol upgrades (the WebSocket stream) pass the same
 * Host check before their handler sees them.
 */
import { isUtf8 } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { codeOfStatus, GreenlightError, type ErrorCode } from '../../config/errors.js';
import { formatKeyPath } from '../../config/load-config.js';
import type { Redactor } from '../../config/redactor.js';
import { parseHost } from '../../config/schema.js';
import { firstInvalidUtf8Byte } from '../../config/utf8.js';
import { VERSION } from '../package.js';
import { spacedWarning } from '../telemetry/logger.js';
import { ConnectionRoom, MAX_IN_FLIGHT, type RoomClosure } from './connection-room.js';
import { duplicateKeys, type DuplicateKey } from './duplicate-keys.js';
import type { TurnQueue } from './turn-queue.js';

/**
 * On every answer, with the agent's version: what tells greenlight's CLI it reached an agent, not
 * another service or a proxy's error page that happens to answer 2xx JSON (an emergency rollback
 * must never report a success it did not get).
 */
export const AGENT_HEADER = 'greenlight-version';

/**
 * admin: ADMIN_TOKEN only. rollback: the emergency path, ROLLBACK_TOKEN or ADMIN_TOKEN.
 * history: the event journal (GET /api/v1/events, the stream): open unless api.streamToken is set,
 * then that token or either of the other two.
 */
export type Auth = 'none' | 'admin' | 'rollback' | 'history';
export type Role = 'admin' | 'rollback' | 'reader';

export interface RouteRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  headers: IncomingHttpHeaders;
  /** The caller's role when the route needs one. */
  role: Role | null;
  /** Who did it, for audit trails: `api:admin`, `api:rollback`, `api`. */
  actor: string;
  /** The body's text as sent (routes with a `body`): what a follower forwards to its leader. */
  rawBody: string | undefined;
  /** The keys the body names twice in one object, with every value each was given (redacted). */
  duplicates: readonly DuplicateKey[];
}

export interface RouteResponse {
  status: number;
  /** Sent as JSON unless `text` is given. */
  body?: unknown;
  text?: string | Buffer;
  headers?: Record<string, string>;
  /** Written chunk by chunk as produced (NDJSON progress); the response ends when it does, or when the client leaves. */
  stream?: AsyncIterable<string>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Exact, or with `:name` segments: `/ofrep/v1/evaluate/flags/:key`. */
  path: string;
  auth: Auth;
  /** Validates the JSON body; without it a body is not read. */
  body?: z.ZodType;
  /**
   * The query parameters the route reads. With it, any other one, or one given twice, is a 400
   * naming it: a typo (`sinse=30d`) or a second value would otherwise pass silently as the default
   * or the first. Without it the query is not checked.
   */
  query?: readonly string[];
  /**
   * Looks at the body as sent before anything else judges it, and throws HttpError to refuse.
   * `duplicates` are the keys it names twice in one object, with every value each was given
   * (JSON.parse keeps only the last). The default is refuseDuplicates; a route's own screen
   * calls it after its checks. The flag routes refuse and audit an attempt on a locked flag
   * here, however the rest of the body is written.
   */
  screen?(body: unknown, duplicates: readonly DuplicateKey[], actor: string): void;
  /**
   * The handler's work grows with the agent (a render over every series): it runs as one slice
   * of the turn queue, so that a flood of such requests takes turns with probing instead of
   * holding the event loop for all of them at once.
   */
  bulk?: boolean;
  /**
   * Answered at once, never as a slice of the turn queue, token or not: a liveness or readiness
   * check (a kubelet gives it a second) must not wait behind a flood of other requests. Only for
   * handlers that cost next to nothing.
   */
  immediate?: boolean;
  /**
   * How this route words a refusal (a body that is not JSON, too large, with a key twice, not of
   * its schema; an HttpError): OFREP's routes answer in OFREP's own error shape. Default
   * `{"error", "code"}`.
   */
  errorBody?(status: number, error: string, params: Record<string, string>): unknown;
  handle(request: RouteRequest): RouteResponse | Promise<RouteResponse>;
}

/**
 * Thrown by a handler for an expected refusal: the status, the message and the code go to the
 * caller as `{"error": message, "code": code, ...details}`. The code defaults to the status's
 * generic one (config/errors.ts).
 */
export class HttpError extends GreenlightError {
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, message: string, details?: Record<string, unknown>, code: ErrorCode = codeOfStatus(status)) {
    super(code, message);
    this.status = status;
    this.details = details;
  }
}

export interface Tokens {
  admin?: string | undefined;
  rollback?: string | undefined;
  /** api.streamToken: when set, reading the event history needs it (or one of the others). */
  stream?: string | undefined;
}

/**
 * Takes a WebSocket upgrade that passed the Host check; `url` is its parsed request target.
 * `refuse` answers it with an HTTP error and closes the socket, the error redacted as every error
 * answer of the server is.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, refuse: UpgradeRefusal) => void;
export type UpgradeRefusal = (status: number, error: string, headers?: Record<string, string>) => void;

export interface HttpServer {
  readonly address: { host: string; port: number };
  /** The underlying server. */
  readonly server: import('node:http').Server;
  /** Hand protocol upgrades (after the Host check) to `handler`; without one they are refused with 404. */
  onUpgrade(handler: UpgradeHandler): void;
  close(): Promise<void>;
}

/**
 * The most bytes of answers the API holds for clients that have not read them before it declines
 * to render another large one (`bulk` routes: /metrics, the state, the overview) with a 503. A
 * client that asks for /metrics and never reads leaves the whole answer in the agent's memory (a
 * few MB at thousands of series), and a thousand connections may do so at once.
 */
export const MAX_UNREAD_BYTES = 64 * 1024 * 1024;

/**
 * The most bytes of anonymous request bodies (OFREP's) the API holds at once, read or being read
 * and not yet answered, each reckoned at MAX_BODY_BYTES (so 256 at once). A request past it waits,
 * its body unread (left to the socket and the kernel), until an earlier one is answered: the
 * sender can only send as fast as the agent answers. A thousand connections each sending 64 KB
 * bodies, pipelined, would otherwise queue a gigabyte; answered with a 503 at once, the refusals
 * alone kept the loop busy.
 */
export const MAX_HELD_BODY_BYTES = 16 * 1024 * 1024;

/** Connections the API keeps open at once (stream clients, scrapes, the CLI): far more than any deployment uses. */
export const MAX_CONNECTIONS = 1_000;

/** The least time between two warnings of connections closed for room (MAX_CONNECTIONS). */
const DROP_WARN_MS = 10_000;

const MAX_BODY_BYTES = 64 * 1024;
/**
 * A body over the limit is still read, and dropped, up to this much, so that the 413 reaches a
 * client that is still sending (a keep-alive connection stays usable); a larger one is cut off.
 */
const MAX_DRAIN_BYTES = 16 * MAX_BODY_BYTES;

/**
 * What is wrong with a query that names a parameter outside `known`, or one twice (Route.query,
 * and the stream's upgrade, which is judged alike); undefined when nothing is.
 */
export function queryProblem(known: readonly string[], url: URL): string | undefined {
  const shown = (text: string) => JSON.stringify(text.slice(0, 40));
  for (const name of new Set(url.searchParams.keys())) {
    if (!known.includes(name)) return `${url.pathname} takes no query parameter ${shown(name)}; it takes ${known.join(', ')}`;
    const values = url.searchParams.getAll(name);
    if (values.length > 1) return `${name} is given ${values.length} times (${values.slice(0, 3).map(shown).join(', then ')}): give it once`;
  }
  return undefined;
}

/**
 * `redactor` hides secrets in request bodies as they come in: a reason or comment that quotes a
 * token is stored, echoed and audited without it. It also hides them in every error answer, which
 * may quote a path or a query value (`type "…" is not an event type`).
 */
export async function startHttpServer(options: {
  listen: { host: string; port: number };
  routes: readonly Route[];
  tokens: () => Tokens;
  /** api.allowedHosts, read at each request (a reload applies at once). */
  allowedHosts?: () => readonly string[];
  /** Where `bulk` routes and requests without a token (but `immediate` ones) take their turns; without it they run at once. */
  turns?: TurnQueue;
  logger: Logger;
  redactor?: Redactor;
  /** Connections kept open at once; MAX_CONNECTIONS unless a test asks for fewer. */
  maxConnections?: number;
  /** MAX_UNREAD_BYTES unless a test asks for less. */
  maxUnreadBytes?: number;
  /** MAX_HELD_BODY_BYTES unless a test asks for less. */
  maxHeldBodyBytes?: number;
  /** How long a new connection has to send its request before it may make room (connection-room.ts); GRACE_MS unless a test asks for less. */
  graceMs?: number;
}): Promise<HttpServer> {
  const { logger } = options;
  const table = options.routes.map((route) => ({ route, pattern: compilePath(route.path) }));
  /** Set once listening: whether the listener is on a loopback address (see checkHost). */
  let hostPolicy: { loopback: boolean; listen: string } | undefined;
  const hostRefusal = (req: IncomingMessage) =>
    hostPolicy ? checkHost(req.headers.host, { ...hostPolicy, allowed: options.allowedHosts?.() ?? [] }) : undefined;
  let upgrade: UpgradeHandler | undefined;
  /** Bytes of answers handed to their connections that the OS has not taken yet: their clients have not read them (MAX_UNREAD_BYTES). */
  let unread = 0;
  const maxUnread = options.maxUnreadBytes ?? MAX_UNREAD_BYTES;
  /** Anonymous request bodies held (MAX_HELD_BODY_BYTES), and the requests waiting to read theirs, first come first served. */
  const held = { bytes: 0, max: options.maxHeldBodyBytes ?? MAX_HELD_BODY_BYTES, waiting: [] as (() => void)[] };
  const holdBody = async (): Promise<void> => {
    while (held.bytes + MAX_BODY_BYTES > held.max) await new Promise<void>((resolve) => held.waiting.push(resolve));
    held.bytes += MAX_BODY_BYTES;
  };
  const releaseBody = (): void => {
    held.bytes -= MAX_BODY_BYTES;
    held.waiting.shift()?.();
  };
  const reply = (res: ServerResponse, response: RouteResponse, headOnly = false) => {
    const bytes = send(
      res,
      response.status >= 400 && response.body !== undefined && options.redactor ? { ...response, body: options.redactor.value(response.body) } : response,
      headOnly,
    );
    // A response closes once its last byte is with the OS, or its connection is gone; one whose
    // client left before it was ready closed already, and holds nothing (counted, it never uncounted).
    if (res.closed || bytes === 0) return;
    unread += bytes;
    res.once('close', () => (unread -= bytes));
  };
  const refusal =
    (socket: Duplex): UpgradeRefusal =>
    (status, error, headers) =>
      refuseUpgrade(socket, status, options.redactor ? options.redactor.text(error) : error, headers);

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000 }, (req, res) => {
    // First, before any answer is made: a connection asking too much at once is closed unanswered.
    if (!room.started(req.socket)) return;
    res.once('close', () => room.ended(req.socket));
    res.setHeader(AGENT_HEADER, VERSION);
    const refused = hostRefusal(req);
    if (refused) {
      req.resume();
      reply(res, { status: refused.status, body: { error: refused.error } });
      return;
    }
    const url = requestUrl(req);
    if (!url) {
      req.resume();
      reply(res, { status: 400, body: { error: 'the request target is not a valid path; send /path?query' } });
      return;
    }
    handle(req, res, url).catch((error: unknown) => {
      logger.error({ err: error, method: req.method, path: url.pathname }, 'request handler failed');
      if (!res.headersSent) reply(res, { status: 500, body: { error: 'internal error; see the agent log' } });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const matches = table.map(({ route, pattern }) => ({ route, params: pattern(url.pathname) })).filter((m) => m.params !== undefined);
    if (matches.length === 0) {
      reply(res, {
        status: 404,
        body: { error: `no route ${req.method} ${url.pathname}; routes: ${options.routes.map((r) => `${r.method} ${r.path}`).join(', ')}` },
      });
      return;
    }
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const match = matches.find((m) => m.route.method === method);
    if (!match) {
      const allowed = [...new Set(matches.map((m) => m.route.method))].join(', ');
      reply(res, { status: 405, headers: { allow: allowed }, body: { error: `${url.pathname} answers ${allowed}, not ${req.method}` } });
      return;
    }
    const { route } = match;
    let role: Role | null = null;
    if (route.auth !== 'none') {
      const decision = authorize(req.headers.authorization, route.auth, options.tokens());
      if ('status' in decision) {
        reply(res, { status: decision.status, headers: decision.status === 401 ? { 'www-authenticate': 'Bearer' } : {}, body: { error: decision.error } });
        return;
      }
      role = decision.role;
    }
    const actor = role ? `api:${role}` : 'api';
    const turns = options.turns;
    // Work that grows with the agent (a bulk route), and every request anyone may send (no token:
    // anyone may send them as often as the agent answers), is done as a slice of the turn queue, at
    // most a quarter of the time: a flood of them waits its turn rather than starving the probes.
    const queued = turns !== undefined && route.immediate !== true && (route.bulk === true || role === null);
    // An anonymous body is held (MAX_HELD_BODY_BYTES) from before it is read until it is answered.
    const holding = queued && role === null && route.body !== undefined;
    let holds = false;
    try {
      let bytes: Buffer | undefined;
      if (route.body) {
        // Until the body has arrived the request is not whole: a slow sender's connection, or one
        // waiting for room to send its body, may make room for another connection.
        room.receiving(req.socket);
        let read: Awaited<ReturnType<typeof readBody>>;
        try {
          if (holding) {
            await holdBody();
            holds = true;
          }
          read = await readBody(req);
        } finally {
          room.received(req.socket);
        }
        if ('error' in read) {
          reply(res, { status: read.status, body: route.errorBody?.(read.status, read.error, match.params!) ?? { error: read.error } });
          return;
        }
        bytes = read.bytes;
      }
      const problem = route.query && queryProblem(route.query, url);
      if (problem) throw new HttpError(400, problem);
      if (route.bulk && unread > maxUnread)
        throw new HttpError(
          503,
          `the agent holds ${(unread / 1e6).toFixed(1)} MB of answers its clients have not read yet (at most ${(maxUnread / 1e6).toFixed(0)} MB before it renders another large one): try again shortly`,
        );
      // The body judged (JSON, secrets, duplicate keys, schema) and the route's answer.
      const answer = (): RouteResponse | Promise<RouteResponse> => {
        let body: unknown;
        let rawBody: string | undefined;
        let duplicates: readonly DuplicateKey[] = [];
        if (route.body && bytes) {
          const read = parseJsonBody(bytes, req.headers['content-type']);
          if ('error' in read) return { status: read.status, body: route.errorBody?.(read.status, read.error, match.params!) ?? { error: read.error } };
          // Secrets sent in a body (a token pasted into a reason) never reach an audit trail or an answer.
          const redact = (value: unknown) => (options.redactor ? options.redactor.value(value) : value);
          const value = redact(read.value);
          rawBody = read.text;
          duplicates = duplicateKeys(read.text).map((twice) => ({ ...twice, values: twice.values.map(redact) }));
          screenBody(route, value, duplicates, actor);
          const parsed = route.body.safeParse(value);
          if (!parsed.success) {
            const error = invalidBody(parsed.error);
            return { status: 400, body: route.errorBody?.(400, error, match.params!) ?? { error } };
          }
          body = parsed.data;
        }
        const request: RouteRequest = { params: match.params!, query: url.searchParams, body, headers: req.headers, role, actor, rawBody, duplicates };
        return route.handle(request);
      };
      const response = queued ? await turns.run(answer) : await answer();
      if (response === undefined) throw new HttpError(503, 'greenlight is stopping');
      if (response.stream) await sendStream(res, response);
      else reply(res, response, req.method === 'HEAD');
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      reply(res, {
        status: error.status,
        body: route.errorBody?.(error.status, error.message, match.params!) ?? { error: error.message, code: error.code, ...error.details },
      });
    } finally {
      if (holds) releaseBody();
    }
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    room.upgraded(socket as Socket);
    const refused = hostRefusal(req);
    const refuse = refusal(socket);
    if (refused) return refuse(refused.status, refused.error);
    const url = requestUrl(req);
    if (!url) return refuse(400, 'the request target is not a valid path; use /api/v1/stream');
    if (!upgrade) return refuse(404, `no WebSocket endpoint ${url.pathname}`);
    upgrade(req, socket, head, url, refuse);
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  // A flood of connections (half-open, never a request) must not take the file descriptors the
  // probes need, nor keep operators out: connection-room.ts.
  const limit = options.maxConnections ?? MAX_CONNECTIONS;
  // Evicted and refused connections share a line; the one counts both, the other says which.
  let evicted = 0;
  const closed = spacedWarning(logger, DROP_WARN_MS, (count, latest: RoomClosure) => {
    const refused = count - evicted;
    const line = {
      fields: { evicted, refused, from: latest.from, limit },
      message:
        `${count} connection(s) to the API closed: ${limit} are open already. ` +
        `${evicted} idle one(s) made room for new ones, ${refused} new one(s) were refused because every open one was in use or had just opened ` +
        '(the probes keep their sockets; look for a client that opens connections and never uses them)',
    };
    evicted = 0;
    return line;
  });
  const pipelined = spacedWarning(logger, DROP_WARN_MS, (count, latest: RoomClosure) => ({
    fields: { closed: count, from: latest.from, limit: MAX_IN_FLIGHT },
    message: `${count} connection(s) to the API closed for sending more than ${MAX_IN_FLIGHT} requests at once without reading the answers (HTTP pipelining): their answers would have waited in memory`,
  }));
  const room = new ConnectionRoom(
    limit,
    (closure) => {
      if (closure.why === 'pipelined') return pipelined(closure);
      if (closure.why === 'evicted') evicted++;
      closed(closure);
    },
    options.graceMs,
  );
  server.on('connection', (socket: Socket) => room.admit(socket));
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${options.listen.host}:${options.listen.port}`;
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`cannot listen on ${where}: the port is already in use; stop the other process or set GREENLIGHT_LISTEN`, { cause: error })
          : new Error(`cannot listen on ${where}: ${error.message}`, { cause: error }),
      );
    };
    server.once('error', onError);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const info = server.address() as AddressInfo;
  hostPolicy = { loopback: isLoopback(info.address), listen: info.address };
  logger.info({ host: info.address, port: info.port }, `listening on ${info.address}:${info.port}`);

  return {
    address: { host: info.address, port: info.port },
    server,
    onUpgrade: (handler) => {
      upgrade = handler;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Scrapers and stream clients keep connections open; do not wait for them to leave.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1_000).unref();
      }),
  };
}

/** Problems an invalid-body answer lists, and how long each may be: a key may be 60 KB long. */
const PROBLEMS_SHOWN = 5;
const PROBLEM_LENGTH = 200;

/** Run `route`'s screen on a body, or the default screen, refuseDuplicates. */
export function screenBody(route: Route, body: unknown, duplicates: readonly DuplicateKey[], actor: string): void {
  if (route.screen) route.screen(body, duplicates, actor);
  else refuseDuplicates(duplicates);
}

/** The default screen (Route.screen): a body that names a key twice in one object is refused, naming it. */
export function refuseDuplicates(duplicates: readonly DuplicateKey[]): void {
  const twice = duplicates[0];
  if (twice === undefined) return;
  const where = formatKeyPath([...twice.path, twice.key]);
  const shown = where.length > 100 ? `${where.slice(0, 100)}…` : where;
  throw new HttpError(400, `the body names ${shown} twice in one object, and JSON keeps only the last: send each key once`);
}

/** `invalid body: reason: …; set: …` for a zod error: the first problems, each cut short, never an echo of a huge key or value. */
export function invalidBody(error: z.ZodError): string {
  const cut = (text: string) => (text.length > PROBLEM_LENGTH ? `${text.slice(0, PROBLEM_LENGTH - 3)}...` : text);
  const problems = error.issues.map((issue) => cut(`${issue.path.length ? `${formatKeyPath(issue.path as (string | number)[])}: ` : ''}${issue.message}`));
  const more = problems.length > PROBLEMS_SHOWN ? `; and ${problems.length - PROBLEMS_SHOWN} more` : '';
  return `invalid body: ${problems.slice(0, PROBLEMS_SHOWN).join('; ')}${more}`;
}

/**
 * Decide a caller's role from `Authorization: Bearer <token>`. Tokens are compared as SHA-256
 * digests with timingSafeEqual, so neither their content nor their length leaks through timing.
 * `role: null` is an open route: the history while no api.streamToken is set.
 */
export function authorize(
  header: string | undefined,
  needed: Exclude<Auth, 'none'>,
  tokens: Tokens,
): { role: Role | null } | { status: 401 | 403; error: string } {
  if (needed === 'history') {
    if (tokens.stream === undefined) return { role: null };
    const given = bearer(header);
    if (given === undefined) return { status: 401, error: 'the event history needs a token (api.streamToken is set): send Authorization: Bearer <token>' };
    if (tokens.admin !== undefined && sameSecret(given, tokens.admin)) return { role: 'admin' };
    if (tokens.rollback !== undefined && sameSecret(given, tokens.rollback)) return { role: 'rollback' };
    if (sameSecret(given, tokens.stream)) return { role: 'reader' };
    return { status: 401, error: 'invalid token' };
  }
  const configured = needed === 'admin' ? tokens.admin : (tokens.rollback ?? tokens.admin);
  if (configured === undefined && tokens.admin === undefined) {
    return { status: 401, error: `this endpoint is disabled: the agent has no ${needed === 'admin' ? 'ADMIN_TOKEN' : 'ROLLBACK_TOKEN or ADMIN_TOKEN'} set` };
  }
  const given = bearer(header);
  if (given === undefined) return { status: 401, error: 'missing credentials: send Authorization: Bearer <token>' };
  if (tokens.admin !== undefined && sameSecret(given, tokens.admin)) return { role: 'admin' };
  if (tokens.rollback !== undefined && sameSecret(given, tokens.rollback)) {
    return needed === 'rollback' ? { role: 'rollback' } : { status: 403, error: 'the rollback token may only roll back; this needs the admin token' };
  }
  return { status: 401, error: 'invalid token' };
}

function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * A request's body, read whole before any refusal: a client still uploading when the answer comes
 * (undici's fetch) may otherwise never see it on a keep-alive connection. Over MAX_BODY_BYTES it
 * is read on and dropped (up to MAX_DRAIN_BYTES) for the 413 to reach the client.
 */
async function readBody(req: IncomingMessage): Promise<{ bytes: Buffer } | { status: 400 | 413; error: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Leaving the loop destroys the request and its connection: only done past MAX_DRAIN_BYTES.
      if (size > MAX_DRAIN_BYTES) break;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    }
  } catch {
    return { status: 400, error: 'the request body was cut off before its end' };
  }
  if (size > MAX_BODY_BYTES) return { status: 413, error: `body larger than ${MAX_BODY_BYTES} bytes` };
  return { bytes: Buffer.concat(chunks) };
}

/**
 * A body as JSON, whatever Content-Type it came with: `curl -d '{"reason":"x"}'` says
 * application/x-www-form-urlencoded, and a 415 for it was no help to anyone. Refusing other types
 * would guard nothing either: every route that changes anything needs a bearer token, which no
 * cross-site form can send. A body that is not JSON is a 400 that names the type it came as.
 */
function parseJsonBody(bytes: Buffer, contentType: string | undefined): { value: unknown; text: string } | { status: 400; error: string } {
  // JSON is UTF-8 (RFC 8259 §8.1). Decoding leniently would turn a bad byte into U+FFFD and store
  // that in a reason or an audit entry, which is not what the client meant to send.
  if (!isUtf8(bytes)) return { status: 400, error: `the body is not valid UTF-8 (at byte offset ${firstInvalidUtf8Byte(bytes)}): send JSON encoded as UTF-8` };
  const text = bytes.toString('utf8');
  if (text.trim() === '') return { value: {}, text: '{}' };
  try {
    return { value: JSON.parse(text), text };
  } catch (error) {
    const sentAs =
      contentType === undefined || /^application\/(.+\+)?json\b/i.test(contentType)
        ? ''
        : ` (it came as ${contentType.slice(0, 100)}: send JSON, as application/json)`;
    return { status: 400, error: `body is not JSON${sentAs}: ${(error as Error).message}` };
  }
}

/**
 * The request's path and query. Node passes the request target through as sent, and an
 * absolute-form or `//host` target can be no valid URL at all (`//[`): that must be a 400,
 * never an exception thrown in the request listener, which would end the process.
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  // `//api/v1/state` would parse as the host `api` and the path /v1/state: a path starts with one slash.
  if (!target.startsWith('/') || target.startsWith('//')) return undefined;
  try {
    const url = new URL(target, 'http://localhost');
    // A malformed escape (%ZZ, a cut-off UTF-8 sequence) is a bad request, not a path no route has.
    decodeURIComponent(url.pathname);
    return url;
  } catch {
    return undefined;
  }
}

/**
 * DNS rebinding guard. A web page can point a name it controls at 127.0.0.1 (or at an address
 * inside the network) and then read greenlight as a same-origin site; what gives it away is the
 * Host header, which carries the page's name. So:
 *
 * - A Host that is an IP address (v4 or [v6]), or `localhost`, is always answered: no DNS is
 *   involved, so no page can have rebound it (Prometheus scraping a pod IP, a health check).
 * - Any other name is answered when it is in `allowed` (api.allowedHosts: `name` for any port,
 *   `name:port` for one).
 * - Otherwise: listening on a loopback address, refused — nothing but this machine can reach the
 *   agent, so only a rebound name can carry anything else; listening elsewhere, refused only when
 *   the list is set (opt-in: behind a proxy or in a cluster, the names are the operator's).
 *
 * No Host at all (an HTTP/1.0 client) is answered: browsers always send one. Any port is taken
 * with a loopback name, so that an SSH tunnel (`ssh -L 8000:127.0.0.1:9464`) still works.
 */
export function checkHost(
  header: string | undefined,
  policy: { loopback: boolean; listen: string; allowed: readonly string[] },
): { status: 400 | 421; error: string } | undefined {
  if (header === undefined || header === '') return undefined;
  const host = parseHost(header);
  if (!host) return { status: 400, error: `the Host header ${JSON.stringify(header.slice(0, 100))} is not a host name or address` };
  if (host.name === 'localhost' || isIP(host.name.replace(/^\[|\]$/g, '')) !== 0) return undefined;
  if (policy.allowed.some((entry) => entry === host.name || entry === `${host.name}:${host.port}`)) return undefined;
  if (!policy.loopback && policy.allowed.length === 0) return undefined;
  const where = policy.loopback
    ? `it listens on ${policy.listen}, a loopback address, so it answers only to localhost and IP addresses`
    : 'it answers only to IP addresses, localhost and the names in api.allowedHosts';
  return {
    status: 421,
    error: `this agent does not answer to the name ${JSON.stringify(host.name)} (a guard against DNS rebinding): ${where}. To reach it by this name, add ${JSON.stringify(host.name)} to api.allowedHosts in the config`,
  };
}

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x: the addresses only this machine can reach. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || (isIP(v4) === 4 && v4.startsWith('127.'));
}

/** Answer a protocol upgrade with an HTTP error, as the agent's (AGENT_HEADER), and close the socket (nothing else is read from it). */
export function refuseUpgrade(socket: Duplex, status: number, error: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error, code: codeOfStatus(status) });
  // Closed once the answer is out, whatever the client does: the server's sockets are half-open
  // (allowHalfOpen), so end() alone left every refused upgrade open until its client closed it,
  // counted as a stream that no newcomer may replace (found from outside: 968 upgrades refused
  // with 429 and never closed by their client kept every operator out).
  socket.once('finish', () => socket.destroy());
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${AGENT_HEADER}: ${VERSION}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

function compilePath(path: string): (pathname: string) => Record<string, string> | undefined {
  const parts = path.split('/');
  return (pathname) => {
    const given = pathname.split('/');
    if (given.length !== parts.length) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part.startsWith(':')) {
        if (given[i] === '') return undefined;
        try {
          params[part.slice(1)] = decodeURIComponent(given[i]!);
        } catch {
          return undefined;
        }
      } else if (part !== given[i]) return undefined;
    }
    return params;
  };
}

/** Answer `res` whole; returns the bytes of its body written. */
function send(res: ServerResponse, response: RouteResponse, headOnly = false): number {
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...response.headers };
  let payload: string | Buffer = '';
  if (response.text !== undefined) payload = response.text;
  else if (response.body !== undefined) {
    payload = JSON.stringify(withCode(response.status, response.body));
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  res.writeHead(response.status, headers).end(headOnly ? undefined : payload);
  return headOnly ? 0 : typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
}

async function sendStream(res: ServerResponse, response: RouteResponse): Promise<void> {
  res.writeHead(response.status, { 'cache-control': 'no-store', 'x-accel-buffering': 'no', ...response.headers });
  const iterator = response.stream![Symbol.asyncIterator]();
  let gone = false;
  res.once('close', () => {
    gone = true;
    // Ends the producer's wait too: a generator's return() runs its finally (unsubscribes).
    void iterator.return?.();
  });
  try {
    for (let next = await iterator.next(); !next.done && !gone; next = await iterator.next()) {
      // A client that does not read is not written ahead of: what it has not taken stays with the producer.
      if (!res.write(next.value) && !gone) await drained(res);
    }
  } finally {
    if (!gone) res.end();
  }
}

/** Resolves once `res` can take more (drain) or is gone (close). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** Every error answer (status 400 and up, a body with `error`) carries a stable code: its own, or the status's generic one. */
function withCode(status: number, body: unknown): unknown {
  if (status < 400 || body === null || typeof body !== 'object' || Array.isArray(body) || !('error' in body) || 'code' in body) return body;
  return { ...body, code: codeOfStatus(status) };
}

/**
 * One HTTP probe: send the request through the shared dispatcher, read at most maxBodyBytes of
 * the answer within the timeout, and evaluate the expectations. Always resolves to a
 * ProbeResult; the only thing it throws for is a bug.
 */
import type { Dispatcher } from 'undici';
import type { Redactor } from '../config/redactor.js';
import type { Config, ProbeConfig } from '../config/schema.js';
import { compileHeaderChecks, compileJsonChecks, compileLatencyCheck, compileStatusCheck, asNumber, type BodyCheck, type HeaderCheck } from './checks.js';
import type { PathSegment } from '../config/json-path.js';
import { JsonSelector } from './json-select.js';
import { flatString } from '../config/flat-string.js';
import type { CheckResult, ProbeResult, ReasonCode } from './probe-result.js';
import type { Cancellable, ProbeCanceller } from './probe-canceller.js';
import { probeTls, tlsHostOf, type TlsFacts } from './tls.js';
import { ANSWER_TOO_LARGE, AnswerTooLargeError } from './answer-budget.js';

const USER_AGENT = 'greenlight/0.1 (+blue/green guard)';

/** Everything needed to run one probe against one environment, resolved once from the config. */
export interface ProbeTarget {
  readonly probe: string;
  readonly env: string;
  readonly origin: string;
  /** For an https origin, its `host:port` key (the TLS observer's facts); undefined for http. */
  readonly tlsHost: string | undefined;
  readonly path: string;
  readonly method: Dispatcher.HttpMethod;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly checkLatency: ((durationMs: number) => CheckResult) | undefined;
  readonly checkStatus: (status: number) => CheckResult;
  /** What the answer's JSON is read for; undefined when no check or extraction reads it (then it is never parsed). */
  readonly json: JsonReading | undefined;
  readonly headerChecks: readonly HeaderCheck[];
  /** The most check outcomes an answer to this target can produce (what a result's checks array is sized for). */
  readonly checkSlots: number;
  /** Hides the config's secrets in everything the target answers that a result quotes. */
  readonly redactor: Redactor;
}

/** The paths a probe's JSON checks and extractions read, compiled into one selector; each names its path by index. */
export interface JsonReading {
  readonly selector: JsonSelector;
  readonly checks: readonly { readonly path: number; readonly check: BodyCheck }[];
  readonly extract: readonly { readonly name: string; readonly path: number }[];
}

/**
 * Resolves a config's probes against its environments into targets. The JSON selectors it builds
 * are shared among the targets it compiles that read the same paths: a selector per target held
 * 1,180 B, 1.2 MB at 1,000 series (issue 18), and the generated probes of a fleet mostly read
 * the same few paths. `redactor` (the agent's, built from the config: Redactor.of(config)) hides
 * secrets in what a result quotes of the answer.
 */
export class ProbeCompiler {
  readonly #selectors = new Map<string, JsonSelector>();

  constructor(
    readonly config: Config,
    readonly redactor: Redactor,
  ) {}

  /** `probe` against the environment `env` (one of the config's). */
  target(probe: ProbeConfig, env: string): ProbeTarget {
    const config = this.config;
    const environment = config.environments[env];
    if (!environment) throw new Error(`bug: probe ${probe.name} compiled for unknown environment ${env}`);
    const base = new URL(environment.url);
    const origin = flatString(base.origin);
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...lowerKeys(environment.headers), ...lowerKeys(probe.headers) };
    if (base.username && headers.authorization === undefined) {
      // Credentials in the URL become a header: the origin (what errors and logs may show) never carries them.
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
    }
    const json = this.#jsonReading(probe);
    const headerChecks = probe.expect.headers.flatMap((assertion) => compileHeaderChecks(assertion, this.redactor));
    let body: string | undefined;
    if (typeof probe.body === 'string') body = probe.body;
    else if (probe.body !== undefined) {
      body = JSON.stringify(probe.body);
      headers['content-type'] ??= 'application/json';
    }
    return {
      probe: probe.name,
      env,
      origin,
      tlsHost: tlsHostOf(origin),
      path: flatString(base.pathname.replace(/\/+$/, '') + probe.path),
      method: probe.method,
      headers,
      body,
      timeoutMs: probe.timeout ?? config.probeDefaults.timeout,
      maxBodyBytes: probe.maxBodyBytes ?? config.probeDefaults.maxBodyBytes,
      checkLatency: probe.expect.maxLatency === undefined ? undefined : compileLatencyCheck(probe.expect.maxLatency),
      checkStatus: compileStatusCheck(probe.expect.status),
      json,
      headerChecks,
      // Status, latency, headers, then the JSON checks or the one outcome that the body is too large or not JSON.
      checkSlots: 1 + (probe.expect.maxLatency === undefined ? 0 : 1) + headerChecks.length + Math.max(1, json?.checks.length ?? 0),
      redactor: this.redactor,
    };
  }

  /** A target for each probe of the config that runs against `env`, in the config's order. */
  targetsOn(env: string): ProbeTarget[] {
    return this.config.probes.filter((probe) => probeEnvironments(this.config, probe).includes(env)).map((probe) => this.target(probe, env));
  }

  /** The checks are the target's own (each remembers its latest outcome); the selector is shared. */
  #jsonReading(probe: ProbeConfig): JsonReading | undefined {
    const paths: PathSegment[][] = [];
    const checks = probe.expect.json.flatMap((assertion) => {
      const path = paths.push(assertion.path.segments) - 1;
      return compileJsonChecks(assertion, this.redactor).map((check) => ({ path, check }));
    });
    const extract = Object.entries(probe.extract).map(([name, extraction]) => ({ name, path: paths.push(extraction.path.segments) - 1 }));
    if (paths.length === 0) return undefined;
    const key = JSON.stringify(paths);
    let selector = this.#selectors.get(key);
    if (selector === undefined) this.#selectors.set(key, (selector = new JsonSelector(paths)));
    return { selector, checks, extract };
  }
}

/** The environments a probe runs against: its own list, or all of them. */
export function probeEnvironments(config: Config, probe: ProbeConfig): string[] {
  return probe.environments ? [...probe.environments] : Object.keys(config.environments);
}

/** Where a probe finds the TLS facts of its target: the TlsObserver the dispatcher connects through. */
export interface TlsFactSource {
  facts(host: string): TlsFacts | undefined;
}

/**
 * Run one probe. `now` is the clock for startedAt; durations use the monotonic clock.
 * `canceller`, its owner's, ends it early at shutdown (it then resolves as a timeout).
 * `tls`, the observer `dispatcher` connects through, puts an https target's certificate facts on
 * the result.
 *
 * The request goes through undici's dispatch API with a handler of our own (ProbeCall), not
 * `request()`: the body is at most maxBodyBytes and is read whole, so the stream, async iterator
 * and promises `request()` builds around each answer are work without use (issue 18 measured
 * them, with the abort listener per probe, as a large part of the cost above the bare request).
 */
export function runProbe(
  target: ProbeTarget,
  dispatcher: Dispatcher,
  now: () => number,
  canceller?: ProbeCanceller,
  tls?: TlsFactSource,
): Promise<ProbeResult> {
  return new Promise((resolve) => new ProbeCall(target, now, tls, resolve).start(dispatcher, canceller));
}

type BodyRead =
  | { kind: 'ok'; bytes: Buffer }
  | { kind: 'too_large'; seen: number }
  | { kind: 'too_many_pieces'; seen: number; pieces: number }
  | { kind: 'over_budget'; error: AnswerTooLargeError };

/**
 * The most pieces (chunks as undici hands them over) an answer is read in. An answer flushed a byte
 * at a time (a buggy streaming server, a proxy) reached the 1 MiB limit only after a million
 * callbacks, seconds of the agent's CPU per probe, and slowed every other series meanwhile. A health
 * answer of any size comes in far fewer: 1 MiB in 16 KiB reads is 64.
 */
export const MAX_BODY_PIECES = 16_384;

/**
 * The most interim (1xx) answers read before the final one: an app sends a 103 Early Hints or a
 * 102 Processing now and then, never hundreds.
 */
export const MAX_INTERIM_ANSWERS = 32;

const EMPTY = Buffer.alloc(0);

/** Why a probe was cut short from our side; its result says so. */
type Cut = 'timeout' | 'shutdown';

/**
 * One probe in flight: undici calls it back as the answer arrives, and it settles exactly once,
 * on the first of: the end of the answer, a transport error, its deadline, shutdown, or a body
 * over the limit. Whatever undici reports after that is ignored; a request still queued for a
 * connection when it settled is aborted as soon as it starts.
 */
class ProbeCall implements Dispatcher.DispatchHandler, Cancellable {
  readonly #target: ProbeTarget;
  readonly #tls: TlsFactSource | undefined;
  readonly #resolve: (result: ProbeResult) => void;
  readonly #result: ProbeResult;
  readonly #start = performance.now();
  #controller: Dispatcher.DispatchController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #canceller: ProbeCanceller | undefined;
  #settled = false;
  #headers: Record<string, string | string[] | undefined> = NO_HEADERS;
  #hasBody = true;
  /** The answer so far: undici's first piece as it is; from the second on, one buffer they are copied into. */
  #body: Buffer | undefined;
  #size = 0;
  #pieces = 0;
  #interim = 0;

  constructor(target: ProbeTarget, now: () => number, tls: TlsFactSource | undefined, resolve: (result: ProbeResult) => void) {
    this.#target = target;
    this.#tls = tls;
    this.#resolve = resolve;
    this.#result = { probe: target.probe, env: target.env, ok: false, durationMs: 0, startedAt: now(), checks: [], extracted: {} };
  }

  start(dispatcher: Dispatcher, canceller: ProbeCanceller | undefined): void {
    const target = this.#target;
    if (canceller && !canceller.join(this)) return this.cut('shutdown');
    this.#canceller = canceller;
    this.#timer = setTimeout(this.#deadline, target.timeoutMs);
    // The deadline above covers the whole probe, so undici's own headers and body timeouts (300 s
    // by default) are turned off for it: each was a timer object a probe, kept until undici's
    // next sweep, so it outlived the probe and was promoted to the old generation (issue 18).
    try {
      dispatcher.dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: target.method,
          headers: target.headers,
          body: target.body ?? null,
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        this,
      );
    } catch (error) {
      this.onResponseError(undefined, error as Error);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Ended while it waited for a connection (its deadline, shutdown): nothing was sent yet.
    // Throwing here is how undici drops a request it has not written (its own path for a bad
    // header: the request errs and leaves the queue) and the connection stays open for the next;
    // `controller.abort` would destroy it. Under overload every probe that timed out in the queue
    // cost a connection and a reconnect, which slowed the rest into timeouts in turn (issue 18:
    // at 10,000 series four probes in five timed out on healthy targets).
    if (this.#settled) throw NOT_SENT;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.#settled) return;
    if (statusCode < 200) {
      // 1xx: informational, the answer follows. Each comes through undici's callbacks, so a target
      // that sends them without end cost the agent about 15 µs apiece (a second and more a probe)
      // long before the answer budget (answer-budget.ts) stops the connection.
      if (++this.#interim > MAX_INTERIM_ANSWERS) this.#endless(controller, `more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers before the final one`);
      return;
    }
    const target = this.#target;
    this.#result.status = statusCode;
    this.#headers = headers;
    this.#hasBody = target.method !== 'HEAD' && statusCode !== 204 && statusCode !== 304;
    const declared = Number(headers['content-length']);
    // Stop before reading: the connection is dropped rather than drained, so a 50 MB answer
    // costs at most `maxBodyBytes` of memory.
    if (this.#hasBody && declared > target.maxBodyBytes) this.#tooLarge(controller, { kind: 'too_large', seen: declared });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled || !this.#hasBody) return;
    const had = this.#size;
    this.#size += chunk.length;
    if (this.#size > this.#target.maxBodyBytes) return this.#tooLarge(controller, { kind: 'too_large', seen: this.#size });
    if (++this.#pieces > MAX_BODY_PIECES) return this.#tooLarge(controller, { kind: 'too_many_pieces', seen: this.#size, pieces: this.#pieces });
    // Pieces are views of undici's socket reads: kept as they are, each held a whole read's memory
    // and an object of its own (a million of them for an answer sent a byte at a time). One piece,
    // the usual answer, is kept as it is; more are copied into one buffer, grown by doubling.
    let body = this.#body;
    if (body === undefined) {
      this.#body = chunk;
      return;
    }
    if (this.#pieces === 2 || this.#size > body.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.#target.maxBodyBytes, Math.max(this.#size, 2 * had, 4_096)));
      body.copy(grown, 0, 0, had);
      this.#body = body = grown;
    }
    chunk.copy(body, had);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    const body = this.#body;
    const bytes = body === undefined ? EMPTY : this.#pieces === 1 ? body : body.subarray(0, this.#size);
    this.#result.durationMs = performance.now() - this.#start;
    evaluate(this.#target, this.#result, this.#headers, { kind: 'ok', bytes });
    this.#finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#settled) return;
    const result = this.#result;
    result.durationMs = performance.now() - this.#start;
    // Its connection passed the answer budget (answer-budget.ts) after the status came: judged as a
    // body over its limit is, so a bad status still says `status`.
    if (error instanceof AnswerTooLargeError && result.status !== undefined) {
      evaluate(this.#target, result, this.#headers, { kind: 'over_budget', error });
      return this.#finish();
    }
    result.reason = classifyError(error);
    result.error = this.#target.redactor.text(describeError(error));
    const local = localError(error);
    if (local !== undefined) result.local = local;
    this.#finish();
  }

  /**
   * The deadline passed: the probe is cut after the loop's next poll for I/O, not at once. Timers
   * run before the poll, so when the agent's own loop was held up past a deadline (a reload of
   * thousands of series, a long collection) an answer that came in meanwhile is still waiting in
   * its socket. The target answered in time as far as it could tell; cutting at once would make
   * our stall a timeout of every probe in flight, on both environments at once.
   */
  readonly #deadline = (): void => {
    setImmediate(() => this.cut('timeout'));
  };

  /** End the probe from our side (its deadline, shutdown): a timeout, whatever arrived so far. */
  cut(why: Cut): void {
    if (this.#settled) return;
    const result = this.#result;
    result.durationMs = performance.now() - this.#start;
    result.reason = 'timeout';
    result.error = why === 'timeout' ? `no complete answer within ${this.#target.timeoutMs}ms` : 'cancelled: agent stopping';
    this.#finish();
    this.#controller?.abort(new Error(result.error));
  }

  #tooLarge(controller: Dispatcher.DispatchController, read: BodyRead & { seen: number }): void {
    this.#result.durationMs = performance.now() - this.#start;
    evaluate(this.#target, this.#result, this.#headers, read);
    this.#finish();
    controller.abort(
      new Error(read.kind === 'too_many_pieces' ? `body in more than ${MAX_BODY_PIECES} pieces` : `body larger than ${this.#target.maxBodyBytes} bytes`),
    );
  }

  /** The target kept sending what is not the answer: body_too_large, the connection dropped. */
  #endless(controller: Dispatcher.DispatchController, what: string): void {
    const result = this.#result;
    result.durationMs = performance.now() - this.#start;
    result.reason = 'body_too_large';
    result.error = `${what}: greenlight stops reading a target that sends without end`;
    this.#finish();
    controller.abort(new Error(result.error));
  }

  #finish(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#canceller?.leave(this);
    this.#body = undefined;
    const result = this.#result;
    const facts = this.#target.tlsHost === undefined ? undefined : this.#tls?.facts(this.#target.tlsHost);
    if (facts) result.tls = probeTls(facts, result.startedAt);
    this.#resolve(result);
  }
}

const NO_HEADERS: Record<string, string | string[] | undefined> = Object.freeze({});

/** Thrown at undici for a request whose probe ended before it was sent; one object, no stack per throw. */
const NOT_SENT = new Error('probe ended before its request was sent');

/**
 * Judge an answer. The outcomes go into an array sized for the target's most (`checkSlots`): one
 * grown by push keeps room for 17, and a result lives an interval as its series' latest, long
 * enough for the collector to move it into the old generation (issue 18).
 */
function evaluate(target: ProbeTarget, result: ProbeResult, headers: Record<string, string | string[] | undefined>, read: BodyRead): void {
  const checks: CheckResult[] = (result.checks = new Array<CheckResult>(target.checkSlots));
  let count = 0;
  let reason: ReasonCode | undefined;
  const status = target.checkStatus(result.status!);
  checks[count++] = status;
  if (!status.ok) {
    reason = 'status';
    // A redirect's Location is what an operator needs: a login page, another host, a loop.
    const location = headers.location;
    if (result.status! >= 300 && result.status! < 400 && typeof location === 'string')
      checks[count - 1] = {
        ok: false,
        text: `${status.text}: a redirect to ${JSON.stringify(target.redactor.excerpt(location, 200))} (greenlight does not follow redirects: probe the address it ends at)`,
      };
  }

  if (target.checkLatency !== undefined) {
    const latency = target.checkLatency(result.durationMs);
    checks[count++] = latency;
    if (!latency.ok) reason ??= 'assertion';
  }
  for (const check of target.headerChecks) {
    const outcome = check(headers);
    checks[count++] = outcome;
    if (!outcome.ok) reason ??= 'assertion';
  }

  if (read.kind === 'too_large') {
    checks[count++] = { ok: false, text: `body (${read.seen} bytes or more) larger than ${target.maxBodyBytes} bytes` };
    if (reason !== 'status') reason = 'body_too_large';
  } else if (read.kind === 'too_many_pieces') {
    checks[count++] = {
      ok: false,
      text: `body sent in more than ${MAX_BODY_PIECES} pieces (${read.seen} bytes so far, ${(read.seen / read.pieces).toFixed(1)} bytes a piece): greenlight stops reading an answer flushed a few bytes at a time`,
    };
    if (reason !== 'status') reason = 'body_too_large';
  } else if (read.kind === 'over_budget') {
    checks[count++] = { ok: false, text: read.error.message };
    if (reason !== 'status') reason = 'body_too_large';
  } else if (target.json !== undefined) {
    const { selector, checks: jsonChecks, extract } = target.json;
    const selection = selector.select(read.bytes);
    if (!selection.ok) {
      const excerpt = target.redactor.excerpt(read.bytes.toString('utf8'), 60);
      // Compressed although greenlight asked for nothing of the kind: say so, not just "byte 0x1f".
      const encoding = headers['content-encoding'];
      const encoded =
        typeof encoding === 'string' && encoding.trim() !== '' && encoding.trim().toLowerCase() !== 'identity'
          ? `; it came as content-encoding: ${target.redactor.excerpt(encoding, 40)}, which greenlight does not decode (it sends no Accept-Encoding): have the app answer this path uncompressed`
          : '';
      checks[count++] = { ok: false, text: `body is not JSON: ${selection.problem} (${read.bytes.length} bytes: ${JSON.stringify(excerpt)})${encoded}` };
      if (reason !== 'status') reason = 'invalid_json';
    } else {
      for (const { path, check } of jsonChecks) {
        const outcome = check(selection.values[path]);
        checks[count++] = outcome;
        if (!outcome.ok) reason ??= 'assertion';
      }
      for (const { name, path } of extract) {
        const value = asNumber(selection.values[path]);
        if (value !== undefined) result.extracted[name] = value;
      }
    }
  }
  checks.length = count;
  result.ok = reason === undefined;
  if (reason !== undefined) result.reason = reason;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const REFUSED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const TLS_CODES = new Set([
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Map a transport error (undici's or the socket's, possibly wrapped in `cause`) to a reason code. */
/** Errors of the agent's own resources, not the target's: a socket it could not open. */
const LOCAL_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** The code of an error on the agent's side (LOCAL_CODES), anywhere in its causes; undefined for the target's. */
export function localError(error: unknown): string | undefined {
  for (
    let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    current = current.cause as typeof current, depth++
  ) {
    if (typeof current.code === 'string' && LOCAL_CODES.has(current.code)) return current.code;
  }
  return undefined;
}

export function classifyError(error: unknown): ReasonCode {
  for (
    let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    current = current.cause as typeof current, depth++
  ) {
    const code = typeof current.code === 'string' ? current.code : '';
    if (code === ANSWER_TOO_LARGE) return 'body_too_large';
    if (TIMEOUT_CODES.has(code)) return 'timeout';
    if (REFUSED_CODES.has(code)) return 'refused';
    if (DNS_CODES.has(code)) return 'dns';
    if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.startsWith('CERT_')) return 'tls';
  }
  return 'reset';
}

function describeError(error: unknown): string {
  const parts: string[] = [];
  for (
    let current = error as { message?: string; cause?: unknown } | undefined, depth = 0;
    current && depth < 3;
    current = current.cause as typeof current, depth++
  ) {
    if (current.message && !parts.includes(current.message)) parts.push(current.message);
  }
  // undici's words for an answer it cannot take as HTTP, said as what usually causes it. Some
  // answers reach one of its internal assertions instead: its message is the asserted source
  // (`The expression evaluated to a falsy value:\n\n  assert(upgrade)\n`), said on one line.
  if ((error as { code?: unknown } | undefined)?.code === 'ERR_ASSERTION' && parts[0] !== undefined) {
    const check = /assert\((.*)\)/.exec(parts[0])?.[1];
    parts[0] = `undici's internal check${check === undefined ? '' : ` (${check})`} failed on the answer`;
  }
  const explanation = UNDICI_WORDS.find(([words]) => parts[0] === words)?.[1];
  if (explanation !== undefined) parts.push(explanation);
  return parts.join(': ').replace(/\s*\n\s*/g, ' ') || String(error);
}

/** What undici says (or asserts) of an answer it cannot take as HTTP/1.1, and what usually causes it. */
const UNDICI_WORDS: readonly (readonly [string, string])[] = [
  [
    'bad response',
    'the target answered with something HTTP/1.1 does not allow here; most often an interim 100 Continue the request did not ask for (no Expect: 100-continue), which undici refuses',
  ],
  ['bad upgrade', 'the target answered 101 Switching Protocols to a request that asked for no protocol switch'],
  [
    "undici's internal check (upgrade) failed on the answer",
    'the target answered 101 Switching Protocols (without an Upgrade header) to a request that asked for no protocol switch',
  ],
  ["undici's internal check (statusCode >= 100) failed on the answer", 'the target answered with a status code below 100, which HTTP does not have'],
  [
    'Response does not match the HTTP/1.1 protocol (Expected HTTP/, RTSP/ or ICE/)',
    'the answer has no HTTP/1.x status line: an HTTP/2-only server (its preface), HTTP/0.9, or another protocol on that port',
  ],
];

function lowerKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/**
 * One HTTP probe: send the request through the shared dispatcher, read at most maxBodyBytes of
 * the answer within the timeout, and evaluate the expectations. Always resolves to a
 * ProbeResult; the only thing it throws for is a bug.
 */
import type { Dispatcher } from 'undici';
import type { Redactor } from '../config/redactor.js';
import type { Config, ProbeConfig } from '../config/schema.js';
import { compileHeaderChecks, compileJsonChecks, compileStatusCheck, asNumber, type BodyCheck, type HeaderCheck } from './checks.js';
import { readJsonPath, type PathSegment } from '../config/json-path.js';
import type { CheckResult, ProbeResult, ReasonCode } from './probe-result.js';
import { probeTls, tlsHostOf, type TlsFacts } from './tls.js';

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
  readonly maxLatencyMs: number | undefined;
  readonly checkStatus: (status: number) => CheckResult;
  readonly bodyChecks: readonly BodyCheck[];
  readonly headerChecks: readonly HeaderCheck[];
  readonly extract: readonly { name: string; segments: PathSegment[] }[];
  /** Hides the config's secrets in everything the target answers that a result quotes. */
  readonly redactor: Redactor;
}

/**
 * Resolve a probe of the config against one of its environments. `redactor` (the agent's, built
 * from the config: Redactor.of(config)) hides secrets in what the result quotes of the answer.
 */
export function compileProbeTarget(config: Config, probe: ProbeConfig, env: string, redactor: Redactor): ProbeTarget {
  const environment = config.environments[env];
  if (!environment) throw new Error(`bug: probe ${probe.name} compiled for unknown environment ${env}`);
  const base = new URL(environment.url);
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...lowerKeys(environment.headers), ...lowerKeys(probe.headers) };
  if (base.username && headers.authorization === undefined) {
    // Credentials in the URL become a header: the origin (what errors and logs may show) never carries them.
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
  }
  let body: string | undefined;
  if (typeof probe.body === 'string') body = probe.body;
  else if (probe.body !== undefined) {
    body = JSON.stringify(probe.body);
    headers['content-type'] ??= 'application/json';
  }
  return {
    probe: probe.name,
    env,
    origin: base.origin,
    tlsHost: tlsHostOf(base.origin),
    path: base.pathname.replace(/\/+$/, '') + probe.path,
    method: probe.method,
    headers,
    body,
    timeoutMs: probe.timeout ?? config.probeDefaults.timeout,
    maxBodyBytes: probe.maxBodyBytes ?? config.probeDefaults.maxBodyBytes,
    maxLatencyMs: probe.expect.maxLatency,
    checkStatus: compileStatusCheck(probe.expect.status),
    bodyChecks: probe.expect.json.flatMap((assertion) => compileJsonChecks(assertion, redactor)),
    headerChecks: probe.expect.headers.flatMap((assertion) => compileHeaderChecks(assertion, redactor)),
    extract: Object.entries(probe.extract).map(([name, extraction]) => ({ name, segments: extraction.path.segments })),
    redactor,
  };
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
 * `signal` lets the agent end in-flight probes at shutdown (they then resolve as timeouts).
 * `tls`, the observer `dispatcher` connects through, puts an https target's certificate facts on
 * the result.
 */
export async function runProbe(
  target: ProbeTarget,
  dispatcher: Dispatcher,
  now: () => number,
  signal?: AbortSignal,
  tls?: TlsFactSource,
): Promise<ProbeResult> {
  const startedAt = now();
  const start = performance.now();
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, target.timeoutMs);
  const onShutdown = () => controller.abort();
  if (signal?.aborted) controller.abort();
  else signal?.addEventListener('abort', onShutdown, { once: true });

  const result: ProbeResult = { probe: target.probe, env: target.env, ok: false, durationMs: 0, startedAt, checks: [], extracted: {} };
  try {
    const response = await dispatcher.request({
      origin: target.origin,
      path: target.path,
      method: target.method,
      headers: target.headers,
      body: target.body,
      signal: controller.signal,
    });
    result.status = response.statusCode;
    const hasBody = target.method !== 'HEAD' && response.statusCode !== 204 && response.statusCode !== 304;
    const read = hasBody ? await readBody(response, target.maxBodyBytes) : EMPTY_BODY;
    result.durationMs = performance.now() - start;
    evaluate(target, result, response.headers, read);
  } catch (error) {
    result.durationMs = performance.now() - start;
    result.reason = timedOut || signal?.aborted ? 'timeout' : classifyError(error);
    result.error = timedOut
      ? `no complete answer within ${target.timeoutMs}ms`
      : signal?.aborted
        ? 'cancelled: agent stopping'
        : target.redactor.text(describeError(error));
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onShutdown);
  }
  const facts = target.tlsHost === undefined ? undefined : tls?.facts(target.tlsHost);
  if (facts) result.tls = probeTls(facts, startedAt);
  return result;
}

type BodyRead = { kind: 'ok'; bytes: Buffer } | { kind: 'too_large'; seen: number };

const EMPTY_BODY: BodyRead = { kind: 'ok', bytes: Buffer.alloc(0) };

async function readBody(response: Dispatcher.ResponseData, limit: number): Promise<BodyRead> {
  const declared = Number(response.headers['content-length']);
  if (declared > limit) {
    discard(response.body);
    return { kind: 'too_large', seen: declared };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      // Stop reading: the connection is dropped rather than drained, so a 50 MB answer costs
      // at most `limit` bytes of memory.
      discard(response.body);
      return { kind: 'too_large', seen: size };
    }
    chunks.push(chunk);
  }
  return { kind: 'ok', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) };
}

/**
 * Drop a body we will not read. undici reports the destroyed request as an error on the stream
 * a tick later; without a listener that error would be uncaught and end the process.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

function evaluate(target: ProbeTarget, result: ProbeResult, headers: Dispatcher.ResponseData['headers'], read: BodyRead): void {
  const checks = result.checks;
  let reason: ReasonCode | undefined;
  const status = target.checkStatus(result.status!);
  checks.push(status);
  if (!status.ok) reason = 'status';

  if (target.maxLatencyMs !== undefined) {
    const ok = result.durationMs <= target.maxLatencyMs;
    checks.push({ ok, text: `latency ${Math.round(result.durationMs)}ms ${ok ? '<=' : '>'} ${target.maxLatencyMs}ms` });
    if (!ok) reason ??= 'assertion';
  }
  for (const check of target.headerChecks) {
    const outcome = check(headers);
    checks.push(outcome);
    if (!outcome.ok) reason ??= 'assertion';
  }

  if (read.kind === 'too_large') {
    checks.push({ ok: false, text: `body (${read.seen} bytes or more) larger than ${target.maxBodyBytes} bytes` });
    result.reason = reason === 'status' ? reason : 'body_too_large';
    return;
  }
  if (target.bodyChecks.length > 0 || target.extract.length > 0) {
    let body: unknown;
    const text = read.bytes.toString('utf8');
    try {
      body = JSON.parse(text);
    } catch (error) {
      checks.push({
        ok: false,
        text: `body is not JSON: ${parseProblem(error)} (${read.bytes.length} bytes: ${JSON.stringify(target.redactor.excerpt(text, 60))})`,
      });
      result.reason = reason === 'status' ? reason : 'invalid_json';
      return;
    }
    for (const check of target.bodyChecks) {
      const outcome = check(body);
      checks.push(outcome);
      if (!outcome.ok) reason ??= 'assertion';
    }
    for (const { name, segments } of target.extract) {
      const value = asNumber(readJsonPath(body, segments));
      if (value !== undefined) result.extracted[name] = value;
    }
  }
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
export function classifyError(error: unknown): ReasonCode {
  for (
    let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    current = current.cause as typeof current, depth++
  ) {
    const code = typeof current.code === 'string' ? current.code : '';
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
  return parts.join(': ') || String(error);
}

/**
 * JSON.parse's complaint without the piece of the body V8 quotes in it (`Unexpected token 'o',
 * "tok-hunter"... is not valid JSON`): that piece is cut at a fixed length, so a secret in it
 * could not be redacted whole. The caller quotes the start of the body itself, redacted.
 */
function parseProblem(error: unknown): string {
  const message = (error as Error).message;
  const quoted = message.indexOf(', "');
  return quoted > 0 && message.endsWith('is not valid JSON') ? message.slice(0, quoted) : message;
}

function lowerKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

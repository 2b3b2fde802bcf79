/**
 * A short load check: paced, open-model requests (each sent at its scheduled time whether or not
 * earlier ones have answered, as users arrive) over the probe paths of one environment, through
 * undici. `greenlight loadtest` and the promotion's load gate both run it.
 *
 * Latency runs from sending to the end of the body. When the generator itself falls behind (a
 * busy machine), requests go out late rather than being dropped: the report says how far behind
 * it fell (achieved vs requested rate, worst lag) so a slow generator is not blamed on the target.
 */
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import { Agent as UndiciAgent } from '../../probes/undici-core.js';
import type { ProbeTarget } from '../../probes/http-probe.js';

export interface LoadTestOptions {
  /** Request shapes, used in turn: the environment's probes (origin, path, method, headers, body, status check). */
  targets: readonly Pick<ProbeTarget, 'origin' | 'path' | 'method' | 'headers' | 'body' | 'checkStatus' | 'probe'>[];
  rps: number;
  durationMs: number;
  /** Deadline of one request. */
  timeoutMs: number;
  /** Connections per origin (default 32). */
  connections?: number;
  /** Requests in flight beyond which new ones count as errors (`overload`) instead of piling up. Default 10,000. */
  maxInFlight?: number;
  /** Called about once a second with the figures so far. */
  onProgress?: (progress: LoadProgress) => void;
  progressEveryMs?: number;
  signal?: AbortSignal;
  /** Tests and benches may bring their own pool; default a fresh one, closed at the end. */
  dispatcher?: Dispatcher;
  /** The `connect` option of the dispatcher made when none is given: the environments' CAs (agent/pipeline/tls-trust.ts). */
  connect?: Undici.Agent.Options['connect'];
}

export interface LoadProgress {
  elapsedMs: number;
  sent: number;
  completed: number;
  errors: number;
  inFlight: number;
  /** p95 over the answers of the last interval, ms; null before any. */
  recentP95Ms: number | null;
}

export interface LoadReport {
  requestedRps: number;
  durationMs: number;
  sent: number;
  completed: number;
  errors: number;
  /** errors / sent (requests still unanswered at the end count as errors). */
  errorRatio: number;
  /** sent / elapsed send time: how close the generator came to the requested rate. */
  achievedRps: number;
  /** completed without error / elapsed time. */
  throughputRps: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The worst delay of a send behind its schedule, ms. */
  maxLagMs: number;
  /** Failures by reason: `status 500`, `timeout`, `ECONNREFUSED`, `overload`. */
  errorsByReason: Record<string, number>;
}

export interface LoadThresholds {
  maxP95Ms: number;
  maxErrorRatio: number;
}

/** Run the load; resolves with the report once every request has answered or timed out. */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadReport> {
  if (options.targets.length === 0) throw new Error('bug: a load test needs at least one target');
  const own = options.dispatcher === undefined;
  const dispatcher =
    options.dispatcher ??
    new UndiciAgent({
      connections: options.connections ?? 32,
      pipelining: 1,
      keepAliveTimeout: 10_000,
      ...(options.connect ? { connect: options.connect } : {}),
    });
  const maxInFlight = options.maxInFlight ?? 10_000;
  const total = Math.max(1, Math.round((options.rps * options.durationMs) / 1_000));
  const intervalMs = 1_000 / options.rps;
  const latencies = new Float64Array(total);
  let completedOk = 0;
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let inFlight = 0;
  let maxLag = 0;
  const reasons: Record<string, number> = {};
  const recent: number[] = [];
  const pending = new Set<Promise<void>>();

  const fail = (reason: string) => {
    errors++;
    reasons[reason] = (reasons[reason] ?? 0) + 1;
  };

  const send = (index: number): void => {
    const target = options.targets[index % options.targets.length]!;
    if (inFlight >= maxInFlight) {
      completed++;
      fail('overload');
      return;
    }
    inFlight++;
    const started = performance.now();
    const work = dispatcher
      .request({
        origin: target.origin,
        path: target.path,
        method: target.method,
        headers: target.headers,
        body: target.body,
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      .then(async (response) => {
        await response.body.dump({ limit: 1024 * 1024 });
        const ms = performance.now() - started;
        if (!target.checkStatus(response.statusCode).ok) return fail(`status ${response.statusCode}`);
        latencies[completedOk++] = ms;
        recent.push(ms);
      })
      .catch((error: unknown) => fail(reasonOf(error)))
      .finally(() => {
        inFlight--;
        completed++;
        pending.delete(work);
      });
    pending.add(work);
  };

  const start = performance.now();
  const progressEvery = options.progressEveryMs ?? Math.min(1_000, Math.max(100, options.durationMs / 4));
  let nextProgress = start + progressEvery;
  while (sent < total && !options.signal?.aborted) {
    const now = performance.now();
    // Everything due by now goes out in this turn: at thousands a second, a timer per request would be too coarse.
    const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
    if (due > sent) maxLag = Math.max(maxLag, now - (start + sent * intervalMs));
    while (sent < due) send(sent++);
    if (options.onProgress && now >= nextProgress) {
      nextProgress += progressEvery;
      options.onProgress({
        elapsedMs: now - start,
        sent,
        completed,
        errors,
        inFlight,
        recentP95Ms: quantile(
          recent.sort((a, b) => a - b),
          0.95,
        ),
      });
      recent.length = 0;
    }
    if (sent >= total) break;
    const wait = start + sent * intervalMs - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(wait, 50))));
  }
  const sendElapsed = Math.max(performance.now() - start, (sent - 1) * intervalMs, 1);
  await Promise.allSettled([...pending]);
  const elapsed = performance.now() - start;
  if (own) await dispatcher.destroy();
  const sorted = latencies.subarray(0, completedOk).sort();
  return {
    requestedRps: options.rps,
    durationMs: elapsed,
    sent,
    completed,
    errors,
    errorRatio: sent === 0 ? 0 : errors / sent,
    achievedRps: sent <= 1 ? sent : ((sent - 1) * 1_000) / sendElapsed,
    throughputRps: (completedOk * 1_000) / elapsed,
    p50Ms: quantile(sorted, 0.5),
    p95Ms: quantile(sorted, 0.95),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.length === 0 ? null : sorted[sorted.length - 1]!,
    maxLagMs: maxLag,
    errorsByReason: reasons,
  };
}

/** Which threshold a report breaks, as a sentence naming the figure; undefined when within both. */
export function judgeLoad(report: LoadReport, thresholds: LoadThresholds): { ok: boolean; failures: string[] } {
  const failures: string[] = [];
  if (report.p95Ms === null) failures.push('p95 latency unknown: no request succeeded');
  else if (report.p95Ms >= thresholds.maxP95Ms) failures.push(`p95 latency ${formatMs(report.p95Ms)} >= ${formatMs(thresholds.maxP95Ms)}`);
  if (report.errorRatio >= thresholds.maxErrorRatio && report.sent > 0) {
    failures.push(
      `error ratio ${percent(report.errorRatio)} >= ${percent(thresholds.maxErrorRatio)} (${report.errors} of ${report.sent}${topReasons(report)})`,
    );
  }
  return { ok: failures.length === 0, failures };
}

/** `p50 12ms p95 31ms p99 48ms, errors 0.0 % (0 of 200), 20.0 req/s of 20 requested` */
export function summarizeLoad(report: LoadReport): string {
  const q = (ms: number | null) => (ms === null ? '-' : formatMs(ms));
  return `p50 ${q(report.p50Ms)} p95 ${q(report.p95Ms)} p99 ${q(report.p99Ms)}, errors ${percent(report.errorRatio)} (${report.errors} of ${report.sent}), sent ${report.achievedRps.toFixed(1)}/s of ${report.requestedRps} requested, throughput ${report.throughputRps.toFixed(1)}/s`;
}

export function formatMs(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(2)}s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)}ms`;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)} %`;
}

function topReasons(report: LoadReport): string {
  const top = Object.entries(report.errorsByReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3);
  return top.length === 0 ? '' : `: ${top.map(([reason, count]) => `${count}× ${reason}`).join(', ')}`;
}

function quantile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function reasonOf(error: unknown): string {
  const err = error as { name?: string; code?: string; cause?: { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timeout';
  return err.cause?.code ?? err.code ?? err.name ?? 'error';
}

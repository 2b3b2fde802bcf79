/**
 * Everything greenlight knows about one probe × environment: its sliding windows, consecutive
 * failures and successes, up/down state, the latest extracted values and how long each has
 * stayed above its configured lines. Rules read their facts from here.
 */
import { formatDuration } from '../config/units.js';
import { describeFailure, type ProbeResult, type ReasonCode } from './probe-result.js';
import type { SeriesPool } from './series-pool.js';
import { LatestResult } from './latest-result.js';
import { SlidingWindow, type WindowFigures } from './sliding-window.js';
import { DAY_MS, type TlsFacts } from './tls.js';

export interface ExtractedValue {
  value: number;
  /** Clock time of the probe that read it. */
  at: number;
  /**
   * For each configured line: since when the readings have been above it without a break, and
   * whether greenlight saw the run begin (a reading at or under the line came first). One above it
   * at the first reading (after a start, a reload or a new series) may have begun any time before.
   */
  above: { line: number; since: number | undefined; seen: boolean }[];
}

/** A change of the series' up/down state, for probe.up / probe.down events. */
export interface StateChange {
  up: boolean;
  /** The previous state; undefined on the very first result. */
  wasUp: boolean | undefined;
}

export interface SeriesSnapshot {
  probe: string;
  env: string;
  up: boolean | undefined;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  skipped: number;
  /** Confirmation probes recorded (they are not in the windows). */
  confirmations: number;
  probesPerMinute: number;
  last: ProbeResult | undefined;
  windows: Record<string, WindowSnapshot>;
  extracted: Record<string, { value: number; at: string; aboveForMs: Record<string, number> }>;
  /** An https target's certificate as the latest handshake showed it; null for http or before the first. */
  tls: SeriesTls | null;
}

/**
 * A window's figures as the state shows them: an empty window has no error ratio and no latencies
 * (null), as /metrics has NaN, rather than 0 % errors a script would read as healthy.
 */
export interface WindowSnapshot {
  windowMs: number;
  count: number;
  failures: number;
  errorRatio: number | null;
  meanLatencyMs: number | null;
  p50LatencyMs: number | null;
  p95LatencyMs: number | null;
  p99LatencyMs: number | null;
}

function windowSnapshot(figures: WindowFigures): WindowSnapshot {
  return {
    windowMs: figures.windowMs,
    count: figures.count,
    failures: figures.failures,
    errorRatio: figures.count === 0 ? null : figures.errorRatio,
    meanLatencyMs: figures.meanLatencyMs ?? null,
    p50LatencyMs: figures.p50LatencyMs ?? null,
    p95LatencyMs: figures.p95LatencyMs ?? null,
    p99LatencyMs: figures.p99LatencyMs ?? null,
  };
}

/** A series' TLS facts as the state shows them. */
export interface SeriesTls {
  expiresAt: string;
  /** Days left as of the snapshot; negative once expired. */
  daysLeft: number;
  valid: boolean;
  error: string | null;
  subject: string;
  issuer: string;
  expiring: string;
  checkedAt: string;
}

/** How many of the latest results a series keeps for sparklines ({@link ProbeSeries.recent}). */
export const RECENT_SAMPLES = 60;

/**
 * The latest results of a series, oldest first, compact enough to send for every series at once:
 * durations in whole milliseconds, and the indices of the ones that failed.
 */
export interface RecentSamples {
  durationMs: number[];
  failed: number[];
}

/** A series in a few hundred bytes: what a status page shows of it (GET /api/v1/overview). */
export interface SeriesSummary {
  probe: string;
  env: string;
  up: boolean | undefined;
  consecutiveFailures: number;
  /** The latest result's status code, when there was one. */
  status: number | null;
  /** Why the latest result failed (`assertion: $.universe ([]) is empty`); null when it passed. */
  failure: string | null;
  /** The shortest window's name and figures; null figures while it is empty. */
  window: string;
  errorRatio: number | null;
  p95LatencyMs: number | null;
  recent: RecentSamples;
}

export class ProbeSeries {
  readonly probe: string;
  readonly env: string;
  readonly windows: readonly SlidingWindow[];
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  skipped = 0;
  /** Confirmation probes recorded so far. */
  confirmations = 0;
  up: boolean | undefined;
  /** The latest result, as its parts (latest-result.ts says why not the object). */
  readonly #latest: LatestResult;
  /**
   * The certificate facts of the latest result that had some. Kept when a later probe fails
   * without a handshake (refused, timeout): the certificate has not changed for that.
   */
  tls: TlsFacts | undefined;
  readonly extracted = new Map<string, ExtractedValue>();
  /**
   * The pool of its environment (series-pool.ts): every sample added to this series' windows is
   * added to it in the same call. Set by whoever builds the pool; undefined without one.
   */
  pool: SeriesPool | undefined;
  readonly #lines: ReadonlyMap<string, readonly number[]>;
  readonly #createdAt: number;
  /**
   * A ring of the latest results (typed arrays: about 300 bytes a series, no allocation per probe),
   * both views of one buffer: a second ArrayBuffer would cost about 270 bytes beyond its own, a JS
   * object and a native allocation (issue 18).
   */
  readonly #recentMs = new Float32Array(new ArrayBuffer(RECENT_SAMPLES * 5), 0, RECENT_SAMPLES);
  readonly #recentOk = new Uint8Array(this.#recentMs.buffer, RECENT_SAMPLES * 4, RECENT_SAMPLES);
  #recentCount = 0;

  /** `lines`: per extracted value, the thresholds whose "above since" is tracked. */
  constructor(probe: string, env: string, windowsMs: readonly number[], lines: ReadonlyMap<string, readonly number[]>, now: number) {
    this.probe = probe;
    this.env = env;
    this.windows = windowsMs.map((ms) => new SlidingWindow(ms));
    this.#latest = new LatestResult(probe, env);
    this.#lines = lines;
    this.#createdAt = now;
  }

  /**
   * Fold a result in; returns the state change it caused, if any. A confirmation result moves the
   * streaks and the state but not the windows: re-probing only after a failure would otherwise
   * over-weight failures, and a mostly healthy target's error ratio would rise with every retry.
   */
  record(result: ProbeResult): StateChange | undefined {
    if (result.confirmation) this.confirmations++;
    else {
      for (const window of this.windows) window.add(result.ok, result.durationMs, result.startedAt);
      this.pool?.add(result.ok, result.durationMs, result.startedAt);
    }
    if (result.ok) {
      this.consecutiveSuccesses++;
      this.consecutiveFailures = 0;
    } else {
      this.consecutiveFailures++;
      this.consecutiveSuccesses = 0;
    }
    for (const name in result.extracted) this.#recordValue(name, result.extracted[name]!, result.startedAt);
    this.#latest.note(result);
    if (result.tls) {
      this.tls = result.tls;
      this.pool?.noteTls(this, result.tls.expiresAt);
    }
    const slot = this.#recentCount++ % RECENT_SAMPLES;
    this.#recentMs[slot] = result.durationMs;
    this.#recentOk[slot] = result.ok ? 1 : 0;
    if (this.up === result.ok) return undefined;
    const change = { up: result.ok, wasUp: this.up };
    this.up = result.ok;
    return change;
  }

  /** The latest result, built anew on each read: read it once where it is used more than once. */
  get last(): ProbeResult | undefined {
    return this.#latest.result();
  }

  /** When the latest result's probe started (clock ms); undefined before the first. */
  get lastStartedAt(): number | undefined {
    return this.#latest.startedAt;
  }

  /** Why the latest result failed (its reason code); undefined when it passed, or before the first. */
  get lastReason(): ReasonCode | undefined {
    return this.#latest.reason;
  }

  /** Results recorded since the series was created (confirmations included). */
  get results(): number {
    return this.#recentCount;
  }

  /** A tick that found the previous probe still in flight. */
  recordSkipped(): void {
    this.skipped++;
  }

  /**
   * How long (ms) extracted value `name` has stayed above `line`: from the first reading of the run
   * to the latest, never to `now` (a target that stops giving the value, or stops answering, adds
   * no time: no stale reading moves traffic); 0 when it is not above. `worst`: a run greenlight did
   * not see begin counts as endless (MAX_SAFE_INTEGER: what the rollback's judgement of its target must assume).
   */
  aboveForMs(name: string, line: number, now: number, worst = false): number {
    const entry = this.extracted.get(name);
    const run = entry?.above.find((threshold) => threshold.line === line);
    if (run?.since === undefined) return 0;
    // Endless, but a finite number: rule operators take only finite ones. Only while the value is
    // still read: one the target stopped giving proves no run at all (it would hold a rollback for ever).
    if (worst && !run.seen && entry!.at === this.lastStartedAt) return Number.MAX_SAFE_INTEGER;
    return Math.max(0, Math.min(now, entry!.at) - run.since);
  }

  /** Extracted value `name` as the latest probe read it; undefined when that probe read none (it failed, or the answer lacked it). */
  latestValue(name: string): number | undefined {
    const entry = this.extracted.get(name);
    return entry !== undefined && entry.at === this.lastStartedAt ? entry.value : undefined;
  }

  /** Probes per minute over the shortest window (or the series' lifetime while younger). */
  probesPerMinute(now: number): number {
    const window = this.windows[0]!;
    const span = Math.min(window.windowMs, Math.max(now - this.#createdAt, 1_000));
    return (window.figures(now).count * 60_000) / span;
  }

  snapshot(now: number): SeriesSnapshot {
    const windows: Record<string, WindowSnapshot> = {};
    for (const window of this.windows) windows[formatDuration(window.windowMs)] = windowSnapshot(window.figures(now));
    const extracted: SeriesSnapshot['extracted'] = {};
    for (const [name, entry] of this.extracted) {
      const aboveForMs: Record<string, number> = {};
      for (const { line } of entry.above) aboveForMs[String(line)] = this.aboveForMs(name, line, now);
      extracted[name] = { value: entry.value, at: new Date(entry.at).toISOString(), aboveForMs };
    }
    return {
      probe: this.probe,
      env: this.env,
      up: this.up,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveSuccesses: this.consecutiveSuccesses,
      skipped: this.skipped,
      confirmations: this.confirmations,
      probesPerMinute: this.probesPerMinute(now),
      last: this.last,
      windows,
      extracted,
      tls: this.tls ? tlsSnapshot(this.tls, now) : null,
    };
  }

  /** Days until the earliest certificate of the chain expires, as of `now`; undefined without TLS facts. */
  tlsDaysLeft(now: number): number | undefined {
    return this.tls === undefined ? undefined : (this.tls.expiresAt - now) / DAY_MS;
  }

  /** A compact view with the latest `samples` results, for pages that show every series at once. */
  summary(now: number, samples: number): SeriesSummary {
    const window = this.windows[0]!;
    const figures = window.figures(now);
    const last = this.last;
    return {
      probe: this.probe,
      env: this.env,
      up: this.up,
      consecutiveFailures: this.consecutiveFailures,
      status: last?.status ?? null,
      failure: last && !last.ok ? describeFailure(last) : null,
      window: formatDuration(window.windowMs),
      errorRatio: figures.count === 0 ? null : Math.round(figures.errorRatio * 10_000) / 10_000,
      p95LatencyMs: figures.p95LatencyMs === undefined ? null : Math.round(figures.p95LatencyMs * 10) / 10,
      recent: this.recent(samples),
    };
  }

  /** The latest `limit` results (at most {@link RECENT_SAMPLES}), oldest first; not part of {@link snapshot}, which stays lean. */
  recent(limit = RECENT_SAMPLES): RecentSamples {
    const count = Math.min(limit, this.#recentCount, RECENT_SAMPLES);
    const durationMs: number[] = new Array<number>(count);
    const failed: number[] = [];
    for (let i = 0; i < count; i++) {
      const slot = (this.#recentCount - count + i) % RECENT_SAMPLES;
      durationMs[i] = Math.round(this.#recentMs[slot]!);
      if (this.#recentOk[slot] === 0) failed.push(i);
    }
    return { durationMs, failed };
  }

  #recordValue(name: string, value: number, at: number): void {
    let entry = this.extracted.get(name);
    const first = entry === undefined;
    if (!entry) {
      entry = { value, at, above: (this.#lines.get(name) ?? []).map((line) => ({ line, since: undefined, seen: false })) };
      this.extracted.set(name, entry);
    }
    entry.value = value;
    entry.at = at;
    for (const threshold of entry.above) {
      if (value <= threshold.line) threshold.since = undefined;
      else if (threshold.since === undefined) {
        threshold.since = at;
        threshold.seen = !first;
      }
    }
  }
}

function tlsSnapshot(tls: TlsFacts, now: number): SeriesTls {
  return {
    expiresAt: new Date(tls.expiresAt).toISOString(),
    daysLeft: Math.round(((tls.expiresAt - now) / DAY_MS) * 1_000) / 1_000,
    valid: tls.valid,
    error: tls.error ?? null,
    subject: tls.subject,
    issuer: tls.issuer,
    expiring: tls.expiring,
    checkedAt: new Date(tls.checkedAt).toISOString(),
  };
}

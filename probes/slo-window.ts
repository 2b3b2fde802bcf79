/**
 * Service level objectives over long windows, with bounded memory that survives restarts.
 *
 * An SLO counts probes as good or bad (failed, or slower than its latency line) over windows of
 * minutes to its whole period (30 days). Each window is a ring of 30 time buckets of two counters,
 * rotated lazily against the clock like the sliding windows, so a 5 m window has 10 s buckets and
 * a 30 d one 1 d buckets: memory is fixed by the number of windows, never by the traffic, and a
 * window covers between 29/30 and all of its length.
 *
 * Counts are kept per environment and only while that environment is live: users meet the live
 * one, and counting the idle one would charge a deployment's downtime there to the budget (and
 * page right after the promotion that followed it). An environment's windows therefore hold its
 * own time as the live one; the service's budget is both together.
 */
import type { Config } from '../config/schema.js';
import type { ProbeResult } from './probe-result.js';

const BUCKETS = 30;

/** What a count window holds in the store: enough to rebuild it as it was. */
export interface CountWindowState {
  windowMs: number;
  /** The newest epoch (time / bucketMs) the ring had been rotated to. */
  head: number;
  /** Per bucket, oldest first, ending at `head`. */
  total: number[];
  bad: number[];
}

/** Good and bad counts over a window: a ring of 30 time buckets. */
export class CountWindow {
  readonly windowMs: number;
  readonly bucketMs: number;
  /** Both views of one buffer: a second ArrayBuffer would cost about 270 bytes beyond its own (a JS object, a native allocation). */
  readonly #total = new Uint32Array(new ArrayBuffer(BUCKETS * 8), 0, BUCKETS);
  readonly #bad = new Uint32Array(this.#total.buffer, BUCKETS * 4, BUCKETS);
  #totalSum = 0;
  #badSum = 0;
  #head = -Infinity;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
    this.bucketMs = windowMs / BUCKETS;
  }

  add(good: boolean, at: number): void {
    const epoch = this.#rotate(at);
    if (epoch < this.#head - BUCKETS + 1) return; // older than the window
    const slot = slotOf(epoch);
    this.#total[slot]!++;
    this.#totalSum++;
    if (!good) {
      this.#bad[slot]!++;
      this.#badSum++;
    }
  }

  /** Probes and bad ones in the window as of `at`, and the share of its buckets that hold any (how much of the window was observed). */
  totals(at: number): SloCounts {
    this.#rotate(at);
    let covered = 0;
    if (this.#totalSum > 0) for (let slot = 0; slot < BUCKETS; slot++) if (this.#total[slot]! > 0) covered++;
    return { total: this.#totalSum, bad: this.#badSum, coverage: covered / BUCKETS };
  }

  /** Bytes of counters this window holds (fixed at construction). */
  get bytes(): number {
    return this.#total.byteLength + this.#bad.byteLength;
  }

  save(): CountWindowState {
    const total: number[] = [];
    const bad: number[] = [];
    if (Number.isFinite(this.#head)) {
      for (let epoch = this.#head - BUCKETS + 1; epoch <= this.#head; epoch++) {
        total.push(this.#total[slotOf(epoch)]!);
        bad.push(this.#bad[slotOf(epoch)]!);
      }
    }
    return { windowMs: this.windowMs, head: Number.isFinite(this.#head) ? this.#head : 0, total, bad };
  }

  /**
   * Put back what `save` returned (the same window length); buckets that left the window since are
   * dropped at the next read. A head later than `now` was saved before the clock stepped back:
   * the counts are put back ending at `now`, or every result from now on would look older than
   * the window and be dropped until the clock caught up.
   */
  restore(state: CountWindowState, now: number): void {
    if (
      state.windowMs !== this.windowMs ||
      !Number.isSafeInteger(state.head) ||
      !Array.isArray(state.total) ||
      !Array.isArray(state.bad) ||
      state.total.length !== BUCKETS ||
      state.bad.length !== BUCKETS
    )
      return;
    this.#total.fill(0);
    this.#bad.fill(0);
    this.#totalSum = 0;
    this.#badSum = 0;
    const head = Math.min(state.head, Math.floor(now / this.bucketMs));
    this.#head = head;
    for (let i = 0; i < BUCKETS; i++) {
      const slot = slotOf(head - BUCKETS + 1 + i);
      const total = Math.max(0, Math.floor(state.total[i]!)) || 0;
      const bad = Math.min(total, Math.max(0, Math.floor(state.bad[i]!)) || 0);
      this.#total[slot] = total;
      this.#bad[slot] = bad;
      this.#totalSum += total;
      this.#badSum += bad;
    }
  }

  #rotate(at: number): number {
    const epoch = Math.floor(at / this.bucketMs);
    if (epoch <= this.#head) return epoch;
    const from = Math.max(this.#head + 1, epoch - BUCKETS + 1);
    for (let next = from; next <= epoch; next++) {
      const slot = slotOf(next);
      this.#totalSum -= this.#total[slot]!;
      this.#badSum -= this.#bad[slot]!;
      this.#total[slot] = 0;
      this.#bad[slot] = 0;
    }
    this.#head = epoch;
    return epoch;
  }
}

function slotOf(epoch: number): number {
  return ((epoch % BUCKETS) + BUCKETS) % BUCKETS;
}

/** One SLO as configured (the schema's `slo.<name>`). */
export interface SloDefinition {
  name: string;
  /** The share of probes that must be good, 0 < objective < 1 (0.995). */
  objective: number;
  periodMs: number;
  /** The probes it counts; undefined: every probe. */
  probes: readonly string[] | undefined;
  /** A successful probe slower than this counts as bad too. */
  latencyMs: number | undefined;
  /** Windows to keep besides those rules read and the period. */
  windowsMs: readonly number[];
}

/** The config's SLOs as definitions. */
export function sloDefinitions(config: Pick<Config, 'slo'>): SloDefinition[] {
  return Object.entries(config.slo).map(([name, slo]) => ({
    name,
    objective: slo.objective,
    periodMs: slo.period,
    probes: slo.probes,
    latencyMs: slo.latency,
    windowsMs: slo.windows,
  }));
}

/** Good/bad counts of a window (or the sum of several). */
export interface SloCounts {
  total: number;
  bad: number;
  /** The share of the window's buckets (of 30) that hold probes: 1 when it was observed throughout. */
  coverage: number;
}

/** What the store keeps of one SLO. */
export interface SloState {
  /** The definition the counts were made under (probes, latency): other counts are not restored. */
  fingerprint: string;
  environments: Record<string, CountWindowState[]>;
}

/** One SLO: its count windows per environment (its period and the windows rules name). */
export class SloTracker {
  readonly definition: SloDefinition;
  readonly #windows = new Map<string, Map<number, CountWindow>>();

  constructor(definition: SloDefinition, environments: readonly string[], windowsMs: readonly number[]) {
    this.definition = definition;
    const lengths = [...new Set([...windowsMs, ...definition.windowsMs, definition.periodMs])].sort((a, b) => a - b);
    for (const env of environments) this.#windows.set(env, new Map(lengths.map((ms) => [ms, new CountWindow(ms)])));
  }

  /** The window lengths tracked (ms), shortest first. */
  get windowsMs(): number[] {
    return [...(this.#windows.values().next().value?.keys() ?? [])];
  }

  /** Whether a result counts for this SLO at all (its probe, a scheduled probe of the live environment). */
  counts(result: ProbeResult, live: boolean): boolean {
    return live && result.confirmation === undefined && (this.definition.probes === undefined || this.definition.probes.includes(result.probe));
  }

  record(result: ProbeResult, live: boolean): void {
    if (!this.counts(result, live)) return;
    const windows = this.#windows.get(result.env);
    if (!windows) return;
    const latency = this.definition.latencyMs;
    const good = result.ok && (latency === undefined || result.durationMs <= latency);
    for (const window of windows.values()) window.add(good, result.startedAt);
  }

  /** Counts of `env` over the window of `windowMs` (undefined when that window is not tracked). */
  window(env: string, windowMs: number, at: number): SloCounts | undefined {
    return this.#windows.get(env)?.get(windowMs)?.totals(at);
  }

  /** The error budget spent per unit of time, relative to the objective: 1 spends it exactly over the period. */
  burnRate(counts: SloCounts): number | undefined {
    return counts.total === 0 ? undefined : counts.bad / counts.total / (1 - this.definition.objective);
  }

  /** The service's counts over the period: every environment's live time together. */
  period(at: number): SloCounts {
    let total = 0;
    let bad = 0;
    let coverage = 0;
    for (const windows of this.#windows.values()) {
      const counts = windows.get(this.definition.periodMs)!.totals(at);
      total += counts.total;
      bad += counts.bad;
      coverage += counts.coverage; // environments are live one at a time: their buckets add up
    }
    return { total, bad, coverage: Math.min(1, coverage) };
  }

  /** The share of the period's error budget not yet spent: 1 untouched, 0 spent, below 0 overspent; undefined before any probe. */
  budgetRemaining(at: number): number | undefined {
    const rate = this.burnRate(this.period(at));
    return rate === undefined ? undefined : 1 - rate;
  }

  /** Bytes of counters held. */
  get bytes(): number {
    let bytes = 0;
    for (const windows of this.#windows.values()) for (const window of windows.values()) bytes += window.bytes;
    return bytes;
  }

  save(): SloState {
    const environments: Record<string, CountWindowState[]> = {};
    for (const [env, windows] of this.#windows) environments[env] = [...windows.values()].map((window) => window.save());
    return { fingerprint: fingerprint(this.definition), environments };
  }

  /** Put back saved counts; counts made under another definition, or for windows no longer tracked, are left out. */
  restore(state: SloState, now: number): void {
    if (state.fingerprint !== fingerprint(this.definition)) return;
    for (const [env, saved] of Object.entries(state.environments ?? {})) {
      const windows = this.#windows.get(env);
      if (!windows || !Array.isArray(saved)) continue;
      for (const window of saved) windows.get(window?.windowMs)?.restore(window, now);
    }
  }
}

function fingerprint(definition: SloDefinition): string {
  return JSON.stringify({ probes: definition.probes ?? '*', latencyMs: definition.latencyMs ?? null });
}

/** Every configured SLO, fed with probe results; what rules, metrics and the state read. */
export class SloBook {
  readonly #trackers: Map<string, SloTracker>;

  constructor(definitions: readonly SloDefinition[], environments: readonly string[], windowsBySlo: ReadonlyMap<string, readonly number[]>) {
    this.#trackers = new Map(
      definitions.map((definition) => [definition.name, new SloTracker(definition, environments, windowsBySlo.get(definition.name) ?? [])]),
    );
  }

  get size(): number {
    return this.#trackers.size;
  }

  /** The SLO named `name`; with no name, the only one (undefined when there are several or none). */
  get(name?: string): SloTracker | undefined {
    if (name !== undefined) return this.#trackers.get(name);
    return this.#trackers.size === 1 ? this.#trackers.values().next().value : undefined;
  }

  all(): SloTracker[] {
    return [...this.#trackers.values()];
  }

  /** A probe result; `live`: whether its environment is the live one now. */
  record(result: ProbeResult, live: boolean): void {
    for (const tracker of this.#trackers.values()) tracker.record(result, live);
  }

  /** Bytes of counters held by every SLO. */
  get bytes(): number {
    let bytes = 0;
    for (const tracker of this.#trackers.values()) bytes += tracker.bytes;
    return bytes;
  }

  save(): Record<string, SloState> {
    const out: Record<string, SloState> = {};
    for (const [name, tracker] of this.#trackers) out[name] = tracker.save();
    return out;
  }

  /** Put back what `save` returned, as of `now` (CountWindow.restore). */
  restore(saved: unknown, now: number): void {
    if (saved === null || typeof saved !== 'object') return;
    for (const [name, state] of Object.entries(saved as Record<string, SloState>)) {
      if (state && typeof state === 'object') this.#trackers.get(name)?.restore(state, now);
    }
  }
}

/** An SLO as the state and metrics show it. */
export interface SloStatus {
  name: string;
  objective: number;
  periodMs: number;
  /** Of the service (every environment's live time), over the period; null before any probe. */
  budgetRemaining: number | null;
  /** Per environment and window length (ms): its counts and burn rate (null while empty). */
  environments: Record<string, { windowMs: number; total: number; bad: number; coverage: number; burnRate: number | null }[]>;
}

/** Every SLO's figures as of `at`. */
export function sloStatus(book: SloBook, environments: readonly string[], at: number): SloStatus[] {
  return book.all().map((tracker) => {
    const envs: SloStatus['environments'] = {};
    for (const env of environments) {
      envs[env] = tracker.windowsMs.map((windowMs) => {
        const counts = tracker.window(env, windowMs, at)!;
        return { windowMs, ...counts, burnRate: tracker.burnRate(counts) ?? null };
      });
    }
    const { name, objective, periodMs } = tracker.definition;
    return { name, objective, periodMs, budgetRemaining: tracker.budgetRemaining(at) ?? null, environments: envs };
  });
}

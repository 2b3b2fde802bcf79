/**
 * Sheds probe ticks while the agent itself is the bottleneck, so that an overload passes instead
 * of feeding on itself.
 *
 * Why (issue 18's twenty-second round): past what one event loop serves, scheduled probes queued
 * behind the dispatcher's connections and waited for our own loop, not for their targets. With
 * 10,000 series at 1 s on 2 cores the queue held 3,000–9,000 probes and each waited 0.6–1.9 s.
 * Every queued probe's objects outlived the young generation, the collections that followed took
 * a quarter of the loop, and the loop fell further behind. An agent that serves 10,000 probes a
 * second at 70 µs each stayed at 8,000 a second at 140 µs, with its loop fully busy (utilization
 * 1.0). Its latencies were our backlog, which latency rules would have read as the targets'.
 *
 * Rule: a scheduled tick is shed (recorded as a skipped tick) when the loop was saturated over the
 * last sample (utilization at least SATURATED) and its origin already has `allowed` probes in
 * flight. `allowed` starts at the dispatcher's connections per origin (a probe beyond those would
 * only wait in the queue) and adapts to what the loop keeps up with: halved at each saturated
 * sample, down to FLOOR, and grown back by a sixteenth of the connections at each sample that is
 * not. Fewer probes in flight spend less time waiting for the loop, so fewer outlive the young
 * generation: with the connections alone as the limit, two runs in four at 10,000 series stayed
 * behind; halving, none did (docs/scale/HISTORY.md, twenty-second round).
 *
 * A slow or hung target does not saturate the loop (the agent waits on its sockets), so its
 * probes are not shed and each still times out on its own deadline. Confirmation re-runs are never
 * shed (they are rate-capped already, and they are how a change is confirmed).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** Loop utilization over a sample at or above which the agent is the bottleneck. */
export const SATURATED = 0.95;

/** How often the loop's utilization is sampled (ms): each sample covers the time since the last. */
export const SAMPLE_MS = 250;

/** `allowed` never goes below this (nor above the connections): a small config is never held back. */
export const FLOOR = 8;

/** An episode of shedding ends once nothing has been shed for this long (ms); then it is logged. */
const EPISODE_QUIET_MS = 10_000;

/** The loop's utilization (0..1) since the previous call: by default Node's event-loop utilization. */
export type UtilizationSource = () => number;

export function loopUtilization(): UtilizationSource {
  let last = performance.eventLoopUtilization();
  return () => {
    const next = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(next, last);
    last = next;
    return utilization;
  };
}

export class LoadShedder {
  /** Probes in flight to each origin (every probe the pipeline runs, confirmations included). */
  readonly #inFlight = new Map<string, number>();
  /** The dispatcher's connections per origin: the most `#allowed` grows to. */
  readonly #limit: number;
  readonly #floor: number;
  readonly #step: number;
  /** Probes in flight per origin past which a tick is shed while the loop is saturated. */
  #allowed: number;
  readonly #utilization: UtilizationSource;
  readonly #now: () => number;
  readonly #logger: Logger;
  #sampledAt: number;
  #saturated = false;
  /** The episode of shedding under way: when it began, ticks shed, the last shed. */
  #episode: { since: number; shed: number; lastShed: number; busiest: number } | undefined;

  /**
   * `limit`: the dispatcher's connections per origin. `now` is a monotonic clock in ms
   * (performance.now by default); `utilization` reads the loop (loopUtilization by default).
   */
  constructor(options: { limit: number; logger: Logger; utilization?: UtilizationSource; now?: () => number }) {
    this.#limit = options.limit;
    this.#allowed = options.limit;
    this.#floor = Math.min(FLOOR, options.limit);
    this.#step = Math.max(1, Math.ceil(options.limit / 16));
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#utilization = options.utilization ?? loopUtilization();
    this.#sampledAt = this.#now();
  }

  /**
   * Whether a probe to `origin` starts now. It is counted in flight until `release(origin)`.
   * A confirmation re-run (`shed: false`) always starts.
   */
  admit(origin: string, shed = true): boolean {
    const inFlight = this.#inFlight.get(origin) ?? 0;
    if (this.#episode !== undefined) this.#endQuietEpisode(this.#now());
    // Sampled while it matters: a tick at the limit, or a limit still growing back.
    const saturated = (inFlight >= this.#allowed || this.#allowed < this.#limit) && this.#sample();
    if (shed && saturated && inFlight >= this.#allowed) {
      this.#noteShed(inFlight);
      return false;
    }
    this.#inFlight.set(origin, inFlight + 1);
    return true;
  }

  release(origin: string): void {
    const inFlight = this.#inFlight.get(origin) ?? 0;
    if (inFlight <= 1) this.#inFlight.delete(origin);
    else this.#inFlight.set(origin, inFlight - 1);
  }

  /** Probes in flight to `origin`. */
  inFlight(origin: string): number {
    return this.#inFlight.get(origin) ?? 0;
  }

  /** Probes in flight per origin past which a tick is shed while the loop is saturated. */
  get allowed(): number {
    return this.#allowed;
  }

  /** Whether the loop was saturated over the latest sample, taking a new one when SAMPLE_MS has passed. */
  #sample(): boolean {
    const now = this.#now();
    if (now - this.#sampledAt >= SAMPLE_MS) {
      this.#sampledAt = now;
      this.#saturated = this.#utilization() >= SATURATED;
      this.#allowed = this.#saturated ? Math.max(this.#floor, Math.floor(this.#allowed / 2)) : Math.min(this.#limit, this.#allowed + this.#step);
    }
    return this.#saturated;
  }

  #noteShed(inFlight: number): void {
    const now = this.#now();
    const episode = this.#episode;
    if (episode) {
      episode.shed++;
      episode.lastShed = now;
      episode.busiest = Math.max(episode.busiest, inFlight);
      return;
    }
    this.#episode = { since: now, shed: 1, lastShed: now, busiest: inFlight };
    this.#logger.warn(
      { allowed: this.#allowed, connections: this.#limit },
      `the agent's event loop is saturated: probe ticks are skipped while an origin has ${this.#allowed} probes in flight (fewer while it stays saturated, ` +
        `back up to ${this.#limit} as it catches up; counted in greenlight_probes_total{result="skipped"}); probe fewer series, less often, or give the agent more CPU`,
    );
  }

  /** An episode nothing was shed in for EPISODE_QUIET_MS is over: say what it cost. */
  #endQuietEpisode(now: number): void {
    const episode = this.#episode;
    if (!episode || now - episode.lastShed < EPISODE_QUIET_MS) return;
    this.#episode = undefined;
    const seconds = Math.round((episode.lastShed - episode.since) / 1_000);
    this.#logger.warn(
      { shed: episode.shed, seconds, busiest: episode.busiest },
      `the agent caught up: ${episode.shed} probe ticks were skipped over ${seconds} s while its event loop was saturated`,
    );
  }
}

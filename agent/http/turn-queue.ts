/**
 * Work that serves clients in bulk — replaying the journal to stream clients, reading the history
 * for GET /api/v1/events — runs in slices: a caller hands `run()` one bounded slice (one page),
 * the queue runs it in a later turn of the event loop and resolves with its result, and the caller
 * hands over the next. Two rules keep that work from ever delaying a probe or a decision:
 *
 * - One slice per turn of the event loop, for all callers together, first come first served.
 *   Between two slices the loop runs its timers (probe starts, `for` durations, cooldowns) and its
 *   I/O (probe answers, requests): however many clients read at once, a probe waits for one slice
 *   at most.
 * - Slices take at most DUTY of the time (a token bucket: BURST_MS of slices back to back, then
 *   a pause), so the process sleeps between them. A process that never sleeps is what the kernel
 *   deprioritizes on a busy machine, and what a container's CPU quota throttles: a probe's answer
 *   would then wait for the scheduler instead of for one slice. It also bounds how fast bulk
 *   reading makes garbage, so how much of it a collection finds.
 *
 * What the clients get is what is left: on this machine, some 60,000-80,000 events a second
 * together (a quarter of the time; at half, about twice that, for more garbage and, measured on
 * a busy machine, no better for the probes).
 */

/** The share of time slices may take, over any stretch longer than a burst. */
const DUTY = 0.25;
/** Slices may run back to back for this long before the first pause. */
const BURST_MS = 10;

interface Waiting {
  slice: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class TurnQueue {
  #waiting: Waiting[] = [];
  #cancelNext: (() => void) | undefined;
  #closed = false;
  #granted = 0;
  /** Token bucket, in milliseconds of slice time. */
  #tokens = BURST_MS;
  #refilledAt = performance.now();

  /** Slices run so far. */
  get granted(): number {
    return this.#granted;
  }

  /**
   * Run `slice` in a later turn of the event loop and resolve with what it returns (a throw
   * rejects); undefined without running it once the queue is closed (the agent is stopping).
   */
  run<T>(slice: () => T): Promise<T | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      this.#waiting.push({ slice, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** Every caller waiting, and every later one, gets undefined. */
  close(): void {
    this.#closed = true;
    this.#cancelNext?.();
    this.#cancelNext = undefined;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const { resolve } of waiting) resolve(undefined);
  }

  #schedule(): void {
    if (this.#cancelNext !== undefined || this.#waiting.length === 0 || this.#closed) return;
    this.#refill(performance.now());
    if (this.#tokens >= 0) {
      const next = setImmediate(() => this.#grant());
      this.#cancelNext = () => clearImmediate(next);
    } else {
      // After the pause, the slice still runs as an immediate: granted in the timers phase, it
      // could follow the one before (in the last check phase) with no poll for I/O between.
      const pause = setTimeout(() => {
        const next = setImmediate(() => this.#grant());
        this.#cancelNext = () => clearImmediate(next);
      }, -this.#tokens / DUTY);
      this.#cancelNext = () => clearTimeout(pause);
    }
  }

  #grant(): void {
    this.#cancelNext = undefined;
    const waiting = this.#waiting.shift();
    if (waiting) {
      this.#granted++;
      const start = performance.now();
      try {
        waiting.resolve(waiting.slice());
      } catch (error) {
        waiting.reject(error);
      }
      const end = performance.now();
      this.#refill(end);
      this.#tokens -= end - start;
    }
    // Queued from inside an immediate: Node runs it in the next turn at the earliest.
    this.#schedule();
  }

  #refill(now: number): void {
    this.#tokens = Math.min(BURST_MS, this.#tokens + (now - this.#refilledAt) * DUTY);
    this.#refilledAt = now;
  }
}

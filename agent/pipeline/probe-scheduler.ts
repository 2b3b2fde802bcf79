/**
 * Runs jobs on `every` intervals (jittered, phase-spread) or cron expressions (node-cron, in a
 * time zone). A job never overlaps itself: a tick that finds the previous run still in flight
 * is reported through onSkipped instead of starting another. A tick that comes late because the
 * loop was held up is planned again within the next second, as at start, rather than run with
 * every other late one in a burst; one a whole interval late is also reported through onSkipped.
 * A tick planned again runs when it comes, however late (short of an interval).
 *
 * Confirmation re-runs: a run may ask for a quick re-run (it resolves to 'failure' or
 * 'recovery', what it wants confirmed). The scheduler then runs the job again `spacingMs` later,
 * marked as the n-th confirmation, up to `count` times while each re-run asks to go on, and
 * never more than `maxPerSecond` re-runs per second over the jobs of one group (one environment:
 * the rate cap that keeps a struggling app from being hammered). Re-runs never overlap a run of
 * the same job either: a scheduled tick that comes while a re-run is in flight waits for it and
 * then runs (it is owed, not skipped); one that comes while a re-run is waiting takes its place.
 */
import { createTask, type ScheduledTask } from 'node-cron';
import type { Confirmation, ConfirmationKind } from '../../probes/probe-result.js';

/** How a job's confirmation re-runs are paced. */
export interface ConfirmPolicy {
  /** Re-runs at most per confirmation run. */
  count: number;
  spacingMs: number;
  /** Re-runs per second over all jobs of `group`. */
  maxPerSecond: number;
  /** Jobs that share the rate cap (the agent: the environment's name). */
  group: string;
}

export interface ScheduledJob {
  /** For logs: `health@blue`. */
  key: string;
  /** `every` in ms, more than 0 (the config's are at least 10ms): ticks are planned that far apart. */
  schedule: { every: number; jitter: number } | { cron: string; timezone: string };
  /**
   * One run; `confirmation` is set on a re-run. Resolves to what the run wants confirmed
   * (a re-run follows when the job has a `confirm` policy), or nothing.
   */
  run: (confirmation?: Confirmation) => Promise<ConfirmationKind | undefined | void>;
  /** A tick that did not run: the previous run was still in flight, or the tick came a whole interval late. */
  onSkipped: (why: SkipReason) => void;
  confirm?: ConfirmPolicy | undefined;
  /** A re-run the rate cap withheld. */
  onCapped?: () => void;
}

/** Why a tick did not run. */
export type SkipReason = 'in-flight' | 'late';

interface JobState {
  job: ScheduledJob;
  inFlight: Promise<void> | undefined;
  /** The run in flight is a confirmation re-run. */
  inFlightConfirming: boolean;
  /** A scheduled tick came while a re-run was in flight: it runs as soon as that ends. */
  owed: boolean;
  /** The next re-run, waiting out its spacing. */
  confirmTimer: NodeJS.Timeout | undefined;
  task: ScheduledTask | undefined;
  /** Planned time of the next interval tick (ms, the scheduler's clock), so ticks do not drift. */
  planned: number;
  /** Removed from the scheduler: its timers that still fire do nothing (a flag, not a search of thousands of jobs per tick). */
  removed: boolean;
  /** A tick found the previous run in flight and looks again after the loop's next poll. */
  rechecking: boolean;
  /**
   * The planned tick is one that came late and was planned again (#spread): it runs when it
   * comes, however late, unless a whole interval late. Planned again each time, a series whose
   * loop stays busy (a flood of requests) never ran, and nothing said so.
   */
  replanned: boolean;
}

/**
 * How late a tick may run at the moment it comes up: a tenth of its interval, at least 100 ms,
 * and never more than the interval. Later ticks are spread over the next second (#spread): after
 * the loop was held up they are many at once.
 */
function lateSpreadMs(every: number): number {
  return Math.min(every, Math.max(100, every / 10));
}

/**
 * Ticks wait for a shared wake-up: the timer is set on the next multiple of the grain at or after
 * the earliest planned tick, and every tick planned by then starts in that wake-up. Each wake-up
 * of the process costs more than the probes it starts (a timer callback, an epoll return, a
 * context switch; the answers of probes started together are read together too): at 1,000
 * series, with a wake-up about every probe, epoll and the switches back in were a fifth of the
 * main thread, and the grain took 12-36 % off the CPU per probe (issue 18's tenth
 * round). A tick is late by less than the grain, which is 10 ms, or a twentieth of the shortest
 * interval when that is less, so a 100 ms probe is never more than 5 ms late.
 */
const WAKE_GRAIN_MS = 10;

/** The grain a job allows: a cron job, any. */
function grainOf(job: ScheduledJob): number {
  return 'every' in job.schedule ? Math.min(WAKE_GRAIN_MS, job.schedule.every / 20) : WAKE_GRAIN_MS;
}

/** Re-runs sent in the last second per group, oldest first (at most maxPerSecond entries). */
type RateLog = number[];

export class ProbeScheduler {
  readonly #jobs: JobState[] = [];
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #onError: (job: ScheduledJob, error: unknown) => void;
  readonly #rates = new Map<string, RateLog>();
  /**
   * The interval jobs by planned time (a binary min-heap), and the one timer set for the earliest.
   * One Node timer for every series instead of one per series per tick: each of those lived its
   * whole interval and was then garbage for the old generation (issue 18). Jobs due within the
   * same grain start in one wake-up (WAKE_GRAIN_MS).
   */
  readonly #due: JobState[] = [];
  #wake: { at: number; timer: NodeJS.Timeout } | undefined;
  /** The wake-up grain for the jobs there are: the least of their grainOf. */
  #grain = WAKE_GRAIN_MS;
  #running = false;

  /** `now` plans the ticks (the agent's clock, steady as timers are); `random` draws the jitter. */
  constructor(options: { random?: () => number; now: () => number; onError: (job: ScheduledJob, error: unknown) => void }) {
    this.#now = options.now;
    this.#random = options.random ?? Math.random;
    this.#onError = options.onError;
  }

  add(job: ScheduledJob): void {
    const state: JobState = {
      job,
      inFlight: undefined,
      inFlightConfirming: false,
      owed: false,
      confirmTimer: undefined,
      task: undefined,
      planned: 0,
      removed: false,
      rechecking: false,
      replanned: false,
    };
    this.#jobs.push(state);
    this.#grain = Math.min(this.#grain, grainOf(job));
    if (this.#running) this.#startJob(state);
  }

  /**
   * Stop the schedules of `keys` and wait for their runs in flight (a reload dropping probes).
   * One pass over the jobs however many go: a reload may drop thousands.
   */
  async remove(keys: Iterable<string>): Promise<void> {
    const gone = new Set(keys);
    const removed: JobState[] = [];
    let kept = 0;
    for (const state of this.#jobs) {
      if (gone.has(state.job.key)) removed.push(state);
      else this.#jobs[kept++] = state;
    }
    this.#jobs.length = kept;
    this.#grain = this.#jobs.reduce((grain, { job }) => Math.min(grain, grainOf(job)), WAKE_GRAIN_MS);
    for (const state of removed) {
      state.removed = true; // left in the heap: skipped when it comes up
      clearTimeout(state.confirmTimer);
    }
    await Promise.all(
      removed.map(async (state) => {
        await state.task?.destroy();
        await state.inFlight;
        clearTimeout(state.confirmTimer);
      }),
    );
  }

  start(): void {
    this.#running = true;
    for (const state of this.#jobs) this.#startJob(state);
  }

  /** Stop all schedules, then wait for runs in flight (the caller aborts them to be quick). */
  async close(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#wake?.timer);
    this.#wake = undefined;
    this.#due.length = 0;
    for (const state of this.#jobs) {
      clearTimeout(state.confirmTimer);
      await state.task?.destroy();
    }
    await Promise.allSettled(this.#jobs.map((state) => state.inFlight));
  }

  #startJob(state: JobState): void {
    const { schedule } = state.job;
    if ('cron' in schedule) {
      state.task = createTask(schedule.cron, () => this.#tick(state), { timezone: schedule.timezone, name: state.job.key });
      void state.task.start();
      return;
    }
    this.#spread(state, this.#now());
    this.#plan(state);
  }

  /** Start every interval job that is due, plan each one's next tick, and set the timer for the next. */
  #onWake(): void {
    // The timer fired for `at`: those jobs are due even when the injected clock stands still (a
    // frozen test clock), so time is the later of the clock and the timer's own.
    const now = Math.max(this.#now(), this.#wake?.at ?? Number.NEGATIVE_INFINITY);
    this.#wake = undefined;
    if (!this.#running) return;
    while (this.#due.length > 0 && this.#due[0]!.planned <= now) {
      const state = popHeap(this.#due);
      if (state.removed) continue;
      const { every, jitter } = state.job.schedule as { every: number; jitter: number };
      const late = now - state.planned;
      if (late < lateSpreadMs(every) || (state.replanned && late < every)) {
        state.replanned = false;
        this.#tick(state);
        const offset = (this.#random() * 2 - 1) * jitter * every;
        const next = state.planned + every + offset;
        if (next <= now) this.#spread(state, now);
        // The clock went back (or the plan is far off): resume an interval from now.
        else state.planned = next - now > every * 2 ? now + every : next;
      } else {
        // The loop was held up (a stopped process, a reload of thousands of series): running
        // every late tick now would start the series in one burst, and from then on each
        // interval would be one burst. A late tick is spread over the next second instead, as
        // at start; one a whole interval late is dropped (its next is as soon). Once only: the
        // tick planned again runs when it comes, or a loop that stays busy starves the series.
        if (late >= every) state.job.onSkipped('late');
        this.#spread(state, now);
        state.replanned = true;
      }
      pushHeap(this.#due, state);
    }
    this.#arm(now);
  }

  /**
   * Plan a job's tick somewhere in the next interval, or the next second if that is shorter: as
   * it starts, and when a pause made its tick late (lateSpreadMs). Many series then do not fire
   * in one burst, and a round (the first, or the first after the pause) still completes quickly.
   */
  #spread(state: JobState, now: number): void {
    const { every } = state.job.schedule as { every: number };
    state.planned = now + this.#random() * Math.min(every, 1_000);
  }

  #plan(state: JobState): void {
    pushHeap(this.#due, state);
    this.#arm();
  }

  /**
   * The timer for the earliest planned job, on the grain at or after it (WAKE_GRAIN_MS), unless
   * one as early is set already; `now` is the time it counts from.
   */
  #arm(now = this.#now()): void {
    const next = this.#due[0];
    if (next === undefined || !this.#running) return;
    const at = Math.ceil(next.planned / this.#grain) * this.#grain;
    if (this.#wake !== undefined) {
      if (this.#wake.at <= at) return;
      clearTimeout(this.#wake.timer);
    }
    const delay = Math.max(0, Math.ceil(at - now)); // never before its time: timers may round down
    this.#wake = { at, timer: setTimeout(this.#wakeUp, delay) };
  }

  readonly #wakeUp = () => this.#onWake();

  #tick(state: JobState, confirmation?: Confirmation): void {
    if (!this.#running || state.removed) return;
    if (state.inFlight) {
      if (confirmation === undefined && state.inFlightConfirming) state.owed = true;
      else if (confirmation === undefined && !state.rechecking) this.#tickAfterPoll(state);
      else state.job.onSkipped('in-flight');
      return;
    }
    if (confirmation === undefined && state.confirmTimer) {
      // The scheduled probe is as fresh a look as the re-probe would have been: it takes its place.
      clearTimeout(state.confirmTimer);
      state.confirmTimer = undefined;
    }
    state.inFlightConfirming = confirmation !== undefined;
    const settle = (wanted: ConfirmationKind | undefined | void): void => {
      state.inFlight = undefined;
      state.inFlightConfirming = false;
      if (state.owed) {
        state.owed = false;
        this.#tick(state);
      } else if (wanted) {
        this.#confirmLater(state, confirmation, wanted);
      }
    };
    // One promise a run (not a catch and a then): thousands of runs a second.
    state.inFlight = state.job.run(confirmation).then(settle, (error: unknown) => {
      this.#onError(state.job, error);
      settle(undefined);
    });
  }

  /**
   * A scheduled tick found the previous run in flight. Timers run before the loop polls for I/O,
   * so when the loop was held up the run's answer may be waiting in its socket already (the
   * probe's own deadline waits for that poll too, http-probe.ts): look again after the poll, and
   * skip the tick only if the run is still in flight then.
   */
  #tickAfterPoll(state: JobState): void {
    state.rechecking = true;
    setImmediate(() => {
      state.rechecking = false;
      if (!this.#running || state.removed) return;
      if (state.inFlight) state.job.onSkipped('in-flight');
      else this.#tick(state);
    });
  }

  /** Plan the next re-run of a confirmation run, if the policy has one left. */
  #confirmLater(state: JobState, current: Confirmation | undefined, wanted: ConfirmationKind): void {
    const policy = state.job.confirm;
    if (!policy || !this.#running || state.removed) return;
    // A run confirms one thing; a re-run that disagrees has ended it.
    if (current !== undefined && current.of !== wanted) return;
    const attempt = (current?.attempt ?? 0) + 1;
    if (attempt > policy.count) return;
    state.confirmTimer = setTimeout(() => {
      state.confirmTimer = undefined;
      if (!this.#running) return;
      if (!this.#allow(policy, this.#now())) {
        state.job.onCapped?.();
        return;
      }
      this.#tick(state, { of: wanted, attempt });
    }, policy.spacingMs);
  }

  /** Whether the group may send one more re-run at `now`; counts it when so. */
  #allow(policy: ConfirmPolicy, now: number): boolean {
    let log = this.#rates.get(policy.group);
    if (!log) this.#rates.set(policy.group, (log = []));
    while (log.length > 0 && log[0]! <= now - 1_000) log.shift();
    if (log.length >= policy.maxPerSecond) return false;
    log.push(now);
    return true;
  }
}

/** A binary min-heap of jobs on `planned`, in an array. */
function pushHeap(heap: JobState[], state: JobState): void {
  heap.push(state);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.planned <= state.planned) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = state;
}

function popHeap(heap: JobState[]): JobState {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.planned < heap[left]!.planned ? right : left;
      if (heap[child]!.planned >= last.planned) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
  return top;
}

/**
 * Runs jobs on `every` intervals (jittered, phase-spread) or cron expressions (node-cron, in a
 * time zone). A job never overlaps itself: a tick that finds the previous run still in flight
 * is reported through onSkipped instead of starting another.
 */
import { createTask, type ScheduledTask } from 'node-cron';

export interface ScheduledJob {
  /** For logs: `health@blue`. */
  key: string;
  schedule: { every: number; jitter: number } | { cron: string; timezone: string };
  run: () => Promise<void>;
  onSkipped: () => void;
}

interface JobState {
  job: ScheduledJob;
  inFlight: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  task: ScheduledTask | undefined;
  /** Planned time of the next interval tick (ms, Date.now clock), so ticks do not drift. */
  planned: number;
}

export class ProbeScheduler {
  readonly #jobs: JobState[] = [];
  readonly #random: () => number;
  readonly #onError: (job: ScheduledJob, error: unknown) => void;
  #running = false;

  constructor(options: { random?: () => number; onError: (job: ScheduledJob, error: unknown) => void }) {
    this.#random = options.random ?? Math.random;
    this.#onError = options.onError;
  }

  add(job: ScheduledJob): void {
    const state: JobState = { job, inFlight: undefined, timer: undefined, task: undefined, planned: 0 };
    this.#jobs.push(state);
    if (this.#running) this.#startJob(state);
  }

  /** Stop a job's schedule and wait for its run in flight (a reload dropping a probe). */
  async remove(key: string): Promise<void> {
    const index = this.#jobs.findIndex((state) => state.job.key === key);
    if (index < 0) return;
    const [state] = this.#jobs.splice(index, 1);
    clearTimeout(state!.timer);
    await state!.task?.destroy();
    await state!.inFlight;
  }

  start(): void {
    this.#running = true;
    for (const state of this.#jobs) this.#startJob(state);
  }

  /** Stop all schedules, then wait for runs in flight (the caller aborts them to be quick). */
  async close(): Promise<void> {
    this.#running = false;
    for (const state of this.#jobs) {
      clearTimeout(state.timer);
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
    // Spread first ticks over (at most) a second, so many series do not fire in one burst and
    // the first round still completes quickly.
    const firstDelay = this.#random() * Math.min(schedule.every, 1_000);
    state.planned = Date.now() + firstDelay;
    state.timer = setTimeout(() => this.#onInterval(state), firstDelay);
  }

  #onInterval(state: JobState): void {
    if (!this.#running || !this.#jobs.includes(state)) return;
    this.#tick(state);
    const { every, jitter } = state.job.schedule as { every: number; jitter: number };
    const offset = (this.#random() * 2 - 1) * jitter * every;
    const now = Date.now();
    state.planned = Math.max(now, state.planned + every + offset);
    // After a long pause (a stopped process, a blocked loop) resume from now instead of catching up.
    if (state.planned - now > every * 2) state.planned = now + every;
    state.timer = setTimeout(() => this.#onInterval(state), state.planned - now);
  }

  #tick(state: JobState): void {
    if (!this.#running) return;
    if (state.inFlight) {
      state.job.onSkipped();
      return;
    }
    const run = state.job
      .run()
      .catch((error: unknown) => this.#onError(state.job, error))
      .finally(() => {
        state.inFlight = undefined;
      });
    state.inFlight = run;
  }
}

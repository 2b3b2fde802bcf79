/**
 * A lock with one holder at a time, taken in the order asked (first come, first served). The
 * agent holds it for every traffic switch (from the target's fresh verification until the new
 * live environment is recorded) and for every reload (from reading the file until the new
 * config is applied): a switch never uses an adapter a reload is replacing, and a reload never
 * swaps one under a switch. Whoever asks while it is held waits; nothing is refused.
 */
export class Exclusive {
  #tail: Promise<unknown> = Promise.resolve();
  #holder: string | undefined;
  #waiting = 0;

  /** What holds the lock now (`switch blue → green`, `reload (SIGHUP)`), if anything. */
  get holder(): string | undefined {
    return this.#holder;
  }

  /** How many are waiting for it. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Run `task` once every earlier holder is done; the lock is released however it ends. */
  run<T>(holder: string, task: () => Promise<T>): Promise<T> {
    this.#waiting++;
    const run = this.#tail.then(async () => {
      this.#waiting--;
      this.#holder = holder;
      try {
        return await task();
      } finally {
        this.#holder = undefined;
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

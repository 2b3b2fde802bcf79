/**
 * A bound enforced at start and then every `every` ms, in slices: one slice per turn of the event
 * loop, so a large backlog (a first start with retention, a lowered bound) never makes probes or
 * the API wait behind it. Rounds never overlap: a round still slicing when the next is due is left
 * to finish. What a round does is the caller's (`round()`): the journal's and the rollups'
 * retention both run on this.
 */

/** One round of a sweep. */
export interface SweepRound {
  /** Do one slice of work; true when more is left for the next turn of the event loop. */
  slice(): boolean;
  /** After the last slice: report what the round did. */
  finish(): void;
  /** A slice threw: report it; the next round tries again (a failing disk must not stop greenlight). */
  failed(error: unknown): void;
}

export class SlicedSweep {
  readonly #every: number;
  readonly #round: () => SweepRound;
  #timer: NodeJS.Timeout | undefined;
  #slice: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(every: number, round: () => SweepRound) {
    this.#every = every;
    this.#round = round;
  }

  start(): void {
    this.#closed = false;
    this.run();
    this.#timer = setInterval(() => this.run(), this.#every);
    this.#timer.unref();
  }

  /** Run a round now (the first slice synchronously); what one slice cannot finish goes on in the next turns of the event loop. */
  run(): void {
    if (this.#slice !== undefined || this.#closed) return;
    const round = this.#round();
    const step = () => {
      this.#slice = undefined;
      if (this.#closed) return;
      try {
        if (round.slice()) {
          this.#slice = setImmediate(step);
          return;
        }
        round.finish();
      } catch (error) {
        round.failed(error);
      }
    };
    step();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#slice !== undefined) clearImmediate(this.#slice);
    this.#slice = undefined;
  }
}

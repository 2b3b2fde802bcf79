/**
 * Says in the log when the wall clock has stepped away from greenlight's clock
 * (probes/steady-clock.ts), and when greenlight's clock has taken the step in. Until then the
 * events' times, which greenlight's clock stamps, differ from the log's, which the wall clock
 * stamps: the operator reading both needs to know by how much, and why.
 */
import type { Logger } from 'pino';
import { SLEW } from '../../probes/steady-clock.js';

/** A gap smaller than this is not reported (a step of NTP's is usually far larger, a slew never shows). */
const REPORT_MS = 1_000;
const CHECK_EVERY_MS = 5_000;

export class ClockWatch {
  readonly #steady: () => number;
  readonly #wall: () => number;
  readonly #logger: Logger;
  /** The gap last reported (wall minus greenlight's clock); undefined while in step. */
  #reported: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { steady: () => number; wall?: () => number; logger: Logger }) {
    this.#steady = options.steady;
    this.#wall = options.wall ?? (() => Date.now());
    this.#logger = options.logger;
  }

  start(): void {
    this.#timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Compare the two clocks now; logs a step when one is new, and the catch-up once it is done. */
  check(): void {
    const gap = this.#wall() - this.#steady();
    if (Math.abs(gap) < REPORT_MS) {
      if (this.#reported !== undefined) {
        this.#logger.info({ gapMs: gap }, "greenlight's clock has taken in the wall clock's step: event times and log times agree again");
        this.#reported = undefined;
      }
      return;
    }
    // Reported once per step: again only when the gap grows (another step), not as it shrinks.
    if (this.#reported !== undefined && Math.sign(gap) === Math.sign(this.#reported) && Math.abs(gap) <= Math.abs(this.#reported) + REPORT_MS) return;
    this.#reported = gap;
    const seconds = Math.round(Math.abs(gap) / 1_000);
    const takes = formatSpan(Math.abs(gap) / SLEW);
    this.#logger.warn(
      { gapMs: gap },
      `the wall clock stepped ${gap < 0 ? 'back' : 'forward'} by about ${seconds} s: greenlight keeps measuring spans (windows, for, settle, cooldown) on its own clock, which takes the step in over about ${takes}; until then event times are ${seconds} s ${gap < 0 ? 'ahead of' : 'behind'} the log's`,
    );
  }
}

function formatSpan(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1_000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

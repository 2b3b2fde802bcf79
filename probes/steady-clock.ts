/**
 * greenlight's clock: wall time (ms since the epoch) that never steps.
 *
 * Everything the agent judges is a span of this clock: a window's buckets, a rule's `for`, how
 * long an environment has passed its probes before traffic may return (`settle`), a rollback's
 * cooldown, how fresh a reading is. On the wall clock (`Date.now`) a step corrupts each of them.
 * Stepped back an hour (an NTP correction, `date -s`, a VM restored), new samples look older than
 * the windows and are dropped, so no error-ratio rule can fire for that hour, and readings taken
 * before the step look newer than any taken after it. Stepped forward, every `for`, settle and
 * cooldown under way is over at once.
 *
 * So the clock runs on the monotonic clock (`performance.now`, which NTP slews but nothing
 * steps), starting from the wall time of its first reading. When the wall clock is found to have
 * stepped, the clock moves towards it by at most `SLEW` of the time that passes: its spans stay
 * within 5 % of true, and a step of a minute is taken in over 20. It never goes back.
 */

/** The most the clock gains or loses on the monotonic clock while it catches up a step: 1 ms in 20. */
export const SLEW = 1 / 20;

export interface ClockSources {
  /** Wall time, ms since the epoch (Date.now). */
  wall(): number;
  /** A clock that never steps, ms from any origin (performance.now). */
  monotonic(): number;
}

const SYSTEM: ClockSources = { wall: () => Date.now(), monotonic: () => performance.now() };

/** A steady clock on these sources (tests script them; an agent makes one on the system's clocks). */
export function steadyClock(sources: ClockSources = SYSTEM): () => number {
  let last = sources.monotonic();
  // What to add to the monotonic clock to read wall time; it follows the wall clock at SLEW.
  let offset = sources.wall() - last;
  return () => {
    const monotonic = sources.monotonic();
    const elapsed = monotonic - last;
    if (elapsed > 0) {
      last = monotonic;
      const behind = sources.wall() - monotonic - offset;
      const most = elapsed * SLEW;
      offset += behind > most ? most : behind < -most ? -most : behind;
    }
    // Whole milliseconds, as Date.now gives: timestamps are stored and compared as integers.
    return Math.floor(last + offset);
  };
}

/**
 * Ends the probes in flight of one owner (a series, a promotion's probe rounds, a switch's
 * verification) when that owner stops: shutdown, a reload that drops the series, an aborted action.
 *
 * Why not an AbortSignal per probe: each probe then added and removed a listener on its series'
 * signal, which lives as long as the agent; at 4,000 series that churn was about 3 % of the
 * agent's CPU (issue 18). A canceller is the owner's, made once, and a probe joins and leaves a
 * set. An owner whose stop is an AbortSignal follows it with {@link ProbeCanceller.following}.
 *
 * Invariants:
 * - Once cancelled, always cancelled: a probe started afterwards ends at once.
 * - `cancel()` ends every probe in flight exactly once (a probe leaves the set as it settles).
 */
export interface Cancellable {
  cut(why: 'shutdown'): void;
}

export class ProbeCanceller {
  /**
   * A series has at most one probe in flight, so the first probe is held in a field and only the
   * others go to the set: a set's add and delete of a new object per probe (its identity hash, the
   * table's holes and rehashes) were about 1 % of the agent's CPU at 10,000 series (issue 18).
   */
  #first: Cancellable | undefined;
  readonly #others = new Set<Cancellable>();
  #cancelled = false;
  #unfollow: (() => void) | undefined;

  /**
   * A canceller that cancels when `signal` aborts (at once when it already has). Call `release()`
   * when its probes are done, so a long-lived signal does not keep its listener.
   */
  static following(signal: AbortSignal): ProbeCanceller {
    const canceller = new ProbeCanceller();
    if (signal.aborted) canceller.cancel();
    else {
      const onAbort = () => canceller.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      canceller.#unfollow = () => signal.removeEventListener('abort', onAbort);
    }
    return canceller;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** End every probe in flight, and every one started from now on. */
  cancel(): void {
    this.#cancelled = true;
    this.release();
    const calls = [...(this.#first ? [this.#first] : []), ...this.#others];
    this.#first = undefined;
    this.#others.clear();
    for (const call of calls) call.cut('shutdown');
  }

  /** Stop following the signal (see {@link ProbeCanceller.following}); probes in flight stay tracked. */
  release(): void {
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  /** A probe starts under this canceller; false when it is cancelled (the probe ends at once). */
  join(call: Cancellable): boolean {
    if (this.#cancelled) return false;
    if (this.#first === undefined) this.#first = call;
    else if (call !== this.#first) this.#others.add(call);
    return true;
  }

  /** A probe settled. */
  leave(call: Cancellable): void {
    if (this.#first === call) this.#first = undefined;
    else this.#others.delete(call);
  }
}

/**
 * One rule's state machine: inactive → pending → firing → resolved (→ inactive). Pure: the
 * caller passes whether the condition holds, how many samples backed it, and the time.
 *
 *   pending   the condition holds, but not yet for `for`, or on fewer than `minSamples` probes
 *   firing    it held for `for` on enough samples; stays firing until it has not held for
 *             `keepFiringFor`
 *   resolved  a firing rule stopped; it cannot go pending again until `cooldown` has passed
 */

export type RuleStateName = 'inactive' | 'pending' | 'firing';

export type Transition =
  | { to: 'pending' }
  | { to: 'firing'; incident: number; heldForMs: number }
  | { to: 'resolved'; incident: number; firedForMs: number }
  /** Pending that cleared before it fired. */
  | { to: 'cleared'; pendingForMs: number };

export interface RuleTiming {
  forMs: number;
  keepFiringForMs: number;
  minSamples: number;
  cooldownMs: number;
}

export class RuleState {
  state: RuleStateName = 'inactive';
  /** Incidents so far; the current (or last) one's number. */
  incident = 0;
  pendingSince: number | undefined;
  firingSince: number | undefined;
  lastHeldAt: number | undefined;
  cooldownUntil = 0;
  /** A resumed incident does not resolve while this is set: its windows start empty after a restart. */
  #resumeHeld = false;
  readonly #timing: RuleTiming;

  constructor(timing: RuleTiming) {
    this.#timing = timing;
  }

  /**
   * Resume a rule that was firing before a restart, without a new transition (its actions already
   * ran). Its windows start empty, so a condition that does not hold yet says nothing (ten
   * consecutive failures take ten probes to see again): it cannot resolve until the caller, who
   * knows how many results have come in since, calls `releaseResumeHold`.
   */
  resumeFiring(incident: number, firingSince: number, now: number): void {
    this.#resumeHeld = true;
    this.state = 'firing';
    this.incident = incident;
    this.pendingSince = firingSince;
    this.firingSince = firingSince;
    this.lastHeldAt = now;
  }

  /** The windows hold enough fresh results again: a resumed incident may resolve from now on. */
  releaseResumeHold(): void {
    this.#resumeHeld = false;
  }

  /** Forget the cooldown (a promotion's watch starts on a new live environment). */
  clearCooldown(): void {
    this.cooldownUntil = 0;
  }

  /** Advance with one evaluation; returns the transitions it caused, in order. */
  step(holds: boolean, samples: number, now: number): Transition[] {
    const out: Transition[] = [];
    if (this.state === 'inactive') {
      if (!holds || now < this.cooldownUntil) return out;
      this.state = 'pending';
      this.pendingSince = now;
      out.push({ to: 'pending' });
    }
    if (this.state === 'pending') {
      if (!holds) {
        out.push({ to: 'cleared', pendingForMs: now - this.pendingSince! });
        this.state = 'inactive';
        this.pendingSince = undefined;
        return out;
      }
      const heldForMs = now - this.pendingSince!;
      if (heldForMs >= this.#timing.forMs && samples >= this.#timing.minSamples) {
        this.state = 'firing';
        this.incident++;
        this.firingSince = now;
        this.lastHeldAt = now;
        out.push({ to: 'firing', incident: this.incident, heldForMs });
      }
      return out;
    }
    // firing
    if (holds) {
      this.lastHeldAt = now;
      return out;
    }
    if (!this.#resumeHeld && now - this.lastHeldAt! >= this.#timing.keepFiringForMs) {
      out.push({ to: 'resolved', incident: this.incident, firedForMs: now - this.firingSince! });
      this.state = 'inactive';
      this.pendingSince = undefined;
      this.firingSince = undefined;
      this.cooldownUntil = now + this.#timing.cooldownMs;
    }
    return out;
  }
}

/**
 * One rule's state machine: inactive → pending → firing → resolved (→ inactive). Pure: the
 * caller passes whether the condition holds, how many samples backed it, and the time.
 *
 *   pending   the condition holds, but not yet for `for`, or on fewer than `minSamples` probes
 *   firing    it held for `for` on enough samples; stays firing until it has not held for
 *             `keepFiringFor`
 *   resolved  a firing rule stopped
 *
 * An episode (pending or firing) is about one environment: when the environment the rule judges
 * changes (traffic switched, and the rule reads the live one), the episode ends — a pending one
 * clears, a firing one resolves — and the new environment is judged from scratch. So a failure of
 * the environment traffic moved to is a new incident with its own actions, never a continuation
 * of the old one's.
 *
 * Cooldown: the caller starts it when an incident that acted resolves (startCooldown); until it
 * ends the rule does not go pending again on the environment that incident was about. A rule
 * judging another environment is not held back, and clearCooldown ends it at once.
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
  /** The environment the current episode is about (undefined: not told, or inactive). */
  subjectEnv: string | undefined;
  cooldownUntil = 0;
  /** The environment the cooldown is about (the incident's). */
  cooldownEnv: string | undefined;
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
   * knows how many results have come in since, calls `releaseResumeHold`. A `firingSince` later
   * than `now` was recorded before the clock stepped back: the incident has fired since now.
   */
  resumeFiring(incident: number, firingSince: number, now: number, env?: string): void {
    const since = Math.min(firingSince, now);
    this.#resumeHeld = true;
    this.subjectEnv = env;
    this.state = 'firing';
    this.incident = incident;
    this.pendingSince = since;
    this.firingSince = since;
    this.lastHeldAt = now;
  }

  /**
   * Carry a pending episode over to a rule a reload changed: its `for` keeps counting from when
   * the condition began to hold (as Prometheus keeps an alert's activeAt across a rule reload),
   * so editing a description or a line does not put off an owed rollback by a whole `for`. The
   * next evaluation judges the new condition: not holding, the episode clears as usual.
   */
  resumePending(pendingSince: number, now: number, env?: string): void {
    this.state = 'pending';
    this.pendingSince = Math.min(pendingSince, now);
    this.subjectEnv = env;
  }

  /** The windows hold enough fresh results again: a resumed incident may resolve from now on. */
  releaseResumeHold(): void {
    this.#resumeHeld = false;
  }

  /** Hold the rule back on `env` for its cooldown, from `now`. */
  startCooldown(now: number, env: string): void {
    this.cooldownUntil = now + this.#timing.cooldownMs;
    this.cooldownEnv = env;
  }

  /** Forget the cooldown (traffic moved: the live environment is a new subject). */
  clearCooldown(): void {
    this.cooldownUntil = 0;
    this.cooldownEnv = undefined;
  }

  /** Advance with one evaluation of the rule on `env`; returns the transitions it caused, in order. */
  step(holds: boolean, samples: number, now: number, env?: string): Transition[] {
    const out: Transition[] = [];
    if (this.state !== 'inactive' && env !== undefined && this.subjectEnv !== undefined && env !== this.subjectEnv) {
      out.push(
        this.state === 'firing'
          ? { to: 'resolved', incident: this.incident, firedForMs: now - this.firingSince! }
          : { to: 'cleared', pendingForMs: now - this.pendingSince! },
      );
      this.#end();
    }
    if (this.state === 'inactive') {
      if (!holds || (now < this.cooldownUntil && (env === undefined || env === this.cooldownEnv))) return out;
      this.state = 'pending';
      this.pendingSince = now;
      this.subjectEnv = env;
      out.push({ to: 'pending' });
    }
    if (this.state === 'pending') {
      if (!holds) {
        out.push({ to: 'cleared', pendingForMs: now - this.pendingSince! });
        this.#end();
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
      this.#end();
    }
    return out;
  }

  #end(): void {
    this.state = 'inactive';
    this.pendingSince = undefined;
    this.firingSince = undefined;
    this.subjectEnv = undefined;
    this.#resumeHeld = false;
  }
}

/**
 * Traffic adapters move live traffic from one environment to the other: `none` (state only),
 * `webhook`, `command`, `nginx`, `render`. Traffic control calls `switchTo`, one switch at a
 * time (its lock, shared with reloads): an adapter never sees two at once. The adapter does the
 * switch and verifies it, or throws a TrafficError saying what failed.
 */
import { GreenlightError } from '../../config/errors.js';

export interface SwitchRequest {
  from: string;
  to: string;
  /** Why, for the receiving side's logs: `rule live-error-ratio-critical: error ratio 0.42 > 0.1`. */
  reason: string;
  /** The rule that decided, or null for a manual rollback/promotion. */
  rule: string | null;
  /** Stable id of the incident, so a receiver can de-duplicate retries. */
  incident: string;
  /**
   * The leader's epoch (1 for an agent alone): it only grows from one leader to the next, so the
   * traffic layer can refuse a switch carrying a lower token than one it has already taken.
   */
  fencingToken: number;
}

export interface SwitchOutcome {
  /** One line for events and logs: `nginx upstream now 127.0.0.1:8082 (verified)`. */
  detail: string;
  /** Adapter-specific figures for the event's data (attempts, HTTP status, deploy id …). Never secrets. */
  data?: Record<string, unknown>;
}

export interface TrafficAdapter {
  readonly type: string;
  /** Switch live traffic to `request.to`. Resolves once done and verified; throws TrafficError otherwise. */
  switchTo(request: SwitchRequest, signal: AbortSignal): Promise<SwitchOutcome>;
  /** The environment traffic goes to now, read from the traffic layer itself; undefined when it cannot tell. */
  current?(signal: AbortSignal): Promise<string | undefined>;
  close?(): Promise<void>;
}

/** A switch that did not happen or could not be verified. The message says what to do. */
export class TrafficError extends GreenlightError {
  /** The adapter knows it sent nothing (cancelled before its first request): traffic cannot have moved. */
  readonly notSent: boolean;

  constructor(message: string, options?: { cause?: unknown; notSent?: boolean }) {
    super('GL_ERR_TRAFFIC', message, options);
    this.notSent = options?.notSent === true;
  }
}

/**
 * CDN purgers empty a CDN's cache after a switch, so that it stops serving the old environment's
 * pages and API answers: `cloudflare`, `webhook`, `command`. Each is a plugin (agent/plugins/registry.ts)
 * run by the `cdn` step after a switch (switch-steps.ts), under the switch lock: never two at once.
 * A purger resolves once the CDN took the purge, or throws a CdnError saying what failed.
 */
import { GreenlightError } from '../../config/errors.js';

export interface PurgeRequest {
  /** The environment traffic left, and the one now live. */
  from: string;
  to: string;
  /** The switch's incident (`live-error-ratio-critical#3`, `promote:…`), for a receiver to de-duplicate. */
  incident: string;
  /** Why the switch happened. */
  reason: string;
}

export interface PurgeOutcome {
  /** One line for events and output: `cloudflare purged everything in zone 023e…`. */
  detail: string;
  /** Figures for the event's data (attempts, purge id, HTTP status). Never secrets. */
  data?: Record<string, unknown>;
}

export interface CdnPurger {
  readonly type: string;
  purge(request: PurgeRequest, signal: AbortSignal): Promise<PurgeOutcome>;
}

/** A purge that did not happen. The message says what to do. */
export class CdnError extends GreenlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GL_ERR_SWITCH_STEP', message, options);
  }
}

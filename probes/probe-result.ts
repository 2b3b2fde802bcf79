/** What one probe attempt produced. A timeout or a 500 is data here, never an exception. */
import type { ProbeTls } from './tls.js';

/** Why a probe failed: one code per failure, used as the `result` label of greenlight_probes_total. */
export type ReasonCode = 'timeout' | 'refused' | 'dns' | 'tls' | 'reset' | 'status' | 'assertion' | 'body_too_large' | 'invalid_json';

export const REASON_CODES: readonly ReasonCode[] = ['timeout', 'refused', 'dns', 'tls', 'reset', 'status', 'assertion', 'body_too_large', 'invalid_json'];

/** One expectation and what was observed: `$.status ("degraded") not in [healthy, ok]`. */
export interface CheckResult {
  ok: boolean;
  text: string;
}

/** What a confirmation run confirms: a failure (re-probes while they fail) or a recovery (while they succeed). */
export type ConfirmationKind = 'failure' | 'recovery';

/** Marks a confirmation probe: a quick re-probe outside the schedule, the `attempt`-th of its run (from 1). */
export interface Confirmation {
  of: ConfirmationKind;
  attempt: number;
}

export interface ProbeResult {
  probe: string;
  env: string;
  ok: boolean;
  /** Set exactly when ok is false. */
  reason?: ReasonCode;
  /** Transport-level detail for timeout/refused/dns/tls/reset, e.g. `connect ECONNREFUSED 127.0.0.1:8081`. */
  error?: string;
  status?: number;
  /** From sending the request to the end of the body (or the failure), in milliseconds. */
  durationMs: number;
  /** Clock time (ms since epoch) at which the probe started. */
  startedAt: number;
  checks: CheckResult[];
  /** Numbers read from the body by the probe's `extract` paths. */
  extracted: Record<string, number>;
  /**
   * Set on a confirmation probe, absent on a scheduled one. Confirmation results count for the
   * consecutive failures and successes, the up/down state and the latest values, but stay out of
   * the sliding windows (error ratio, latency), which sample the schedule only.
   */
  confirmation?: Confirmation;
  /**
   * For an https target: its certificate chain as the latest handshake showed it (the earliest
   * expiry, the days left as of this probe, whether it verifies). Present also when the probe
   * failed with reason `tls`: a refused chain is read anyway.
   */
  tls?: ProbeTls;
  /**
   * The agent could not run the probe on its own side (no file descriptor or memory left: EMFILE,
   * ENFILE, ENOBUFS, ENOMEM): the target did nothing. Says which; such a result is no reading of
   * the target (the pipeline counts the tick as skipped, a verification as unknown).
   */
  local?: string;
}

/** One line saying why a result failed, for logs, events and the check table. */
export function describeFailure(result: ProbeResult): string {
  if (result.ok) return 'ok';
  const failed = result.checks.filter((check) => !check.ok).map((check) => check.text);
  const detail = failed.length > 0 ? failed.join('; ') : (result.error ?? '');
  return detail ? `${result.reason}: ${detail}` : String(result.reason);
}

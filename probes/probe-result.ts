/** What one probe attempt produced. A timeout or a 500 is data here, never an exception. */

/** Why a probe failed: one code per failure, used as the `result` label of greenlight_probes_total. */
export type ReasonCode = 'timeout' | 'refused' | 'dns' | 'tls' | 'reset' | 'status' | 'assertion' | 'body_too_large' | 'invalid_json';

export const REASON_CODES: readonly ReasonCode[] = ['timeout', 'refused', 'dns', 'tls', 'reset', 'status', 'assertion', 'body_too_large', 'invalid_json'];

/** One expectation and what was observed: `$.status ("degraded") not in [healthy, ok]`. */
export interface CheckResult {
  ok: boolean;
  text: string;
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
}

/** One line saying why a result failed, for logs, events and the check table. */
export function describeFailure(result: ProbeResult): string {
  if (result.ok) return 'ok';
  const failed = result.checks.filter((check) => !check.ok).map((check) => check.text);
  const detail = failed.length > 0 ? failed.join('; ') : (result.error ?? '');
  return detail ? `${result.reason}: ${detail}` : String(result.reason);
}

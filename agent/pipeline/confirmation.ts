/**
 * Confirmation probing, the agent's half: which probes confirm, and when a result asks for a
 * (further) quick re-probe. The scheduler (probe-scheduler.ts) paces the re-probes and applies
 * the rate cap; the series (probes/probe-series.ts) keeps confirmation results out of the windows.
 *
 * A run starts when a scheduled probe of the live environment changes what greenlight believes:
 * a failure after success (or as the first result) starts a failure run, a success after failure
 * a recovery run. Each re-probe that agrees asks for the next, up to `count`; one that disagrees
 * ends the run, and a re-probe never starts a run of its own. So a target that fails now and then
 * costs one re-probe per stray failure, and one that stays down costs nothing after its first run.
 */
import type { Config, ProbeConfig } from '../../config/schema.js';
import type { ConfirmationKind, ProbeResult } from '../../probes/probe-result.js';
import type { ConfirmPolicy } from './probe-scheduler.js';

/** The probe's confirmation policy on `env`, or undefined when it does not confirm (count 0). */
export function confirmPolicy(config: Config, probe: ProbeConfig, env: string): ConfirmPolicy | undefined {
  const defaults = config.probeDefaults.confirm;
  const count = probe.confirm?.count ?? defaults.count;
  if (count === 0) return undefined;
  return { count, spacingMs: probe.confirm?.spacing ?? defaults.spacing, maxPerSecond: defaults.maxPerSecond, group: env };
}

/**
 * What `result` wants confirmed next: `wasUp` is the series' state before it was recorded, `live`
 * whether its environment is the live one now (only the live environment is confirmed: its
 * rules decide rollbacks; the idle one is judged at the schedule's pace).
 */
export function nextConfirmation(result: ProbeResult, wasUp: boolean | undefined, live: boolean): ConfirmationKind | undefined {
  if (!live) return undefined;
  if (result.confirmation) {
    const agrees = result.ok === (result.confirmation.of === 'recovery');
    return agrees ? result.confirmation.of : undefined;
  }
  if (!result.ok && wasUp !== false) return 'failure';
  if (result.ok && wasUp === false) return 'recovery';
  return undefined;
}

/**
 * A series' state changes as events: `probe.down` when it starts failing (with the reason and the
 * checks' observed values), `probe.up` when it recovers (with how long it was down). Only changes:
 * a series failing ten times in a row publishes one `probe.down`.
 */
import { describeFailure, type ProbeResult } from '../../probes/probe-result.js';
import type { EventBus } from '../events/events.js';
import type { SeriesEntry } from './series-registry.js';

export function publishStateChange(
  bus: Pick<EventBus, 'publish'>,
  entry: SeriesEntry,
  result: ProbeResult,
  change: { up: boolean; wasUp: boolean | undefined },
  active: boolean,
): void {
  const { series } = entry;
  if (!change.up) {
    entry.downSince = result.startedAt;
    bus.publish({
      type: 'probe.down',
      severity: active ? 'warning' : 'info',
      env: series.env,
      probe: series.probe,
      message: `${series.probe} on ${series.env}${active ? ' (live)' : ''} is failing: ${describeFailure(result)}`,
      data: {
        reason: result.reason!,
        detail: describeFailure(result),
        status: result.status ?? null,
        durationMs: round(result.durationMs),
        consecutiveFailures: series.consecutiveFailures,
        active,
      },
    });
  } else if (change.wasUp === false) {
    const downForMs = entry.downSince === undefined ? null : result.startedAt - entry.downSince;
    entry.downSince = undefined;
    bus.publish({
      type: 'probe.up',
      severity: 'info',
      env: series.env,
      probe: series.probe,
      message: `${series.probe} on ${series.env} recovered${downForMs === null ? '' : ` after ${Math.round(downForMs / 1_000)}s`}`,
      data: { status: result.status ?? null, durationMs: round(result.durationMs), downForMs, active },
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

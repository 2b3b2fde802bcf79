/** The agent's own start and stop as events: what it watches, where it listens, whether its controls are on; why it stops. */
import type { Config } from '../../config/schema.js';
import { VERSION } from '../package.js';
import type { EventBus } from './events.js';

/** Publish agent.started; a warning when no API token is set (nobody can roll back or change flags through the API). */
export function announceStart(
  bus: Pick<EventBus, 'publish'>,
  agent: { config: Config; live: string; url: string; rules: number; series: number; dryRun: boolean },
): void {
  const { config, live, dryRun } = agent;
  const { adminToken, rollbackToken } = config.api;
  const controls = adminToken !== undefined ? 'all' : rollbackToken !== undefined ? 'rollback only' : 'none';
  const disabled =
    controls === 'none'
      ? '; CONTROLS DISABLED: no API token is set, so nobody can roll back or change flags through the API'
      : controls === 'rollback only'
        ? '; admin controls disabled: no ADMIN_TOKEN'
        : '';
  const watching = `${Object.keys(config.environments).join(' and ')} (${live} live) with ${config.probes.length} probes and ${agent.rules} rules`;
  bus.publish({
    type: 'agent.started',
    severity: controls === 'none' ? 'warning' : 'info',
    message: `greenlight ${VERSION} watching ${watching} on ${agent.url}${dryRun ? ' (dry run: actions are decided, not carried out)' : ''}${disabled}`,
    data: { version: VERSION, pid: process.pid, activeEnvironment: live, probes: config.probes.length, series: agent.series, dryRun, controls },
  });
}

/**
 * Publish agent.stopping, with the signal that asked (null when the agent was closed from code), and
 * why when it is not a signal (a start that failed: the journal then says why no agent.started came).
 */
export function announceStop(bus: Pick<EventBus, 'publish'>, signal: string | null, uptimeMs: number, reason?: string): void {
  bus.publish({
    type: 'agent.stopping',
    severity: reason === undefined ? 'info' : 'critical',
    message: `greenlight stopping${signal ? ` on ${signal}` : ''}${reason === undefined ? '' : `: ${reason}`}`,
    data: { signal, uptimeSeconds: Math.round(uptimeMs / 1_000), ...(reason === undefined ? {} : { reason }) },
  });
}

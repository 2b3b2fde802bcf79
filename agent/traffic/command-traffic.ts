import { basename } from 'node:path';
import { z } from 'zod';
import { Duration } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { runCommand, tailLines } from '../plugins/run-command.js';
import { TrafficError, type SwitchRequest, type TrafficAdapter } from './traffic-adapter.js';

export const CommandTrafficSchema = z.strictObject({
  type: z.literal('command'),
  command: z
    .array(z.string().min(1, { error: 'is empty: every argument needs at least one character' }))
    .min(1, { error: 'needs the program to run and its arguments, e.g. ["/usr/local/bin/switch-traffic", "--fast"]' })
    .meta({
      description:
        'Program and arguments, run without a shell. It gets GREENLIGHT_FROM, GREENLIGHT_TO, GREENLIGHT_REASON, GREENLIGHT_RULE, GREENLIGHT_INCIDENT and GREENLIGHT_FENCING_TOKEN (the leader epoch); exit 0 means switched.',
    }),
  timeout: Duration.default(30_000).meta({ description: 'The program and everything it started are killed after this long. Default 30s.' }),
  inheritEnv: z.boolean().default(true).meta({ description: "Whether the program also gets greenlight's own environment (PATH, HOME …). Default true." }),
});

export type CommandTrafficConfig = z.output<typeof CommandTrafficSchema>;

/** `command`: runs a program of yours (a script calling your load balancer's API, a kubectl patch …); exit 0 means switched. */
export const commandTraffic: PluginDefinition<CommandTrafficConfig, TrafficAdapter> = {
  type: 'command',
  schema: CommandTrafficSchema,
  create(config, deps) {
    const program = basename(config.command[0]!);
    const log = deps.logger.child({ component: 'traffic', adapter: 'command' });
    return {
      type: 'command',
      async switchTo(request, signal) {
        const result = await runCommand(config.command, {
          env: switchEnv(request),
          inheritEnv: config.inheritEnv,
          timeoutMs: config.timeout,
          signal,
          redactor: deps.redactor,
        });
        const took = formatDuration(result.durationMs);
        const stderr = tailLines(result.stderr);
        const output = stderr ? `; stderr:\n${stderr}` : '';
        if (result.spawnError !== undefined) {
          throw new TrafficError(`traffic command ${program} could not be started (${result.spawnError}); check traffic.command[0] is an executable path`, {
            notSent: true,
          });
        }
        if (result.aborted) throw new TrafficError(`traffic command ${program} was cancelled after ${took} and killed${output}`);
        if (result.timedOut) {
          throw new TrafficError(
            `traffic command ${program} did not finish within ${formatDuration(config.timeout)} and was killed; traffic may be half switched, check it by hand${output}`,
          );
        }
        if (result.code !== 0) {
          const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
          throw new TrafficError(`traffic command ${program} ${how} after ${took}${output}`);
        }
        log.info({ to: request.to, durationMs: result.durationMs }, `traffic command ${program} switched traffic to ${request.to}`);
        const lastLine = result.stdout.trimEnd().split('\n').at(-1)?.trim().slice(0, 200);
        return {
          detail: `traffic command ${program} exited 0 after ${took}${lastLine ? `: ${lastLine}` : ''}`,
          data: { exitCode: 0, durationMs: result.durationMs },
        };
      },
    };
  },
};

/** The variables the program reads to know what to do. */
function switchEnv(request: SwitchRequest): Record<string, string> {
  return {
    GREENLIGHT_FROM: request.from,
    GREENLIGHT_TO: request.to,
    GREENLIGHT_REASON: request.reason,
    GREENLIGHT_RULE: request.rule ?? '',
    GREENLIGHT_INCIDENT: request.incident,
    GREENLIGHT_FENCING_TOKEN: String(request.fencingToken),
  };
}

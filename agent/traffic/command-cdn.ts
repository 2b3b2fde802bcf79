import { basename } from 'node:path';
import { z } from 'zod';
import { Duration } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { runCommand, tailLines } from '../plugins/run-command.js';
import { CdnError, type CdnPurger } from './cdn-purger.js';

export const CommandCdnSchema = z.strictObject({
  type: z.literal('command'),
  command: z
    .array(z.string().min(1, { error: 'is empty: every argument needs at least one character' }))
    .min(1, { error: 'needs the program to run and its arguments, e.g. ["/usr/local/bin/purge-cdn", "--all"]' })
    .meta({
      description:
        'Program and arguments, run without a shell, after each switch. It gets GREENLIGHT_FROM, GREENLIGHT_TO, GREENLIGHT_INCIDENT and GREENLIGHT_REASON; exit 0 means purged.',
    }),
  timeout: Duration.default(30_000).meta({ description: 'The program and everything it started are killed after this long. Default 30s.' }),
  inheritEnv: z.boolean().default(true).meta({ description: "Whether the program also gets greenlight's own environment (PATH, HOME …). Default true." }),
});

export type CommandCdnConfig = z.output<typeof CommandCdnSchema>;

/** `command`: runs a program of yours (the CDN's CLI, a script calling its API); exit 0 means purged. */
export const commandCdn: PluginDefinition<CommandCdnConfig, CdnPurger> = {
  type: 'command',
  schema: CommandCdnSchema,
  create(config, deps) {
    const program = basename(config.command[0]!);
    return {
      type: 'command',
      async purge(request, signal) {
        const result = await runCommand(config.command, {
          env: { GREENLIGHT_FROM: request.from, GREENLIGHT_TO: request.to, GREENLIGHT_INCIDENT: request.incident, GREENLIGHT_REASON: request.reason },
          inheritEnv: config.inheritEnv,
          timeoutMs: config.timeout,
          signal,
          redactor: deps.redactor,
        });
        const took = formatDuration(result.durationMs);
        const stderr = tailLines(result.stderr, 500);
        const output = stderr ? `; stderr: ${stderr.replace(/\s+/g, ' ')}` : '';
        if (result.spawnError !== undefined)
          throw new CdnError(`CDN purge command ${program} could not be started (${result.spawnError}); check command[0] is an executable path`);
        if (result.aborted) throw new CdnError(`CDN purge command ${program} was cancelled after ${took} and killed${output}`);
        if (result.timedOut) throw new CdnError(`CDN purge command ${program} did not finish within ${formatDuration(config.timeout)} and was killed${output}`);
        if (result.code !== 0) {
          const how = result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
          throw new CdnError(`CDN purge command ${program} ${how} after ${took}${output}`);
        }
        const lastLine = result.stdout.trimEnd().split('\n').at(-1)?.trim().slice(0, 200);
        return {
          detail: `CDN purge command ${program} exited 0 after ${took}${lastLine ? `: ${lastLine}` : ''}`,
          data: { exitCode: 0, durationMs: result.durationMs },
        };
      },
    };
  },
};

/**
 * `command`: run a hook script when a rule fires (a database rollback, a cache purge), with a
 * deadline. argv without a shell; the incident comes in as environment variables.
 */
import { z } from 'zod';
import { Duration } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { runCommand, tailLines } from '../plugins/run-command.js';
import type { Action, ActionContext, ActionDeps, ActionOutcome } from './action.js';

const CommandSchema = z.strictObject({
  type: z.literal('command'),
  command: z.array(z.string().min(1)).min(1).meta({ description: 'Program and arguments, run without a shell: ["./scripts/db-rollback.sh", "--yes"].' }),
  timeout: Duration.default(60_000),
  onResolve: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .meta({ description: 'A program to run when the incident resolves (same variables, GREENLIGHT_STATUS=resolved).' }),
  cwd: z.string().optional(),
});
type CommandConfig = z.output<typeof CommandSchema>;

export const commandAction: PluginDefinition<CommandConfig, Action> = {
  type: 'command',
  schema: CommandSchema,
  create: (config, deps) => {
    const { dryRun, name, controller } = deps as ActionDeps;
    const run = async (argv: readonly string[], context: ActionContext, status: 'firing' | 'resolved', signal: AbortSignal): Promise<ActionOutcome> => {
      if (dryRun) return { outcome: 'skipped', reason: `dry run: would run ${argv[0]}`, data: { command: argv[0], wouldFire: true } };
      const result = await runCommand(argv, {
        timeoutMs: config.timeout,
        signal,
        redactor: deps.redactor,
        ...(config.cwd ? { cwd: config.cwd } : {}),
        env: {
          GREENLIGHT_STATUS: status,
          GREENLIGHT_RULE: context.rule?.name ?? '',
          GREENLIGHT_SEVERITY: context.severity,
          GREENLIGHT_ENV: context.env,
          GREENLIGHT_LIVE: controller.activeEnvironment(),
          GREENLIGHT_INCIDENT: context.incident,
          GREENLIGHT_MESSAGE: context.message,
        },
      });
      const data = { command: argv[0], exitCode: result.code, durationMs: Math.round(result.durationMs) };
      if (result.spawnError) return { outcome: 'failed', error: `cannot start ${argv[0]}: ${result.spawnError}`, data };
      if (result.timedOut) return { outcome: 'failed', error: `${argv[0]} did not finish within ${formatDuration(config.timeout)} and was killed`, data };
      if (result.aborted) return { outcome: 'failed', error: `${argv[0]} was cancelled (agent stopping)`, data };
      if (result.code !== 0) {
        const tail = tailLines(result.stderr, 500);
        return { outcome: 'failed', error: `${argv[0]} exited with ${result.code ?? result.signal}${tail ? `: ${tail}` : ''}`, data };
      }
      return { outcome: 'succeeded', detail: `${argv[0]} finished in ${Math.round(result.durationMs)}ms`, data };
    };
    return {
      name,
      type: 'command',
      fire: (context, signal) => run(config.command, context, 'firing', signal),
      ...(config.onResolve ? { resolve: (context: ActionContext, signal: AbortSignal) => run(config.onResolve!, context, 'resolved', signal) } : {}),
    };
  },
};

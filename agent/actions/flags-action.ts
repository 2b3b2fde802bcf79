/** `flags`: put an environment's feature flags into a preset (emergency-rollback: V3 off, V2 fallback on). */
import { z } from 'zod';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { Action, ActionContext, ActionDeps, ActionOutcome } from './action.js';

const FlagsSchema = z.strictObject({
  type: z.literal('flags'),
  preset: z.literal('emergency-rollback').default('emergency-rollback'),
  env: z
    .enum(['incident', 'live', 'idle', 'all'])
    .default('incident')
    .meta({ description: "Whose flags: the incident's environment (default), the live one, the idle one, or both." }),
});
type FlagsConfig = z.output<typeof FlagsSchema>;

export const flagsAction: PluginDefinition<FlagsConfig, Action> = {
  type: 'flags',
  schema: FlagsSchema,
  create: (config, deps) => {
    const { controller, dryRun, name } = deps as ActionDeps;
    const targets = (context: ActionContext): string[] => {
      const live = controller.activeEnvironment();
      const envs = controller.environments();
      switch (config.env) {
        case 'incident':
          return [context.env];
        case 'live':
          return [live];
        case 'idle':
          return envs.filter((env) => env !== live);
        case 'all':
          return [...envs];
      }
    };
    const fire = async (context: ActionContext): Promise<ActionOutcome> => {
      const envs = targets(context);
      if (dryRun)
        return {
          outcome: 'skipped',
          reason: `dry run: would apply ${config.preset} to ${envs.join(', ')}`,
          data: { preset: config.preset, envs, wouldFire: true },
        };
      const { changed } = controller.applyFlagPreset(config.preset, envs, context.actor, context.message || `incident ${context.incident}`);
      return {
        outcome: 'succeeded',
        detail: `${config.preset} applied to ${envs.join(', ')} (${changed} flags changed)`,
        data: { preset: config.preset, envs, changed },
      };
    };
    // A preset sets flags to fixed values: applying it again after a crash completes it (0 changes if it had landed).
    return { name, type: 'flags', effect: 'state', fire, reconcile: fire };
  },
};

import type { ActionContext, ActionOutcome, Controller } from './action.js';

/**
 * What looking tells of a switch out of `context.env` that a crash or a stop interrupted, for the
 * actions that switch (a rollback, a promotion's switch) to settle it without switching blindly:
 * - the switch was recorded before the restart → `settled`, done;
 * - the traffic layer already serves the other side → recorded now (adopted), `settled`;
 * - it still serves `context.env` → `not-moved`: the switch never happened;
 * - the adapter cannot tell (a webhook) → `unknown`: a person must look.
 * `what` names the interrupted work in the adopted switch's record; `adopted` adds to its outcome;
 * `kind` is the adopted switch's (a rollback's by default). An adopted switch runs its steps after it.
 */
export async function settleInterruptedSwitch(
  controller: Pick<Controller, 'activeEnvironment' | 'servingEnvironment' | 'adoptSwitch'>,
  context: ActionContext,
  signal: AbortSignal,
  words: { what: string; adopted?: (serving: string) => string; kind?: 'rollback' | 'promotion' },
): Promise<{ settled: ActionOutcome } | 'not-moved' | 'unknown'> {
  const live = controller.activeEnvironment();
  if (live !== context.env)
    return {
      settled: { outcome: 'succeeded', detail: `the switch ${context.env} → ${live} was recorded before the restart`, data: { from: context.env, to: live } },
    };
  const serving = await controller.servingEnvironment(signal, context.incident);
  if (serving === live) return 'not-moved';
  if (serving === undefined) return 'unknown';
  await controller.adoptSwitch(serving, context, `found ${serving} serving after a restart interrupted ${words.what}`, words.kind ?? 'rollback', signal);
  return {
    settled: {
      outcome: 'succeeded',
      detail: `the traffic layer already serves ${serving}: the interrupted switch ${live} → ${serving} had landed and is now recorded${words.adopted?.(serving) ?? ''}`,
      data: { from: live, to: serving },
    },
  };
}

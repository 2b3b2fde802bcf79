import { z } from 'zod';
import type { Agent } from './agent.js';
import type { Route } from './http-server.js';

const RollbackBody = z.strictObject({
  reason: z.string().trim().min(1, { error: 'say why: a reason is required and is recorded with the rollback' }).max(500),
});

/**
 * POST /api/v1/rollback: the operator's emergency rollback (ROLLBACK_TOKEN or ADMIN_TOKEN). 200
 * switched; 409 held or refused (the target failing, unknown, or failing its fresh verification:
 * the body says which check); 502 the traffic adapter failed.
 */
export function rollbackRoutes(agent: Agent): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/rollback',
      auth: 'rollback',
      body: RollbackBody,
      handle: async ({ body, actor }) => {
        const { reason } = body as z.output<typeof RollbackBody>;
        const from = agent.activeEnvironment;
        const outcome = await agent.manualRollback(reason, actor);
        if (outcome.outcome === 'succeeded') return { status: 200, body: { ok: true, from, to: agent.activeEnvironment, detail: outcome.detail } };
        if (outcome.outcome === 'skipped') {
          const dryRun = outcome.data?.wouldFire === true;
          return {
            status: dryRun ? 200 : 409,
            body: { ok: dryRun, dryRun, error: dryRun ? undefined : `rollback refused: ${outcome.reason}`, detail: outcome.reason, from },
          };
        }
        // Refused at the last check (the target failed its fresh verification): a conflict with the
        // world, like a held rollback; an adapter that failed is the traffic layer's error.
        if (outcome.data?.refused)
          return {
            status: 409,
            body: {
              ok: false,
              error: `rollback ${outcome.error}`,
              detail: outcome.error,
              refused: outcome.data.refused,
              verification: outcome.data.verification,
              from,
            },
          };
        return { status: 502, body: { ok: false, error: `rollback failed: ${outcome.error}`, from } };
      },
    },
  ];
}

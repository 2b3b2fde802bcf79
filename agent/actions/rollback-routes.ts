import { z } from 'zod';
import type { ErrorCode } from '../../config/errors.js';
import type { Route } from '../http/http-server.js';
import type { ActionOutcome } from './action.js';

/** What the rollback route asks of the agent. */
export interface RollbackHost {
  readonly activeEnvironment: string;
  manualRollback(reason: string, actor: string): Promise<ActionOutcome>;
}

const RollbackBody = z.strictObject({
  reason: z.string().trim().min(1, { error: 'say why: a reason is required and is recorded with the rollback' }).max(500),
});

/**
 * POST /api/v1/rollback: the operator's emergency rollback (ROLLBACK_TOKEN or ADMIN_TOKEN). 200
 * switched (with the steps after the switch, and `failedStep` when one failed: traffic stays
 * switched); 409 held or refused (the target failing, unknown, or failing its fresh verification:
 * the body says which check); 502 the traffic adapter failed.
 */
export function rollbackRoutes(agent: RollbackHost): Route[] {
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
        if (outcome.outcome === 'succeeded')
          return {
            status: 200,
            body: {
              ok: true,
              from,
              to: agent.activeEnvironment,
              detail: outcome.detail,
              steps: outcome.data?.steps ?? [],
              failedStep: outcome.data?.failedStep ?? null,
            },
          };
        if (outcome.outcome === 'skipped') {
          const dryRun = outcome.data?.wouldFire === true;
          if (dryRun) return { status: 200, body: { ok: true, dryRun, detail: outcome.reason, from } };
          return {
            status: 409,
            body: {
              ok: false,
              dryRun,
              error: `rollback refused: ${outcome.reason}`,
              code: 'GL_ERR_ROLLBACK_REFUSED' satisfies ErrorCode,
              detail: outcome.reason,
              from,
            },
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
              code: 'GL_ERR_ROLLBACK_REFUSED' satisfies ErrorCode,
              detail: outcome.error,
              refused: outcome.data.refused,
              verification: outcome.data.verification,
              from,
            },
          };
        return { status: 502, body: { ok: false, error: `rollback failed: ${outcome.error}`, code: 'GL_ERR_ROLLBACK_FAILED' satisfies ErrorCode, from } };
      },
    },
  ];
}

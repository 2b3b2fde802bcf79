/**
 * POST /api/v1/promote (ADMIN_TOKEN) and POST /api/v1/rollback/validate (ROLLBACK_TOKEN or
 * ADMIN_TOKEN).
 *
 * A promote request asking for `Accept: application/x-ndjson` gets its progress as it happens,
 * one JSON object a line: the promote.* events, `{"type":"progress",…}` lines within a step (load
 * figures every second, deploy statuses, the watch every 10 s), and last `{"type":"result",…}`.
 * Any other request gets the result alone as JSON when the promotion ends: 200 promoted, 409
 * refused (a closed window, another promotion in flight), 422 a gate failed, 502 the switch
 * failed or was rolled back. With `"wait": false` both answer once the switch is verified and
 * the watch goes on in the agent (its outcome is a promote.succeeded or promote.failed event).
 * A client that goes away never stops a promotion.
 */
import { z } from 'zod';
import { Duration } from '../../config/schema.js';
import { HttpError, type Route, type RouteResponse } from '../http/http-server.js';
import { PromoteRefused, type PromoteLine, type PromoteResult, type PromotionController, type PromotionRun } from './promotion.js';

const PromoteBody = z.strictObject({
  to: z.string().min(1, { error: 'name the environment to promote, such as green' }),
  emergency: z.boolean().default(false),
  reason: z.string().trim().max(500).optional(),
  kind: z.enum(['feature', 'major']).default('feature'),
  deploy: z.boolean().default(false),
  watch: Duration.optional(),
  wait: z.boolean().default(true),
});

export function promoteRoutes(promotions: PromotionController): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/promote',
      auth: 'admin',
      body: PromoteBody,
      handle: async ({ body, actor, headers }) => {
        const request = body as z.output<typeof PromoteBody>;
        let run: PromotionRun;
        try {
          run = promotions.start({
            to: request.to,
            emergency: request.emergency,
            reason: request.reason || null,
            kind: request.kind,
            deploy: request.deploy,
            watchMs: request.watch,
            actor,
          });
        } catch (error) {
          if (error instanceof PromoteRefused) throw new HttpError(error.status, error.message, undefined, error.code);
          throw error;
        }
        if ((headers.accept ?? '').includes('application/x-ndjson'))
          return { status: 200, headers: { 'content-type': 'application/x-ndjson; charset=utf-8' }, stream: streamLines(run, request.wait) };
        const result = request.wait ? await run.done : await untilSwitched(run);
        return answer(result, run);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/rollback/validate',
      auth: 'rollback',
      handle: async ({ actor }) => {
        const report = await promotions.validate(actor);
        return { status: 200, body: report };
      },
    },
  ];
}

/** The lines of a run as they come; ends after the result (or, without wait, after the verify step). */
async function* streamLines(run: PromotionRun, wait: boolean): AsyncGenerator<string> {
  const queue: PromoteLine[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = run.listen((line) => {
    queue.push(line);
    wake?.();
  });
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const line = queue.shift()!;
      yield `${JSON.stringify(line)}\n`;
      if (line.type === 'result') return;
      if (!wait && line.type === 'promote.step' && line.data.step === 'verify' && line.data.ok) {
        yield `${JSON.stringify({ type: 'detached', promotion: run.id, message: `${run.to} is live and verified; the watch goes on in the agent (promote.succeeded or promote.failed will tell)` })}\n`;
        return;
      }
    }
  } finally {
    unsubscribe();
  }
}

/** Without wait: the result once the switch is verified (a partial one, ok), or the final one if it ended before. */
function untilSwitched(run: PromotionRun): Promise<PromoteResult & { detached?: boolean }> {
  return new Promise((resolve) => {
    const unsubscribe = run.listen((line) => {
      if (line.type === 'result') resolve(line);
      else if (line.type === 'promote.step' && line.data.step === 'verify' && line.data.ok) {
        resolve({
          ok: true,
          promotion: run.id,
          from: run.from,
          to: run.to,
          live: run.to,
          switched: true,
          rolledBack: false,
          failedStep: null,
          reason: null,
          durationMs: 0,
          steps: [],
          detached: true,
        });
      } else return;
      queueMicrotask(() => unsubscribe());
    });
  });
}

function answer(result: PromoteResult, run: PromotionRun): RouteResponse {
  const body = {
    ...result,
    steps: result.steps.length ? result.steps : run.lines.filter((l) => l.type === 'promote.step').map((l) => (l as { data: unknown }).data),
  };
  if (result.ok) return { status: 200, body };
  const status = result.failedStep === 'window' ? 409 : result.switched || result.failedStep === 'switch' ? 502 : 422;
  return { status, body: { ...body, error: `promotion to ${result.to} failed at ${result.failedStep}: ${result.reason}` } };
}

import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { ApiError, createApiClient } from './api-client.js';

/** How long `greenlight rollback` waits for the answer: the switch and its steps (switching.steps). */
const ROLLBACK_ANSWER_TIMEOUT_MS = 5 * 60_000;
/** While it waits, it says so this often: a silent terminal at 3 a.m. looks like a hung command. */
const WAITING_NOTICE_MS = 10_000;

/**
 * The 200 of POST /api/v1/rollback: switched (`ok`, with the steps after the switch and the one
 * that failed), or, with --dry-run, what it would have done. Anything else is not a rollback done.
 */
const RollbackAnswer = z.union([
  z.looseObject({ ok: z.literal(true), dryRun: z.literal(true), detail: z.string() }),
  z.looseObject({
    ok: z.literal(true),
    dryRun: z.literal(false).optional(),
    from: z.string(),
    to: z.string(),
    detail: z.string(),
    steps: z.array(z.looseObject({ name: z.string(), ok: z.boolean(), durationMs: z.number(), detail: z.string() })).optional(),
    failedStep: z.looseObject({ name: z.string(), reason: z.string() }).nullable().optional(),
  }),
]);

/**
 * `greenlight rollback --reason TEXT [--url U]`: the emergency rollback through a running agent,
 * with ROLLBACK_TOKEN (or ADMIN_TOKEN). The agent judges it like a rule's: it never switches onto
 * an environment whose own probes fail. Exit 0 switched, 1 refused or failed — also when traffic
 * switched but a step after the switch (CDN purge, public TLS, verify URL) failed: the rollback
 * stands (greenlight never switches again), and a person has to finish what the step did not.
 */
export async function rollbackCommand(
  options: { reason: string | undefined; url: string | undefined; waitingNoticeMs?: number },
  io: CommandIo,
): Promise<number> {
  if (!options.reason?.trim())
    throw new UsageError('rollback needs --reason TEXT: it is recorded with the rollback (for example --reason "checkout errors after 3.2.1")');
  // The agent answers once the switch and the steps after it are done (a CDN purge, a verify URL:
  // each bounded by its own timeout), which may take longer than an ordinary call.
  const client = createApiClient({ url: options.url, env: io.env, timeoutMs: ROLLBACK_ANSWER_TIMEOUT_MS });
  const started = Date.now();
  const waiting = setInterval(
    () =>
      io.err(
        `… waiting for ${client.displayUrl} to answer (${Math.round((Date.now() - started) / 1_000)} s; the fresh verification, the switch and the steps after it can take minutes; up to ${ROLLBACK_ANSWER_TIMEOUT_MS / 60_000} min). Ctrl-C stops waiting, not the rollback: then check greenlight tail --type traffic`,
      ),
    options.waitingNoticeMs ?? WAITING_NOTICE_MS,
  );
  waiting.unref();
  try {
    const answer = await client.call('POST', '/api/v1/rollback', { auth: 'rollback', body: { reason: options.reason }, answer: RollbackAnswer });
    if (answer.dryRun === true) {
      io.out(`⚠️  the agent runs with --dry-run: ${answer.detail}`);
      return 0;
    }
    io.out(`✅ rolled back ${answer.from} → ${answer.to}: ${answer.detail}`);
    for (const step of answer.steps ?? [])
      io.out(`   ${step.ok ? '✅' : '❌'} ${step.name.padEnd(8)} ${(step.durationMs / 1_000).toFixed(1)}s  ${step.detail}`);
    if (answer.failedStep) {
      io.err(`❌ after the switch, ${answer.failedStep.name} failed: ${answer.failedStep.reason}; ${answer.to} stays live (no second switch)`);
      return 1;
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    io.err(`❌ ${error.message}`);
    return 1;
  } finally {
    clearInterval(waiting);
  }
}

const ValidationAnswer = z.looseObject({
  ok: z.boolean(),
  live: z.string(),
  idle: z.string(),
  checks: z.array(z.looseObject({ name: z.string(), ok: z.boolean(), detail: z.string() })),
});

/**
 * `greenlight rollback validate [--url U] [--json]`: after a rollback, is the live environment
 * serving safely? The agent runs the checks (health endpoint, database, ALPHASTACK_PROTECTION,
 * safe-mode flags, error ratio), publishes `rollback.validated`, and this prints the report.
 * Exit 0 all pass, 1 any fails or the agent cannot be reached.
 */
export async function rollbackValidateCommand(options: { url: string | undefined; json: boolean }, io: CommandIo): Promise<number> {
  const client = createApiClient({ url: options.url, env: io.env });
  try {
    const report = await client.call('POST', '/api/v1/rollback/validate', { auth: 'rollback', body: {}, answer: ValidationAnswer });
    if (options.json) io.out(JSON.stringify(report, null, 2));
    else {
      for (const check of report.checks) io.out(`${check.ok ? '✅' : '❌'} ${check.name.padEnd(11)} ${check.detail}`);
      io.out(
        report.ok
          ? `\n✅ rollback validated: ${report.live} is live and safe`
          : `\n❌ rollback validation failed on ${report.live}: ${report.checks
              .filter((c) => !c.ok)
              .map((c) => c.name)
              .join(', ')}`,
      );
    }
    return report.ok ? 0 : 1;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    io.err(`❌ ${error.message}`);
    return 1;
  }
}

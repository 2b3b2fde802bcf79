/**
 * `greenlight maintenance start|stop|list`: maintenance windows of a running agent (README,
 * "Alert lifecycle"). While a window is open, notifications about its environment are muted —
 * only while that environment is idle; probing, rules, rollbacks and flags go on unchanged.
 * `start` and `stop` need ADMIN_TOKEN.
 */
import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import { parseDuration, parseTimestamp, TIMESTAMP_FORM } from '../../../config/units.js';
import type { CommandIo } from '../cli.js';
import { createApiClient, exitCode } from './api-client.js';
import { operatorName } from './operator-name.js';
import { MAINTENANCE_USAGE } from '../command-usage.js';

/** A window as the API answers it: open ones say whether they mute now. */
const WindowView = z.looseObject({
  name: z.string().nullable(),
  kind: z.enum(['ad-hoc', 'recurring']),
  env: z.string(),
  startsAt: z.string(),
  endsAt: z.string(),
  reason: z.string(),
  createdBy: z.string().nullable(),
  muting: z.boolean().optional(),
});
const StartAnswer = z.looseObject({ window: WindowView });
const StopAnswer = z.looseObject({ ended: z.array(WindowView) });
const MaintenanceList = z.looseObject({
  environments: z.record(z.string(), z.looseObject({ open: z.boolean(), muting: z.boolean() })),
  open: z.array(WindowView),
  upcoming: z.array(WindowView),
});

type Args = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** Exit 0 done, 1 refused or failed, 2 usage. */
export async function maintenanceCommand(args: Args, io: CommandIo): Promise<number> {
  return exitCode('maintenance', MAINTENANCE_USAGE, io, () => runMaintenance(args, io));
}

async function runMaintenance({ values, positionals }: Args, io: CommandIo): Promise<number> {
  const [subcommand, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`${subcommand} takes no arguments, got ${rest.join(' ')}`);
  const client = () => createApiClient({ url: str(values.url), env: io.env });
  const env = str(values.env);
  switch (subcommand) {
    case 'start': {
      if (!env) throw new UsageError('start needs --env NAME, the environment being worked on (for example --env green)');
      const reason = str(values.reason)?.trim();
      if (!reason) throw new UsageError('start needs --reason TEXT: it is shown with the window and in its events');
      const forText = str(values.for);
      const until = str(values.until);
      if ((forText === undefined) === (until === undefined)) throw new UsageError('give --for D (such as 2h) or --until TIME (ISO-8601), one of them');
      if (forText !== undefined && !((parseDuration(forText) ?? 0) > 0))
        throw new UsageError(`--for ${JSON.stringify(forText)} is not a duration such as 30m or 2h`);
      if (until !== undefined && parseTimestamp(until) === undefined) throw new UsageError(`--until ${JSON.stringify(until)} is not ${TIMESTAMP_FORM}`);
      const by = byOf(values, io);
      const answer = await client().call('POST', '/api/v1/maintenance', {
        auth: 'admin',
        answer: StartAnswer,
        body: { env, ...(forText === undefined ? { until } : { for: forText }), reason, by },
      });
      const { window } = answer;
      if (values.json === true) io.out(JSON.stringify(answer, null, 2));
      else {
        io.out(`🛠  maintenance on ${window.env} until ${window.endsAt}: ${window.reason}`);
        io.out(
          window.muting
            ? `   notifications about ${window.env} are muted; probing, rollbacks and flags go on`
            : `   ${window.env} is live: nothing is muted while it is (a window never weakens the live environment's protection)`,
        );
      }
      return 0;
    }
    case 'stop': {
      if (!env) throw new UsageError('stop needs --env NAME');
      const by = byOf(values, io);
      const answer = await client().call('DELETE', `/api/v1/maintenance/${encodeURIComponent(env)}?by=${encodeURIComponent(by)}`, {
        auth: 'admin',
        answer: StopAnswer,
      });
      if (values.json === true) io.out(JSON.stringify(answer, null, 2));
      else
        for (const window of answer.ended)
          io.out(
            `🔔 ${window.kind === 'recurring' ? `maintenance window ${window.name}` : 'maintenance'} on ${window.env} stopped: its notifications go out again`,
          );
      return 0;
    }
    case 'list': {
      const view = await client().call('GET', '/api/v1/maintenance', { answer: MaintenanceList });
      if (values.json === true) {
        io.out(JSON.stringify(view, null, 2));
        return 0;
      }
      for (const [name, state] of Object.entries(view.environments))
        io.out(
          `${name}: ${state.open ? (state.muting ? 'in maintenance (notifications muted)' : 'in maintenance, but live: nothing muted') : 'no maintenance'}`,
        );
      for (const window of view.open)
        io.out(
          `  open      ${window.env}  ${window.startsAt} → ${window.endsAt}  ${window.name ?? 'ad-hoc'}  ${window.reason}${window.createdBy ? ` (by ${window.createdBy})` : ''}`,
        );
      for (const window of view.upcoming) io.out(`  upcoming  ${window.env}  ${window.startsAt} → ${window.endsAt}  ${window.name}  ${window.reason}`);
      return 0;
    }
    case undefined:
      throw new UsageError('say what to do: start, stop or list');
    default:
      throw new UsageError(`unknown maintenance subcommand ${JSON.stringify(subcommand)}: use start, stop or list`);
  }
}

function byOf(values: Args['values'], io: CommandIo): string {
  return operatorName(str(values.by), '--by', io.env);
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

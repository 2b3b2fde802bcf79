/**
 * `greenlight silence add|list|expire`: silences of a running agent (README, "Alert lifecycle").
 * A silence mutes notifications whose alert labels all its matchers match, from its start to its
 * end; it never stops an action. `add` and `expire` need ADMIN_TOKEN; `list` needs none.
 */
import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import { formatMatcher, parseMatcher } from '../../../config/matchers.js';
import { formatDuration, parseDuration, parseTimestamp, TIMESTAMP_FORM } from '../../../config/units.js';
import type { CommandIo } from '../cli.js';
import { ApiError, createApiClient, exitCode } from './api-client.js';
import { operatorName } from './operator-name.js';
import { SILENCE_USAGE } from '../command-usage.js';

const DEFAULT_DURATION_MS = 3_600_000;

/** A silence as GET /api/v1/silences shows it (the fields the table prints). */
const SilenceView = z.looseObject({
  id: z.string(),
  matchers: z.array(z.looseObject({ name: z.string(), value: z.string(), isRegex: z.boolean(), isEqual: z.boolean() })),
  endsAt: z.string(),
  createdBy: z.string(),
  comment: z.string(),
  status: z.looseObject({ state: z.enum(['pending', 'active', 'expired']) }),
});
type SilenceView = z.output<typeof SilenceView>;
const SilenceList = z.looseObject({ silences: z.array(SilenceView) });
/** POST /api/v1/silences (201) and DELETE /api/v1/silences/{id}. */
const SilenceAnswer = z.looseObject({ silenceID: z.string().min(1), alreadyExpired: z.boolean().optional() });

type Args = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** Exit 0 done, 1 refused or failed (the agent's message is printed), 2 usage. */
export async function silenceCommand(args: Args, io: CommandIo): Promise<number> {
  return exitCode('silence', SILENCE_USAGE, io, () => runSilence(args, io));
}

async function runSilence({ values, positionals }: Args, io: CommandIo): Promise<number> {
  const [subcommand, ...rest] = positionals;
  const json = values.json === true;
  const client = () => createApiClient({ url: str(values.url), env: io.env });
  switch (subcommand) {
    case 'add': {
      if (rest.length === 0) throw new UsageError('add needs at least one matcher, such as rule=live-universe-failing or env=green');
      const matchers = rest.map((word) => {
        const parsed = parseMatcher(word);
        if ('error' in parsed) throw new UsageError(parsed.error);
        return parsed;
      });
      const comment = str(values.comment)?.trim();
      if (!comment) throw new UsageError('add needs --comment TEXT: why, for whoever reads the silence at 3 a.m.');
      const author = authorOf(values, io);
      const now = Date.now();
      const start = str(values.start);
      const startsAt = start === undefined ? now : isoTime(start, '--start');
      let endsAt: number;
      if (str(values.end) !== undefined) {
        if (str(values.duration) !== undefined) throw new UsageError('give --duration or --end, not both');
        endsAt = isoTime(str(values.end)!, '--end');
      } else {
        const text = str(values.duration);
        const duration = text === undefined ? DEFAULT_DURATION_MS : parseDuration(text);
        if (duration === undefined || duration <= 0) throw new UsageError(`--duration ${JSON.stringify(text)} is not a duration such as 30m or 2h`);
        endsAt = startsAt + duration;
      }
      const body = {
        matchers,
        ...(start === undefined ? {} : { startsAt: new Date(startsAt).toISOString() }),
        endsAt: new Date(endsAt).toISOString(),
        createdBy: author,
        comment,
      };
      const answer = await client().call('POST', '/api/v1/silences', { auth: 'admin', body, answer: SilenceAnswer });
      if (json) io.out(JSON.stringify({ silenceID: answer.silenceID, ...body }, null, 2));
      else
        io.out(
          `🔕 silence ${answer.silenceID} by ${author} until ${body.endsAt} (${formatDuration(endsAt - Math.max(now, startsAt))}): ${matchers.map(formatMatcher).join(', ')}\n   notifications only: rollbacks and flag actions still happen; end it early with greenlight silence expire ${answer.silenceID}`,
        );
      return 0;
    }
    case 'list': {
      if (rest.length > 0) throw new UsageError(`list takes no arguments, got ${rest.join(' ')}`);
      const { silences } = await client().call('GET', '/api/v1/silences', { answer: SilenceList });
      const shown = values.all === true ? silences : silences.filter((silence) => silence.status.state !== 'expired');
      if (json) io.out(JSON.stringify({ silences: shown }, null, 2));
      else io.out(shown.length === 0 ? `no ${values.all === true ? '' : 'pending or active '}silences` : silenceTable(shown));
      return 0;
    }
    case 'expire': {
      if (rest.length === 0) throw new UsageError('expire needs the ID of a silence (greenlight silence list shows them)');
      const author = authorOf(values, io);
      let failed = 0;
      for (const id of rest) {
        try {
          const answer = await client().call('DELETE', `/api/v1/silences/${encodeURIComponent(id)}?by=${encodeURIComponent(author)}`, {
            auth: 'admin',
            answer: SilenceAnswer,
          });
          io.out(answer.alreadyExpired ? `silence ${id} had already ended` : `🔔 silence ${id} expired: its alerts are notified again`);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          io.err(`greenlight silence: ${id}: ${error.message}`);
          failed++;
        }
      }
      return failed > 0 ? 1 : 0;
    }
    case undefined:
      throw new UsageError('say what to do: add, list or expire');
    default:
      throw new UsageError(`unknown silence subcommand ${JSON.stringify(subcommand)}: use add, list or expire`);
  }
}

function silenceTable(silences: readonly SilenceView[]): string {
  const rows = [
    ['ID', 'STATE', 'MATCHERS', 'ENDS', 'CREATED BY', 'COMMENT'],
    ...silences.map((s) => [s.id, s.status.state, s.matchers.map(formatMatcher).join(', '), s.endsAt, s.createdBy, s.comment]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

/** --author, else the login name: a silence always says who made it. */
function authorOf(values: Args['values'], io: CommandIo): string {
  return operatorName(str(values.author), '--author', io.env);
}

function isoTime(text: string, option: string): number {
  const at = parseTimestamp(text);
  if (at === undefined) throw new UsageError(`${option} ${JSON.stringify(text)} is not ${TIMESTAMP_FORM}`);
  return at;
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * `greenlight ack INCIDENT` and `greenlight incidents`: the incidents of a running agent and
 * their acknowledgement (README, "Alert lifecycle"). Acknowledging says "I am on it": the
 * incident's escalation stops (and PagerDuty hears `acknowledge`); its alerts still resolve as
 * usual. `ack` takes ROLLBACK_TOKEN or ADMIN_TOKEN — whoever is on call can acknowledge.
 */
import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { ApiError, createApiClient, exitCode } from './api-client.js';
import { operatorName } from './operator-name.js';
import { ACK_USAGE } from '../command-usage.js';

/** An incident as GET /api/v1/incidents and POST /api/v1/incidents/ack answer it. */
const IncidentView = z.looseObject({
  id: z.string(),
  rule: z.string(),
  env: z.string(),
  severity: z.string(),
  state: z.enum(['firing', 'acknowledged', 'resolved']),
  startedAt: z.string(),
  escalationLevel: z.number(),
  acknowledgedBy: z.string().nullable(),
  nextEscalationAt: z.string().nullable(),
  policy: z.string().nullable(),
});
type IncidentView = z.output<typeof IncidentView>;
const IncidentList = z.looseObject({ incidents: z.array(IncidentView) });
const AckAnswer = z.looseObject({ incident: IncidentView, alreadyAcknowledged: z.boolean().optional() });

type Args = { values: Record<string, string | boolean | undefined>; positionals: string[] };

/** Exit 0 acknowledged (or already), 1 refused or failed, 2 usage. */
export async function ackCommand({ values, positionals }: Args, io: CommandIo): Promise<number> {
  const client = createApiClient({ url: str(values.url), env: io.env });
  return exitCode('ack', ACK_USAGE, io, async () => {
    if (positionals.length !== 1) {
      const open = await client.call('GET', '/api/v1/incidents?state=open', { answer: IncidentList }).catch(() => undefined);
      const list = open && open.incidents.length > 0 ? `\nopen incidents:\n${incidentTable(open.incidents)}` : '';
      throw new UsageError(
        `${positionals.length === 0 ? 'say which incident' : 'one incident at a time'}, such as greenlight ack live-universe-failing#3${list}`,
      );
    }
    const by = operatorName(str(values.by), '--by', io.env);
    const comment = str(values.comment);
    const answer = await client.call('POST', '/api/v1/incidents/ack', {
      auth: 'rollback',
      answer: AckAnswer,
      body: { incident: positionals[0], by, ...(comment === undefined ? {} : { comment }) },
    });
    if (values.json === true) io.out(JSON.stringify(answer, null, 2));
    else if (answer.alreadyAcknowledged) io.out(`${answer.incident.id} was already acknowledged by ${answer.incident.acknowledgedBy}`);
    else
      io.out(
        `✅ ${answer.incident.id} acknowledged by ${by}: escalation stops at level ${answer.incident.escalationLevel} (its alerts still resolve as usual)`,
      );
    return 0;
  });
}

/** `greenlight incidents`: open ones (with --all, the recently resolved too). Exit 0, or 1 when the agent cannot be asked. */
export async function incidentsCommand({ values, positionals }: Args, io: CommandIo): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`incidents takes no arguments, got ${positionals.join(' ')}`);
  const client = createApiClient({ url: str(values.url), env: io.env });
  try {
    const { incidents } = await client.call('GET', `/api/v1/incidents${values.all === true ? '' : '?state=open'}`, { answer: IncidentList });
    if (values.json === true) io.out(JSON.stringify({ incidents }, null, 2));
    else io.out(incidents.length === 0 ? 'no open incidents' : incidentTable(incidents));
    return 0;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    io.err(`greenlight incidents: ${error.message}`);
    return 1;
  }
}

function incidentTable(incidents: readonly IncidentView[]): string {
  const rows = [
    ['INCIDENT', 'STATE', 'SEVERITY', 'ENV', 'STARTED', 'LEVEL', 'NEXT', 'ACKNOWLEDGED BY'],
    ...incidents.map((i) => [
      i.id,
      i.state,
      i.severity,
      i.env,
      i.startedAt,
      i.policy === null ? '-' : String(i.escalationLevel),
      i.nextEscalationAt ?? '-',
      i.acknowledgedBy ?? '-',
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

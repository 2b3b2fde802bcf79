/**
 * The alert lifecycle's API (CONTRACT.md, "Alert lifecycle"; README, "Alert lifecycle"):
 *
 *   GET    /api/v1/silences            (no auth)     {"silences": [...]}
 *   POST   /api/v1/silences            (admin)       201 {"silenceID": "…"}
 *   DELETE /api/v1/silences/{id}       (admin)       expires it now
 *   GET    /api/v1/incidents           (no auth)     {"incidents": [...]}
 *   POST   /api/v1/incidents/ack       (rollback)    stops that incident's escalation
 *   GET    /api/v1/maintenance         (no auth)     windows open and to come, per environment
 *   POST   /api/v1/maintenance         (admin)       201 an ad-hoc window
 *   DELETE /api/v1/maintenance/{env}   (admin)       ends the windows open on env
 *
 * None of these can stop an action: they decide who is told, never what greenlight does.
 */
import { z } from 'zod';
import { formatDuration, parseDuration, parseTimestamp, TIMESTAMP_FORM } from '../../config/units.js';
import { HttpError, invalidBody, type Route } from '../http/http-server.js';
import type { AlertLifecycle } from './alert-lifecycle.js';
import { IncidentError, type IncidentRecord } from './escalation.js';
import { MaintenanceError, MAX_WINDOW_MS } from './maintenance.js';
import { SilenceError } from './silences.js';

const MAX_MATCHERS = 32;
const MAX_TEXT = 1_000;

const Iso = z.string().refine((text) => parseTimestamp(text) !== undefined, { error: `must be ${TIMESTAMP_FORM}` });
const Person = z.string().trim().min(1, { error: 'must name who (it goes into the record)' }).max(200);
const Text = z.string().trim().min(1, { error: 'must not be empty: it goes into the record' }).max(MAX_TEXT);

const SilenceBody = z.strictObject({
  matchers: z
    .array(
      z.strictObject({
        name: z.string().max(200),
        value: z.string().max(1_024),
        isRegex: z.boolean().default(false),
        isEqual: z.boolean().default(true),
      }),
    )
    .min(1, { error: 'needs at least one matcher, such as {"name":"rule","value":"live-universe-failing"}' })
    .max(MAX_MATCHERS),
  startsAt: Iso.optional(),
  endsAt: Iso,
  createdBy: Person,
  comment: Text,
});

const AckBody = z.strictObject({ incident: z.string().min(1).max(300), by: Person, comment: z.string().trim().max(MAX_TEXT).optional() });

const MaintenanceBody = z
  .strictObject({
    env: z.string().min(1).max(100),
    for: z
      .string()
      .refine((text) => (parseDuration(text) ?? 0) > 0, { error: 'must be a duration such as 30m or 2h' })
      .optional(),
    until: Iso.optional(),
    reason: Text,
    by: Person,
  })
  .refine((body) => (body.for === undefined) !== (body.until === undefined), {
    error: 'give either for (a duration such as 2h) or until (an ISO-8601 time), not both or neither',
  });

/** An incident as GET /api/v1/incidents shows it: the contract's fields first. */
export function incidentView(record: IncidentRecord) {
  return {
    id: record.id,
    rule: record.rule,
    env: record.env,
    severity: record.severity,
    state: record.state,
    startedAt: record.startedAt,
    escalationLevel: record.escalationLevel,
    acknowledgedBy: record.acknowledgedBy,
    acknowledgedAt: record.acknowledgedAt,
    comment: record.comment,
    policy: record.policy,
    escalatedAt: record.escalatedAt,
    nextEscalationAt: record.nextEscalationAt,
    resolvedAt: record.resolvedAt,
    labels: record.labels,
  };
}

export function alertRoutes(lifecycle: AlertLifecycle, options: { environments: () => readonly string[] }): Route[] {
  const parse = <T>(schema: z.ZodType<T>, body: unknown): T => {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new HttpError(400, invalidBody(parsed.error));
    return parsed.data;
  };
  const by = (query: URLSearchParams, actor: string): string => {
    const given = query.get('by')?.trim().slice(0, 200);
    return given ? given : actor;
  };

  return [
    {
      method: 'GET',
      path: '/api/v1/silences',
      auth: 'none',
      handle: ({ query }) => {
        const state = query.get('state');
        if (state !== null && !['pending', 'active', 'expired'].includes(state))
          throw new HttpError(400, `state must be pending, active or expired, not ${JSON.stringify(state.slice(0, 40))}`);
        const silences = lifecycle.silences.list().filter((silence) => state === null || silence.status.state === state);
        return { status: 200, body: { silences } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/silences',
      auth: 'admin',
      body: z.unknown(),
      handle: ({ body, actor }) => {
        const request = parse(SilenceBody, body);
        const silence = refusals(() => lifecycle.createSilence(request, actor));
        return { status: 201, body: { silenceID: silence.id } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/silences/:id',
      auth: 'admin',
      handle: ({ params, query, actor }) => {
        const { silence, already } = refusals(() => lifecycle.expireSilence(params.id!, by(query, actor), actor));
        return {
          status: 200,
          body: { silenceID: silence.id, status: { state: 'expired' }, endsAt: silence.endsAt, ...(already ? { alreadyExpired: true } : {}) },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/incidents',
      auth: 'none',
      handle: ({ query }) => {
        const state = query.get('state');
        if (state !== null && !['firing', 'acknowledged', 'resolved', 'open'].includes(state))
          throw new HttpError(400, `state must be firing, acknowledged, resolved or open, not ${JSON.stringify(state.slice(0, 40))}`);
        const incidents = lifecycle.incidents
          .list()
          .filter((record) => state === null || record.state === state || (state === 'open' && record.state !== 'resolved'));
        return { status: 200, body: { incidents: incidents.map(incidentView) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/incidents/ack',
      auth: 'rollback',
      body: z.unknown(),
      handle: ({ body, actor }) => {
        const request = parse(AckBody, body);
        const { incident, already } = refusals(() => lifecycle.acknowledge(request.incident, request.by, request.comment || null, actor));
        return { status: 200, body: { incident: incidentView(incident), ...(already ? { alreadyAcknowledged: true } : {}) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/maintenance',
      auth: 'none',
      handle: () => {
        const { maintenance } = lifecycle.overview();
        const environments = Object.fromEntries(
          options.environments().map((env) => [env, { open: maintenance.open.some((window) => window.env === env), muting: lifecycle.muting(env) }]),
        );
        return { status: 200, body: { environments, open: maintenance.open, upcoming: maintenance.upcoming } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/maintenance',
      auth: 'admin',
      body: z.unknown(),
      handle: ({ body }) => {
        const request = parse(MaintenanceBody, body);
        const environments = options.environments();
        if (!environments.includes(request.env))
          throw new HttpError(400, `env must be one of ${environments.join(', ')}, not ${JSON.stringify(request.env.slice(0, 60))}`);
        const endsAt = request.until !== undefined ? parseTimestamp(request.until)! : lifecycle.now() + parseDuration(request.for!)!;
        const window = refusals(() => lifecycle.startMaintenance({ env: request.env, endsAt, reason: request.reason, by: request.by }));
        return { status: 201, body: { window: { ...window, muting: lifecycle.muting(window.env) }, maxDuration: formatDuration(MAX_WINDOW_MS) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/maintenance/:env',
      auth: 'admin',
      handle: ({ params, query, actor }) => {
        const env = params.env!;
        if (!options.environments().includes(env))
          throw new HttpError(400, `env must be one of ${options.environments().join(', ')}, not ${JSON.stringify(env.slice(0, 60))}`);
        const ended = lifecycle.stopMaintenance(env, by(query, actor));
        if (ended.length === 0) throw new HttpError(404, `no maintenance window is open on ${env}`);
        return { status: 200, body: { ended } };
      },
    },
  ];
}

/** The lifecycle's refusals as HTTP answers. */
function refusals<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof SilenceError || error instanceof IncidentError || error instanceof MaintenanceError)
      throw new HttpError(error.status, error.message, undefined, error.code);
    throw error;
  }
}

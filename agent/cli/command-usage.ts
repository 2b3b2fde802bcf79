/**
 * What the commands that take many options accept, for the CLI's table (cli.ts) and their own
 * usage errors. Kept apart from the commands so that cli.ts loads none of them until one is asked
 * for: `greenlight run` has to catch SIGTERM from its first moment, and the command modules load in
 * about half a second (zod, undici, the agent).
 */

export const ACK_USAGE = 'greenlight ack INCIDENT [--by NAME] [--comment TEXT] [--url U] [--json]';

export const ACK_OPTIONS = { url: { type: 'string' }, by: { type: 'string' }, comment: { type: 'string', short: 'm' }, json: { type: 'boolean' } } as const;

export const INCIDENTS_USAGE = 'greenlight incidents [--all] [--url U] [--json]';

export const INCIDENTS_OPTIONS = { url: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } } as const;

/** `greenlight flags` as the CLI's help shows it. */
export const FLAGS_USAGE = 'greenlight flags list|set K=V…|emergency-rollback [--url U] [--env E] [--reason R] [--json]';

/** The options `greenlight flags` takes, for parseArgs. */
export const FLAGS_OPTIONS = {
  url: { type: 'string' },
  env: { type: 'string', short: 'e' },
  reason: { type: 'string', short: 'r' },
  json: { type: 'boolean' },
} as const;

export const MAINTENANCE_USAGE = `greenlight maintenance start --env NAME (--for D | --until TIME) --reason TEXT [--by NAME] [--url U] [--json]
       greenlight maintenance stop --env NAME [--by NAME] [--url U]
       greenlight maintenance list [--url U] [--json]`;

export const MAINTENANCE_OPTIONS = {
  url: { type: 'string' },
  env: { type: 'string', short: 'e' },
  for: { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string', short: 'r' },
  by: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const PROMOTE_USAGE = 'greenlight promote --to NAME [--url U] [--emergency --reason TEXT] [--major] [--deploy] [--watch D] [--no-wait] [--json]';

export const PROMOTE_OPTIONS = {
  to: { type: 'string', short: 't' },
  url: { type: 'string' },
  emergency: { type: 'boolean' },
  reason: { type: 'string', short: 'r' },
  major: { type: 'boolean' },
  deploy: { type: 'boolean' },
  watch: { type: 'string' },
  'no-wait': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const REPORT_USAGE = 'greenlight report [--since 7d] [--format md|json|html] [--url U | --config F]';

export const SILENCE_USAGE = `greenlight silence add MATCHER… --comment TEXT [--author NAME] [--duration D | --end TIME] [--start TIME] [--url U] [--json]
       greenlight silence list [--all] [--url U] [--json]
       greenlight silence expire ID… [--author NAME] [--url U]
  MATCHER: label=value, label!=value, label=~regex, label!~regex over rule, severity, env, probe and the rule's labels
  (rule=live-universe-failing env=green); --duration defaults to 1h; TIME is ISO-8601 (2026-03-14T17:00:00Z)`;

export const SILENCE_OPTIONS = {
  url: { type: 'string' },
  comment: { type: 'string', short: 'm' },
  author: { type: 'string', short: 'a' },
  duration: { type: 'string', short: 'd' },
  start: { type: 'string' },
  end: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/**
 * The configuration schema. Every object is strict, so a misspelt key is an error rather than a
 * silently ignored setting. Human units (durations, sizes, JSON paths) are checked here and
 * converted to numbers and compiled paths, so nothing downstream parses text again.
 */
import { validate as isValidCron } from 'node-cron';
import { z } from 'zod';
import { parseJsonPath, type PathSegment } from './json-path.js';
import { LABEL_NAME, matcherProblem, parseMatcher, type LabelMatcher } from './matchers.js';
import { formatDuration, HIDDEN_KEY, MIN_WINDOW_MS, mayHoldValue, parseByteSize, parseDuration, quote } from './units.js';
import { regexProblem } from './user-regex.js';

const DURATION_PATTERN = '^(\\d+(\\.\\d+)?(ms|s|m|h|d)|\\$\\{[^}]+\\})$';

/**
 * A span of any length, as milliseconds: a period, an age, a sliding window. Only for what is
 * compared with the clock and never waited for on a timer (Duration is for everything else).
 */
export const LongDuration = z
  .string({ error: (issue) => `${quote(issue.input)} is not a duration such as 500ms, 5s or 2m` })
  .refine((text) => parseDuration(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a duration such as 500ms, 5s or 2m`,
  })
  .transform((text) => parseDuration(text)!)
  // Some 310 digits are more than a double holds: the span would be Infinity, a window without end.
  .refine((ms) => Number.isFinite(ms), { error: 'is too large a number to be a duration', abort: true })
  .meta({ description: 'A duration: a number and a unit, ms, s, m, h or d (250ms, 5s, 2m, 1h, 90d).', pattern: DURATION_PATTERN });

/**
 * A window the agent keeps as a ring of time buckets: a sliding window, an SLO's period and its
 * burn-rate windows. Shorter than MIN_WINDOW_MS its buckets are shorter than the shortest probe
 * interval, and a zero-length one (`0s`) never finished rotating: the agent spun, answering nothing.
 */
const WindowSpan = LongDuration.refine((ms) => ms >= MIN_WINDOW_MS, {
  error: `must be at least ${formatDuration(MIN_WINDOW_MS)}: a window is 30 time buckets, none shorter than the shortest probe interval (10ms)`,
}).meta({ description: 'A window: a duration of at least 300ms (250ms, 5s, 2m, 1h, 90d are durations).', pattern: DURATION_PATTERN });

/**
 * The longest a duration greenlight may wait for on a timer can be. Node's timers cannot wait more
 * than 2^31 - 1 ms (24.8 days): a longer delay silently becomes 1 ms, so a 30d `traffic.timeout`
 * would give up on every switch at once, and a 30d `repeatInterval` would re-send in a loop.
 */
const MAX_DURATION_MS = 24 * 86_400_000;

/** A duration such as 250ms, 5s, 2m or 1h, as milliseconds, up to 24d: a timeout, an interval, a wait. */
export const Duration = LongDuration.refine((ms) => ms <= MAX_DURATION_MS, {
  error: (issue) =>
    `${formatDuration(issue.input as number)} is longer than 24d: greenlight waits for this on a timer, and a timer cannot wait longer than 24.8 days`,
}).meta({ description: 'A duration: a number and a unit, ms, s, m, h or d (250ms, 5s, 2m, 1h), at most 24d.', pattern: DURATION_PATTERN });

/**
 * The interval of something that repeats (probes, polls, sweeps): 0 would run it back to back,
 * and for a probe the scheduler would never leave the turn that plans its ticks.
 */
function intervalOfAtLeast(ms: number) {
  return Duration.refine((value) => value >= ms, { error: `must be at least ${formatDuration(ms)}` });
}

/** A probe's interval, and a poll's (of a switch step, of Render's API). */
const RepeatInterval = intervalOfAtLeast(10);

/** How often a retention sweep (the journal's, the rollups') enforces its bounds. */
const SweepInterval = intervalOfAtLeast(1_000)
  .default(600_000)
  .meta({ description: 'How often the bounds are enforced (also once at start), at least 1s. Default 10m.' });

const ByteSize = z
  .union([z.int().positive(), z.string()], {
    error: (issue) => `${quote(issue.input)} is not a size such as 65536, 512KiB or 1MiB`,
  })
  .refine((value) => typeof value === 'number' || (parseByteSize(value) ?? 0) > 0, {
    error: (issue) => `${quote(issue.input)} is not a size such as 65536, 512KiB or 1MiB`,
  })
  .transform((value) => (typeof value === 'number' ? value : parseByteSize(value)!))
  .meta({ description: 'A size in bytes: a number, or with a unit (512KiB, 1MiB, 5MB).' });

/**
 * The most of an answer a probe reads: it holds the whole answer while its checks read it, for
 * every series at once, so a target that sends without end must not take the agent's memory.
 */
const ProbeBodyLimit = ByteSize.refine((bytes) => bytes <= 64 * 1_048_576, {
  error: 'must be at most 64MiB: a probe holds the whole answer in memory while its checks read it',
});

const Timezone = z
  .string()
  .refine(isTimezone, { error: (issue) => `${quote(issue.input)} is not an IANA time zone such as America/New_York` })
  .meta({ description: 'An IANA time zone name such as America/New_York.' });

export const JsonPath = z
  .string()
  .refine((text) => parseJsonPath(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a JSON path such as $.status, $.database.connected or $.universe[0].symbol`,
  })
  .transform((text): CompiledPath => ({ text, segments: parseJsonPath(text)! }))
  .meta({ description: "A JSON path: $ then .name, ['name'] or [index] steps." });

const RegexText = z.string().superRefine((text, ctx) => {
  const problem = regexProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: `${quote(text)} ${problem}` });
});

export const Name = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, {
  error: (issue) =>
    `${typeof issue.input === 'string' && mayHoldValue(issue.input) ? `the key (${HIDDEN_KEY})` : quote(issue.input)} is not a name: use lower-case letters, digits, - and _, starting with a letter`,
});

const Listen = z
  .string()
  .refine((text) => parseListen(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a listen address such as 127.0.0.1:9464, :9464 or [::1]:9464`,
  })
  .transform((text) => parseListen(text)!);

export const HttpUrl = z
  .url({ protocol: /^https?$/, error: (issue) => `${quote(issue.input)} is not an http:// or https:// URL` })
  .transform((text) => text.replace(/\/+$/, ''));

/** Status codes: 200, "2xx", "200-299". */
const StatusSpec = z
  .union(
    [
      z.int().min(100).max(599),
      z
        .string()
        .regex(/^([1-5]xx|\d{3}-\d{3})$/, { error: (issue) => `${quote(issue.input)} is not a status code, a class such as 2xx, or a range such as 200-299` }),
    ],
    {
      error: (issue) => `${quote(issue.input)} is not a status code, a class such as 2xx, or a range such as 200-299`,
    },
  )
  .transform((spec): StatusRange => {
    if (typeof spec === 'number') return [spec, spec];
    if (spec.endsWith('xx')) {
      const base = Number(spec[0]) * 100;
      return [base, base + 99];
    }
    const [low, high] = spec.split('-').map(Number) as [number, number];
    return [low, high];
  });

/** The kinds of JSON value an `is` assertion names. */
export const JSON_KINDS = ['list', 'object', 'string', 'number', 'boolean', 'null'] as const;
/** Every operator of a JSON assertion: each present becomes its own check. */
export const JSON_OPERATORS = ['equals', 'notEquals', 'in', 'exists', 'nonEmpty', 'is', 'gt', 'gte', 'lt', 'lte', 'length', 'matches'] as const;
const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const Comparison = z.strictObject({
  equals: z.number().optional(),
  gt: z.number().optional(),
  gte: z.number().optional(),
  lt: z.number().optional(),
  lte: z.number().optional(),
});

/** One assertion on a JSON body value; every operator present on it becomes its own check. */
const JsonAssertion = z
  .strictObject({
    path: JsonPath,
    equals: Scalar.optional(),
    notEquals: Scalar.optional(),
    in: z.array(Scalar).min(1).optional(),
    exists: z.boolean().optional(),
    nonEmpty: z.boolean().optional(),
    // `is: null` in YAML is the null value, not the word: both name the kind.
    is: z
      .preprocess((value) => (value === null ? 'null' : value), z.enum(JSON_KINDS))
      .optional()
      .meta({ description: 'The kind of value: list, object, string, number, boolean or null (a universe of "[]" is a string, not a list).' }),
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
    length: z.union([z.int().nonnegative(), Comparison]).optional(),
    matches: RegexText.optional(),
  })
  .refine((a) => JSON_OPERATORS.some((op) => a[op] !== undefined), {
    error: `names no operator: add one of ${JSON_OPERATORS.join(', ')}`,
  });

const HeaderAssertion = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .transform((name) => name.toLowerCase()),
    equals: z.string().optional(),
    matches: RegexText.optional(),
    exists: z.boolean().optional(),
  })
  .refine((a) => a.equals !== undefined || a.matches !== undefined || a.exists !== undefined, {
    error: 'names no operator: add one of equals, matches, exists',
  });

const Expect = z.strictObject({
  status: z
    .array(StatusSpec)
    .min(1)
    .default([[200, 299]])
    .meta({ description: 'Accepted status codes: 200, "2xx" or "200-299". Default 2xx.' }),
  maxLatency: Duration.optional().meta({ description: 'The probe fails when the full response takes longer than this.' }),
  json: z.array(JsonAssertion).default([]).meta({ description: 'Assertions on the JSON body.' }),
  headers: z.array(HeaderAssertion).default([]).meta({ description: 'Assertions on response headers.' }),
});

const Extraction = z.union([
  JsonPath.transform((path) => ({ path, lines: [] as number[] })),
  z.strictObject({
    path: JsonPath,
    lines: z.array(z.number()).default([]).meta({ description: 'Thresholds to track: the window reports how long the value has stayed above each.' }),
  }),
]);

/**
 * Confirmation probing: after a scheduled probe of the live environment fails (or recovers), up
 * to `count` quick re-probes `spacing` apart, each only while the results agree. The agent's
 * scheduler runs them; README, "Confirmation probing".
 */
const ConfirmCount = z
  .int()
  .min(0)
  .max(10)
  .meta({ description: 'Quick re-probes after a live probe fails or recovers, each only while the results agree (0: off).' });

const ConfirmDefaults = z.strictObject({
  count: ConfirmCount.default(0),
  spacing: Duration.default(100).meta({ description: 'Time between the result that starts a confirmation and each re-probe. Default 100ms.' }),
  maxPerSecond: z
    .int()
    .min(1)
    .max(100)
    .default(5)
    .meta({ description: 'Rate cap: at most this many re-probes per second against one environment, over all its probes. Default 5.' }),
});

const ProbeConfirm = z.strictObject({
  count: ConfirmCount.optional(),
  spacing: Duration.optional().meta({ description: 'Time between re-probes. Default: probeDefaults.confirm.spacing.' }),
});

const Probe = z
  .strictObject({
    name: Name.meta({ description: 'Used as the `probe` label: keep it short and stable.' }),
    description: z.string().optional(),
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
    path: z.string().startsWith('/', { error: (issue) => `${quote(issue.input)} is not a path: it must start with /` }),
    headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Request headers; take secrets from the environment with ${VAR}.' }),
    body: z
      .union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())])
      .optional()
      .meta({ description: 'Request body: a string as is, or YAML mapping/list sent as JSON.' }),
    every: RepeatInterval.optional().meta({ description: 'Interval between probes (jittered), at least 10ms. Default: probeDefaults.every.' }),
    cron: z
      .string()
      .refine((expr) => isValidCron(expr), { error: (issue) => `${quote(issue.input)} is not a cron expression such as "*/10 * * * * *" or "0 9-16 * * 1-5"` })
      .optional()
      .meta({ description: 'A cron expression (optional seconds field) instead of `every`.' }),
    timezone: Timezone.optional().meta({ description: 'Time zone of `cron`. Default: the top-level timezone.' }),
    timeout: Duration.optional(),
    maxBodyBytes: ProbeBodyLimit.optional(),
    environments: z.array(z.string()).min(1).optional().meta({ description: 'Environments to probe. Default: all.' }),
    expect: Expect.prefault({}),
    extract: z.record(Name, Extraction).default({}).meta({ description: 'Numbers to read from the JSON body, such as memory and cpu percent.' }),
    confirm: ProbeConfirm.optional().meta({
      description: 'Confirmation probing for this probe; what it leaves out comes from probeDefaults.confirm (the rate cap always does).',
    }),
  })
  .refine((p) => p.every === undefined || p.cron === undefined, { error: 'give either every or cron, not both', path: ['cron'] });

const EnvironmentTls = z.strictObject({
  ca: z.string().min(1).optional().meta({
    description:
      "A PEM file of CA certificates the environment's https certificate is verified against, in addition to the usual roots (a private CA). Relative paths are from the working directory.",
  }),
});

const Environment = z.strictObject({
  url: HttpUrl.meta({ description: 'Base URL of the environment; probe paths are appended to it.' }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Headers sent with every probe of this environment.' }),
  tls: EnvironmentTls.optional().meta({ description: 'TLS settings of an https environment.' }),
});

const ProbeDefaults = z.strictObject({
  every: RepeatInterval.default(5_000).meta({ description: 'Interval between probes (jittered), at least 10ms.' }),
  timeout: Duration.default(2_000),
  maxBodyBytes: ProbeBodyLimit.default(1_048_576),
  jitter: z
    .number()
    .min(0)
    .max(0.5)
    .default(0.1)
    .meta({ description: 'Fraction of the interval by which each tick is randomly moved, so probes do not fire in lockstep.' }),
  confirm: ConfirmDefaults.prefault({}).meta({
    description:
      'Confirmation probing of the live environment: quick re-probes after a failure or a recovery, so a streak is known in a fraction of the interval. Off (count 0) unless set here or on a probe.',
  }),
});

export const Severity = z.enum(['warning', 'critical']);

/**
 * A condition tree in json-rules-engine's shape: `all`, `any` or `not` over leaves
 * `{fact, operator, value, params}`. Which facts and operators exist is checked when the rules
 * are compiled (rules/), where the catalog lives.
 */
export type ConditionConfig =
  | { all: ConditionConfig[] }
  | { any: ConditionConfig[] }
  | { not: ConditionConfig }
  | { fact: string; operator: string; value: unknown; params?: Record<string, unknown> };

const Condition: z.ZodType<ConditionConfig> = z.lazy(() =>
  z.union(
    [
      z.strictObject({ all: z.array(Condition).min(1) }),
      z.strictObject({ any: z.array(Condition).min(1) }),
      z.strictObject({ not: Condition }),
      z.strictObject({
        fact: z.string().min(1),
        operator: z.string().min(1),
        value: z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.union([z.string(), z.number(), z.boolean()]))]),
        params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])).optional(),
      }),
    ],
    { error: 'is not a condition: use {all: [...]}, {any: [...]}, {not: ...} or {fact, operator, value, params}' },
  ),
);

const Rule = z.strictObject({
  name: Name,
  description: z.string().optional(),
  severity: Severity,
  env: z.string().default('live').meta({ description: 'Whose figures the facts read by default: live (default), idle, or an environment name.' }),
  when: Condition.meta({ description: 'json-rules-engine conditions over the facts (README, "Rules").' }),
  for: Duration.default(0).meta({ description: 'How long the condition must hold before the rule fires.' }),
  keepFiringFor: Duration.default(0).meta({ description: 'How long a firing rule stays firing after its condition stops holding.' }),
  minSamples: z
    .int()
    .min(1)
    .default(1)
    .meta({ description: "Probes the rule's windows must hold before it may fire, so a quiet window never fires on one failure." }),
  cooldown: Duration.default(0).meta({
    description:
      'After an incident that acted resolves (it switched traffic; for a rule without a rollback, an action succeeded), the rule does not fire again about that environment for this long. A traffic switch ends every cooldown. Default 0s.',
  }),
  labels: z.record(z.string(), z.string()).default({}),
  repeatInterval: Duration.optional().meta({
    description:
      "How often this rule's alert is sent again while it fires; 0s: never, one notification per incident (a certificate's days left). Default: alerts.repeatInterval.",
  }),
  message: z.string().optional().meta({ description: 'Template: {{rule}}, {{env}}, {{severity}} and the figures, e.g. {{errorRatio}}.' }),
  actions: z.array(Name).default([]).meta({ description: 'Names of entries of `actions` to run when the rule fires.' }),
});

/**
 * A bearer token. `Authorization: Bearer <token>` carries one word of visible ASCII: a token with
 * a space, a control character or a non-ASCII letter could never be sent whole, so it could
 * never authenticate, and every call would answer 401 at the worst moment. Refused here instead,
 * naming the key and where the bad character is (never the token itself).
 */
const Token = z
  .string()
  .superRefine((token, ctx) => {
    if (token === '')
      return void ctx.addIssue({ code: 'custom', message: 'is empty: a token that can never authenticate; set it (32 random characters) or remove the key' });
    const bad = /[^\x21-\x7e]/.exec(token);
    if (bad) {
      const char = bad[0];
      const what =
        char === ' '
          ? 'a space'
          : /[\u0000-\u001f\u007f-\u009f]/.test(char)
            ? `a control character (U+${char.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()})`
            : `a non-ASCII character (${char})`;
      return void ctx.addIssue({
        code: 'custom',
        message: `has ${what} at position ${bad.index + 1}: a bearer token is one word of visible ASCII characters, so this one could never authenticate; use letters, digits and -._~+/ (openssl rand -hex 16)`,
      });
    }
    if (token.length < 8) ctx.addIssue({ code: 'custom', message: 'is too short: use at least 8 characters (better 32 random ones)' });
  })
  .meta({ description: 'A bearer token: at least 8 visible ASCII characters, no spaces.', pattern: '^([!-~]{8,}|.*\\$\\{[^}]+\\}.*)$' });

/**
 * A service level objective over a set of probes: `objective` of them must be good over `period`.
 * Rules read its burn rate over any window and the budget left (README, "SLOs").
 */
const Slo = z.strictObject({
  description: z.string().optional(),
  objective: z
    .number({ error: (issue) => `${quote(issue.input)} is not an objective: a share of good probes above 0 and below 1, such as 0.995 for 99.5 %` })
    .gt(0, { error: 'must be above 0: a share of good probes such as 0.995 for 99.5 %' })
    .lt(1, { error: 'must be below 1: an objective of 100 % leaves no error budget to burn' })
    .meta({ description: 'The share of probes that must be good, such as 0.995 (99.5 %).' }),
  period: WindowSpan.default(30 * 86_400_000).meta({ description: 'The period the error budget is for. Default 30d.' }),
  probes: z.array(z.string()).min(1).optional().meta({ description: 'The probes it counts. Default: all.' }),
  latency: Duration.optional().meta({ description: 'A probe that succeeds but takes longer than this counts as bad too.' }),
  windows: z
    .array(WindowSpan)
    .default([])
    .meta({ description: 'Burn-rate windows to keep for the state and /metrics besides those rules read (their period is always kept).' }),
});

/** An origin a browser sends (`https://dash.example.com`, `http://10.0.0.5:3000`): scheme, host and port only. */
const AllowedOrigin = z
  .string()
  .refine((text) => originOf(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not an origin such as https://dash.example.com or http://10.0.0.5:3000 (scheme, host and port; no path)`,
  })
  .transform((text) => originOf(text)!);

/** A name the agent answers to, with or without a port (`greenlight.internal`, `greenlight.internal:9464`). */
const AllowedHost = z
  .string()
  .refine((text) => hostEntry(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a host name such as greenlight.internal or greenlight.internal:9464`,
  })
  .transform((text) => hostEntry(text)!);

const Api = z.strictObject({
  adminToken: Token.optional().meta({ description: 'Bearer token for every admin call. Take it from ${ADMIN_TOKEN}.' }),
  rollbackToken: Token.optional().meta({
    description: 'Bearer token for the emergency path only (rollback, emergency flags). Take it from ${ROLLBACK_TOKEN}.',
  }),
  streamToken: Token.optional().meta({
    description:
      'When set, reading the event history needs it — the stream (Authorization: Bearer, or ?token=) and GET /api/v1/events (Authorization: Bearer); the admin and rollback tokens work too. Default: both are open.',
  }),
  stream: z
    .strictObject({
      maxClients: z
        .int()
        .min(1, { error: 'must be at least 1' })
        .max(100_000, { error: 'must be at most 100000' })
        .default(256)
        .meta({ description: 'Stream clients at once; one more is refused with 503 at the upgrade. Default 256.' }),
      maxClientsPerAddress: z.int().min(1, { error: 'must be at least 1' }).max(100_000, { error: 'must be at most 100000' }).default(32).meta({
        description:
          'Stream clients at once from one remote address; one more is refused with 429. Behind a proxy every client has its address: raise it. Default 32.',
      }),
    })
    .prefault({})
    .meta({ description: 'Limits of the WebSocket event stream.' }),
  allowedOrigins: z
    .array(AllowedOrigin)
    .default([])
    .meta({ description: "Origins besides the agent's own whose web pages may open the event stream (a WebSocket from any other page is refused with 403)." }),
  allowedHosts: z.array(AllowedHost).default([]).meta({
    description:
      'Host names the agent answers to besides IP addresses and localhost (others get 421: a guard against DNS rebinding). Listening on a loopback address, only these; listening elsewhere, any name while the list is empty.',
  }),
});

/** How long and how large the event journal may grow: the oldest events are deleted first, by either bound. */
const Journal = z.strictObject({
  retention: z
    .strictObject({
      maxAge: LongDuration.default(90 * 86_400_000).meta({ description: 'Events older than this are deleted. Default 90d.' }),
      maxSize: ByteSize.default(512 * 1_048_576).meta({
        description: 'The state database is kept under this size by deleting the oldest events. Default 512MiB.',
      }),
      every: SweepInterval,
    })
    .prefault({}),
});

/**
 * The rollups behind reports (issue 16): their own retention, in their own file (rollups.db) so
 * that the journal's bounds and theirs never trade against each other.
 */
const Rollups = z.strictObject({
  retention: z
    .strictObject({
      maxAge: LongDuration.default(90 * 86_400_000).meta({
        description: 'Hourly rollups older than this are deleted: the longest period a report can cover. Default 90d.',
      }),
      maxSize: ByteSize.default(256 * 1_048_576).meta({
        description: 'The rollup database (rollups.db) is kept under this by deleting the oldest rollups. Default 256MiB (90 days of 1,000 series).',
      }),
      minuteAge: LongDuration.refine((ms) => ms >= 2 * 3_600_000, { error: 'must be at least 2h: the last full hour stays readable minute by minute' })
        .default(86_400_000)
        .meta({ description: 'Per-minute rollups are kept this long; after that only the hourly ones. Default 1d.' }),
      every: SweepInterval,
    })
    .prefault({}),
});

/** A scheduled report: the Markdown summary posted to receivers of alerts.receivers. */
const ReportSchedule = z.strictObject({
  name: Name.optional().meta({ description: 'Names the schedule in events and logs. Default: report-<index>.' }),
  cron: z
    .string()
    .refine((expr) => isValidCron(expr), { error: (issue) => `${quote(issue.input)} is not a cron expression such as "0 8 * * 1" (Mondays 08:00)` })
    .meta({ description: 'When to send it: a cron expression (optional seconds field), in `timezone`.' }),
  timezone: Timezone.optional().meta({ description: "Time zone of `cron` and of the report's dates. Default: the top-level timezone." }),
  since: LongDuration.refine((ms) => ms >= 60_000 && ms <= 400 * 86_400_000, { error: 'must be from 1m to 400d' })
    .default(7 * 86_400_000)
    .meta({ description: 'The period the report covers, up to the moment it is sent. Default 7d.' }),
  receivers: z
    .array(Name)
    .min(1, { error: 'needs at least one receiver name from alerts.receivers' })
    .meta({ description: 'Names of alerts.receivers to post it to (slack, discord or webhook receivers).' }),
});

/** What every step after a switch has: a name for events and output, and a deadline. */
function stepBase(kind: string, timeout: number, timeoutText: string) {
  return {
    name: Name.optional().meta({ description: `Shown in events and the promote output. Default: ${kind} (name a second ${kind} step to tell them apart).` }),
    timeout: Duration.default(timeout).meta({ description: `The step fails when it has not finished within this. Default ${timeoutText}.` }),
  };
}

/** The steps after every switch (the switch phase), in the order listed. */
function switchStep(cdn: z.ZodType<PluginBlock>) {
  const steps = [
    z.strictObject({
      step: z.literal('cdn'),
      ...stepBase('cdn', 30_000, '30s'),
      purge: cdn,
    }),
    z.strictObject({
      step: z.literal('tls'),
      ...stepBase('tls', 10_000, '10s'),
      url: HttpUrl.refine((url) => url.startsWith('https:'), {
        error: 'is not an https:// URL: the tls step checks the certificate the public address serves',
      }).meta({
        description: 'The public address (https://dashboard.desk.example): its certificate chain must verify for the host and expire later than `margin`.',
      }),
      margin: LongDuration.default(7 * 86_400_000).meta({ description: 'The step fails when the chain expires sooner than this. Default 7d.' }),
      ca: z.string().min(1).optional().meta({
        description: "A PEM file of CAs trusted besides Node's (and NODE_EXTRA_CA_CERTS), for a private CA; relative paths are from the working directory.",
      }),
    }),
    z.strictObject({
      step: z.literal('verify'),
      ...stepBase('verify', 60_000, '60s'),
      url: HttpUrl.meta({ description: "A public URL through the CDN whose JSON names the environment answering (AlphaStack's /api/health)." }),
      jsonPath: JsonPath.default({ text: '$.environment', segments: ['environment'] }).meta({
        description: 'Where the answer names the environment. Default $.environment.',
      }),
      streak: z
        .int()
        .min(1)
        .max(20)
        .default(3)
        .meta({ description: 'Answers in a row, each on a new connection, that must name the new environment. Default 3.' }),
      interval: RepeatInterval.default(1_000).meta({ description: 'Pause between two polls, at least 10ms. Default 1s.' }),
    }),
  ];
  const kinds = ['cdn', 'tls', 'verify'];
  return z
    .looseObject({ step: z.string({ error: `needs a step: one of ${kinds.join(', ')}` }) })
    .pipe(
      z.custom<z.output<(typeof steps)[number]>>().superRefine((value, ctx) => {
        const schema = steps[kinds.indexOf(value.step)];
        if (!schema) {
          ctx.addIssue({ code: 'custom', path: ['step'], message: `${quote(value.step)} is not a step after a switch: use one of ${kinds.join(', ')}` });
          return;
        }
        const result = schema.safeParse(value, { reportInput: true });
        if (!result.success) for (const issue of result.error.issues) ctx.addIssue(issue as never);
      }),
    )
    .transform((value) => {
      // Only reached with the issues above already reported (refinements do not abort): never throw here.
      const result = steps[kinds.indexOf(value.step)]?.safeParse(value);
      return (result?.success ? result.data : value) as z.output<(typeof steps)[number]>;
    })
    .meta({ description: 'A step after every switch: cdn, tls or verify.', anyOf: steps.map((schema) => pluginJsonSchema(schema)) });
}

/** What every traffic switch checks first and does after, whoever asks for it (a rule, an operator, a promotion, a restart). */
function switchingSchema(cdn: z.ZodType<PluginBlock>) {
  return z.strictObject({
    verifyTimeout: Duration.default(1_000).meta({
      description:
        'Before any switch, every interval probe of the target runs again, now; each must pass within this deadline or the switch is refused (an answer still in flight is unknown, never up). A scheduled probe in flight for longer than this also makes its environment unknown. Default 1s.',
    }),
    steps: z.array(switchStep(cdn)).max(20).default([]).meta({
      description:
        'Run after every switch (promotion, revert, rule and manual rollback), in this order: cdn (purge the cache), tls (the public certificate), verify (a public URL names the new environment). A failed step fails a promotion (it switches back); after a rollback it alerts (critical) and never switches again.',
    }),
  });
}

const Flags = z.strictObject({
  readOnlyOnEmergency: z.boolean().default(false).meta({ description: 'Whether the emergency-rollback preset also turns READ_ONLY_MODE on.' }),
  initial: z
    .record(z.string(), z.record(z.string(), z.boolean()))
    .default({})
    .meta({ description: 'Per environment, flag values to start from instead of the defaults.' }),
});

const ClockTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, { error: (issue) => `${quote(issue.input)} is not a time of day such as 16:00 (00:00 to 24:00)` })
  .transform((text) => Number(text.slice(0, 2)) * 60 + Number(text.slice(3)));

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const DeployWindow = z
  .strictObject({
    days: z.array(z.enum(WEEKDAYS)).min(1).meta({ description: "Days of the week, in the windows' time zone: mon, tue, wed, thu, fri, sat, sun." }),
    from: ClockTime.meta({ description: 'Opens at this local time (HH:MM).' }),
    to: ClockTime.meta({ description: 'Closes at this local time (HH:MM, 24:00 for midnight); the window is [from, to).' }),
  })
  .refine((w) => w.to > w.from, { error: 'closes before it opens: to must be later than from on the same day (use 24:00 for midnight)', path: ['to'] });

const DeployWindows = z.strictObject({
  enabled: z.boolean().default(true).meta({ description: 'When false, promotion is allowed at any time.' }),
  timezone: Timezone.optional().meta({ description: 'Time zone of the windows. Default: the top-level timezone (America/New_York).' }),
  feature: z
    .array(DeployWindow)
    .prefault([{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '16:00', to: '18:00' }])
    .meta({ description: 'When feature releases may be promoted. Default weekdays 16:00-18:00, after the market close.' }),
  major: z
    .array(DeployWindow)
    .prefault([{ days: ['sat', 'sun'], from: '00:00', to: '24:00' }])
    .meta({ description: 'When major updates (promote --major) may be promoted. Default all weekend.' }),
});

const PreflightCommand = z.strictObject({
  name: Name.meta({ description: 'Shown in the step list: clean-tree, critical-files.' }),
  command: z.array(z.string().min(1)).min(1).meta({ description: 'Program and arguments, run without a shell; exit 0 passes.' }),
  timeout: Duration.default(30_000),
  cwd: z.string().optional(),
});

const Promote = z.strictObject({
  preflight: z
    .array(PreflightCommand)
    .default([])
    .meta({ description: 'Commands that must exit 0 before anything else: a clean git tree, critical files present.' }),
  requireProtection: z.boolean().default(true).meta({ description: "Refuse unless the target's ALPHASTACK_PROTECTION flag is on." }),
  healthyRounds: z.int().min(1).max(100).default(3).meta({ description: "Rounds of all the target's probes that must pass in a row." }),
  roundInterval: Duration.default(1_000).meta({ description: 'Pause between two probe rounds.' }),
  load: z
    .strictObject({
      enabled: z.boolean().default(true),
      rps: z.number().positive().max(100_000).default(20).meta({ description: 'Requests per second, paced (open model) over the probe paths.' }),
      duration: Duration.default(10_000),
      maxP95: Duration.default(2_000).meta({ description: 'The gate fails when the 95th percentile latency reaches this.' }),
      maxErrorRatio: z.number().min(0).max(1).default(0.05).meta({ description: 'The gate fails when this share of requests fail or more.' }),
      timeout: Duration.default(5_000).meta({ description: 'Deadline of one request.' }),
      connections: z.int().min(1).max(1_024).default(32),
    })
    .prefault({}),
  verifyRounds: z.int().min(1).max(20).default(2).meta({ description: "After the switch, rounds of the target's probes that must pass." }),
  watch: Duration.default(300_000).meta({
    description: 'After the switch, how long the critical rules watch the new environment; a rollback in that time fails the promotion.',
  }),
  validateAfterRollback: z.boolean().default(true).meta({ description: 'Run the rollback validation after every rollback (a rollback.validated event).' }),
  validation: z
    .strictObject({
      healthProbe: Name.default('health').meta({ description: 'The probe whose endpoint and body (database.connected) are checked.' }),
      safeMode: z
        .enum(['idle', 'live', 'off'])
        .default('idle')
        .meta({ description: 'Whose flags must be in the emergency-rollback preset: the environment rolled away from (idle), the live one, or none (off).' }),
      errorWindow: Duration.default(60_000).meta({
        description: 'The window whose error ratio must be back under maxErrorRatio on the live environment (one of `windows`).',
      }),
      maxErrorRatio: z.number().min(0).max(1).default(0.05).meta({ description: 'The warning line.' }),
      settle: Duration.default(2_000).meta({ description: 'Wait after the rollback before validating.' }),
    })
    .prefault({}),
});

const Render = z.strictObject({
  apiKey: z.string().min(1).optional().meta({ description: 'Render API key: ${RENDER_API_KEY}. Without it deploys and env diff are off.' }),
  services: z
    .record(
      z.string(),
      z.string().regex(/^[A-Za-z0-9_-]+$/, { error: (issue) => `${quote(issue.input)} is not a Render service id such as srv-cu1h2k3l4m5n6o7p8q9r` }),
    )
    .default({})
    .meta({ description: 'Per environment, its Render service id: ${RENDER_BLUE_SERVICE_ID}, ${RENDER_GREEN_SERVICE_ID}.' }),
  baseUrl: HttpUrl.default('https://api.render.com/v1'),
  timeout: Duration.default(10_000).meta({ description: 'Deadline of one API request.' }),
  retries: z
    .int()
    .min(0)
    .max(10)
    .default(4)
    .meta({ description: 'Tries after the first fails (network error, 5xx, 429 after Retry-After / Ratelimit-Reset).' }),
  deployTimeout: Duration.default(1_800_000).meta({ description: 'How long a deploy may take to go live.' }),
  pollInterval: RepeatInterval.default(5_000).meta({ description: "How often the deploy's status is read, at least 10ms." }),
});

// --- The alert lifecycle (README, "Alert lifecycle"): grouping, inhibition, escalation, maintenance.

const LabelName = z
  .string()
  .regex(LABEL_NAME, { error: (issue) => `${quote(issue.input)} is not a label name (letters, digits and _, not starting with a digit)` });

/** `name=value`, `name!=value`, `name=~regex`, `name!~regex`, or `{name, value, isRegex, isEqual}` as the silences API takes it. */
const Matcher = z
  .union([z.string(), z.strictObject({ name: z.string(), value: z.string(), isRegex: z.boolean().default(false), isEqual: z.boolean().default(true) })], {
    error: 'is not a matcher: write name=value, name!=value, name=~regex or name!~regex, or {name, value, isRegex, isEqual}',
  })
  .transform((spec, ctx): LabelMatcher => {
    const parsed = typeof spec === 'string' ? parseMatcher(spec) : spec;
    const problem = 'error' in parsed ? parsed.error : matcherProblem(parsed);
    if (problem !== undefined) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return parsed as LabelMatcher;
  })
  .meta({ description: 'A label matcher: name=value, name!=value, name=~regex (anchored), name!~regex; a label an alert lacks matches as "".' });

const Matchers = z.array(Matcher).min(1, { error: 'needs at least one matcher' });

const AlertGroup = z.strictObject({
  by: z
    .array(z.union([LabelName, z.literal('...')]))
    .default(['env'])
    .meta({
      description:
        'Labels whose values make a group: alerts that agree on them go out together. ["..."]: every alert on its own; []: one group per receiver. Default [env].',
    }),
  wait: Duration.default(5_000).meta({
    description:
      "A new group's first notification waits this long for the alerts that come with the first one; also the longest a critical new to its group waits. Default 5s.",
  }),
  interval: Duration.default(60_000).meta({
    description: 'After a group was notified, its next change (an alert added or resolved) goes out this long after, at the soonest. Default 1m.',
  }),
});

const InhibitRule = z.strictObject({
  name: z.string().min(1).optional().meta({ description: 'Names the rule in the alert.muted event and the state.' }),
  sourceMatchers: Matchers.meta({ description: 'A firing alert matching these mutes…' }),
  targetMatchers: Matchers.meta({ description: '…the notifications of alerts matching these…' }),
  equal: z.array(LabelName).default([]).meta({ description: '…when both have the same value (or both lack) each of these labels.' }),
});

/** The stock inhibitions: one fault, one page (README, "Alert lifecycle"). */
export const STOCK_INHIBITIONS = [
  { name: 'critical-mutes-warnings', sourceMatchers: ['severity=critical'], targetMatchers: ['severity=warning'], equal: ['env'] },
  { name: 'health-mutes-other-probes', sourceMatchers: ['probe=health'], targetMatchers: ['probe=~".+"', 'probe!=health'], equal: ['env'] },
  { name: 'both-failing-mutes-environment', sourceMatchers: ['rule=rollback-inconclusive'], targetMatchers: ['rule!=rollback-inconclusive'], equal: ['env'] },
];

const EscalationLevel = z.strictObject({
  after: Duration.meta({ description: 'How long after the incident started this level is reached (while it is unacknowledged).' }),
  receivers: z
    .array(z.string().min(1))
    .min(1)
    .default(['*'])
    .meta({ description: 'Names of alerts.receivers this level notifies ("*": every receiver); each still takes only its severities. Default ["*"].' }),
});

const EscalationPolicy = z
  .strictObject({
    name: Name.meta({ description: 'Names the policy in the incidents API and events.' }),
    matchers: z.array(Matcher).default([]).meta({
      description:
        "Which incidents it takes, by the labels of their rule's alert (rule, severity, env, probe and the rule's labels). The first policy that matches wins. Default: every incident.",
    }),
    levels: z.array(EscalationLevel).min(1, { error: 'needs at least one level' }),
    repeat: Duration.default(0).meta({
      description: 'After the last level, notify its receivers again this often while the incident is unacknowledged; 0s: never. Default 0s.',
    }),
    acknowledgeTimeout: Duration.default(0).meta({
      description:
        "An acknowledged incident still firing this long after its acknowledgement is unacknowledged again and notified at its level (PagerDuty's acknowledgement timeout); 0s: never. Default 0s.",
    }),
  })
  .superRefine((policy, ctx) => {
    policy.levels.forEach((level, index) => {
      if (index > 0 && level.after <= policy.levels[index - 1]!.after)
        ctx.addIssue({
          code: 'custom',
          path: ['levels', index, 'after'],
          message: `must be later than level ${index}'s (levels are in order: ${index + 1} after ${index})`,
        });
    });
  });

/** The seed's escalation matrix: level 1 at once, 2 within 5 minutes, 3 within 15, 4 within 30, for criticals not labelled escalate=no. */
export const STOCK_ESCALATION = [
  {
    name: 'critical',
    matchers: ['severity=critical', 'escalate!=no'],
    levels: [
      { after: '0s', receivers: ['*'] },
      { after: '5m', receivers: ['*'] },
      { after: '15m', receivers: ['*'] },
      { after: '30m', receivers: ['*'] },
    ],
  },
];

const MaintenanceWindow = z.strictObject({
  name: Name.meta({ description: 'Names the window in events, the state and the status page.' }),
  env: z.string().meta({ description: 'The environment whose notifications it mutes.' }),
  days: z
    .array(z.enum(WEEKDAYS))
    .min(1)
    .default([...WEEKDAYS])
    .meta({ description: 'Days it starts on, in its time zone: mon … sun. Default every day.' }),
  start: ClockTime.meta({ description: 'Local time it starts (HH:MM).' }),
  duration: Duration.refine((ms) => ms > 0 && ms <= 7 * 86_400_000, { error: 'must be more than 0 and at most 7d' }).meta({
    description: 'How long it lasts.',
  }),
  timezone: Timezone.optional().meta({ description: 'Time zone of `start` and `days`. Default: the top-level timezone.' }),
  reason: z.string().min(1).meta({ description: 'Why: shown in events, the state and the status page.' }),
});

/** Blocks of a plugin kind: a strict object with `type: z.literal(...)`, one per registered plugin. */
export interface PluginSchemas {
  traffic: readonly z.ZodType[];
  receivers: readonly z.ZodType[];
  actions: readonly z.ZodType[];
  /** CDN purgers, for the `cdn` step after a switch. */
  cdn: readonly z.ZodType[];
}

/** A plugin's validated config block; its own schema gives it a precise type. */
export type PluginBlock = { type: string } & Record<string, unknown>;

/** Each plugin block's schemas by type: a block checks itself against the one its `type` names. */
const PLUGIN_BLOCKS = new WeakMap<z.ZodType, ReadonlyMap<string, z.ZodType>>();

/** The schema of a plugin block of `type`, when `schema` is a plugin block's (for key hints in config errors). */
export function pluginBlockSchema(schema: z.ZodType, type: unknown): z.ZodType | undefined {
  return typeof type === 'string' ? PLUGIN_BLOCKS.get(schema)?.get(type) : undefined;
}

function pluginUnion(kind: string, schemas: readonly z.ZodType[]): z.ZodType<PluginBlock> {
  const types = schemas.map((schema) => ((schema as z.ZodObject).shape.type as z.ZodLiteral).value as string);
  const byType = new Map(schemas.map((schema, index) => [types[index]!, schema]));
  const block = z
    .looseObject({ type: z.string({ error: `needs a type: one of ${types.join(', ')}` }) })
    .pipe(
      z.custom<PluginBlock>().superRefine((value, ctx) => {
        const schema = byType.get(value.type);
        if (!schema) {
          ctx.addIssue({ code: 'custom', path: ['type'], message: `${quote(value.type)} is not a ${kind} type: use one of ${types.join(', ')}` });
          return;
        }
        const result = schema.safeParse(value, { reportInput: true });
        // Pass the plugin's issues through as they are, so they read like any other config error.
        if (!result.success) for (const issue of result.error.issues) ctx.addIssue(issue as never);
      }),
    )
    .transform((value) => {
      const result = byType.get(value.type)!.safeParse(value);
      return (result.success ? result.data : value) as PluginBlock;
    })
    .meta({ description: `A ${kind}: one of ${types.join(', ')}.`, anyOf: schemas.map((schema) => pluginJsonSchema(schema)) });
  PLUGIN_BLOCKS.set(block, byType);
  return block;
}

/** A plugin block's JSON Schema (what a user writes), for editors; the pipe above hides it from zod's export. */
function pluginJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const Cluster = z
  .strictObject({
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, { error: 'must be a postgres:// or postgresql:// URL' })
      .refine((text) => URL.canParse(text), {
        error: 'is not a URL that node-postgres can read (a port that is not a number, a space, a stray @ or %): percent-encode the password',
      })
      .optional()
      .meta({
        description:
          'PostgreSQL shared by the agents of a cluster (${GREENLIGHT_DATABASE_URL}): state, flags, incidents, the action and event journals live there. Unset: the SQLite store in dataDir, one agent.',
      }),
    nodeName: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .meta({ description: "This agent's name in the cluster (${GREENLIGHT_NODE_NAME}); default: host name and listen port." }),
    advertiseUrl: HttpUrl.optional().meta({
      description: "How the other agents reach this one's API (${GREENLIGHT_ADVERTISE_URL}); default: http:// and the listen address.",
    }),
    lease: Duration.default(2_000).meta({
      description:
        'How long a leader lease lasts without renewal, by the database clock: a dead leader is replaced within about this plus renewEvery. Default 2s.',
    }),
    renewEvery: Duration.default(250).meta({ description: 'How often each agent renews or tries to take the lease. Default 250ms.' }),
  })
  .superRefine((cluster, ctx) => {
    if (cluster.renewEvery * 4 > cluster.lease)
      ctx.addIssue({
        code: 'custom',
        path: ['renewEvery'],
        message: `must be at most a quarter of cluster.lease (${cluster.lease}ms): a leader needs several renewals within its lease to keep it through a slow round`,
      });
    if (cluster.lease < 500) ctx.addIssue({ code: 'custom', path: ['lease'], message: 'must be at least 500ms' });
  });

/** The whole config schema, with the plugin blocks the agent registers. */
export function buildConfigSchema(plugins: PluginSchemas) {
  return z
    .strictObject({
      listen: Listen.default({ host: '127.0.0.1', port: 9464 }).meta({ description: 'host:port of the HTTP listener (metrics, health, API).' }),
      dataDir: z.string().min(1).default('./data'),
      journal: Journal.prefault({}).meta({ description: 'Retention of the event journal in the state database.' }),
      timezone: Timezone.default('America/New_York').meta({ description: "The trading desk's clock: cron schedules and deploy windows use it." }),
      activeEnvironment: z.string().default('blue').meta({ description: 'The live environment when no state is stored.' }),
      environments: z.record(Name, Environment).meta({ description: 'Exactly two environments, usually blue and green.' }),
      probeDefaults: ProbeDefaults.prefault({}),
      windows: z.array(WindowSpan).min(1).max(6).default([60_000, 300_000]).meta({ description: 'Sliding windows kept per probe and environment.' }),
      log: z
        .strictObject({
          level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
          format: z.enum(['auto', 'json', 'pretty']).default('auto').meta({ description: 'auto: pretty on a terminal, JSON otherwise.' }),
        })
        .prefault({}),
      api: Api.prefault({}),
      traffic: pluginUnion('traffic adapter', plugins.traffic)
        .default({ type: 'none' })
        .meta({ description: 'How a rollback or promotion moves live traffic.' }),
      switching: switchingSchema(pluginUnion('CDN', plugins.cdn)).prefault({}).meta({
        description: 'The fresh verification every traffic switch runs first, and the steps it runs after (CDN purge, public TLS, public verify URL).',
      }),
      flags: Flags.prefault({}),
      alerts: z
        .strictObject({
          repeatInterval: Duration.default(4 * 3_600_000).meta({
            description: 'A firing alert is sent again this often until it resolves; 0s: never. A rule may set its own.',
          }),
          externalUrl: HttpUrl.optional().meta({ description: "This agent's URL as people reach it, for links in alerts." }),
          receivers: z.array(pluginUnion('receiver', plugins.receivers)).default([]),
          group: AlertGroup.prefault({}).meta({ description: 'How alerts are grouped into notifications (README, "Alert lifecycle").' }),
          inhibit: z.array(InhibitRule).prefault(STOCK_INHIBITIONS).meta({
            description: 'Inhibition rules: a firing source alert mutes the notifications of matching target alerts. Default: the stock ones; [] for none.',
          }),
          escalation: z.array(EscalationPolicy).prefault(STOCK_ESCALATION).meta({
            description: "Escalation policies, the first whose matchers take an incident applies. Default: the seed's matrix for criticals; [] for none.",
          }),
          maintenance: z
            .array(MaintenanceWindow)
            .default([])
            .meta({ description: "Recurring maintenance windows: the environment's notifications are muted while one is open and the environment is idle." }),
        })
        .prefault({}),
      actions: z.record(Name, pluginUnion('action', plugins.actions)).default({}).meta({ description: 'Named actions that rules run when they fire.' }),
      slo: z.record(Name, Slo).default({}).meta({ description: 'Service level objectives, by name: error budgets and burn rates for rules (README, "SLOs").' }),
      rules: z.array(Rule).default([]),
      ruleFiles: z
        .array(z.string().min(1))
        .default([])
        .meta({ description: 'More rules, from YAML files holding `rules: [...]`: paths relative to this file; * in the file name matches (rules/*.yaml).' }),
      probes: z.array(Probe).min(1),
      promote: Promote.prefault({}).meta({ description: 'Health-gated promotion (greenlight promote): preflight, probe rounds, load check, watch period.' }),
      deployWindows: DeployWindows.prefault({}).meta({ description: 'When promotions are allowed; outside, only with --emergency and a reason.' }),
      render: Render.prefault({}).meta({ description: 'Render API access for deploys (promote --deploy) and env diff.' }),
      cluster: Cluster.prefault({}).meta({ description: 'Several agents sharing one PostgreSQL (README, "Running several agents").' }),
      rollups: Rollups.prefault({}).meta({ description: 'Per-minute and hourly rollups of every probe result, for reports: their retention.' }),
      reports: z.array(ReportSchedule).default([]).meta({ description: 'Scheduled reports: the Markdown summary posted to receivers (README, "Reports").' }),
    })
    .superRefine((config, ctx) => {
      const envNames = Object.keys(config.environments);
      if (envNames.length !== 2) {
        ctx.addIssue({
          code: 'custom',
          path: ['environments'],
          message: `needs exactly two environments (blue and green), found ${envNames.length}: ${envNames.join(', ') || 'none'}`,
        });
      }
      if (!envNames.includes(config.activeEnvironment)) {
        ctx.addIssue({
          code: 'custom',
          path: ['activeEnvironment'],
          message: `${quote(config.activeEnvironment)} is not one of the environments (${envNames.join(', ')})`,
        });
      }
      uniqueNames(config.probes, 'probes', 'probe', ctx);
      uniqueNames(config.rules, 'rules', 'rule', ctx);
      uniqueNames(config.alerts.receivers as { name?: unknown }[], 'alerts.receivers', 'receiver', ctx);
      uniqueNames(
        config.switching.steps.map((step) => ({ name: step.name ?? step.step })),
        'switching.steps',
        'step',
        ctx,
      );
      // The alert lifecycle's names and environments (README, "Alert lifecycle").
      uniqueNames(config.alerts.escalation, 'alerts.escalation', 'policy', ctx);
      uniqueNames(config.alerts.maintenance, 'alerts.maintenance', 'maintenance window', ctx);
      // A level naming no receiver would page nobody at 3 a.m.: every name must be a receiver's (or "*").
      const receiverNames = (config.alerts.receivers as { name?: unknown }[]).map((receiver) => String(receiver.name));
      config.alerts.escalation.forEach((policy, index) => {
        policy.levels.forEach((level, levelIndex) => {
          level.receivers.forEach((name, nameIndex) => {
            if (name !== '*' && !receiverNames.includes(name)) {
              ctx.addIssue({
                code: 'custom',
                path: ['alerts', 'escalation', index, 'levels', levelIndex, 'receivers', nameIndex],
                message: `${quote(name)} is not one of alerts.receivers (${receiverNames.length > 0 ? receiverNames.join(', ') : 'none configured'}); use a receiver's name or "*"`,
              });
            }
          });
        });
      });
      config.alerts.maintenance.forEach((window, index) => {
        if (!envNames.includes(window.env))
          ctx.addIssue({
            code: 'custom',
            path: ['alerts', 'maintenance', index, 'env'],
            message: `${quote(window.env)} is not one of the environments (${envNames.join(', ')})`,
          });
      });
      config.probes.forEach((probe, index) => {
        probe.environments?.forEach((env, envIndex) => {
          if (!envNames.includes(env)) {
            ctx.addIssue({
              code: 'custom',
              path: ['probes', index, 'environments', envIndex],
              message: `${quote(env)} is not one of the environments (${envNames.join(', ')})`,
            });
          }
        });
      });
      config.rules.forEach((rule, index) => {
        if (rule.env !== 'live' && rule.env !== 'idle' && !envNames.includes(rule.env)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rules', index, 'env'],
            message: `${quote(rule.env)} is not live, idle or one of the environments (${envNames.join(', ')})`,
          });
        }
        rule.actions.forEach((action, actionIndex) => {
          if (!(action in config.actions)) {
            const known = Object.keys(config.actions);
            ctx.addIssue({
              code: 'custom',
              path: ['rules', index, 'actions', actionIndex],
              message: `${quote(action)} is not an action of this config; ${known.length ? `define it under actions or use one of ${known.join(', ')}` : 'define it under actions'}`,
            });
          }
        });
      });
      for (const [env] of Object.entries(config.flags.initial)) {
        if (!envNames.includes(env))
          ctx.addIssue({ code: 'custom', path: ['flags', 'initial', env], message: `${quote(env)} is not one of the environments (${envNames.join(', ')})` });
      }
      const healthProbe = config.promote.validation.healthProbe;
      // The default names the stock probe; a config without it simply skips those checks.
      if (healthProbe !== 'health' && !config.probes.some((p) => p.name === healthProbe)) {
        ctx.addIssue({ code: 'custom', path: ['promote', 'validation', 'healthProbe'], message: `${quote(healthProbe)} is not a probe of this config` });
      }
      for (const env of Object.keys(config.render.services)) {
        if (!envNames.includes(env))
          ctx.addIssue({ code: 'custom', path: ['render', 'services', env], message: `${quote(env)} is not one of the environments (${envNames.join(', ')})` });
      }
      for (const [name, slo] of Object.entries(config.slo)) {
        slo.windows.forEach((window, index) => {
          if (window > slo.period)
            ctx.addIssue({ code: 'custom', path: ['slo', name, 'windows', index], message: `is longer than the period (${slo.period / 86_400_000} days)` });
        });
        slo.probes?.forEach((probe, index) => {
          if (!config.probes.some((p) => p.name === probe)) {
            ctx.addIssue({
              code: 'custom',
              path: ['slo', name, 'probes', index],
              message: `${quote(probe)} is not a probe of this config; use one of ${config.probes.map((p) => p.name).join(', ')}`,
            });
          }
        });
      }
      const windows = new Set<number>();
      config.windows.forEach((window, index) => {
        if (windows.has(window)) ctx.addIssue({ code: 'custom', path: ['windows', index], message: 'is listed twice' });
        windows.add(window);
      });
    });
}

function uniqueNames(items: readonly { name?: unknown }[], path: string, what: string, ctx: z.RefinementCtx): void {
  const seen = new Map<unknown, number>();
  items.forEach((item, index) => {
    // An item that failed its own checks may have no name yet: that is its issue, not a clash.
    if (typeof item.name !== 'string') return;
    const first = seen.get(item.name);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [...path.split('.'), index, 'name'],
        message: `${quote(item.name)} is already the name of ${path}[${first}]; ${what} names must be unique`,
      });
    } else {
      seen.set(item.name, index);
    }
  });
}

/** The traffic adapter that only records which environment is live. Always registered. */
export const NoneTrafficSchema = z.strictObject({ type: z.literal('none') });

/** The schema with no plugins but `none` traffic: enough for configs without alerts or actions. */
export const ConfigSchema = buildConfigSchema({ traffic: [NoneTrafficSchema], receivers: [], actions: [], cdn: [] });

export type StatusRange = [low: number, high: number];
export interface CompiledPath {
  text: string;
  segments: PathSegment[];
}
/**
 * A loaded config: the schema's value, notices about blocks an unset variable turned off, and
 * every secret value it holds (config/redactor.ts): what the Redactor hides, never to be shown.
 */
export type Config = z.output<typeof ConfigSchema> & { readonly notices: readonly string[]; readonly secrets: readonly string[] };
export type RuleConfig = Config['rules'][number];
export type ProbeConfig = Config['probes'][number];
export type EnvironmentConfig = Config['environments'][string];
export type JsonAssertionConfig = ProbeConfig['expect']['json'][number];
export type HeaderAssertionConfig = ProbeConfig['expect']['headers'][number];
export type PromoteConfig = Config['promote'];
export type DeployWindowsConfig = Config['deployWindows'];
export type DeployWindowConfig = DeployWindowsConfig['feature'][number];
export type RenderConfig = Config['render'];
export type SloConfig = Config['slo'][string];
export type SwitchStepConfig = Config['switching']['steps'][number];
export type AlertsConfig = Config['alerts'];
export type InhibitRuleConfig = AlertsConfig['inhibit'][number];
export type EscalationPolicyConfig = AlertsConfig['escalation'][number];
export type MaintenanceWindowConfig = AlertsConfig['maintenance'][number];

/**
 * A name in ICU's list of canonical zones is valid without building a formatter; anything else
 * (aliases such as US/Eastern, UTC, another case) is valid if a formatter accepts it. The list is
 * asked first because the first `Intl.DateTimeFormat` of a process loads ICU's locale tables, about
 * 7 MB of RSS that an agent which never evaluates a window would keep for nothing.
 */
function isTimezone(name: string): boolean {
  if (Intl.supportedValuesOf('timeZone').includes(name)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** `https://Dash.example.com:443` → `https://dash.example.com`; undefined unless an http(s) origin alone (no path, query or credentials). */
export function originOf(text: string): string | undefined {
  try {
    const url = new URL(text);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) return undefined;
    if (url.pathname !== '/' || /^[a-z]+:\/\/[^/]*\/./i.test(text)) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** `Name:port`, `[v6]:port`, `name.` → lower-case name (IPv6 in brackets, no trailing dot) and port ('' when none or the default 80). */
export function parseHost(text: string): { name: string; port: string } | undefined {
  if (!/^[\w.~!$&'()*+,;=%:[\]-]+$/.test(text)) return undefined;
  try {
    const url = new URL(`http://${text}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
    return { name: url.hostname.replace(/\.$/, ''), port: url.port };
  } catch {
    return undefined;
  }
}

/** An api.allowedHosts entry as the agent compares it: `name`, or `name:port`. */
function hostEntry(text: string): string | undefined {
  const host = parseHost(text);
  return host && (host.port ? `${host.name}:${host.port}` : host.name);
}

/** `127.0.0.1:9464`, `:9464` (all interfaces), `[::1]:9464` */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

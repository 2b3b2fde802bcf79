/**
 * The configuration schema. Every object is strict, so a misspelt key is an error rather than a
 * silently ignored setting. Human units (durations, sizes, JSON paths) are checked here and
 * converted to numbers and compiled paths, so nothing downstream parses text again.
 */
import { validate as isValidCron } from 'node-cron';
import { z } from 'zod';
import { parseJsonPath, type PathSegment } from './json-path.js';
import { parseByteSize, parseDuration } from './units.js';

const quote = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** A duration such as 250ms, 5s, 2m or 1h, as milliseconds. */
export const Duration = z
  .string({ error: (issue) => `${quote(issue.input)} is not a duration such as 500ms, 5s or 2m` })
  .refine((text) => parseDuration(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a duration such as 500ms, 5s or 2m`,
  })
  .transform((text) => parseDuration(text)!)
  .meta({ description: 'A duration: a number and a unit, ms, s, m or h (250ms, 5s, 2m, 1h).', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h)|\\$\\{[^}]+\\})$' });

const ByteSize = z
  .union([z.int().positive(), z.string()], {
    error: (issue) => `${quote(issue.input)} is not a size such as 65536, 512KiB or 1MiB`,
  })
  .refine((value) => typeof value === 'number' || (parseByteSize(value) ?? 0) > 0, {
    error: (issue) => `${quote(issue.input)} is not a size such as 65536, 512KiB or 1MiB`,
  })
  .transform((value) => (typeof value === 'number' ? value : parseByteSize(value)!))
  .meta({ description: 'A size in bytes: a number, or with a unit (512KiB, 1MiB, 5MB).' });

const Timezone = z
  .string()
  .refine(isTimezone, { error: (issue) => `${quote(issue.input)} is not an IANA time zone such as America/New_York` })
  .meta({ description: 'An IANA time zone name such as America/New_York.' });

const JsonPath = z
  .string()
  .refine((text) => parseJsonPath(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a JSON path such as $.status, $.database.connected or $.universe[0].symbol`,
  })
  .transform((text): CompiledPath => ({ text, segments: parseJsonPath(text)! }))
  .meta({ description: "A JSON path: $ then .name, ['name'] or [index] steps." });

const RegexText = z.string().refine(isRegex, {
  error: (issue) => `${quote(issue.input)} is not a valid regular expression`,
});

const Name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, {
    error: (issue) => `${quote(issue.input)} is not a name: use lower-case letters, digits, - and _, starting with a letter`,
  });

const Listen = z
  .string()
  .refine((text) => parseListen(text) !== undefined, {
    error: (issue) => `${quote(issue.input)} is not a listen address such as 127.0.0.1:9464, :9464 or [::1]:9464`,
  })
  .transform((text) => parseListen(text)!);

const HttpUrl = z
  .url({ protocol: /^https?$/, error: (issue) => `${quote(issue.input)} is not an http:// or https:// URL` })
  .transform((text) => text.replace(/\/+$/, ''));

/** Status codes: 200, "2xx", "200-299". */
const StatusSpec = z
  .union([z.int().min(100).max(599), z.string().regex(/^([1-5]xx|\d{3}-\d{3})$/, { error: (issue) => `${quote(issue.input)} is not a status code, a class such as 2xx, or a range such as 200-299` })], {
    error: (issue) => `${quote(issue.input)} is not a status code, a class such as 2xx, or a range such as 200-299`,
  })
  .transform((spec): StatusRange => {
    if (typeof spec === 'number') return [spec, spec];
    if (spec.endsWith('xx')) {
      const base = Number(spec[0]) * 100;
      return [base, base + 99];
    }
    const [low, high] = spec.split('-').map(Number) as [number, number];
    return [low, high];
  });

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
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
    length: z.union([z.int().nonnegative(), Comparison]).optional(),
    matches: RegexText.optional(),
  })
  .refine((a) => JSON_OPERATORS.some((op) => a[op] !== undefined), {
    error: `names no operator: add one of ${'equals, notEquals, in, exists, nonEmpty, gt, gte, lt, lte, length, matches'}`,
  });

export const JSON_OPERATORS = ['equals', 'notEquals', 'in', 'exists', 'nonEmpty', 'gt', 'gte', 'lt', 'lte', 'length', 'matches'] as const;

const HeaderAssertion = z
  .strictObject({
    name: z.string().min(1).transform((name) => name.toLowerCase()),
    equals: z.string().optional(),
    matches: RegexText.optional(),
    exists: z.boolean().optional(),
  })
  .refine((a) => a.equals !== undefined || a.matches !== undefined || a.exists !== undefined, {
    error: 'names no operator: add one of equals, matches, exists',
  });

const Expect = z.strictObject({
  status: z.array(StatusSpec).min(1).default([[200, 299]]).meta({ description: 'Accepted status codes: 200, "2xx" or "200-299". Default 2xx.' }),
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

const Probe = z
  .strictObject({
    name: Name.meta({ description: 'Used as the `probe` label: keep it short and stable.' }),
    description: z.string().optional(),
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']).default('GET'),
    path: z.string().startsWith('/', { error: (issue) => `${quote(issue.input)} is not a path: it must start with /` }),
    headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Request headers; take secrets from the environment with ${VAR}.' }),
    body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional()
      .meta({ description: 'Request body: a string as is, or YAML mapping/list sent as JSON.' }),
    every: Duration.optional().meta({ description: 'Interval between probes (jittered). Default: probeDefaults.every.' }),
    cron: z
      .string()
      .refine((expr) => isValidCron(expr), { error: (issue) => `${quote(issue.input)} is not a cron expression such as "*/10 * * * * *" or "0 9-16 * * 1-5"` })
      .optional()
      .meta({ description: 'A cron expression (optional seconds field) instead of `every`.' }),
    timezone: Timezone.optional().meta({ description: 'Time zone of `cron`. Default: the top-level timezone.' }),
    timeout: Duration.optional(),
    maxBodyBytes: ByteSize.optional(),
    environments: z.array(z.string()).min(1).optional().meta({ description: 'Environments to probe. Default: all.' }),
    expect: Expect.prefault({}),
    extract: z.record(Name, Extraction).default({}).meta({ description: 'Numbers to read from the JSON body, such as memory and cpu percent.' }),
  })
  .refine((p) => p.every === undefined || p.cron === undefined, { error: 'give either every or cron, not both', path: ['cron'] });

const Environment = z.strictObject({
  url: HttpUrl.meta({ description: 'Base URL of the environment; probe paths are appended to it.' }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Headers sent with every probe of this environment.' }),
});

const ProbeDefaults = z.strictObject({
  every: Duration.default(5_000),
  timeout: Duration.default(2_000),
  maxBodyBytes: ByteSize.default(1_048_576),
  jitter: z.number().min(0).max(0.5).default(0.1).meta({ description: 'Fraction of the interval by which each tick is randomly moved, so probes do not fire in lockstep.' }),
});

export const ConfigSchema = z
  .strictObject({
    listen: Listen.default({ host: '127.0.0.1', port: 9464 }).meta({ description: 'host:port of the HTTP listener (metrics, health, API).' }),
    dataDir: z.string().min(1).default('./data'),
    timezone: Timezone.default('America/New_York').meta({ description: "The trading desk's clock: cron schedules and deploy windows use it." }),
    activeEnvironment: z.string().default('blue').meta({ description: 'The live environment when no state is stored.' }),
    environments: z.record(Name, Environment).meta({ description: 'Exactly two environments, usually blue and green.' }),
    probeDefaults: ProbeDefaults.prefault({}),
    windows: z.array(Duration).min(1).max(6).default([60_000, 300_000]).meta({ description: 'Sliding windows kept per probe and environment.' }),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').meta({ description: 'auto: pretty on a terminal, JSON otherwise.' }),
      })
      .prefault({}),
    probes: z.array(Probe).min(1),
  })
  .superRefine((config, ctx) => {
    const envNames = Object.keys(config.environments);
    if (envNames.length !== 2) {
      ctx.addIssue({ code: 'custom', path: ['environments'], message: `needs exactly two environments (blue and green), found ${envNames.length}: ${envNames.join(', ') || 'none'}` });
    }
    if (!envNames.includes(config.activeEnvironment)) {
      ctx.addIssue({ code: 'custom', path: ['activeEnvironment'], message: `${quote(config.activeEnvironment)} is not one of the environments (${envNames.join(', ')})` });
    }
    const seen = new Map<string, number>();
    config.probes.forEach((probe, index) => {
      const first = seen.get(probe.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['probes', index, 'name'], message: `${quote(probe.name)} is already the name of probes[${first}]; probe names must be unique` });
      } else {
        seen.set(probe.name, index);
      }
      probe.environments?.forEach((env, envIndex) => {
        if (!envNames.includes(env)) {
          ctx.addIssue({ code: 'custom', path: ['probes', index, 'environments', envIndex], message: `${quote(env)} is not one of the environments (${envNames.join(', ')})` });
        }
      });
    });
    const windows = new Set<number>();
    config.windows.forEach((window, index) => {
      if (windows.has(window)) ctx.addIssue({ code: 'custom', path: ['windows', index], message: 'is listed twice' });
      windows.add(window);
    });
  });

export type StatusRange = [low: number, high: number];
export interface CompiledPath {
  text: string;
  segments: PathSegment[];
}
export type Config = z.output<typeof ConfigSchema>;
export type ProbeConfig = Config['probes'][number];
export type EnvironmentConfig = Config['environments'][string];
export type JsonAssertionConfig = ProbeConfig['expect']['json'][number];
export type HeaderAssertionConfig = ProbeConfig['expect']['headers'][number];

function isTimezone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function isRegex(text: string): boolean {
  try {
    new RegExp(text);
    return true;
  } catch {
    return false;
  }
}

/** `127.0.0.1:9464`, `:9464` (all interfaces), `[::1]:9464` */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

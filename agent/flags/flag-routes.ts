/**
 * The flag API (CONTRACT.md, "HTTP"): read and change flags, the emergency preset, and OpenFeature
 * Remote Evaluation (OFREP) so the dashboard reads its flags with a stock OpenFeature provider.
 *
 * Which environment a request means (`env` is an environment's name, `live` or `all`):
 * - PUT /api/v1/flags without `env` changes every environment: flags follow the users, so a
 *   rollback to the other environment must not bring back a feature an operator just turned off.
 * - POST /api/v1/flags/emergency-rollback without `env` changes the live environment, the one
 *   serving users when the request is made.
 * - OFREP serves the context's `environment` attribute when given, else the live environment.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { HttpError, invalidBody, refuseDuplicates, type Route, type RouteResponse } from '../http/http-server.js';
import type { DuplicateKey } from '../http/duplicate-keys.js';
import { FlagError, LOCKED_FLAGS, lockedAttempts, preview, type FlagChange, type FlagStore } from './flag-store.js';

export interface FlagRouteOptions {
  /** The live environment now; read per request, so a traffic switch is followed at once. */
  activeEnvironment: () => string;
  /** The agent runs with --dry-run: a write is judged as usual (a locked flag is refused) and changes nothing. */
  dryRun?: boolean;
}

/** What a write answers besides its figures under --dry-run: that nothing changed, and what would have. */
function dryRunNote(dryRun: boolean | undefined, changed: readonly FlagChange[]): { dryRun?: true; detail?: string } {
  if (!dryRun) return {};
  const would = changed.map((change) => `${change.flag} ${change.new ? 'on' : 'off'} on ${change.env}`);
  return {
    dryRun: true,
    detail: `dry run: nothing was changed; would set ${would.length > 0 ? would.join(', ') : 'nothing (every flag already has that value)'}`,
  };
}

/** Audit entries GET /api/v1/flags shows. */
const AUDIT_SHOWN = 50;
const MAX_REASON = 500;

/** The routes of the flag API and OFREP, for startHttpServer. */
export function flagRoutes(store: FlagStore, options: FlagRouteOptions): Route[] {
  const choices: [string, ...string[]] = ['live', 'all', ...store.environments];
  const envChoice = z.enum(choices, { error: `must be one of ${choices.join(', ')}` });
  const reason = z.string().trim().min(1, { error: 'must not be empty: it goes into the audit trail' }).max(MAX_REASON);
  const putBody = z.strictObject({
    // Not z.record: it copies into a new object, where a `__proto__` key becomes the prototype
    // and vanishes from the keys. The parsed JSON object is taken as it is (own keys only).
    set: z.custom<Record<string, unknown>>(isObject, { error: 'must be an object of flag names to true or false' }),
    reason,
    env: envChoice.optional(),
  });
  const emergencyBody = z.strictObject({ reason: reason.optional(), env: envChoice.optional() });

  const resolve = (env: string | undefined, fallback: 'all' | 'live'): string[] => {
    const chosen = env ?? fallback;
    if (chosen === 'all') return [...store.environments];
    return [chosen === 'live' ? options.activeEnvironment() : chosen];
  };

  /**
   * Locked flags before anything else (the routes' screen): a change request that names one
   * (anywhere in its body, in whatever shape, in any value of a key it names twice) is refused
   * with 409 and audited, even when the rest of it is invalid. The environments are those it
   * names if it names valid ones, else all of them.
   */
  const refuseLockedIn = (body: unknown, duplicates: readonly DuplicateKey[], actor: string, fallback: 'all' | 'live'): void => {
    // A key named twice keeps only its last value in `body`: the others are looked at as sent.
    const overwritten = duplicates.flatMap(({ key, values }) => values.map((value) => ({ [key]: value })));
    const attempts = lockedAttempts([body, ...overwritten]);
    if (attempts.length === 0) return;
    const raw = isObject(body) ? body : {};
    const env = envChoice.safeParse(raw.env);
    const envs = resolve(env.success ? env.data : raw.env === undefined ? fallback : 'all', fallback);
    const reason = typeof raw.reason === 'string' ? raw.reason.trim().slice(0, MAX_REASON) : '';
    refusals(() => store.refuseLocked(envs, attempts, { actor, reason }));
  };
  const parse = <T>(schema: z.ZodType<T>, body: unknown): T => {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new HttpError(400, invalidBody(parsed.error));
    return parsed.data;
  };

  return [
    {
      method: 'GET',
      path: '/api/v1/flags',
      auth: 'none',
      handle: () => ({
        status: 200,
        body: { activeEnvironment: options.activeEnvironment(), locked: LOCKED_FLAGS, environments: store.all(), audit: store.audit(AUDIT_SHOWN) },
      }),
    },
    {
      method: 'PUT',
      path: '/api/v1/flags',
      auth: 'admin',
      body: z.unknown(),
      screen: (body, duplicates, actor) => {
        refuseLockedIn(body, duplicates, actor, 'all');
        refuseDuplicates(duplicates);
      },
      handle: ({ body, actor }) => {
        const request = parse(putBody, body);
        const envs = resolve(request.env, 'all');
        const changed = refusals(() => store.set(envs, request.set, { actor, reason: request.reason, dryRun: options.dryRun }));
        return { status: 200, body: { envs, changed, environments: store.all(), ...dryRunNote(options.dryRun, changed) } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/flags/emergency-rollback',
      auth: 'rollback',
      body: z.unknown(),
      screen: (body, duplicates, actor) => {
        refuseLockedIn(body, duplicates, actor, 'live');
        refuseDuplicates(duplicates);
      },
      handle: ({ body, actor }) => {
        const request = parse(emergencyBody, body);
        const envs = resolve(request.env, 'live');
        const changed = refusals(() =>
          store.applyPreset('emergency-rollback', envs, { actor, reason: request.reason ?? 'emergency rollback through the API', dryRun: options.dryRun }),
        );
        return { status: 200, body: { preset: 'emergency-rollback', envs, changed, environments: store.all(), ...dryRunNote(options.dryRun, changed) } };
      },
    },
    {
      method: 'POST',
      path: '/ofrep/v1/evaluate/flags/:key',
      auth: 'none',
      // Any JSON: the handler answers malformed requests in OFREP's own error shape, and so does
      // the server for a body that is no JSON at all, too large, or with a key twice.
      body: z.unknown(),
      errorBody: (status, error, params) => ({ key: shortKey(params.key ?? ''), ...ofrepError(status, error) }),
      handle: ({ params, body }) => {
        const key = params.key!;
        const target = evaluationTarget(body, store, options);
        if ('errorCode' in target) return { status: 400, body: { key: shortKey(key), ...target } };
        if (!store.has(key))
          return {
            status: 404,
            body: {
              key: shortKey(key),
              errorCode: 'FLAG_NOT_FOUND',
              errorDetails: `no flag ${shortKey(key)}; the flags are ${Object.keys(store.get(target.env)).join(', ')}`,
            },
          };
        return { status: 200, body: evaluate(store, key, target, options) };
      },
    },
    {
      method: 'POST',
      path: '/ofrep/v1/evaluate/flags',
      auth: 'none',
      body: z.unknown(),
      errorBody: (status, error) => ofrepError(status, error),
      handle: ({ body, headers }): RouteResponse => {
        const target = evaluationTarget(body, store, options);
        if ('errorCode' in target) return { status: 400, body: target };
        const payload = { flags: Object.keys(store.get(target.env)).map((key) => evaluate(store, key, target, options)) };
        const etag = `"${createHash('sha256').update(JSON.stringify(payload)).digest('base64url').slice(0, 27)}"`;
        if (matchesEtag(headers['if-none-match'], etag)) return { status: 304, headers: { etag } };
        return { status: 200, headers: { etag }, body: payload };
      },
    },
  ];
}

interface Target {
  env: string;
  /** Whether the context chose the environment (TARGETING_MATCH) or the live one was used (STATIC). */
  targeted: boolean;
}

function evaluationTarget(
  body: unknown,
  store: FlagStore,
  options: FlagRouteOptions,
): Target | { errorCode: 'PARSE_ERROR' | 'INVALID_CONTEXT'; errorDetails: string } {
  if (!isObject(body)) return { errorCode: 'PARSE_ERROR', errorDetails: 'the request body must be a JSON object such as {"context":{}}' };
  const context = body.context;
  if (context === undefined || context === null) return { env: options.activeEnvironment(), targeted: false };
  if (!isObject(context)) return { errorCode: 'INVALID_CONTEXT', errorDetails: 'context must be an object' };
  const env = context.environment;
  if (env === undefined) return { env: options.activeEnvironment(), targeted: false };
  if (typeof env !== 'string' || !store.environments.includes(env)) {
    return {
      errorCode: 'INVALID_CONTEXT',
      errorDetails: `context.environment must be one of ${store.environments.join(', ')}, or absent for the live one; got ${preview(env)}`,
    };
  }
  return { env, targeted: true };
}

function evaluate(store: FlagStore, key: string, target: Target, options: FlagRouteOptions) {
  const value = store.get(target.env)[key]!;
  return {
    key,
    value,
    reason: target.targeted ? 'TARGETING_MATCH' : 'STATIC',
    variant: value ? 'on' : 'off',
    metadata: { environment: target.env, live: target.env === options.activeEnvironment(), locked: LOCKED_FLAGS.includes(key) },
  };
}

/** RFC 9110 weak comparison against each entity tag listed in If-None-Match, or `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/** Turn the store's refusals into HTTP answers; the message reaches the caller as is. */
function refusals<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof FlagError) throw new HttpError(error.status, error.message, error.details, error.code);
    throw error;
  }
}

/** A refusal in OFREP's error shape: a request it cannot read is PARSE_ERROR; anything else GENERAL. */
function ofrepError(status: number, error: string): { errorCode: 'PARSE_ERROR' | 'GENERAL'; errorDetails: string } {
  return { errorCode: status === 400 ? 'PARSE_ERROR' : 'GENERAL', errorDetails: error };
}

/** A flag key from the path as an answer repeats it: cut to 100 characters (a path may be kilobytes long). */
function shortKey(key: string): string {
  return key.length > 100 ? `${key.slice(0, 97)}...` : key;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

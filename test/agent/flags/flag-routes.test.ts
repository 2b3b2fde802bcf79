import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../../../agent/events/events.js';
import { flagRoutes } from '../../../agent/flags/flag-routes.js';
import { FlagStore } from '../../../agent/flags/flag-store.js';
import { startHttpServer, type HttpServer } from '../../../agent/http/http-server.js';

const ADMIN = 'admin-token-123';
const ROLLBACK = 'rollback-token-123';

let store: FlagStore;
let events: EventInput[];
let active: string;
let server: HttpServer;
let base: string;

beforeEach(async () => {
  events = [];
  active = 'blue';
  store = new FlagStore({ environments: ['blue', 'green'], readOnlyOnEmergency: true, now: Date.now, publish: (input) => events.push(input) });
  server = await startHttpServer({
    listen: { host: '127.0.0.1', port: 0 },
    routes: flagRoutes(store, { activeEnvironment: () => active }),
    tokens: () => ({ admin: ADMIN, rollback: ROLLBACK }),
    logger: pino({ level: 'silent' }),
  });
  base = `http://127.0.0.1:${server.address.port}`;
});
afterEach(() => server.close());

async function call(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text === '' ? undefined : JSON.parse(text) };
}

describe('GET /api/v1/flags', () => {
  it('shows both environments, the locked flags, the live one and the audit trail, without a token', async () => {
    store.set(['green'], { READ_ONLY_MODE: true }, { actor: 'api:admin', reason: 'maintenance' });
    const { status, body } = await call('GET', '/api/v1/flags');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      activeEnvironment: 'blue',
      locked: ['ALPHASTACK_PROTECTION'],
      environments: { blue: { READ_ONLY_MODE: false, ALPHASTACK_PROTECTION: true }, green: { READ_ONLY_MODE: true } },
    });
    expect(body.audit).toEqual([
      expect.objectContaining({ env: 'green', flag: 'READ_ONLY_MODE', old: false, new: true, outcome: 'changed', actor: 'api:admin', reason: 'maintenance' }),
    ]);
  });
});

describe('PUT /api/v1/flags', () => {
  const body = { set: { READ_ONLY_MODE: true }, reason: 'maintenance window' };

  it('changes every environment by default, as api:admin', async () => {
    const { status, body: answer } = await call('PUT', '/api/v1/flags', { token: ADMIN, body });
    expect(status).toBe(200);
    expect(answer.envs).toEqual(['blue', 'green']);
    expect(answer.changed).toEqual([
      { flag: 'READ_ONLY_MODE', env: 'blue', old: false, new: true },
      { flag: 'READ_ONLY_MODE', env: 'green', old: false, new: true },
    ]);
    expect(store.get('blue').READ_ONLY_MODE).toBe(true);
    expect(events).toEqual([
      expect.objectContaining({ type: 'flag.changed', data: expect.objectContaining({ actor: 'api:admin', reason: 'maintenance window' }) }),
    ]);
  });

  it.each([
    ['green', ['green']],
    ['live', ['blue']],
    ['all', ['blue', 'green']],
  ])('with env %s changes %j', async (env, envs) => {
    const { status, body: answer } = await call('PUT', '/api/v1/flags', { token: ADMIN, body: { ...body, env } });
    expect(status).toBe(200);
    expect(answer.envs).toEqual(envs);
    expect(answer.changed.map((change: { env: string }) => change.env)).toEqual(envs);
  });

  it.each([
    ['no token', undefined, 401, 'missing credentials'],
    ['the rollback token', ROLLBACK, 403, 'the rollback token may only roll back'],
    ['a wrong token', 'not-the-token-at-all', 401, 'invalid token'],
  ])('with %s answers %i and changes nothing', async (_name, token, status, message) => {
    const answer = await call('PUT', '/api/v1/flags', { token, body });
    expect(answer.status).toBe(status);
    expect(answer.body.error).toContain(message);
    expect(store.version()).toBe(0);
  });

  it.each([
    ['no reason', { set: { READ_ONLY_MODE: true } }, 'invalid body: reason:'],
    ['an empty reason', { set: { READ_ONLY_MODE: true }, reason: '   ' }, 'reason: must not be empty'],
    ['no set', { reason: 'x' }, 'invalid body: set:'],
    ['an unknown key', { ...body, sett: {} }, 'invalid body'],
    ['an unknown environment', { ...body, env: 'purple' }, 'env: must be one of live, all, blue, green'],
    ['an unknown flag', { set: { READ_ONLY_MODE: true, NOPE: true }, reason: 'x' }, 'NOPE is not a flag'],
    ['a non-boolean value', { set: { READ_ONLY_MODE: 'yes' }, reason: 'x' }, 'READ_ONLY_MODE must be true or false, not "yes"'],
    ['not JSON', '{"set":', 'body is not JSON'],
  ])('with %s answers 400 with a message and changes nothing', async (_name, request, message) => {
    const answer = await call('PUT', '/api/v1/flags', { token: ADMIN, body: request });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toContain(message);
    expect(store.version()).toBe(0);
    expect(events).toEqual([]);
  });

  it('refuses to unlock ALPHASTACK_PROTECTION with 409, a flag.rejected event and no change at all', async () => {
    const answer = await call('PUT', '/api/v1/flags', {
      token: ADMIN,
      body: { set: { READ_ONLY_MODE: true, ALPHASTACK_PROTECTION: false }, reason: 'speed things up', env: 'blue' },
    });
    expect(answer.status).toBe(409);
    expect(answer.body).toEqual({
      error: expect.stringContaining('ALPHASTACK_PROTECTION is locked and can never be changed'),
      code: 'GL_ERR_FLAG_LOCKED',
      locked: ['ALPHASTACK_PROTECTION'],
    });
    expect(events).toEqual([
      expect.objectContaining({
        type: 'flag.rejected',
        severity: 'warning',
        data: { actor: 'api:admin', reason: 'speed things up', flag: 'ALPHASTACK_PROTECTION', env: 'blue', attempted: false, why: expect.any(String) },
      }),
    ]);
    expect(store.get('blue')).toMatchObject({ ALPHASTACK_PROTECTION: true, READ_ONLY_MODE: false });
    const { body } = await call('GET', '/api/v1/flags');
    expect(body.audit).toEqual([expect.objectContaining({ flag: 'ALPHASTACK_PROTECTION', outcome: 'rejected', actor: 'api:admin' })]);
  });
});

describe('POST /api/v1/flags/emergency-rollback', () => {
  it('applies the preset to the live environment with the rollback token', async () => {
    active = 'green';
    const answer = await call('POST', '/api/v1/flags/emergency-rollback', { token: ROLLBACK, body: { reason: 'V3 is melting' } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ preset: 'emergency-rollback', envs: ['green'] });
    expect(store.get('green')).toMatchObject({
      FORCE_V2_FALLBACK: true,
      ALPHASTACK_V3_DISABLED: true,
      ALPHASTACK_V3_ENABLED: false,
      READ_ONLY_MODE: true,
      ALPHASTACK_PROTECTION: true,
    });
    expect(store.get('blue').FORCE_V2_FALLBACK).toBe(false);
    expect(events).toEqual([
      expect.objectContaining({ type: 'flag.changed', severity: 'warning', data: expect.objectContaining({ actor: 'api:rollback', reason: 'V3 is melting' }) }),
    ]);
  });

  it('takes the admin token too, an empty body, and env all', async () => {
    expect((await call('POST', '/api/v1/flags/emergency-rollback', { token: ADMIN })).status).toBe(200);
    expect(events[0]).toMatchObject({ data: { actor: 'api:admin', reason: 'emergency rollback through the API' } });
    const both = await call('POST', '/api/v1/flags/emergency-rollback', { token: ADMIN, body: { env: 'all' } });
    expect(both.body.changed.map((change: { env: string }) => change.env)).toEqual(Array(7).fill('green'));
  });

  it('answers 401 without a token', async () => {
    expect((await call('POST', '/api/v1/flags/emergency-rollback', { body: {} })).status).toBe(401);
    expect(store.version()).toBe(0);
  });
});

describe('OFREP', () => {
  const ofrep = (key: string | undefined, body: unknown, headers?: Record<string, string>) =>
    call('POST', key === undefined ? '/ofrep/v1/evaluate/flags' : `/ofrep/v1/evaluate/flags/${key}`, { body, headers });

  it('evaluates one flag of the live environment as STATIC', async () => {
    const { status, body, headers } = await ofrep('ALPHASTACK_PROTECTION', { context: { targetingKey: 'user-1' } });
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^application\/json/);
    expect(body).toEqual({
      key: 'ALPHASTACK_PROTECTION',
      value: true,
      reason: 'STATIC',
      variant: 'on',
      metadata: { environment: 'blue', live: true, locked: true },
    });
  });

  it('evaluates the environment the context names as TARGETING_MATCH', async () => {
    store.set(['green'], { V3_API_CACHING: false }, { actor: 'test', reason: 'test' });
    const { body } = await ofrep('V3_API_CACHING', { context: { environment: 'green' } });
    expect(body).toEqual({
      key: 'V3_API_CACHING',
      value: false,
      reason: 'TARGETING_MATCH',
      variant: 'off',
      metadata: { environment: 'green', live: false, locked: false },
    });
  });

  it('follows the live environment as it changes', async () => {
    store.set(['green'], { READ_ONLY_MODE: true }, { actor: 'test', reason: 'test' });
    expect((await ofrep('READ_ONLY_MODE', {})).body.value).toBe(false);
    active = 'green';
    expect((await ofrep('READ_ONLY_MODE', {})).body.value).toBe(true);
  });

  it('answers 404 FLAG_NOT_FOUND for an unknown flag', async () => {
    const { status, body } = await ofrep('NOPE', { context: {} });
    expect(status).toBe(404);
    expect(body).toEqual({ key: 'NOPE', errorCode: 'FLAG_NOT_FOUND', errorDetails: expect.stringContaining('no flag NOPE') });
  });

  it.each([
    ['an unknown environment', { context: { environment: 'purple' } }, 'INVALID_CONTEXT', 'context.environment must be one of blue, green'],
    ['a non-string environment', { context: { environment: 1 } }, 'INVALID_CONTEXT', 'context.environment'],
    ['a context that is not an object', { context: 'blue' }, 'INVALID_CONTEXT', 'context must be an object'],
    ['a body that is not an object', [1, 2], 'PARSE_ERROR', 'must be a JSON object'],
  ])('answers 400 for %s, single and bulk', async (_name, request, errorCode, details) => {
    const single = await ofrep('READ_ONLY_MODE', request);
    expect(single.status).toBe(400);
    expect(single.body).toEqual({ key: 'READ_ONLY_MODE', errorCode, errorDetails: expect.stringContaining(details) });
    const bulk = await ofrep(undefined, request);
    expect(bulk.status).toBe(400);
    expect(bulk.body).toEqual({ errorCode, errorDetails: expect.stringContaining(details) });
  });

  it.each([
    ['a body that is not JSON', '{"context": ', 400, 'PARSE_ERROR', 'body is not JSON'],
    ['a key given twice', '{"context": {"environment": "blue", "environment": "green"}}', 400, 'PARSE_ERROR', 'environment'],
    ['a body over 64 KiB', JSON.stringify({ context: { pad: 'x'.repeat(70_000) } }), 413, 'GENERAL', 'body larger than'],
  ])(
    'answers %s in OFREP\'s error shape, single and bulk (regression: greenlight\'s own {"error","code"})',
    async (_name, text, status, errorCode, details) => {
      const single = await ofrep('READ_ONLY_MODE', text);
      expect(single.status).toBe(status);
      expect(single.body).toEqual({ key: 'READ_ONLY_MODE', errorCode, errorDetails: expect.stringContaining(details) });
      const bulk = await ofrep(undefined, text);
      expect(bulk.status).toBe(status);
      expect(bulk.body).toEqual({ errorCode, errorDetails: expect.stringContaining(details) });
    },
  );

  it('evaluates every flag in bulk with an ETag, and answers 304 while nothing changed', async () => {
    const first = await ofrep(undefined, { context: {} });
    expect(first.status).toBe(200);
    expect(first.body.flags).toHaveLength(9);
    expect(first.body.flags[0]).toEqual({
      key: 'ALPHASTACK_PROTECTION',
      value: true,
      reason: 'STATIC',
      variant: 'on',
      metadata: { environment: 'blue', live: true, locked: true },
    });
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);

    const again = await ofrep(undefined, { context: {} }, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    expect((await ofrep(undefined, { context: {} }, { 'if-none-match': `"other", W/${etag}` })).status).toBe(304);

    // Another environment is another document; a change makes a new one.
    const green = await ofrep(undefined, { context: { environment: 'green' } }, { 'if-none-match': etag });
    expect(green.status).toBe(200);
    expect(green.headers.get('etag')).not.toBe(etag);
    store.set(['blue'], { CIRCUIT_BREAKER: true }, { actor: 'test', reason: 'test' });
    const changed = await ofrep(undefined, { context: {} }, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.body.flags.find((flag: { key: string }) => flag.key === 'CIRCUIT_BREAKER').value).toBe(true);
  });
});

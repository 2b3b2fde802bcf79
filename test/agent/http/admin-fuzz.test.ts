/**
 * Fuzzing of every body and query the admin, rollback, events and OFREP endpoints take, against
 * the real agent on 127.0.0.1: arbitrary JSON, the right keys with the wrong types, huge strings,
 * bytes that are neither UTF-8 nor JSON, wrong content types, odd tokens and raw request targets.
 * Never a 5xx, never a crash (the agent still answers /healthz), and every 4xx says why in JSON.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { pairConfig, startAgent } from '../../helpers/agent-harness.js';

const ADMIN = 'fuzz-admin-token-0123456789';
const ROLLBACK = 'fuzz-rollback-token-0123456789';
const RUNS = 200;

let blue: Simulator;
let green: Simulator;
let agent: Agent;
let base: string;
const logs: string[] = [];

beforeAll(async () => {
  [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const config = parseAgentConfig(pairConfig(blue.url, green.url, { every: '1s', extra: `api: { adminToken: ${ADMIN}, rollbackToken: ${ROLLBACK} }\n` }));
  // Rollbacks are only judged once both environments have been probed: ready.
  ({ agent, base } = await startAgent(config, {
    logger: pino({ level: 'warn' }, new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) })),
    ready: true,
  }));
});
afterAll(async () => {
  await agent.close();
  await Promise.all([blue.close(), green.close()]);
});

interface Answer {
  status: number;
  text: string;
}

/** Send raw bytes with exactly the headers given (fetch adds no content type to a Uint8Array body). */
async function send(method: string, path: string, body: Uint8Array | undefined, headers: Record<string, string>): Promise<Answer> {
  try {
    const response = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(5_000) });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    throw new Error(
      `${method} ${path} with ${JSON.stringify(headers)} and ${body?.length ?? 'no'} bytes (${Buffer.from(body ?? [])
        .subarray(0, 80)
        .toString('latin1')}): ${(error as Error).message} ${(error as Error).cause ?? ''}`,
      { cause: error },
    );
  }
}

/** Never a 5xx; a 4xx carries a JSON message (`error`, or OFREP's `errorDetails`). */
function judge(answer: Answer, what: string): void {
  if (answer.status >= 500) throw new Error(`${what}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
  if (answer.status >= 400) {
    let body: { error?: unknown; errorDetails?: unknown };
    try {
      body = JSON.parse(answer.text) as typeof body;
    } catch {
      throw new Error(`${what}: HTTP ${answer.status} without a JSON body: ${answer.text.slice(0, 300)}`);
    }
    const message = body.error ?? body.errorDetails;
    if (typeof message !== 'string' || message.length === 0) throw new Error(`${what}: HTTP ${answer.status} without a message: ${answer.text.slice(0, 300)}`);
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);

/** Keys a flag map may be fuzzed with: real flags, the locked one, and prototype names. */
const flagKey = fc.oneof(
  fc.constantFrom(
    'READ_ONLY_MODE',
    'CIRCUIT_BREAKER',
    'ALPHASTACK_PROTECTION',
    'FORCE_V2_FALLBACK',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '',
  ),
  fc.string({ maxLength: 40 }),
);
const hugeString = fc.integer({ min: 1_000, max: 100_000 }).map((n) => 'x'.repeat(n));
const anyValue = fc.oneof(fc.jsonValue(), hugeString, fc.constant(null), fc.boolean(), fc.double(), fc.string({ maxLength: 600 }));

/** A body: JSON of the route's shape with fuzzed values, any JSON, or bytes that are not JSON or not UTF-8. */
function bodies(shaped: fc.Arbitrary<unknown>): fc.Arbitrary<{ bytes: Uint8Array | undefined; json: boolean }> {
  return fc.oneof(
    { weight: 4, arbitrary: shaped.map((value) => ({ bytes: utf8(JSON.stringify(value) ?? 'null'), json: true })) },
    { weight: 2, arbitrary: fc.jsonValue().map((value) => ({ bytes: utf8(JSON.stringify(value) ?? 'null'), json: true })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2_000 }).map((bytes) => ({ bytes, json: false })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '{',
          '{"reason":',
          '\u0000',
          '[1,2',
          '{"set":{"READ_ONLY_MODE":true},"reason":"x"',
          'null',
          '"just a string"',
          '1e999',
          '{"__proto__":{"admin":true}}',
        )
        .map((text) => ({ bytes: utf8(text), json: false })),
    },
    { weight: 1, arbitrary: fc.constant({ bytes: undefined, json: false }) },
    { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }).map((n) => ({ bytes: utf8(JSON.stringify({ reason: 'r'.repeat(n) })), json: true })) },
  );
}

const contentType = fc.option(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/merge-patch+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonx',
    'application/',
    '*/*',
    'APPLICATION/JSON',
    'application/json; charset=latin1',
  ),
  { nil: undefined },
);

/** Mostly the right token, so the body is what gets judged; sometimes none, the other role's, or junk. */
const authorization = (right: string) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${right}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        undefined,
        'Bearer',
        'Bearer ',
        `bearer ${ROLLBACK}`,
        `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}`,
        `Bearer ${ADMIN} extra`,
        `Bearer ${'a'.repeat(10_000)}`,
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .string({ maxLength: 100 })
        .filter((s) => /^[\x20-\x7e]*$/.test(s))
        .map((s) => `Bearer ${s}`),
    },
  );

function headersOf(type: string | undefined, auth: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (type !== undefined) headers['content-type'] = type;
  if (auth !== undefined) headers.authorization = auth;
  return headers;
}

const routes: { name: string; method: string; path: fc.Arbitrary<string>; token: string | undefined; shaped: fc.Arbitrary<unknown> }[] = [
  {
    name: 'POST /api/v1/rollback',
    method: 'POST',
    path: fc.constant('/api/v1/rollback'),
    token: ROLLBACK,
    shaped: fc.record({ reason: anyValue, extra: anyValue }, { requiredKeys: [] }),
  },
  {
    name: 'PUT /api/v1/flags',
    method: 'PUT',
    path: fc.constant('/api/v1/flags'),
    token: ADMIN,
    shaped: fc.record(
      {
        set: fc.oneof(fc.dictionary(flagKey, anyValue, { maxKeys: 5 }), anyValue),
        reason: anyValue,
        env: fc.oneof(fc.constantFrom('blue', 'green', 'live', 'all', '__proto__'), anyValue),
      },
      { requiredKeys: [] },
    ),
  },
  {
    name: 'POST /api/v1/flags/emergency-rollback',
    method: 'POST',
    path: fc.constant('/api/v1/flags/emergency-rollback'),
    token: ROLLBACK,
    shaped: fc.record({ reason: anyValue, env: fc.oneof(fc.constantFrom('blue', 'green', 'live', 'all', 'toString'), anyValue) }, { requiredKeys: [] }),
  },
  {
    name: 'POST /ofrep/v1/evaluate/flags/{key}',
    method: 'POST',
    path: fc
      .oneof(flagKey, fc.constantFrom('%zz', '%00', '..', '%2F', 'a%20b'))
      .map((key) => `/ofrep/v1/evaluate/flags/${/^%|\.\./.test(key) ? key : encodeURIComponent(key)}`),
    token: undefined,
    shaped: fc.record(
      {
        context: fc.oneof(
          fc.record(
            { environment: fc.oneof(fc.constantFrom('blue', 'green', '__proto__', 'constructor'), anyValue), targetingKey: anyValue },
            { requiredKeys: [] },
          ),
          anyValue,
        ),
      },
      { requiredKeys: [] },
    ),
  },
  {
    name: 'POST /ofrep/v1/evaluate/flags',
    method: 'POST',
    path: fc.constant('/ofrep/v1/evaluate/flags'),
    token: undefined,
    shaped: fc.record(
      { context: fc.oneof(fc.record({ environment: fc.oneof(fc.constantFrom('blue', 'green', 'hasOwnProperty'), anyValue) }, { requiredKeys: [] }), anyValue) },
      { requiredKeys: [] },
    ),
  },
];

describe('the admin API under fuzzing', () => {
  it.each(routes)('$name: never a 5xx, a JSON message with every 4xx', async (route) => {
    await fc.assert(
      fc.asyncProperty(
        route.path,
        bodies(route.shaped),
        contentType,
        route.token ? authorization(route.token) : fc.constant(undefined),
        async (path, body, type, auth) => {
          const answer = await send(route.method, path, body.bytes, headersOf(type ?? (body.json ? 'application/json' : undefined), auth));
          judge(answer, `${route.name} ${path}`);
        },
      ),
      { numRuns: RUNS },
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('GET /api/v1/events: any query gives 200 or a 400 that says why', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom('', '0', '-1', '1000', '1001', '1e3', '0x10', '99999999999999999999', 'probe', 'rule.firing', "probe' OR 1=1 --", '%', '_', 'probe.%'),
    );
    const query = fc.dictionary(fc.constantFrom('since', 'limit', 'type', 'other', 'since[]'), value, { maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(query, async (params) => {
        const answer = await send('GET', `/api/v1/events?${new URLSearchParams(params)}`, undefined, {});
        judge(answer, `GET /api/v1/events ${JSON.stringify(params)}`);
        if (answer.status === 200) expect(JSON.parse(answer.text)).toMatchObject({ events: expect.any(Array), next: expect.any(Number) });
        else expect(answer.status).toBe(400);
      }),
      { numRuns: RUNS },
    );
    // Percent-encoding that does not decode is taken literally, never thrown on.
    judge(await send('GET', '/api/v1/events?since=%zz&type=%E0%A4%A', undefined, {}), 'bad percent-encoding');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('answers a refused large body on a keep-alive connection (regression: fetch waited forever for the 400/413)', async () => {
    const big = utf8(JSON.stringify({ set: { READ_ONLY_MODE: true }, reason: 'x'.repeat(200_000) }));
    const auth = { authorization: `Bearer ${ADMIN}` };
    const under = utf8(`reason=${'x'.repeat(60_000)}`);
    const refused = await send('PUT', '/api/v1/flags', under, { ...auth, 'content-type': 'application/x-www-form-urlencoded' });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({
      error: expect.stringMatching(/^body is not JSON \(it came as application\/x-www-form-urlencoded: send JSON, as application\/json\): /),
    });
    expect((await send('PUT', '/api/v1/flags', big, { ...auth, 'content-type': 'text/plain' })).status).toBe(413);
    expect((await send('PUT', '/api/v1/flags', big, { ...auth, 'content-type': 'application/json' })).status).toBe(413);
    const small = utf8(JSON.stringify({ set: { READ_ONLY_MODE: false }, reason: 'after the refusals' }));
    expect((await send('PUT', '/api/v1/flags', small, { ...auth, 'content-type': 'application/json' })).status).toBe(200);
  });

  it.each(['application/x-www-form-urlencoded', 'text/plain', undefined])(
    'takes a JSON body sent as %s, as curl -d sends it (regression: 415, and nothing changed)',
    async (type) => {
      const body = utf8(JSON.stringify({ set: { READ_ONLY_MODE: type !== 'text/plain' }, reason: `sent as ${String(type)}` }));
      const answer = await send('PUT', '/api/v1/flags', body, { authorization: `Bearer ${ADMIN}`, ...(type === undefined ? {} : { 'content-type': type }) });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ envs: ['blue', 'green'] });
    },
  );

  it('raw request targets: never a 5xx, never a crash (regression: `GET //[` threw in the request listener)', async () => {
    const target = fc.oneof(
      fc.constantFrom(
        '//[',
        'http://[',
        'https://[::1/',
        'http://a:99999/',
        'http://%zz/',
        '//[/api/v1/stream',
        '/api/v1/stream?since=%zz',
        '/%',
        '/api/v1/events?%',
        '*',
      ),
      fc.string({ minLength: 1, maxLength: 60 }).filter((s) => /^[\x21-\x7e]+$/.test(s)),
      fc
        .string({ maxLength: 60 })
        .filter((s) => /^[\x21-\x7e]*$/.test(s))
        .map((s) => `/${s}`),
    );
    await fc.assert(
      fc.asyncProperty(target, fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE'), fc.boolean(), async (path, method, upgrade) => {
        const headers = upgrade
          ? 'connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
          : 'connection: close\r\n';
        const status = await rawRequest(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${headers}content-length: 0\r\n\r\n`);
        if (status !== undefined && status >= 500) throw new Error(`${method} ${path}${upgrade ? ' (upgrade)' : ''}: HTTP ${status}`);
      }),
      { numRuns: RUNS },
    );
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('a target that is no valid path is 400, not a path no route has (regression: 404 and the route list; //api/v1/state read as host api)', async () => {
    for (const [method, path] of [
      ['GET', '//api/v1/state'],
      ['POST', '/ofrep/v1/evaluate/flags/%E0%A4%A'],
      ['DELETE', '/api/v1/silences/%ZZ'],
      ['GET', '/api/v1/%'],
    ] as const) {
      const status = await rawRequest(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      expect([method, path, status]).toEqual([method, path, 400]);
    }
    expect((await fetch(`${base}/api/v1/silences/${encodeURIComponent('no such')}`, { method: 'DELETE' })).status).not.toBe(400);
  });
});

/** The status of the first answer to a raw request, or undefined when the connection closes without one. */
function rawRequest(text: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(agent.address!.port, '127.0.0.1', () => socket.write(text));
    let seen = '';
    const done = () => {
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(seen);
      resolve(match ? Number(match[1]) : undefined);
    };
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? done() : reject(error)));
    socket.setTimeout(5_000, () => reject(new Error(`no answer to ${JSON.stringify(text.split('\r\n')[0])}`)));
  });
}

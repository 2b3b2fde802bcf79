/**
 * The flag routes against hostile values: nesting thousands deep, strings and keys of tens of
 * kilobytes, prototype names (`__proto__`, `constructor`, `prototype`) as keys at any depth.
 * Bodies are written as JSON text, since a value 5,000 deep cannot even be stringified here.
 * Whatever the shape: never a 5xx, a 4xx always says why, no answer echoes a huge value, the
 * locked flag never moves, and every attempt on it (its name used as a key anywhere in a change
 * request, with any value but its own) answers 409 and leaves a `flag.rejected` audit entry.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../../agent/events/events.js';
import { flagRoutes } from '../../../agent/flags/flag-routes.js';
import { FlagStore } from '../../../agent/flags/flag-store.js';
import { startHttpServer, type HttpServer } from '../../../agent/http/http-server.js';
import { Redactor } from '../../../config/redactor.js';

const ADMIN = 'admin-token-fuzz-123';
const ROLLBACK = 'rollback-token-fuzz-123';
const LOCKED = 'ALPHASTACK_PROTECTION';
/** Longer answers are echoing something they should not. */
const MAX_ANSWER = 4_096;

let store: FlagStore;
const events: EventInput[] = [];
let server: HttpServer;
let base: string;

beforeAll(async () => {
  store = new FlagStore({ environments: ['blue', 'green'], readOnlyOnEmergency: false, now: Date.now, publish: (input) => events.push(input) });
  server = await startHttpServer({
    listen: { host: '127.0.0.1', port: 0 },
    routes: flagRoutes(store, { activeEnvironment: () => 'blue' }),
    tokens: () => ({ admin: ADMIN, rollback: ROLLBACK }),
    // As in the agent: request bodies are redacted as they come in.
    redactor: new Redactor([ADMIN, ROLLBACK]),
    logger: pino({ level: 'silent' }),
  });
  base = `http://127.0.0.1:${server.address.port}`;
});
afterAll(() => server.close());

async function send(method: string, path: string, text: string, token: string | undefined): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}${path}`, { method, headers, body: text });
  return { status: response.status, text: await response.text() };
}

/** Whether a body names the locked flag as a key, anywhere, with another value than its own (true). */
function attemptsLocked(text: string): boolean {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return false;
  }
  const stack = [body];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === LOCKED && value !== true) return true;
      stack.push(value);
    }
  }
  return false;
}

const nested = (depth: number, inner: string, open: string, close: string) => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

/** JSON texts of values: deep, huge, prototype-named, and ordinary. */
const valueText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? 'null') },
    { weight: 2, arbitrary: fc.boolean().map(String) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 100, max: 6_000 }), fc.constantFrom('true', 'false', '"x"', '{}'))
        .map(([depth, inner]) => nested(depth, inner, '[', ']')),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 100, max: 4_000 }), fc.constantFrom('false', '1')).map(([depth, inner]) => nested(depth, inner, '{"a":', '}')),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 50_000 }).map((n) => JSON.stringify('x'.repeat(n))) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), tie('value')).map(([key, value]) => `{${JSON.stringify(key)}:${value}}`),
    },
    { weight: 1, arbitrary: fc.tuple(tie('value'), tie('value')).map(([a, b]) => `{"constructor":{"prototype":{"${LOCKED}":${a},"READ_ONLY_MODE":${b}}}}`) },
  ),
})).value;

const keyText = fc
  .oneof(
    fc.constantFrom(LOCKED, 'READ_ONLY_MODE', 'CIRCUIT_BREAKER', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', ''),
    fc.string({ maxLength: 20 }),
    fc.integer({ min: 1_000, max: 30_000 }).map((n) => 'K'.repeat(n)),
  )
  .map((key) => JSON.stringify(key));

const objectText = (entries: fc.Arbitrary<[string, string][]>) => entries.map((pairs) => `{${pairs.map(([key, value]) => `${key}:${value}`).join(',')}}`);

/** A change request's body: `set`, `reason` and `env` of any shape, and extra keys. */
const changeBody = fc
  .record(
    {
      set: fc.oneof(objectText(fc.array(fc.tuple(keyText, valueText), { maxLength: 4 })), valueText),
      reason: fc.oneof(fc.constant('"fuzz"'), valueText),
      env: fc.oneof(fc.constantFrom('"blue"', '"live"', '"all"', '"purple"', '"__proto__"'), valueText),
      extra: fc.array(fc.tuple(keyText, valueText), { maxLength: 2 }),
    },
    { requiredKeys: ['extra'] },
  )
  .map(
    ({ extra, ...known }) =>
      `{${[...Object.entries(known).map(([key, value]) => `${JSON.stringify(key)}:${value}`), ...extra.map(([key, value]) => `${key}:${value}`)].join(',')}}`,
  );

/** An OFREP body: `context` of any shape, its `environment` too. */
const evaluateBody = fc.oneof(
  valueText.map((value) => `{"context":${value}}`),
  valueText.map((value) => `{"context":{"environment":${value},"targetingKey":${value.slice(0, 1_000) === value ? value : '"t"'}}}`),
  valueText,
);

function judge(answer: { status: number; text: string }, what: string): void {
  if (answer.status >= 500) throw new Error(`${what}: HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
  if (answer.text.length > MAX_ANSWER)
    throw new Error(`${what}: HTTP ${answer.status} answered ${answer.text.length} characters: ${answer.text.slice(0, 200)}…`);
  if (answer.status >= 400) {
    const body = JSON.parse(answer.text) as { error?: unknown; errorDetails?: unknown };
    const message = body.error ?? body.errorDetails;
    if (typeof message !== 'string' || message.length === 0) throw new Error(`${what}: HTTP ${answer.status} without a message: ${answer.text.slice(0, 300)}`);
  }
}

describe('locked flags: every attempt is audited, nothing answers 500', () => {
  it('a 5,000-deep array as the value of ALPHASTACK_PROTECTION: 409 and an audit entry (regression: a 500 from a RangeError in describe())', async () => {
    const audited = store.audit().length;
    const answer = await send('PUT', '/api/v1/flags', `{"set":{"${LOCKED}":${nested(5_000, 'false', '[', ']')}},"reason":"deep"}`, ADMIN);
    expect(answer.status).toBe(409);
    expect(answer.text.length).toBeLessThan(MAX_ANSWER);
    const entries = store.audit().slice(audited);
    expect(entries).toEqual([
      expect.objectContaining({ flag: LOCKED, outcome: 'rejected', env: 'blue', new: expect.stringMatching(/^\[\[\[/) }),
      expect.objectContaining({ flag: LOCKED, env: 'green' }),
    ]);
    expect((entries[0]!.new as string).length).toBeLessThanOrEqual(60);
    expect(events.at(-1)).toMatchObject({ type: 'flag.rejected', data: { flag: LOCKED } });
  });

  it.each([
    ['under __proto__', `{"set":{"__proto__":{"${LOCKED}":false}},"reason":"pollute"}`],
    ['under constructor.prototype', `{"set":{"constructor":{"prototype":{"${LOCKED}":false}}},"reason":"pollute"}`],
    ['at the top, without set', `{"${LOCKED}":false,"reason":"forgot set"}`],
    ['with an empty reason', `{"set":{"${LOCKED}":false},"reason":""}`],
    ['with an unknown env', `{"set":{"${LOCKED}":false},"reason":"x","env":"purple"}`],
    ['with a huge string', `{"set":{"${LOCKED}":${JSON.stringify('x'.repeat(50_000))}},"reason":"huge"}`],
    // JSON.parse keeps the last of a key named twice: each of these reads as a request that changes nothing.
    ['named twice, the attempt first', `{"set":{"${LOCKED}":false,"${LOCKED}":true},"reason":"twice"}`],
    ['in a set named twice', `{"set":{"${LOCKED}":false},"reason":"twice","set":{}}`],
    ['in a key named twice deeper down', `{"set":{"x":{"y":{"${LOCKED}":false},"y":1}},"reason":"twice"}`],
  ])('an attempt %s: 409 and an audit entry (regression: a __proto__ key left no flag.rejected entry)', async (_name, text) => {
    const audited = store.audit().length;
    const rejected = events.filter((event) => event.type === 'flag.rejected').length;
    const answer = await send('PUT', '/api/v1/flags', text, ADMIN);
    expect(answer.status).toBe(409);
    expect(JSON.parse(answer.text).error).toContain(`${LOCKED} is locked`);
    expect(store.audit().length).toBeGreaterThan(audited);
    expect(store.audit().at(-1)).toMatchObject({ flag: LOCKED, outcome: 'rejected' });
    expect(events.filter((event) => event.type === 'flag.rejected').length).toBe(rejected + 1);
    expect(store.get('blue')[LOCKED]).toBe(true);
  });

  it('emergency-rollback with the locked flag named in its body: 409 and an audit entry', async () => {
    const audited = store.audit().length;
    const answer = await send('POST', '/api/v1/flags/emergency-rollback', `{"reason":"x","set":{"${LOCKED}":false}}`, ROLLBACK);
    expect(answer.status).toBe(409);
    expect(store.audit().length).toBeGreaterThan(audited);
  });

  it.each([
    ['PUT', '/api/v1/flags', ADMIN, '{"set":{"READ_ONLY_MODE":true,"READ_ONLY_MODE":false},"reason":"x"}', 'set.READ_ONLY_MODE'],
    ['PUT', '/api/v1/flags', ADMIN, '{"set":{"READ_ONLY_MODE":true},"reason":"x","reason":"y"}', 'reason'],
    ['POST', '/api/v1/flags/emergency-rollback', ROLLBACK, '{"env":"blue","env":"green"}', 'env'],
  ])('%s %s naming a key twice: a 400 naming it, and nothing changes', async (method, path, token, text, key) => {
    const before = JSON.stringify(store.all());
    const audited = store.audit().length;
    const answer = await send(method, path, text, token);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error).toBe(`the body names ${key} twice in one object, and JSON keeps only the last: send each key once`);
    expect(JSON.stringify(store.all())).toBe(before);
    expect(store.audit().length).toBe(audited);
  });

  it('a prototype key is refused with a message, and never becomes the prototype of the flag set', async () => {
    const answer = await send('PUT', '/api/v1/flags', '{"set":{"__proto__":{"READ_ONLY_MODE":true}},"reason":"x"}', ADMIN);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text).error).toContain('__proto__ is not a flag');
    expect(store.get('blue').READ_ONLY_MODE).toBe(false);
  });

  it.each([
    ['a deep value of another flag', `{"set":{"READ_ONLY_MODE":${nested(5_000, 'true', '[', ']')}},"reason":"x"}`],
    ['a huge key', `{"set":{${JSON.stringify('K'.repeat(60_000))}:true},"reason":"x"}`],
    ['many unknown keys', `{"set":{${Array.from({ length: 2_000 }, (_, i) => `"F${i}":true`).join(',')}},"reason":"x"}`],
    ['a huge unknown top-level key', `{${JSON.stringify('K'.repeat(60_000))}:1,"set":{"READ_ONLY_MODE":true},"reason":"x"}`],
  ])('%s: a 400 with a short message', async (_name, text) => {
    const answer = await send('PUT', '/api/v1/flags', text, ADMIN);
    expect(answer.status).toBe(400);
    expect(answer.text.length).toBeLessThan(MAX_ANSWER);
  });

  it('OFREP with a deep or huge context: a 400 with a short message', async () => {
    for (const environment of [nested(5_000, '"blue"', '[', ']'), JSON.stringify('x'.repeat(50_000)), `{"__proto__":{"environment":"blue"}}`]) {
      for (const path of ['/ofrep/v1/evaluate/flags', `/ofrep/v1/evaluate/flags/${LOCKED}`]) {
        const answer = await send('POST', path, `{"context":{"environment":${environment}}}`, undefined);
        expect(answer.status).toBe(400);
        expect(answer.text.length).toBeLessThan(MAX_ANSWER);
      }
    }
    const unknown = await send('POST', `/ofrep/v1/evaluate/flags/${'K'.repeat(10_000)}`, '{}', undefined);
    expect(unknown.status).toBe(404);
    expect(unknown.text.length).toBeLessThan(MAX_ANSWER);
  });

  const changeRoutes = [
    { name: 'PUT /api/v1/flags', method: 'PUT', path: '/api/v1/flags', token: ADMIN },
    { name: 'POST /api/v1/flags/emergency-rollback', method: 'POST', path: '/api/v1/flags/emergency-rollback', token: ROLLBACK },
  ];

  it.each(changeRoutes)('$name under fuzzing: a 4xx with a message, and every attempt on the locked flag a 409 with an audit entry', async (route) => {
    await fc.assert(
      fc.asyncProperty(changeBody, async (text) => {
        const audited = store.audit().length;
        const answer = await send(route.method, route.path, text, route.token);
        judge(answer, `${route.name} ${text.slice(0, 200)}`);
        expect(store.get('blue')[LOCKED]).toBe(true);
        expect(store.get('green')[LOCKED]).toBe(true);
        if (text.length <= 64 * 1_024 && attemptsLocked(text)) {
          expect(answer.status).toBe(409);
          expect(store.audit().length).toBeGreaterThan(audited);
          expect(store.audit().at(-1)).toMatchObject({ flag: LOCKED, outcome: 'rejected' });
        }
        for (const entry of store.audit(5)) expect(JSON.stringify(entry).length).toBeLessThan(1_024);
      }),
      { numRuns: 150 },
    );
  });

  it.each(['/ofrep/v1/evaluate/flags', `/ofrep/v1/evaluate/flags/${LOCKED}`, '/ofrep/v1/evaluate/flags/__proto__'])(
    'POST %s under fuzzing: never a 5xx, never a long answer',
    async (path) => {
      await fc.assert(
        fc.asyncProperty(evaluateBody, async (text) => {
          judge(await send('POST', path, text, undefined), `POST ${path} ${text.slice(0, 200)}`);
        }),
        { numRuns: 100 },
      );
    },
  );
});

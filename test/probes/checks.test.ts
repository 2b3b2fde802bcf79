import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { HeaderAssertionConfig, JsonAssertionConfig, ProbeConfig } from '../../config/schema.js';
import { asNumber, compileHeaderChecks, compileJsonChecks, compileStatusCheck } from '../../probes/checks.js';
import type { CheckResult } from '../../probes/probe-result.js';
import { Redactor } from '../../config/redactor.js';
import { JsonSelector } from '../../probes/json-select.js';

/** A probe parsed from a config whose only probe has the given `expect` block (YAML, flow style allowed). */
function probeWithExpect(expectYaml: string): ProbeConfig {
  const text = [
    'environments:',
    '  blue: { url: "http://127.0.0.1:8081" }',
    '  green: { url: "http://127.0.0.1:8082" }',
    'probes:',
    '  - name: health',
    '    path: /api/health',
    '    expect:',
    ...expectYaml.split('\n').map((line) => `      ${line}`),
  ].join('\n');
  return parseConfig(text, {}).probes[0]!;
}

/** One JSON assertion, written as a YAML flow mapping: `{ path: $.status, in: [healthy, ok] }`. */
function jsonAssertion(yaml: string): JsonAssertionConfig {
  return probeWithExpect(`json:\n  - ${yaml}`).expect.json[0]!;
}

function headerAssertion(yaml: string): HeaderAssertionConfig {
  return probeWithExpect(`headers:\n  - ${yaml}`).expect.headers[0]!;
}

/** The assertion's checks, each run on a body as a probe runs it: the body sent as JSON text, read for the assertion's path. */
function checksOnBody(assertion: string | JsonAssertionConfig): ((body: unknown) => CheckResult)[] {
  const compiled = typeof assertion === 'string' ? jsonAssertion(assertion) : assertion;
  const selector = new JsonSelector([compiled.path.segments]);
  return compileJsonChecks(compiled, new Redactor()).map((check) => (body: unknown) => {
    const selection = selector.select(Buffer.from(JSON.stringify(body)));
    if (!selection.ok) throw new Error(selection.problem);
    return check(selection.values[0]);
  });
}

function runJson(yaml: string, body: unknown): CheckResult[] {
  return checksOnBody(yaml).map((check) => check(body));
}

function runHeaders(yaml: string, headers: Record<string, string | string[] | undefined>): CheckResult[] {
  return compileHeaderChecks(headerAssertion(yaml), new Redactor()).map((check) => check(headers));
}

const pass = (text: string): CheckResult => ({ ok: true, text });
const fail = (text: string): CheckResult => ({ ok: false, text });

describe('compileJsonChecks', () => {
  // [assertion (YAML flow mapping), body, expected check results]
  const cases: [string, unknown, CheckResult[]][] = [
    // equals
    ['{ path: $.status, equals: healthy }', { status: 'healthy' }, [pass('$.status ("healthy") == "healthy"')]],
    ['{ path: $.status, equals: healthy }', { status: 'degraded' }, [fail('$.status ("degraded") != "healthy"')]],
    ['{ path: $.status, equals: healthy }', {}, [fail('$.status (missing) != "healthy"')]],
    ['{ path: $.database.connected, equals: true }', { database: { connected: true } }, [pass('$.database.connected (true) == true')]],
    ['{ path: $.database.connected, equals: true }', { database: { connected: false } }, [fail('$.database.connected (false) != true')]],
    ['{ path: $.database.connected, equals: true }', { database: { connected: 'true' } }, [fail('$.database.connected ("true") != true')]],
    ['{ path: $.count, equals: 3 }', { count: 3 }, [pass('$.count (3) == 3')]],
    ['{ path: $.count, equals: 3 }', { count: 4 }, [fail('$.count (4) != 3')]],
    ['{ path: $.error, equals: null }', { error: null }, [pass('$.error (null) == null')]],
    ['{ path: $.error, equals: null }', {}, [fail('$.error (missing) != null')]],
    // notEquals
    ['{ path: $.mode, notEquals: maintenance }', { mode: 'live' }, [pass('$.mode ("live") != "maintenance"')]],
    ['{ path: $.mode, notEquals: maintenance }', { mode: 'maintenance' }, [fail('$.mode ("maintenance") == "maintenance"')]],
    ['{ path: $.mode, notEquals: maintenance }', {}, [pass('$.mode (missing) != "maintenance"')]],
    ['{ path: $.errors, notEquals: 0 }', { errors: 0 }, [fail('$.errors (0) == 0')]],
    // in
    ['{ path: $.status, in: [healthy, ok] }', { status: 'healthy' }, [pass('$.status ("healthy") in [healthy, ok]')]],
    ['{ path: $.status, in: [healthy, ok] }', { status: 'ok' }, [pass('$.status ("ok") in [healthy, ok]')]],
    ['{ path: $.status, in: [healthy, ok] }', { status: 'degraded' }, [fail('$.status ("degraded") not in [healthy, ok]')]],
    ['{ path: $.status, in: [healthy, ok] }', {}, [fail('$.status (missing) not in [healthy, ok]')]],
    ['{ path: $.code, in: [1, 2] }', { code: 2 }, [pass('$.code (2) in [1, 2]')]],
    ['{ path: $.code, in: [1, 2] }', { code: 3 }, [fail('$.code (3) not in [1, 2]')]],
    ['{ path: $.code, in: [1, 2] }', { code: '1' }, [fail('$.code ("1") not in [1, 2]')]],
    ['{ path: $.x, in: [ok, 1, true, null] }', { x: null }, [pass('$.x (null) in [ok, 1, true, null]')]],
    // exists
    ['{ path: $.positions, exists: true }', { positions: [] }, [pass('$.positions ([]) exists')]],
    ['{ path: $.positions, exists: true }', { positions: null }, [pass('$.positions (null) exists')]],
    ['{ path: $.positions, exists: true }', {}, [fail('$.positions (missing) does not exist')]],
    ['{ path: $.error, exists: false }', {}, [pass('$.error (missing) is absent')]],
    ['{ path: $.error, exists: false }', { error: 'boom' }, [fail('$.error ("boom") exists')]],
    // is: the kind of value (regression: the stock universe check passed a universe of "[]", a string)
    ['{ path: $.universe, is: list }', { universe: [{ symbol: 'AAPL' }] }, [pass('$.universe (1 item) is a list')]],
    ['{ path: $.universe, is: list }', { universe: '[]' }, [fail('$.universe ("[]") is not a list')]],
    ['{ path: $.universe, is: list }', { universe: { AAPL: 1 } }, [fail('$.universe ({"AAPL":1}) is not a list')]],
    ['{ path: $.universe, is: list }', {}, [fail('$.universe (missing) is not a list')]],
    ['{ path: $.database, is: object }', { database: { connected: true } }, [pass('$.database (1 key) is a object')]],
    ['{ path: $.status, is: string }', { status: 'ok' }, [pass('$.status ("ok") is a string')]],
    ['{ path: $.pct, is: number }', { pct: '41.5' }, [fail('$.pct ("41.5") is not a number')]],
    ['{ path: $.up, is: boolean }', { up: false }, [pass('$.up (false) is a boolean')]],
    ['{ path: $.err, is: null }', { err: null }, [pass('$.err (null) is a null')]],
    [
      '{ path: $.universe, is: list, nonEmpty: true }',
      { universe: 'engine stopped' },
      [pass('$.universe ("engine stopped") is non-empty'), fail('$.universe ("engine stopped") is not a list')],
    ],
    // nonEmpty
    ['{ path: $.universe, nonEmpty: true }', { universe: [{ symbol: 'AAPL' }] }, [pass('$.universe (1 item) is non-empty')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: [1, 2, 3, 4, 5] }, [pass('$.universe (5 items) is non-empty')]],
    ['{ path: $.database, exists: true }', { database: { connected: true, pool: 4 } }, [pass('$.database (2 keys) exists')]],
    ['{ path: $.database, exists: false }', { database: { connected: true, pool: 4 } }, [fail('$.database ({"connected":true,"pool":4}) exists')]],
    ['{ path: $.universe, equals: 3 }', { universe: [1, 2, 3, 4, 5] }, [fail('$.universe ([1,2,3,...] (5 items)) != 3')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: [] }, [fail('$.universe ([]) is empty')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: '' }, [fail('$.universe ("") is empty')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: {} }, [fail('$.universe ({}) is empty')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: null }, [fail('$.universe (null) is empty')]],
    ['{ path: $.universe, nonEmpty: true }', {}, [fail('$.universe (missing) is empty')]],
    ['{ path: $.universe, nonEmpty: true }', { universe: 0 }, [pass('$.universe (0) is non-empty')]],
    ['{ path: $.universe, nonEmpty: false }', { universe: [] }, [pass('$.universe ([]) is empty')]],
    ['{ path: $.universe, nonEmpty: false }', { universe: [1] }, [fail('$.universe ([1]) is non-empty')]],
    // gt / gte / lt / lte (numbers and numeric strings)
    ['{ path: $.cpu, gt: 50 }', { cpu: 51 }, [pass('$.cpu (51) > 50')]],
    ['{ path: $.cpu, gt: 50 }', { cpu: 50 }, [fail('$.cpu (50) not > 50')]],
    ['{ path: $.cpu, gt: 40 }', { cpu: '41.5' }, [pass('$.cpu ("41.5") > 40')]],
    ['{ path: $.cpu, gt: 40 }', { cpu: 'high' }, [fail('$.cpu ("high") not > 40')]],
    ['{ path: $.cpu, gt: 40 }', { cpu: '' }, [fail('$.cpu ("") not > 40')]],
    ['{ path: $.cpu, gt: 40 }', {}, [fail('$.cpu (missing) not > 40')]],
    ['{ path: $.cpu, gte: 50 }', { cpu: 50 }, [pass('$.cpu (50) >= 50')]],
    ['{ path: $.cpu, gte: 50 }', { cpu: 49.9 }, [fail('$.cpu (49.9) not >= 50')]],
    ['{ path: $.cpu, lt: 90 }', { cpu: 89 }, [pass('$.cpu (89) < 90')]],
    ['{ path: $.cpu, lt: 90 }', { cpu: 90 }, [fail('$.cpu (90) not < 90')]],
    ['{ path: $.cpu, lte: 90 }', { cpu: 90 }, [pass('$.cpu (90) <= 90')]],
    ['{ path: $.cpu, lte: 90 }', { cpu: 90.5 }, [fail('$.cpu (90.5) not <= 90')]],
    ['{ path: $.cpu, lte: 90 }', { cpu: true }, [fail('$.cpu (true) not <= 90')]],
    ['{ path: $.latency, gte: -1.5 }', { latency: -1.5 }, [pass('$.latency (-1.5) >= -1.5')]],
    ['{ path: $.m, gte: 10, lte: 20 }', { m: 25 }, [pass('$.m (25) >= 10'), fail('$.m (25) not <= 20')]],
    // length: a number means equals; a mapping combines comparisons
    ['{ path: $.universe, length: 3 }', { universe: [1, 2, 3] }, [pass('length of $.universe (3) == 3')]],
    ['{ path: $.universe, length: 3 }', { universe: [1, 2] }, [fail('length of $.universe (2) not == 3')]],
    ['{ path: $.universe, length: 0 }', { universe: [] }, [pass('length of $.universe (0) == 0')]],
    ['{ path: $.symbol, length: 4 }', { symbol: 'AAPL' }, [pass('length of $.symbol (4) == 4')]],
    ['{ path: $.universe, length: 3 }', {}, [fail('length of $.universe (not a list or string) not == 3')]],
    ['{ path: $.universe, length: 3 }', { universe: 3 }, [fail('length of $.universe (not a list or string) not == 3')]],
    ['{ path: $.universe, length: { gte: 1 } }', { universe: [1] }, [pass('length of $.universe (1) >= 1')]],
    ['{ path: $.universe, length: { gte: 1 } }', { universe: [] }, [fail('length of $.universe (0) not >= 1')]],
    ['{ path: $.universe, length: { gte: 1, lte: 5 } }', { universe: [1, 2] }, [pass('length of $.universe (2) >= 1 and <= 5')]],
    ['{ path: $.universe, length: { gte: 1, lte: 5 } }', { universe: [1, 2, 3, 4, 5, 6] }, [fail('length of $.universe (6) not >= 1 and <= 5')]],
    ['{ path: $.universe, length: { gt: 0, lt: 3 } }', { universe: 'ab' }, [pass('length of $.universe (2) > 0 and < 3')]],
    ['{ path: $.universe, length: { equals: 2 } }', { universe: [1] }, [fail('length of $.universe (1) not == 2')]],
    // matches (strings only)
    ["{ path: $.version, matches: '^\\d+\\.\\d+\\.\\d+$' }", { version: '1.2.3' }, [pass('$.version ("1.2.3") matches /^\\d+\\.\\d+\\.\\d+$/')]],
    ["{ path: $.version, matches: '^\\d+\\.\\d+\\.\\d+$' }", { version: 'v1' }, [fail('$.version ("v1") does not match /^\\d+\\.\\d+\\.\\d+$/')]],
    ["{ path: $.version, matches: '^\\d+$' }", { version: 123 }, [fail('$.version (123) does not match /^\\d+$/')]],
    ["{ path: $.version, matches: '^\\d+$' }", {}, [fail('$.version (missing) does not match /^\\d+$/')]],
    // paths with indexes and quoted names
    [
      '{ path: "$.universe[0].symbol", equals: AAPL }',
      { universe: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }] },
      [pass('$.universe[0].symbol ("AAPL") == "AAPL"')],
    ],
    [
      '{ path: "$.universe[-1].symbol", equals: AAPL }',
      { universe: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }] },
      [fail('$.universe[-1].symbol ("MSFT") != "AAPL"')],
    ],
    ['{ path: "$.universe[5].symbol", exists: false }', { universe: [] }, [pass('$.universe[5].symbol (missing) is absent')]],
    [`{ path: "$['risk level']", equals: low }`, { 'risk level': 'low' }, [pass(`$['risk level'] ("low") == "low"`)]],
    ['{ path: $.status.code, exists: true }', { status: 'healthy' }, [fail('$.status.code (missing) does not exist')]],
    // several operators on one assertion: one check each, in operator order
    [
      '{ path: $.status, matches: "^h", exists: true, in: [healthy], equals: healthy }',
      { status: 'healthy' },
      [
        pass('$.status ("healthy") == "healthy"'),
        pass('$.status ("healthy") in [healthy]'),
        pass('$.status ("healthy") exists'),
        pass('$.status ("healthy") matches /^h/'),
      ],
    ],
  ];

  it.each(cases)('%s on %j', (yaml, body, expected) => {
    expect(runJson(yaml, body)).toEqual(expected);
  });

  it('evaluates against the root with $', () => {
    expect(runJson('{ path: $, nonEmpty: true }', {})).toEqual([fail('$ ({}) is empty')]);
    expect(runJson('{ path: $, length: 2 }', [1, 2])).toEqual([pass('length of $ (2) == 2')]);
  });

  it('truncates long observed values to 80 characters', () => {
    const long = 'x'.repeat(100);
    const [result] = runJson('{ path: $.message, equals: short }', { message: long });
    const shown = `"${'x'.repeat(76)}...`;
    expect(shown).toHaveLength(80);
    expect(result).toEqual(fail(`$.message (${shown}) != "short"`));
  });

  it('quotes a large failing list from its text, never parsing and writing it out again (regression: 450,000 nested lists overflowed the stack and held the loop)', () => {
    const depth = 450_000;
    const text = `{"status":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const compiled = jsonAssertion('{ path: $.status, in: [healthy] }');
    const selection = new JsonSelector([compiled.path.segments]).select(Buffer.from(text));
    if (!selection.ok) throw new Error(selection.problem);
    const [check] = compileJsonChecks(compiled, new Redactor());
    expect(check!(selection.values[0])).toEqual(fail(`$.status (${'['.repeat(57)}... (1 item)) not in [healthy]`));
  });

  it('compiles once and can be evaluated against many bodies', () => {
    const [check] = checksOnBody('{ path: $.status, in: [healthy, ok] }');
    expect(check!({ status: 'ok' }).ok).toBe(true);
    expect(check!({ status: 'down' }).ok).toBe(false);
    expect(check!('not an object').text).toBe('$.status (missing) not in [healthy, ok]');
    expect(check!(null).ok).toBe(false);
  });

  it('gives one frozen outcome while a scalar stays the same, and a new one when it changes', () => {
    const [check] = checksOnBody('{ path: $.status, in: [healthy, ok] }');
    const first = check!({ status: 'healthy', at: 1 });
    expect(check!({ status: 'healthy', at: 2 })).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const down = check!({ status: 'down' });
    expect(down).toEqual(fail('$.status ("down") not in [healthy, ok]'));
    expect(check!({ status: 'healthy' })).not.toBe(first);
  });

  it('remembers a passing list or object by its size, and words every failure anew from its elements', () => {
    const [nonEmpty] = checksOnBody('{ path: $.universe, nonEmpty: true }');
    const first = nonEmpty!({ universe: [{ price: 1 }, { price: 2 }] });
    // New elements, same size: the same outcome, no new text.
    expect(nonEmpty!({ universe: [{ price: 3 }, { price: 4 }] })).toBe(first);
    expect(nonEmpty!({ universe: [{ price: 3 }, { price: 4 }, { price: 5 }] })).toEqual(pass('$.universe (3 items) is non-empty'));
    // An object of as many keys as the list had items is another shape: not the list's outcome.
    const [exists] = checksOnBody('{ path: $.x, exists: true }');
    const list = exists!({ x: [1, 2] });
    expect(exists!({ x: { a: 1, b: 2 } })).toEqual(pass('$.x (2 keys) exists'));
    expect(exists!({ x: [1, 2] })).toEqual(list);
    expect(exists!({ x: 2 })).toEqual(pass('$.x (2) exists'));
    // A list that fails shows its first elements, each time as it is now.
    const [equals] = checksOnBody('{ path: $.x, equals: 1 }');
    expect(equals!({ x: [7] })).toEqual(fail('$.x ([7]) != 1'));
    expect(equals!({ x: [8] })).toEqual(fail('$.x ([8]) != 1'));
  });

  it('remembers a length check by the length it read', () => {
    const [length] = checksOnBody('{ path: $.universe, length: { gte: 1, lte: 2 } }');
    const first = length!({ universe: [{ a: 1 }] });
    expect(first).toEqual(pass('length of $.universe (1) >= 1 and <= 2'));
    expect(length!({ universe: [{ a: 2 }] })).toBe(first);
    expect(length!({ universe: [1, 2, 3] })).toEqual(fail('length of $.universe (3) not >= 1 and <= 2'));
    expect(length!({ universe: { a: 1, b: 2 } })).toEqual(pass('length of $.universe (2) >= 1 and <= 2'));
  });

  it('accepts an assertion object built directly', () => {
    const assertion: JsonAssertionConfig = { path: { text: '$.a.b', segments: ['a', 'b'] }, lt: 10 };
    expect(checksOnBody(assertion).map((check) => check({ a: { b: 3 } }))).toEqual([pass('$.a.b (3) < 10')]);
  });
});

describe('the stock universe probe', () => {
  it('passes a non-empty list only: not "[]", a sentence, or an object in its place', () => {
    const stock = parseAgentConfig(readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8'), {});
    const universe = stock.probes.find((probe) => probe.name === 'universe')!.expect.json[0]!;
    const passes = (body: unknown) => checksOnBody(universe).every((check) => check(body).ok);
    expect(passes({ universe: [{ symbol: 'AAPL' }] })).toBe(true);
    for (const wrong of [[], '[]', 'engine stopped', { AAPL: {} }, null, 3]) expect([wrong, passes({ universe: wrong })]).toEqual([wrong, false]);
  });
});

describe('compileHeaderChecks', () => {
  const cases: [string, Record<string, string | string[] | undefined>, CheckResult[]][] = [
    // equals (the header name is lower-cased by the schema, as the response headers are)
    ['{ name: X-Version, equals: "1.2.3" }', { 'x-version': '1.2.3' }, [pass('header x-version ("1.2.3") == "1.2.3"')]],
    ['{ name: X-Version, equals: "1.2.3" }', { 'x-version': '1.2.4' }, [fail('header x-version ("1.2.4") != "1.2.3"')]],
    ['{ name: X-Version, equals: "1.2.3" }', {}, [fail('header x-version (missing) != "1.2.3"')]],
    // matches
    [
      "{ name: content-type, matches: '^application/json' }",
      { 'content-type': 'application/json; charset=utf-8' },
      [pass('header content-type ("application/json; charset=utf-8") matches /^application/json/')],
    ],
    [
      "{ name: content-type, matches: '^application/json' }",
      { 'content-type': 'text/html' },
      [fail('header content-type ("text/html") does not match /^application/json/')],
    ],
    ["{ name: content-type, matches: '^application/json' }", {}, [fail('header content-type (missing) does not match /^application/json/')]],
    ["{ name: set-cookie, matches: 'b=2' }", { 'set-cookie': ['a=1', 'b=2'] }, [pass('header set-cookie ("a=1, b=2") matches /b=2/')]],
    // exists
    ['{ name: X-Request-Id, exists: true }', { 'x-request-id': 'abc' }, [pass('header x-request-id ("abc") exists')]],
    ['{ name: X-Request-Id, exists: true }', { 'x-request-id': '' }, [pass('header x-request-id ("") exists')]],
    ['{ name: X-Request-Id, exists: true }', {}, [fail('header x-request-id (missing) does not exist')]],
    ['{ name: X-Debug, exists: false }', {}, [pass('header x-debug (missing) is absent')]],
    ['{ name: X-Debug, exists: false }', { 'x-debug': '1' }, [fail('header x-debug ("1") exists')]],
    // several operators: exists, equals, matches in that order
    [
      "{ name: x-env, matches: '^gr', equals: green, exists: true }",
      { 'x-env': 'green' },
      [pass('header x-env ("green") exists'), pass('header x-env ("green") == "green"'), pass('header x-env ("green") matches /^gr/')],
    ],
  ];

  it.each(cases)('%s on %j', (yaml, headers, expected) => {
    expect(runHeaders(yaml, headers)).toEqual(expected);
  });

  it('lower-cases the header name from the config', () => {
    expect(headerAssertion('{ name: X-Version, exists: true }').name).toBe('x-version');
  });
});

describe('compileStatusCheck', () => {
  // [status spec (YAML list), status, expected]
  const cases: [string, number, CheckResult][] = [
    ['[200]', 200, pass('status 200 in [200]')],
    ['[200]', 204, fail('status 204 not in [200]')],
    ['[200]', 500, fail('status 500 not in [200]')],
    ['[2xx]', 200, pass('status 200 in [2xx]')],
    ['[2xx]', 299, pass('status 299 in [2xx]')],
    ['[2xx]', 199, fail('status 199 not in [2xx]')],
    ['[2xx]', 300, fail('status 300 not in [2xx]')],
    ['[2xx]', 503, fail('status 503 not in [2xx]')],
    ['[200-204]', 200, pass('status 200 in [200-204]')],
    ['[200-204]', 204, pass('status 204 in [200-204]')],
    ['[200-204]', 205, fail('status 205 not in [200-204]')],
    ['[200-204]', 199, fail('status 199 not in [200-204]')],
    ['[200, 3xx, 404-410]', 302, pass('status 302 in [200, 3xx, 404-410]')],
    ['[200, 3xx, 404-410]', 410, pass('status 410 in [200, 3xx, 404-410]')],
    ['[200, 3xx, 404-410]', 201, fail('status 201 not in [200, 3xx, 404-410]')],
    // a range that is exactly a class is shown as the class
    ['[200-299]', 250, pass('status 250 in [2xx]')],
  ];

  it.each(cases)('%s with %i', (spec, status, expected) => {
    const probe = probeWithExpect(`status: ${spec}`);
    expect(compileStatusCheck(probe.expect.status)(status)).toEqual(expected);
  });

  it('defaults to 2xx when the probe names no status', () => {
    const probe = probeWithExpect('json: []');
    expect(probe.expect.status).toEqual([[200, 299]]);
    expect(compileStatusCheck(probe.expect.status)(201)).toEqual(pass('status 201 in [2xx]'));
    expect(compileStatusCheck(probe.expect.status)(404)).toEqual(fail('status 404 not in [2xx]'));
  });

  it('accepts ranges built directly', () => {
    const check = compileStatusCheck([
      [200, 200],
      [500, 599],
      [301, 302],
    ]);
    expect(check(503)).toEqual(pass('status 503 in [200, 5xx, 301-302]'));
    expect(check(303)).toEqual(fail('status 303 not in [200, 5xx, 301-302]'));
  });
});

describe('asNumber', () => {
  const cases: [unknown, number | undefined][] = [
    [41.5, 41.5],
    ['41.5', 41.5],
    [' 7 ', 7],
    ['-3', -3],
    [0, 0],
    ['', undefined],
    ['   ', undefined],
    ['abc', undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    ['Infinity', undefined],
    [true, undefined],
    [null, undefined],
    [undefined, undefined],
    [[1], undefined],
    // Number() reads these too; a memory percentage of "0x5F" is an id or a bug, not 95 (regression).
    ['0x5F', undefined],
    ['0b1011111', undefined],
    ['0o137', undefined],
    ['1e3', 1000],
    ['.5', undefined],
    ['1e400', undefined],
  ];
  it.each(cases)('%j → %s', (value, expected) => {
    expect(asNumber(value)).toBe(expected);
  });
});

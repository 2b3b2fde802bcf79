import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parseJsonPath, type PathSegment } from '../../config/json-path.js';
import { JsonSelector, JsonSlice, type JsonSelection } from '../../probes/json-select.js';

const select = (text: string | Buffer, paths: readonly string[]): JsonSelection =>
  new JsonSelector(paths.map((path) => parseJsonPath(path)!)).select(typeof text === 'string' ? Buffer.from(text) : text);

/** What a path reads, a list or object shown as `{ kind, size, value }`. */
function read(text: string, path: string): unknown {
  const selection = select(text, [path]);
  if (!selection.ok) throw new Error(selection.problem);
  return plain(selection.values[0]);
}

const plain = (value: unknown): unknown => (value instanceof JsonSlice ? { kind: value.kind, size: value.size, value: value.value() } : value);

/** The reference: JSON.parse of the whole text, then a name into an object's own member and an index into a list. */
function reference(root: unknown, segments: readonly PathSegment[]): unknown {
  let value = root;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      if (!Array.isArray(value)) return undefined;
      value = value[segment < 0 ? value.length + segment : segment];
    } else {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, segment)) return undefined;
      value = (value as Record<string, unknown>)[segment];
    }
  }
  return value;
}

const asSlice = (value: unknown): unknown =>
  value !== null && typeof value === 'object' ? { kind: Array.isArray(value) ? 'list' : 'object', size: Object.keys(value).length, value } : value;

const accepts = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/** A small seeded generator (mulberry32): the same cases every run, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['a', 'b', 'status', 'risk level', 'é', '', '__proto__', 'constructor', 'length', '0'];
const STRINGS = ['', 'ok', 'healthy', 'quote " and \\ backslash', 'tab\tnew\nline', 'é ü 日本 😀', '\u0000\u001f\u007f\u0085', 'x'.repeat(40)];
const NUMBERS = ['0', '-0', '12', '-12.5', '1e3', '1E-3', '2.5e+10', '1e400', '0.000001', '123456789012345678901234567890'];

/** A JSON text with a random tree, written by hand so it can carry what JSON.stringify never writes (repeated keys, escapes, odd spacing). */
function text(next: () => number, depth: number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const space = () => pick(['', '', ' ', '\n  ', '\t', '\r\n']);
  const string = (value: string) => {
    const json = JSON.stringify(value);
    // Sometimes escape a plain character as \uXXXX, which JSON.stringify never does.
    return next() < 0.2 ? json.replace(/[a-z]/, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : json;
  };
  const roll = next();
  if (depth <= 0 || roll < 0.35) return pick([() => string(pick(STRINGS)), () => pick(NUMBERS), () => pick(['true', 'false', 'null'])])();
  const size = Math.floor(next() * 5);
  if (roll < 0.65) return `[${space()}${Array.from({ length: size }, () => text(next, depth - 1)).join(`${space()},${space()}`)}${space()}]`;
  const members = Array.from({ length: size }, () => `${string(pick(KEYS))}${space()}:${space()}${text(next, depth - 1)}`);
  return `{${space()}${members.join(`${space()},${space()}`)}${space()}}`;
}

/** Every path into `value`, and some that miss. */
function pathsOf(value: unknown, prefix: PathSegment[] = [], into: PathSegment[][] = []): PathSegment[][] {
  into.push(prefix);
  if (Array.isArray(value)) {
    value.forEach((item, index) => pathsOf(item, [...prefix, index], into));
    into.push([...prefix, -1], [...prefix, value.length], [...prefix, -value.length - 1], [...prefix, 'length']);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) pathsOf((value as Record<string, unknown>)[key], [...prefix, key], into);
    into.push([...prefix, 'missing'], [...prefix, 0]);
  }
  return into;
}

describe('JsonSelector', () => {
  const body = JSON.stringify({ status: 'healthy', universe: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }], memory: { percent: 41.5 }, nothing: null });

  it.each([
    ['$.status', 'healthy'],
    ['$.universe[1].symbol', 'MSFT'],
    ['$.universe[-1].symbol', 'MSFT'],
    ['$.universe[-2].symbol', 'AAPL'],
    ['$.universe[-3].symbol', undefined],
    ['$.memory.percent', 41.5],
    ['$.nothing', null],
    ['$.missing.deeper', undefined],
    ['$.universe[5].symbol', undefined],
    ['$.status.length', undefined],
    ['$.universe.length', undefined],
    ['$.universe.constructor', undefined],
    ['$.memory[0]', undefined],
    ['$.universe', { kind: 'list', size: 2, value: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }] }],
    ['$.memory', { kind: 'object', size: 1, value: { percent: 41.5 } }],
  ])('%s reads %j', (path, value) => expect(read(body, path)).toEqual(value));

  it('reads every path of one answer in one pass, each value where its path ends', () => {
    const selection = select(body, ['$.universe[0].symbol', '$.universe', '$.universe[-1]', '$.status', '$.nope']);
    expect(selection.ok).toBe(true);
    expect((selection as { values: unknown[] }).values.map(plain)).toEqual([
      'AAPL',
      { kind: 'list', size: 2, value: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }] },
      { kind: 'object', size: 1, value: { symbol: 'MSFT' } },
      'healthy',
      undefined,
    ]);
  });

  it('lets the last of a repeated key win, as JSON.parse does, and counts it once', () => {
    expect(read('{"a":{"b":1},"a":2}', '$.a.b')).toBeUndefined();
    expect(read('{"a":1,"a":{"b":2}}', '$.a.b')).toBe(2);
    expect(read('{"a":[1,2,3],"a":[4]}', '$.a[-1]')).toBe(4);
    expect(read('{"a":1,"b":2,"a":3}', '$')).toEqual({ kind: 'object', size: 2, value: { a: 3, b: 2 } });
  });

  it('matches a key however it is written: escaped, or in any script', () => {
    expect(read('{"r\\u0069sk level":"low"}', "$['risk level']")).toBe('low');
    expect(read('{"\\u00e9":1}', "$['é']")).toBe(1);
    expect(read('{"é":2}', "$['é']")).toBe(2);
    expect(read('{"a\\"b":3}', `$['a\\"b']`)).toBe(3);
  });

  it('decodes strings and numbers as JSON.parse does', () => {
    for (const value of [...STRINGS, 'line\u2028sep']) expect(read(JSON.stringify({ v: value }), '$.v')).toBe(value);
    for (const number of NUMBERS) expect(read(`{"v":${number}}`, '$.v')).toBe(JSON.parse(number));
    expect(Object.is(read('{"v":-0}', '$.v'), -0)).toBe(true);
    // A non-ASCII character (ÿ, two bytes in UTF-8) reads as itself.
    expect(read('{"v":"aÿb"}', '$.v')).toBe('aÿb');
    // Bytes that are not UTF-8 (a lone 0xff, a truncated sequence) read as U+FFFD, as they do through Buffer#toString.
    for (const bad of [[0xff], [0xe2, 0x82]]) {
      const raw = Buffer.concat([Buffer.from('{"v":"a'), Buffer.from(bad), Buffer.from('b"}')]);
      expect(select(raw, ['$.v'])).toEqual({ ok: true, values: [JSON.parse(raw.toString('utf8')).v] });
      expect(select(raw, ['$.v'])).toEqual({ ok: true, values: ['a\ufffdb'] });
    }
  });

  it('names where an answer departs from JSON and what it found there', () => {
    expect(select('<html>Internal Server Error</html>', ['$.status'])).toEqual({ ok: false, problem: "expected a value at byte 0, found '<'" });
    expect(select('{"status":"ok"', ['$.status'])).toEqual({ ok: false, problem: "expected ',' or '}' at byte 14, found the end" });
    expect(select('{"status":"ok"} x', ['$.status'])).toEqual({ ok: false, problem: "expected the end of the answer at byte 16, found 'x'" });
    expect(select('{"a":"\u0001"}', ['$.a'])).toEqual({ ok: false, problem: 'expected the rest of a string at byte 6, found byte 0x01' });
    expect(select('', [])).toEqual({ ok: false, problem: 'expected a value at byte 0, found the end' });
  });

  it.each([
    '01',
    '1.',
    '.5',
    '+1',
    '-',
    '1e',
    '1e+',
    '--1',
    '[1,]',
    '{"a":1,}',
    '[,1]',
    "{'a':1}",
    '{a:1}',
    '{"a" 1}',
    '{"a":}',
    '{"a":1 "b":2}',
    '["\\x"]',
    '["\\u12G4"]',
    '["\\u12"]',
    '"abc',
    '"tab\there"',
    'NaN',
    'Infinity',
    'tru',
    'nul',
    'True',
    '\ufeff{}',
    '\u00a0{}',
    '\u000b{}',
    '[1]]',
    '{}}',
    '[}',
    '{]',
    '   ',
    '[[[[[[[[[[',
  ])('rejects %j, as JSON.parse does', (invalid) => {
    expect(accepts(invalid)).toBe(false);
    expect(select(invalid, ['$']).ok).toBe(false);
    expect(select(invalid, []).ok).toBe(false);
  });

  it('accepts what JSON.parse accepts of the odd corners of the grammar', () => {
    for (const valid of [' \t\r\n[ ]\n', '{ }', '"\\/\\b\\f\\n\\r\\t\\u0000\\uD83D\\uDE00"', '-0.0e-0', '[[],[[]],{}]', '{"":""}', 'null', '0']) {
      expect(accepts(valid)).toBe(true);
      expect(select(valid, ['$']).ok, valid).toBe(true);
    }
  });

  it('reads nesting far deeper than the call stack could follow', () => {
    const depth = 200_000;
    const deep = `{"a":${'['.repeat(depth)}7${']'.repeat(depth)},"b":1}`;
    expect(select(deep, ['$.b'])).toEqual({ ok: true, values: [1] });
    expect(select(`{"a":${'['.repeat(depth)}7${']'.repeat(depth - 1)},"b":1}`, ['$.b']).ok).toBe(false);
    expect(read(deep, '$.a[0][0][0]')).toEqual({ kind: 'list', size: 1, value: expect.any(Array) as unknown });
  });

  it('gives back the stack a deeply nested answer grew', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const deep = Buffer.from(`${'['.repeat(4_000_000)}${']'.repeat(4_000_000)}`);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    expect(new JsonSelector([['x']]).select(deep).ok).toBe(true);
    gc();
    // The stack grew to 4 MiB for this answer; kept, it would stay that size for the process's life.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1_000_000);
  });

  it('agrees with JSON.parse on random answers: what it accepts, and every path it reads', () => {
    const next = random(18);
    let paths = 0;
    for (let round = 0; round < 400; round++) {
      const source = text(next, 5);
      expect(accepts(source), source).toBe(true);
      const parsed = JSON.parse(source) as unknown;
      const all = pathsOf(parsed);
      const selection = new JsonSelector(all).select(Buffer.from(source));
      expect(selection.ok, source).toBe(true);
      const values = (selection as { values: unknown[] }).values;
      all.forEach((segments, index) => {
        expect(plain(values[index]), `${source} at ${JSON.stringify(segments)}`).toEqual(asSlice(reference(parsed, segments)));
      });
      paths += all.length;
    }
    expect(paths).toBeGreaterThan(4_000);
  });

  it('agrees with JSON.parse on which answers are JSON, over random damage to valid ones', () => {
    const next = random(1806);
    const bytes = [...'{}[]",:0123456789-+.eE \\/u\ttrufalsn\u0000x\u00e9'];
    let rejected = 0;
    for (let round = 0; round < 3_000; round++) {
      let source = text(next, 4);
      const edits = 1 + Math.floor(next() * 2);
      for (let edit = 0; edit < edits; edit++) {
        const at = Math.floor(next() * (source.length + 1));
        const byte = bytes[Math.floor(next() * bytes.length)]!;
        const kind = next();
        if (kind < 0.33) source = source.slice(0, at) + source.slice(at + 1);
        else if (kind < 0.66) source = source.slice(0, at) + byte + source.slice(at);
        else if (kind < 0.9) source = source.slice(0, at) + byte + source.slice(at + 1);
        else source = source.slice(0, at);
      }
      const expected = accepts(source);
      if (!expected) rejected++;
      expect(select(source, ['$.a', '$[0]']).ok, JSON.stringify(source)).toBe(expected);
    }
    // The damage must produce both outcomes for the comparison to mean anything.
    expect(rejected).toBeGreaterThan(1_000);
    expect(rejected).toBeLessThan(2_900);
  });
});

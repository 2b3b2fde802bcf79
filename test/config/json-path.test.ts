import { describe, expect, it } from 'vitest';
import { parseJsonPath, readJsonPath } from '../../config/json-path.js';

describe('parseJsonPath', () => {
  it.each([
    ['$', []],
    ['$.status', ['status']],
    ['$.database.connected', ['database', 'connected']],
    ['$.universe[0].symbol', ['universe', 0, 'symbol']],
    ['$.universe[-1]', ['universe', -1]],
    ["$['odd key'].x", ['odd key', 'x']],
    ['$["quoted"]', ['quoted']],
  ])('%s → %j', (text, segments) => expect(parseJsonPath(text)).toEqual(segments));

  it.each(['status', '$.', '$..x', '$[*]', '$.a[?(@.b)]', '$.a b', '$[x]'])('%j is rejected', (text) => expect(parseJsonPath(text)).toBeUndefined());
});

describe('readJsonPath', () => {
  const body = { status: 'healthy', universe: [{ symbol: 'AAPL' }, { symbol: 'MSFT' }], memory: { percent: 41.5 }, nothing: null };
  it.each([
    ['$.status', 'healthy'],
    ['$.universe[1].symbol', 'MSFT'],
    ['$.universe[-1].symbol', 'MSFT'],
    ['$.memory.percent', 41.5],
    ['$.nothing', null],
    ['$.missing.deeper', undefined],
    ['$.universe[5].symbol', undefined],
    ['$.status.length', undefined],
    ['$.universe.constructor', undefined],
  ])('%s reads %j', (path, value) => expect(readJsonPath(body, parseJsonPath(path)!)).toEqual(value));
});

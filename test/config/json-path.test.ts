import { describe, expect, it } from 'vitest';
import { parseJsonPath } from '../../config/json-path.js';

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

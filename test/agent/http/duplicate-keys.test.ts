/**
 * duplicateKeys: the keys a JSON text names twice in one object, where, and every value each was
 * given; nothing for JSON without them, however deep or odd; at most `limit` of them.
 */
import { describe, expect, it } from 'vitest';
import { duplicateKeys } from '../../../agent/http/duplicate-keys.js';

describe('duplicateKeys', () => {
  const CASES: { name: string; text: string; found: ReturnType<typeof duplicateKeys> }[] = [
    {
      name: 'a flag named twice in set',
      text: '{"set": {"ALPHASTACK_PROTECTION": false, "ALPHASTACK_PROTECTION": true}, "reason": "x"}',
      found: [{ path: ['set'], key: 'ALPHASTACK_PROTECTION', values: [false, true] }],
    },
    { name: 'a top-level key, three times', text: '{"a":1, "b":2, "a":[3], "a":{"c":4}}', found: [{ path: [], key: 'a', values: [1, [3], { c: 4 }] }] },
    {
      name: 'inside arrays, with the index in the path; inner objects first',
      text: '{"a":1,"b":[{"c":1,"c":{"d":[1,2]}},{"c":2}],"a":"x\\"y"}',
      found: [
        { path: ['b', 0], key: 'c', values: [1, { d: [1, 2] }] },
        { path: [], key: 'a', values: [1, 'x"y'] },
      ],
    },
    { name: 'a key written with an escape is the same key', text: '{"\\u0061":1,"a":2}', found: [{ path: [], key: 'a', values: [1, 2] }] },
    { name: 'keys with quotes, braces and commas in them', text: '{"a\\",}":1,"{[":2,"a\\",}":3}', found: [{ path: [], key: 'a",}', values: [1, 3] }] },
    { name: 'values that look like keys are not keys', text: '{"a":"a","b":["a","a"],"c":{"a":"b"}}', found: [] },
    { name: 'the same key in different objects', text: '{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":2}]}', found: [] },
    { name: 'whitespace everywhere', text: ' \n{ "a" :\t1 ,\r\n "a" : [ ] } ', found: [{ path: [], key: 'a', values: [1, []] }] },
    { name: 'a scalar', text: '"a"', found: [] },
    { name: 'a number', text: '-1.5e3', found: [] },
    { name: 'empty containers', text: '[{},[],{"a":{}}]', found: [] },
    { name: '__proto__ twice', text: '{"__proto__":1,"__proto__":2}', found: [{ path: [], key: '__proto__', values: [1, 2] }] },
  ];

  it.each(CASES)('$name', ({ text, found }) => {
    JSON.parse(text); // the scanner is given only text JSON.parse accepted
    expect(duplicateKeys(text)).toEqual(found);
  });

  it('walks 30,000 levels of nesting without recursion, and names the path of a duplicate at the bottom', () => {
    expect(duplicateKeys(`${'['.repeat(30_000)}${']'.repeat(30_000)}`)).toEqual([]);
    const deep = `${'{"k":'.repeat(10_000)}{"a":1,"a":2}${'}'.repeat(10_000)}`;
    const [found] = duplicateKeys(deep);
    expect(found!.path).toHaveLength(10_000);
    expect(found!.values).toEqual([1, 2]);
  });

  it('reports at most `limit` duplicates', () => {
    const text = `[${Array.from({ length: 100 }, (_, i) => `{"k${i}":1,"k${i}":2}`).join(',')}]`;
    expect(duplicateKeys(text)).toHaveLength(16);
    expect(duplicateKeys(text, 3).map((found) => found.path)).toEqual([[0], [1], [2]]);
  });
});

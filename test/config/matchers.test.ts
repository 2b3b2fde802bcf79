import { describe, expect, it } from 'vitest';
import { compileMatchers, formatMatcher, matcherProblem, matchesEmpty, parseMatcher, type LabelMatcher } from '../../config/matchers.js';

const m = (name: string, value: string, isRegex = false, isEqual = true): LabelMatcher => ({ name, value, isRegex, isEqual });

describe('label matchers', () => {
  it.each([
    ['rule=live-universe-failing', m('rule', 'live-universe-failing')],
    ['env!=green', m('env', 'green', false, false)],
    ['rule=~"live-.*"', m('rule', 'live-.*', true)],
    ['probe!~health|universe', m('probe', 'health|universe', true, false)],
    ['  team = "trading desk" ', m('team', 'trading desk')],
    ['severity=', m('severity', '')],
  ])('parses %s', (text, expected) => {
    expect(parseMatcher(text)).toEqual(expected);
  });

  it.each([
    ['rule', 'is not a matcher'],
    ['1rule=x', 'is not a matcher'],
    ['rule=~"(("', 'is not a valid regular expression'],
    ['rule=~"(?!live-).*"', 'could take time without bound to match'],
    ['probe=~"(a)\\\\1"', 'without back-references'],
    ['rule="unterminated', 'starts with a quote'],
    [`rule=~${'a'.repeat(300)}`, 'at most 256'],
  ])('refuses %s, saying why', (text, why) => {
    const parsed = parseMatcher(text);
    expect('error' in parsed && parsed.error).toContain(why);
  });

  it.each([
    [[m('rule', 'a')], { rule: 'a' }, true],
    [[m('rule', 'a')], { rule: 'ab' }, false],
    [[m('rule', 'a.*', true)], { rule: 'abc' }, true],
    // Anchored at both ends, as in Alertmanager.
    [[m('rule', 'b', true)], { rule: 'abc' }, false],
    [[m('env', 'green', false, false)], {}, true],
    [[m('probe', '.+', true), m('probe', 'health', false, false)], { probe: 'universe' }, true],
    [[m('probe', '.+', true), m('probe', 'health', false, false)], { probe: 'health' }, false],
    [[m('probe', '.+', true), m('probe', 'health', false, false)], {}, false],
    // A missing label is "": never a prototype's property.
    [[m('constructor', '.+', true)], {}, false],
  ])('%j over %j is %s', (matchers, labels, expected) => {
    expect(compileMatchers(matchers)(labels)).toBe(expected);
  });

  it('knows which matchers also match an alert without their label', () => {
    expect(matchesEmpty(m('env', 'green', false, false))).toBe(true);
    expect(matchesEmpty(m('rule', '.*', true))).toBe(true);
    expect(matchesEmpty(m('rule', 'x'))).toBe(false);
  });

  it('formats each kind back to text that parses to it', () => {
    for (const matcher of [m('rule', 'a b'), m('env', 'green', false, false), m('rule', 'live-.*', true), m('probe', 'x"y', true, false)]) {
      expect(parseMatcher(formatMatcher(matcher))).toEqual(matcher);
    }
  });

  it('checks label names', () => {
    expect(matcherProblem(m('bad-name', 'x'))).toContain('is not a label name');
  });
});

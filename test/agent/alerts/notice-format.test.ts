import { describe, expect, it } from 'vitest';
import { figureLines, firedFor, headline, humanDuration, labelLine, statusEmoji, title, truncate } from '../../../agent/alerts/notice-format.js';
import { firingNotice, resolvedNotice } from './fake-server.js';

describe('notice format', () => {
  it.each([
    [350, '350ms'],
    [1_000, '1s'],
    [42_000, '42s'],
    [60_000, '1m'],
    [725_000, '12m 5s'],
    [3_600_000, '1h'],
    [7_380_000, '2h 3m'],
    [90_000_000, '1d 1h'],
  ])('humanDuration(%i) is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it.each([
    [
      { facts: [{ fact: 'errorRatio', params: { window: '5m' }, operator: 'greaterThan', value: 0.1, observed: 0.4213, result: true }] },
      ['errorRatio(window=5m): 0.4213 (> 0.1)'],
    ],
    [{ facts: [{ fact: 'consecutiveFailures', operator: 'greaterThanInclusive', value: 11, observed: 12 }] }, ['consecutiveFailures: 12 (≥ 11)']],
    [{ facts: [{ fact: 'universeSize', operator: 'lessThan', value: 1, observed: 0 }] }, ['universeSize: 0 (< 1)']],
    [{ facts: [{ fact: 'status', operator: 'in', value: ['down'], observed: 'down' }] }, ['status: down (in ["down"])']],
    [{ memoryPercent: 93.456789, samples: 12, env: 'blue', skipped: undefined, none: null }, ['memoryPercent: 93.46', 'samples: 12', 'env: blue']],
    [{ window: { from: 1, to: 2 } }, ['window: {"from":1,"to":2}']],
    [{ facts: 'not a list' }, ['facts: not a list']],
  ])('figureLines(%j)', (figures, lines) => {
    expect(figureLines(figures)).toEqual(lines);
  });

  it('truncates to the limit without splitting a character', () => {
    expect(truncate('abcdef', 6)).toBe('abcdef');
    expect(truncate('abcdef', 4)).toBe('abc…');
    const cut = truncate('😀😀😀', 4);
    expect(cut).toBe('😀…');
    expect(cut.length).toBeLessThanOrEqual(4);
  });

  it('leads with status and severity', () => {
    expect(title(firingNotice())).toBe('🔴 FIRING: error-ratio-critical on blue');
    expect(headline(firingNotice({ severity: 'warning' }))).toBe('🟠 [FIRING · WARNING] error-ratio-critical on blue: error ratio 42% on blue (live) over 5m');
    expect(statusEmoji(resolvedNotice(firingNotice()))).toBe('✅');
    expect(firedFor(resolvedNotice(firingNotice()))).toBe('12m 30s');
    expect(firedFor(firingNotice())).toBeUndefined();
    expect(labelLine({ team: 'desk', service: 'alphastack' })).toBe('team=desk, service=alphastack');
  });
});

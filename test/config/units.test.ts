import { describe, expect, it } from 'vitest';
import { formatDuration, parseByteSize, parseDuration, parseTimestamp } from '../../config/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['30d', 2_592_000_000],
    [' 5s ', 5_000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['5x', '5', '', 's', '-5s', '5 s', '1w', '5S', '1m30s'])('%j is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
});

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [1_500, '1.5s'],
    [60_000, '1m'],
    [300_000, '5m'],
    [3_600_000, '1h'],
    [2_592_000_000, '30d'],
    [90_000, '90s'],
  ])('%d ms is %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('parseByteSize', () => {
  it.each([
    ['1MiB', 1_048_576],
    ['512KiB', 524_288],
    ['5MB', 5_000_000],
    ['2000', 2_000],
    ['100B', 100],
  ])('%s is %d bytes', (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(['1 TB', 'lots', '', '-1MiB'])('%j is not a size', (text) => expect(parseByteSize(text)).toBeUndefined());
});

describe('parseTimestamp', () => {
  it.each([
    ['2026-03-14T17:00:00Z', '2026-03-14T17:00:00.000Z'],
    ['2026-03-14T17:00Z', '2026-03-14T17:00:00.000Z'],
    ['2026-03-14T17:00:00.250Z', '2026-03-14T17:00:00.250Z'],
    ['2026-03-14T18:00:00+01:00', '2026-03-14T17:00:00.000Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('%s is %s', (text, iso) => expect(new Date(parseTimestamp(text)!).toISOString()).toBe(iso));

  // Regression: a silence or a window "until 2030-02-30" was taken, ending on March 2.
  it.each([
    '2030-02-30T00:00:00Z',
    '2027-02-29T00:00:00Z',
    '2030-04-31T12:00:00Z',
    '2030-13-01T00:00:00Z',
    '2030-00-10T00:00:00Z',
    '2030-01-01T24:00:00Z',
    '2030-01-01T10:60:00Z',
    '2030-01-01T10:00:60Z',
    '2030-01-01T10:00:00+24:00',
    '2030-01-01T10:00:00',
    '2030-01-01',
    'tomorrow',
    ' 2030-01-01T10:00:00Z',
  ])('%j is not a time', (text) => expect(parseTimestamp(text)).toBeUndefined());
});

import { describe, expect, it } from 'vitest';
import { formatDuration, parseByteSize, parseDuration } from '../../config/units.js';

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

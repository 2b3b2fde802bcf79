/**
 * Operators beyond json-rules-engine's stock ones (equal, notEqual, lessThan,
 * lessThanInclusive, greaterThan, greaterThanInclusive, in, notIn, contains, doesNotContain).
 * Durations in rules read as people write them: `aboveFor … longerThan 2m`.
 */
import { parseDuration } from '../config/units.js';

export const STOCK_OPERATORS = [
  'equal',
  'notEqual',
  'lessThan',
  'lessThanInclusive',
  'greaterThan',
  'greaterThanInclusive',
  'in',
  'notIn',
  'contains',
  'doesNotContain',
] as const;

/** Seconds in a rule value: a number of seconds, or a duration text such as 90s or 2m. */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    return ms === undefined ? undefined : ms / 1_000;
  }
  return undefined;
}

export interface CustomOperator {
  description: string;
  evaluate(fact: unknown, value: unknown): boolean;
  /** Checks the rule's value once, at compile time; returns what is wrong, or undefined. */
  checkValue(value: unknown): string | undefined;
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

export const CUSTOM_OPERATORS: Readonly<Record<string, CustomOperator>> = {
  longerThan: {
    description: 'A duration fact in seconds (aboveFor) is longer than a duration such as 2m.',
    evaluate: (fact, value) => isNumber(fact) && fact > durationSeconds(value)!,
    checkValue: (value) => (durationSeconds(value) === undefined ? `${JSON.stringify(value)} is not a duration such as 90s or 2m` : undefined),
  },
  shorterThan: {
    description: 'A duration fact in seconds is shorter than a duration such as 2m.',
    evaluate: (fact, value) => isNumber(fact) && fact < durationSeconds(value)!,
    checkValue: (value) => (durationSeconds(value) === undefined ? `${JSON.stringify(value)} is not a duration such as 90s or 2m` : undefined),
  },
  slowerThan: {
    description: 'A latency fact in seconds is above a duration such as 2s or 500ms.',
    evaluate: (fact, value) => isNumber(fact) && fact > durationSeconds(value)!,
    checkValue: (value) => (durationSeconds(value) === undefined ? `${JSON.stringify(value)} is not a duration such as 500ms or 2s` : undefined),
  },
  outside: {
    description: 'A number fact lies outside [low, high].',
    evaluate: (fact, value) => isNumber(fact) && Array.isArray(value) && (fact < (value[0] as number) || fact > (value[1] as number)),
    checkValue: (value) =>
      Array.isArray(value) && value.length === 2 && value.every(isNumber) ? undefined : `${JSON.stringify(value)} is not a [low, high] pair of numbers`,
  },
};

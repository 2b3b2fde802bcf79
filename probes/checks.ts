/**
 * Expectations compiled from the config into functions that return a CheckResult naming the
 * value they observed, so a failure explains itself: `$.status ("degraded") not in [healthy, ok]`.
 * An observed value is remote text: it is redacted (a target may echo the credentials it was
 * sent) before it is cut to length, so no part of a secret is ever quoted.
 */
import type { Redactor } from '../config/redactor.js';
import type { HeaderAssertionConfig, JsonAssertionConfig, StatusRange } from '../config/schema.js';
import { readJsonPath } from '../config/json-path.js';
import type { CheckResult } from './probe-result.js';

export type BodyCheck = (body: unknown) => CheckResult;
export type HeaderCheck = (headers: Record<string, string | string[] | undefined>) => CheckResult;

/**
 * An observed value as a check shows it. Lists and objects of any size are shown by their first
 * elements only: stringifying a whole 3 KB universe on every passing probe would be most of the
 * probe's CPU, to print 80 characters.
 */
function show(value: unknown, redactor: Redactor): string {
  if (value === undefined) return 'missing';
  if (Array.isArray(value) && value.length > 3)
    return `${escapeC1(
      redactor.excerpt(
        `[${value
          .slice(0, 3)
          .map((item) => JSON.stringify(item))
          .join(',')},...]`,
        60,
      ),
    )} (${value.length} items)`;
  return escapeC1(redactor.excerpt(JSON.stringify(value) ?? String(value), 80));
}
const list = (values: readonly unknown[]): string => `[${values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}]`;

/** JSON.stringify escapes C0 controls but not DEL and C1 (U+0080-U+009F, which terminals may obey): escape those too. */
function escapeC1(text: string): string {
  return text.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `200`, `2xx` ranges → a check on the status code. */
export function compileStatusCheck(ranges: readonly StatusRange[]): (status: number) => CheckResult {
  const expected = ranges
    .map(([low, high]) => (low === high ? String(low) : low % 100 === 0 && high === low + 99 ? `${low / 100}xx` : `${low}-${high}`))
    .join(', ');
  return remembered(
    (status: number) => status,
    (status) => {
      const ok = ranges.some(([low, high]) => status >= low && status <= high);
      return { ok, text: `status ${status} ${ok ? 'in' : 'not in'} [${expected}]` };
    },
  );
}

/** `maxLatency` → a check on a probe's duration (ms), shown in whole milliseconds. */
export function compileLatencyCheck(maxLatencyMs: number): (durationMs: number) => CheckResult {
  // Keyed on the shown milliseconds and the verdict together: 50.3 ms against 50 shows "50ms" but fails.
  return remembered(
    (durationMs: number) => Math.round(durationMs) * 2 + (durationMs <= maxLatencyMs ? 0 : 1),
    (key) => {
      const ok = key % 2 === 0;
      return { ok, text: `latency ${Math.floor(key / 2)}ms ${ok ? '<=' : '>'} ${maxLatencyMs}ms` };
    },
  );
}

/**
 * A check that reads `observe(input)` and judges it with `judge`, remembering its latest outcome
 * for a scalar value: a healthy target answers `"healthy"` and 200 probe after probe, and each
 * such check is then one shared, frozen result rather than a new text per probe (results live
 * as their series' latest for a whole interval, so each text was garbage for the old generation
 * to collect). Lists and objects are judged every time: they are new with every answer.
 */
function remembered<I, V>(observe: (input: I) => V, judge: (value: V) => CheckResult): (input: I) => CheckResult {
  let lastValue: V | undefined;
  let last: CheckResult | undefined;
  return (input) => {
    const value = observe(input);
    if (last !== undefined && value === lastValue) return last;
    const outcome = judge(value);
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
      lastValue = value;
      last = Object.freeze(outcome);
    }
    return outcome;
  };
}

/** Every operator on a JSON assertion becomes its own check; `redactor` hides secrets in the values it quotes. */
export function compileJsonChecks(assertion: JsonAssertionConfig, redactor: Redactor): BodyCheck[] {
  const { path } = assertion;
  const at = (body: unknown) => readJsonPath(body, path.segments);
  const checks: BodyCheck[] = [];
  const add = (test: (value: unknown) => boolean, pass: string, fail: string) =>
    checks.push(
      remembered(at, (value) => {
        const ok = test(value);
        return { ok, text: `${path.text} (${show(value, redactor)}) ${ok ? pass : fail}` };
      }),
    );

  if (assertion.equals !== undefined) add((v) => v === assertion.equals, `== ${show(assertion.equals, redactor)}`, `!= ${show(assertion.equals, redactor)}`);
  if (assertion.notEquals !== undefined)
    add((v) => v !== assertion.notEquals, `!= ${show(assertion.notEquals, redactor)}`, `== ${show(assertion.notEquals, redactor)}`);
  if (assertion.in !== undefined) {
    const allowed = assertion.in;
    add((v) => allowed.includes(v as never), `in ${list(allowed)}`, `not in ${list(allowed)}`);
  }
  if (assertion.exists !== undefined) {
    const want = assertion.exists;
    add((v) => (v !== undefined) === want, want ? 'exists' : 'is absent', want ? 'does not exist' : 'exists');
  }
  if (assertion.nonEmpty !== undefined) {
    const want = assertion.nonEmpty;
    add((v) => isNonEmpty(v) === want, want ? 'is non-empty' : 'is empty', want ? 'is empty' : 'is non-empty');
  }
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    const limit = assertion[op];
    if (limit !== undefined) add((v) => compare(op, asNumber(v), limit), `${SYMBOL[op]} ${limit}`, `not ${SYMBOL[op]} ${limit}`);
  }
  if (assertion.length !== undefined) {
    const spec = typeof assertion.length === 'number' ? { equals: assertion.length } : assertion.length;
    checks.push((body) => {
      const value = at(body);
      const length = lengthOf(value);
      const failed = Object.entries(spec).find(([op, limit]) => limit !== undefined && !compare(op as ComparisonOp, length, limit));
      const wanted = Object.entries(spec)
        .filter(([, l]) => l !== undefined)
        .map(([op, l]) => `${SYMBOL[op as ComparisonOp]} ${l}`)
        .join(' and ');
      return { ok: !failed, text: `length of ${path.text} (${length ?? 'not a list or string'}) ${failed ? 'not ' : ''}${wanted}` };
    });
  }
  if (assertion.matches !== undefined) {
    const pattern = new RegExp(assertion.matches);
    add((v) => typeof v === 'string' && pattern.test(v), `matches /${assertion.matches}/`, `does not match /${assertion.matches}/`);
  }
  return checks;
}

export function compileHeaderChecks(assertion: HeaderAssertionConfig, redactor: Redactor): HeaderCheck[] {
  const checks: HeaderCheck[] = [];
  const read = (headers: Record<string, string | string[] | undefined>) => {
    const value = headers[assertion.name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const add = (test: (value: string | undefined) => boolean, pass: string, fail: string) =>
    checks.push(
      remembered(read, (value) => {
        const ok = test(value);
        return { ok, text: `header ${assertion.name} (${show(value, redactor)}) ${ok ? pass : fail}` };
      }),
    );
  if (assertion.exists !== undefined) {
    const want = assertion.exists;
    add((v) => (v !== undefined) === want, want ? 'exists' : 'is absent', want ? 'does not exist' : 'exists');
  }
  if (assertion.equals !== undefined) add((v) => v === assertion.equals, `== ${show(assertion.equals, redactor)}`, `!= ${show(assertion.equals, redactor)}`);
  if (assertion.matches !== undefined) {
    const pattern = new RegExp(assertion.matches);
    add((v) => v !== undefined && pattern.test(v), `matches /${assertion.matches}/`, `does not match /${assertion.matches}/`);
  }
  return checks;
}

type ComparisonOp = 'equals' | 'gt' | 'gte' | 'lt' | 'lte';
const SYMBOL: Record<ComparisonOp, string> = { equals: '==', gt: '>', gte: '>=', lt: '<', lte: '<=' };

function compare(op: ComparisonOp, value: number | undefined, limit: number): boolean {
  if (value === undefined) return false;
  switch (op) {
    case 'equals':
      return value === limit;
    case 'gt':
      return value > limit;
    case 'gte':
      return value >= limit;
    case 'lt':
      return value < limit;
    case 'lte':
      return value <= limit;
  }
}

/** A number, or a string that is one (`"41.5"`); undefined otherwise. */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

function lengthOf(value: unknown): number | undefined {
  if (Array.isArray(value) || typeof value === 'string') return value.length;
  if (value !== null && typeof value === 'object') return Object.keys(value).length;
  return undefined;
}

function isNonEmpty(value: unknown): boolean {
  const length = lengthOf(value);
  return length === undefined ? value !== undefined && value !== null : length > 0;
}

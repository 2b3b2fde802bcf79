/**
 * Expectations compiled from the config into functions that return a CheckResult naming the
 * value they observed, so a failure explains itself: `$.status ("degraded") not in [healthy, ok]`.
 * An observed value is remote text: it is redacted (a target may echo the credentials it was
 * sent) before it is cut to length, so no part of a secret is ever quoted.
 */
import type { Redactor } from '../config/redactor.js';
import type { HeaderAssertionConfig, JsonAssertionConfig, StatusRange } from '../config/schema.js';
import { flatString } from '../config/flat-string.js';
import { userRegex } from '../config/user-regex.js';
import type { CheckResult } from './probe-result.js';
import { JsonSlice } from './json-select.js';

/**
 * A check on the value a probe's answer holds at the check's path, as `JsonSelector` reads it: a
 * string, number, boolean or null, a `JsonSlice` for a list or object, undefined when missing.
 */
export type BodyCheck = (value: unknown) => CheckResult;
export type HeaderCheck = (headers: Record<string, string | string[] | undefined>) => CheckResult;

/**
 * An observed value as a check shows it. Lists and objects of any size are shown by their first
 * elements only: stringifying a whole 3 KB universe on every passing probe would be most of the
 * probe's CPU, to print 80 characters. A check that passes shows a non-empty list or object by its
 * size alone (`12 items`, `3 keys`): its elements are new with every answer (prices, timestamps),
 * so quoting them made a new text per probe, which then lived an interval in its series' latest
 * result (issue 18: a fifth of what a probe allocated); a failure still quotes them.
 */
function show(value: unknown, redactor: Redactor, passed = false): string {
  if (value === undefined) return 'missing';
  if (value instanceof JsonSlice) {
    const size = plural(value.size, value.kind === 'list' ? 'item' : 'key');
    if (passed && value.size > 0) return size;
    // A large one is quoted from its text, never parsed and written out again: an answer of
    // 900 KB of nested lists took the agent's turn for a second and then overflowed the stack.
    if (value.bytes > MAX_PARSED_QUOTE) return `${escapeC1(redactor.excerpt(value.text(4 * 60), 60))} (${size})`;
    // Parsed only here: a check on a list or object that fails quotes its first elements.
    const content = value.value();
    if (Array.isArray(content) && content.length > 3)
      return `${escapeC1(
        redactor.excerpt(
          `[${content
            .slice(0, 3)
            .map((item) => JSON.stringify(item))
            .join(',')},...]`,
          60,
        ),
      )} (${plural(content.length, 'item')})`;
    value = content;
  }
  return escapeC1(redactor.excerpt(JSON.stringify(value) ?? String(value), 80));
}
/** The largest list or object a failing check parses to quote its first elements. */
const MAX_PARSED_QUOTE = 4_096;
const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
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
    (status) => ranges.some(([low, high]) => status >= low && status <= high),
    (status, ok) => `status ${status} ${ok ? 'in' : 'not in'} [${expected}]`,
  );
}

/** `maxLatency` → a check on a probe's duration (ms), shown in whole milliseconds. */
export function compileLatencyCheck(maxLatencyMs: number): (durationMs: number) => CheckResult {
  // Keyed on the shown milliseconds and the verdict together: 50.3 ms against 50 shows "50ms" but fails.
  return remembered(
    (durationMs: number) => Math.round(durationMs) * 2 + (durationMs <= maxLatencyMs ? 0 : 1),
    (key) => key % 2 === 0,
    (key, ok) => `latency ${Math.floor(key / 2)}ms ${ok ? '<=' : '>'} ${maxLatencyMs}ms`,
  );
}

/**
 * A check that reads `observe(input)`, judges it with `test` and words the outcome with
 * `describe`, remembering its latest outcome: a healthy target answers `"healthy"` and 200 probe
 * after probe, and each such check is then one shared, frozen result rather than a new text per
 * probe (a series keeps its latest outcomes for a whole interval, probes/latest-result.ts, so each
 * text was garbage for the old generation to collect). A scalar is remembered by its value; a list or object that
 * passes by its kind and size, all its text shows (see `show`); one that fails is worded anew.
 */
function remembered<I, V>(observe: (input: I) => V, test: (value: V) => boolean, describe: (value: V, ok: boolean) => string): (input: I) => CheckResult {
  let lastKind: Kind | undefined;
  let lastKey: unknown;
  let last: CheckResult | undefined;
  return (input) => {
    const value = observe(input);
    let kind: Kind = 'scalar';
    let key: unknown = value;
    if (value instanceof JsonSlice) {
      // Judged before it is remembered: the outcome of a list is not a function of its size.
      if (!test(value)) return { ok: false, text: describe(value, false) };
      kind = value.kind;
      key = value.size;
    }
    if (last !== undefined && kind === lastKind && key === lastKey) return last;
    const ok = kind === 'scalar' ? test(value) : true;
    last = Object.freeze({ ok, text: flatString(describe(value, ok)) });
    lastKind = kind;
    lastKey = key;
    return last;
  };
}

type Kind = 'scalar' | 'list' | 'object';

const itself = <V>(value: V): V => value;

/**
 * Every operator on a JSON assertion becomes its own check of the value at the assertion's path
 * (the probe reads it: `JsonReading` in http-probe.ts); `redactor` hides secrets in the values it quotes.
 */
export function compileJsonChecks(assertion: JsonAssertionConfig, redactor: Redactor): BodyCheck[] {
  const { path } = assertion;
  const checks: BodyCheck[] = [];
  // The words of each outcome live as long as the check: kept flat (config/flat-string.ts).
  const add = (test: (value: unknown) => boolean, pass: string, fail: string) => {
    const [passed, failed] = [flatString(pass), flatString(fail)];
    checks.push(remembered(itself, test, (value, ok) => `${path.text} (${show(value, redactor, ok)}) ${ok ? passed : failed}`));
  };

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
  if (assertion.is !== undefined) {
    const want = assertion.is;
    add((v) => kindOf(v) === want, `is a ${want}`, `is not a ${want}`);
  }
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    const limit = assertion[op];
    if (limit !== undefined) add((v) => compare(op, asNumber(v), limit), `${SYMBOL[op]} ${limit}`, `not ${SYMBOL[op]} ${limit}`);
  }
  if (assertion.length !== undefined) {
    const spec = typeof assertion.length === 'number' ? { equals: assertion.length } : assertion.length;
    const limits = Object.entries(spec).filter((entry): entry is [ComparisonOp, number] => entry[1] !== undefined);
    const wanted = limits.map(([op, limit]) => `${SYMBOL[op]} ${limit}`).join(' and ');
    checks.push(
      remembered(
        lengthOf,
        (length) => limits.every(([op, limit]) => compare(op, length, limit)),
        (length, ok) => `length of ${path.text} (${length ?? 'not a list or string'}) ${ok ? '' : 'not '}${wanted}`,
      ),
    );
  }
  if (assertion.matches !== undefined) {
    const pattern = userRegex(assertion.matches);
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
  const add = (test: (value: string | undefined) => boolean, pass: string, fail: string) => {
    const [passed, failed] = [flatString(pass), flatString(fail)];
    checks.push(remembered(read, test, (value, ok) => `header ${assertion.name} (${show(value, redactor, ok)}) ${ok ? passed : failed}`));
  };
  if (assertion.exists !== undefined) {
    const want = assertion.exists;
    add((v) => (v !== undefined) === want, want ? 'exists' : 'is absent', want ? 'does not exist' : 'exists');
  }
  if (assertion.equals !== undefined) add((v) => v === assertion.equals, `== ${show(assertion.equals, redactor)}`, `!= ${show(assertion.equals, redactor)}`);
  if (assertion.matches !== undefined) {
    const pattern = userRegex(assertion.matches);
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

/**
 * A number, or a string that is one written as JSON writes numbers (`"41.5"`, `"-3"`, `"1e3"`,
 * spaces around it aside); undefined otherwise. JavaScript's Number() also reads `"0x5F"` (95),
 * `"0b1011111"` and `"0o137"`: a hex id or a bug is no memory percentage for a rollback rule.
 */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && JSON_NUMBER.test(value.trim())) {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function lengthOf(value: unknown): number | undefined {
  if (typeof value === 'string') return value.length;
  if (value instanceof JsonSlice) return value.size;
  return undefined;
}

/** The kind of a JSON value, as `is` names it; `missing` when there is none. */
function kindOf(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (value instanceof JsonSlice) return value.kind;
  if (Array.isArray(value)) return 'list';
  return typeof value;
}

function isNonEmpty(value: unknown): boolean {
  const length = lengthOf(value);
  return length === undefined ? value !== undefined && value !== null : length > 0;
}

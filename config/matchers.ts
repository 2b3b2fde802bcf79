/**
 * Label matchers, as Alertmanager has them: `{name, value, isRegex, isEqual}` (the silences API's
 * shape) or the text form `name=value`, `name!=value`, `name=~regex`, `name!~regex` (amtool's,
 * used in the config and on the command line). A label an alert does not carry matches as the
 * empty string. A regular expression is anchored at both ends (`=~"live-.*"` is the whole value).
 */
import { regexProblem, userRegex } from './user-regex.js';

/** One matcher over an alert's labels. */
export interface LabelMatcher {
  name: string;
  value: string;
  /** `value` is a regular expression (anchored), not a literal. */
  isRegex: boolean;
  /** true: the label must match; false: it must not. */
  isEqual: boolean;
}

/** Label names as Prometheus and Alertmanager take them. */
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A regular expression longer than this is refused: every alert is matched against it, on the event loop. */
export const MAX_MATCHER_PATTERN = 256;

/** What is wrong with a matcher, or undefined when it is usable. */
export function matcherProblem(matcher: LabelMatcher): string | undefined {
  if (!LABEL_NAME.test(matcher.name))
    return `${JSON.stringify(matcher.name.slice(0, 60))} is not a label name (letters, digits and _, not starting with a digit)`;
  if (!matcher.isRegex) return undefined;
  if (matcher.value.length > MAX_MATCHER_PATTERN)
    return `the regular expression of ${matcher.name} is ${matcher.value.length} characters long; at most ${MAX_MATCHER_PATTERN}`;
  const problem = regexProblem(`^(?:${matcher.value})$`);
  return problem && `the regular expression ${JSON.stringify(matcher.value.slice(0, 60))} of ${matcher.name} ${problem}`;
}

/** `severity="critical"`, `probe!~"health|universe"`: the text form, quoted. */
export function formatMatcher(matcher: LabelMatcher): string {
  const operator = matcher.isRegex ? (matcher.isEqual ? '=~' : '!~') : matcher.isEqual ? '=' : '!=';
  return `${matcher.name}${operator}${JSON.stringify(matcher.value)}`;
}

/**
 * `name=value`, `name!=value`, `name=~regex`, `name!~regex`; the value may be a JSON string
 * (`rule="live-universe-failing"`). A matcher or the reason it is not one.
 */
export function parseMatcher(text: string): LabelMatcher | { error: string } {
  const match = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/s.exec(text);
  if (!match) return { error: `${JSON.stringify(text.slice(0, 80))} is not a matcher such as rule=live-universe-failing, env!=green or rule=~"live-.*"` };
  const [, name, operator, raw] = match as unknown as [string, string, string, string];
  let value = raw;
  if (raw.startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'string') throw new Error('not a string');
      value = parsed;
    } catch {
      return { error: `the value of ${JSON.stringify(text.slice(0, 80))} starts with a quote but is not one quoted string` };
    }
  }
  const matcher: LabelMatcher = { name, value, isRegex: operator === '=~' || operator === '!~', isEqual: operator === '=' || operator === '=~' };
  const problem = matcherProblem(matcher);
  return problem ? { error: problem } : matcher;
}

/** A matcher as a test over label sets. */
export type LabelTest = (labels: Readonly<Record<string, string>>) => boolean;

/** Compile matchers (already checked with matcherProblem) into one test: all of them must hold. */
export function compileMatchers(matchers: readonly LabelMatcher[]): LabelTest {
  const tests = matchers.map(compileMatcher);
  return (labels) => tests.every((test) => test(labels));
}

function compileMatcher(matcher: LabelMatcher): LabelTest {
  const { name, value, isEqual } = matcher;
  if (!matcher.isRegex) return (labels) => (own(labels, name) === value) === isEqual;
  const pattern = userRegex(`^(?:${value})$`);
  return (labels) => pattern.test(own(labels, name)) === isEqual;
}

/** Whether the matcher holds for a label set without its label: such a matcher alone would select everything. */
export function matchesEmpty(matcher: LabelMatcher): boolean {
  return compileMatcher(matcher)({});
}

/** A label's value, '' when absent; never a prototype's property (`constructor`). */
function own(labels: Readonly<Record<string, string>>, name: string): string {
  return Object.hasOwn(labels, name) ? (labels[name] ?? '') : '';
}

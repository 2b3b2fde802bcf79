/**
 * Regular expressions written by an operator: a probe check's `matches`, a label matcher of a
 * silence, an inhibition or an escalation policy. They run on the event loop against what others
 * send (a target's body and headers, alert labels), so one that backtracks without bound would
 * stop probing for as long as it runs: `(a+)+$` against forty `a`s and a `b` takes minutes in
 * V8's usual engine.
 *
 * Two V8 settings bound that, set once the first time a pattern is checked or compiled:
 * - `--enable-experimental-regexp-engine`: the `l` flag, a pattern compiled for V8's linear-time
 *   engine. It refuses what that engine cannot run (back-references, look-arounds, repeat counts
 *   in the hundreds, nested), which is also what RE2 refuses in Prometheus, Alertmanager and
 *   blackbox_exporter. Only used here to ask whether a pattern is of that kind.
 * - `--enable-experimental-regexp-engine-on-excessive-backtracks`: a match that backtracks more
 *   than 50,000 times is finished by the linear-time engine, with the same answer. Patterns run on
 *   the usual engine, which is 30–40 times faster on ordinary input (about 40 ns, not 1.5 µs, for
 *   a label), and only a pathological match pays.
 * So a pattern is accepted only if the linear engine can run it, and compiled without flags: the
 * fallback does not apply to `i` or `u` patterns.
 */
import { setFlagsFromString } from 'node:v8';

let enabled = false;

function enableLinearEngine(): void {
  if (enabled) return;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  enabled = true;
}

/** What is wrong with a pattern an operator wrote, or undefined when it is usable. */
export function regexProblem(source: string): string | undefined {
  enableLinearEngine();
  try {
    new RegExp(source);
  } catch (error) {
    return `is not a valid regular expression: ${(error as Error).message}`;
  }
  try {
    // eslint-disable-next-line no-invalid-regexp -- `l` is V8's linear-engine flag, enabled above.
    new RegExp(source, 'l');
    return undefined;
  } catch {
    return (
      'could take time without bound to match, so greenlight does not run it: write it without back-references (\\1), ' +
      'look-arounds ((?=, (?!, (?<=, (?<!) and repeat counts in the hundreds, as Prometheus and Alertmanager require'
    );
  }
}

/** Compile a pattern that regexProblem accepted. */
export function userRegex(source: string): RegExp {
  enableLinearEngine();
  return new RegExp(source);
}

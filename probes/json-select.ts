/**
 * Reads a JSON answer for the few paths a probe's checks and extractions name, without building
 * the rest of it. `JSON.parse` of the whole answer made every element of a 3 KB universe an object
 * for a check that asks only whether the list is non-empty: at 10,000 series it was a tenth of the
 * agent's busy time and a fifth of what a probe allocated (issue 18).
 *
 * Invariants:
 * - The answer is accepted exactly when `JSON.parse(bytes.toString('utf8'))` accepts it: the
 *   whole text is checked against JSON's grammar, not only the parts on a path.
 * - A path reads the value a walk down `JSON.parse`'s result would (a name into an object's own
 *   member, an index into a list's element, a negative one from the end), with one difference:
 *   a list or object is a `JsonSlice` (its kind and size; its content parsed only when asked).
 *   A repeated key counts once and its last value wins, as in `JSON.parse`.
 * - The work outside the paths builds nothing of the answer: it walks the bytes; nesting is
 *   counted in one list of closers a scan, not by recursion, so no answer can exhaust the call
 *   stack. (An object at a path's end makes its keys strings, to count the distinct ones; a
 *   refused answer makes its error.)
 */
import type { PathSegment } from '../config/json-path.js';

/** A list or object found at a path: its kind and size, and its content parsed on demand (a failure quoting it). */
export class JsonSlice {
  readonly #bytes: Buffer;
  readonly #start: number;
  readonly #end: number;

  constructor(
    readonly kind: 'list' | 'object',
    /** A list's length; an object's count of distinct keys. */
    readonly size: number,
    bytes: Buffer,
    start: number,
    end: number,
  ) {
    this.#bytes = bytes;
    this.#start = start;
    this.#end = end;
  }

  /** The list or object itself, as `JSON.parse` builds it. */
  value(): unknown {
    return JSON.parse(this.#bytes.toString('utf8', this.#start, this.#end));
  }

  /** How many bytes of the answer it spans. */
  get bytes(): number {
    return this.#end - this.#start;
  }

  /** Its text as the answer has it, at most `max` bytes of it (a cut may end mid-character). */
  text(max: number): string {
    return this.#bytes.toString('utf8', this.#start, Math.min(this.#end, this.#start + max));
  }
}

/** What an answer holds at each path: `values[i]` for `paths[i]`, undefined where a step is missing. */
export type JsonSelection = { ok: true; values: unknown[] } | { ok: false; problem: string };

/** One step of the paths' tree: the paths that end here, and the steps below by name and by index. */
interface Step {
  /** Where in a selection's values the paths that end here go. */
  readonly ends: number[];
  readonly names: { readonly name: string; readonly step: Step }[];
  /** A negative index counts from the end: it is reached once the list's length is known. */
  readonly indices: { readonly index: number; readonly step: Step }[];
  fromEnd: boolean;
}

const newStep = (): Step => ({ ends: [], names: [], indices: [], fromEnd: false });

/**
 * The paths of one probe, compiled once into a tree that a scan of each answer follows. It holds
 * no state of its own between answers: one serves every probe that reads the same paths
 * (`ProbeCompiler` shares them among the targets it compiles).
 */
export class JsonSelector {
  readonly #root = newStep();
  readonly #count: number;

  constructor(paths: readonly (readonly PathSegment[])[]) {
    this.#count = paths.length;
    paths.forEach((segments, index) => {
      let step = this.#root;
      for (const segment of segments) {
        if (typeof segment === 'number') {
          let entry = step.indices.find((candidate) => candidate.index === segment);
          if (entry === undefined) step.indices.push((entry = { index: segment, step: newStep() }));
          if (segment < 0) step.fromEnd = true;
          step = entry.step;
        } else {
          let entry = step.names.find((candidate) => candidate.name === segment);
          if (entry === undefined) step.names.push((entry = { name: segment, step: newStep() }));
          step = entry.step;
        }
      }
      step.ends.push(index);
    });
  }

  /** The values at the paths, or the answer's first departure from JSON's grammar. */
  select(bytes: Buffer): JsonSelection {
    const values: unknown[] = new Array(this.#count).fill(undefined);
    try {
      const scan = new Scan(bytes, values);
      const end = scan.whitespace(scan.value(scan.whitespace(0), this.#root));
      if (end < bytes.length) scan.fail(end, 'the end of the answer');
      return { ok: true, values };
    } catch (error) {
      if (error instanceof JsonProblem) return { ok: false, problem: error.message };
      throw error;
    }
  }
}

class JsonProblem extends Error {}

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const OPEN_LIST = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_LIST = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
/** After a backslash in a string: `"` `/` `\` `b` `f` `n` `r` `t` (`u` is handled apart). */
const ESCAPES = new Set([0x22, 0x2f, 0x5c, 0x62, 0x66, 0x6e, 0x72, 0x74]);

class Scan {
  /** The closers of the containers `skip` is inside, deepest last: made at the first nesting, garbage with the scan. */
  #closers: number[] | undefined;

  constructor(
    readonly bytes: Buffer,
    readonly values: unknown[],
  ) {}

  fail(at: number, expected: string): never {
    const found = at >= this.bytes.length ? 'the end' : describeByte(this.bytes[at]!);
    throw new JsonProblem(`expected ${expected} at byte ${at}, found ${found}`);
  }

  whitespace(at: number): number {
    const bytes = this.bytes;
    for (;;) {
      const byte = bytes[at];
      if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return at;
      at++;
    }
  }

  /** The value starting at `at` (no whitespace before it), recorded where `step` has paths; returns the offset after it. */
  value(at: number, step: Step | undefined): number {
    if (step === undefined) return this.skip(at);
    const byte = this.bytes[at];
    if (byte === OPEN_OBJECT) return this.object(at, step);
    if (byte === OPEN_LIST) return this.list(at, step);
    const end = this.scalar(at);
    if (step.ends.length > 0) this.record(step, this.decode(at, end));
    return end;
  }

  record(step: Step, value: unknown): void {
    for (const index of step.ends) this.values[index] = value;
  }

  /** A key seen again: what its earlier value set below `step` is forgotten (the last value wins). */
  forget(step: Step): void {
    for (const index of step.ends) this.values[index] = undefined;
    for (const { step: next } of step.names) this.forget(next);
    for (const { step: next } of step.indices) this.forget(next);
  }

  object(start: number, step: Step): number {
    const bytes = this.bytes;
    // An object at the end of a path counts its distinct keys; only then are keys made strings.
    const keys = step.ends.length > 0 ? new Set<string>() : undefined;
    let at = this.whitespace(start + 1);
    if (bytes[at] === CLOSE_OBJECT) at++;
    else
      for (;;) {
        if (bytes[at] !== QUOTE) this.fail(at, 'a key');
        const keyEnd = this.string(at);
        if (keys !== undefined) keys.add(this.key(at, keyEnd));
        const next = this.match(step, at, keyEnd);
        at = this.whitespace(keyEnd);
        if (bytes[at] !== COLON) this.fail(at, "':'");
        at = this.whitespace(at + 1);
        if (next !== undefined) this.forget(next);
        at = this.whitespace(this.value(at, next));
        if (bytes[at] === COMMA) {
          at = this.whitespace(at + 1);
          continue;
        }
        if (bytes[at] !== CLOSE_OBJECT) this.fail(at, "',' or '}'");
        at++;
        break;
      }
    if (keys !== undefined) this.record(step, new JsonSlice('object', keys.size, bytes, start, at));
    return at;
  }

  list(start: number, step: Step): number {
    const bytes = this.bytes;
    const starts: number[] | undefined = step.fromEnd ? [] : undefined;
    let length = 0;
    let at = this.whitespace(start + 1);
    if (bytes[at] === CLOSE_LIST) at++;
    else
      for (;;) {
        starts?.push(at);
        at = this.whitespace(this.value(at, elementStep(step, length)));
        length++;
        if (bytes[at] === COMMA) {
          at = this.whitespace(at + 1);
          continue;
        }
        if (bytes[at] !== CLOSE_LIST) this.fail(at, "',' or ']'");
        at++;
        break;
      }
    if (starts !== undefined)
      for (const { index, step: next } of step.indices) {
        if (index < 0 && length + index >= 0) this.value(starts[length + index]!, next);
      }
    if (step.ends.length > 0) this.record(step, new JsonSlice('list', length, bytes, start, at));
    return at;
  }

  /** The step below `step` for the key between `start` and `end` (its quotes included), if a path goes there. */
  match(step: Step, start: number, end: number): Step | undefined {
    if (step.names.length === 0) return undefined;
    const bytes = this.bytes;
    if (!this.plain(start, end)) {
      const key = this.key(start, end);
      return step.names.find((candidate) => candidate.name === key)?.step;
    }
    // Every byte of the key is ASCII here, so it is one UTF-16 unit of the name it spells.
    const length = end - start - 2;
    outer: for (const candidate of step.names) {
      const name = candidate.name;
      if (name.length !== length) continue;
      for (let i = 0; i < length; i++) if (name.charCodeAt(i) !== bytes[start + 1 + i]) continue outer;
      return candidate.step;
    }
    return undefined;
  }

  /** Whether the string between `start` and `end` (its quotes included) is ASCII without escapes: its bytes are its characters. */
  plain(start: number, end: number): boolean {
    const bytes = this.bytes;
    for (let at = start + 1; at < end - 1; at++) {
      const byte = bytes[at]!;
      if (byte === BACKSLASH || byte >= 0x80) return false;
    }
    return true;
  }

  key(start: number, end: number): string {
    return this.decode(start, end) as string;
  }

  /** A scalar between `start` and `end`, already checked against the grammar. */
  decode(start: number, end: number): unknown {
    const bytes = this.bytes;
    const first = bytes[start];
    if (first === QUOTE) return this.plain(start, end) ? bytes.toString('latin1', start + 1, end - 1) : JSON.parse(bytes.toString('utf8', start, end));
    if (first === 0x74) return true;
    if (first === 0x66) return false;
    if (first === 0x6e) return null;
    return Number(bytes.toString('latin1', start, end));
  }

  /** A string, number, true, false or null at `at`; returns the offset after it. */
  scalar(at: number): number {
    const byte = this.bytes[at];
    if (byte === QUOTE) return this.string(at);
    if (byte === MINUS || (byte !== undefined && byte >= ZERO && byte <= NINE)) return this.number(at);
    if (byte === 0x74) return this.literal(at, TRUE);
    if (byte === 0x66) return this.literal(at, FALSE);
    if (byte === 0x6e) return this.literal(at, NULL);
    return this.fail(at, 'a value');
  }

  literal(at: number, word: Buffer): number {
    for (let i = 0; i < word.length; i++) if (this.bytes[at + i] !== word[i]) this.fail(at + i, `'${word.toString('latin1')}'`);
    return at + word.length;
  }

  string(start: number): number {
    const bytes = this.bytes;
    const length = bytes.length;
    let at = start + 1;
    while (at < length) {
      const byte = bytes[at]!;
      // Most bytes of a string are none of the three that need a look (a quote, a backslash, a
      // control). Tested from the top: letters, above the backslash, take one comparison.
      if (byte > BACKSLASH || (byte > QUOTE && byte !== BACKSLASH) || byte === 0x20 || byte === 0x21) {
        at++;
        continue;
      }
      if (byte === QUOTE) return at + 1;
      if (byte < 0x20) this.fail(at, 'the rest of a string');
      const escaped = bytes[at + 1];
      if (escaped === 0x75) {
        for (let i = 2; i < 6; i++) if (!isHex(bytes[at + i])) this.fail(at + i, 'a hex digit');
        at += 6;
      } else if (escaped !== undefined && ESCAPES.has(escaped)) at += 2;
      else this.fail(at + 1, 'an escape');
    }
    return this.fail(at, 'the rest of a string');
  }

  number(start: number): number {
    const bytes = this.bytes;
    let at = start;
    if (bytes[at] === MINUS) at++;
    if (bytes[at] === ZERO) at++;
    else if (isDigit(bytes[at])) while (isDigit(bytes[at])) at++;
    else this.fail(at, 'a digit');
    if (bytes[at] === DOT) {
      at++;
      if (!isDigit(bytes[at])) this.fail(at, 'a digit');
      while (isDigit(bytes[at])) at++;
    }
    if (bytes[at] === 0x65 || bytes[at] === 0x45) {
      at++;
      if (bytes[at] === 0x2b || bytes[at] === MINUS) at++;
      if (!isDigit(bytes[at])) this.fail(at, 'a digit');
      while (isDigit(bytes[at])) at++;
    }
    return at;
  }

  /** Any value at `at`, checked and passed over; nesting kept in `#closers`, not on the call stack. */
  skip(at: number): number {
    const bytes = this.bytes;
    const closers = (this.#closers ??= []);
    const outer = closers.length;
    for (;;) {
      // A value starts here.
      const byte = bytes[at];
      if (byte === OPEN_OBJECT || byte === OPEN_LIST) {
        const closer = byte === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_LIST;
        at = this.whitespace(at + 1);
        if (bytes[at] === closer) at++;
        else {
          closers.push(closer);
          if (closer === CLOSE_OBJECT) at = this.member(at);
          continue;
        }
      } else at = this.scalar(at);
      // After a value: the next member or element, or the end of containers.
      for (;;) {
        if (closers.length === outer) return at;
        at = this.whitespace(at);
        const closer = closers[closers.length - 1]!;
        if (bytes[at] === COMMA) {
          at = this.whitespace(at + 1);
          if (closer === CLOSE_OBJECT) at = this.member(at);
          break;
        }
        if (bytes[at] !== closer) this.fail(at, closer === CLOSE_OBJECT ? "',' or '}'" : "',' or ']'");
        at++;
        closers.pop();
      }
    }
  }

  /** A key and its colon at `at`; returns where the value starts. */
  member(at: number): number {
    if (this.bytes[at] !== QUOTE) this.fail(at, 'a key');
    at = this.whitespace(this.string(at));
    if (this.bytes[at] !== COLON) this.fail(at, "':'");
    return this.whitespace(at + 1);
  }
}

/** The step for the list element at `index` (counted from the start), if a path goes there. */
function elementStep(step: Step, index: number): Step | undefined {
  for (const entry of step.indices) if (entry.index === index) return entry.step;
  return undefined;
}

const isDigit = (byte: number | undefined): boolean => byte !== undefined && byte >= ZERO && byte <= NINE;
const isHex = (byte: number | undefined): boolean =>
  byte !== undefined && ((byte >= ZERO && byte <= NINE) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66));

function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}'` : `byte 0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Keys a JSON text names twice in one object. JSON.parse keeps the last value silently, so
 * `{"set": {"ALPHASTACK_PROTECTION": false, "ALPHASTACK_PROTECTION": true}}` reads as a request
 * that changes nothing, and the attempt in it would go unseen. The API refuses such bodies
 * (http-server.ts), and a route may first look at every value each duplicate was given (the flag
 * routes audit an attempt on a locked flag however it is written).
 *
 * A scan of text JSON.parse has accepted. It is iterative, and a container costs one small frame,
 * because an API body may nest 30,000 deep. Values are skipped, and parsed only for a duplicate.
 * At most `limit` duplicates are reported, so a body of thousands cannot make it parse its values
 * thousands of times.
 */

export interface DuplicateKey {
  /** Where the object is: `['set']` for the top-level `set` object. */
  path: (string | number)[];
  key: string;
  /** Every value the key was given, in order. */
  values: unknown[];
}

interface Frame {
  /** The container it is in, and its key or index there: a path is built only for a duplicate. */
  parent: Frame | undefined;
  at: string | number;
  /** An object's value spans (start, end) by key; undefined for an array. */
  spans: Map<string, number[]> | undefined;
  /** The key or index of the value being scanned, and where that value starts. */
  step: string | number;
  start: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** JSON's four whitespace characters. */
function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** The keys named twice in one object of `text`, which must be JSON that JSON.parse accepts. */
export function duplicateKeys(text: string, limit = 16): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const length = text.length;
  let frame: Frame | undefined;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    // Between values nextValue has moved past commas, keys and colons: only the text's leading space is left.
    if (isSpace(code)) {
      i++;
      continue;
    }
    if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      frame = { parent: frame, at: frame?.step ?? 0, spans: code === OPEN_OBJECT ? new Map() : undefined, step: -1, start: i };
      i++;
      i = nextValue(text, i, frame);
      continue;
    }
    if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      i++;
      const closed = frame!;
      if (closed.spans) {
        for (const [key, spans] of closed.spans) {
          if (spans.length > 2 && found.length < limit) found.push({ path: pathOf(closed), key, values: valuesOf(text, spans) });
        }
        if (found.length >= limit) return found;
      }
      frame = closed.parent;
    } else {
      i = code === QUOTE ? stringEnd(text, i) : scalarEnd(text, i);
    }
    if (frame === undefined) break;
    noteValue(frame, i);
    i = nextValue(text, i, frame);
  }
  return found;
}

/** A value of `frame` ended at `end`: an object notes its span under its key. */
function noteValue(frame: Frame, end: number): void {
  if (frame.spans === undefined) return;
  const key = frame.step as string;
  const spans = frame.spans.get(key);
  if (spans) spans.push(frame.start, end);
  else frame.spans.set(key, [frame.start, end]);
}

/**
 * From `i`, past the comma if any, to the start of `frame`'s next value (for an object, past its
 * key and colon), noting which key or index it is; or to the closing bracket.
 */
function nextValue(text: string, i: number, frame: Frame): number {
  while (isSpace(text.charCodeAt(i)) || text.charCodeAt(i) === COMMA) i++;
  const code = text.charCodeAt(i);
  if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) return i;
  if (frame.spans === undefined) {
    frame.step = (frame.step as number) + 1;
  } else {
    const end = stringEnd(text, i);
    const token = text.slice(i, end);
    frame.step = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
    i = end;
    while (isSpace(text.charCodeAt(i)) || text.charCodeAt(i) === COLON) i++;
  }
  frame.start = i;
  return i;
}

/** The end (exclusive) of the string whose opening quote is at `at`. */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) return i + 1;
    i += code === BACKSLASH ? 2 : 1;
  }
}

/** The end (exclusive) of the number, `true`, `false` or `null` at `at`. */
function scalarEnd(text: string, at: number): number {
  let i = at;
  for (;;) {
    const code = text.charCodeAt(i);
    if (i >= text.length || isSpace(code) || code === COMMA || code === CLOSE_OBJECT || code === CLOSE_ARRAY) return i;
    i++;
  }
}

function valuesOf(text: string, spans: number[]): unknown[] {
  const values: unknown[] = [];
  for (let k = 0; k < spans.length; k += 2) values.push(JSON.parse(text.slice(spans[k], spans[k + 1])) as unknown);
  return values;
}

function pathOf(frame: Frame): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at: Frame | undefined = frame; at.parent !== undefined; at = at.parent) path.push(at.at);
  return path.reverse();
}

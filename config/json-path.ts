/**
 * The JSONPath subset probes use to point into a response body: `$`, `.name`, `['name']`,
 * `[0]` and `[-1]` (from the end). Filters and wildcards are deliberately absent: a health
 * assertion names one value, and a path that could match many would make its result ambiguous.
 */

/** One step of a compiled path: a property name or an array index (negative counts from the end). */
export type PathSegment = string | number;

const SEGMENT = /\.([A-Za-z_$][\w$-]*)|\[(-?\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]/y;

/** Segments of `$.a.b[0]`, or undefined when the text is not in the supported subset. */
export function parseJsonPath(text: string): PathSegment[] | undefined {
  if (!text.startsWith('$')) return undefined;
  const segments: PathSegment[] = [];
  SEGMENT.lastIndex = 1;
  while (SEGMENT.lastIndex < text.length) {
    const start = SEGMENT.lastIndex;
    const match = SEGMENT.exec(text);
    if (!match || match.index !== start) return undefined;
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else segments.push((match[3] ?? match[4]!).replace(/\\(.)/g, '$1'));
  }
  return segments;
}

/** The value at `segments` in `root`, or undefined when any step is missing. */
export function readJsonPath(root: unknown, segments: readonly PathSegment[]): unknown {
  let value = root;
  for (const segment of segments) {
    if (value === null || typeof value !== 'object') return undefined;
    if (typeof segment === 'number') {
      if (!Array.isArray(value)) return undefined;
      value = value[segment < 0 ? value.length + segment : segment];
    } else {
      if (!Object.hasOwn(value, segment)) return undefined;
      value = (value as Record<string, unknown>)[segment];
    }
  }
  return value;
}

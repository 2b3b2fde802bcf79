/**
 * The JSONPath subset probes use to point into a response body: `$`, `.name`, `['name']`,
 * `[0]` and `[-1]` (from the end). Filters and wildcards are deliberately absent: a health
 * assertion names one value, and a path that could match many would make its result ambiguous.
 * A name steps into an object's member and an index into a list's element: probes/json-select.ts
 * reads the paths from an answer.
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

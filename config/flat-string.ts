/**
 * A string kept for a series' life, as one flat string. V8 makes `a + b` and a template literal
 * as a tree of their parts (a cons string: 32 bytes a node, each part a string of its own) and
 * flattens it only when something reads its characters, which a label, a key or a check's text
 * may never need. Reading one character flattens it in place; the tree's nodes and parts are
 * then garbage. A five-part template kept in an array held 290 bytes a string, flat 75
 * (issue 18: 24 such nodes a series in a heap snapshot of the agent).
 */
export function flatString(text: string): string {
  if (text.length > 0) text.charCodeAt(0);
  return text;
}

/**
 * What the README promises in tables a reader scans at 3 a.m.: the environment-variable table of
 * "Point it at a real deployment" is one table (regression: a blank line split it in two, and
 * Markdown showed the second half, the tokens and webhooks, as a paragraph of pipes) and lists
 * every variable the default config reads.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('README', () => {
  it('has one environment-variable table with a row for every variable of config/greenlight.yaml', () => {
    const lines = read('README.md').split('\n');
    const start = lines.indexOf('| variable | default | meaning |');
    expect(start).toBeGreaterThan(0);
    const table: string[] = [];
    for (let i = start; i < lines.length && lines[i]!.startsWith('|'); i++) table.push(lines[i]!);
    const listed = table.slice(2).flatMap((row) => [...row.split('|')[1]!.matchAll(/`([A-Z_][A-Z0-9_]*)`/g)].map((m) => m[1]));
    const variables = [...new Set([...read('config/greenlight.yaml').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]))].sort();
    expect([...listed].sort()).toEqual(variables);
    // Nothing after the table looks like a lost row of it.
    expect(lines[start + table.length + 1]?.startsWith('| `')).toBe(false);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AGENT_CONFIG_SCHEMA } from '../../agent/reload/agent-config.js';
import { configJsonSchema } from '../../config/json-schema.js';

const STOCK = readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8');

/** Every `pattern` the schema gives a URL field (one per place a URL is written). */
function urlPatterns(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => urlPatterns(item, found));
  else if (node !== null && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    if (typeof record.pattern === 'string' && record.pattern.includes('https?://')) found.push(record.pattern);
    Object.values(record).forEach((value) => urlPatterns(value, found));
  }
  return found;
}

describe('greenlight schema', () => {
  const schema = configJsonSchema(AGENT_CONFIG_SCHEMA);

  it("takes the stock config's URLs as written, variables and all (regression: format uri flagged ${BLUE_URL:-…} in editors)", () => {
    expect(JSON.stringify(schema)).not.toContain('"format":"uri"');
    const patterns = [...new Set(urlPatterns(schema))].map((pattern) => new RegExp(pattern));
    expect(patterns.length).toBeGreaterThan(0);
    const raw = parse(STOCK) as { environments: Record<string, { url: string }>; traffic: { url: string } };
    const written = [...Object.values(raw.environments).map((env) => env.url), raw.traffic.url];
    expect(written.some((url) => url.includes('${'))).toBe(true);
    for (const pattern of patterns)
      for (const url of [...written, 'https://blue.example.com', 'http://127.0.0.1:8081/base']) expect(pattern.test(url), `${pattern} ${url}`).toBe(true);
    for (const pattern of patterns) for (const url of ['blue.example.com', 'ftp://x', '']) expect(pattern.test(url), `${pattern} ${url}`).toBe(false);
  });
});

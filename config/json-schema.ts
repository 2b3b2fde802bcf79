import { z } from 'zod';
import { ConfigSchema } from './schema.js';

type AnyConfigSchema = typeof ConfigSchema;

/**
 * The config's JSON Schema, generated from the zod schema so the two cannot drift. It describes
 * what a user writes (zod's input side: `5s`, not 5000), which is what editors need.
 */
export function configJsonSchema(configSchema: AnyConfigSchema = ConfigSchema): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  acceptVariablesInUrls(schema);
  return {
    ...schema,
    title: 'greenlight configuration',
    description: 'Configuration of greenlight, the blue/green deployment guard for AlphaStack V3. See README.md, "Configuration".',
  };
}

/**
 * A URL may be written as a variable (`${BLUE_URL:-http://127.0.0.1:8081}`, as the stock config
 * does), which is no URI: `format: uri` made editors flag the stock file. Such a string takes an
 * http(s) URL or a text with a variable in it instead, as durations and tokens already do.
 */
function acceptVariablesInUrls(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(acceptVariablesInUrls);
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  if (record.format === 'uri') {
    delete record.format;
    record.pattern = '^(https?://\\S+|.*\\$\\{[^}]+\\}.*)$';
  }
  for (const value of Object.values(record)) acceptVariablesInUrls(value);
}

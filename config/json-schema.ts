import { z } from 'zod';
import { ConfigSchema } from './schema.js';

type AnyConfigSchema = typeof ConfigSchema;

/**
 * The config's JSON Schema, generated from the zod schema so the two cannot drift. It describes
 * what a user writes (zod's input side: `5s`, not 5000), which is what editors need.
 */
export function configJsonSchema(configSchema: AnyConfigSchema = ConfigSchema): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  return {
    ...schema,
    title: 'greenlight configuration',
    description: 'Configuration of greenlight, the blue/green deployment guard for AlphaStack V3. See README.md, "Configuration".',
  };
}

import { configJsonSchema } from '../../../config/json-schema.js';
import { AGENT_CONFIG_SCHEMA } from '../../reload/agent-config.js';
import type { CommandIo } from '../cli.js';

/** `greenlight schema`: the config's JSON Schema on stdout. */
export async function schemaCommand(io: CommandIo): Promise<number> {
  io.out(JSON.stringify(configJsonSchema(AGENT_CONFIG_SCHEMA), null, 2));
  return 0;
}

/**
 * The config as the agent reads it: the core schema plus every registered plugin's block, and
 * the rules checked against the fact and operator catalog. Every command loads through here.
 */
import { loadConfigFile, parseConfig } from '../../config/load-config.js';
import { buildConfigSchema, type Config } from '../../config/schema.js';
import { checkRules } from '../../rules/rule-evaluator.js';
import { checkInitialFlags } from '../flags/flag-store.js';
import { PLUGIN_SCHEMAS } from '../plugins/registry.js';
import { checkTlsFiles } from '../pipeline/tls-trust.js';
import { checkReports } from '../reports/report-config.js';

export const AGENT_CONFIG_SCHEMA = buildConfigSchema(PLUGIN_SCHEMAS);

type Env = Readonly<Record<string, string | undefined>>;

/** Checks beyond the schema: rules against the fact and operator catalog, initial flags against the flag list, CA files, report receivers. */
function validate(config: Config) {
  return [
    ...checkRules(config),
    ...checkInitialFlags(config.flags.initial, Object.keys(config.environments)),
    ...checkTlsFiles(config),
    ...checkReports(config),
  ];
}

export function parseAgentConfig(text: string, env: Env = {}, source?: string): Config {
  return parseConfig(text, env, { source, schema: AGENT_CONFIG_SCHEMA, validate });
}

export function loadAgentConfig(path: string, env: Env = process.env): Promise<Config> {
  return loadConfigFile(path, env, { schema: AGENT_CONFIG_SCHEMA, validate });
}

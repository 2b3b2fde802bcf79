import { loadAgentConfig } from '../../reload/agent-config.js';
import { formatDuration } from '../../../config/units.js';
import type { CommandIo } from '../cli.js';

/** `greenlight validate [F]`: 0 and a summary when valid; a ConfigError (exit 2) otherwise. */
export async function validateCommand(options: { configPath: string }, io: CommandIo): Promise<number> {
  const config = await loadAgentConfig(options.configPath, io.env);
  const envs = Object.keys(config.environments);
  io.out(
    `${options.configPath} is valid: ${config.probes.length} probes on ${envs.join(' and ')} (${config.activeEnvironment} live when no state is stored), ` +
      `windows ${config.windows.map(formatDuration).join(', ')}, ${config.rules.length} rules, traffic adapter ${config.traffic.type}, ` +
      `${config.alerts.receivers.length} alert receivers, listening on ${config.listen.host}:${config.listen.port}`,
  );
  for (const notice of config.notices) io.out(`note: ${notice}`);
  return 0;
}

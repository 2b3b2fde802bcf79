import { Agent as UndiciAgent } from '../../../probes/undici-core.js';
import { pino } from 'pino';
import { UsageError } from '../../../config/errors.js';
import { Redactor } from '../../../config/redactor.js';
import { loadAgentConfig } from '../../reload/agent-config.js';
import type { CommandIo } from '../cli.js';
import { sleep } from '../../plugins/plugin.js';
import { RenderApi, RenderError } from '../../plugins/render-api.js';

/**
 * `greenlight env diff [--config F] [--json]`: which environment variable NAMES one Render
 * service has and the other lacks. Values are never read into the report, printed or logged.
 * Exit 0 same names, 1 drift (or Render unreachable), 2 usage/config.
 */
export async function envDiffCommand(options: { configPath: string; json: boolean }, io: CommandIo): Promise<number> {
  const config = await loadAgentConfig(options.configPath, io.env);
  const envs = Object.keys(config.environments);
  const dispatcher = new UndiciAgent({ connections: 2 });
  const api = new RenderApi(
    config.render,
    { dispatcher, sleep, logger: pino({ level: 'silent' }), redactor: Redactor.of(config) },
    new AbortController().signal,
  );
  try {
    let services: string[];
    try {
      services = envs.map((env) => api.serviceOf(env));
    } catch (error) {
      if (error instanceof RenderError) throw new UsageError(error.message);
      throw error;
    }
    const names = await Promise.all(services.map((id) => api.envVarNames(id)));
    const [a, b] = [new Set(names[0]), new Set(names[1])];
    const onlyA = [...a].filter((n) => !b.has(n));
    const onlyB = [...b].filter((n) => !a.has(n));
    const same = onlyA.length === 0 && onlyB.length === 0;
    if (options.json) {
      io.out(
        JSON.stringify(
          {
            same,
            environments: {
              [envs[0]!]: { service: services[0], count: a.size, only: onlyA },
              [envs[1]!]: { service: services[1], count: b.size, only: onlyB },
            },
            shared: [...a].filter((n) => b.has(n)).length,
          },
          null,
          2,
        ),
      );
    } else if (same) {
      io.out(`✅ ${envs[0]} (${services[0]}) and ${envs[1]} (${services[1]}) have the same ${a.size} environment variable names`);
    } else {
      io.out(`❌ environment drift between ${envs[0]} (${services[0]}, ${a.size} variables) and ${envs[1]} (${services[1]}, ${b.size} variables):`);
      if (onlyA.length) io.out(`  only on ${envs[0]}: ${onlyA.join(', ')}`);
      if (onlyB.length) io.out(`  only on ${envs[1]}: ${onlyB.join(', ')}`);
      io.out(`  (names only; values are never read into this report)`);
    }
    return same ? 0 : 1;
  } catch (error) {
    if (!(error instanceof RenderError)) throw error;
    io.err(`❌ ${error.message}`);
    return 1;
  } finally {
    await dispatcher.destroy();
  }
}

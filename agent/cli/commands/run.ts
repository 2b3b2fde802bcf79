import { Redactor } from '../../../config/redactor.js';
import { loadAgentConfig } from '../../reload/agent-config.js';
import { Agent } from '../../agent.js';
import type { CommandIo } from '../cli.js';
import { createLogger } from '../../telemetry/logger.js';

/** How long a stop may take before the process gives up waiting and exits anyway. */
const STOP_DEADLINE_MS = 8_000;

/**
 * `greenlight run`: load the config (exit 2 and nothing started when invalid), start the agent,
 * and stop cleanly on SIGTERM or SIGINT (exit 0).
 */
export async function runCommand(options: { configPath: string; dryRun: boolean }, io: CommandIo): Promise<number> {
  const config = await loadAgentConfig(options.configPath, io.env);
  // One redactor for the log and the agent: a reload adds the new config's secrets to both.
  const redactor = Redactor.of(config);
  const logger = createLogger({ ...config.log, redactor });
  // A bug that escapes every handler leaves state we cannot trust: say what it was, then exit
  // non-zero so the supervisor (systemd, Kubernetes, Docker) restarts a clean process.
  process.once('uncaughtException', (error) => {
    logger.fatal({ err: error }, `bug: uncaught exception, exiting: ${error.message}`);
    process.exit(70);
  });
  process.once('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, `bug: unhandled promise rejection, exiting: ${String((reason as Error)?.message ?? reason)}`);
    process.exit(70);
  });
  const agent = new Agent({
    config,
    logger,
    redactor,
    dryRun: options.dryRun,
    reloadConfig: () => loadAgentConfig(options.configPath, io.env),
    configSource: options.configPath,
  });
  try {
    await agent.start();
  } catch (error) {
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    await agent.close().catch(() => undefined);
    return 1;
  }

  // SIGHUP re-reads the config; a bad file is refused (config.reload_failed) and the running one stays.
  const onHangup = () => void agent.reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', onHangup);
  logger.info({ signal }, `received ${signal}, stopping`);
  const deadline = setTimeout(() => {
    logger.error(`stop took longer than ${STOP_DEADLINE_MS / 1_000}s; exiting anyway`);
    process.exit(1);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  await agent.close(signal);
  clearTimeout(deadline);
  logger.info('stopped');
  return 0;
}

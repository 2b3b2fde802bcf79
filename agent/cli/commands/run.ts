import type { CommandIo } from '../cli.js';

/** How long a stop may take before the process gives up waiting and exits anyway. */
const STOP_DEADLINE_MS = 8_000;

/** The first SIGTERM or SIGINT the process gets, caught from the moment `run` starts. */
interface StopSignal {
  /** Resolves with the first signal. */
  readonly received: Promise<NodeJS.Signals>;
  /** The first signal, once one has come. */
  readonly signal: NodeJS.Signals | undefined;
  /** Hand both signals back to Node's default (the process ends at once). */
  release(): void;
}

/**
 * Catch the first SIGTERM or SIGINT. Only the first: a second one, while a stop is under way, ends
 * the process at once (Node's default), so an operator can still cut short a stop that hangs.
 */
function catchStopSignal(): StopSignal {
  let resolve!: (signal: NodeJS.Signals) => void;
  let signal: NodeJS.Signals | undefined;
  const received = new Promise<NodeJS.Signals>((settle) => (resolve = settle));
  const release = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  function onSignal(name: NodeJS.Signals) {
    signal = name;
    release();
    resolve(name);
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    received,
    get signal() {
      return signal;
    },
    release,
  };
}

/** SIGHUP, caught for the whole run: Node's default ends the process (exit 129). */
interface Hangup {
  /** Call `reload` on each SIGHUP from now on; one that came before (while starting) calls it now. */
  handle(reload: () => void, whileStarting: () => void): void;
  /** Stopping: a SIGHUP is only noted with `ignored`. */
  ignore(ignored: () => void): void;
}

/**
 * Catch SIGHUP from the start. `systemctl start` then `systemctl reload` (ExecReload=kill -HUP)
 * sends one while the agent may still be loading, and one may come as it stops; Node's default
 * would kill it there, which systemd counts as a clean exit and does not restart: the deployment
 * would be left unguarded. While starting it is remembered (the file may have changed since it was
 * read: reloaded once started); while stopping it is ignored.
 */
function catchHangup(): Hangup {
  let handler: (() => void) | undefined;
  let missed = false;
  const onHangup = () => {
    if (handler) handler();
    else missed = true;
  };
  process.on('SIGHUP', onHangup);
  return {
    handle(reload, whileStarting) {
      handler = reload;
      if (!missed) return;
      missed = false;
      whileStarting();
      reload();
    },
    ignore(ignored) {
      handler = ignored;
    },
  };
}

/**
 * `greenlight run`: load the config (exit 2 and nothing started when invalid), start the agent,
 * and stop cleanly on SIGTERM or SIGINT (exit 0), also when one comes while it is still starting.
 */
export async function runCommand(options: { configPath: string; dryRun: boolean }, io: CommandIo): Promise<number> {
  // Before anything else: a supervisor may stop us while the modules, the config or the agent are
  // still loading (a deploy rolled back at once), and that is a clean stop, not death by signal (143).
  const stop = catchStopSignal();
  const hangup = catchHangup();
  try {
    return await run(options, io, stop, hangup);
  } finally {
    stop.release();
    // Not released: a SIGHUP in the process's last moments (after `stopped`, while it exits) must
    // not turn a clean stop into death by signal. A signal listener keeps no process alive.
    hangup.ignore(() => undefined);
  }
}

async function run(options: { configPath: string; dryRun: boolean }, io: CommandIo, stop: StopSignal, hangup: Hangup): Promise<number> {
  // Loaded only now that the signals are caught: these take most of the half second a start needs.
  const [{ Redactor }, { loadAgentConfig }, { Agent }, { createLogger }] = await Promise.all([
    import('../../../config/redactor.js'),
    import('../../reload/agent-config.js'),
    import('../../agent.js'),
    import('../../telemetry/logger.js'),
  ]);
  const config = await loadAgentConfig(options.configPath, io.env);
  // One redactor for the log and the agent: a reload adds the new config's secrets to both.
  const redactor = Redactor.of(config);
  const logger = createLogger({ ...config.log, redactor });
  if (stop.signal) {
    logger.info({ signal: stop.signal }, `received ${stop.signal} before starting; stopped (nothing had started)`);
    return 0;
  }
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
  // The deadline runs from the signal, also when it comes while starting: the wait for the start
  // to finish counts towards it.
  let deadline: NodeJS.Timeout | undefined;
  void stop.received.then(() => {
    deadline = setTimeout(() => {
      logger.error(`stop took longer than ${STOP_DEADLINE_MS / 1_000}s; exiting anyway`);
      process.exit(1);
    }, STOP_DEADLINE_MS);
    deadline.unref();
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
    // A signal waits for this to finish (the agent can be closed cleanly once started); the deadline bounds the wait.
    await agent.start();
  } catch (error) {
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    await agent.close(null, `it could not start: ${(error as Error).message}`).catch(() => undefined);
    clearTimeout(deadline);
    return 1;
  }
  const whileStarting = stop.signal !== undefined;

  // SIGHUP re-reads the config; a bad file is refused (config.reload_failed) and the running one stays.
  if (!whileStarting)
    hangup.handle(
      () => void agent.reload('SIGHUP'),
      () => logger.info('a SIGHUP came while starting: reloading the config now'),
    );
  const signal = await stop.received;
  hangup.ignore(() => logger.info('SIGHUP ignored: the agent is stopping'));
  logger.info({ signal }, `received ${signal}${whileStarting ? ' while starting' : ''}, stopping`);
  await agent.close(signal);
  clearTimeout(deadline);
  logger.info({ signal }, 'stopped');
  return 0;
}

import { join } from 'node:path';
import { loadAgentConfig } from '../agent-config.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { Agent } from '../agent.js';
import type { CommandIo } from '../cli.js';
import type { GreenlightEvent } from '../events.js';
import { createLogger } from '../logger.js';
import { packageRoot } from '../package-root.js';



/**
 * `greenlight demo`: blue and green AlphaStack simulators, an agent on the default config
 * (probing every second), and a scripted fault on the live environment, narrated as it happens.
 * Exits 0 when the script is done, or keeps running with --keep-running until Ctrl-C.
 */
export async function demoCommand(options: { keepRunning: boolean; stepMs?: number }, io: CommandIo): Promise<number> {
  const step = options.stepMs ?? 4_000;
  const env = { ...io.env, GREENLIGHT_PROBE_INTERVAL: io.env.GREENLIGHT_PROBE_INTERVAL ?? '1s' };
  const config = await loadAgentConfig(join(packageRoot(), 'config', 'greenlight.yaml'), env);
  const sims: Simulator[] = [];
  let agent: Agent | undefined;
  try {
    for (const name of Object.keys(config.environments)) {
      const url = new URL(config.environments[name]!.url);
      sims.push(await startSimulator({ name, host: url.hostname, port: Number(url.port) }));
    }
    const [blue, green] = sims as [Simulator, Simulator];
    agent = new Agent({ config, logger: createLogger({ level: 'error', format: config.log.format }) });
    agent.bus.subscribe((event) => io.out(narrate(event)));
    await agent.start();
    const base = `http://${config.listen.host}:${config.listen.port}`;
    io.out(
      [
        '',
        `AlphaStack simulators: blue ${blue.url} (live), green ${green.url}`,
        `greenlight agent:      ${base}  (probing every ${env.GREENLIGHT_PROBE_INTERVAL})`,
        '',
        'Look at:',
        `  curl ${base}/metrics | grep greenlight_      Prometheus metrics`,
        `  curl ${base}/api/v1/state                    live environment, every probe's window figures`,
        `  curl ${base}/readyz                          ready once the first probe round is done`,
        `  curl -XPOST ${blue.url}/__faults -d '{"errorRatio":0.5}'   inject your own fault`,
        '',
      ].join('\n'),
    );

    await waitFor(() => agent!.ready, 15_000);
    io.out(`▶ first probe round done: ${summary(agent)}`);
    await sleep(step);
    io.out(`▶ fault: blue's discovery engine stops (empty universe) and its health answers "degraded"`);
    blue.setFaults({ emptyUniverse: true, status: 'degraded' });
    await sleep(step);
    io.out(`▶ during the fault: ${summary(agent)}`);
    io.out(`▶ fault cleared on blue`);
    blue.resetFaults();
    await sleep(step);
    io.out(`▶ after recovery: ${summary(agent)}`);
    io.out('\nNext: rules that roll back, flags and alerts come with the rules engine. See README.md.');

    if (options.keepRunning) {
      io.out('\n--keep-running: agent and simulators stay up; Ctrl-C to stop.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
    return 0;
  } finally {
    await agent?.close();
    await Promise.all(sims.map((sim) => sim.close()));
  }
}

function narrate(event: GreenlightEvent): string {
  const icon = event.severity === 'critical' ? '🔴' : event.severity === 'warning' ? '🟠' : event.type === 'probe.up' ? '🟢' : 'ℹ️ ';
  return `  ${icon} #${event.id} ${event.type.padEnd(14)} ${event.message}`;
}

function summary(agent: Agent): string {
  const state = agent.state();
  return state.series
    .filter((series) => series.env === state.activeEnvironment)
    .map((series) => {
      const window = series.windows['1m'];
      return `${series.probe}@${series.env} ${series.up ? 'up' : 'DOWN'} (1m errors ${((window?.errorRatio ?? 0) * 100).toFixed(0)}%)`;
    })
    .join(', ');
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition() && Date.now() < until) await sleep(100);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadAgentConfig } from '../../reload/agent-config.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { Agent } from '../../agent.js';
import type { CommandIo } from '../cli.js';
import type { GreenlightEvent } from '../../events/events.js';
import { createLogger } from '../../telemetry/logger.js';
import { packageRoot } from '../../package.js';

/**
 * `greenlight demo`: blue and green AlphaStack simulators, an agent on the default config
 * (probing every second, stock rules) and a local alert receiver; a scripted fault on the live
 * environment, narrated as it happens: rule pending → firing → rollback → flags to safe mode →
 * alert delivered, then recovery.
 * Exits 0 when the script is done, or keeps running with --keep-running until Ctrl-C.
 */
export async function demoCommand(options: { keepRunning: boolean; stepMs?: number }, io: CommandIo): Promise<number> {
  const step = options.stepMs ?? 3_000;
  const receiver = await startDemoReceiver((alert) => io.out(`  📨 receiver got a ${alert.status} alert: ${alert.summary}`));
  // A fresh state directory: the demo always starts with blue live, whatever an earlier run switched.
  const dataDir = mkdtempSync(join(tmpdir(), 'greenlight-demo-'));
  const env = {
    ...demoEnvironment(io.env),
    GREENLIGHT_PROBE_INTERVAL: io.env.GREENLIGHT_PROBE_INTERVAL || '1s',
    ALERT_WEBHOOK_URL: receiver.url,
    GREENLIGHT_DATA_DIR: dataDir,
  };
  const configFile = join(packageRoot(), 'config', 'greenlight.yaml');
  const sims: Simulator[] = [];
  let agent: Agent | undefined;
  try {
    // The simulators listen where BLUE_URL and GREEN_URL say; port 0 takes any free port, and the
    // agent's config is then read with the addresses they got.
    const wanted = await loadAgentConfig(configFile, env);
    const seen: GreenlightEvent[] = [];
    try {
      for (const name of Object.keys(wanted.environments)) {
        const url = new URL(wanted.environments[name]!.url);
        sims.push(await startSimulator({ name, host: url.hostname, port: Number(url.port) }));
      }
      const config = await loadAgentConfig(configFile, { ...env, BLUE_URL: sims[0]!.url, GREEN_URL: sims[1]!.url });
      agent = new Agent({ config, logger: createLogger({ level: 'fatal', format: config.log.format }) });
      agent.bus.subscribe((event) => {
        seen.push(event);
        if (event.type !== 'probe.up' || options.keepRunning) io.out(narrate(event));
      });
      await agent.start();
    } catch (error) {
      // A port taken (a real agent on 9464, the app on 8081): say which, and how to move the demo.
      io.err(
        `greenlight demo: cannot start: ${(error as Error).message}. Give the demo free ports with GREENLIGHT_LISTEN, BLUE_URL and GREEN_URL (port 0 takes any)`,
      );
      return 1;
    }
    const [blue, green] = sims as [Simulator, Simulator];
    const config = agent.config;
    const { host, port } = agent.address!;
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    io.out(
      [
        '',
        `AlphaStack simulators: blue ${blue.url} (live), green ${green.url}`,
        `greenlight agent:      ${base}  (probing every ${env.GREENLIGHT_PROBE_INTERVAL}, ${config.rules.length} stock rules, traffic adapter ${config.traffic.type})`,
        `alert receiver:        ${receiver.url} (Alertmanager webhook format, stands in for Slack/PagerDuty)`,
        '',
        'Look at:',
        `  curl ${base}/metrics | grep greenlight_      Prometheus metrics`,
        `  curl ${base}/api/v1/state                    live environment, rule states, flags, every probe's window figures`,
        `  curl ${base}/api/v1/flags                    feature flags of blue and green, with the audit trail`,
        `  curl -XPOST ${blue.url}/__faults -d '{"errorRatio":0.5}'   inject your own fault (with --keep-running)`,
        '',
      ].join('\n'),
    );

    await waitFor(() => agent!.ready, 15_000);
    io.out(`▶ first probe round done: ${summary(agent)}`);
    await sleep(step);
    io.out(`▶ fault: blue (live) loses its discovery engine: /api/alphastack/universe answers an empty universe`);
    blue.setFaults({ emptyUniverse: true });
    const switched = await waitFor(
      () =>
        seen.some((e) => e.type === 'traffic.switched') &&
        receiver.alerts.length > 0 &&
        seen.some((e) => e.type === 'action.succeeded' && e.data.action === 'safe-mode'),
      30_000,
    );
    await agent.settled();
    if (!switched) {
      io.err('❌ the scripted fault did not lead to a rollback within 30 s; see the events above');
      return 1;
    }
    const flags = agent.flags.get('blue');
    io.out(
      `▶ live is now ${agent.activeEnvironment}; blue's flags are in safe mode (FORCE_V2_FALLBACK=${flags.FORCE_V2_FALLBACK}, ALPHASTACK_V3_ENABLED=${flags.ALPHASTACK_V3_ENABLED}, ALPHASTACK_PROTECTION=${flags.ALPHASTACK_PROTECTION})`,
    );
    io.out(
      `▶ fault cleared on blue; the rule now reads green (live): the incident was about blue, so it resolves as soon as it judges green healthy (a failure of green would be a new incident)`,
    );
    blue.resetFaults();
    await waitFor(() => seen.some((e) => e.type === 'rule.resolved') && receiver.alerts.some((a) => a.status === 'resolved'), 40_000);
    await agent.settled();
    io.out(`▶ done: ${summary(agent)}`);

    if (options.keepRunning) {
      io.out('\n--keep-running: agent, simulators and receiver stay up; Ctrl-C to stop.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    }
    return 0;
  } finally {
    await agent?.close();
    await Promise.all(sims.map((sim) => sim.close()));
    await receiver.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The variables the demo reads of the operator's: where its parts listen, how often it probes, and
 * the tokens for trying the CLI against it. Nothing else: on a machine that runs a real agent, the
 * environment may name the production cluster's database (the demo would join it), a traffic
 * webhook (its scripted fault would switch real traffic), pagers, or another live environment.
 */
const DEMO_VARIABLES = ['GREENLIGHT_LISTEN', 'BLUE_URL', 'GREEN_URL', 'ADMIN_TOKEN', 'ROLLBACK_TOKEN'] as const;

function demoEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of DEMO_VARIABLES) if (env[name]) kept[name] = env[name];
  return kept;
}

interface DemoAlert {
  status: string;
  summary: string;
}

/** A local alert receiver speaking the Alertmanager webhook format, so the demo shows a delivered page. */
async function startDemoReceiver(onAlert: (alert: DemoAlert) => void): Promise<{ url: string; alerts: DemoAlert[]; close: () => Promise<void> }> {
  const alerts: DemoAlert[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        // One POST is one grouped notification: each of its alerts is narrated.
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: { status: string; annotations?: { summary?: string } }[] };
        for (const entry of payload.alerts) {
          const alert = { status: entry.status, summary: entry.annotations?.summary ?? '(no summary)' };
          alerts.push(alert);
          onAlert(alert);
        }
      } catch {
        // not an alert; ignore
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    alerts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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

/** Poll `condition` until it holds (true) or `timeoutMs` passes (false). */
async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) return false;
    await sleep(100);
  }
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

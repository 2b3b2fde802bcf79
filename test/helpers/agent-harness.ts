import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { Agent, type AgentOptions } from '../../agent/agent.js';
import type { GreenlightEvent } from '../../agent/events/events.js';
import type { Config } from '../../config/schema.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { tempDir } from './tools.js';

export interface PairOptions {
  every?: string;
  timeout?: string;
  /** YAML added before `probes:` (top-level keys). */
  extra?: string;
  /** Default: a fresh temporary directory. */
  dataDir?: string;
}

/** Two simulators and the default four AlphaStack probes against them, as config text. */
export function pairConfig(blue: string, green: string, options: PairOptions = {}): string {
  return `listen: 127.0.0.1:0
dataDir: ${options.dataDir ?? tempDir('greenlight-data-')}
environments:
  blue:
    url: ${blue}
  green:
    url: ${green}
probeDefaults:
  every: ${options.every ?? '200ms'}
  timeout: ${options.timeout ?? '2s'}
  jitter: 0
${options.extra ?? ''}
probes:
  - name: health
    path: /api/health
    expect:
      status: [200]
      json:
        - path: $.status
          in: [healthy, ok]
        - path: $.database.connected
          equals: true
    extract:
      memory_percent:
        path: $.memory.percent
        lines: [80, 90]
  - name: universe
    path: /api/alphastack/universe
    expect:
      json:
        - path: $.universe
          nonEmpty: true
`;
}

export interface Harness {
  blue: Simulator;
  green: Simulator;
  agent: Agent;
  events: GreenlightEvent[];
  logs: string[];
  base: string;
  close(): Promise<void>;
}

/** Start two simulators and an agent on them; the caller closes it. */
export async function startPair(options: PairOptions = {}): Promise<Harness> {
  const blue = await startSimulator({ name: 'blue' });
  const green = await startSimulator({ name: 'green' });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const agent = new Agent({ config: parseAgentConfig(pairConfig(blue.url, green.url, options)), logger: pino({ level: 'debug' }, sink) });
  const events: GreenlightEvent[] = [];
  agent.bus.subscribe((event) => events.push(event));
  await agent.start();
  const address = agent.address!;
  return {
    blue,
    green,
    agent,
    events,
    logs,
    base: `http://${address.host}:${address.port}`,
    close: async () => {
      await agent.close();
      await Promise.all([blue.close(), green.close()]);
    },
  };
}

/** Poll until `condition` holds, or fail after `timeoutMs` saying what was awaited. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Two simulators for the file's tests: started before them, closed after. Read `pair.blue` inside a test. */
export function useSimulatorPair(): { readonly blue: Simulator; readonly green: Simulator } {
  const pair = {} as { blue: Simulator; green: Simulator };
  beforeAll(async () => {
    [pair.blue, pair.green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  });
  afterAll(async () => {
    await Promise.all([pair.blue.close(), pair.green.close()]);
  });
  return pair;
}

/** Start an agent on `config` with a silent logger, collecting its events from the first. */
export async function startAgent(config: Config, options: Omit<AgentOptions, 'config' | 'logger'> = {}): Promise<{ agent: Agent; events: GreenlightEvent[] }> {
  const agent = new Agent({ config, logger: pino({ level: 'silent' }), ...options });
  const events: GreenlightEvent[] = [];
  agent.bus.subscribe((event) => events.push(event));
  await agent.start();
  return { agent, events };
}

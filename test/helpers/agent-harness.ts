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
  api: ApiClient;
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
    api: apiClient(`http://${address.host}:${address.port}`),
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

/** An answer of the agent's API: the status, the JSON body (or the text when it is not JSON) and the headers. */
export interface ApiAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls to a running agent's API: `api('PUT', '/api/v1/flags', { token: ADMIN, body: {...} })`. */
export type ApiClient = <T = any>(
  method: string,
  path: string,
  options?: { token?: string | undefined; body?: unknown; headers?: Record<string, string> },
) => Promise<ApiAnswer<T>>;

/** An API client of the agent at `base`: JSON bodies, `Authorization: Bearer` when a token is given. */
export function apiClient(base: string): ApiClient {
  return async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the text as it came
    }
    return { status: response.status, body: body as never, headers: response.headers };
  };
}

export interface StartedAgent {
  agent: Agent;
  /** Every event it published, from the first. */
  events: GreenlightEvent[];
  /** `http://127.0.0.1:<port>` */
  base: string;
  api: ApiClient;
}

/**
 * Start an agent on `config` (its listen address with port 0), silent unless given a logger,
 * collecting its events from the first; with `ready`, wait for its first probe round too.
 */
export async function startAgent(
  config: Config,
  options: Omit<AgentOptions, 'config' | 'logger'> & { ready?: boolean; logger?: AgentOptions['logger'] } = {},
): Promise<StartedAgent> {
  const { ready, logger = pino({ level: 'silent' }), ...agentOptions } = options;
  const agent = new Agent({ config, logger, ...agentOptions });
  const events: GreenlightEvent[] = [];
  agent.bus.subscribe((event) => events.push(event));
  await agent.start();
  if (ready) await waitUntil(() => agent.ready, 'the first probe round');
  const base = `http://127.0.0.1:${agent.address!.port}`;
  return { agent, events, base, api: apiClient(base) };
}

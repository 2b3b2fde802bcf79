/**
 * A blue/green pair on a simulated clock: the real agent (by default on the stock
 * config/greenlight.yaml, probing every 500 ms), its probes answered by an undici MockAgent
 * scripted per environment, its traffic webhook and alerts caught by the same, and fake timers
 * that move only when the test says. Minutes of incidents run in a fraction of a second, and
 * every time in them is exact: a bound on simulated time is a property of the code, not luck.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { MockAgent } from 'undici';
import { vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { GreenlightEvent, TrafficSwitchedEvent } from '../../agent/events/events.js';
import { tempDir } from './tools.js';
import { seededRandom } from '../../simulator/seeded-random.js';

export const T0 = Date.UTC(2027, 0, 15, 13, 0, 0);
export const STOCK = readFileSync(new URL('../../config/greenlight.yaml', import.meta.url), 'utf8');

/** What an environment does to the probes: answer 500 everywhere, an empty universe, or never answer. */
export interface EnvFaults {
  down: boolean;
  emptyUniverse: boolean;
  hang: boolean;
  /** What /api/health reports as memory.percent (41.5 when unset; null: the answer gives none). */
  memoryPercent?: number | null;
  /** The agent's own socket fails before any request (EMFILE: it is out of file descriptors). */
  emfile?: boolean;
  /** Every answer (a number), or those of the paths named, comes this long after the request (simulated time): slow but working. */
  latencyMs?: number | Readonly<Record<string, number>>;
}

export interface ScriptedPair {
  agent: Agent;
  events: GreenlightEvent[];
  faults: Record<'blue' | 'green', EnvFaults>;
  /** Bodies POSTed to the traffic webhook (one per switch that reached the adapter). */
  trafficCalls: unknown[];
  /** Alertmanager-format bodies POSTed to the alert webhook. */
  alerts: { status: string; alerts: { status: string; labels: Record<string, string> }[] }[];
  now(): number;
  advance(ms: number): Promise<void>;
  /** Advance in small steps until `condition` holds; returns the simulated time it took (throws after `maxMs`). */
  advanceUntil(condition: () => boolean, maxMs: number, what: string): Promise<number>;
  switches(): TrafficSwitchedEvent[];
  /** Simulated time of an event. */
  at(event: GreenlightEvent): number;
  /** Alert names (alertname label) sent firing so far. */
  alertNames(): string[];
  close(): Promise<void>;
}

const HEALTHY_BODY: Record<string, unknown> = {
  '/api/health': { status: 'healthy', database: { connected: true }, memory: { percent: 41.5 }, cpu: { percent: 12 } },
  '/api/alphastack/universe': { universe: [{ symbol: 'AAPL' }, { symbol: 'NVDA' }] },
  '/api/discoveries': { discoveries: [] },
  '/api/portfolio/positions': { positions: [] },
};

/**
 * Start the world: fake timers from T0, the agent on `config` (default: the stock config with its
 * variables pointing at the scripted pair), and `warmupMs` (default 5 s) of healthy probing done:
 * give it 5 minutes where the 5-minute windows should hold a normal history, as a running agent's do.
 * `dataDir` and `startAt` start it again where an earlier world left off (a restart), `faults` as the
 * environments are when it starts.
 */
export async function startScriptedPair(
  options: {
    config?: string;
    env?: Record<string, string>;
    dataDir?: string;
    warmupMs?: number;
    startAt?: number;
    faults?: Partial<Record<'blue' | 'green', Partial<EnvFaults>>>;
    seed?: number;
  } = {},
): Promise<ScriptedPair> {
  vi.useFakeTimers({
    now: options.startAt ?? T0,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date'],
  });
  // The schedule's jitter and first phases come from Math.random: seeded, every run is the same world.
  const random = vi.spyOn(Math, 'random').mockImplementation(seededRandom(options.seed ?? 17));
  const mock = new MockAgent();
  mock.disableNetConnect();
  const faults: ScriptedPair['faults'] = {
    blue: { down: false, emptyUniverse: false, hang: false, ...options.faults?.blue },
    green: { down: false, emptyUniverse: false, hang: false, ...options.faults?.green },
  };
  for (const env of ['blue', 'green'] as const) {
    mock
      .get(`http://${env}.test`)
      .intercept({ path: () => true, method: () => true })
      .reply((request) => {
        const f = faults[env];
        if (f.emfile) throw Object.assign(new Error(`connect EMFILE ${env}.test:80 - Local (undefined:undefined)`), { code: 'EMFILE', errno: -24 });
        if (f.hang) return { statusCode: 200, data: () => new Promise<string>(() => undefined) };
        if (f.down) return { statusCode: 500, data: JSON.stringify({ error: 'simulated failure' }) };
        const path = request.path.split('?')[0]!;
        const body =
          path === '/api/alphastack/universe' && f.emptyUniverse
            ? { universe: [] }
            : path === '/api/health' && f.memoryPercent !== undefined
              ? { ...(HEALTHY_BODY[path] as object), memory: { percent: f.memoryPercent } }
              : HEALTHY_BODY[path];
        const answer = body === undefined ? { statusCode: 404, data: '{}' } : { statusCode: 200, data: JSON.stringify(body) };
        const latencyMs = typeof f.latencyMs === 'number' ? f.latencyMs : f.latencyMs?.[path];
        if (!latencyMs) return answer;
        return { statusCode: answer.statusCode, data: () => new Promise<string>((resolve) => setTimeout(() => resolve(answer.data), latencyMs)) };
      })
      .persist();
  }
  const trafficCalls: unknown[] = [];
  const alerts: ScriptedPair['alerts'] = [];
  mock
    .get('http://traffic.test')
    .intercept({ path: () => true, method: 'POST' })
    .reply((request) => {
      trafficCalls.push(JSON.parse(String(request.body)));
      return { statusCode: 200, data: '{}' };
    })
    .persist();
  mock
    .get('http://alerts.test')
    .intercept({ path: () => true, method: 'POST' })
    .reply((request) => {
      alerts.push(JSON.parse(String(request.body)) as ScriptedPair['alerts'][number]);
      return { statusCode: 200, data: '{}' };
    })
    .persist();

  const dataDir = options.dataDir ?? tempDir('greenlight-scripted-');
  const text = (options.config ?? STOCK).replace('validateAfterRollback: true', 'validateAfterRollback: false');
  const config = parseAgentConfig(text, {
    GREENLIGHT_LISTEN: '127.0.0.1:0',
    GREENLIGHT_DATA_DIR: dataDir,
    BLUE_URL: 'http://blue.test',
    GREEN_URL: 'http://green.test',
    GREENLIGHT_PROBE_INTERVAL: '500ms',
    TRAFFIC_WEBHOOK_URL: 'http://traffic.test/switch',
    ALERT_WEBHOOK_URL: 'http://alerts.test/hook',
    ...options.env,
  });
  const agent = new Agent({ config, logger: pino({ level: 'silent' }), probeDispatcher: mock, outbound: mock, now: Date.now, processMetrics: false });
  const events: GreenlightEvent[] = [];
  agent.bus.subscribe((event) => events.push(event));
  await agent.start();
  const advance = async (ms: number): Promise<void> => {
    await vi.advanceTimersByTimeAsync(ms);
  };
  const advanceUntil = async (condition: () => boolean, maxMs: number, what: string): Promise<number> => {
    const start = Date.now();
    while (!condition()) {
      if (Date.now() - start > maxMs) throw new Error(`${what}: not within ${maxMs} ms of simulated time`);
      await advance(25);
    }
    return Date.now() - start;
  };
  await advanceUntil(() => agent.ready, 5_000, 'the first probe round');
  await advance(options.warmupMs ?? 5_000);
  return {
    agent,
    events,
    faults,
    trafficCalls,
    alerts,
    now: () => Date.now(),
    advance,
    advanceUntil,
    switches: () => events.filter((e): e is TrafficSwitchedEvent => e.type === 'traffic.switched'),
    at: (event) => Date.parse(event.time),
    alertNames: () => alerts.flatMap((body) => body.alerts.filter((a) => a.status === 'firing').map((a) => a.labels.alertname!)),
    close: async () => {
      const closing = agent.close();
      await vi.advanceTimersByTimeAsync(10_000);
      await closing;
      await mock.close();
      random.mockRestore();
      vi.useRealTimers();
    },
  };
}

/**
 * TrafficControl's fence (a cluster's claim of a switch; an agent alone's mark that it was sent):
 * withdrawn when nothing reached the traffic layer, kept when something may have. Cluster finding
 * of the twenty-sixth round: a leader whose lease lapsed while it wrote the claim cancelled the
 * webhook before its first request, yet left the claim, and every later leader refused to roll
 * back on "a switch that may have landed".
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ActionContext } from '../../../agent/actions/action.js';
import { EventBus } from '../../../agent/events/events.js';
import { TrafficControl, type TrafficControlOptions } from '../../../agent/traffic/traffic-control.js';
import { TrafficError, type TrafficAdapter } from '../../../agent/traffic/traffic-adapter.js';
import { Redactor } from '../../../config/redactor.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { SeriesEntry } from '../../../agent/pipeline/series-registry.js';

const config = parseAgentConfig(`environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }
probes: [ { name: health, path: /api/health } ]
`);

const CONTEXT: ActionContext = {
  rule: null,
  incident: 'manual-1',
  env: 'blue',
  severity: 'critical',
  message: 'blue is down',
  figures: null,
  actor: 'test',
  startedAt: 0,
};

/** One interval probe of green that passes its fresh verification at once. */
const GREEN_HEALTH = { target: { probe: 'health', env: 'green', timeoutMs: 1_000 }, series: { probe: 'health' } } as unknown as SeriesEntry;

/** A control whose target passes its fresh verification at once, `adapter`, and a fence whose term may end while it is written. */
function control(adapter: TrafficAdapter, fence?: TrafficControlOptions['fence']) {
  const persisted: [string, unknown][] = [];
  const bus = new EventBus({
    now: Date.now,
    redactor: Redactor.of(config),
    onListenerError: (error) => {
      throw error;
    },
  });
  const traffic = new TrafficControl(
    { config, bus, metrics: { setActiveEnvironment: () => undefined }, now: Date.now, startedAt: Date.now() },
    {
      adapter,
      live: 'blue',
      series: { intervalEntriesOf: (env) => (env === 'green' ? [GREEN_HEALTH] : []) },
      probe: () => Promise.resolve({ probe: 'health', env: 'green', ok: true, durationMs: 2, startedAt: Date.now(), checks: [], extracted: {} }),
      persist: (key, value) => persisted.push([key, value]),
      onSwitched: () => undefined,
      steps: { run: () => Promise.resolve({ ok: true, steps: [], failed: null, skipped: [] }) },
      logger: pino({ level: 'silent' }),
      ...(fence ? { fence } : {}),
    },
  );
  return { traffic, persisted };
}

describe('the switch fence', () => {
  it("withdraws a cluster's claim when its term ended while the claim was written: the adapter is never called", async () => {
    let called = 0;
    const abandoned: string[] = [];
    const term = new AbortController();
    const { traffic } = control({ type: 'webhook', switchTo: () => (called++, Promise.resolve({ detail: 'switched' })) }, async (_from, _to, incident) => {
      term.abort();
      return { token: 3, abandon: async () => void abandoned.push(incident), signal: term.signal };
    });
    const result = await traffic.switch({ from: 'blue', to: 'green', kind: 'rollback' }, CONTEXT, new AbortController().signal);
    expect(result).toMatchObject({
      switched: false,
      why: 'adapter',
      reason: expect.stringContaining('lost the cluster lease before the switch blue → green was sent') as unknown,
    });
    expect(called).toBe(0);
    expect(abandoned).toEqual(['manual-1']);
    expect(traffic.live).toBe('blue');
  });

  it('withdraws it when the adapter says it sent nothing, keeps it when a request may have gone out', async () => {
    const abandoned: string[] = [];
    const fence: TrafficControlOptions['fence'] = async (_from, _to, incident) => ({ token: 1, abandon: async () => void abandoned.push(incident) });
    const stop = new AbortController();
    stop.abort();
    const notSent = control({ type: 'webhook', switchTo: () => Promise.reject(new TrafficError('cancelled after 0 attempts', { notSent: true })) }, fence);
    expect(await notSent.traffic.switch({ from: 'blue', to: 'green', kind: 'rollback' }, CONTEXT, new AbortController().signal)).toMatchObject({
      switched: false,
      why: 'adapter',
    });
    expect(abandoned).toEqual(['manual-1']);

    // Cut off by the stop mid-request: it may have landed, so the mark stays for the next start to ask about.
    const inFlight = new AbortController();
    const maybe = control(
      {
        type: 'webhook',
        switchTo: () => {
          inFlight.abort();
          return Promise.reject(new TrafficError('cancelled after 1 attempt; whether traffic moved to green is unknown'));
        },
      },
      fence,
    );
    expect(await maybe.traffic.switch({ from: 'blue', to: 'green', kind: 'rollback' }, { ...CONTEXT, incident: 'manual-2' }, inFlight.signal)).toMatchObject({
      switched: false,
    });
    expect(abandoned).toEqual(['manual-1']);
  });

  it('an agent alone writes the switch down as sent before calling the adapter, and unwrites it when the adapter sent nothing', async () => {
    let seenAtCall: unknown;
    const alone = control({
      type: 'webhook',
      switchTo: () => {
        seenAtCall = alone.persisted.at(-1);
        return Promise.reject(new TrafficError('cancelled after 0 attempts', { notSent: true }));
      },
    });
    await alone.traffic.switch({ from: 'blue', to: 'green', kind: 'rollback' }, CONTEXT, new AbortController().signal);
    expect(seenAtCall).toEqual(['switchesSent', { 'manual-1': expect.any(Number) as unknown }]);
    expect(alone.persisted.at(-1)).toEqual(['switchesSent', {}]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { startPair, waitUntil, type Harness } from '../helpers/agent-harness.js';

// The wall clock is stepped under a running agent by replacing Date.now, as NTP, `date -s` or a
// restored VM would step it; the monotonic clock (performance.now) runs on. What greenlight judges
// are spans of time, and a step must not change them.

const HOUR = 3_600_000;
const realNow = Date.now.bind(Date);
let shift = 0;

const RULES = `windows: [10s]
rules:
  - name: live-errors
    description: Most of the live environment's probes failed over 10 s
    severity: warning
    when:
      all:
        - fact: errorRatio
          params: { window: 10s }
          operator: greaterThan
          value: 0.5
    for: 3s
    minSamples: 3
    actions: []
`;

let harness: Harness | undefined;

async function start(): Promise<Harness> {
  shift = 0;
  Date.now = () => realNow() + shift;
  harness = await startPair({ every: '200ms', extra: RULES });
  return harness;
}

afterEach(async () => {
  await harness?.close();
  harness = undefined;
  Date.now = realNow;
});

const ofType = (events: GreenlightEvent[], type: string) => events.filter((event) => event.type === type && event.rule === 'live-errors');

describe('a step of the wall clock', () => {
  it('stepped back an hour, new results still count: an error-ratio rule fires on the failures after the step', async () => {
    const { blue, events, logs } = await start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    shift = -HOUR;
    blue.setFaults({ errorRatio: 1 });
    await waitUntil(() => ofType(events, 'rule.firing').length > 0, 'live-errors to fire after the clock went back an hour', 15_000);
    expect(ofType(events, 'rule.pending').length).toBe(1);
    // The operator is told, once, why event times and log times now differ.
    await waitUntil(() => logs.some((line) => line.includes('the wall clock stepped back by about 3600 s')), 'the step in the log', 10_000);
    expect(logs.filter((line) => line.includes('the wall clock stepped'))).toHaveLength(1);
  });

  it('stepped forward an hour, a rule still waits out its `for` in real time', async () => {
    const { blue, events, agent } = await start();
    // Each transition's moment on the monotonic clock, taken as it is published.
    const at = new Map<string, number>();
    agent.bus.subscribe((event) => {
      if (event.rule === 'live-errors') at.set(event.type, performance.now());
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    blue.setFaults({ errorRatio: 1 });
    await waitUntil(() => ofType(events, 'rule.pending').length > 0, 'live-errors to be pending', 15_000);
    shift = HOUR;
    await waitUntil(() => ofType(events, 'rule.firing').length > 0, 'live-errors to fire', 15_000);
    // `for: 3s` on a clock that gains at most 5 % while it takes in the step: at least 2.85 s.
    expect(at.get('rule.firing')! - at.get('rule.pending')!).toBeGreaterThan(2_500);
  });
});

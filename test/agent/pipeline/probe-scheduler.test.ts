import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextConfirmation } from '../../../agent/pipeline/confirmation.js';
import { ProbeScheduler, type ConfirmPolicy, type ScheduledJob } from '../../../agent/pipeline/probe-scheduler.js';
import type { Confirmation } from '../../../probes/probe-result.js';
import { waitUntil } from '../../helpers/agent-harness.js';

let scheduler: ProbeScheduler | undefined;
afterEach(async () => {
  await scheduler?.close();
  scheduler = undefined;
  vi.useRealTimers();
});

/**
 * Fake timers from a round time: ticks start on the scheduler's wake-up grain (10 ms or less),
 * counted from the epoch, so the times below are what the tests plan.
 */
function useFakeClock(): void {
  vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
}

/** A repeatable stream of draws in [0, 1) (Park–Miller), for phases spread as Math.random would. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
}

/**
 * One job every second (every draw 0.25: first tick at 250 ms) whose loop is held up `heldMs` at
 * 1.3 s (the clock jumps on, no timer fires meanwhile): its runs (ms from start) and skips to 3.3 s.
 */
async function heldUpOnce(heldMs: number): Promise<{ runs: number[]; skips: string[] }> {
  useFakeClock();
  scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0.25, onError: () => undefined });
  const start = Date.now();
  const runs: number[] = [];
  const skips: string[] = [];
  scheduler.add(job({ run: async () => void runs.push(Date.now() - start), onSkipped: (why) => skips.push(why) }));
  scheduler.start();
  await vi.advanceTimersByTimeAsync(1_300);
  vi.setSystemTime(Date.now() + heldMs);
  await vi.advanceTimersByTimeAsync(2_000);
  return { runs, skips };
}

function job(overrides: Partial<ScheduledJob>): ScheduledJob {
  return { key: 'health@blue', schedule: { every: 1_000, jitter: 0 }, run: async () => undefined, onSkipped: () => undefined, ...overrides };
}

describe('ProbeScheduler', () => {
  it('runs an interval job every interval, its first tick within the first second', async () => {
    useFakeClock();
    const runs: number[] = [];
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0.5, onError: () => undefined });
    const start = Date.now();
    scheduler.add(job({ schedule: { every: 5_000, jitter: 0 }, run: async () => void runs.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(20_600);
    expect(runs).toEqual([500, 5_500, 10_500, 15_500, 20_500]);
  });

  it('keeps one timer for all its interval jobs: 1,000 series at 1 s, each run once a second at its own phase, on the 10 ms grain', async () => {
    useFakeClock();
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: seededRandom(7), onError: () => undefined });
    // The phases drawn at start: each job's first draw, in the order they were added.
    const draw = seededRandom(7);
    const phases = Array.from({ length: 1_000 }, () => draw() * 1_000);
    const start = Date.now();
    const runs = new Map<number, number[]>();
    for (let n = 0; n < 1_000; n++) {
      runs.set(n, []);
      scheduler.add(job({ key: `p${n}@blue`, schedule: { every: 1_000, jitter: 0 }, run: async () => void runs.get(n)!.push(Date.now() - start) }));
    }
    scheduler.start();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(vi.getTimerCount()).toBe(1);
    const wakeUps = new Set<number>();
    for (const [n, times] of runs) {
      // First tick at its phase or up to 10 ms after (never before), on a 10 ms boundary; then every 1,000 ms to the millisecond.
      expect(times).toHaveLength(10);
      expect(times[0]!).toBeGreaterThanOrEqual(phases[n]!);
      expect(times[0]!).toBeLessThan(phases[n]! + 10);
      expect(times[0]! % 10).toBe(0);
      for (let k = 1; k < times.length; k++) expect(times[k]! - times[k - 1]!).toBe(1_000);
      for (const t of times) wakeUps.add(t);
    }
    // 10,000 runs in at most 1,000 wake-ups (100 a second), spread over the whole second, not one burst.
    expect(wakeUps.size).toBeLessThanOrEqual(1_000);
    expect(new Set([...wakeUps].map((t) => t % 1_000)).size).toBeGreaterThan(90);
  });

  it('a job with a short interval makes the grain finer for every job: a twentieth of it, and back to 10 ms when it goes', async () => {
    useFakeClock();
    // Draws: 0.0123 for each start (the jobs' phases), 0.5 for the jitter draws (no offset with jitter 0).
    const values = [0.0123, 0.0123];
    let i = 0;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => values[i++] ?? 0.5, onError: () => undefined });
    const start = Date.now();
    const slow: number[] = [];
    const fast: number[] = [];
    scheduler.add(job({ key: 'slow@blue', run: async () => void slow.push(Date.now() - start) }));
    scheduler.add(job({ key: 'fast@blue', schedule: { every: 100, jitter: 0 }, run: async () => void fast.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(1_050);
    // Phases 12.3 ms (1 s × 0.0123) and 1.23 ms (100 ms × 0.0123), on the 5 ms grain (100 ms / 20).
    expect(slow).toEqual([15, 1_015]);
    expect(fast).toEqual([5, 105, 205, 305, 405, 505, 605, 705, 805, 905, 1_005]);
    await scheduler.remove(['fast@blue']);
    await vi.advanceTimersByTimeAsync(1_000);
    // The 10 ms grain again: planned at 2,012.3, run at 2,020.
    expect(slow).toEqual([15, 1_015, 2_020]);
  });

  it('after the agent was held up for more than an interval, drops the late ticks and starts the series again spread over a second', async () => {
    useFakeClock();
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: seededRandom(11), onError: () => undefined });
    const start = Date.now();
    const runs = new Map<number, number[]>();
    const skips: string[] = [];
    for (let n = 0; n < 200; n++) {
      runs.set(n, []);
      scheduler.add(
        job({
          key: `p${n}@blue`,
          schedule: { every: 1_000, jitter: 0 },
          run: async () => void runs.get(n)!.push(Date.now() - start),
          onSkipped: (why) => skips.push(why),
        }),
      );
    }
    scheduler.start();
    await vi.advanceTimersByTimeAsync(3_000);
    // The loop is held up 2.5 s: the clock moves on, no timer fires meanwhile.
    vi.setSystemTime(Date.now() + 2_500);
    const resumed = Date.now() - start;
    await vi.advanceTimersByTimeAsync(4_000);
    // Each series' late tick is dropped once (counted as skipped, for that reason); none runs late twice ...
    expect(skips).toEqual(Array<string>(200).fill('late'));
    // ... each runs again within a second of its timer (which fires up to a second after the pause), then once an interval ...
    const perMillisecond = new Map<number, number>();
    for (const [n, times] of runs) {
      const later = times.filter((t) => t >= resumed);
      expect(later[0]!, `series ${n}`).toBeLessThan(resumed + 2_000);
      expect(later.length, `series ${n}`).toBeGreaterThanOrEqual(3);
      for (let k = 1; k < later.length; k++) expect(later[k]! - later[k - 1]!, `series ${n}`).toBe(1_000);
      for (const t of later) perMillisecond.set(t, (perMillisecond.get(t) ?? 0) + 1);
    }
    // ... and not all in one burst: 200 series spread over the second.
    expect(Math.max(...perMillisecond.values())).toBeLessThan(10);
  });

  it('after a pause longer than a long interval, runs the series again within a second, not an interval later', async () => {
    useFakeClock();
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0.5, onError: () => undefined });
    const start = Date.now();
    const runs: number[] = [];
    scheduler.add(job({ schedule: { every: 300_000, jitter: 0 }, run: async () => void runs.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs).toEqual([500]);
    vi.setSystemTime(Date.now() + 360_000); // stopped 6 minutes: the tick due at 300,500 is a whole interval late
    await vi.advanceTimersByTimeAsync(300_000);
    // The timer due at 300,500 fires at 660,500 by the clock; the series runs 500 ms later, not at 900,500.
    expect(runs).toEqual([500, 661_000]);
  });

  it('runs a tick up to 100 ms late at once, then goes on at its phase', async () => {
    // The tick due at 2,250 comes when the clock says 2,330.
    expect(await heldUpOnce(80)).toEqual({ runs: [250, 1_250, 2_330, 3_250], skips: [] });
  });

  it('spreads a tick later than that, but less than an interval, over the next second: it runs, not skipped', async () => {
    // The tick due at 2,250 comes at 2,750 and is planned again at 2,750 + 0.25 s (the draw).
    expect(await heldUpOnce(500)).toEqual({ runs: [250, 1_250, 3_000], skips: [] });
  });

  it('keeps probing while the loop is held up at every wake-up (a flood of requests): a tick planned again for coming late runs when it next comes', async () => {
    // Regression: every late tick was planned again within the next second, and when the loop
    // stayed busy (a flood of OFREP requests) it came late again, and again: the series never ran
    // and nothing counted it as skipped. Here the loop is held up as long as it runs (the clock
    // goes twice as fast as the timers): a tick planned 250 ms ahead comes 250 ms late.
    useFakeClock();
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0.25, onError: () => undefined });
    const start = Date.now();
    const runs: number[] = [];
    const skips: string[] = [];
    scheduler.add(job({ schedule: { every: 2_000, jitter: 0 }, run: async () => void runs.push(Date.now() - start), onSkipped: (why) => skips.push(why) }));
    const flood = setInterval(() => vi.setSystemTime(Date.now() + 10), 10);
    scheduler.start();
    await vi.advanceTimersByTimeAsync(10_000); // 20 s by the clock
    clearInterval(flood);
    expect(skips).toEqual([]);
    // Once a tick has been planned again it runs when it comes, however late: about every 4 s here.
    expect(runs.length).toBeGreaterThanOrEqual(4);
    for (let k = 1; k < runs.length; k++) expect(runs[k]! - runs[k - 1]!).toBeLessThan(6_000);
  });

  it("a tick that comes while its previous run's answer waits in the socket (the loop was held up) runs, not skipped", async () => {
    // The run's answer comes over a real socket: the run asks at 950 ms, the server answers at
    // once and then holds up the whole process 200 ms, past the next tick (due at 1,000 ms). After
    // the hold-up the timers run before the loop polls again and reads the answer.
    const server = createServer((socket) => {
      socket.on('data', () => {
        socket.write('answer');
        const until = performance.now() + 200;
        while (performance.now() < until);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client: Socket = connect((server.address() as { port: number }).port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    try {
      const runs: number[] = [];
      const skips: string[] = [];
      const start = performance.now();
      scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
      scheduler.add(
        job({
          run: () => {
            runs.push(performance.now() - start);
            if (runs.length > 1) return Promise.resolve();
            setTimeout(() => client.write('question'), 950);
            return new Promise<void>((resolve) => client.once('data', () => resolve()));
          },
          onSkipped: (why) => skips.push(why),
        }),
      );
      scheduler.start();
      await waitUntil(() => runs.length >= 2 || skips.length > 0, 'the second tick');
      expect(skips).toEqual([]);
      expect(runs).toHaveLength(2);
      expect(runs[1]!).toBeGreaterThanOrEqual(1_100);
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('moves ticks by at most the jitter, without drifting', async () => {
    useFakeClock();
    const values = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
    let i = 0;
    const runs: number[] = [];
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => values[i++ % values.length]!, onError: () => undefined });
    const start = Date.now();
    scheduler.add(job({ schedule: { every: 1_000, jitter: 0.1 }, run: async () => void runs.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000);
    // random 0 → first tick at 0; then alternately +1100 (random 1 → +10 %) and +900 (random 0 → -10 %).
    expect(runs).toEqual([0, 1_100, 2_000, 3_100, 4_000, 5_100, 6_000]);
  });

  it('counts a tick as skipped while the previous run is in flight, and never overlaps', async () => {
    useFakeClock();
    let inFlight = 0;
    let maxInFlight = 0;
    let skipped = 0;
    let finish: (() => void) | undefined;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    scheduler.add(
      job({
        run: () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          return new Promise<void>((resolve) => (finish = () => (inFlight--, resolve())));
        },
        onSkipped: () => void skipped++,
      }),
    );
    scheduler.start();
    await vi.advanceTimersByTimeAsync(3_500);
    expect(maxInFlight).toBe(1);
    expect(skipped).toBe(3);
    finish!();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(inFlight).toBe(1); // the next tick after the run ended started a new one
    expect(skipped).toBe(3);
    finish!();
  });

  it('reports a run that throws and keeps scheduling', async () => {
    useFakeClock();
    const errors: unknown[] = [];
    let runs = 0;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: (_job, error) => errors.push(error) });
    scheduler.add(
      job({
        run: async () => {
          runs++;
          throw new Error('boom');
        },
      }),
    );
    scheduler.start();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(runs).toBe(3);
    expect(errors).toHaveLength(3);
  });

  it('stops ticking at close and waits for runs in flight', async () => {
    useFakeClock();
    let runs = 0;
    let ended = false;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    scheduler.add(
      job({
        run: () => {
          runs++;
          return new Promise<void>((resolve) =>
            setTimeout(() => {
              ended = true;
              resolve();
            }, 300),
          );
        },
      }),
    );
    scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const closing = scheduler.close();
    scheduler = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    await closing;
    expect(ended).toBe(true);
    expect(runs).toBe(1);
  });

  it('removes many jobs in one call: it waits for all their runs in flight, and the rest run on', async () => {
    useFakeClock();
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    const runs = new Map<string, number>();
    const release: (() => void)[] = [];
    for (let n = 0; n < 100; n++) {
      const key = `p${n}@blue`;
      runs.set(key, 0);
      // The first 50 hang until released; the others answer at once.
      const run = () => {
        runs.set(key, runs.get(key)! + 1);
        return n < 50 ? new Promise<void>((resolve) => release.push(resolve)) : Promise.resolve();
      };
      scheduler.add(job({ key, run }));
    }
    scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(release).toHaveLength(50);
    let removed = false;
    const gone = [...Array(50).keys()].map((n) => `p${n}@blue`);
    const removing = scheduler.remove([...gone, 'unknown@blue']).then(() => (removed = true));
    // Released last to first: the removal ends with the last run still in flight, whichever it is.
    for (const resolve of release.slice(1).reverse()) resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(removed).toBe(false);
    release[0]!();
    await removing;
    await vi.advanceTimersByTimeAsync(3_000);
    for (const [key, count] of runs) expect(count, key).toBe(gone.includes(key) ? 1 : 4);
  });

  it('runs a cron job through node-cron', async () => {
    let runs = 0;
    scheduler = new ProbeScheduler({ now: () => Date.now(), onError: () => undefined });
    scheduler.add(job({ schedule: { cron: '* * * * * *', timezone: 'America/New_York' }, run: async () => void runs++ }));
    scheduler.start();
    // node-cron ticks on the wall clock's seconds: wait for two runs (on a loaded machine a tick
    // can come late) rather than a fixed 2.3 s.
    await waitUntil(() => runs >= 2, 'two runs of the every-second cron job');
    expect(runs).toBeGreaterThanOrEqual(2);
    await scheduler.close();
    const after = runs;
    scheduler = undefined;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(runs).toBe(after);
  });
});

/**
 * Confirmation re-runs. A scripted target answers each run with the next outcome of its script
 * (true = ok); the job asks for re-runs exactly as the agent does (nextConfirmation on a live
 * environment), so the sequences below are the agent's, paced by the real scheduler on fake timers.
 */
describe('ProbeScheduler confirmation re-runs', () => {
  interface Run {
    at: number;
    ok: boolean;
    confirmation: Confirmation | undefined;
  }

  function scriptedJob(
    key: string,
    script: boolean[],
    policy: ConfirmPolicy | undefined,
    runs: Run[],
    start: number,
    overrides: Partial<ScheduledJob> = {},
  ): ScheduledJob {
    let up: boolean | undefined;
    let n = 0;
    return job({
      key,
      schedule: { every: 1_000, jitter: 0 },
      confirm: policy,
      run: async (confirmation) => {
        const ok = script[Math.min(n++, script.length - 1)]!;
        runs.push({ at: Date.now() - start, ok, confirmation });
        const result = {
          probe: key,
          env: 'blue',
          ok,
          durationMs: 1,
          startedAt: Date.now(),
          checks: [],
          extracted: {},
          ...(confirmation ? { confirmation } : {}),
        };
        const wasUp = up;
        up = ok;
        return nextConfirmation(result, wasUp, true);
      },
      ...overrides,
    });
  }

  const POLICY: ConfirmPolicy = { count: 2, spacingMs: 100, maxPerSecond: 5, group: 'blue' };
  const tag = (run: Run) => `${run.at} ${run.ok ? 'ok' : 'FAIL'}${run.confirmation ? ` ${run.confirmation.of}#${run.confirmation.attempt}` : ''}`;

  // First tick at 0 (random 0), then every 1 000 ms.
  const CASES: { name: string; script: boolean[]; policy?: Partial<ConfirmPolicy>; until: number; runs: string[] }[] = [
    {
      name: 'a failure is re-probed twice at the spacing: three in a row within 0.2 s',
      script: [true, false, false, false, false],
      until: 1_500,
      runs: ['0 ok', '1000 FAIL', '1100 FAIL failure#1', '1200 FAIL failure#2'],
    },
    {
      name: 'a success ends a failure confirmation',
      script: [true, false, true, true],
      until: 1_500,
      runs: ['0 ok', '1000 FAIL', '1100 ok failure#1'],
    },
    {
      name: 'a target that stays down is not re-probed again after its first run',
      script: [false, false, false, false, false, false, false],
      until: 2_500,
      runs: ['0 FAIL', '100 FAIL failure#1', '200 FAIL failure#2', '1000 FAIL', '2000 FAIL'],
    },
    {
      name: 'a recovery is confirmed the same way (successes in a row before a rule resolves)',
      script: [false, false, false, true, true, true, true],
      until: 1_500,
      runs: ['0 FAIL', '100 FAIL failure#1', '200 FAIL failure#2', '1000 ok', '1100 ok recovery#1', '1200 ok recovery#2'],
    },
    {
      name: 'count and spacing come from the policy',
      script: [true, false, false, false, false, false],
      policy: { count: 3, spacingMs: 50 },
      until: 1_500,
      runs: ['0 ok', '1000 FAIL', '1050 FAIL failure#1', '1100 FAIL failure#2', '1150 FAIL failure#3'],
    },
    {
      name: 'no policy: no re-runs',
      script: [true, false, false, false],
      policy: { count: 0 },
      until: 2_500,
      runs: ['0 ok', '1000 FAIL', '2000 FAIL'],
    },
  ];

  it.each(CASES)('$name', async ({ script, policy, until, runs: expected }) => {
    useFakeClock();
    const runs: Run[] = [];
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    const merged = { ...POLICY, ...policy };
    scheduler.add(scriptedJob('health@blue', script, merged.count === 0 ? undefined : merged, runs, Date.now()));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(until);
    expect(runs.map(tag)).toEqual(expected);
  });

  it('caps re-runs per group and second, over all its jobs, and reports what it withheld', async () => {
    useFakeClock();
    const runs: Run[] = [];
    let capped = 0;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    const policy = { ...POLICY, maxPerSecond: 3 };
    const start = Date.now();
    for (const name of ['health', 'universe', 'positions']) {
      scheduler.add(scriptedJob(`${name}@blue`, [false], policy, runs, start, { onCapped: () => void capped++ }));
    }
    // Another environment has a cap of its own.
    const other: Run[] = [];
    scheduler.add(scriptedJob('health@green', [false], { ...policy, group: 'green' }, other, start));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(900);
    const confirmations = runs.filter((run) => run.confirmation);
    expect(confirmations).toHaveLength(3);
    expect(capped).toBe(3);
    expect(other.filter((run) => run.confirmation)).toHaveLength(2);
  });

  it('never overlaps: a scheduled tick during a re-run in flight is owed and runs right after it', async () => {
    useFakeClock();
    const runs: { at: number; confirmation: Confirmation | undefined }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let skipped = 0;
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    const start = Date.now();
    scheduler.add(
      job({
        schedule: { every: 1_000, jitter: 0 },
        confirm: { ...POLICY, count: 1, spacingMs: 650 },
        onSkipped: () => void skipped++,
        run: async (confirmation) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          runs.push({ at: Date.now() - start, confirmation });
          // Every run takes 300 ms: the re-run at 950 ms is still in flight at the 1 000 ms tick.
          await new Promise((resolve) => setTimeout(resolve, 300));
          inFlight--;
          return confirmation ? undefined : 'failure';
        },
      }),
    );
    scheduler.start();
    await vi.advanceTimersByTimeAsync(1_600);
    expect(maxInFlight).toBe(1);
    expect(skipped).toBe(0);
    expect(runs.map((run) => `${run.at}${run.confirmation ? ' re-run' : ''}`)).toEqual(['0', '950 re-run', '1250']);
  });

  it('lets a scheduled tick take the place of a re-run still waiting out its spacing', async () => {
    useFakeClock();
    const runs: Run[] = [];
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    scheduler.add(scriptedJob('health@blue', [false, false, false, false], { ...POLICY, count: 1, spacingMs: 1_500 }, runs, Date.now()));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(runs.map(tag)).toEqual(['0 FAIL', '1000 FAIL', '2000 FAIL']);
  });

  it('cancels waiting re-runs at close', async () => {
    useFakeClock();
    const runs: Run[] = [];
    scheduler = new ProbeScheduler({ now: () => Date.now(), random: () => 0, onError: () => undefined });
    scheduler.add(scriptedJob('health@blue', [false], POLICY, runs, Date.now()));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(50);
    await scheduler.close();
    scheduler = undefined;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runs.map(tag)).toEqual(['0 FAIL']);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProbeScheduler, type ScheduledJob } from '../../agent/probe-scheduler.js';

let scheduler: ProbeScheduler | undefined;
afterEach(async () => {
  await scheduler?.close();
  scheduler = undefined;
  vi.useRealTimers();
});

function job(overrides: Partial<ScheduledJob>): ScheduledJob {
  return { key: 'health@blue', schedule: { every: 1_000, jitter: 0 }, run: async () => undefined, onSkipped: () => undefined, ...overrides };
}

describe('ProbeScheduler', () => {
  it('runs an interval job every interval, its first tick within the first second', async () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    scheduler = new ProbeScheduler({ random: () => 0.5, onError: () => undefined });
    const start = Date.now();
    scheduler.add(job({ schedule: { every: 5_000, jitter: 0 }, run: async () => void runs.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(20_600);
    expect(runs).toEqual([500, 5_500, 10_500, 15_500, 20_500]);
  });

  it('moves ticks by at most the jitter, without drifting', async () => {
    vi.useFakeTimers();
    const values = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
    let i = 0;
    const runs: number[] = [];
    scheduler = new ProbeScheduler({ random: () => values[i++ % values.length]!, onError: () => undefined });
    const start = Date.now();
    scheduler.add(job({ schedule: { every: 1_000, jitter: 0.1 }, run: async () => void runs.push(Date.now() - start) }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000);
    // random 0 → first tick at 0; then alternately +1100 (random 1 → +10 %) and +900 (random 0 → -10 %).
    expect(runs).toEqual([0, 1_100, 2_000, 3_100, 4_000, 5_100, 6_000]);
  });

  it('counts a tick as skipped while the previous run is in flight, and never overlaps', async () => {
    vi.useFakeTimers();
    let inFlight = 0;
    let maxInFlight = 0;
    let skipped = 0;
    let finish: (() => void) | undefined;
    scheduler = new ProbeScheduler({ random: () => 0, onError: () => undefined });
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
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let runs = 0;
    scheduler = new ProbeScheduler({ random: () => 0, onError: (_job, error) => errors.push(error) });
    scheduler.add(job({ run: async () => { runs++; throw new Error('boom'); } }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(2_500);
    expect(runs).toBe(3);
    expect(errors).toHaveLength(3);
  });

  it('stops ticking at close and waits for runs in flight', async () => {
    vi.useFakeTimers();
    let runs = 0;
    let ended = false;
    scheduler = new ProbeScheduler({ random: () => 0, onError: () => undefined });
    scheduler.add(job({ run: () => { runs++; return new Promise<void>((resolve) => setTimeout(() => { ended = true; resolve(); }, 300)); } }));
    scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const closing = scheduler.close();
    scheduler = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    await closing;
    expect(ended).toBe(true);
    expect(runs).toBe(1);
  });

  it('runs a cron job through node-cron', async () => {
    let runs = 0;
    scheduler = new ProbeScheduler({ onError: () => undefined });
    scheduler.add(job({ schedule: { cron: '* * * * * *', timezone: 'America/New_York' }, run: async () => void runs++ }));
    scheduler.start();
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    expect(runs).toBeGreaterThanOrEqual(2);
    await scheduler.close();
    const after = runs;
    scheduler = undefined;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(runs).toBe(after);
  });
});

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GROWING_PERCENT, HeapGrowth, STEADY_PERCENT, watchHeapGrowth } from '../../../agent/cli/heap-growth.js';

const MB = 1024 * 1024;

/** Feed one collection at a time: `[at ms, live MB]` pairs; returns the percentage after each. */
function feed(policy: HeapGrowth, collections: Array<[number, number]>): number[] {
  return collections.map(([at, live]) => policy.collected([at], live * MB));
}

describe('HeapGrowth: how far the old generation may grow past what is alive', () => {
  it('starts at a quarter, and stays there when a start makes what it holds in one step', () => {
    const policy = new HeapGrowth();
    expect(policy.percent).toBe(STEADY_PERCENT);
    // The first collection only tells where the heap is; one step up is the series made.
    expect(
      feed(policy, [
        [300, 12],
        [2_000, 34],
        [12_000, 33],
        [22_000, 34],
      ]),
    ).toEqual([25, 25, 25, 25]);
  });

  it('grows by half while the heap grows at two collections in a row, and by a quarter once it holds steady', () => {
    const policy = new HeapGrowth();
    // A reload adds thousands of series: alive grows past a quarter more, twice.
    expect(
      feed(policy, [
        [0, 40],
        [10_000, 40],
        [20_000, 55],
        [21_000, 80],
        [22_000, 110],
        [30_000, 112],
      ]),
    ).toEqual([25, 25, 25, 50, 50, 25]);
    // Within a quarter of 110 MB either way it stays steady; below that it shrank: a quarter.
    expect(
      feed(policy, [
        [50_000, 130],
        [60_000, 90],
        [70_000, 60],
        [80_000, 60],
      ]),
    ).toEqual([25, 25, 25, 25]);
  });

  it('goes back to a quarter at once when the heap shrinks while at a half', () => {
    const policy = new HeapGrowth();
    feed(policy, [
      [0, 40],
      [1_000, 60],
      [2_000, 90],
    ]);
    expect(policy.percent).toBe(GROWING_PERCENT);
    expect(feed(policy, [[3_000, 50]])).toEqual([25]);
  });

  it('leaves a quarter when full collections come less than the minimum apart, judged from the first collection at a settled size', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    // The first look sets the size; the next collection starts the count.
    expect(
      feed(policy, [
        [0, 120],
        [800, 121],
      ]),
    ).toEqual([25, 25]);
    expect(feed(policy, [[1_600, 122]])).toEqual([50]);
  });

  it('does not judge intervals before judgeFrom: a start comes with close collections whatever the setting', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000, judgeFrom: 10_000 });
    expect(
      feed(policy, [
        [400, 50],
        [1_500, 53],
        [2_100, 58],
        [2_800, 57],
        [4_600, 58],
        [8_500, 57],
        [12_500, 57],
        [17_300, 58],
      ]),
    ).toEqual([25, 25, 25, 25, 25, 25, 25, 25]);
    // From judgeFrom on, collections a second apart are judged as always.
    const busy = new HeapGrowth({ minIntervalMs: 3_000, judgeFrom: 10_000 });
    const times = Array.from({ length: 16 }, (_, i) => 600 + i * 700);
    // 10.4 s is the first collection judged, 11.1 s the second: 0.7 s apart.
    expect(
      feed(
        busy,
        times.map((at) => [at, 120]),
      ),
    ).toEqual([...Array<number>(15).fill(25), 50]);
  });

  it('judges a quarter on the mean interval: one short interval among longer ones does not end it', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    expect(
      feed(policy, [
        [0, 60],
        [2_000, 60],
        [6_200, 61],
        [10_500, 60],
        [12_000, 60],
      ]),
    ).toEqual([25, 25, 25, 25, 25]);
  });

  it('after a failure, tries a quarter again only when a half spaces full collections twice the minimum apart, twice that after each further failure', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 60],
      [100, 60],
      [2_000, 60],
    ]);
    expect(policy.percent).toBe(GROWING_PERCENT);
    // After one failure a second try needs 6 s at a half (a quarter would give about 3).
    expect(
      feed(policy, [
        [5_000, 61],
        [10_000, 60],
      ]),
    ).toEqual([50, 50]);
    expect(feed(policy, [[17_000, 60]])).toEqual([25]);
    // It fails again: 6 s apart is no longer enough, 12 s is.
    expect(
      feed(policy, [
        [18_000, 60],
        [19_000, 59],
      ]),
    ).toEqual([25, 50]);
    expect(
      feed(policy, [
        [25_000, 60],
        [31_000, 60],
        [55_000, 60],
      ]),
    ).toEqual([50, 50, 25]);
  });

  it('after a failure, a heap that grows stays at a half; one that shrinks starts over', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 100],
      [100, 100],
      [900, 100],
    ]);
    expect(policy.percent).toBe(GROWING_PERCENT);
    expect(
      feed(policy, [
        [2_500, 130],
        [3_300, 131],
      ]),
    ).toEqual([50, 50]);
    expect(
      feed(policy, [
        [4_100, 90],
        [30_000, 90],
      ]),
    ).toEqual([25, 25]);
  });

  it('after a shrink and then a failure, waits for evidence before a quarter again (no leftover from an earlier growth)', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    expect(
      feed(policy, [
        [0, 40],
        [10_000, 60],
        [20_000, 90],
        [30_000, 50],
        [31_000, 50],
        [32_000, 50],
        [33_000, 50],
      ]),
    ).toEqual([25, 25, 50, 25, 25, 50, 50]);
  });

  it('takes a batch of notifications as one look: the interval between its last two collections', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    policy.collected([0], 100 * MB);
    expect(policy.collected([5_000, 9_000], 100 * MB)).toBe(STEADY_PERCENT);
    // Two more, 0.5 s apart: the mean over the four since the size was set is under 3 s.
    expect(policy.collected([9_300, 9_500], 100 * MB)).toBe(GROWING_PERCENT);
    expect(policy.collected([], 100 * MB)).toBe(GROWING_PERCENT);
  });
});

describe('watchHeapGrowth', () => {
  it("applies the policy's answers to the real full collections of this process", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const applied: string[] = [];
    const watch = watchHeapGrowth({ apply: (flag) => applied.push(flag), minIntervalMs: 60_000, judgeFrom: 0 });
    const kept = Array.from({ length: 50_000 }, (_, i) => ({ i }));
    try {
      for (let round = 0; round < 20 && applied.length < 2; round++) {
        gc();
        // The observer hears of a collection a moment after it ends.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      watch.stop();
    }
    expect(kept.length).toBe(50_000);
    // Where it starts; a half once the collections after the first came closer than a minute apart.
    expect(applied).toEqual(['--heap-growing-percent=25', '--heap-growing-percent=50']);
  });
});

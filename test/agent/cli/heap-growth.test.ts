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
  it('starts growing by half, and by a quarter once what is alive holds steady', () => {
    const policy = new HeapGrowth();
    expect(policy.percent).toBe(GROWING_PERCENT);
    // The first collection only tells where the heap is; the second, at the same size, settles it.
    expect(
      feed(policy, [
        [300, 12],
        [1_000, 34],
        [1_200, 33],
      ]),
    ).toEqual([50, 50, 25]);
  });

  it('goes back to growing by half when the heap changes size, up or down, and settles again', () => {
    const policy = new HeapGrowth();
    feed(policy, [
      [0, 40],
      [500, 40],
    ]);
    expect(policy.percent).toBe(STEADY_PERCENT);
    // A reload adds series: alive grows past a quarter more than where it settled.
    expect(
      feed(policy, [
        [20_000, 55],
        [30_000, 56],
      ]),
    ).toEqual([50, 25]);
    // Within a quarter of 55 MB either way it stays steady; below that it changed size again.
    expect(
      feed(policy, [
        [50_000, 66],
        [60_000, 44],
        [70_000, 40],
        [80_000, 40],
      ]),
    ).toEqual([25, 25, 50, 25]);
  });

  it('leaves a quarter when full collections come less than the minimum apart, judged from the first collection after the change', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 120],
      [800, 121],
    ]);
    expect(policy.percent).toBe(STEADY_PERCENT);
    // The limit that ended the next collection was set before the change: nothing to judge yet.
    expect(feed(policy, [[1_600, 122]])).toEqual([25]);
    expect(feed(policy, [[2_400, 121]])).toEqual([50]);
  });

  it('judges a quarter on the mean interval: one short interval among longer ones does not end it', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 60],
      [100, 60],
    ]);
    expect(
      feed(policy, [
        [2_000, 60],
        [6_200, 61],
        [10_500, 60],
        [12_000, 60],
      ]),
    ).toEqual([25, 25, 25, 25]);
  });

  it('after a failure, tries a quarter again only when a half spaces full collections four times the minimum apart', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 60],
      [100, 60],
      [4_000, 60],
      [6_900, 60],
    ]);
    expect(policy.percent).toBe(GROWING_PERCENT);
    // After one failure a second try needs 12 s at a half (a quarter would give about 6).
    expect(
      feed(policy, [
        [12_800, 61],
        [18_700, 60],
      ]),
    ).toEqual([50, 50]);
    expect(feed(policy, [[37_000, 60]])).toEqual([25]);
    expect(
      feed(policy, [
        [41_000, 60],
        [45_000, 59],
        [49_500, 60],
      ]),
    ).toEqual([25, 25, 25]);
  });

  it('after a failure, a heap that grows stays at a half; one that shrinks starts over', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    feed(policy, [
      [0, 100],
      [100, 100],
      [900, 100],
      [1_700, 100],
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
        [4_900, 90],
      ]),
    ).toEqual([50, 25]);
  });

  it('takes a batch of notifications as one look: the interval between its last two collections', () => {
    const policy = new HeapGrowth({ minIntervalMs: 3_000 });
    policy.collected([0], 100 * MB);
    expect(policy.collected([100, 200, 300], 100 * MB)).toBe(STEADY_PERCENT);
    // Three more under a quarter, the last two 0.5 s apart.
    expect(policy.collected([5_000, 9_000, 9_500], 100 * MB)).toBe(GROWING_PERCENT);
    expect(policy.collected([], 100 * MB)).toBe(GROWING_PERCENT);
  });
});

describe('watchHeapGrowth', () => {
  it("applies the policy's answers to the real full collections of this process", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const applied: string[] = [];
    const watch = watchHeapGrowth({ apply: (flag) => applied.push(flag), minIntervalMs: 60_000 });
    const kept = Array.from({ length: 50_000 }, (_, i) => ({ i }));
    try {
      for (let round = 0; round < 20 && applied.length < 3; round++) {
        gc();
        // The observer hears of a collection a moment after it ends.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      watch.stop();
    }
    expect(kept.length).toBe(50_000);
    // Where it starts; a quarter once two collections found the same heap; a half again once two
    // more came closer than a minute apart.
    expect(applied).toEqual(['--heap-growing-percent=50', '--heap-growing-percent=25', '--heap-growing-percent=50']);
  });
});

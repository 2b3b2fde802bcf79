import { describe, expect, it } from 'vitest';
import { SLEW, steadyClock } from '../../probes/steady-clock.js';

/** Scripted sources: the monotonic clock advances by `pass`, the wall clock by `pass` and `step`. */
function script(startWall = 1_700_000_000_000) {
  const t = { wall: startWall, monotonic: 5_000 };
  return {
    sources: { wall: () => t.wall, monotonic: () => t.monotonic },
    pass(ms: number) {
      t.wall += ms;
      t.monotonic += ms;
    },
    step(ms: number) {
      t.wall += ms;
    },
    get wall() {
      return t.wall;
    },
  };
}

describe('steadyClock', () => {
  it('reads wall time while the wall clock does not step', () => {
    const s = script();
    const now = steadyClock(s.sources);
    expect(now()).toBe(s.wall);
    for (let i = 0; i < 100; i++) {
      s.pass(37);
      expect(now()).toBe(s.wall);
    }
  });

  it('stepped back an hour, keeps going forward and takes the step in at most 1 ms in 20', () => {
    const s = script();
    const now = steadyClock(s.sources);
    s.pass(1_000);
    let last = now();
    s.step(-3_600_000);
    for (let i = 0; i < 50; i++) {
      s.pass(1_000);
      const read = now();
      // 1,000 ms passed: the clock moved between 950 and 1,000 of them (whole ms).
      expect(read - last).toBeGreaterThanOrEqual(1_000 * (1 - SLEW) - 1);
      expect(read - last).toBeLessThanOrEqual(1_000);
      last = read;
    }
    expect(last - s.wall).toBeGreaterThan(3_600_000 - 51 * 1_000 * SLEW - 1);
  });

  it('stepped forward an hour, gains at most 1 ms in 20, never jumps', () => {
    const s = script();
    const now = steadyClock(s.sources);
    let last = now();
    s.step(3_600_000);
    for (let i = 0; i < 50; i++) {
      s.pass(200);
      const read = now();
      expect(read - last).toBeGreaterThanOrEqual(200);
      expect(read - last).toBeLessThanOrEqual(200 * (1 + SLEW) + 1);
      last = read;
    }
  });

  it('catches up a step in full, then follows the wall clock again', () => {
    const s = script();
    const now = steadyClock(s.sources);
    now();
    s.step(-60_000);
    // A minute back takes 20 minutes to take in at 1 ms in 20.
    for (let i = 0; i < 20 * 60 - 1; i++) {
      s.pass(1_000);
      now();
    }
    expect(now()).toBeGreaterThan(s.wall);
    s.pass(2_000);
    expect(now()).toBe(s.wall);
    s.pass(1_234);
    expect(now()).toBe(s.wall);
  });

  it('reads the same time twice when no time passed, and never less', () => {
    const s = script();
    const now = steadyClock(s.sources);
    const first = now();
    s.step(-10_000);
    expect(now()).toBe(first);
  });
});

import { describe, expect, it } from 'vitest';
import { TurnQueue } from '../../../agent/http/turn-queue.js';

/** Calls `sample` once every turn of the event loop until stopped. */
function everyTurn(sample: () => void): { stop(): void } {
  let running = true;
  const tick = () => {
    if (!running) return;
    sample();
    setImmediate(tick);
  };
  setImmediate(tick);
  return { stop: () => void (running = false) };
}

describe('TurnQueue', () => {
  it('runs one slice per turn of the event loop for all callers together, first come first served', async () => {
    const queue = new TurnQueue();
    const order: string[] = [];
    const perTurn: number[] = [];
    let seen = 0;
    const watch = everyTurn(() => {
      perTurn.push(queue.granted - seen);
      seen = queue.granted;
    });
    const caller = async (name: string) => {
      for (let i = 0; i < 20; i++) await queue.run(() => order.push(`${name}${i}`));
    };
    await Promise.all([caller('a'), caller('b'), caller('c')]);
    watch.stop();
    expect(queue.granted).toBe(60);
    expect(Math.max(...perTurn)).toBe(1);
    // Round robin: each caller's next slice queues behind the others'.
    expect(order.slice(0, 6)).toEqual(['a0', 'b0', 'c0', 'a1', 'b1', 'c1']);
  });

  it('runs one slice per turn after a pause too (regression: a slice granted by its pause timer ran in the same turn as the one before, with no I/O between)', async () => {
    // Slices of 1 ms use the burst up, then the queue pauses on timers of about a millisecond.
    // Other work after a slice in the same turn (here 1.5 ms of it) made the timer due at the
    // next timers phase, which comes before that turn's I/O: two slices back to back.
    const queue = new TurnQueue();
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    const perTurn: number[] = [];
    let seen = 0;
    const watch = everyTurn(() => {
      perTurn.push(queue.granted - seen);
      seen = queue.granted;
    });
    const slices = Promise.all(Array.from({ length: 40 }, () => queue.run(() => busy(1))));
    const neighbour = everyTurn(() => busy(1.5));
    await slices;
    watch.stop();
    neighbour.stop();
    expect(queue.granted).toBe(40);
    expect(Math.max(...perTurn)).toBe(1);
  });

  it("resolves with the slice's result, and rejects with what it threw", async () => {
    const queue = new TurnQueue();
    expect(await queue.run(() => 42)).toBe(42);
    await expect(
      queue.run(() => {
        throw new Error('bug');
      }),
    ).rejects.toThrow('bug');
    expect(await queue.run(() => 'after')).toBe('after');
  });

  it('once closed, tells every waiting and later caller to stop without running their slices', async () => {
    const queue = new TurnQueue();
    let ran = 0;
    const waiting = [queue.run(() => ran++), queue.run(() => ran++)];
    queue.close();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
    expect(await queue.run(() => ran++)).toBeUndefined();
    expect(ran).toBe(0);
  });

  it('pauses between slices once they have used their share of the time, so the process sleeps', async () => {
    const queue = new TurnQueue();
    // Slices of 4 ms of busy work: past the 10 ms burst, the queue waits on a timer, and turns go by without a slice.
    const busy = () => {
      const until = performance.now() + 4;
      while (performance.now() < until);
    };
    let idleTurns = 0;
    let seen = 0;
    const watch = everyTurn(() => {
      // Between the first slice and the last, a turn without a slice is a pause.
      if (queue.granted > 0 && queue.granted < 10 && queue.granted === seen) idleTurns++;
      seen = queue.granted;
    });
    for (let i = 0; i < 10; i++) await queue.run(busy);
    watch.stop();
    expect(idleTurns).toBeGreaterThan(0);
  });
});

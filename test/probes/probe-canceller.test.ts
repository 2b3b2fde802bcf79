import { describe, expect, it } from 'vitest';
import { ProbeCanceller, type Cancellable } from '../../probes/probe-canceller.js';

/** A probe in flight that counts its cuts. */
function call(): Cancellable & { cuts: number } {
  const probe = { cuts: 0, cut: () => void probe.cuts++ };
  return probe;
}

describe('ProbeCanceller', () => {
  it('cuts exactly the probes still in flight, once each, whatever order they joined and left in', () => {
    const canceller = new ProbeCanceller();
    const [a, b, c, d, e] = [call(), call(), call(), call(), call()];
    for (const probe of [a, b, c]) expect(canceller.join(probe)).toBe(true);
    canceller.leave(a); // the first to join leaves first
    expect(canceller.join(d)).toBe(true); // and a newcomer takes its place
    canceller.leave(c);
    expect(canceller.join(e)).toBe(true);
    expect(canceller.join(e)).toBe(true); // joining twice is still one probe in flight
    canceller.leave(d);
    canceller.cancel();
    expect([a, b, c, d, e].map((probe) => probe.cuts)).toEqual([0, 1, 0, 0, 1]);
    canceller.cancel();
    expect([a, b, c, d, e].map((probe) => probe.cuts)).toEqual([0, 1, 0, 0, 1]);
  });

  it('holds a lone probe after the others have come and gone', () => {
    const canceller = new ProbeCanceller();
    const [a, b] = [call(), call()];
    canceller.join(a);
    canceller.join(b);
    canceller.leave(a);
    canceller.leave(b);
    const c = call();
    canceller.join(c);
    canceller.cancel();
    expect([a.cuts, b.cuts, c.cuts]).toEqual([0, 0, 1]);
  });

  it('refuses every probe once cancelled', () => {
    const canceller = new ProbeCanceller();
    canceller.cancel();
    const late = call();
    expect(canceller.join(late)).toBe(false);
    expect(canceller.cancelled).toBe(true);
    expect(late.cuts).toBe(0);
  });

  it('follows a signal: cancels when it aborts, or at once when it already has', () => {
    const controller = new AbortController();
    const canceller = ProbeCanceller.following(controller.signal);
    const probe = call();
    canceller.join(probe);
    controller.abort();
    expect(probe.cuts).toBe(1);
    expect(ProbeCanceller.following(AbortSignal.abort()).cancelled).toBe(true);
  });
});

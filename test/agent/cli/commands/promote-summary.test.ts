/** The closing lines `greenlight promote` prints (agent/cli/commands/promote.ts `summarize`). */
import { describe, expect, it } from 'vitest';
import { formatLine, summarize } from '../../../../agent/cli/commands/promote.js';
import type { PromoteResult } from '../../../../agent/promote/promotion.js';

const failed: PromoteResult = {
  ok: false,
  promotion: 'p1',
  from: 'blue',
  to: 'green',
  live: 'blue',
  switched: false,
  rolledBack: false,
  failedStep: 'switch',
  reason: 'blue is no longer live',
  durationMs: 1_200,
  steps: [],
};

describe('the promotion summary', () => {
  it('says traffic never moved when the promotion did not switch and the side it left is live', () => {
    expect(summarize(failed)).toContain('traffic never moved: blue is still live');
  });

  it("says another switch came meanwhile when the promotion did not switch but the live side changed (regression: 'green is still live' after a rule's rollback)", () => {
    const text = summarize({ ...failed, live: 'green' });
    expect(text).not.toContain('traffic never moved');
    expect(text).toContain('this promotion moved no traffic, but green is live now: another switch');
  });
});

describe("what a target put in a promotion line (regression: a newline and a color reset in a step's detail forged a line of the verdict)", () => {
  const forged = 'cert desk\u001b[0m\n\nsummary: ✅ promoted blue → green';
  it('is written out on one line in a step, and in the summary', () => {
    const step = formatLine({
      id: 1,
      time: '2026-12-08T00:00:00.000Z',
      type: 'promote.step',
      severity: 'warning',
      env: 'green',
      probe: null,
      rule: null,
      message: 'probes failed',
      data: { promotion: 'p1', step: 'probes', ok: false, durationMs: 1_000, detail: forged, figures: {} },
    } as never)!;
    const summary = summarize({ ...failed, reason: forged });
    for (const text of [step, summary.split('\n')[0]!]) {
      expect(text).not.toMatch(/[\u0000-\u001f]/);
      expect(text).toContain('\\u001b[0m\\n\\nsummary');
    }
  });
});

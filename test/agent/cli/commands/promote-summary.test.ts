/** The closing lines `greenlight promote` prints (agent/cli/commands/promote.ts `summarize`). */
import { describe, expect, it } from 'vitest';
import { summarize } from '../../../../agent/cli/commands/promote.js';
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

import { describe, expect, it } from 'vitest';
import { demoCommand } from '../../agent/commands/demo.js';

describe('greenlight demo', () => {
  it('scripts a fault on the live environment: pending → firing → rollback → safe mode → alert delivered, then exits 0', async () => {
    const base = 23_000 + Math.floor(Math.random() * 1_000) * 3;
    const out: string[] = [];
    const env = {
      BLUE_URL: `http://127.0.0.1:${base}`,
      GREEN_URL: `http://127.0.0.1:${base + 1}`,
      GREENLIGHT_LISTEN: `127.0.0.1:${base + 2}`,
      GREENLIGHT_PROBE_INTERVAL: '250ms',
    };
    const code = await demoCommand({ keepRunning: false, stepMs: 500 }, { out: (text) => out.push(text), err: (text) => out.push(text), env });
    const text = out.join('\n');
    expect(code).toBe(0);
    expect(text).toContain(`curl http://127.0.0.1:${base + 2}/metrics`);
    const at = (pattern: RegExp) => text.search(pattern);
    // The incident's actions run side by side: the page may reach the receiver before or after the
    // switch (which verifies green first). The incident is about blue, so it resolves as soon as
    // green is judged healthy: its resolved page may come before the demo's summary line.
    const order = [
      /probe\.down\s+universe on blue \(live\) is failing: assertion: \$\.universe \(\[\]\) is empty/,
      /rule\.pending\s+live-universe-failing pending/,
      /rule\.firing\s+live-universe-failing firing/,
      /traffic\.switched live traffic switched blue → green/,
      /live is now green; blue's flags are in safe mode \(FORCE_V2_FALLBACK=true, ALPHASTACK_V3_ENABLED=false, ALPHASTACK_PROTECTION=true\)/,
    ].map(at);
    expect(order.every((index) => index >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const paged = at(/receiver got a firing alert/);
    const resolved = at(/receiver got a resolved alert/);
    expect(paged).toBeGreaterThan(order[2]!);
    expect(resolved).toBeGreaterThan(Math.max(paged, order[3]!));
    expect(text).toMatch(/flag\.changed\s+emergency-rollback preset applied to blue/);
    expect(text).not.toMatch(/"level":/);
  });
});

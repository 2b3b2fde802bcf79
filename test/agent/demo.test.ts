import { describe, expect, it } from 'vitest';
import { demoCommand } from '../../agent/commands/demo.js';

describe('greenlight demo', () => {
  it('runs the scripted fault on the live environment, narrates it and exits 0', async () => {
    const base = 23_000 + Math.floor(Math.random() * 1_000) * 3;
    const out: string[] = [];
    const env = {
      BLUE_URL: `http://127.0.0.1:${base}`,
      GREEN_URL: `http://127.0.0.1:${base + 1}`,
      GREENLIGHT_LISTEN: `127.0.0.1:${base + 2}`,
      GREENLIGHT_PROBE_INTERVAL: '250ms',
    };
    const code = await demoCommand({ keepRunning: false, stepMs: 1_500 }, { out: (text) => out.push(text), err: (text) => out.push(text), env });
    const text = out.join('\n');
    expect(code).toBe(0);
    expect(text).toContain(`curl http://127.0.0.1:${base + 2}/metrics`);
    expect(text).toMatch(/probe\.down\s+health on blue \(live\) is failing: assertion: \$\.status \("degraded"\) not in \[healthy, ok\]/);
    expect(text).toMatch(/probe\.down\s+universe on blue \(live\) is failing: assertion: \$\.universe \(\[\]\) is empty/);
    expect(text).toMatch(/probe\.up\s+health on blue recovered/);
    expect(text).toMatch(/probe\.up\s+universe on blue recovered/);
    expect(text.indexOf('probe.down')).toBeLessThan(text.indexOf('probe.up'));
    expect(text).not.toMatch(/probe\.down\s+\S+ on green/);
  });
});

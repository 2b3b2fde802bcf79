import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ClockWatch } from '../../../agent/telemetry/clock-watch.js';

function watched() {
  const lines: { level: number; msg: string; gapMs: number }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as { level: number; msg: string; gapMs: number });
      done();
    },
  });
  const clocks = { wall: 1_700_000_000_000, steady: 1_700_000_000_000 };
  const watch = new ClockWatch({ steady: () => clocks.steady, wall: () => clocks.wall, logger: pino({ level: 'info' }, sink) });
  return { lines, clocks, watch };
}

describe('ClockWatch', () => {
  it('says nothing while the clocks agree within a second', () => {
    const { lines, clocks, watch } = watched();
    watch.check();
    clocks.wall += 900;
    watch.check();
    expect(lines).toEqual([]);
  });

  it('warns once when the wall clock steps back, with the gap and how long the catch-up takes, and says when it is over', () => {
    const { lines, clocks, watch } = watched();
    clocks.wall -= 3_600_000;
    watch.check();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, gapMs: -3_600_000 });
    expect(lines[0]!.msg).toContain('stepped back by about 3600 s');
    expect(lines[0]!.msg).toContain('over about 20 h');
    expect(lines[0]!.msg).toContain('event times are 3600 s ahead of the log');
    // Being taken in: the gap shrinks, nothing more is said.
    clocks.wall += 1_000_000;
    watch.check();
    expect(lines).toHaveLength(1);
    clocks.wall += 2_599_500;
    watch.check();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 30 });
    expect(lines[1]!.msg).toContain('event times and log times agree again');
  });

  it('warns again on a second step, and on a step the other way', () => {
    const { lines, clocks, watch } = watched();
    clocks.wall += 60_000;
    watch.check();
    expect(lines[0]!.msg).toContain('stepped forward by about 60 s');
    expect(lines[0]!.msg).toContain('over about 20 min');
    clocks.wall += 60_000;
    watch.check();
    expect(lines).toHaveLength(2);
    clocks.wall -= 240_000;
    watch.check();
    expect(lines).toHaveLength(3);
    expect(lines[2]!.msg).toContain('stepped back by about 120 s');
  });
});

import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { decideWindow, instantOf, localTimeOf } from '../../../agent/promote/deploy-window.js';

const NY = 'America/New_York';

function windows(extra = '') {
  return parseAgentConfig(`environments: { blue: { url: http://127.0.0.1:1 }, green: { url: http://127.0.0.1:2 } }
probes: [ { name: health, path: /api/health } ]
${extra}`).deployWindows;
}

describe('deploy windows (default: weekdays 16:00-18:00 ET feature, weekends major)', () => {
  const defaults = windows();
  it.each([
    // [what, instant (UTC), kind, open, next opening (UTC) when closed]
    ['Friday 16:30 EST is inside', '2026-11-27T21:30:00Z', 'feature', true, null],
    ['Friday 15:59 EST opens in a minute', '2026-11-27T20:59:00Z', 'feature', false, '2026-11-27T21:00:00.000Z'],
    ['Friday 18:00 EST has just closed; next is Monday 16:00', '2026-11-27T23:00:00Z', 'feature', false, '2026-11-30T21:00:00.000Z'],
    ['Saturday 03:04 EST: features wait for Monday', '2026-11-28T08:04:00Z', 'feature', false, '2026-11-30T21:00:00.000Z'],
    ['Saturday 03:04 EST: a major update may go', '2026-11-28T08:04:00Z', 'major', true, null],
    ['Monday 12:00 EST: majors wait for Saturday 00:00', '2026-11-30T17:00:00Z', 'major', false, '2026-12-05T05:00:00.000Z'],
    ['Friday 16:30 EDT (summer: UTC-4) is inside', '2026-07-10T20:30:00Z', 'feature', true, null],
    ['Friday 16:30 UTC-5 in summer is 17:30 local, still inside', '2026-07-10T21:30:00Z', 'feature', true, null],
    // 2026-03-08: clocks go 02:00 → 03:00 in New York. Sunday → the next feature window is Monday 16:00 EDT.
    ['the spring-forward Sunday points at Monday 16:00 EDT', '2026-03-08T06:30:00Z', 'feature', false, '2026-03-09T20:00:00.000Z'],
    // Friday before: the week's windows were in EST; Monday after is EDT.
    ['Friday 18:30 EST before the change → Monday 16:00 EDT', '2026-03-06T23:30:00Z', 'feature', false, '2026-03-09T20:00:00.000Z'],
    // 2026-11-01: clocks go 02:00 → 01:00. Friday 30 Oct 18:30 EDT → Monday 2 Nov 16:00 EST.
    ['Friday 18:30 EDT before fall-back → Monday 16:00 EST', '2026-10-30T22:30:00Z', 'feature', false, '2026-11-02T21:00:00.000Z'],
    ['the fall-back Sunday 01:30 (second time) is still weekend', '2026-11-01T06:30:00Z', 'major', true, null],
  ] as const)('%s', (_what, at, kind, open, next) => {
    const decision = decideWindow(defaults, NY, kind, Date.parse(at));
    expect(decision.open).toBe(open);
    expect(decision.nextOpen).toBe(next);
    if (!open) expect(decision.detail).toMatch(/the next opens \w{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2} America\/New_York/);
  });

  it('a window opening inside the spring-forward gap opens at the first instant after it', () => {
    // 02:30 does not exist on 2026-03-08 in New York: 03:00 EDT (07:00Z) is the first instant after.
    expect(new Date(instantOf(2026, 3, 8, 150, NY)).toISOString()).toBe('2026-03-08T07:00:00.000Z');
    const custom = windows('deployWindows: { feature: [ { days: [sun], from: "02:30", to: "04:00" } ] }');
    expect(decideWindow(custom, NY, 'feature', Date.parse('2026-03-08T06:00:00Z')).nextOpen).toBe('2026-03-08T07:00:00.000Z');
  });

  it('a window wholly inside the spring-forward gap does not open that day, and is not announced (regression: it named 02:00, when it was refused again)', () => {
    // 02:00-03:00 does not exist on 2026-03-08 in New York; the next Sunday's is the next opening.
    const gap = windows('deployWindows: { feature: [ { days: [sun], from: "02:00", to: "03:00" } ] }');
    const before = decideWindow(gap, NY, 'feature', Date.parse('2026-03-08T06:30:00Z'));
    expect(before.open).toBe(false);
    expect(before.nextOpen).toBe('2026-03-15T06:00:00.000Z');
    expect(decideWindow(gap, NY, 'feature', Date.parse('2026-03-08T07:00:00Z')).open).toBe(false);
    expect(decideWindow(gap, NY, 'feature', Date.parse('2026-03-15T06:30:00Z')).open).toBe(true);
  });

  it('reads local time in the configured zone', () => {
    expect(localTimeOf(Date.parse('2026-11-28T08:04:00Z'), NY)).toMatchObject({ weekday: 6, year: 2026, month: 11, day: 28, minutes: 3 * 60 + 4 });
    const tokyo = windows('deployWindows: { timezone: Asia/Tokyo }');
    // 16:30 Tokyo on a Friday
    expect(decideWindow(tokyo, NY, 'feature', Date.parse('2026-11-27T07:30:00Z')).open).toBe(true);
  });

  it('is always open when disabled', () => {
    expect(decideWindow(windows('deployWindows: { enabled: false }'), NY, 'feature', Date.parse('2026-11-28T08:04:00Z')).open).toBe(true);
  });

  it.each([
    ['deployWindows: { feature: [ { days: [mon], from: "18:00", to: "16:00" } ] }', /deployWindows\.feature\[0\]\.to: closes before it opens/],
    ['deployWindows: { feature: [ { days: [monday], from: "16:00", to: "18:00" } ] }', /deployWindows\.feature\[0\]\.days\[0\]/],
    ['deployWindows: { feature: [ { days: [mon], from: "4pm", to: "18:00" } ] }', /"4pm" is not a time of day/],
  ])('rejects %s', (extra, message) => {
    expect(() => windows(extra)).toThrow(message);
  });
});

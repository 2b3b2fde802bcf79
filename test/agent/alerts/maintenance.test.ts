import { describe, expect, it } from 'vitest';
import { MaintenanceBook, MaintenanceError, MAX_WINDOW_MS, type MaintenanceRecord } from '../../../agent/alerts/maintenance.js';
import type { MaintenanceWindowConfig } from '../../../config/schema.js';

// Friday 2026-03-13 15:00 in New York (EDT since March 8: UTC-4).
const FRIDAY_3PM = Date.parse('2026-03-13T19:00:00Z');

function book(windows: MaintenanceWindowConfig[] = [], start = FRIDAY_3PM) {
  let now = start;
  const saved = new Map<string, MaintenanceRecord>();
  const maintenance = new MaintenanceBook({ now: () => now, save: (record) => void saved.set(record.id, record), remove: (id) => void saved.delete(id) });
  maintenance.configure(windows, 'America/New_York');
  return { maintenance, saved, set: (at: number) => (now = at), advance: (ms: number) => (now += ms) };
}

const weekly = (overrides: Partial<MaintenanceWindowConfig> = {}): MaintenanceWindowConfig => ({
  name: 'patching',
  env: 'green',
  days: ['fri'],
  start: 16 * 60,
  duration: 2 * 3_600_000,
  reason: 'weekly patching',
  ...overrides,
});

describe('MaintenanceBook', () => {
  it('a recurring window opens on its days at its local time, for its duration', () => {
    const b = book([weekly()]);
    expect(b.maintenance.open()).toEqual([]);
    expect(b.maintenance.upcoming()).toMatchObject([
      { name: 'patching', env: 'green', startsAt: '2026-03-13T20:00:00.000Z', endsAt: '2026-03-13T22:00:00.000Z' },
    ]);
    expect(b.maintenance.nextChange()).toBe(Date.parse('2026-03-13T20:00:00Z'));
    b.set(Date.parse('2026-03-13T20:00:00Z'));
    expect(b.maintenance.open('green')).toMatchObject([{ kind: 'recurring', name: 'patching', reason: 'weekly patching' }]);
    expect(b.maintenance.open('blue')).toEqual([]);
    expect(b.maintenance.nextChange()).toBe(Date.parse('2026-03-13T22:00:00Z'));
    b.set(Date.parse('2026-03-13T22:00:00Z'));
    expect(b.maintenance.open()).toEqual([]);
    // Next Friday, an hour later in UTC? No: New York stays on EDT; the local time is what counts.
    expect(b.maintenance.upcoming()[0]!.startsAt).toBe('2026-03-20T20:00:00.000Z');
  });

  it('follows the time zone across a daylight-saving change (local 16:00 stays 16:00)', () => {
    // Friday 2026-03-06 is before the change (EST, UTC-5).
    const b = book([weekly()], Date.parse('2026-03-06T12:00:00Z'));
    expect(b.maintenance.upcoming()[0]!.startsAt).toBe('2026-03-06T21:00:00.000Z');
  });

  it('a window that runs past midnight is open the next morning too', () => {
    const b = book([weekly({ days: ['fri'], start: 23 * 60, duration: 3 * 3_600_000 })], Date.parse('2026-03-14T05:00:00Z'));
    expect(b.maintenance.open('green')).toHaveLength(1);
  });

  it('an ad-hoc window opens now, ends at its end, and a second one on the environment replaces it', () => {
    const b = book();
    const { window, replaced } = b.maintenance.start({ env: 'green', endsAt: FRIDAY_3PM + 7_200_000, reason: 'db upgrade', by: 'alice' });
    expect(replaced).toBeUndefined();
    expect(window).toMatchObject({ kind: 'ad-hoc', env: 'green', createdBy: 'alice', endsAt: new Date(FRIDAY_3PM + 7_200_000).toISOString() });
    expect(b.maintenance.open('green')).toHaveLength(1);
    b.advance(60_000);
    const second = b.maintenance.start({ env: 'green', endsAt: FRIDAY_3PM + 3 * 3_600_000, reason: 'longer', by: 'bob' });
    expect(second.replaced?.id).toBe(window.id);
    expect(b.maintenance.open('green').map((w) => w.reason)).toEqual(['longer']);
    b.set(FRIDAY_3PM + 3 * 3_600_000);
    expect(b.maintenance.open()).toEqual([]);
  });

  it.each([
    [FRIDAY_3PM - 1, 'must end in the future'],
    [FRIDAY_3PM + MAX_WINDOW_MS + 1, 'at most 7d'],
  ])('refuses an ad-hoc window ending at %i', (endsAt, why) => {
    const b = book();
    expect(() => b.maintenance.start({ env: 'green', endsAt, reason: 'x', by: 'alice' })).toThrow(MaintenanceError);
    expect(() => b.maintenance.start({ env: 'green', endsAt, reason: 'x', by: 'alice' })).toThrow(why);
  });

  it('stop ends the ad-hoc window and cuts the recurring occurrence short until its next', () => {
    const b = book([weekly()], Date.parse('2026-03-13T20:30:00Z'));
    b.maintenance.start({ env: 'green', endsAt: Date.parse('2026-03-13T23:00:00Z'), reason: 'also', by: 'alice' });
    expect(b.maintenance.open('green')).toHaveLength(2);
    const ended = b.maintenance.stop('green', 'bob');
    expect(ended.map((w) => w.kind).sort()).toEqual(['ad-hoc', 'recurring']);
    expect(b.maintenance.open('green')).toEqual([]);
    // The cut survives a restart: the records carry it.
    const again = book([weekly()], Date.parse('2026-03-13T21:00:00Z'));
    again.maintenance.restore([...b.saved.values()]);
    expect(again.maintenance.open('green')).toEqual([]);
    again.set(Date.parse('2026-03-20T20:30:00Z'));
    expect(again.maintenance.open('green')).toHaveLength(1);
  });

  it('the windows stop and a replacement ended say they end now (regression: DELETE /api/v1/maintenance answered their planned end, hours ahead)', () => {
    const now = Date.parse('2026-03-13T20:30:00Z');
    const b = book([weekly()], now);
    b.maintenance.start({ env: 'green', endsAt: Date.parse('2026-03-13T23:00:00Z'), reason: 'also', by: 'alice' });
    b.advance(60_000);
    const { replaced } = b.maintenance.start({ env: 'green', endsAt: Date.parse('2026-03-14T01:00:00Z'), reason: 'longer', by: 'bob' });
    expect(replaced?.endsAt).toBe(new Date(now + 60_000).toISOString());
    b.advance(60_000);
    const ended = b.maintenance.stop('green', 'carol');
    expect(ended.map((w) => w.endsAt)).toEqual([new Date(now + 120_000).toISOString(), new Date(now + 120_000).toISOString()]);
  });
});

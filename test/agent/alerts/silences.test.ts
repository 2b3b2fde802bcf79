import { describe, expect, it } from 'vitest';
import { SILENCE_RETENTION_MS, SilenceBook, SilenceError, type Silence } from '../../../agent/alerts/silences.js';

const T0 = Date.parse('2026-03-14T12:00:00Z');

function book() {
  let now = T0;
  const saved = new Map<string, Silence>();
  const silences = new SilenceBook({ now: () => now, save: (silence) => void saved.set(silence.id, silence), remove: (id) => void saved.delete(id) });
  return { silences, saved, set: (at: number) => (now = at), now: () => now };
}

const rule = (value: string) => ({ name: 'rule', value, isRegex: false, isEqual: true });
const iso = (ms: number) => new Date(ms).toISOString();

describe('SilenceBook', () => {
  it('a silence is pending, then active, then expired, and mutes only while active and only what it matches', () => {
    const b = book();
    const silence = b.silences.create({
      matchers: [rule('live-universe-failing')],
      startsAt: iso(T0 + 60_000),
      endsAt: iso(T0 + 120_000),
      createdBy: 'alice',
      comment: 'deploying',
    });
    const labels = { rule: 'live-universe-failing', env: 'blue' };
    expect(b.silences.list()[0]!.status.state).toBe('pending');
    expect(b.silences.mutedBy(labels)).toEqual([]);
    expect(b.silences.nextChange()).toBe(T0 + 60_000);
    b.set(T0 + 60_000);
    expect(b.silences.mutedBy(labels)).toEqual([silence.id]);
    expect(b.silences.mutedBy({ ...labels, rule: 'other' })).toEqual([]);
    expect(b.silences.nextChange()).toBe(T0 + 120_000);
    b.set(T0 + 120_000);
    expect(b.silences.mutedBy(labels)).toEqual([]);
    expect(b.silences.endedSince(T0 + 60_000).map((s) => s.id)).toEqual([silence.id]);
    expect(b.silences.counts()).toEqual({ pending: 0, active: 0, expired: 1 });
    expect(b.saved.get(silence.id)).toEqual(silence);
  });

  it.each([
    [{ matchers: [{ name: 'env', value: 'green', isRegex: false, isEqual: false }] }, 400, 'would mute every alert'],
    [{ matchers: [{ name: 'rule', value: '((', isRegex: true, isEqual: true }] }, 400, 'not a valid regular expression'],
    [{ matchers: [{ name: 'rule', value: '(live)-\\1', isRegex: true, isEqual: true }] }, 400, 'without back-references'],
    [{ matchers: [{ name: 'bad-name', value: 'x', isRegex: false, isEqual: true }] }, 400, 'not a label name'],
    [{ endsAt: iso(T0 - 1) }, 400, 'already past'],
    [{ startsAt: iso(T0 + 10_000), endsAt: iso(T0 + 5_000) }, 400, 'must be later than startsAt'],
  ])('refuses %j with %i', (change, status, why) => {
    const b = book();
    const attempt = () => b.silences.create({ matchers: [rule('x')], endsAt: iso(T0 + 60_000), createdBy: 'alice', comment: 'why', ...change });
    expect(attempt).toThrow(SilenceError);
    try {
      attempt();
    } catch (error) {
      expect((error as SilenceError).status).toBe(status);
      expect((error as SilenceError).message).toContain(why);
    }
    expect(b.saved.size).toBe(0);
  });

  it('expiring ends it now and records who; a second time changes nothing; an unknown id is a 404', () => {
    const b = book();
    const silence = b.silences.create({ matchers: [rule('x')], endsAt: iso(T0 + 3_600_000), createdBy: 'alice', comment: 'why' });
    b.set(T0 + 1_000);
    const { silence: ended, already } = b.silences.expire(silence.id, 'bob (api:admin)');
    expect(already).toBe(false);
    expect(ended).toMatchObject({ endsAt: iso(T0 + 1_000), expiredBy: 'bob (api:admin)', createdBy: 'alice' });
    expect(b.silences.mutedBy({ rule: 'x' })).toEqual([]);
    expect(b.silences.expire(silence.id, 'carol').already).toBe(true);
    expect(() => b.silences.expire('nope', 'bob')).toThrow(expect.objectContaining({ status: 404 }));
    // Expired early, it is not reported again as reaching its end.
    expect(b.silences.endedSince(T0)).toEqual([]);
  });

  it('a pending silence expired early never starts', () => {
    const b = book();
    const silence = b.silences.create({ matchers: [rule('x')], startsAt: iso(T0 + 60_000), endsAt: iso(T0 + 120_000), createdBy: 'alice', comment: 'why' });
    const { silence: ended } = b.silences.expire(silence.id, 'bob');
    expect(ended.startsAt).toBe(iso(T0));
    expect(ended.endsAt).toBe(iso(T0));
    b.set(T0 + 90_000);
    expect(b.silences.mutedBy({ rule: 'x' })).toEqual([]);
  });

  it('keeps an expired silence for the record, then prunes it', () => {
    const b = book();
    const silence = b.silences.create({ matchers: [rule('x')], endsAt: iso(T0 + 60_000), createdBy: 'alice', comment: 'why' });
    b.set(T0 + 60_000 + SILENCE_RETENTION_MS - 1);
    expect(b.silences.prune()).toBe(0);
    b.set(T0 + 60_000 + SILENCE_RETENTION_MS + 1);
    expect(b.silences.prune()).toBe(1);
    expect(b.silences.get(silence.id)).toBeUndefined();
    expect(b.saved.size).toBe(0);
  });

  it('restores stored silences, dropping one whose matchers no longer compile', () => {
    const b = book();
    const good = b.silences.create({ matchers: [rule('x')], endsAt: iso(T0 + 60_000), createdBy: 'alice', comment: 'why' });
    const restored = book();
    restored.silences.restore([good, { ...good, id: 'broken', matchers: [{ name: 'rule', value: '((', isRegex: true, isEqual: true }] }]);
    expect(restored.silences.list().map((s) => s.id)).toEqual([good.id]);
    expect(restored.silences.mutedBy({ rule: 'x' })).toEqual([good.id]);
  });
});

import { describe, expect, it } from 'vitest';
import { EscalationBook, IncidentError, type IncidentRecord } from '../../../agent/alerts/escalation.js';
import type { EscalationPolicyConfig } from '../../../config/schema.js';

const T0 = Date.parse('2026-03-14T03:00:00Z');
const MIN = 60_000;
const sev = (value: string) => [{ name: 'severity', value, isRegex: false, isEqual: true }];
/** The seed's matrix: L1 at once, L2 at 5 m, L3 at 15 m, L4 at 30 m. */
const MATRIX: EscalationPolicyConfig = {
  name: 'critical',
  matchers: sev('critical'),
  levels: [
    { after: 0, receivers: ['chat'] },
    { after: 5 * MIN, receivers: ['pager'] },
    { after: 15 * MIN, receivers: ['manager'] },
    { after: 30 * MIN, receivers: ['*'] },
  ],
  repeat: 0,
  acknowledgeTimeout: 0,
};

function book(policies: EscalationPolicyConfig[] = [MATRIX], stored: IncidentRecord[] = [], start = T0) {
  let now = start;
  const saved = new Map<string, IncidentRecord>(stored.map((r) => [r.id, r]));
  const incidents = new EscalationBook({ now: () => now, policies, save: (r) => void saved.set(r.id, r), remove: (id) => void saved.delete(id) });
  incidents.restore(stored);
  return { incidents, saved, set: (at: number) => (now = at) };
}

const open = (b: ReturnType<typeof book>, id = 'live-universe-failing#1', severity: 'warning' | 'critical' = 'critical') =>
  b.incidents.open({ id, rule: id.split('#')[0]!, env: 'blue', severity, labels: { rule: id.split('#')[0]!, severity, env: 'blue' }, startedAt: T0 });

/** Walk the clock minute by minute, collecting each escalation as it is taken. */
function walk(b: ReturnType<typeof book>, from: number, to: number) {
  const taken: { at: number; level: number; kind: string; receivers: unknown }[] = [];
  for (let at = from; at <= to; at += 1_000) {
    b.set(at);
    for (const e of b.incidents.takeDue()) taken.push({ at: at - T0, level: e.level, kind: e.kind, receivers: e.receivers });
  }
  return taken;
}

describe('EscalationBook', () => {
  it('follows the seed matrix: level 1 at once, 2 at 5 m, 3 at 15 m, 4 at 30 m, each once', () => {
    const b = book();
    const record = open(b);
    expect(record).toMatchObject({ policy: 'critical', escalationLevel: 1, state: 'firing', nextEscalationAt: new Date(T0 + 5 * MIN).toISOString() });
    expect(b.incidents.receivers(record.id)).toEqual(new Set(['chat']));
    const taken = walk(b, T0, T0 + 60 * MIN);
    expect(taken).toEqual([
      { at: 5 * MIN, level: 2, kind: 'level', receivers: ['pager'] },
      { at: 15 * MIN, level: 3, kind: 'level', receivers: ['manager'] },
      { at: 30 * MIN, level: 4, kind: 'level', receivers: 'all' },
    ]);
    expect(b.incidents.receivers(record.id)).toBe('all');
    expect(b.incidents.get(record.id)!.nextEscalationAt).toBeNull();
  });

  it('acknowledging stops it; resolving stops everything', () => {
    const b = book();
    open(b);
    walk(b, T0, T0 + 6 * MIN);
    const { incident, already } = b.incidents.acknowledge('live-universe-failing#1', 'alice', 'on it');
    expect(already).toBe(false);
    expect(incident).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'alice', comment: 'on it', escalationLevel: 2, nextEscalationAt: null });
    expect(walk(b, T0 + 6 * MIN, T0 + 60 * MIN)).toEqual([]);
    expect(b.incidents.acknowledge('live-universe-failing#1', 'bob', null)).toMatchObject({ already: true, incident: { acknowledgedBy: 'alice' } });
    b.incidents.resolve('live-universe-failing#1');
    expect(() => b.incidents.acknowledge('live-universe-failing#1', 'bob', null)).toThrow(IncidentError);
    expect(() => b.incidents.acknowledge('nope#9', 'bob', null)).toThrow(expect.objectContaining({ status: 404 }));
  });

  it('repeats the last level while unacknowledged, and an acknowledgement timeout re-triggers', () => {
    const b = book([{ ...MATRIX, levels: MATRIX.levels.slice(0, 2), repeat: 10 * MIN, acknowledgeTimeout: 20 * MIN }]);
    open(b);
    expect(walk(b, T0, T0 + 26 * MIN).map((e) => [e.at / MIN, e.kind, e.level])).toEqual([
      [5, 'level', 2],
      [15, 'repeat', 2],
      [25, 'repeat', 2],
    ]);
    b.incidents.acknowledge('live-universe-failing#1', 'alice', null);
    expect(walk(b, T0 + 26 * MIN, T0 + 50 * MIN).map((e) => [e.at / MIN, e.kind, e.level])).toEqual([[46, 'retrigger', 2]]);
    expect(b.incidents.get('live-universe-failing#1')).toMatchObject({ state: 'firing', acknowledgedBy: null });
  });

  it('a policy whose first level waits sends nothing until then; an incident no policy takes escalates never', () => {
    const b = book([{ ...MATRIX, levels: [{ after: 2 * MIN, receivers: ['pager'] }] }]);
    const record = open(b);
    expect(record.escalationLevel).toBe(0);
    expect(b.incidents.receivers(record.id)).toEqual(new Set());
    expect(walk(b, T0, T0 + 3 * MIN)).toEqual([{ at: 2 * MIN, level: 1, kind: 'level', receivers: ['pager'] }]);
    const warning = open(b, 'live-latency-warning#1', 'warning');
    expect(warning).toMatchObject({ policy: null, escalationLevel: 0, nextEscalationAt: null });
    expect(b.incidents.receivers(warning.id)).toBe('all');
  });

  it('a restart between levels neither repeats one nor skips one; down across several, it catches up one level at a time', () => {
    const first = book();
    open(first);
    walk(first, T0, T0 + 6 * MIN);
    // Down from minute 6 to minute 40: levels 3 (15 m) and 4 (30 m) fell due while it was down.
    const second = book([MATRIX], [...first.saved.values()], T0 + 40 * MIN);
    expect(second.incidents.get('live-universe-failing#1')!.escalationLevel).toBe(2);
    const taken = walk(second, T0 + 40 * MIN, T0 + 80 * MIN);
    expect(taken).toEqual([
      { at: 40 * MIN, level: 3, kind: 'level', receivers: ['manager'] },
      // The gap between levels 3 and 4 (15 m) is kept after the catch-up.
      { at: 55 * MIN, level: 4, kind: 'level', receivers: 'all' },
    ]);
  });

  it('counts the firing and the acknowledged incidents for the metrics', () => {
    const b = book();
    for (const id of ['a#1', 'b#1', 'c#1', 'd#1']) open(b, id);
    b.incidents.acknowledge('b#1', 'ana', null);
    b.incidents.resolve('c#1');
    expect(b.incidents.counts()).toEqual({ firing: 2, acknowledged: 1 });
    expect(b.incidents.counts()).toEqual({
      firing: b.incidents.list().filter((i) => i.state === 'firing').length,
      acknowledged: b.incidents.list().filter((i) => i.state === 'acknowledged').length,
    });
  });

  it('keeps the newest resolved incidents for the record', async () => {
    const b = book();
    for (let n = 1; n <= 205; n++) {
      open(b, `r#${n}`);
      b.incidents.resolve(`r#${n}`);
    }
    const list = b.incidents.list();
    expect(list).toHaveLength(200);
    expect(list[0]!.id).toBe('r#205');
    await Promise.resolve();
    // The five pruned in the same job were never written back.
    expect(b.saved.size).toBe(200);
    expect(b.saved.has('r#5')).toBe(false);
  });

  it("writes an opened or resolved incident at the end of the job, as it stands then, so that a firing rule's actions start first", async () => {
    const b = book();
    const record = open(b);
    // In memory at once (its alerts are routed by it in this same job), on disk after.
    expect(b.incidents.receivers(record.id)).toEqual(new Set(['chat']));
    expect(b.saved.has(record.id)).toBe(false);
    b.incidents.acknowledge(record.id, 'ana', null);
    // An acknowledgement is an answer to a request: written at once, and the later write is not an older copy.
    expect(b.saved.get(record.id)).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'ana' });
    await Promise.resolve();
    expect(b.saved.get(record.id)).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'ana' });

    const other = open(b, 'latency-high#1');
    b.incidents.resolve(other.id);
    expect(b.saved.has(other.id)).toBe(false);
    await Promise.resolve();
    expect(b.saved.get(other.id)).toMatchObject({ state: 'resolved' });
  });
});

/**
 * The report over a synthetic 30 days (test/helpers/synthetic-history.ts) written into real
 * databases: every figure is checked against the answer the generator computed on its own.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildReport, failureIntervals, type Report, type ReportEvent, type ReportInput } from '../../../agent/reports/report-builder.js';
import { readReportInput } from '../../../agent/reports/report-reader.js';
import { isoWeek, parseSince } from '../../../agent/reports/report-time.js';
import { RollupStore } from '../../../agent/reports/rollup-store.js';
import { Store } from '../../../agent/events/store.js';
import { isoWeekOf, localDate, trueQuantile, writeSyntheticHistory, type SyntheticHistory } from '../../helpers/synthetic-history.js';

const DAY = 86_400_000;
/** Mon 2026-11-30 08:00 in New York: the 30 days span the end of daylight saving time (Nov 1). */
const END = Date.UTC(2026, 10, 30, 13, 0, 0);
/** Quantiles come from bins four per doubling: within one bin of the truth. */
const BIN_RATIO = 2 ** 0.25;

let history: SyntheticHistory;

async function report(sinceMs: number, now = history.end): Promise<Report> {
  const store = Store.openReadOnly(history.dataDir);
  const rollups = RollupStore.openReadOnly(history.dataDir);
  try {
    const input = await readReportInput(
      { rollups, journal: store, slice: (work) => Promise.resolve(work()) },
      {
        now,
        sinceMs,
        timezone: history.timezone,
        environments: ['blue', 'green'],
        activeEnvironment: history.live,
        slo: [{ name: 'availability', objective: 0.995, periodMs: 30 * DAY, budgetRemaining: 0.62 }],
        quietMs: 300_000,
      },
    );
    return buildReport(input);
  } finally {
    rollups?.close();
    store.close();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

beforeAll(() => {
  history = writeSyntheticHistory({ end: END });
});

describe('a 30-day report of the synthetic history', () => {
  let r: Report;
  beforeAll(async () => {
    r = await report(30 * DAY);
  });

  it('covers the period in the desk time zone', () => {
    expect(r.period).toEqual({
      since: '30d',
      from: new Date(history.start).toISOString(),
      to: new Date(history.end).toISOString(),
      timezone: 'America/New_York',
    });
    expect(r.activeEnvironment).toBe(history.live);
    expect(r.coverage.rollupsFrom).toBe(new Date(history.start).toISOString());
  });

  it('gives every local day of each environment its probes, failures and error ratio exactly', () => {
    for (const env of ['blue', 'green']) {
      const expected = [...history.days[env]!.entries()].sort(([a], [b]) => a.localeCompare(b));
      expect(r.environments[env]!.days.map((day) => day.date)).toEqual(expected.map(([date]) => date));
      for (const [date, day] of expected) {
        const got = r.environments[env]!.days.find((d) => d.date === date)!;
        expect({ probes: got.probes, failures: got.failures, errorRatio: got.errorRatio }, `${env} ${date}`).toEqual({
          probes: day.probes,
          failures: day.failures,
          errorRatio: day.failures / day.probes,
        });
      }
    }
    // The day daylight saving time ended in New York (Sun 2026-11-01) has 25 hours of probes.
    expect(r.environments.blue!.days.find((d) => d.date === '2026-11-01')!.probes).toBe(25 * 60 * 2);
  });

  it('gives each day the p50 and p95 of its own probes (merged histograms, within a bin of the exact quantile)', () => {
    for (const env of ['blue', 'green']) {
      for (const [date, day] of history.days[env]!) {
        const got = r.environments[env]!.days.find((d) => d.date === date)!;
        expect(got.p50Ms, `${env} ${date} p50`).toBe(Math.round(day.histogram.quantile(0.5)! * 10) / 10);
        expect(got.p95Ms, `${env} ${date} p95`).toBe(Math.round(day.histogram.quantile(0.95)! * 10) / 10);
        for (const [q, value] of [
          [0.5, got.p50Ms],
          [0.95, got.p95Ms],
        ] as const) {
          const truth = trueQuantile(day.latencies, q);
          expect(value / truth, `${env} ${date} q${q}: ${value} vs ${truth}`).toBeGreaterThan(1 / BIN_RATIO);
          expect(value / truth, `${env} ${date} q${q}: ${value} vs ${truth}`).toBeLessThan(BIN_RATIO);
        }
        expect(got.meanMs).toBeCloseTo(day.latencies.reduce((a, b) => a + b, 0) / day.latencies.length, 0);
      }
    }
  });

  it('shows the latency drift: blue slows day after day, green stays flat', () => {
    const blue = r.environments.blue!.days.filter((d) => d.probes >= 2_880);
    expect(blue.at(-1)!.p50Ms / blue[0]!.p50Ms).toBeGreaterThan(1.8);
    for (let i = 1; i < blue.length; i++) expect(blue[i]!.p50Ms).toBeGreaterThanOrEqual(blue[i - 1]!.p50Ms);
    expect(new Set(r.environments.green!.days.map((d) => d.p50Ms)).size).toBe(1);
  });

  it('counts promotions by outcome, per ISO week of their local start date', () => {
    const ended = history.promotions.filter((p) => p.outcome !== 'unfinished');
    const count = (outcome: string) => history.promotions.filter((p) => p.outcome === outcome).length;
    expect(r.deployments).toMatchObject({
      total: ended.length,
      succeeded: count('succeeded'),
      failed: count('failed'),
      rolledBack: count('rolledBack'),
      unfinished: count('unfinished'),
      successRate: count('succeeded') / ended.length,
    });
    expect(r.deployments).toMatchObject({ total: 9, succeeded: 5, failed: 2, rolledBack: 2, unfinished: 1 });
    // Every week of the period, those without promotions included.
    const weeks = [...new Set(Array.from({ length: 31 }, (_, i) => isoWeekOf(localDate(Math.min(history.start + i * DAY, history.end)))))];
    expect(r.deployments.weeks.map((w) => w.week)).toEqual(weeks);
    for (const week of r.deployments.weeks) {
      const inWeek = ended.filter((p) => isoWeekOf(localDate(p.startedAt)) === week.week);
      const succeeded = inWeek.filter((p) => p.outcome === 'succeeded').length;
      expect(week, week.week).toMatchObject({
        total: inWeek.length,
        succeeded,
        failed: inWeek.filter((p) => p.outcome === 'failed').length,
        rolledBack: inWeek.filter((p) => p.outcome === 'rolledBack').length,
        successRate: inWeek.length ? succeeded / inWeek.length : null,
      });
    }
    for (const promotion of history.promotions)
      expect(
        r.deployments.promotions.find((p) => p.id === promotion.id),
        promotion.id,
      ).toMatchObject({ outcome: promotion.outcome, step: promotion.step });
  });

  it('lists every rollback with its rule and its times to detect (first failed probe → firing) and to switch (firing → switch)', () => {
    expect(
      r.rollbacks.map(({ at, from, to, rule, trigger, detectMs, switchMs, promotion }) => ({ at, from, to, rule, trigger, detectMs, switchMs, promotion })),
    ).toEqual(history.rollbacks);
    // The flapping health probe started the error-ratio incident 8 minutes before it fired; the
    // universe failure 2 minutes earlier is not one of the rule's probes and does not count.
    expect(r.rollbacks.find((x) => x.rule === 'live-error-ratio-critical')!.detectMs).toBe(8 * 60_000);
    // A latency rule fires without any failed probe: no time to detect.
    expect(r.rollbacks.find((x) => x.rule === 'live-latency-critical')).toMatchObject({ detectMs: null, switchMs: 500, promotion: 'P9' });
    expect(r.summary.rollbacks).toEqual({ count: 5, medianDetectMs: median([2_400, 480_000]), medianSwitchMs: median([350, 1_200, 500]) });
  });

  it('lists incidents with their time to resolve, and the one still firing', () => {
    expect(r.incidents.map(({ id, severity, env, startedAt, durationMs, rolledBack }) => ({ id, severity, env, startedAt, durationMs, rolledBack }))).toEqual(
      history.incidents,
    );
    expect(r.incidents.find((i) => i.id === 'slo-slow-burn#1')).toMatchObject({ state: 'firing', resolvedAt: null, durationMs: null });
    const resolved = history.incidents.filter((i) => i.durationMs !== null).map((i) => i.durationMs!);
    expect(r.summary.incidents).toEqual({ total: 5, critical: 3, warning: 2, open: 1, medianResolveMs: median(resolved) });
  });

  it('names the probes that failed most, and the SLO budget left', () => {
    const expected = [...history.series.values()]
      .filter((s) => s.failures > 0)
      .sort((a, b) => b.failures - a.failures || a.probe.localeCompare(b.probe) || a.env.localeCompare(b.env));
    expect(r.topFailingProbes).toEqual(
      expected.slice(0, 5).map((s) => ({ probe: s.probe, env: s.env, probes: s.probes, failures: s.failures, errorRatio: s.failures / s.probes })),
    );
    expect(r.slo).toEqual([{ name: 'availability', objective: 0.995, periodMs: 30 * DAY, budgetRemaining: 0.62 }]);
    const probes = [...history.series.values()].reduce((sum, s) => sum + s.probes, 0);
    const failures = [...history.series.values()].reduce((sum, s) => sum + s.failures, 0);
    expect(r.summary).toMatchObject({ probes, failures, errorRatio: failures / probes });
  });
});

describe('a shorter period of the same history', () => {
  it('holds only what happened in it: the last 7 days', async () => {
    const r = await report(7 * DAY);
    const from = history.end - 7 * DAY;
    expect(r.rollbacks.map((x) => x.at)).toEqual(history.rollbacks.filter((x) => Date.parse(x.at) >= from).map((x) => x.at));
    expect(r.incidents.map((x) => x.id)).toEqual(history.incidents.filter((x) => Date.parse(x.startedAt) >= from).map((x) => x.id));
    expect(r.deployments.promotions.map((p) => p.id)).toEqual(history.promotions.filter((p) => p.startedAt >= from).map((p) => p.id));
    const days = r.environments.blue!.days;
    expect(days[0]!.date).toBe(localDate(from));
    expect(days.reduce((sum, d) => sum + d.probes, 0)).toBe(7 * 24 * 60 * 2);
  });
});

describe('time to detect', () => {
  const at = (offset: number) => new Date(Date.UTC(2026, 0, 5, 12) + offset).toISOString();
  let id = 0;
  const ev = (offset: number, type: string, fields: Partial<ReportEvent>): ReportEvent => ({
    id: ++id,
    time: at(offset),
    type,
    severity: 'info',
    env: 'blue',
    probe: null,
    rule: null,
    data: {},
    ...fields,
  });
  const firing = (offset: number, probes: unknown) =>
    ev(offset, 'rule.firing', {
      rule: 'r',
      data: {
        incident: 'r#1',
        severity: 'critical',
        figures: { facts: [{ fact: 'errorRatio', params: probes === undefined ? {} : { probe: probes } }], env: 'blue', samples: 10 },
      },
    });
  const build = (events: ReportEvent[]) =>
    buildReport({
      now: Date.UTC(2026, 0, 6),
      sinceMs: 2 * DAY,
      timezone: 'UTC',
      environments: ['blue', 'green'],
      activeEnvironment: 'blue',
      envHours: [],
      seriesTotals: [],
      events,
      failures: failureIntervals(events),
      slo: [],
      coverage: { rollupsFrom: undefined, eventsFrom: undefined },
      quietMs: 300_000,
    } satisfies ReportInput);

  it.each([
    ['a probe still down at the firing', [ev(0, 'probe.down', { probe: 'health' }), firing(3_000, ['health'])], 3_000],
    [
      'a stretch of failures less than quietMs apart',
      [
        ev(0, 'probe.down', { probe: 'health' }),
        ev(10_000, 'probe.up', { probe: 'health' }),
        ev(200_000, 'probe.down', { probe: 'health' }),
        ev(210_000, 'probe.up', { probe: 'health' }),
        firing(400_000, ['health']),
      ],
      400_000,
    ],
    [
      'a failure that ended longer than quietMs before',
      [ev(0, 'probe.down', { probe: 'health' }), ev(10_000, 'probe.up', { probe: 'health' }), firing(400_000, ['health'])],
      null,
    ],
    [
      'a stretch that goes on after the firing (its later failures change nothing)',
      [
        ev(0, 'probe.down', { probe: 'health' }),
        ev(10_000, 'probe.up', { probe: 'health' }),
        firing(200_000, ['health']),
        ev(250_000, 'probe.down', { probe: 'health' }),
        ev(260_000, 'probe.up', { probe: 'health' }),
      ],
      200_000,
    ],
    [
      'a stretch that begins after the firing',
      [
        ev(0, 'probe.down', { probe: 'health' }),
        ev(10_000, 'probe.up', { probe: 'health' }),
        firing(400_000, ['health']),
        ev(500_000, 'probe.down', { probe: 'health' }),
      ],
      null,
    ],
    ['a failure of a probe the rule does not read', [ev(0, 'probe.down', { probe: 'universe' }), firing(3_000, ['health'])], null],
    ['any probe, for a rule over *', [ev(0, 'probe.down', { probe: 'universe' }), firing(3_000, '*')], 3_000],
    ['any probe, for a fact without a probe param', [ev(0, 'probe.down', { probe: 'universe' }), firing(3_000, undefined)], 3_000],
    ['a failure of the other environment', [ev(0, 'probe.down', { probe: 'health', env: 'green' }), firing(3_000, ['health'])], null],
  ] as const)('%s', (_name, events, expected) => {
    const incident = build([...events]).incidents[0]!;
    expect(incident.detectMs).toBe(expected);
  });
});

describe('report periods and weeks', () => {
  it.each([
    ['7d', 7 * DAY],
    ['24h', DAY],
    ['90m', 90 * 60_000],
    ['1m', 60_000],
    ['400d', 400 * DAY],
  ])('since %s is %d ms', (text, ms) => expect(parseSince(text)).toEqual({ ms }));

  it.each(['7x', '-1', '', '0d', '30s', '401d', '7 days', 'NaNd'])('since %j is refused with a message naming it', (text) => {
    const result = parseSince(text);
    expect(result).toHaveProperty('error');
    expect((result as { error: string }).error).toMatch(/^since must be/);
    expect((result as { error: string }).error).toContain(JSON.stringify(text));
  });

  it.each([
    ['2026-01-01', '2026-W01', '2025-12-29'],
    ['2027-01-01', '2026-W53', '2026-12-28'],
    ['2024-12-30', '2025-W01', '2024-12-30'],
    ['2026-11-29', '2026-W48', '2026-11-23'],
    ['2026-11-30', '2026-W49', '2026-11-30'],
  ])('%s is in ISO week %s starting %s', (date, week, monday) => {
    expect(isoWeek(date)).toEqual({ week, monday });
    expect(isoWeekOf(date)).toBe(week);
  });
});

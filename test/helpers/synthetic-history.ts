/**
 * A synthetic 30 days of greenlight history, written at test time into real databases (the
 * journal through Store.appendEvents, the rollups through the RollupWriter with a scripted
 * clock), with the answer to every figure a report shows, computed here independently of the
 * report code: per environment and local date the probes, failures and their exact latencies;
 * the promotions and how each ended; the rollbacks with their times to detect and to switch; the
 * incidents and their durations.
 *
 * Scenario (blue live at the start; probes health and universe on both, one probe a minute each):
 * - latency drifts: blue's base latency grows by 1 ms a day (20 → 49 ms), green stays at 35 ms;
 *   every tenth minute is slow (6x the base). health@blue also fails every 997th minute.
 * - day 5, 14:00:05: universe fails on blue (10 minutes) → live-universe-failing#1 fires 2.4 s
 *   after the first failure, traffic switches blue → green 350 ms later; resolves after 10 min.
 * - day 12, 09:00:05: health on green flaps (down 1 min, up 2 min, down 1 min, up 2 min, down)
 *   while an unrelated universe@green failure happened 2 minutes earlier;
 *   live-error-ratio-critical#1 (reads health only) fires 8 min after the flapping began, traffic
 *   switches green → blue 1.2 s later; resolves 15 min after firing.
 * - day 15: live-latency-warning#1 on blue for 3 minutes, no action.
 * - day 20: a manual rollback blue → green.
 * - ten promotions (days 1, 3, 8, 10, 15, 17, 22, 24, 26, 29 at 20:30 UTC): five succeed, P3 fails
 *   its load gate and P6 its probes, P7 is reverted after its verification failed, P9 is rolled
 *   back in its watch by live-latency-critical#1 (a latency rule: no failed probe, so no time to
 *   detect), P10 starts an hour before the end and has not ended.
 * - slo-slow-burn#1 fires two hours before the end and is still firing.
 */
import { tmpdir } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { LatencyHistogram } from '../../agent/reports/latency-sketch.js';
import { RollupStore } from '../../agent/reports/rollup-store.js';
import { RollupWriter } from '../../agent/reports/rollup-writer.js';
import { Store } from '../../agent/events/store.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
export const SYNTHETIC_TIMEZONE = 'America/New_York';
const ENVS = ['blue', 'green'] as const;
const PROBES = ['health', 'universe'] as const;

export interface ExpectedDay {
  probes: number;
  failures: number;
  /** Every latency of the day, exactly. */
  latencies: number[];
  /** The same latencies in a histogram, built here sample by sample. */
  histogram: LatencyHistogram;
}

export interface ExpectedRollback {
  at: string;
  from: string;
  to: string;
  rule: string | null;
  trigger: 'rule' | 'manual' | 'promotion';
  detectMs: number | null;
  switchMs: number | null;
  promotion: string | null;
}

export interface ExpectedIncident {
  id: string;
  severity: 'warning' | 'critical';
  env: string;
  startedAt: string;
  durationMs: number | null;
  rolledBack: boolean;
}

export interface ExpectedPromotion {
  id: string;
  startedAt: number;
  outcome: 'succeeded' | 'failed' | 'rolledBack' | 'unfinished';
  step: string | null;
}

export interface SyntheticHistory {
  dataDir: string;
  start: number;
  end: number;
  timezone: string;
  /** env → local date → figures. */
  days: Record<string, Map<string, ExpectedDay>>;
  /** probe@env → probes and failures over the whole history. */
  series: Map<string, { probe: string; env: string; probes: number; failures: number }>;
  promotions: ExpectedPromotion[];
  rollbacks: ExpectedRollback[];
  incidents: ExpectedIncident[];
  /** The live environment at the end. */
  live: string;
  events: number;
}

/** Local date in the zone, computed without the report's code. */
export function localDate(ms: number, timezone = SYNTHETIC_TIMEZONE): string {
  let format = formats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(timezone, format);
  }
  return format.format(ms);
}
const formats = new Map<string, Intl.DateTimeFormat>();

/** ISO week of a date, computed without the report's code (Thursday rule). */
export function isoWeekOf(date: string): string {
  const d = new Date(`${date}T12:00:00Z`);
  const thursday = new Date(d);
  thursday.setUTCDate(d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7));
  const firstThursday = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() + 3 - ((firstThursday.getUTCDay() + 6) % 7));
  const week = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / (7 * DAY));
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** The true q-quantile of samples (nearest rank). */
export function trueQuantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** An event before it has an id and a time (loosely typed: the scenario writes what the agent would). */
interface Draft {
  at: number;
  type: string;
  severity: string;
  env: string | null;
  probe: string | null;
  rule: string | null;
  message: string;
  data: Record<string, unknown>;
}

export function writeSyntheticHistory(options: { end?: number; dataDir?: string } = {}): SyntheticHistory {
  const end = Math.floor((options.end ?? Date.now()) / HOUR) * HOUR;
  const start = end - 30 * DAY;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'greenlight-report-'));
  const drafts: Draft[] = [];
  const event = (at: number, fields: Omit<Draft, 'at' | 'env' | 'probe' | 'rule' | 'message'> & Partial<Pick<Draft, 'env' | 'probe' | 'rule' | 'message'>>) =>
    drafts.push({ env: null, probe: null, rule: null, message: `${fields.type} (synthetic)`, ...fields, at });

  // Failures by series and minute index since start.
  const failing = new Map<string, Set<number>>();
  const fail = (probe: string, env: string, fromMinute: number, toMinute: number) => {
    const set = failing.get(`${probe}@${env}`) ?? new Set<number>();
    for (let m = fromMinute; m < toMinute; m++) set.add(m);
    failing.set(`${probe}@${env}`, set);
  };
  const minuteOf = (at: number) => Math.floor((at - start) / MINUTE);
  const rollbacks: ExpectedRollback[] = [];
  const incidents: ExpectedIncident[] = [];
  let live = 'blue';
  const other = (env: string) => (env === 'blue' ? 'green' : 'blue');

  const figures = (env: string, probe: string | string[] | undefined, fact = 'consecutiveFailures') => ({
    facts: [{ fact, params: probe === undefined ? {} : { probe }, operator: 'greaterThan', value: 1, observed: 2, result: true }],
    samples: 20,
    env,
  });
  const firing = (at: number, rule: string, incident: string, env: string, severity: 'warning' | 'critical', facts: ReturnType<typeof figures>) =>
    event(at, {
      type: 'rule.firing',
      severity,
      env,
      rule,
      data: { severity, incident, heldForMs: 0, figures: facts, labels: {}, actions: severity === 'critical' ? ['rollback'] : [] },
    });
  const resolved = (at: number, rule: string, incident: string, env: string, severity: 'warning' | 'critical', firedForMs: number) =>
    event(at, { type: 'rule.resolved', severity: 'info', env, rule, data: { severity, incident, firedForMs, figures: figures(env, undefined), labels: {} } });
  const switched = (at: number, from: string, to: string, kind: 'rollback' | 'promotion', incident: string, rule: string | null, reason: string) => {
    event(at, {
      type: 'traffic.switched',
      severity: 'warning',
      env: to,
      rule,
      data: { from, to, adapter: 'none', reason, incident, detail: 'recorded', dryRun: false, kind, verification: { durationMs: 12, probes: 2 } },
    });
    live = to;
    return drafts.length - 1;
  };
  const down = (at: number, probe: string, env: string) =>
    event(at, {
      type: 'probe.down',
      severity: 'warning',
      env,
      probe,
      data: { reason: 'assertion', detail: 'synthetic', status: 200, durationMs: 20, consecutiveFailures: 1, active: env === live },
    });
  const up = (at: number, probe: string, env: string) =>
    event(at, { type: 'probe.up', severity: 'info', env, probe, data: { status: 200, durationMs: 20, downForMs: null, active: env === live } });

  // Promotions, in time order with the incidents (the live environment follows them).
  const promotions: ExpectedPromotion[] = [];
  const promotionDays = [1, 3, 8, 10, 15, 17, 22, 24, 26, 29];
  const plan: Record<number, ExpectedPromotion['outcome'] | 'unfinished'> = {
    1: 'succeeded',
    3: 'succeeded',
    8: 'failed',
    10: 'succeeded',
    15: 'succeeded',
    17: 'failed',
    22: 'rolledBack',
    24: 'succeeded',
    26: 'rolledBack',
    29: 'unfinished',
  };
  const scripted: { at: number; run: () => void }[] = [];

  // Day 5: universe on blue (live) fails; the stock universe rule fires and rolls back.
  scripted.push({
    at: start + 5 * DAY + 14 * HOUR,
    run: () => {
      const t = start + 5 * DAY + 14 * HOUR + 5_000;
      const from = live;
      down(t, 'universe', from);
      fail('universe', from, minuteOf(t), minuteOf(t) + 10);
      firing(t + 2_400, 'live-universe-failing', 'live-universe-failing#1', from, 'critical', figures(from, 'universe'));
      switched(t + 2_750, from, other(from), 'rollback', 'live-universe-failing#1', 'live-universe-failing', 'universe failing');
      up(t + 10 * MINUTE, 'universe', from);
      resolved(t + 2_400 + 597_600, 'live-universe-failing', 'live-universe-failing#1', from, 'critical', 597_600);
      rollbacks.push({
        at: new Date(t + 2_750).toISOString(),
        from,
        to: other(from),
        rule: 'live-universe-failing',
        trigger: 'rule',
        detectMs: 2_400,
        switchMs: 350,
        promotion: null,
      });
      incidents.push({
        id: 'live-universe-failing#1',
        severity: 'critical',
        env: from,
        startedAt: new Date(t + 2_400).toISOString(),
        durationMs: 597_600,
        rolledBack: true,
      });
    },
  });
  // Day 12: health flaps on the live environment; the error-ratio rule (health only) fires.
  scripted.push({
    at: start + 12 * DAY + 9 * HOUR,
    run: () => {
      const t0 = start + 12 * DAY + 9 * HOUR + 5_000;
      const env = live;
      down(t0 - 2 * MINUTE, 'universe', env);
      up(t0 - MINUTE, 'universe', env);
      fail('universe', env, minuteOf(t0 - 2 * MINUTE), minuteOf(t0 - 2 * MINUTE) + 1);
      down(t0, 'health', env);
      up(t0 + MINUTE, 'health', env);
      down(t0 + 3 * MINUTE, 'health', env);
      up(t0 + 4 * MINUTE, 'health', env);
      down(t0 + 6 * MINUTE, 'health', env);
      fail('health', env, minuteOf(t0), minuteOf(t0) + 1);
      fail('health', env, minuteOf(t0) + 3, minuteOf(t0) + 4);
      fail('health', env, minuteOf(t0) + 6, minuteOf(t0) + 23);
      const fired = t0 + 8 * MINUTE;
      firing(fired, 'live-error-ratio-critical', 'live-error-ratio-critical#1', env, 'critical', figures(env, ['health'], 'errorRatio'));
      switched(fired + 1_200, env, other(env), 'rollback', 'live-error-ratio-critical#1', 'live-error-ratio-critical', 'error ratio');
      up(t0 + 23 * MINUTE, 'health', env);
      resolved(fired + 15 * MINUTE, 'live-error-ratio-critical', 'live-error-ratio-critical#1', env, 'critical', 15 * MINUTE);
      rollbacks.push({
        at: new Date(fired + 1_200).toISOString(),
        from: env,
        to: other(env),
        rule: 'live-error-ratio-critical',
        trigger: 'rule',
        detectMs: 8 * MINUTE,
        switchMs: 1_200,
        promotion: null,
      });
      incidents.push({
        id: 'live-error-ratio-critical#1',
        severity: 'critical',
        env,
        startedAt: new Date(fired).toISOString(),
        durationMs: 15 * MINUTE,
        rolledBack: true,
      });
    },
  });
  // Day 15, 03:00: a latency warning for three minutes, nothing done.
  scripted.push({
    at: start + 15 * DAY + 3 * HOUR,
    run: () => {
      const t = start + 15 * DAY + 3 * HOUR + 30_000;
      firing(t, 'live-latency-warning', 'live-latency-warning#1', live, 'warning', figures(live, undefined, 'meanLatency'));
      resolved(t + 3 * MINUTE, 'live-latency-warning', 'live-latency-warning#1', live, 'warning', 3 * MINUTE);
      incidents.push({
        id: 'live-latency-warning#1',
        severity: 'warning',
        env: live,
        startedAt: new Date(t).toISOString(),
        durationMs: 3 * MINUTE,
        rolledBack: false,
      });
    },
  });
  // Day 20, 11:00: an operator rolls back.
  scripted.push({
    at: start + 20 * DAY + 11 * HOUR,
    run: () => {
      const t = start + 20 * DAY + 11 * HOUR;
      const from = live;
      // Asked for 800 ms before the switch (its verification): the incident names the request's time.
      switched(
        t,
        from,
        other(from),
        'rollback',
        `manual-${new Date(t - 800).toISOString()}-1`,
        null,
        'manual rollback by api:rollback: checkout errors after 3.2.1',
      );
      rollbacks.push({ at: new Date(t).toISOString(), from, to: other(from), rule: null, trigger: 'manual', detectMs: null, switchMs: 800, promotion: null });
    },
  });
  promotionDays.forEach((day, index) => {
    const id = `P${index + 1}`;
    const at = day === 29 ? end - HOUR : start + day * DAY + 20 * HOUR + 30 * MINUTE;
    scripted.push({
      at,
      run: () => {
        const from = live;
        const to = other(from);
        const outcome = plan[day]!;
        event(at, {
          type: 'promote.started',
          severity: 'info',
          env: to,
          data: { promotion: id, from, to, kind: 'feature', emergency: false, reason: null, actor: 'api:admin', deploy: false, watchMs: 300_000 },
        });
        const step = (t: number, name: string, ok: boolean, extra: Record<string, unknown> = {}) =>
          event(t, {
            type: 'promote.step',
            severity: ok ? 'info' : 'warning',
            env: to,
            data: { promotion: id, step: name, ok, durationMs: 1_000, detail: ok ? 'ok' : `${name} failed`, figures: extra },
          });
        step(at + 1_000, 'window', true);
        let failedStep: string | null = null;
        if (outcome === 'failed') {
          failedStep = day === 8 ? 'load' : 'probes';
          step(at + 12_000, failedStep, false);
          event(at + 12_001, {
            type: 'promote.failed',
            severity: 'warning',
            env: to,
            data: {
              promotion: id,
              from,
              to,
              durationMs: 12_001,
              step: failedStep,
              reason: `${failedStep} failed: p95 latency 2.41s >= 2.00s`,
              switched: false,
              rolledBack: false,
              live: from,
              steps: [],
            },
          });
        } else if (outcome !== 'unfinished') {
          switched(at + 13_000, from, to, 'promotion', `promote:${id}`, null, `promotion ${id}`);
          if (outcome === 'succeeded') {
            event(at + 5 * MINUTE + 13_000, {
              type: 'promote.succeeded',
              severity: 'info',
              env: to,
              data: { promotion: id, from, to, durationMs: 313_000, steps: [] },
            });
          } else if (day === 22) {
            failedStep = 'verify';
            step(at + 15_000, 'verify', false);
            switched(at + 15_500, to, from, 'rollback', `promote:${id}:revert`, null, `promotion ${id}: verification failed`);
            event(at + 15_600, {
              type: 'promote.failed',
              severity: 'critical',
              env: to,
              data: {
                promotion: id,
                from,
                to,
                durationMs: 15_600,
                step: 'verify',
                reason: 'verify failed',
                switched: true,
                rolledBack: true,
                live: from,
                steps: [],
              },
            });
            rollbacks.push({
              at: new Date(at + 15_500).toISOString(),
              from: to,
              to: from,
              rule: null,
              trigger: 'promotion',
              detectMs: null,
              switchMs: null,
              promotion: id,
            });
          } else {
            failedStep = 'watch';
            const fired = at + 13_000 + MINUTE;
            firing(fired, 'live-latency-critical', 'live-latency-critical#1', to, 'critical', figures(to, undefined, 'meanLatency'));
            // The watch step names the switch's event id (mapped from its draft index once ids are given).
            const switchDraft = switched(fired + 500, to, from, 'rollback', 'live-latency-critical#1', 'live-latency-critical', 'mean latency 6s');
            event(fired + 600, {
              type: 'promote.step',
              severity: 'critical',
              env: to,
              data: {
                promotion: id,
                step: 'watch',
                ok: false,
                durationMs: 60_000,
                detail: 'rolled back',
                figures: { rolledBackTo: from, rule: 'live-latency-critical', incident: 'live-latency-critical#1', eventIndex: switchDraft },
              },
            });
            event(fired + 700, {
              type: 'promote.failed',
              severity: 'critical',
              env: to,
              data: {
                promotion: id,
                from,
                to,
                durationMs: 61_000,
                step: 'watch',
                reason: 'rolled back',
                switched: true,
                rolledBack: true,
                live: from,
                steps: [],
              },
            });
            resolved(fired + 30_000, 'live-latency-critical', 'live-latency-critical#1', to, 'critical', 30_000);
            rollbacks.push({
              at: new Date(fired + 500).toISOString(),
              from: to,
              to: from,
              rule: 'live-latency-critical',
              trigger: 'rule',
              detectMs: null,
              switchMs: 500,
              promotion: id,
            });
            incidents.push({
              id: 'live-latency-critical#1',
              severity: 'critical',
              env: to,
              startedAt: new Date(fired).toISOString(),
              durationMs: 30_000,
              rolledBack: true,
            });
          }
        }
        promotions.push({ id, startedAt: at, outcome: outcome === 'unfinished' ? 'unfinished' : outcome, step: failedStep });
      },
    });
  });
  // Two hours before the end: a slow burn that is still firing.
  scripted.push({
    at: end - 2 * HOUR,
    run: () => {
      firing(end - 2 * HOUR, 'slo-slow-burn', 'slo-slow-burn#1', live, 'warning', figures(live, undefined, 'burnRate'));
      incidents.push({
        id: 'slo-slow-burn#1',
        severity: 'warning',
        env: live,
        startedAt: new Date(end - 2 * HOUR).toISOString(),
        durationMs: null,
        rolledBack: false,
      });
    },
  });
  for (const step of scripted.sort((a, b) => a.at - b.at)) step.run();
  incidents.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  rollbacks.sort((a, b) => a.at.localeCompare(b.at));

  // Events: ids in time order; the watch step's figures name the switch's id, as the agent's do.
  const ordered = drafts.map((draft, index) => ({ draft, index })).sort((a, b) => a.draft.at - b.draft.at || a.index - b.index);
  const idOfDraft = new Map(ordered.map(({ index }, position) => [index, position + 1]));
  const events = ordered.map(({ draft }, position) => {
    const { at, ...rest } = draft;
    const data = { ...rest.data };
    const figuresData = data.figures as Record<string, unknown> | undefined;
    if (figuresData && typeof figuresData.eventIndex === 'number') {
      const { eventIndex, ...others } = figuresData;
      data.figures = { ...others, event: idOfDraft.get(eventIndex as number) };
    }
    return { ...rest, data, id: position + 1, time: new Date(at).toISOString() } as unknown as GreenlightEvent;
  });
  const store = Store.open(dataDir);
  store.appendEvents(events);
  store.set('activeEnvironment', live);
  store.close();

  // Rollups: one probe a minute per series, through the writer, flushed every synthetic hour.
  let clock = start;
  const rollups = RollupStore.open(dataDir);
  const writer = new RollupWriter({ store: rollups, now: () => clock, logger: pino({ level: 'silent' }) });
  const days: SyntheticHistory['days'] = { blue: new Map(), green: new Map() };
  const series = new Map<string, { probe: string; env: string; probes: number; failures: number }>();
  const rollupSeriesOf = new Map<string, { probe: string; env: string }>();
  for (let minute = 0; minute < 30 * 24 * 60; minute++) {
    const at = start + minute * MINUTE + 5_000;
    const day = Math.floor(minute / (24 * 60));
    for (const env of ENVS) {
      const base = env === 'blue' ? 20 + day : 35;
      for (const probe of PROBES) {
        const latency = (minute % 10 === 0 ? 6 * base : base) + (probe === 'universe' ? 0.5 : 0);
        const ok = !(failing.get(`${probe}@${env}`)?.has(minute) ?? false) && !(probe === 'health' && env === 'blue' && minute % 997 === 0);
        clock = at + 1;
        const key = `${probe}@${env}`;
        let rollupSeries = rollupSeriesOf.get(key);
        if (!rollupSeries) rollupSeriesOf.set(key, (rollupSeries = { probe, env }));
        writer.record(rollupSeries, ok, latency, at);
        const date = localDate(at);
        let expected = days[env]!.get(date);
        if (!expected) {
          expected = { probes: 0, failures: 0, latencies: [], histogram: new LatencyHistogram() };
          days[env]!.set(date, expected);
        }
        expected.probes++;
        if (!ok) expected.failures++;
        expected.latencies.push(latency);
        expected.histogram.add(latency);
        const total = series.get(key) ?? { probe, env, probes: 0, failures: 0 };
        total.probes++;
        if (!ok) total.failures++;
        series.set(key, total);
      }
    }
    if ((minute + 1) % 60 === 0) {
      clock = start + (minute + 1) * MINUTE;
      writer.flush();
    }
  }
  clock = end;
  writer.close();
  // As a live agent's retention would have it: minutes of the last day only.
  rollups.prune({ now: end, maxAgeMs: 90 * DAY, minuteAgeMs: DAY, maxBytes: 1 << 30 });
  rollups.close();
  return { dataDir, start, end, timezone: SYNTHETIC_TIMEZONE, days, series, promotions, rollbacks, incidents, live, events: events.length };
}

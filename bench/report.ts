/**
 * report: a 30-day report over 1,000 probe × environment series, and what their rollups take.
 *
 * The databases are those of an agent that has probed 1,000 series every second for 30 days, as
 * its retention leaves them (rollups.retention defaults): hourly rollups of all 30 days, per-minute
 * rollups of the last day, and a journal of 30 days of probe.down/probe.up flaps, incidents,
 * rollbacks and promotions. The minutes of the last day are written as the writer writes them
 * (a transaction per minute of 1,000 rows, added to their hours); the 29 days before are written
 * an hour's figures at a time (the same hour rows, generated faster).
 *
 * Measured, each as the median of several runs:
 * - the report straight through (what `greenlight report --config` does): read + build;
 * - the report through the agent's TurnQueue (GET /api/v1/report), which yields to probes
 *   between slices and takes at most a quarter of the time;
 * - the baseline, in the same run: the environment figures of ONE day read from its per-minute
 *   rows (what a report would read without the hour tables) against 30 days from the hours;
 * - the writer's work on the probe loop: one minute's flush of 1,000 rows and their hours;
 * - the rollup database's size, per tier.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { GreenlightEvent } from '../agent/events/events.js';
import { LatencyHistogram } from '../agent/reports/latency-sketch.js';
import { buildReport } from '../agent/reports/report-builder.js';
import { readReportInput } from '../agent/reports/report-reader.js';
import { HOUR_MS, MINUTE_MS, RollupStore } from '../agent/reports/rollup-store.js';
import { Store } from '../agent/events/store.js';
import { TurnQueue } from '../agent/http/turn-queue.js';
import { fmt, freshDataDir, log, mb, median, section, type SummaryRow } from './harness.js';

const DAY_MS = 86_400_000;
const DAYS = 30;

/** A series' latency histograms: four minute variants and the hour they make together. */
function templates(series: number): { minutes: Buffer[]; hour: Buffer; hourCount: number } {
  const base = 15 + (series % 60);
  const minutes: Buffer[] = [];
  const hour = new LatencyHistogram();
  for (let variant = 0; variant < 4; variant++) {
    const minute = new LatencyHistogram();
    for (let second = 0; second < 60; second++) {
      const latency = base * (1 + ((second * 7 + variant) % 10) / 20) * (second % 20 === variant ? 4 : 1);
      minute.add(latency);
    }
    minutes.push(minute.encode());
  }
  for (let minute = 0; minute < 60; minute++) hour.addEncoded(minutes[minute % 4]!);
  return { minutes, hour: hour.encode(), hourCount: hour.count };
}

/** The name of the probe numbered `probe` (from 0) in generated state. */
export type ProbeNamer = (probe: number) => string;

const defaultProbeName: ProbeNamer = (probe) => `probe-${String(probe).padStart(4, '0')}`;

/** Series `i`: probe i / 2 on blue (even i) or green (odd i). */
function seriesName(i: number, probeName: ProbeNamer = defaultProbeName): { probe: string; env: string } {
  return { probe: probeName(Math.floor(i / 2)), env: i % 2 === 0 ? 'blue' : 'green' };
}

/**
 * The databases of an agent that has probed `seriesCount` series every second for 30 days up to
 * `end`; `probeName` names its probes (the memory bench passes its agent's own).
 */
export function generate(dir: string, seriesCount: number, end: number, probeName: ProbeNamer = defaultProbeName): { minutesMs: number } {
  const rollups = RollupStore.open(dir);
  const start = end - DAYS * DAY_MS;
  const shapes = Array.from({ length: seriesCount }, (_, i) => templates(i));
  const names = Array.from({ length: seriesCount }, (_, i) => seriesName(i, probeName));
  // 29 days: one row per series and hour standing for its 60 minutes (the hour rows come out the same).
  const firstMinuteHour = (end - DAY_MS) / HOUR_MS;
  for (let hour = start / HOUR_MS; hour < firstMinuteHour; hour++) {
    rollups.writeMinutes(
      names.map((name, i) => ({
        minute: hour * 60,
        ...name,
        count: shapes[i]!.hourCount,
        failures: (hour + i) % 97 === 0 ? 3 : 0,
        latencyMs: shapes[i]!.hourCount * (15 + (i % 60)),
        bins: shapes[i]!.hour,
      })),
    );
    if (hour % 24 === 0) rollups.prune({ now: (hour + 1) * HOUR_MS, maxAgeMs: 90 * DAY_MS, minuteAgeMs: 2 * HOUR_MS, maxBytes: Number.MAX_SAFE_INTEGER });
  }
  rollups.prune({ now: end, maxAgeMs: 90 * DAY_MS, minuteAgeMs: DAY_MS, maxBytes: Number.MAX_SAFE_INTEGER });
  // The last day as the writer writes it: a transaction of 1,000 rows a minute (and their hours).
  const began = performance.now();
  for (let minute = (end - DAY_MS) / MINUTE_MS; minute < end / MINUTE_MS; minute++) {
    rollups.writeMinutes(
      names.map((name, i) => ({
        minute,
        ...name,
        count: 60,
        failures: (minute + i) % 4_999 === 0 ? 1 : 0,
        latencyMs: 60 * (15 + (i % 60)),
        bins: shapes[i]!.minutes[minute % 4]!,
      })),
    );
  }
  const minutesMs = performance.now() - began;
  rollups.checkpoint();
  rollups.close();

  // The journal: each series flaps about three times a day, one incident with a rollback a day, two promotions a week.
  const store = Store.open(dir);
  const events: GreenlightEvent[] = [];
  let id = 0;
  const push = (at: number, type: string, fields: Partial<GreenlightEvent>, data: Record<string, unknown>) =>
    events.push({
      id: ++id,
      time: new Date(at).toISOString(),
      type,
      severity: 'info',
      env: null,
      probe: null,
      rule: null,
      message: type,
      data,
      ...fields,
    } as unknown as GreenlightEvent);
  for (let day = 0; day < DAYS; day++) {
    for (let flap = 0; flap < 3; flap++) {
      for (let i = 0; i < seriesCount; i++) {
        const at = start + day * DAY_MS + ((i * 7_919 + flap * 28_800_000) % DAY_MS);
        push(
          at,
          'probe.down',
          { ...seriesName(i, probeName) },
          { reason: 'timeout', detail: 'no answer within 8000ms', status: null, durationMs: 8_000, consecutiveFailures: 1, active: i % 2 === 0 },
        );
        push(at + 30_000, 'probe.up', { ...seriesName(i, probeName) }, { status: 200, durationMs: 20, downForMs: 30_000, active: i % 2 === 0 });
      }
    }
    const t = start + day * DAY_MS + 12 * HOUR_MS;
    push(t, 'probe.down', { env: 'blue', probe: probeName(0) }, {});
    push(
      t + 2_000,
      'rule.firing',
      { env: 'blue', rule: 'live-universe-failing' },
      {
        severity: 'critical',
        incident: `live-universe-failing#${day + 1}`,
        figures: { facts: [{ fact: 'consecutiveFailures', params: { probe: probeName(0) } }], env: 'blue', samples: 3 },
      },
    );
    push(
      t + 2_300,
      'traffic.switched',
      { env: 'green', rule: 'live-universe-failing' },
      { from: 'blue', to: 'green', kind: 'rollback', incident: `live-universe-failing#${day + 1}`, reason: 'bench' },
    );
    push(
      t + 300_000,
      'rule.resolved',
      { env: 'blue', rule: 'live-universe-failing' },
      { severity: 'critical', incident: `live-universe-failing#${day + 1}`, firedForMs: 298_000 },
    );
    if (day % 3 === 0) {
      push(t + 3_600_000, 'promote.started', { env: 'blue' }, { promotion: `P${day}`, from: 'green', to: 'blue', kind: 'feature', emergency: false });
      push(t + 3_900_000, 'promote.succeeded', { env: 'blue' }, { promotion: `P${day}`, from: 'green', to: 'blue' });
    }
  }
  events.sort((a, b) => a.time.localeCompare(b.time));
  events.forEach((event, index) => ((event as { id: number }).id = index + 1));
  for (let i = 0; i < events.length; i += 10_000) store.appendEvents(events.slice(i, i + 10_000));
  store.close();
  return { minutesMs };
}

async function timeReport(dir: string, end: number, sliced: boolean): Promise<{ ms: number; days: number; probes: number }> {
  const store = Store.openReadOnly(dir);
  const rollups = RollupStore.openReadOnly(dir)!;
  const turns = new TurnQueue();
  try {
    const began = performance.now();
    const input = await readReportInput(
      { rollups, journal: store, slice: sliced ? (work) => turns.run(work) : (work) => Promise.resolve(work()) },
      { now: end, sinceMs: DAYS * DAY_MS, timezone: 'America/New_York', environments: ['blue', 'green'], activeEnvironment: 'blue', slo: [] },
    );
    const report = buildReport(input);
    const ms = performance.now() - began;
    return { ms, days: report.environments.blue!.days.length, probes: report.summary.probes };
  } finally {
    turns.close();
    rollups.close();
    store.close();
  }
}

export async function runReport(options: { series?: number; runs?: number } = {}): Promise<{ rows: SummaryRow[] }> {
  const seriesCount = options.series ?? 1_000;
  const runs = options.runs ?? 5;
  section(`report: ${DAYS} days x ${seriesCount.toLocaleString('en-US')} series (probed every second), rollups as retention keeps them`);
  const dir = freshDataDir('report');
  try {
    const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const generated = performance.now();
    const { minutesMs } = generate(dir, seriesCount, end);
    log(
      `generated in ${fmt((performance.now() - generated) / 1_000, 1)} s (the last day's ${(24 * 60).toLocaleString('en-US')} minutes of ${seriesCount} rows written as the writer writes them: ${fmt(minutesMs / 1_440, 2)} ms a minute)`,
    );

    const rollups = RollupStore.open(dir);
    const counts = rollups.counts();
    const used = rollups.usedBytes();
    // The writer's work on the probe loop: one minute of rows (and their hours), as each flush.
    const minute = Math.floor(end / MINUTE_MS);
    const names = Array.from({ length: seriesCount }, (_, i) => seriesName(i));
    const bins = templates(0).minutes[0]!;
    const flushes: number[] = [];
    for (let run = 0; run < runs; run++) {
      const rows = names.map((name) => ({ minute: minute + run, ...name, count: 60, failures: 0, latencyMs: 1_200, bins }));
      const began = performance.now();
      rollups.writeMinutes(rows);
      flushes.push(performance.now() - began);
    }
    rollups.checkpoint();
    rollups.close();
    // The baseline: one day's environment figures from its per-minute rows (what a report would
    // read without the hour tables), with the same SQL aggregate over the minutes.
    const raw = new Database(join(dir, 'rollups.db'), { readonly: true });
    raw.aggregate('bins_sum', {
      start: () => new LatencyHistogram(),
      step: (histogram: LatencyHistogram, blob: unknown) => {
        histogram.addEncoded(blob as Uint8Array);
        return histogram;
      },
      result: (histogram: LatencyHistogram) => histogram.encode(),
    });
    const perMinute = raw.prepare(
      'SELECT s.env, m.minute / 60 AS hour, SUM(m.count), SUM(m.failures), bins_sum(m.bins) FROM minutes m JOIN series s ON s.id = m.series WHERE m.minute >= ? AND m.minute < ? GROUP BY s.env, m.minute / 60',
    );
    const baseline: number[] = [];
    for (let run = 0; run < runs; run++) {
      const began = performance.now();
      if (perMinute.all(end / MINUTE_MS - 1_440, end / MINUTE_MS).length === 0) throw new Error('the baseline read no minutes');
      baseline.push(performance.now() - began);
    }
    // Bytes per table (SQLite's dbstat: pages of each table, its primary key included).
    const tables = new Map(
      (raw.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name').all() as { name: string; bytes: number }[]).map((row) => [
        row.name,
        row.bytes,
      ]),
    );
    raw.close();
    const hourBytes = (tables.get('hours') ?? 0) + (tables.get('env_hours') ?? 0);
    const minuteBytes = tables.get('minutes') ?? 0;
    const file = statSync(join(dir, 'rollups.db')).size;
    const journal = statSync(join(dir, 'greenlight.db')).size;

    const direct: number[] = [];
    const sliced: number[] = [];
    // The first read after the generation finds the pages cold; it is shown, not counted.
    const cold = await timeReport(dir, end, false);
    let shape = { days: 0, probes: 0 };
    for (let run = 0; run < runs; run++) {
      const a = await timeReport(dir, end, false);
      direct.push(a.ms);
      shape = a;
      sliced.push((await timeReport(dir, end, true)).ms);
    }
    const seriesDays = seriesCount * DAYS;
    log(
      `rollup rows: ${counts.hours.toLocaleString('en-US')} hourly (series), ${counts.envHours.toLocaleString('en-US')} hourly (environment), ${counts.minutes.toLocaleString('en-US')} per-minute (the last day)`,
    );
    log(
      `rollups.db: ${mb(used)} used, ${mb(file)} on disk after a checkpoint; the hour tables ${mb(hourBytes)} (${fmt(hourBytes / seriesDays, 0)} bytes per series and day, ${fmt(hourBytes / (seriesDays * 24), 1)} per hour row), the last day's minutes ${mb(minuteBytes)} (${fmt(minuteBytes / (seriesCount * 1_440), 1)} per minute row); journal ${mb(journal)}`,
    );
    log(
      `at the defaults (90 days of hours, a day of minutes) that is about ${mb(hourBytes * 3 + minuteBytes)} for ${seriesCount} series: rollups.retention.maxSize (256 MiB) holds it`,
    );
    log(
      `report over ${DAYS} days, straight through (report --config): median ${fmt(median(direct), 0)} ms (runs: ${direct.map((v) => fmt(v, 0)).join(', ')}; the first, cold, ${fmt(cold.ms, 0)} ms); ${shape.days} days per environment, ${shape.probes.toLocaleString('en-US')} probes`,
    );
    log(`report over ${DAYS} days through the agent's TurnQueue (GET /api/v1/report, a quarter of the time at most): median ${fmt(median(sliced), 0)} ms`);
    log(
      `baseline: ONE day's environment figures from its per-minute rows: median ${fmt(median(baseline), 0)} ms, ${fmt(median(baseline) / median(direct), 2)}x the whole 30-day report from the hourly rows`,
    );
    log(
      `the writer on the probe loop: a minute of ${seriesCount} rows, added to their hours too, ${fmt(median(flushes), 1)} ms a flush (median of ${runs}; the longest ${fmt(Math.max(...flushes), 1)} ms)`,
    );
    return {
      rows: [
        {
          bench: 'report',
          figure: `report over ${DAYS} d x ${seriesCount} series (read + build)`,
          target: '< 2 s',
          measured: `${fmt(median(direct) / 1_000, 2)} s straight through; ${fmt(median(sliced) / 1_000, 2)} s through the agent's turn queue`,
          verdict: median(direct) < 2_000 ? 'ok' : 'MISS',
        },
        {
          bench: 'report',
          figure: 'baseline: 1 day from per-minute rows',
          target: 'report',
          measured: `${fmt(median(baseline), 0)} ms (${fmt(median(baseline) / median(direct), 2)}x the 30-day report from hours)`,
          verdict: 'info',
        },
        {
          bench: 'report',
          figure: `rollups.db, ${DAYS} d x ${seriesCount} series + last day's minutes`,
          target: 'report',
          measured: `${mb(used)}: hours ${mb(hourBytes)} (${fmt(hourBytes / seriesDays, 0)} B per series-day), minutes ${mb(minuteBytes)}; 90 d ≈ ${mb(hourBytes * 3 + minuteBytes)}`,
          verdict: 'info',
        },
        {
          bench: 'report',
          figure: 'writer on the probe loop: a minute flushed',
          target: 'report',
          measured: `${fmt(median(flushes), 1)} ms at ${seriesCount} series (longest ${fmt(Math.max(...flushes), 1)} ms), once a minute`,
          verdict: 'info',
        },
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

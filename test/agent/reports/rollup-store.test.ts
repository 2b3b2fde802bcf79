import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LatencyHistogram } from '../../../agent/reports/latency-sketch.js';
import { RollupRetention } from '../../../agent/reports/rollup-retention.js';
import { HOUR_MS, MINUTE_MS, RollupStore } from '../../../agent/reports/rollup-store.js';
import { type RollupSeries, RollupWriter } from '../../../agent/reports/rollup-writer.js';
import { readReportInput } from '../../../agent/reports/report-reader.js';
import { Store } from '../../../agent/events/store.js';
import { tempDir } from '../../helpers/tools.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const silent = pino({ level: 'silent' });
const named = new Map<string, RollupSeries>();
/** One object per series, as the pipeline passes its ProbeSeries: the writer keys a series' minute by it. */
function seriesOf(probe: string, env: string): RollupSeries {
  const key = `${probe}@${env}`;
  if (!named.has(key)) named.set(key, { probe, env });
  return named.get(key)!;
}

function open(): { store: RollupStore; dir: string; clock: { now: number }; writer: RollupWriter } {
  const dir = tempDir('greenlight-rollups-');
  const store = RollupStore.open(dir);
  const clock = { now: T0 };
  const writer = new RollupWriter({ store, now: () => clock.now, logger: silent });
  onTestFinished(() => store.close());
  return { store, dir, clock, writer };
}

describe('the rollup writer', () => {
  it('writes a minute per series once the minute is over, in one transaction per flush, never per probe', () => {
    const { store, clock, writer } = open();
    for (let second = 0; second < 60; second++) {
      writer.record(seriesOf('health', 'blue'), second % 20 !== 0, 40 + second, T0 + second * 1_000);
      writer.record(seriesOf('health', 'green'), true, 30, T0 + second * 1_000);
    }
    clock.now = T0 + 59_000;
    writer.flush();
    expect(store.counts().minutes).toBe(0); // the minute is not over
    writer.record(seriesOf('health', 'blue'), true, 40, T0 + MINUTE_MS + 1_000);
    clock.now = T0 + MINUTE_MS + 2_000;
    writer.flush();
    expect(store.counts()).toMatchObject({ series: 2, minutes: 2 });
    expect(writer.pendingMinutes).toBe(1); // the minute in progress stays in memory
    const totals = store.seriesTotals(Math.floor(T0 / HOUR_MS), Math.floor(T0 / HOUR_MS) + 1);
    expect(totals.find((t) => t.env === 'blue')).toMatchObject({ probe: 'health', count: 60, failures: 3 });
    expect(totals.find((t) => t.env === 'green')).toMatchObject({ count: 60, failures: 0 });
  });

  it('adds up two objects of one series in one minute (a reload rebuilt it) into one row', () => {
    const { store, clock, writer } = open();
    const before = { probe: 'health', env: 'blue' };
    const rebuilt = { probe: 'health', env: 'blue' };
    for (let second = 0; second < 20; second++) writer.record(before, true, 10, T0 + second * 1_000);
    for (let second = 20; second < 60; second++) writer.record(rebuilt, second !== 30, 10, T0 + second * 1_000);
    clock.now = T0 + MINUTE_MS;
    writer.flush();
    expect(store.counts()).toMatchObject({ series: 1, minutes: 1 });
    const [row] = store.envHours(Math.floor(T0 / HOUR_MS), Math.floor(T0 / HOUR_MS) + 1);
    expect(row).toMatchObject({ env: 'blue', count: 60, failures: 1 });
  });

  it('adds a minute written in two parts (a report flushes the minute in progress) into one row', () => {
    const { store, clock, writer } = open();
    const expected = new LatencyHistogram();
    const record = (second: number, ok: boolean) => {
      writer.record(seriesOf('universe', 'blue'), ok, 10 + second, T0 + second * 1_000);
      expected.add(10 + second);
    };
    for (let second = 0; second < 30; second++) record(second, true);
    clock.now = T0 + 30_000;
    writer.flush({ all: true });
    for (let second = 30; second < 60; second++) record(second, second !== 45);
    clock.now = T0 + MINUTE_MS;
    writer.flush();
    expect(store.counts().minutes).toBe(1);
    const [row] = store.envHours(Math.floor(T0 / HOUR_MS), Math.floor(T0 / HOUR_MS) + 1);
    expect(row).toMatchObject({ env: 'blue', count: 60, failures: 1, latencyMs: (10 + 69) * 30 });
    const histogram = new LatencyHistogram();
    histogram.addEncoded(row!.bins);
    expect([...histogram.bins]).toEqual([...expected.bins]);
  });

  it('adds each minute to its hour as it writes it: the hour rows are current, a late minute adds to its hour', () => {
    const { store, clock, writer } = open();
    const hour = Math.floor(T0 / HOUR_MS);
    const expected = new LatencyHistogram();
    for (let minute = 0; minute < 60; minute++) {
      for (const probe of ['health', 'universe']) {
        const latency = 20 + minute + (probe === 'universe' ? 100 : 0);
        writer.record(seriesOf(probe, 'blue'), minute !== 7, latency, T0 + minute * MINUTE_MS + 5_000);
        expected.add(latency);
      }
      clock.now = T0 + (minute + 1) * MINUTE_MS;
      writer.flush();
      // Mid-hour, the hour's rows hold every minute written so far.
      expect(store.envHours(hour, hour + 1)[0]!.count).toBe((minute + 1) * 2);
    }
    expect(store.counts()).toMatchObject({ minutes: 120, hours: 2, envHours: 1 });
    const [row] = store.envHours(hour, hour + 1);
    expect(row).toMatchObject({ env: 'blue', hour, count: 120, failures: 2 });
    const histogram = new LatencyHistogram();
    histogram.addEncoded(row!.bins);
    expect([...histogram.bins]).toEqual([...expected.bins]);
    expect(histogram.quantile(0.95)).toBe(expected.quantile(0.95));
    expect(
      store
        .seriesTotals(hour, hour + 1)
        .map((t) => [t.probe, t.count, t.failures])
        .sort(),
    ).toEqual([
      ['health', 60, 1],
      ['universe', 60, 1],
    ]);
    // A late minute of that hour (written after an outage) adds to it.
    writer.record(seriesOf('health', 'blue'), false, 5, T0 + 30 * MINUTE_MS + 30_000);
    writer.flush({ all: true });
    expect(store.envHours(hour, hour + 1)[0]).toMatchObject({ count: 121, failures: 3 });
    expect(store.failingSeries(hour, hour + 1).sort((a, b) => a.probe.localeCompare(b.probe))).toEqual([
      { probe: 'health', env: 'blue', failures: 2 },
      { probe: 'universe', env: 'blue', failures: 1 },
    ]);
  });

  it('holds minutes in memory while the database refuses writes, and writes them when it takes them again', () => {
    const { store, clock, writer } = open();
    const logs: string[] = [];
    const broken = {
      path: store.path,
      writeMinutes: () => {
        throw new Error('disk I/O error');
      },
    };
    const failing = new RollupWriter({ store: broken, now: () => clock.now, logger: pino({ level: 'warn' }, { write: (line: string) => logs.push(line) }) });
    for (let minute = 0; minute < 15; minute++) failing.record(seriesOf('health', 'blue'), true, 10, T0 + minute * MINUTE_MS);
    clock.now = T0 + 15 * MINUTE_MS;
    failing.flush();
    expect(failing.pendingMinutes).toBe(10); // bounded: the oldest five were dropped
    expect(logs.some((line) => line.includes('cannot write') && line.includes('disk I/O error'))).toBe(true);
    expect(logs.filter((line) => line.includes('dropped a minute')).length).toBe(5);
    writer.record(seriesOf('health', 'blue'), true, 10, T0);
    writer.flush();
    expect(store.counts().minutes).toBe(1);
  });
});

describe('rollup retention', () => {
  function fill(store: RollupStore, writer: RollupWriter, clock: { now: number }, hours: number, series = 4): void {
    for (let minute = 0; minute < hours * 60; minute++) {
      for (let s = 0; s < series; s++) writer.record(seriesOf(`probe-${s}`, s % 2 ? 'blue' : 'green'), true, 10 + s, T0 + minute * MINUTE_MS);
      if ((minute + 1) % 60 === 0) {
        clock.now = T0 + (minute + 1) * MINUTE_MS;
        writer.flush();
      }
    }
  }

  it('deletes minutes past minuteAge (their hours stay) and hours past maxAge, oldest first', () => {
    const { store, clock, writer } = open();
    fill(store, writer, clock, 6);
    expect(store.counts()).toMatchObject({ minutes: 6 * 60 * 4, hours: 6 * 4, envHours: 6 * 2 });
    const now = T0 + 6 * HOUR_MS;
    const result = store.prune({ now, maxAgeMs: 4 * HOUR_MS, minuteAgeMs: 2 * HOUR_MS, maxBytes: 1 << 30 });
    expect(result).toMatchObject({ minutes: 4 * 60 * 4, hours: 2 * 4, bySize: 0, more: false });
    expect(store.counts()).toMatchObject({ minutes: 2 * 60 * 4, hours: 4 * 4, envHours: 4 * 2 });
    expect(store.oldest()).toBe(T0 + 2 * HOUR_MS);
  });

  it('keeps the file under maxSize by deleting the oldest rollups first, hours before minutes', () => {
    const { store, clock, writer } = open();
    fill(store, writer, clock, 12, 40);
    const now = T0 + 12 * HOUR_MS;
    const before = store.usedBytes();
    const bound = Math.floor(before / 2);
    const result = store.prune({ now, maxAgeMs: 90 * 86_400_000, minuteAgeMs: 86_400_000, maxBytes: bound });
    expect(result.bytes).toBeLessThanOrEqual(bound);
    expect(result.bySize).toBeGreaterThan(0);
    expect(store.usedBytes()).toBeLessThanOrEqual(bound);
    // What is left is the newest: nothing older than what remains was kept.
    const oldest = store.oldest()!;
    expect(oldest).toBeGreaterThan(T0);
    expect(store.envHours(Math.floor(T0 / HOUR_MS), Math.floor(oldest / HOUR_MS)).length).toBe(0);
  });

  it('enforces the bounds at start, in slices, and logs what it deleted', async () => {
    const { store, clock, writer } = open();
    fill(store, writer, clock, 3, 200);
    const logs: string[] = [];
    const retention = new RollupRetention({
      store,
      maxAge: HOUR_MS,
      maxSize: 1 << 30,
      minuteAge: 2 * HOUR_MS,
      every: 3_600_000,
      now: () => T0 + 3 * HOUR_MS,
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
    });
    onTestFinished(() => retention.close());
    retention.start();
    await expect.poll(() => logs.some((line) => line.includes('rollup retention: deleted')), { timeout: 10_000 }).toBe(true);
    expect(store.counts()).toMatchObject({ minutes: 2 * 60 * 200, hours: 200 });
  });
});

describe('the rollup database read-only', () => {
  it('is absent when no agent has probed yet, and refuses writes when open for reading', () => {
    const dir = tempDir('greenlight-rollups-');
    expect(RollupStore.openReadOnly(dir)).toBeUndefined();
    const writable = RollupStore.open(dir);
    writable.writeMinutes([
      { minute: Math.floor(T0 / MINUTE_MS), probe: 'health', env: 'blue', count: 1, failures: 0, latencyMs: 5, bins: new LatencyHistogram().encode() },
    ]);
    const readonly = RollupStore.openReadOnly(dir)!;
    onTestFinished(() => (readonly.close(), writable.close()));
    expect(readonly.counts().minutes).toBe(1);
    expect(() => readonly.writeMinutes([{ minute: 1, probe: 'x', env: 'blue', count: 1, failures: 0, latencyMs: 1, bins: Buffer.alloc(0) }])).toThrow(
      /read-only/,
    );
  });

  it('says what to fix when the data directory is not writable', () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    expect(() => RollupStore.open(file)).toThrow(/cannot open the rollup database .*GREENLIGHT_DATA_DIR/);
  });
});

describe("a report's first, partial hour", () => {
  it("is read from its minute rows, from the period's own minute on (regression: a 15-minute report counted the whole hour, with a fault over before it began)", async () => {
    const { store, dir, clock, writer } = open();
    // 12:00–12:30, a probe a second: every probe fails for the first ten minutes, then all pass.
    for (let second = 0; second < 30 * 60; second++) writer.record(seriesOf('health', 'blue'), second >= 600, 20, T0 + second * 1_000);
    clock.now = T0 + 30 * MINUTE_MS;
    writer.flush();
    const journal = Store.open(dir, () => clock.now);
    onTestFinished(() => journal.close());
    const read = (sinceMs: number) =>
      readReportInput(
        { rollups: store, journal, slice: (work) => Promise.resolve(work()) },
        { now: clock.now, sinceMs, timezone: 'UTC', environments: ['blue'], activeEnvironment: 'blue', slo: [] },
      );
    const quarter = await read(15 * MINUTE_MS);
    const sum = (input: Awaited<ReturnType<typeof read>>) =>
      input.envHours
        .filter((row) => row.env === 'blue')
        .reduce((acc, row) => ({ count: acc.count + row.count, failures: acc.failures + row.failures }), { count: 0, failures: 0 });
    expect(sum(quarter)).toEqual({ count: 15 * 60, failures: 0 });
    expect(quarter.seriesTotals).toEqual([]);
    // A period that reaches into the fault counts its failures, and only those in it.
    const twentyFive = await read(25 * MINUTE_MS);
    expect(sum(twentyFive)).toEqual({ count: 25 * 60, failures: 5 * 60 });
    expect(twentyFive.seriesTotals).toEqual([{ probe: 'health', env: 'blue', count: 25 * 60, failures: 5 * 60 }]);
    // The whole hour, from its start: the hour rows.
    expect(sum(await read(30 * MINUTE_MS))).toEqual({ count: 30 * 60, failures: 10 * 60 });
  });
});

describe('events stamped ahead of now', () => {
  it('count at now, not at all (regression: a rollback journaled while the clock was ahead was in no report)', async () => {
    const { store, dir } = open();
    const now = T0 + 30 * MINUTE_MS;
    const journal = Store.open(dir, () => now);
    onTestFinished(() => journal.close());
    const switched = (id: number, at: number) =>
      ({
        id,
        time: new Date(at).toISOString(),
        type: 'traffic.switched',
        severity: 'warning',
        env: 'green',
        probe: null,
        rule: 'live-universe-failing',
        message: 'live traffic switched blue → green',
        data: { from: 'blue', to: 'green', incident: 'live-universe-failing#1', kind: 'rollback' },
      }) as never;
    // One a minute ago, one stamped an hour ahead (the clock was ahead when it was written).
    journal.appendEvents([switched(1, now - MINUTE_MS), switched(2, now + HOUR_MS)]);
    const input = await readReportInput(
      { rollups: store, journal, slice: (work) => Promise.resolve(work()) },
      { now, sinceMs: HOUR_MS, timezone: 'UTC', environments: ['blue', 'green'], activeEnvironment: 'green', slo: [] },
    );
    expect(input.events.filter((e) => e.type === 'traffic.switched').map((e) => [e.id, e.time])).toEqual([
      [1, new Date(now - MINUTE_MS).toISOString()],
      [2, new Date(now).toISOString()],
    ]);
  });
});

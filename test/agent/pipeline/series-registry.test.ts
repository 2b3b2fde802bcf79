/**
 * SeriesRegistry: the indexes the facts read, removal of many series at once (a reload), and the
 * wait for every series to refill after a held resume.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../config/load-config.js';
import { Redactor } from '../../../config/redactor.js';
import { ProbeScheduler } from '../../../agent/pipeline/probe-scheduler.js';
import { SeriesRegistry, seriesSpecs, type SeriesEntry } from '../../../agent/pipeline/series-registry.js';
import { AgentMetrics } from '../../../agent/telemetry/metrics.js';

const NOW = 1_760_000_000_000;

function registry(probes: string): SeriesRegistry {
  const config = parseConfig(
    ['environments:', '  blue: { url: "http://127.0.0.1:9" }', '  green: { url: "http://127.0.0.1:9" }', 'probes:', probes].join('\n'),
    {},
  );
  const registry = new SeriesRegistry({
    scheduler: new ProbeScheduler({ now: () => Date.now(), onError: () => undefined }),
    metrics: new AgentMetrics({ now: () => NOW, processMetrics: false }),
    redactor: Redactor.of(config),
    now: () => NOW,
    runner: { run: () => Promise.resolve(undefined), skipped: () => undefined },
  });
  registry.add(config, seriesSpecs(config));
  return registry;
}

const PROBES = [
  '  - { name: health, path: /api/health }',
  '  - { name: universe, path: /api/universe }',
  '  - { name: nightly, path: /api/report, cron: "0 3 * * *" }',
].join('\n');

function entry(series: SeriesRegistry, key: string): SeriesEntry {
  return series.entries.find((e) => e.key === key)!;
}

/** Record `count` passing results on `key`; what noteRefilled said after each. */
function refill(series: SeriesRegistry, key: string, count: number): boolean[] {
  const target = entry(series, key);
  const answers: boolean[] = [];
  for (let n = 0; n < count; n++) {
    target.series.record({ probe: target.series.probe, env: target.series.env, ok: true, durationMs: 5, startedAt: NOW + n, checks: [], extracted: {} });
    answers.push(series.noteRefilled(target));
  }
  return answers;
}

describe('SeriesRegistry: waiting for the series to refill (a held resume)', () => {
  it('ends exactly when the last interval series still short reaches the count; cron series are not awaited', () => {
    const series = registry(PROBES);
    refill(series, 'health@blue', 3);
    series.awaitResults(3);
    // health@blue had its three before the wait began; a result of it says the others are still short.
    expect(refill(series, 'health@blue', 1)).toEqual([false]);
    expect(refill(series, 'health@green', 3)).toEqual([false, false, false]);
    expect(refill(series, 'universe@blue', 3)).toEqual([false, false, false]);
    expect(refill(series, 'universe@green', 3)).toEqual([false, false, true]); // nightly (cron) never ran
  });

  it('a series removed while awaited no longer holds the wait; a new wait lists the series short now', async () => {
    const series = registry(PROBES);
    series.awaitResults(2);
    refill(series, 'health@blue', 2);
    refill(series, 'health@green', 2);
    refill(series, 'universe@blue', 2);
    await series.remove([entry(series, 'universe@green')]);
    expect(refill(series, 'health@blue', 1)).toEqual([true]);
    series.awaitResults(3);
    expect(refill(series, 'health@blue', 1)).toEqual([false]); // it has 4, the others 2
    expect(refill(series, 'health@green', 1)).toEqual([false]);
    expect(refill(series, 'universe@blue', 1)).toEqual([true]);
  });

  it('with every series already refilled, the next result ends the wait', () => {
    const series = registry(PROBES);
    for (const key of ['health@blue', 'health@green', 'universe@blue', 'universe@green']) refill(series, key, 1);
    series.awaitResults(1);
    expect(refill(series, 'universe@green', 1)).toEqual([true]);
  });
});

describe('SeriesRegistry: removing many series at once', () => {
  it('drops exactly those given, from the entries and the indexes the facts read', async () => {
    const series = registry(PROBES);
    expect(series.entries.map((e) => e.key)).toEqual(['health@blue', 'health@green', 'universe@blue', 'universe@green', 'nightly@blue', 'nightly@green']);
    await series.remove([entry(series, 'health@green'), entry(series, 'universe@blue'), entry(series, 'nightly@blue')]);
    expect(series.entries.map((e) => e.key)).toEqual(['health@blue', 'universe@green', 'nightly@green']);
    expect(series.of('blue').map((s) => s.probe)).toEqual(['health']);
    expect(series.of('green').map((s) => s.probe)).toEqual(['universe', 'nightly']);
    expect(series.named('blue', 'universe')).toBeUndefined();
    expect(series.named('green', 'universe')?.env).toBe('green');
    expect(series.intervalEntriesOf('green').map((e) => e.key)).toEqual(['universe@green']);
  });

  it('ends the probes in flight of the series it drops, and only theirs', async () => {
    const series = registry(PROBES);
    const dropped = entry(series, 'health@blue');
    const kept = entry(series, 'health@green');
    await series.remove([dropped]);
    expect(dropped.inFlight.cancelled).toBe(true);
    expect(kept.inFlight.cancelled).toBe(false);
  });
});

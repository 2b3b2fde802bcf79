/**
 * What probing costs while an incident is open, against the same agent healthy a moment before:
 * N series at 1 s with the stock rules (bench/harness.ts BenchRules `stock`), measured healthy,
 * then with blue (live) answering 500 to every request and green to half of them. The stock
 * rules then fire and the rollback is held (green is failing too) and owed: the agent asks
 * whether it may go after every sample, and every event, alert and judgement of an incident
 * runs beside the probing. That is when greenlight must keep probing at its rate: issue 18 found
 * an owed rollback judged after each sample over every series (at 10,000 series probing fell
 * from about 8,000 to 350–2,000 probes a second, at 3–9 ms a probe).
 *
 * Printed: CPU µs per completed probe and probes completed a second, healthy and in the
 * incident, and their ratios. The first-round timeouts of a cold start at thousands of series
 * may fire a rule before the faults; the bench waits for a held rollback either way.
 */
import { fmt, log, section, setSimulatorFaults, sleep, verdict, withStockAgent, type SummaryRow, type WorkerHandle } from './harness.js';
import { engineFigures, type EngineFigures } from './probe-engine.js';

export interface IncidentLoadOptions {
  series: number;
  /** Seconds measured healthy and in the incident (default 15 each). */
  measureSeconds?: number;
  /** Seconds before the healthy measurement (default 10). */
  warmupSeconds?: number;
}

export async function runIncidentLoad(options: IncidentLoadOptions): Promise<{ rows: SummaryRow[] }> {
  const { series } = options;
  const measure = options.measureSeconds ?? 15;
  const warmup = options.warmupSeconds ?? 10;
  section(`incident-load: ${series} series at 1 s with the stock rules, healthy and then with a held (owed) rollback, ${measure} s each`);
  return withStockAgent(series, warmup, async (worker, { blue, green }) => {
    const healthy = await period(worker, 'healthy', series, measure);
    log(`  healthy:     ${fmt(healthy.usPerProbe, 0)} µs/probe, ${fmt(healthy.rate, 0)} probes/s`);

    await setSimulatorFaults(green, { errorRatio: 0.5 });
    await setSimulatorFaults(blue, { errorRatio: 1 });
    const heldWithin = await waitForHold(worker, 30_000);
    if (heldWithin === undefined) log('  no rollback was held within 30 s of the faults: the incident figures below have no owed rollback');
    else log(`  the rollback was held (action.skipped) ${fmt(heldWithin / 1_000, 1)} s after the faults`);
    const incident = await period(worker, 'with an owed rollback', series, measure);
    const events = await worker.call<Record<string, number>>({ cmd: 'events' });
    log(`  in incident: ${fmt(incident.usPerProbe, 0)} µs/probe, ${fmt(incident.rate, 0)} probes/s`);
    log(`  events since start: ${JSON.stringify(events)}`);

    const cost = incident.usPerProbe / healthy.usPerProbe;
    const rate = incident.rate / healthy.rate;
    const held = heldWithin === undefined ? ' (no rollback held)' : '';
    return {
      rows: [
        {
          bench: 'incident-load',
          figure: `${series} series, CPU per probe with an owed rollback / healthy`,
          target: '<= 1.5x',
          measured: `${fmt(cost, 2)}x (${fmt(incident.usPerProbe, 0)} vs ${fmt(healthy.usPerProbe, 0)} µs)${held}`,
          verdict: verdict(heldWithin === undefined ? undefined : cost <= 1.5),
        },
        {
          bench: 'incident-load',
          figure: `${series} series, probes a second with an owed rollback / healthy`,
          target: '>= 0.8x',
          measured: `${fmt(rate, 2)}x (${fmt(incident.rate, 0)} vs ${fmt(healthy.rate, 0)}/s)${held}`,
          verdict: verdict(heldWithin === undefined ? undefined : rate >= 0.8),
        },
      ],
    };
  });
}

/** The worker's figures over the next `seconds` (CPU per completed probe, completions a second). */
async function period(worker: WorkerHandle, label: string, series: number, seconds: number): Promise<EngineFigures> {
  const first = await worker.sample();
  await sleep(seconds * 1_000);
  return engineFigures(label, first, await worker.sample(), series, undefined);
}

/** Milliseconds until the agent has held a rollback (an action.skipped event), or undefined past `withinMs`. */
async function waitForHold(worker: WorkerHandle, withinMs: number): Promise<number | undefined> {
  const start = performance.now();
  const before = (await worker.call<Record<string, number>>({ cmd: 'events' }))['action.skipped'] ?? 0;
  while (performance.now() - start < withinMs) {
    const now = (await worker.call<Record<string, number>>({ cmd: 'events' }))['action.skipped'] ?? 0;
    if (now > before) return performance.now() - start;
    await sleep(250);
  }
  return undefined;
}

/**
 * Runs the benchmarks in sequence and prints a summary table (figure, target, measured, verdict).
 *
 *   npm run bench                                   # everything, 1,000 series, 10-minute soak
 *   node dist/bench/run-all.js --soak 60            # a quick memory soak
 *   node dist/bench/run-all.js --only probe-engine --series 100
 *   node dist/bench/run-all.js --only promote --watch 10
 *   node dist/bench/run-all.js --only loadtest --load-seconds 10
 *   node dist/bench/run-all.js --only flag-audit --flag-seconds 5
 *   node dist/bench/run-all.js --only stream-load --stream-seconds 20
 *   node dist/bench/run-all.js --only alert-storm --page-trials 3
 *   node dist/bench/run-all.js --only incident-load --series 10000
 *   node dist/bench/run-all.js --only reload --series 4000
 *
 * Verdicts are printed, never enforced: the machine is small and noisy, so the exit code only
 * says whether the benches ran (0) or broke (1), or the arguments were wrong (2).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runAlertStorm } from './alert-storm.js';
import { runFanout } from './fanout.js';
import { runFlagAudit } from './flag-audit.js';
import { runIncidentLoad } from './incident-load.js';
import { runJournalBytes, runJournalIngest } from './journal.js';
import { runMemory } from './memory.js';
import { runMetricsRender } from './metrics-render.js';
import { runProbeEngine } from './probe-engine.js';
import { runLoadtestBench, runPromote } from './promote.js';
import { runReloadBench } from './reload.js';
import { runRuleDecision } from './rule-decision.js';
import { runScale, SCALE_SIZES } from './scale.js';
import { runSloMemory } from './slo-memory.js';
import { runReport } from './report.js';
import { runJsonSelect } from './json-select.js';
import { runStreamLoad } from './stream-load.js';
import { log, section, table, type SummaryRow } from './harness.js';

const BENCHES = [
  'probe-engine',
  'json-select',
  'memory',
  'slo-memory',
  'metrics-render',
  'rules',
  'journal-ingest',
  'journal-bytes',
  'flag-audit',
  'fanout',
  'stream-load',
  'promote',
  'loadtest',
  'report',
  'alert-storm',
  'incident-load',
  'reload',
  'scale',
] as const;
type BenchName = (typeof BENCHES)[number];

const USAGE = `usage: node dist/bench/run-all.js [--only ${BENCHES.join('|')}] [--soak SECONDS] [--series N] [--measure SECONDS] [--events N] [--fanout-seconds SECONDS] [--fanout-rounds N] [--watch SECONDS] [--load-seconds S] [--flag-seconds S] [--stream-events N] [--stream-seconds S] [--page-trials N] [--decision-trials N]
  --only NAME               run one bench (default: all, in the order above)
  --soak SECONDS            memory growth run length after warm-up (default 600)
  --series N                probe x environment series (default 1000)
  --measure SECONDS         probe-engine measurement period per contender (default 20)
  --events N                events the journal benches write (default 100000)
  --fanout-seconds SECONDS  fan-out measurement at 1,000 events/s; each step up takes half (default 5)
  --fanout-rounds N         fan-out: rounds at the highest rate both sustain; ratio the median of each round's; a round either side fails starts them over at half the rate (default 5)
  --watch SECONDS           promote: the watch period after the switch (default 10)
  --load-seconds S          loadtest: seconds at each rate (default 10)
  --flag-seconds S          flag-audit: seconds of flag changes for each way of persisting them (default 5)
  --stream-events N         stream-load: events in the journal replayed (default 300000)
  --stream-seconds S        stream-load: seconds of each phase, idle and loaded (default 30)
  --page-trials N           alert-storm: fault → first page trials with and without grouping (default 5)
  --decision-trials N       rules: decisions timed for the decision latency (default 200)
  --scale                   the cost curve alone (same as --only scale): CPU per probe at 100, 1000, 4000, 10000 series
                            for undici, greenlight (no rules, stock rules, 200 rules) and blackbox_exporter (~15 min)
  --scale-sizes LIST        scale: comma-separated sizes (default ${SCALE_SIZES.join(',')})
  --scale-seconds S         scale: seconds measured per contender, size and round (default 6)
  --scale-trials N          scale: rounds per size; cells are medians, ratios the median of each round's (default 3)
  --chart FILE.svg          scale: draw the curve there and save the figures as FILE.json
  --before FILE.json        scale: an earlier run's figures, drawn dashed behind`;

function parse():
  | {
      only: BenchName | undefined;
      soak: number;
      series: number;
      measure: number;
      events: number;
      fanoutSeconds: number;
      fanoutRounds: number;
      watch: number;
      loadSeconds: number;
      flagSeconds: number;
      streamEvents: number;
      streamSeconds: number;
      pageTrials: number;
      decisionTrials: number;
      scaleSizes: number[];
      scaleSeconds: number;
      scaleTrials: number;
      chart: string | undefined;
      before: string | undefined;
    }
  | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        only: { type: 'string' },
        soak: { type: 'string', default: '600' },
        series: { type: 'string', default: '1000' },
        measure: { type: 'string', default: '20' },
        events: { type: 'string', default: '100000' },
        'fanout-seconds': { type: 'string', default: '5' },
        'fanout-rounds': { type: 'string', default: '5' },
        watch: { type: 'string', default: '10' },
        'load-seconds': { type: 'string', default: '10' },
        'flag-seconds': { type: 'string', default: '5' },
        'stream-events': { type: 'string', default: '300000' },
        'stream-seconds': { type: 'string', default: '30' },
        'page-trials': { type: 'string', default: '5' },
        'decision-trials': { type: 'string', default: '200' },
        scale: { type: 'boolean' },
        'scale-sizes': { type: 'string', default: SCALE_SIZES.join(',') },
        'scale-seconds': { type: 'string', default: '6' },
        'scale-trials': { type: 'string', default: '3' },
        chart: { type: 'string' },
        before: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return undefined;
  }
  if (values.help) {
    log(USAGE);
    process.exit(0);
  }
  const fail = (message: string) => {
    process.stderr.write(`${message}\n${USAGE}\n`);
    return undefined;
  };
  if (values.only !== undefined && !(BENCHES as readonly string[]).includes(values.only))
    return fail(`--only must be one of ${BENCHES.join(', ')} (got "${values.only}")`);
  const soak = Number(values.soak);
  const series = Number(values.series);
  const measure = Number(values.measure);
  if (!Number.isFinite(soak) || soak < 10) return fail(`--soak must be a number of seconds >= 10 (got "${values.soak}")`);
  if (!Number.isInteger(series) || series < 1 || series > 20_000) return fail(`--series must be an integer from 1 to 20000 (got "${values.series}")`);
  if (!Number.isFinite(measure) || measure < 2) return fail(`--measure must be a number of seconds >= 2 (got "${values.measure}")`);
  const events = Number(values.events);
  const fanoutSeconds = Number(values['fanout-seconds']);
  if (!Number.isInteger(events) || events < 1_000 || events > 10_000_000)
    return fail(`--events must be an integer from 1000 to 10000000 (got "${values.events}")`);
  if (!Number.isFinite(fanoutSeconds) || fanoutSeconds < 1)
    return fail(`--fanout-seconds must be a number of seconds >= 1 (got "${values['fanout-seconds']}")`);
  const fanoutRounds = Number(values['fanout-rounds']);
  if (!Number.isInteger(fanoutRounds) || fanoutRounds < 1 || fanoutRounds > 20)
    return fail(`--fanout-rounds must be an integer from 1 to 20 (got "${values['fanout-rounds']}")`);
  const watch = Number(values.watch);
  const loadSeconds = Number(values['load-seconds']);
  if (!Number.isFinite(watch) || watch < 1) return fail(`--watch must be a number of seconds >= 1 (got "${values.watch}")`);
  if (!Number.isFinite(loadSeconds) || loadSeconds < 1) return fail(`--load-seconds must be a number of seconds >= 1 (got "${values['load-seconds']}")`);
  const streamEvents = Number(values['stream-events']);
  const streamSeconds = Number(values['stream-seconds']);
  if (!Number.isInteger(streamEvents) || streamEvents < 1_000 || streamEvents > 5_000_000)
    return fail(`--stream-events must be an integer from 1000 to 5000000 (got "${values['stream-events']}")`);
  if (!Number.isInteger(streamSeconds) || streamSeconds < 5)
    return fail(`--stream-seconds must be a whole number of seconds >= 5 (got "${values['stream-seconds']}")`);
  const flagSeconds = Number(values['flag-seconds']);
  if (!Number.isFinite(flagSeconds) || flagSeconds < 1) return fail(`--flag-seconds must be a number of seconds >= 1 (got "${values['flag-seconds']}")`);
  const pageTrials = Number(values['page-trials']);
  if (!Number.isInteger(pageTrials) || pageTrials < 1 || pageTrials > 50)
    return fail(`--page-trials must be an integer from 1 to 50 (got "${values['page-trials']}")`);
  const decisionTrials = Number(values['decision-trials']);
  if (!Number.isInteger(decisionTrials) || decisionTrials < 10 || decisionTrials > 2_000)
    return fail(`--decision-trials must be an integer from 10 to 2000 (got "${values['decision-trials']}")`);
  const scaleSizes = values['scale-sizes'].split(',').map(Number);
  if (scaleSizes.some((n) => !Number.isInteger(n) || n < 1 || n > 20_000))
    return fail(`--scale-sizes must be integers from 1 to 20000, comma-separated (got "${values['scale-sizes']}")`);
  const scaleSeconds = Number(values['scale-seconds']);
  if (!Number.isFinite(scaleSeconds) || scaleSeconds < 2) return fail(`--scale-seconds must be a number of seconds >= 2 (got "${values['scale-seconds']}")`);
  const scaleTrials = Number(values['scale-trials']);
  if (!Number.isInteger(scaleTrials) || scaleTrials < 1 || scaleTrials > 20)
    return fail(`--scale-trials must be an integer from 1 to 20 (got "${values['scale-trials']}")`);
  if (values.scale && values.only !== undefined && values.only !== 'scale') return fail('--scale runs the scale bench alone: drop --only');
  return {
    only: values.scale ? 'scale' : (values.only as BenchName | undefined),
    scaleSizes,
    scaleSeconds,
    scaleTrials,
    chart: values.chart,
    before: values.before,
    soak,
    series,
    measure,
    events,
    fanoutSeconds,
    fanoutRounds,
    watch,
    loadSeconds,
    flagSeconds,
    streamEvents,
    streamSeconds,
    pageTrials,
    decisionTrials,
  };
}

type Options = NonNullable<ReturnType<typeof parse>>;

/** Each bench by name, with the options it reads. */
const RUNNERS: Record<BenchName, (options: Options) => Promise<{ rows: SummaryRow[] }> | { rows: SummaryRow[] }> = {
  'probe-engine': (o) => runProbeEngine({ series: o.series, measureSeconds: o.measure }),
  'json-select': () => runJsonSelect(),
  memory: (o) => runMemory({ series: o.series, soakSeconds: o.soak }),
  'slo-memory': (o) => runSloMemory({ series: o.series }),
  'metrics-render': (o) => runMetricsRender({ series: o.series }),
  rules: async (o) => ({ rows: await runRuleDecision({ series: o.series, trials: o.decisionTrials }) }),
  'journal-ingest': (o) => runJournalIngest({ events: o.events }),
  'journal-bytes': (o) => runJournalBytes({ events: o.events }),
  'flag-audit': (o) => runFlagAudit({ seconds: o.flagSeconds }),
  fanout: (o) => runFanout({ seconds: o.fanoutSeconds, rounds: o.fanoutRounds }),
  'stream-load': (o) => runStreamLoad({ events: o.streamEvents, seconds: o.streamSeconds }),
  promote: (o) => runPromote({ watchSeconds: o.watch }),
  loadtest: (o) => runLoadtestBench({ seconds: o.loadSeconds }),
  report: (o) => runReport({ series: o.series }),
  'alert-storm': (o) => runAlertStorm({ trials: o.pageTrials }),
  'incident-load': (o) => runIncidentLoad({ series: o.series }),
  reload: (o) => runReloadBench({ series: o.series }),
  scale: (o) => runScale({ sizes: o.scaleSizes, measureSeconds: o.scaleSeconds, trials: o.scaleTrials, chart: o.chart, before: o.before }),
};

async function main(): Promise<number> {
  const options = parse();
  if (!options) return 2;
  // The scale curve runs only when asked (--scale): it takes minutes and repeats probe-engine at four sizes.
  const selected = options.only ? [options.only] : BENCHES.filter((name) => name !== 'scale');
  log(`greenlight benchmarks: ${selected.join(', ')}`);
  log(`settings: --series ${options.series} --soak ${options.soak} s --measure ${options.measure} s${options.only ? ` --only ${options.only}` : ''}`);
  log(
    `machine: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  log('figures are CPU and wall-clock times on this machine: compare ratios, not absolute numbers, across machines');

  const rows: SummaryRow[] = [];
  let broken = false;
  const started = performance.now();
  for (const name of selected) {
    try {
      const result = await RUNNERS[name](options);
      rows.push(...result.rows);
    } catch (error) {
      broken = true;
      log(`\n${name} FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      rows.push({
        bench: name,
        figure: '(bench failed)',
        target: '-',
        measured: error instanceof Error ? error.message.split('\n')[0]! : String(error),
        verdict: 'MISS',
      });
    }
  }

  section(`summary (${options.series} series, soak ${options.soak} s, ${((performance.now() - started) / 1_000).toFixed(0)} s in all)`);
  log(
    table(
      ['bench', 'figure', 'target', 'measured', 'verdict'],
      rows.map((r) => [r.bench, r.figure, r.target, r.measured, r.verdict]),
    ),
  );
  const misses = rows.filter((r) => r.verdict === 'MISS').length;
  log(`\n${misses === 0 ? 'all targets met' : `${misses} target(s) missed`} (verdicts are informational; wall-clock figures are never asserted)`);
  return broken ? 1 : 0;
}

process.exitCode = await main();

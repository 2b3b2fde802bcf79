/**
 * Two builds of greenlight side by side: this one and another (`--other DIR`, that build's
 * `dist/`, e.g. a `git worktree` of an earlier commit built with `npx tsc -p
 * tsconfig.build.json`), each an agent worker with its own two simulator processes, both running
 * at once with the same series and rules. A change in the machine's speed then hits both alike:
 * run one after the other, an agent's CPU per probe here moves by ±20 % between runs minutes
 * apart, more than most changes it is asked to judge; side by side, a round's ratio moved by ±3 %
 * (issue 18's eighteenth round).
 *
 *   node dist/bench/side-by-side.js --other /work/exp/dist [--series 2000] [--rounds 4]
 *     [--warmup 25] [--seconds 30] [--rules none|stock|many]
 *
 * Per round: each build's CPU µs per completed probe (all its threads), achieved rate, RSS, heap
 * total and heap after a forced full collection; then this build's CPU against the other's, and
 * the median of those ratios over the rounds. Both builds together probe twice `--series` a
 * second on one machine: keep that within what it sustains (on 2 cores, 2 × 2,500).
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as here from './harness.js';
import { fmt, log, section, sleep, type BenchRules, type WorkerSample } from './harness.js';

type Harness = typeof here;

interface Figures {
  us: number;
  rate: number;
  failed: number;
  rss: number;
  heapTotal: number;
  heapAfterGc: number | undefined;
}

/** One agent of `harness`'s build, warmed up and measured over `seconds`; its simulators and it are stopped after. */
async function measure(harness: Harness, series: number, rules: BenchRules, warmup: number, seconds: number): Promise<Figures> {
  const [blue, green] = await Promise.all([harness.startSimulatorProcess('blue'), harness.startSimulatorProcess('green')]);
  const worker = harness.forkWorker(
    ['--mode', 'agent', '--series', String(series), '--blue', blue.url, '--green', green.url, '--rules', rules],
    ['--expose-gc'],
  );
  try {
    await worker.call({ cmd: 'start' });
    await sleep(warmup * 1_000);
    const first: WorkerSample = await worker.sample();
    await sleep(seconds * 1_000);
    const last: WorkerSample = await worker.sample({ gc: true });
    const completed = last.completed - first.completed;
    return {
      us: (last.cpuBeforeUs - first.cpuBeforeUs) / completed,
      rate: completed / ((last.wallBeforeMs - first.wallBeforeMs) / 1_000),
      failed: last.failed - first.failed,
      rss: first.memory.rss,
      heapTotal: last.memory.heapTotal,
      heapAfterGc: last.heapAfterGc,
    };
  } finally {
    await worker.stop();
    await Promise.all([blue.stop(), green.stop()]);
  }
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

function describe(name: string, figures: Figures): string {
  const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : fmt(bytes / 1e6, 1));
  return `${name.padEnd(5)} ${fmt(figures.us, 1)} µs/probe  ${fmt(figures.rate, 0)}/s  failed ${figures.failed}  RSS ${mb(figures.rss)} MB  heap total ${mb(figures.heapTotal)} MB  after GC ${mb(figures.heapAfterGc)} MB`;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        other: { type: 'string' },
        series: { type: 'string', default: '2000' },
        rounds: { type: 'string', default: '4' },
        warmup: { type: 'string', default: '25' },
        seconds: { type: 'string', default: '30' },
        rules: { type: 'string', default: 'stock' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const numbers = { series: Number(values.series), rounds: Number(values.rounds), warmup: Number(values.warmup), seconds: Number(values.seconds) };
  for (const [name, value] of Object.entries(numbers))
    if (!Number.isInteger(value) || value < 1)
      return usage(`--${name} must be a whole number of at least 1 (got "${String(values[name as keyof typeof values])}")`);
  if (!['none', 'stock', 'many'].includes(values.rules)) return usage(`--rules must be none, stock or many (got "${values.rules}")`);
  if (values.other === undefined) return usage('--other is required: the dist/ directory of the build to compare with');
  const otherHarness = join(values.other, 'bench', 'harness.js');
  if (!existsSync(otherHarness)) return usage(`--other: ${otherHarness} does not exist (build that checkout first: npx tsc -p tsconfig.build.json)`);
  const other = (await import(pathToFileURL(otherHarness).href)) as Harness;
  const rules = values.rules as BenchRules;

  section(`side by side: this build against ${values.other}, ${numbers.series} series each, ${rules} rules, ${numbers.rounds} rounds`);
  const ratios: number[] = [];
  for (let round = 1; round <= numbers.rounds; round++) {
    const [mine, theirs] = await Promise.all([
      measure(here, numbers.series, rules, numbers.warmup, numbers.seconds),
      measure(other, numbers.series, rules, numbers.warmup, numbers.seconds),
    ]);
    ratios.push(mine.us / theirs.us);
    log(`round ${round}\n  ${describe('this', mine)}\n  ${describe('other', theirs)}\n  this / other CPU per probe: ${fmt(ratios.at(-1)!, 3)}x`);
  }
  log(`this / other CPU per probe: median ${fmt(median(ratios), 3)}x (rounds ${ratios.map((ratio) => fmt(ratio, 3)).join(', ')})`);
  return 0;
}

const USAGE = 'usage: node dist/bench/side-by-side.js --other DIST [--series N] [--rounds N] [--warmup S] [--seconds S] [--rules none|stock|many]';

function usage(problem: string): number {
  process.stderr.write(`side-by-side: ${problem}\n${USAGE}\n`);
  return 2;
}

process.exitCode = await main();

/**
 * json-select: reading a probe's answer for the paths its checks name (probes/json-select.ts)
 * against the baseline of `JSON.parse` of the whole answer and a walk down each path, which is
 * what a probe did before issue 18's eighteenth round. The answers are the simulator's own four
 * AlphaStack answers, fetched from a simulator process; the paths are those the bench config's
 * probes read, compiled as the agent compiles them (`ProbeCompiler`). Both sides run in
 * alternating rounds in this process; each figure is the median of its rounds.
 */
import { request } from 'undici';
import type { PathSegment } from '../config/json-path.js';
import { Redactor } from '../config/redactor.js';
import { parseAgentConfig } from '../agent/reload/agent-config.js';
import { ProbeCompiler } from '../probes/http-probe.js';
import type { JsonSelector } from '../probes/json-select.js';
import { APP_PATHS, buildConfigText, fmt, log, section, startSimulatorProcess, table, type SummaryRow } from './harness.js';

export interface JsonSelectOptions {
  /** Alternating rounds of each side (default 7). */
  rounds?: number;
  /** Answers read per round (default 20,000). */
  reads?: number;
}

/** The config below is parsed for its probes only: no agent opens its state. */
const UNOPENED_DATA_DIR = '/nonexistent/greenlight-bench';

/** The baseline: the whole answer parsed, then each path walked (a name into an object's member, an index into a list). */
function parseWhole(bytes: Buffer, paths: readonly (readonly PathSegment[])[]): unknown[] {
  const root = JSON.parse(bytes.toString('utf8')) as unknown;
  return paths.map((segments) => {
    let value = root;
    for (const segment of segments) {
      if (typeof segment === 'number') value = Array.isArray(value) ? value[segment < 0 ? value.length + segment : segment] : undefined;
      else
        value =
          value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, segment)
            ? (value as Record<string, unknown>)[segment]
            : undefined;
      if (value === undefined) break;
    }
    return value;
  });
}

/** µs per read of `read` over `reads` reads. */
function time(reads: number, read: () => unknown): number {
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < reads; i++) if (read() !== undefined) sink++;
  const elapsed = performance.now() - start;
  if (sink !== reads) throw new Error('bug: a read returned nothing');
  return (elapsed * 1_000) / reads;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

export async function runJsonSelect(options: JsonSelectOptions = {}): Promise<{ rows: SummaryRow[] }> {
  const rounds = options.rounds ?? 7;
  const reads = options.reads ?? 20_000;
  section(
    `json-select: an answer read for its checks' paths vs JSON.parse of it whole (${rounds} alternating rounds of ${reads.toLocaleString('en-US')} reads)`,
  );
  const simulator = await startSimulatorProcess('blue');
  const answers: { path: string; bytes: Buffer; selector: JsonSelector; paths: PathSegment[][] }[] = [];
  try {
    const config = parseAgentConfig(buildConfigText({ series: 8, blueUrl: simulator.url, greenUrl: simulator.url, dataDir: UNOPENED_DATA_DIR }), {});
    const compiler = new ProbeCompiler(config, Redactor.of(config));
    for (const path of APP_PATHS) {
      const probe = config.probes.find((candidate) => candidate.path === path);
      if (!probe) throw new Error(`bug: the bench config has no probe of ${path}`);
      const reading = compiler.target(probe, 'blue').json;
      if (!reading) throw new Error(`bug: the bench config's probe of ${path} reads no JSON`);
      const paths = [
        ...probe.expect.json.map((assertion) => assertion.path.segments),
        ...Object.values(probe.extract).map((extraction) => extraction.path.segments),
      ];
      const response = await request(`${simulator.url}${path}`);
      answers.push({ path, bytes: Buffer.from(await response.body.arrayBuffer()), selector: reading.selector, paths });
    }
  } finally {
    await simulator.stop();
  }

  const rows: SummaryRow[] = [];
  const lines: string[][] = [];
  let selectedTotal = 0;
  let parsedTotal = 0;
  for (const answer of answers) {
    const selected: number[] = [];
    const parsed: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const select = () => time(reads, () => answer.selector.select(answer.bytes));
      const parse = () => time(reads, () => parseWhole(answer.bytes, answer.paths));
      // Alternate which goes first, so neither always runs on the other's warm caches.
      if (round % 2 === 0) {
        selected.push(select());
        parsed.push(parse());
      } else {
        parsed.push(parse());
        selected.push(select());
      }
    }
    const [selectUs, parseUs] = [median(selected), median(parsed)];
    selectedTotal += selectUs;
    parsedTotal += parseUs;
    lines.push([
      answer.path,
      `${answer.bytes.length.toLocaleString('en-US')} B`,
      String(answer.paths.length),
      fmt(parseUs, 2),
      fmt(selectUs, 2),
      `${fmt(selectUs / parseUs, 2)}x`,
    ]);
  }
  log(table(['answer', 'size', 'paths', 'JSON.parse µs', 'selected µs', 'ratio'], lines));
  const ratio = selectedTotal / parsedTotal;
  log(`the four answers together (a probe of each): ${fmt(selectedTotal, 2)} µs against ${fmt(parsedTotal, 2)} µs, ${fmt(ratio, 2)}x`);
  rows.push({
    bench: 'json-select',
    figure: 'CPU per answer read for its paths vs JSON.parse of it whole (the four AlphaStack answers)',
    target: 'report',
    measured: `${fmt(selectedTotal / answers.length, 2)} vs ${fmt(parsedTotal / answers.length, 2)} µs: ${fmt(ratio, 2)}x`,
    verdict: 'info',
  });
  return { rows };
}

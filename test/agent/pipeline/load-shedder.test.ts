/**
 * The load shedder: ticks are shed only while the agent's own loop is saturated and their origin
 * has as many probes in flight as it allows (the connections, halved at each saturated sample and
 * grown back while the loop is free); a confirmation re-run never is. Then the whole path:
 * the real agent against a target that never answers, with the loop's utilization scripted. Not
 * saturated (a hung target does not busy the loop), every series still times out on its own
 * deadline and no tick is skipped. Saturated, ticks beyond the connections are skipped and counted.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FLOOR, LoadShedder, SAMPLE_MS } from '../../../agent/pipeline/load-shedder.js';
import { probeConnections } from '../../../agent/pipeline/tls-trust.js';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { startAgent, waitUntil, type StartedAgent } from '../../helpers/agent-harness.js';
import { startRecorder } from '../../helpers/recorder.js';
import { tempDir } from '../../helpers/tools.js';

function capturingLogger(): { logger: pino.Logger; lines: { level: number; msg: string; [key: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** A shedder on a scripted clock and utilization. */
function scripted(limit: number) {
  const clock = { now: 0, utilization: 1, samples: 0 };
  const { logger, lines } = capturingLogger();
  const shedder = new LoadShedder({
    limit,
    logger,
    now: () => clock.now,
    utilization: () => {
      clock.samples++;
      return clock.utilization;
    },
  });
  // The first sample is taken SAMPLE_MS after construction.
  clock.now = SAMPLE_MS;
  return { shedder, clock, lines };
}

describe('LoadShedder', () => {
  it('admits up to the limit per origin while the loop is saturated, and one more for each release', () => {
    const { shedder } = scripted(2);
    expect([shedder.admit('a'), shedder.admit('a'), shedder.admit('a')]).toEqual([true, true, false]);
    expect(shedder.admit('b')).toBe(true); // another origin has connections of its own
    shedder.release('a');
    expect(shedder.admit('a')).toBe(true);
    expect(shedder.admit('a')).toBe(false);
    expect(shedder.inFlight('a')).toBe(2);
  });

  it('sheds nothing while the loop is not saturated, however many are in flight (a hung target)', () => {
    const { shedder, clock } = scripted(2);
    clock.utilization = 0.5;
    for (let i = 0; i < 50; i++) expect(shedder.admit('a')).toBe(true);
    expect(shedder.inFlight('a')).toBe(50);
  });

  it('never sheds a confirmation re-run, and counts it in flight', () => {
    const { shedder } = scripted(1);
    expect(shedder.admit('a')).toBe(true);
    expect(shedder.admit('a', false)).toBe(true);
    expect(shedder.inFlight('a')).toBe(2);
    shedder.release('a');
    expect(shedder.admit('a')).toBe(false); // still one on the only connection
  });

  it('halves what it allows at each saturated sample, down to FLOOR, and grows it back by a sixteenth of the connections while the loop is free', () => {
    const { shedder, clock } = scripted(64);
    for (let i = 0; i < 64; i++) expect(shedder.admit('a')).toBe(true); // the connections, before any sample
    const allowed: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(shedder.admit('a')).toBe(false);
      allowed.push(shedder.allowed);
      expect(shedder.admit('b')).toBe(true); // another origin, below what is allowed: still admitted
      shedder.release('b');
      clock.now += SAMPLE_MS;
    }
    expect(allowed).toEqual([32, 16, FLOOR, FLOOR]);
    clock.utilization = 0.5;
    const grown: number[] = [];
    for (let i = 0; i < 15; i++) {
      expect(shedder.admit('a')).toBe(true); // a free loop sheds nothing
      grown.push(shedder.allowed);
      clock.now += SAMPLE_MS;
    }
    expect(grown.slice(0, 3)).toEqual([12, 16, 20]);
    expect(grown.at(-1)).toBe(64);
    // Saturated again: halved from where it grew to, and the origin is far past it.
    clock.utilization = 1;
    expect(shedder.admit('a')).toBe(false);
    expect(shedder.allowed).toBe(32);
  });

  it('samples the loop at most every SAMPLE_MS, and follows it as it changes', () => {
    const { shedder, clock } = scripted(1);
    shedder.admit('a');
    expect(shedder.admit('a')).toBe(false);
    expect(shedder.admit('a')).toBe(false);
    expect(clock.samples).toBe(1);
    clock.utilization = 0.2;
    clock.now += SAMPLE_MS - 1;
    expect(shedder.admit('a')).toBe(false); // the last sample still stands
    clock.now += 1;
    expect(shedder.admit('a')).toBe(true);
    expect(clock.samples).toBe(2);
  });

  it('logs an episode once as it starts and once after it is over, with what it shed', () => {
    const { shedder, clock, lines } = scripted(1);
    shedder.admit('a');
    for (let i = 0; i < 5; i++) shedder.admit('a');
    clock.now += 3_000;
    shedder.admit('a');
    const warned = lines.filter((line) => line.msg.includes('event loop is saturated'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.level).toBe(40);
    clock.now += 9_999; // not yet quiet for 10 s
    shedder.release('a');
    shedder.admit('b');
    expect(lines.filter((line) => line.msg.includes('caught up'))).toHaveLength(0);
    clock.now += 1;
    shedder.admit('b');
    const over = lines.filter((line) => line.msg.includes('caught up'));
    expect(over).toHaveLength(1);
    expect(over[0]).toMatchObject({ shed: 6, seconds: 3 });
    expect(over[0]!.msg).toContain('6 probe ticks were skipped over 3 s');
  });
});

// ---------------------------------------------------------------------------------------------

const PROBES = 20;

function hungConfig(url: string): string {
  const probes = Array.from({ length: PROBES }, (_, i) => `  - { name: p${i}, path: /p${i} }`).join('\n');
  return `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-shed-')}
environments:
  blue: { url: "${url}" }
  green: { url: "${url}/green" }
probeDefaults: { every: 1s, timeout: 400ms, jitter: 0 }
probes:
${probes}
`;
}

/** greenlight_probes_total per result, summed over the series. */
async function resultsOf(started: StartedAgent): Promise<Map<string, number>> {
  const { body } = await started.agent.metrics.render(false);
  const totals = new Map<string, number>();
  for (const match of body.matchAll(/^greenlight_probes_total\{probe="p\d+",env="\w+",result="(\w+)"\} (\d+)/gm)) {
    totals.set(match[1]!, (totals.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return totals;
}

describe('the agent under its own overload', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function run(utilization: number): Promise<{ results: Map<string, number>; timedOut: number; lines: { msg: string }[] }> {
    // A target that reads every request and never answers: the probes can only time out.
    const target = await startRecorder(() => 'hang');
    cleanups.push(() => target.close());
    const config = parseAgentConfig(hungConfig(target.url));
    // Both environments are one origin here: 40 series on the minimum of 8 connections.
    expect(probeConnections(config)).toBe(8);
    const { logger, lines } = capturingLogger();
    const started = await startAgent(config, { logger, loopUtilization: () => utilization });
    cleanups.push(() => started.agent.close());
    // Two rounds of ticks accounted for: every series starts within the first second and times out in 400 ms.
    let results = new Map<string, number>();
    await waitUntil(
      async () => {
        results = await resultsOf(started);
        return (results.get('timeout') ?? 0) + (results.get('skipped') ?? 0) >= 2 * PROBES * 2;
      },
      'two rounds of ticks',
      10_000,
    );
    const { body } = await started.agent.metrics.render(false);
    const timedOut = new Set(
      [...body.matchAll(/^greenlight_probes_total\{probe="(p\d+)",env="(\w+)",result="timeout"\} [1-9]/gm)].map((m) => `${m[1]}@${m[2]}`),
    ).size;
    return { results, timedOut, lines };
  }

  it('does not shed while its loop is free: every series of a hung target times out on its own deadline', async () => {
    const { results, timedOut, lines } = await run(0.1);
    expect(results.get('skipped') ?? 0).toBe(0);
    expect(timedOut).toBe(PROBES * 2);
    expect(lines.some((line) => line.msg.includes('event loop is saturated'))).toBe(false);
  });

  it('sheds the ticks beyond its connections while its loop is saturated, counts them as skipped and says why', async () => {
    const { results, lines } = await run(1);
    expect(results.get('skipped') ?? 0).toBeGreaterThan(0);
    expect(results.get('timeout') ?? 0).toBeGreaterThan(0);
    expect(lines.filter((line) => line.msg.includes('event loop is saturated'))).toHaveLength(1);
  });
});

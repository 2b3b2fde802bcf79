/**
 * Issue 5's benches.
 *
 * promote: a full promotion with the default gates (3 probe rounds 1 s apart, 10 s of load at
 * 20/s, 2 verify rounds; the watch shortened, since its length is configured, not measured)
 * against two simulator processes, through the real agent's HTTP API; each step's time.
 *
 * loadtest: the load engine's own overhead: the rate it achieves against the rate requested
 * (100, 1,000 and 5,000 per second) against one simulator process, with its latency figures and
 * the CPU it used per request.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Agent } from '../agent/agent.js';
import { parseAgentConfig } from '../agent/reload/agent-config.js';
import { runLoadTest } from '../agent/promote/load-test.js';
import type { PromoteResult } from '../agent/promote/promotion.js';
import { Redactor } from '../config/redactor.js';
import { ProbeCompiler } from '../probes/http-probe.js';
import { APP_PATHS, cpuMicros, fmt, log, section, startSimulatorProcess, table, verdict, type SummaryRow } from './harness.js';

const ADMIN = 'bench-admin-token-0123456789';

export async function runPromote(options: { watchSeconds: number }): Promise<{ rows: SummaryRow[] }> {
  section('promote: a full promotion with the default gates against two simulators');
  const [blue, green] = await Promise.all([startSimulatorProcess('blue'), startSimulatorProcess('green')]);
  const probes = APP_PATHS.map((path, i) => `  - { name: p${i}, path: ${path} }`).join('\n');
  const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${(await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/greenlight-bench-`)}
environments: { blue: { url: ${blue.url} }, green: { url: ${green.url} } }
probeDefaults: { every: 1s, timeout: 2s }
api: { adminToken: ${ADMIN} }
deployWindows: { enabled: false }
promote: { watch: ${options.watchSeconds}s }
probes:
${probes}
`);
  const agent = new Agent({ config, logger: pino({ level: 'silent' }, new Writable({ write: (_c, _e, done) => done() })), processMetrics: false });
  const rows: SummaryRow[] = [];
  try {
    await agent.start();
    while (!agent.ready) await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/promote`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'green', reason: 'bench' }),
    });
    const result = (await response.json()) as PromoteResult;
    const wall = performance.now() - started;
    log(
      table(
        ['step', 'ok', 'seconds', 'detail'],
        result.steps.map((s) => [s.step, s.ok ? '✅' : '❌', (s.durationMs / 1_000).toFixed(3), s.detail.slice(0, 110)]),
      ),
    );
    const gates = result.steps.filter((s) => s.step !== 'watch').reduce((sum, s) => sum + s.durationMs, 0);
    log(
      `\n${result.ok ? 'promoted' : `NOT promoted (${result.failedStep}: ${result.reason})`} in ${(wall / 1_000).toFixed(2)} s wall, of which gates+switch+verify ${(gates / 1_000).toFixed(2)} s and the watch ${options.watchSeconds} s`,
    );
    for (const s of result.steps)
      rows.push({
        bench: 'promote',
        figure: `step ${s.step}`,
        target: 'report',
        measured: `${(s.durationMs / 1_000).toFixed(2)} s`,
        verdict: s.ok ? 'info' : 'MISS',
      });
    rows.push({
      bench: 'promote',
      figure: 'full promote before the watch (default gates)',
      target: 'report',
      measured: `${(gates / 1_000).toFixed(2)} s`,
      verdict: verdict(result.ok) === 'ok' ? 'info' : 'MISS',
    });
  } finally {
    await agent.close();
    await Promise.all([blue.stop(), green.stop()]);
  }
  return { rows };
}

export async function runLoadtestBench(options: { seconds: number; rates?: number[] }): Promise<{ rows: SummaryRow[] }> {
  section(`loadtest: achieved vs requested rate, ${options.seconds} s at each rate, against one simulator process`);
  const target = await startSimulatorProcess('green');
  const config = parseAgentConfig(`environments: { blue: { url: http://127.0.0.1:1 }, green: { url: ${target.url} } }
probes:
${APP_PATHS.map((path, i) => `  - { name: p${i}, path: ${path} }`).join('\n')}
`);
  const targets = new ProbeCompiler(config, Redactor.of(config)).targetsOn('green');
  const rows: SummaryRow[] = [];
  const lines: string[][] = [];
  try {
    for (const rps of options.rates ?? [100, 1_000, 5_000]) {
      const cpuBefore = cpuMicros();
      const report = await runLoadTest({ targets, rps, durationMs: options.seconds * 1_000, timeoutMs: 5_000, connections: 64 });
      const cpuPerRequest = (cpuMicros() - cpuBefore) / Math.max(1, report.sent);
      const ratio = report.achievedRps / rps;
      lines.push([
        String(rps),
        fmt(report.achievedRps),
        `${(ratio * 100).toFixed(1)} %`,
        fmt(report.throughputRps),
        fmt(report.p50Ms ?? undefined, 2),
        fmt(report.p95Ms ?? undefined, 2),
        fmt(report.p99Ms ?? undefined, 2),
        `${(report.errorRatio * 100).toFixed(2)} %`,
        fmt(report.maxLagMs),
        fmt(cpuPerRequest, 0),
      ]);
      rows.push({
        bench: 'loadtest',
        figure: `achieved rate at ${rps.toLocaleString('en-US')}/s requested`,
        target: '≥ 99 %',
        measured: `${fmt(report.achievedRps)}/s (${(ratio * 100).toFixed(1)} %), p95 ${fmt(report.p95Ms ?? undefined, 2)} ms, errors ${(report.errorRatio * 100).toFixed(2)} %`,
        verdict: verdict(ratio >= 0.99 && report.errorRatio === 0),
      });
    }
    log(table(['requested/s', 'sent/s', 'achieved', 'answered ok/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'max lag ms', 'CPU µs/req'], lines));
  } finally {
    await target.stop();
  }
  return { rows };
}

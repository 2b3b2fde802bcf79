import { UsageError } from '../../../config/errors.js';
import { Redactor } from '../../../config/redactor.js';
import { loadAgentConfig } from '../../reload/agent-config.js';
import { ProbeCompiler, runProbe } from '../../../probes/http-probe.js';
import { describeFailure, type ProbeResult } from '../../../probes/probe-result.js';
import type { CommandIo } from '../cli.js';
import { createProbeDispatcher } from '../../pipeline/tls-trust.js';
import { redactUrl } from '../../http/state-view.js';
import { escapeControls } from '../../telemetry/terminal-text.js';

/**
 * `greenlight check --env NAME`: every probe once against one environment, as a table or JSON.
 * Exit 0 when all pass, 1 when any fails: what a deploy script calls before switching traffic.
 */
export async function checkCommand(options: { configPath: string; env: string; json: boolean }, io: CommandIo): Promise<number> {
  const config = await loadAgentConfig(options.configPath, io.env);
  const envs = Object.keys(config.environments);
  if (!envs.includes(options.env)) throw new UsageError(`--env ${options.env} is not an environment of ${options.configPath}; choose ${envs.join(' or ')}`);

  const targets = new ProbeCompiler(config, Redactor.of(config)).targetsOn(options.env);
  const { dispatcher, tls } = createProbeDispatcher(config, { keepAliveTimeout: 5_000 });
  let results: ProbeResult[];
  try {
    results = await Promise.all(targets.map((target) => runProbe(target, dispatcher, Date.now, undefined, tls)));
  } finally {
    await dispatcher.close();
    tls.close();
  }
  const ok = results.every((result) => result.ok);

  if (options.json) {
    io.out(JSON.stringify({ env: options.env, url: redactUrl(config.environments[options.env]!.url), ok, results }, null, 2));
  } else {
    io.out(formatTable(results));
    const failed = results.filter((result) => !result.ok).length;
    io.out(ok ? `\n✅ ${options.env}: all ${results.length} probes pass` : `\n❌ ${options.env}: ${failed} of ${results.length} probes fail`);
  }
  return ok ? 0 : 1;
}

/**
 * One row per probe. A cell quotes the target (its errors, its certificate's names), so each is
 * written out with escapeControls: a newline in a certificate's name added lines to the table
 * (a forged verdict below it), and the CLI's last pass (escapeForTerminal) lets greenlight's own
 * colour sequences through, which a name could carry too.
 */
function formatTable(results: ProbeResult[]): string {
  const rows = [
    ['PROBE', 'RESULT', 'STATUS', 'LATENCY', 'DETAIL'],
    ...results.map((result) => [
      result.probe,
      result.ok ? 'ok' : 'FAIL',
      result.status === undefined ? '-' : String(result.status),
      `${Math.round(result.durationMs)}ms`,
      [result.ok ? result.checks.map((check) => check.text).join('; ') : describeFailure(result), ...(result.tls ? [describeTls(result.tls)] : [])].join('; '),
    ]),
  ].map((row) => row.map((cell) => escapeControls(cell)));
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

/** `certificate expires in 23.4 days (2026-12-05), verified` or why it is not. */
function describeTls(tls: NonNullable<ProbeResult['tls']>): string {
  const when = tls.daysLeft < 0 ? `expired ${Math.abs(tls.daysLeft).toFixed(1)} days ago` : `expires in ${tls.daysLeft.toFixed(1)} days`;
  return `certificate ${when} (${new Date(tls.expiresAt).toISOString().slice(0, 10)}, ${tls.expiring}), ${tls.valid ? 'verified' : `not verified: ${tls.error}`}`;
}

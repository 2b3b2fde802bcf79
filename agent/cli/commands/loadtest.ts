import { UsageError } from '../../../config/errors.js';
import { Redactor } from '../../../config/redactor.js';
import { parseDuration } from '../../../config/units.js';
import { ProbeCompiler } from '../../../probes/http-probe.js';
import { loadAgentConfig } from '../../reload/agent-config.js';
import type { CommandIo } from '../cli.js';
import { probeConnect } from '../../pipeline/tls-trust.js';
import { formatMs, judgeLoad, runLoadTest, summarizeLoad, type LoadProgress } from '../../promote/load-test.js';

export interface LoadtestOptions {
  configPath: string;
  env: string;
  rps: string | undefined;
  duration: string | undefined;
  maxP95: string | undefined;
  maxErrorRatio: string | undefined;
  json: boolean;
  /** A terminal gets one progress line rewritten in place; anything else a line every 5 s. */
  tty?: boolean;
}

/**
 * `greenlight loadtest --env NAME [--rps N] [--duration D]`: paced load over the environment's
 * probe paths, then p50/p95/p99, error ratio and throughput. Exit 0 within the thresholds
 * (promote.load in the config, or --max-p95 / --max-error-ratio), 1 over, 2 usage.
 */
export async function loadtestCommand(options: LoadtestOptions, io: CommandIo): Promise<number> {
  const config = await loadAgentConfig(options.configPath, io.env);
  const envs = Object.keys(config.environments);
  if (!envs.includes(options.env)) throw new UsageError(`--env ${options.env} is not an environment of ${options.configPath}; choose ${envs.join(' or ')}`);
  const defaults = config.promote.load;
  const rps = options.rps === undefined ? defaults.rps : Number(options.rps);
  if (!Number.isFinite(rps) || rps <= 0 || rps > 100_000)
    throw new UsageError(`--rps must be a number of requests per second from 1 to 100000, not ${options.rps}`);
  const durationMs = options.duration === undefined ? defaults.duration : parseDuration(options.duration);
  if (durationMs === undefined || durationMs <= 0) throw new UsageError(`--duration must be a duration such as 30s or 2m, not ${options.duration}`);
  const maxP95Ms = options.maxP95 === undefined ? defaults.maxP95 : parseDuration(options.maxP95);
  if (maxP95Ms === undefined) throw new UsageError(`--max-p95 must be a duration such as 2s, not ${options.maxP95}`);
  const maxErrorRatio = options.maxErrorRatio === undefined ? defaults.maxErrorRatio : Number(options.maxErrorRatio);
  if (!(maxErrorRatio >= 0 && maxErrorRatio <= 1))
    throw new UsageError(`--max-error-ratio must be a ratio from 0 to 1 such as 0.05, not ${options.maxErrorRatio}`);

  const redactor = Redactor.of(config);
  const targets = new ProbeCompiler(config, redactor).targetsOn(options.env);
  const tty = options.tty ?? process.stderr.isTTY === true;
  // A path may carry a token in its query (`/health?api_key=${KEY}`).
  if (!options.json) io.out(redactor.text(`loadtest ${options.env}: ${rps} req/s for ${formatMs(durationMs)} over ${targets.map((t) => t.path).join(', ')}`));
  let lastLine = 0;
  const report = await runLoadTest({
    targets,
    rps,
    durationMs,
    timeoutMs: defaults.timeout,
    connections: defaults.connections,
    connect: probeConnect(config),
    onProgress: options.json
      ? undefined
      : (progress) => {
          const line = progressLine(progress, rps, durationMs);
          if (tty) process.stderr.write(`\r\u001b[2K${line}`);
          else if (progress.elapsedMs - lastLine >= 5_000) {
            lastLine = progress.elapsedMs;
            io.err(line);
          }
        },
  });
  if (tty && !options.json) process.stderr.write('\r\u001b[2K');
  const verdict = judgeLoad(report, { maxP95Ms, maxErrorRatio });
  if (options.json) {
    io.out(JSON.stringify({ env: options.env, ok: verdict.ok, failures: verdict.failures, thresholds: { maxP95Ms, maxErrorRatio }, report }, null, 2));
  } else {
    io.out(summarizeLoad(report));
    io.out(
      verdict.ok
        ? `✅ ${options.env}: within p95 < ${formatMs(maxP95Ms)} and error ratio < ${(maxErrorRatio * 100).toFixed(1)} %`
        : `❌ ${options.env}: ${verdict.failures.join('; ')}`,
    );
  }
  return verdict.ok ? 0 : 1;
}

function progressLine(progress: LoadProgress, rps: number, durationMs: number): string {
  const rate = progress.elapsedMs > 0 ? (progress.sent * 1_000) / progress.elapsedMs : 0;
  return `${(progress.elapsedMs / 1_000).toFixed(0)}/${(durationMs / 1_000).toFixed(0)}s sent ${progress.sent} (${rate.toFixed(0)}/s of ${rps}) answered ${progress.completed} errors ${progress.errors} in flight ${progress.inFlight} p95 ${progress.recentP95Ms === null ? '-' : formatMs(progress.recentP95Ms)}`;
}

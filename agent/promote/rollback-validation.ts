/**
 * After a rollback: is the environment now live really serving safely? Five checks, each with
 * what was observed: its health endpoint answers, its database is connected (from the health
 * body), ALPHASTACK_PROTECTION is on, the flags are in safe mode (on the environment rolled away
 * from, by default), and its error ratio is back under the warning line.
 */
import type { Dispatcher } from 'undici';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { ProbeCompiler } from '../../probes/http-probe.js';
import type { SeriesSnapshot } from '../../probes/probe-series.js';
import type { ValidationCheck } from '../events/events.js';

export interface ValidationInput {
  config: Config;
  /** Hides the config's secrets in what the live environment answers. */
  redactor: Redactor;
  live: string;
  idle: string;
  flags: (env: string) => Readonly<Record<string, boolean>>;
  series: readonly SeriesSnapshot[];
  dispatcher: Dispatcher;
  signal?: AbortSignal;
}

export interface ValidationReport {
  ok: boolean;
  live: string;
  idle: string;
  checks: ValidationCheck[];
}

export async function validateRollback(input: ValidationInput): Promise<ValidationReport> {
  const { config, live, idle } = input;
  const settings = config.promote.validation;
  const checks: ValidationCheck[] = [];

  const probe = config.probes.find((p) => p.name === settings.healthProbe);
  if (!probe) {
    checks.push({ name: 'health', ok: false, detail: `no probe named ${settings.healthProbe} to find the health endpoint (promote.validation.healthProbe)` });
  } else {
    const target = new ProbeCompiler(config, input.redactor).target(probe, live);
    let body: unknown;
    try {
      const started = performance.now();
      const response = await input.dispatcher.request({
        origin: target.origin,
        path: target.path,
        method: 'GET',
        headers: target.headers,
        signal: input.signal ? AbortSignal.any([input.signal, AbortSignal.timeout(target.timeoutMs)]) : AbortSignal.timeout(target.timeoutMs),
      });
      const text = await response.body.text();
      const ms = Math.round(performance.now() - started);
      const status = target.checkStatus(response.statusCode);
      checks.push({ name: 'health', ok: status.ok, detail: `${target.path} on ${live} answered ${response.statusCode} in ${ms}ms` });
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    } catch (error) {
      checks.push({ name: 'health', ok: false, detail: `${target.path} on ${live} did not answer: ${input.redactor.text((error as Error).message)}` });
    }
    const connected = (body as { database?: { connected?: unknown } } | undefined)?.database?.connected;
    checks.push({
      name: 'database',
      ok: connected === true,
      detail: `$.database.connected on ${live} is ${body === undefined ? 'unknown (no JSON body)' : JSON.stringify(connected ?? null)}`,
    });
  }

  const protection = input.flags(live).ALPHASTACK_PROTECTION;
  checks.push({ name: 'protection', ok: protection === true, detail: `ALPHASTACK_PROTECTION on ${live} is ${protection ? 'on' : 'off'}` });

  if (settings.safeMode !== 'off') {
    const env = settings.safeMode === 'live' ? live : idle;
    const flags = input.flags(env);
    const safe = flags.FORCE_V2_FALLBACK === true && flags.ALPHASTACK_V3_ENABLED === false;
    checks.push({
      name: 'safe-mode',
      ok: safe,
      detail: `${env}: FORCE_V2_FALLBACK ${flags.FORCE_V2_FALLBACK ? 'on' : 'off'}, ALPHASTACK_V3_ENABLED ${flags.ALPHASTACK_V3_ENABLED ? 'on' : 'off'}${safe ? '' : ` (run greenlight flags emergency-rollback --env ${env})`}`,
    });
  }

  let count = 0;
  let failures = 0;
  for (const snapshot of input.series.filter((s) => s.env === live)) {
    const windows = Object.values(snapshot.windows);
    const window = windows.find((w) => w.windowMs === settings.errorWindow) ?? windows.sort((a, b) => a.windowMs - b.windowMs)[0];
    if (!window) continue;
    count += window.count;
    failures += window.failures;
  }
  const ratio = count === 0 ? 0 : failures / count;
  checks.push({
    name: 'error-ratio',
    ok: ratio < settings.maxErrorRatio,
    detail: `error ratio on ${live} ${(ratio * 100).toFixed(1)} % (${failures} of ${count} probes) ${ratio < settings.maxErrorRatio ? '<' : '>='} ${(settings.maxErrorRatio * 100).toFixed(1)} %`,
  });

  return { ok: checks.every((c) => c.ok), live, idle, checks };
}

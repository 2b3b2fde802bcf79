/**
 * After a rollback: is the environment now live really serving safely? Five checks, each with
 * what was observed: its health endpoint answers, its database is connected (from the health
 * body), ALPHASTACK_PROTECTION is on, the flags are in safe mode (on the environment rolled away
 * from, by default), and its error ratio is under the warning line. The error ratio counts its
 * results since it went live (over `errorWindow` at most), as the rules judge a live environment:
 * a failure that was over before the rollback chose it (the anti-flap made it pass every probe for
 * `settle` first) says nothing about how it serves now.
 */
import type { Dispatcher } from 'undici';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { ProbeCompiler } from '../../probes/http-probe.js';
import { formatDuration } from '../../config/units.js';
import type { ValidationCheck } from '../events/events.js';

export interface ValidationInput {
  config: Config;
  /** Hides the config's secrets in what the live environment answers. */
  redactor: Redactor;
  live: string;
  idle: string;
  flags: (env: string) => Readonly<Record<string, boolean>>;
  /** The live environment's results from `since` on. */
  results: LiveResults;
  /** Where the count starts (clock ms): when it went live, or `errorWindow` ago if that is later. */
  since: number;
  now: number;
  dispatcher: Dispatcher;
  signal?: AbortSignal;
}

/** An environment's results in its probes' windows from a time on, and its probes with none since. */
export interface LiveResults {
  count: number;
  failures: number;
  unanswered: string[];
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

  const { count, failures } = input.results;
  const ratio = count === 0 ? 0 : failures / count;
  const over =
    input.since > input.now - settings.errorWindow
      ? `since it went live ${formatDuration(Math.max(0, Math.round((input.now - input.since) / 1_000) * 1_000))} ago`
      : `over the last ${formatDuration(settings.errorWindow)}`;
  checks.push({
    name: 'error-ratio',
    ok: ratio < settings.maxErrorRatio,
    detail:
      count === 0
        ? `no probe of ${live} has answered ${over}: no error ratio to judge yet`
        : `error ratio on ${live} ${over} ${(ratio * 100).toFixed(1)} % (${failures} of ${count} probes) ${ratio < settings.maxErrorRatio ? '<' : '>='} ${(settings.maxErrorRatio * 100).toFixed(1)} %`,
  });

  return { ok: checks.every((c) => c.ok), live, idle, checks };
}

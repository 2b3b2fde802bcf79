/**
 * The switch phase after the adapter has moved traffic: the steps of `switching.steps`, run after
 * every switch (a promotion's, its revert, a rule's and an operator's rollback) under the switch
 * lock, in the configured order:
 *   - `cdn`: purge the CDN's cache (a CdnPurger plugin: cloudflare, webhook, command), so it stops
 *     serving the old environment's pages and answers;
 *   - `tls`: the public address's certificate chain verifies for its host and expires later than
 *     `margin` — the TLS observer the probes use (probes/tls.ts), one handshake of its own;
 *   - `verify`: a public URL through the CDN names the new environment `streak` times in a row.
 *
 * Invariants:
 * - Each step ends within its timeout: a step that has not finished by then has failed (its
 *   signal aborts, so an HTTP call or a program it started is cancelled too).
 * - The first failed step ends the phase; the steps after it are not run (named in the event).
 * - Failures are values: a step never throws out of the phase, and its reason is redacted.
 * - Every step is published: `switch.step_started`, then `switch.step_succeeded` or `switch.step_failed`.
 * - The phase never switches anything itself. What a failure means is the switch's caller's: a
 *   promotion fails its verify step and switches back; after a rollback, nothing switches again and
 *   the phase raises a critical alert (`switch-step-failed`), resolved by the next phase whose
 *   steps all pass; so does a phase run again at a start (`resumed`), a promotion's too, since no
 *   caller is left to switch back. The alert outlives restarts (`kept`): a step cut short by the agent's stop is
 *   sent by the next start, and the next passing phase resolves one raised before the restart.
 */
import type { Logger } from 'pino';
import { readRegularFileSync } from '../../config/regular-file.js';
import type { Config, PluginBlock, SwitchStepConfig } from '../../config/schema.js';
import { formatDuration } from '../../config/units.js';
import { DAY_MS, probeTls, tlsHostKey, TlsObserver } from '../../probes/tls.js';
import { alertKey } from '../actions/action.js';
import type { AlertNotice } from '../alerts/alert-receiver.js';
import type { EventBus, SwitchStepData } from '../events/events.js';
import { defaultTrust } from '../pipeline/tls-trust.js';
import type { PluginDeps } from '../plugins/plugin.js';
import type { CdnPurger } from './cdn-purger.js';
import { pollEnvironment } from './environment-poll.js';

/** The switch a phase follows. */
export interface SwitchStepRequest {
  from: string;
  to: string;
  kind: 'promotion' | 'rollback';
  incident: string;
  /** Why the switch happened (the rule's message, the operator's reason). */
  reason: string;
  rule: string | null;
  /**
   * Run again at a start, after a stop cut the phase short: no caller is left to act on a failure
   * (a promotion's, which would switch back), so one raises switch-step-failed whatever the kind.
   */
  resumed?: boolean;
}

export interface StepOutcome {
  ok: boolean;
  /** One line: what was done or seen, or why it failed. */
  detail: string;
  figures?: Record<string, unknown>;
}

/** One configured step, ready to run. */
export interface SwitchStep {
  readonly name: string;
  readonly kind: SwitchStepConfig['step'];
  readonly timeoutMs: number;
  /** Runs once; resolves with the outcome (may throw: the phase makes a failure of it). Ends when `signal` aborts. */
  run(request: SwitchStepRequest, signal: AbortSignal): Promise<StepOutcome>;
}

export interface StepReport {
  name: string;
  kind: SwitchStep['kind'];
  ok: boolean;
  durationMs: number;
  detail: string;
  timedOut: boolean;
}

/** What the phase did: every step run, and the one that failed. */
export interface SwitchStepsReport {
  ok: boolean;
  steps: StepReport[];
  failed: { name: string; kind: SwitchStep['kind']; reason: string } | null;
  /** Steps not run after a failure. */
  skipped: string[];
}

/** The steps of the config in force, built when a switch runs them (a reload between two switches is picked up). */
export function buildSwitchSteps(config: Config, deps: PluginDeps, purger: (block: PluginBlock) => CdnPurger): SwitchStep[] {
  return config.switching.steps.map((step): SwitchStep => {
    const base = { name: step.name ?? step.step, kind: step.step, timeoutMs: step.timeout };
    switch (step.step) {
      case 'cdn':
        return { ...base, run: cdnStep(purger(step.purge)) };
      case 'tls':
        return { ...base, run: tlsStep(step, deps) };
      case 'verify':
        return { ...base, run: verifyStep(step, deps) };
    }
  });
}

function cdnStep(purger: CdnPurger): SwitchStep['run'] {
  return async (request, signal) => {
    const outcome = await purger.purge({ from: request.from, to: request.to, incident: request.incident, reason: request.reason }, signal);
    return { ok: true, detail: outcome.detail, figures: { purger: purger.type, ...outcome.data } };
  };
}

/** The TLS probes' check of the public address: one handshake through a TlsObserver, judged on validity and the margin. */
function tlsStep(step: Extract<SwitchStepConfig, { step: 'tls' }>, deps: PluginDeps): SwitchStep['run'] {
  return async () => {
    const url = new URL(step.url);
    const key = tlsHostKey(url.hostname, url.port);
    const trust = step.ca ? new Map([[key, [...defaultTrust(), readRegularFileSync(step.ca).toString('utf8')]]]) : undefined;
    const observer = new TlsObserver({ now: deps.now, timeoutMs: step.timeout, ...(trust ? { trust } : {}) });
    try {
      const { facts, error } = await observer.handshake(url.origin);
      if (!facts)
        return {
          ok: false,
          detail: `no TLS handshake with ${url.host}: ${deps.redactor.text(error ?? 'it showed no certificate')}`,
          figures: { host: url.host },
        };
      const tls = probeTls(facts, deps.now());
      const expires = new Date(facts.expiresAt).toISOString().slice(0, 10);
      const figures = {
        host: url.host,
        valid: facts.valid,
        error: facts.error ?? null,
        expiresAt: new Date(facts.expiresAt).toISOString(),
        daysLeft: tls.daysLeft,
        marginDays: step.margin / DAY_MS,
        expiring: facts.expiring,
        subject: facts.subject,
        issuer: facts.issuer,
      };
      if (!facts.valid)
        return {
          ok: false,
          detail: `${url.host} serves a certificate that does not verify: ${facts.error ?? 'not verified'} (subject ${facts.subject}, issuer ${facts.issuer}, expires ${expires})`,
          figures,
        };
      if (facts.expiresAt - deps.now() < step.margin)
        return {
          ok: false,
          detail: `${url.host}'s certificate chain expires in ${tls.daysLeft.toFixed(1)} days (${expires}, ${facts.expiring}), within the ${formatDuration(step.margin)} margin: renew it`,
          figures,
        };
      return {
        ok: true,
        detail: `${url.host} serves a verified certificate, expiring in ${tls.daysLeft.toFixed(1)} days (${expires}, ${facts.expiring})`,
        figures,
      };
    } finally {
      observer.close();
    }
  };
}

/** The public URL, through the CDN, names the new environment `streak` times in a row. */
function verifyStep(step: Extract<SwitchStepConfig, { step: 'verify' }>, deps: PluginDeps): SwitchStep['run'] {
  // Stop polling a little before the timeout, so the step says what it last saw rather than only "timed out".
  const polling = Math.max(step.timeout - Math.min(2_000, step.timeout / 4), 0);
  return async (request, signal) => {
    const host = new URL(step.url).host;
    const poll = { label: `verify URL (${host})`, url: step.url, path: step.jsonPath, env: request.to, streak: step.streak, intervalMs: step.interval };
    const result = await pollEnvironment({ ...poll, deadline: deps.now() + polling }, deps, signal);
    const figures = { host, polls: result.polls, streak: step.streak };
    if (result.ok)
      return { ok: true, detail: `${step.jsonPath.text} is "${request.to}" through ${host} ${step.streak} times in a row (${result.polls} polls)`, figures };
    return {
      ok: false,
      detail: `${step.url} did not name ${request.to} ${step.streak} times in a row within ${formatDuration(polling)} (last: ${result.seen}): the CDN or the traffic layer may still serve ${request.from}`,
      figures: { ...figures, last: result.seen },
    };
  };
}

export interface SwitchStepsOptions {
  bus: EventBus;
  /** The steps of the config in force. */
  steps: () => readonly SwitchStep[];
  alert: (notice: AlertNotice) => void;
  /** The alerts firing now, those kept from before a restart included. */
  firing: () => readonly AlertNotice[];
  stateUrl: () => string | undefined;
  now: () => number;
  logger: Logger;
  redact: (text: string) => string;
}

/** Runs the phase after each switch (traffic control calls it under the switch lock). */
export class SwitchSteps {
  readonly #options: SwitchStepsOptions;
  /** Alerts raised by failed phases after rollbacks, resolved by the next phase that passes. */
  readonly #raised = new Map<string, AlertNotice>();

  constructor(options: SwitchStepsOptions) {
    this.#options = options;
  }

  async run(request: SwitchStepRequest, signal: AbortSignal): Promise<SwitchStepsReport> {
    const steps = this.#options.steps();
    const report: SwitchStepsReport = { ok: true, steps: [], failed: null, skipped: [] };
    for (const [index, step] of steps.entries()) {
      const base: SwitchStepData = {
        step: step.name,
        kind: step.kind,
        index: index + 1,
        of: steps.length,
        from: request.from,
        to: request.to,
        switch: request.kind,
        incident: request.incident,
        timeoutMs: step.timeoutMs,
      };
      const { bus } = this.#options;
      bus.publish({
        type: 'switch.step_started',
        severity: 'info',
        env: request.to,
        rule: request.rule,
        message: `after the switch ${request.from} → ${request.to}: step ${index + 1}/${steps.length} ${step.name} started`,
        data: base,
      });
      const began = performance.now();
      const outcome = await this.#runOne(step, request, signal);
      const durationMs = Math.round((performance.now() - began) * 10) / 10;
      report.steps.push({ name: step.name, kind: step.kind, ok: outcome.ok, durationMs, detail: outcome.detail, timedOut: outcome.timedOut });
      if (outcome.ok) {
        bus.publish({
          type: 'switch.step_succeeded',
          severity: 'info',
          env: request.to,
          rule: request.rule,
          message: `✅ ${step.name} after the switch ${request.from} → ${request.to}: ${outcome.detail}`,
          data: { ...base, durationMs, detail: outcome.detail, figures: outcome.figures ?? {} },
        });
        continue;
      }
      report.ok = false;
      report.failed = { name: step.name, kind: step.kind, reason: outcome.detail };
      report.skipped = steps.slice(index + 1).map((s) => s.name);
      bus.publish({
        type: 'switch.step_failed',
        severity: request.kind === 'rollback' || request.resumed ? 'critical' : 'warning',
        env: request.to,
        rule: request.rule,
        message: `❌ ${step.name} after the switch ${request.from} → ${request.to}: ${outcome.detail}${report.skipped.length ? ` (not run: ${report.skipped.join(', ')})` : ''}`,
        data: { ...base, durationMs, reason: outcome.detail, timedOut: outcome.timedOut, figures: outcome.figures ?? {}, skipped: report.skipped },
      });
      break;
    }
    if (report.failed && (request.kind === 'rollback' || request.resumed)) this.#alertFailed(request, report.failed, report.skipped);
    // A phase with no steps passed nothing: it resolves no step's alert.
    else if (report.ok && steps.length > 0) this.#resolveRaised();
    return report;
  }

  async #runOne(step: SwitchStep, request: SwitchStepRequest, signal: AbortSignal): Promise<StepOutcome & { timedOut: boolean }> {
    const deadline = new AbortController();
    // A timer we hold (see outbound.ts): inside AbortSignal.any a timeout signal may be collected before it fires.
    const timer = setTimeout(() => deadline.abort(), step.timeoutMs);
    const stepSignal = AbortSignal.any([signal, deadline.signal]);
    let onAbort: (() => void) | undefined;
    const ended = new Promise<StepOutcome>((resolve) => {
      onAbort = () =>
        resolve({
          ok: false,
          detail: deadline.signal.aborted ? `did not finish within ${formatDuration(step.timeoutMs)} (its timeout)` : 'cancelled: the agent is stopping',
        });
      if (stepSignal.aborted) onAbort();
      else stepSignal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([
        step.run(request, stepSignal).catch((error: unknown): StepOutcome => ({ ok: false, detail: (error as Error).message ?? String(error) })),
        ended,
      ]);
      // A step that noticed the abort itself still timed out.
      const timedOut = deadline.signal.aborted && !outcome.ok;
      const detail = this.#options.redact(
        timedOut && !outcome.detail.includes('its timeout')
          ? `did not finish within ${formatDuration(step.timeoutMs)} (its timeout); ${outcome.detail}`
          : outcome.detail,
      );
      return { ...outcome, detail, timedOut };
    } finally {
      clearTimeout(timer);
      if (onAbort) stepSignal.removeEventListener('abort', onAbort);
    }
  }

  #alertFailed(request: SwitchStepRequest, failed: NonNullable<SwitchStepsReport['failed']>, skipped: string[]): void {
    const advice: Record<SwitchStep['kind'], string> = {
      cdn: `The CDN may still serve ${request.from}'s pages and answers: purge its cache by hand.`,
      tls: `Users may see a certificate error or soon will: check and renew the certificate of the public address.`,
      verify: `The public address may still serve ${request.from}: check the CDN and the traffic layer.`,
    };
    const notice: AlertNotice = {
      status: 'firing',
      key: alertKey(request.incident, 'switch-step-failed'),
      rule: 'switch-step-failed',
      severity: 'critical',
      env: request.to,
      summary: `${request.kind === 'rollback' ? 'Rollback' : 'Promotion'} ${request.from} → ${request.to} switched, but the step ${failed.name} after it failed${request.resumed ? ' (run again after a restart)' : ''}: ${request.to} stays live`,
      description: `${request.reason}. Traffic moved to ${request.to}; then ${failed.name} failed: ${failed.reason}. ${advice[failed.kind]} ${
        request.kind === 'rollback'
          ? 'greenlight does not switch again after a rollback.'
          : 'The promotion that switched was cut short by a restart before its steps ended, so nothing switches back: decide by hand (greenlight rollback).'
      }${skipped.length ? ` Not run: ${skipped.join(', ')}.` : ''}`,
      labels: { step: failed.name, kind: failed.kind, from: request.from, to: request.to, incident: request.incident },
      figures: { step: failed.name, reason: failed.reason, skipped },
      startsAt: new Date(this.#options.now()).toISOString(),
      url: this.#options.stateUrl(),
      // Kept across restarts until a phase passes: neither the incident's end (the rollback usually
      // ends it at once) nor a clock says the CDN or the certificate is right again.
      kept: true,
    };
    this.#raised.set(notice.key, notice);
    this.#options.alert(notice);
  }

  #resolveRaised(): void {
    const now = this.#options.now();
    // What failed phases raised before a restart: the dispatcher kept it, this phase did not.
    for (const notice of this.#options.firing())
      if (notice.rule === 'switch-step-failed' && !this.#raised.has(notice.key)) this.#raised.set(notice.key, notice);
    for (const notice of this.#raised.values()) this.#options.alert({ ...notice, status: 'resolved', endsAt: new Date(now).toISOString() });
    this.#raised.clear();
  }
}

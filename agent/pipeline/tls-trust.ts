/**
 * Which CAs requests to the environments trust, and the dispatcher that applies it.
 *
 * An environment with `tls.ca` verifies its certificate against Node's bundled roots,
 * NODE_EXTRA_CA_CERTS and its own bundle; every other one against Node's defaults (which already
 * include NODE_EXTRA_CA_CERTS). Node 20 cannot add a CA to its default store for one connection —
 * a `ca` option replaces the store — so the list for such an environment is built here, with
 * NODE_EXTRA_CA_CERTS read again so that a private CA given that way keeps working beside it.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import type * as Undici from 'undici';
import { Agent as UndiciAgent } from '../../probes/undici-core.js';
import { readRegularFileSync } from '../../config/regular-file.js';
import type { Config } from '../../config/schema.js';
import { tlsHostOf, TlsObserver } from '../../probes/tls.js';
import { AnswerBudget, answerLimit } from '../../probes/answer-budget.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Per https host key, the CAs to verify against; hosts without `tls.ca` are left to Node's defaults. */
export function readTlsTrust(config: Config, env: Env = process.env): Map<string, string[]> {
  const trust = new Map<string, string[]>();
  let defaults: string[] | undefined;
  for (const environment of Object.values(config.environments)) {
    const host = tlsHostOf(environment.url);
    if (!environment.tls?.ca || host === undefined) continue;
    defaults ??= defaultTrust(env);
    trust.set(host, [...(trust.get(host) ?? defaults), readRegularFileSync(environment.tls.ca).toString('utf8')]);
  }
  return trust;
}

/** What Node trusts by default: its bundled roots and NODE_EXTRA_CA_CERTS (a `ca` list replaces the store, so it is rebuilt). */
export function defaultTrust(env: Env = process.env): string[] {
  return [...rootCertificates, ...readExtraCerts(env)];
}

function readExtraCerts(env: Env): string[] {
  const path = env.NODE_EXTRA_CA_CERTS;
  if (!path) return [];
  try {
    return [readRegularFileSync(path).toString('utf8')];
  } catch {
    return []; // Node has already warned about it at start
  }
}

/** Config problems with the CA files: unreadable, or holding no certificate. */
export function checkTlsFiles(config: Config): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  config.switching.steps.forEach((step, index) => {
    if (step.step !== 'tls' || step.ca === undefined) return;
    const problem = pemProblem(step.ca);
    if (problem) issues.push({ path: ['switching', 'steps', index, 'ca'], message: problem });
  });
  for (const [name, environment] of Object.entries(config.environments)) {
    const ca = environment.tls?.ca;
    if (ca === undefined) continue;
    const path = ['environments', name, 'tls', 'ca'];
    if (!environment.url.startsWith('https:')) {
      issues.push({ path, message: `${name}'s url is not https://, so a CA bundle has nothing to verify; remove tls.ca or use an https URL` });
      continue;
    }
    const problem = pemProblem(ca);
    if (problem) issues.push({ path, message: problem });
  }
  return issues;
}

/** Why a CA file cannot be used (unreadable, no PEM certificate), or undefined. */
function pemProblem(file: string): string | undefined {
  let text: string;
  try {
    text = readRegularFileSync(file).toString('utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return `cannot read ${JSON.stringify(file)}: ${code === 'ENOTREG' ? message : (code ?? message)} (relative paths are from the working directory)`;
  }
  try {
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate');
    new X509Certificate(text);
    return undefined;
  } catch {
    return `${JSON.stringify(file)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
  }
}

/**
 * An undici Agent for requests to the environments, connecting through a TlsObserver that trusts
 * each environment's CAs and reads every handshake's certificate chain, and through an answer
 * budget that bounds what one answer may make it read (probes/answer-budget.ts). Its connections
 * per origin are {@link probeConnections} unless `options` says; `connections` says how many.
 * `connect` is what the dispatcher connects with, for another dispatcher to the environments.
 */
export function createProbeDispatcher(
  config: Config,
  options: Undici.Agent.Options = {},
  now: () => number = Date.now,
): { dispatcher: UndiciAgent; tls: TlsObserver; budget: AnswerBudget; connect: Undici.buildConnector.connector; connections: number } {
  const tls = new TlsObserver({ now, trust: readTlsTrust(config) });
  const budget = new AnswerBudget(answerLimit(config));
  const connect = budget.wrap(tls.connect);
  const connections = options.connections ?? probeConnections(config);
  return { dispatcher: new UndiciAgent({ ...options, connections, connect }), tls, budget, connect, connections };
}

/** Connections per origin for a few series, and at most. */
export const MIN_PROBE_CONNECTIONS = 8;
export const MAX_PROBE_CONNECTIONS = 256;

/**
 * Keep-alive connections the probes may hold to one origin: one for every 8 series probing it,
 * from 8 to 256. A probe that waits for a free connection has its wait counted in its latency and
 * its timeout; with thousands of series on 8 connections the queue alone timed probes out, and
 * every timeout destroyed a socket that had to be opened again (issue 18; a probe that times out
 * still queued is now dropped unsent and leaves the socket open: http-probe.ts). Connections are
 * opened only when the ones open are busy, so a small config keeps what it had, and a series
 * never has two probes in flight, so the series bound what can be open at once anyway.
 */
export function probeConnections(config: Config): number {
  const perOrigin = new Map<string, number>();
  for (const probe of config.probes) {
    for (const env of probe.environments ?? Object.keys(config.environments)) {
      const url = config.environments[env]?.url;
      if (url === undefined) continue;
      const origin = new URL(url).origin;
      perOrigin.set(origin, (perOrigin.get(origin) ?? 0) + 1);
    }
  }
  const most = Math.max(0, ...perOrigin.values());
  return Math.min(MAX_PROBE_CONNECTIONS, Math.max(MIN_PROBE_CONNECTIONS, Math.ceil(most / 8)));
}

/** The `connect` option alone, for a dispatcher that needs the environments' trust and answer budget but not their facts (promotion rounds, load). */
export function probeConnect(config: Config): Undici.Agent.Options['connect'] {
  return new AnswerBudget(answerLimit(config)).wrap(new TlsObserver({ now: Date.now, trust: readTlsTrust(config) }).connect);
}

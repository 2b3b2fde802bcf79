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
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent as UndiciAgent } from 'undici';
import type { Config } from '../../config/schema.js';
import { tlsHostOf, TlsObserver } from '../../probes/tls.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Per https host key, the CAs to verify against; hosts without `tls.ca` are left to Node's defaults. */
export function readTlsTrust(config: Config, env: Env = process.env): Map<string, string[]> {
  const trust = new Map<string, string[]>();
  let defaults: string[] | undefined;
  for (const environment of Object.values(config.environments)) {
    const host = tlsHostOf(environment.url);
    if (!environment.tls?.ca || host === undefined) continue;
    defaults ??= [...rootCertificates, ...readExtraCerts(env)];
    trust.set(host, [...(trust.get(host) ?? defaults), readFileSync(environment.tls.ca, 'utf8')]);
  }
  return trust;
}

function readExtraCerts(env: Env): string[] {
  const path = env.NODE_EXTRA_CA_CERTS;
  if (!path) return [];
  try {
    return [readFileSync(path, 'utf8')];
  } catch {
    return []; // Node has already warned about it at start
  }
}

/** Config problems with the CA files: unreadable, or holding no certificate. */
export function checkTlsFiles(config: Config): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  for (const [name, environment] of Object.entries(config.environments)) {
    const ca = environment.tls?.ca;
    if (ca === undefined) continue;
    const path = ['environments', name, 'tls', 'ca'];
    if (!environment.url.startsWith('https:')) {
      issues.push({ path, message: `${name}'s url is not https://, so a CA bundle has nothing to verify; remove tls.ca or use an https URL` });
      continue;
    }
    let text: string;
    try {
      text = readFileSync(ca, 'utf8');
    } catch (error) {
      issues.push({
        path,
        message: `cannot read ${JSON.stringify(ca)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (relative paths are from the working directory)`,
      });
      continue;
    }
    try {
      if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate');
      new X509Certificate(text);
    } catch {
      issues.push({ path, message: `${JSON.stringify(ca)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` });
    }
  }
  return issues;
}

/**
 * An undici Agent for requests to the environments, connecting through a TlsObserver that trusts
 * each environment's CAs and reads every handshake's certificate chain.
 */
export function createProbeDispatcher(
  config: Config,
  options: UndiciAgent.Options = {},
  now: () => number = Date.now,
): { dispatcher: UndiciAgent; tls: TlsObserver } {
  const tls = new TlsObserver({ now, trust: readTlsTrust(config) });
  return { dispatcher: new UndiciAgent({ ...options, connect: tls.connect }), tls };
}

/** The `connect` option alone, for a dispatcher that needs the environments' trust but not their facts (promotion rounds, load). */
export function probeConnect(config: Config): UndiciAgent.Options['connect'] {
  return new TlsObserver({ now: Date.now, trust: readTlsTrust(config) }).connect;
}

/**
 * TLS facts of https probes against the simulator serving certificates made at test time:
 * valid for a day, expired, for another host name, self-signed with and without that
 * certificate trusted, and a renewal. A refused chain still reports its expiry (reason `tls`).
 */
import { Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import { Redactor } from '../../config/redactor.js';
import { ProbeCompiler, runProbe } from '../../probes/http-probe.js';
import { tlsHostKey, tlsHostOf, TlsObserver } from '../../probes/tls.js';
import { startSimulator, type Simulator, type SimulatorTls } from '../../simulator/alphastack-simulator.js';
import { makeCa, makeSelfSigned, type TestCa } from '../helpers/certs.js';
import { waitUntil } from '../helpers/agent-harness.js';
import { hasTool } from '../helpers/tools.js';

const DAY = 86_400_000;
const HAS_OPENSSL = hasTool('openssl');

function targetFor(url: string) {
  const config = parseConfig(
    `environments:\n  blue: { url: "${url}" }\n  green: { url: "http://127.0.0.1:9" }\nprobes:\n  - { name: health, path: /api/health, timeout: 5s }\n`,
    {},
  );
  return new ProbeCompiler(config, Redactor.of(config)).target(config.probes[0]!, 'blue');
}

/** One probe through a fresh dispatcher and observer; `trust` maps the simulator's host to its CAs. */
async function probeOnce(simulator: Simulator, options: { ca?: string[]; now?: () => number } = {}) {
  const now = options.now ?? Date.now;
  const host = tlsHostOf(simulator.url)!;
  const tls = new TlsObserver({ now, trust: options.ca ? new Map([[host, options.ca]]) : new Map() });
  const dispatcher = new UndiciAgent({ connect: tls.connect });
  try {
    return await runProbe(targetFor(simulator.url), dispatcher, now, undefined, tls);
  } finally {
    await dispatcher.destroy();
    tls.close();
  }
}

describe.skipIf(!HAS_OPENSSL)('TLS facts of https probes', () => {
  let ca: TestCa;
  const simulators: Simulator[] = [];
  const serve = async (tls: SimulatorTls) => {
    const simulator = await startSimulator({ name: 'blue', tls });
    simulators.push(simulator);
    return simulator;
  };

  beforeAll(() => {
    ca = makeCa('greenlight test CA', 365);
  });
  afterAll(async () => {
    await Promise.all(simulators.map((s) => s.close()));
  });

  it('a certificate valid for a day, from a trusted CA: ok, verified, about one day left', async () => {
    const notAfter = new Date(Date.now() + DAY);
    const leaf = ca.issue({ hosts: ['127.0.0.1', 'localhost'], notBefore: new Date(Date.now() - 3_600_000), notAfter });
    const simulator = await serve(leaf);
    expect(simulator.url).toMatch(/^https:\/\//);
    const result = await probeOnce(simulator, { ca: [ca.cert] });
    expect(result.ok).toBe(true);
    expect(result.tls).toMatchObject({ valid: true, subject: '127.0.0.1', issuer: 'greenlight test CA', expiring: '127.0.0.1', chainLength: 2 });
    expect(result.tls!.error).toBeUndefined();
    // openssl keeps whole seconds: the earliest expiry is the leaf's notAfter, not the CA's.
    expect(result.tls!.expiresAt).toBe(Math.floor(notAfter.getTime() / 1_000) * 1_000);
    expect(result.tls!.daysLeft).toBeGreaterThan(0.99);
    expect(result.tls!.daysLeft).toBeLessThanOrEqual(1);
  });

  it('the earliest expiry of the chain: a CA that expires before its leaf', async () => {
    const shortCa = makeCa('short-lived CA', 3);
    const leaf = shortCa.issue({ hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 10 * DAY) });
    const simulator = await serve(leaf);
    const result = await probeOnce(simulator, { ca: [shortCa.cert] });
    expect(result.ok).toBe(true);
    expect(result.tls).toMatchObject({ valid: true, expiring: 'short-lived CA', subject: '127.0.0.1', chainLength: 2 });
    expect(result.tls!.daysLeft).toBeGreaterThan(2.9);
    expect(result.tls!.daysLeft).toBeLessThan(3.01);
  });

  it('an expired certificate: reason tls, and still its expiry, days left negative', async () => {
    const leaf = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') });
    const simulator = await serve(leaf);
    const result = await probeOnce(simulator, { ca: [ca.cert] });
    expect(result.ok).toBe(false);
    expect(result.reason).toBe('tls');
    expect(result.tls).toMatchObject({ valid: false, error: 'CERT_HAS_EXPIRED', expiresAt: Date.parse('2020-01-02T00:00:00Z') });
    expect(result.tls!.daysLeft).toBeLessThan(-2_000);
  });

  it('a certificate for another host name: reason tls, ERR_TLS_CERT_ALTNAME_INVALID, expiry reported', async () => {
    const notAfter = new Date(Date.now() + 10 * DAY);
    const leaf = ca.issue({ hosts: ['alphastack.example'], notBefore: new Date(Date.now() - 3_600_000), notAfter });
    const simulator = await serve(leaf);
    const result = await probeOnce(simulator, { ca: [ca.cert] });
    expect(result.reason).toBe('tls');
    expect(result.tls).toMatchObject({ valid: false, error: 'ERR_TLS_CERT_ALTNAME_INVALID', subject: 'alphastack.example' });
    expect(result.tls!.daysLeft).toBeGreaterThan(9.9);
  });

  it('a self-signed certificate: refused without it configured, verified with it as the CA', async () => {
    const self = makeSelfSigned(['127.0.0.1'], 5);
    const simulator = await serve(self);
    const refused = await probeOnce(simulator);
    expect(refused.reason).toBe('tls');
    expect(refused.tls).toMatchObject({ valid: false, error: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(refused.tls!.daysLeft).toBeGreaterThan(4.9);

    const trusted = await probeOnce(simulator, { ca: [self.cert] });
    expect(trusted.ok).toBe(true);
    expect(trusted.tls).toMatchObject({ valid: true });
    expect(trusted.tls!.expiresAt).toBe(refused.tls!.expiresAt);
  });

  it('a certificate signed by a CA that is not trusted: reason tls, UNABLE_TO_VERIFY_LEAF_SIGNATURE', async () => {
    const leaf = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + DAY) });
    const simulator = await serve(leaf);
    const result = await probeOnce(simulator);
    expect(result.reason).toBe('tls');
    expect(result.tls).toMatchObject({ valid: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', chainLength: 1 });
  });

  it('a renewed certificate shows once the facts are older than the recheck, whatever the pool keeps open', async () => {
    const first = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 2 * DAY) });
    const simulator = await serve(first);
    let clock = Date.now();
    const host = tlsHostOf(simulator.url)!;
    const tls = new TlsObserver({ now: () => clock, trust: new Map([[host, [ca.cert]]]), recheckMs: 3_600_000 });
    const dispatcher = new UndiciAgent({ connect: tls.connect, keepAliveTimeout: 600_000 });
    const target = targetFor(simulator.url);
    try {
      const before = await runProbe(target, dispatcher, () => clock, undefined, tls);
      expect(before.tls!.daysLeft).toBeLessThan(2.01);
      const renewed = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 90 * DAY) });
      simulator.setCertificate(renewed);
      // Facts younger than the recheck are served as they are: no connection of the observer's own.
      clock += 60_000;
      expect(tls.facts(host)!.expiresAt).toBe(before.tls!.expiresAt);
      expect(tls.inspecting).toBe(0);
      // Older: the stale facts are served once more while a fresh handshake reads the chain.
      clock += 3_600_000;
      expect(tls.facts(host)!.expiresAt).toBe(before.tls!.expiresAt);
      expect(tls.inspecting).toBe(1);
      await waitUntil(() => tls.inspecting === 0, 'the refresh handshake');
      expect(tls.facts(host)).toMatchObject({ valid: true, checkedAt: clock });
      expect(tls.facts(host)!.expiresAt).toBeGreaterThan(Date.now() + 89 * DAY);
      const after = await runProbe(target, dispatcher, () => clock, undefined, tls);
      expect(after.ok).toBe(true);
      expect(after.tls!.daysLeft).toBeGreaterThan(89);
    } finally {
      await dispatcher.destroy();
      tls.close();
    }
  });

  it('a plain http target carries no TLS facts', async () => {
    const simulator = await startSimulator({ name: 'blue' });
    simulators.push(simulator);
    const result = await probeOnce(simulator);
    expect(result.ok).toBe(true);
    expect(result.tls).toBeUndefined();
    expect(tlsHostOf(simulator.url)).toBeUndefined();
  });
});

describe('tlsHostKey', () => {
  it.each([
    ['https://example.com', 'example.com:443'],
    ['https://Example.com:8443/base', 'example.com:8443'],
    ['https://[::1]:9443', '::1:9443'],
    ['https://127.0.0.1', '127.0.0.1:443'],
  ])('%s → %s', (origin, key) => {
    expect(tlsHostOf(origin)).toBe(key);
  });

  it('keys undici connect options the same way as URLs', () => {
    expect(tlsHostKey('::1', '9443')).toBe(tlsHostOf('https://[::1]:9443'));
    expect(tlsHostKey('example.com', '')).toBe(tlsHostOf('https://example.com'));
  });
});

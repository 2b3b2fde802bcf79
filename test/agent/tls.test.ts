/**
 * TLS end to end: the agent probing two https simulators through their private CA
 * (environments.<env>.tls.ca), the contract's greenlight_tls_cert_expiry_timestamp_seconds, the
 * state, a TLS rule firing on the expired one; and the built CLI honouring NODE_EXTRA_CA_CERTS
 * (read by Node at start, so it needs a process of its own), alone and beside tls.ca.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { startAgent, waitUntil } from '../helpers/agent-harness.js';
import { makeCa, type TestCa } from '../helpers/certs.js';
import { cli } from '../helpers/cli.js';
import { hasTool, promtoolCheckMetrics, tempDir } from '../helpers/tools.js';

const DAY = 86_400_000;
const HAS_OPENSSL = hasTool('openssl');

describe.skipIf(!HAS_OPENSSL)('TLS in the agent and the CLI', () => {
  let ca: TestCa;
  let other: TestCa;
  let blue: Simulator;
  let green: Simulator;
  let blueExpiry: number;
  beforeAll(async () => {
    ca = makeCa('desk private CA', 365);
    other = makeCa('another private CA', 365);
    // One clock reading for the certificate and the expected expiry: two could straddle a second.
    const notAfter = new Date(Date.now() + 10 * DAY);
    const blueLeaf = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date(notAfter.getTime() - 10 * DAY - 3_600_000), notAfter });
    blueExpiry = Math.floor(notAfter.getTime() / 1_000);
    const greenLeaf = ca.issue({ hosts: ['127.0.0.1'], notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') });
    [blue, green] = await Promise.all([startSimulator({ name: 'blue', tls: blueLeaf }), startSimulator({ name: 'green', tls: greenLeaf })]);
  });
  afterAll(async () => {
    await Promise.all([blue?.close(), green?.close()]);
  });

  it("probes through each environment's CA, exports the expiry, and a TLS rule fires on the expired certificate", async () => {
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-tls-')}
environments:
  blue: { url: "${blue.url}", tls: { ca: "${ca.certPath}" } }
  green: { url: "${green.url}", tls: { ca: "${ca.certPath}" } }
probeDefaults: { every: 100ms, timeout: 2s, jitter: 0 }
rules:
  - name: tls-expiry-critical
    severity: critical
    when:
      any:
        - { fact: tlsDaysLeft, params: { env: live }, operator: lessThan, value: 3 }
        - { fact: tlsDaysLeft, params: { env: idle }, operator: lessThan, value: 3 }
    repeatInterval: 0s
probes:
  - { name: health, path: /api/health }
`);
    const { agent, events } = await startAgent(config, { processMetrics: false });
    try {
      await waitUntil(() => agent.state().series.every((s) => s.tls !== null), 'TLS facts of both environments');
      const [b, g] = ['blue', 'green'].map((env) => agent.state().series.find((s) => s.env === env)!);
      expect(b!.up).toBe(true);
      expect(b!.tls).toMatchObject({ valid: true, error: null, issuer: 'desk private CA', expiresAt: new Date(blueExpiry * 1_000).toISOString() });
      expect(b!.tls!.daysLeft).toBeGreaterThan(9.9);
      expect(g!.up).toBe(false);
      expect(g!.last!.reason).toBe('tls');
      expect(g!.tls).toMatchObject({ valid: false, error: 'CERT_HAS_EXPIRED', expiresAt: '2020-01-02T00:00:00.000Z' });

      const text = (await agent.metrics.render(false)).body;
      expect(text).toContain(`greenlight_tls_cert_expiry_timestamp_seconds{probe="health",env="blue"} ${blueExpiry}\n`);
      expect(text).toContain('greenlight_tls_cert_expiry_timestamp_seconds{probe="health",env="green"} 1577923200\n');
      expect(text).toContain('greenlight_tls_cert_verified{probe="health",env="blue"} 1\n');
      expect(text).toContain('greenlight_tls_cert_verified{probe="health",env="green"} 0\n');
      expect(text).toMatch(/^greenlight_probes_total\{probe="health",env="green",result="tls"\} [1-9]/m);
      if (hasTool('promtool')) expect(promtoolCheckMetrics(text).status).toBe(0);

      await waitUntil(() => events.some((e) => e.type === 'rule.firing'), 'the TLS rule firing');
      const firing = events.find((e) => e.type === 'rule.firing')!;
      expect(firing.rule).toBe('tls-expiry-critical');
      expect(firing.message).toMatch(/tlsDaysLeft -?\d+(\.\d)? days < 3\.0 days/);
    } finally {
      await agent.close();
    }
  });

  const checkConfig = (withCa: boolean) => {
    const dir = tempDir('greenlight-tls-cli-');
    const path = join(dir, 'greenlight.yaml');
    writeFileSync(
      path,
      `environments:\n  blue: { url: "${blue.url}"${withCa ? `, tls: { ca: "${ca.certPath}" }` : ''} }\n  green: { url: "${green.url}" }\nprobes:\n  - { name: health, path: /api/health, timeout: 5s }\n`,
    );
    return path;
  };

  it('greenlight check trusts NODE_EXTRA_CA_CERTS; without it the chain is refused, with its expiry reported', async () => {
    const config = checkConfig(false);
    const trusted = await cli(['check', '--env', 'blue', '--json', '--config', config], { NODE_EXTRA_CA_CERTS: ca.certPath });
    expect(trusted.code).toBe(0);
    expect(JSON.parse(trusted.stdout).results[0].tls).toMatchObject({ valid: true, issuer: 'desk private CA' });

    const refused = await cli(['check', '--env', 'blue', '--json', '--config', config]);
    expect(refused.code).toBe(1);
    const result = JSON.parse(refused.stdout).results[0];
    expect(result.reason).toBe('tls');
    expect(result.tls).toMatchObject({ valid: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', expiresAt: blueExpiry * 1_000 });

    const table = await cli(['check', '--env', 'blue', '--config', config]);
    expect(table.stdout).toMatch(/certificate expires in (9\.9|10\.0) days \(.*\), not verified: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('an environment with tls.ca still trusts NODE_EXTRA_CA_CERTS beside it', async () => {
    // NODE_EXTRA_CA_CERTS names another CA only: blue's own bundle is what verifies it.
    const config = checkConfig(true);
    const run = await cli(['check', '--env', 'blue', '--json', '--config', config], { NODE_EXTRA_CA_CERTS: other.certPath });
    expect(run.code).toBe(0);
    // And the reverse: blue's bundle names the other CA, NODE_EXTRA_CA_CERTS the one that signed blue.
    const dir = tempDir('greenlight-tls-cli-');
    const path = join(dir, 'greenlight.yaml');
    writeFileSync(
      path,
      `environments:\n  blue: { url: "${blue.url}", tls: { ca: "${other.certPath}" } }\n  green: { url: "${green.url}" }\nprobes:\n  - { name: health, path: /api/health, timeout: 5s }\n`,
    );
    const both = await cli(['check', '--env', 'blue', '--json', '--config', path], { NODE_EXTRA_CA_CERTS: ca.certPath });
    expect(both.code).toBe(0);
    expect(JSON.parse(both.stdout).results[0].tls).toMatchObject({ valid: true });
    const neither = await cli(['check', '--env', 'blue', '--json', '--config', path]);
    expect(neither.code).toBe(1);
  });
});

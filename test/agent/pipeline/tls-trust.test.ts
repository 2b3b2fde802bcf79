/**
 * The probe pool's connections per origin grow with the series probing that origin (issue 18):
 * with thousands of series on eight connections the queue alone timed probes out.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../config/load-config.js';
import { Redactor } from '../../../config/redactor.js';
import { createProbeDispatcher, MAX_PROBE_CONNECTIONS, MIN_PROBE_CONNECTIONS, probeConnect, probeConnections } from '../../../agent/pipeline/tls-trust.js';
import { ProbeCompiler, runProbe } from '../../../probes/http-probe.js';
import { Agent } from '../../../probes/undici-core.js';

function config(probes: number, urls: { blue: string; green: string }, blueOnly = 0): string {
  const lines = [`environments: { blue: { url: "${urls.blue}" }, green: { url: "${urls.green}" } }`, 'probes:'];
  for (let i = 0; i < probes; i++) lines.push(`  - { name: p${i}, path: /${i}${i < blueOnly ? ', environments: [blue]' : ''} }`);
  return lines.join('\n') + '\n';
}

describe('probeConnections', () => {
  const apart = { blue: 'http://127.0.0.1:8081', green: 'http://127.0.0.1:8082' };
  it.each([
    { what: 'the stock four probes', probes: 4, urls: apart, expected: MIN_PROBE_CONNECTIONS },
    { what: '64 probes: 64 series an origin, still the minimum', probes: 64, urls: apart, expected: 8 },
    { what: '500 probes: 500 series an origin, one connection for 8', probes: 500, urls: apart, expected: 63 },
    {
      what: 'both environments on one origin: their series add up',
      probes: 500,
      urls: { blue: 'http://127.0.0.1:8080', green: 'http://127.0.0.1:8080/' },
      expected: 125,
    },
    { what: '5,000 probes: capped', probes: 5_000, urls: apart, expected: MAX_PROBE_CONNECTIONS },
  ])('$what → $expected', ({ probes, urls, expected }) => {
    expect(probeConnections(parseConfig(config(probes, urls), {}))).toBe(expected);
  });

  it('counts the series of the busiest origin (probes limited to one environment count there only)', () => {
    expect(probeConnections(parseConfig(config(200, apart, 100), {}))).toBe(25);
  });
});

describe('the dispatchers to the environments keep to the answer budget', () => {
  it('the probe pool and probeConnect (promotion rounds, load) both drop a target that sends blank lines without end (regression: parsed until the deadline)', async () => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        const blank = Buffer.from('\r\n'.repeat(16_384));
        const more = () => {
          while (!socket.destroyed && socket.write(blank));
        };
        socket.on('drain', more);
        more();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const parsed = parseConfig(
      `environments: { blue: { url: "${url}" }, green: { url: "http://127.0.0.1:9" } }\nprobes:\n  - { name: health, path: /, timeout: 10s }\n`,
      {},
    );
    const target = new ProbeCompiler(parsed, Redactor.of(parsed)).target(parsed.probes[0]!, 'blue');
    const pool = createProbeDispatcher(parsed);
    const promotion = new Agent({ connect: probeConnect(parsed) });
    try {
      for (const dispatcher of [pool.dispatcher, promotion]) {
        const result = await runProbe(target, dispatcher, Date.now);
        expect({ ok: result.ok, reason: result.reason }).toEqual({ ok: false, reason: 'body_too_large' });
      }
    } finally {
      await pool.dispatcher.destroy();
      await promotion.destroy();
      server.close();
    }
  });
});

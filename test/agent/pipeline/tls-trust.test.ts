/**
 * The probe pool's connections per origin grow with the series probing that origin (issue 18):
 * with thousands of series on eight connections the queue alone timed probes out.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../config/load-config.js';
import { MAX_PROBE_CONNECTIONS, MIN_PROBE_CONNECTIONS, probeConnections } from '../../../agent/pipeline/tls-trust.js';

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

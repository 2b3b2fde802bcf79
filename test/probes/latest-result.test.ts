import { describe, expect, it } from 'vitest';
import { LatestResult } from '../../probes/latest-result.js';
import type { ProbeResult } from '../../probes/probe-result.js';

const base = (over: Partial<ProbeResult>): ProbeResult => ({
  probe: 'health',
  env: 'blue',
  ok: true,
  durationMs: 12.5,
  startedAt: 1_760_000_000_000,
  checks: [],
  extracted: {},
  ...over,
});

/** Results in the order a probe's fields are set (status, then reason or error, then tls, then confirmation). */
const RESULTS: ProbeResult[] = [
  (() => {
    const r = base({
      checks: [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: true, text: '$.status ("ok") == "ok"' },
      ],
      extracted: { memory: 63.2, cpu: 41 },
    });
    r.status = 200;
    return r;
  })(),
  (() => {
    const r = base({ ok: false, durationMs: 3_000, startedAt: 1_760_000_001_000 });
    r.reason = 'timeout';
    r.error = 'no complete answer within 3000ms';
    return r;
  })(),
  (() => {
    const r = base({ ok: false, startedAt: 1_760_000_002_000, checks: [{ ok: false, text: 'status 500 in [2xx]' }], extracted: { cpu: 99.5 } });
    r.status = 500;
    r.reason = 'status';
    r.tls = {
      expiresAt: 1_770_000_000_000,
      daysLeft: 115.7,
      valid: true,
      subject: 'CN=a',
      issuer: 'CN=ca',
      expiring: 'CN=a',
      checkedAt: 1_760_000_002_000,
      chainLength: 2,
    };
    r.confirmation = { of: 'failure', attempt: 2 };
    return r;
  })(),
  (() => {
    const r = base({
      startedAt: 1_760_000_003_000,
      checks: [
        { ok: true, text: 'status 200 in [2xx]' },
        { ok: true, text: 'a' },
        { ok: true, text: 'b' },
      ],
      extracted: { disk: 12, memory: 70 },
    });
    r.status = 200;
    return r;
  })(),
];

describe('LatestResult', () => {
  it('is undefined before the first result', () => {
    const latest = new LatestResult('health', 'blue');
    expect(latest.result()).toBeUndefined();
    expect(latest.startedAt).toBeUndefined();
  });

  it('gives back each result it noted, field for field, absent fields absent, keys in the same order', () => {
    const latest = new LatestResult('health', 'blue');
    // Forward, then backward: the checks and extracted values grow and shrink between results.
    for (const result of [...RESULTS, ...[...RESULTS].reverse()]) {
      latest.note(result);
      const back = latest.result()!;
      expect(back).toStrictEqual(result);
      expect(JSON.stringify(back)).toBe(JSON.stringify(result));
      expect(latest.startedAt).toBe(result.startedAt);
    }
  });

  it('builds a new object on each call, so a caller cannot change what it keeps', () => {
    const latest = new LatestResult('health', 'blue');
    latest.note(RESULTS[0]!);
    const first = latest.result()!;
    first.checks.push({ ok: false, text: 'added by a caller' });
    first.extracted.memory = 0;
    expect(latest.result()).toStrictEqual(RESULTS[0]);
    expect(latest.result()).not.toBe(latest.result());
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeLoad, runLoadTest, type LoadReport } from '../../../agent/promote/load-test.js';

let server: Server;
let origin: string;
let failEvery = 0;
let count = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    count++;
    if (req.url === '/hang') return;
    if (req.url === '/fail' || (failEvery > 0 && count % failEvery === 0)) return void res.writeHead(500).end('no');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

const target = (path = '/ok') => ({
  probe: 'p',
  origin,
  path,
  method: 'GET' as const,
  headers: {},
  body: undefined,
  checkStatus: (status: number) => ({ ok: status >= 200 && status < 300, text: `status ${status}` }),
});

describe('runLoadTest', () => {
  it('sends exactly rps × duration requests, open-model, and measures them', async () => {
    failEvery = 0;
    count = 0;
    const progress: number[] = [];
    // A timeout far beyond any answer here, even on a loaded machine: this counts, it does not time.
    const report = await runLoadTest({ targets: [target()], rps: 200, durationMs: 500, timeoutMs: 15_000, onProgress: (p) => progress.push(p.sent) });
    expect(report.sent).toBe(100);
    expect(report.completed).toBe(100);
    expect(count).toBe(100);
    expect(report.errors).toBe(0);
    expect(report.p50Ms).toBeGreaterThan(0);
    expect(report.p95Ms!).toBeGreaterThanOrEqual(report.p50Ms!);
    expect(report.p99Ms!).toBeGreaterThanOrEqual(report.p95Ms!);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('counts failed statuses and timeouts as errors, by reason', async () => {
    failEvery = 0;
    // Only /hang may time out: the timeout leaves the others seconds to answer on a loaded machine.
    const report = await runLoadTest({ targets: [target(), target('/hang'), target('/fail')], rps: 150, durationMs: 200, timeoutMs: 3_000 });
    expect(report.sent).toBe(30);
    expect(report.errorsByReason).toEqual({ timeout: 10, 'status 500': 10 });
    expect(report.errorRatio).toBeCloseTo(2 / 3);
    expect(report.completed).toBe(30);
  });
});

describe('judgeLoad', () => {
  const base: LoadReport = {
    requestedRps: 10,
    durationMs: 1_000,
    sent: 100,
    completed: 100,
    errors: 0,
    errorRatio: 0,
    achievedRps: 10,
    throughputRps: 10,
    p50Ms: 10,
    p95Ms: 100,
    p99Ms: 200,
    maxMs: 300,
    maxLagMs: 1,
    errorsByReason: {},
  };
  it.each([
    ['within both', {}, []],
    ['p95 at the line fails', { p95Ms: 2_000 }, ['p95 latency 2.00s >= 2.00s']],
    [
      'error ratio at the line fails, naming the reasons',
      { errors: 5, errorRatio: 0.05, errorsByReason: { 'status 502': 5 } },
      ['error ratio 5.0 % >= 5.0 % (5 of 100: 5× status 502)'],
    ],
    [
      'no success at all',
      { p95Ms: null, errors: 100, errorRatio: 1, errorsByReason: { ECONNREFUSED: 100 } },
      ['p95 latency unknown: no request succeeded', 'error ratio 100.0 % >= 5.0 % (100 of 100: 100× ECONNREFUSED)'],
    ],
  ] as const)('%s', (_what, patch, failures) => {
    expect(judgeLoad({ ...base, ...patch } as LoadReport, { maxP95Ms: 2_000, maxErrorRatio: 0.05 }).failures).toEqual(failures);
  });
});

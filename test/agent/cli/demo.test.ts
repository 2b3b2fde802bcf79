import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { demoCommand } from '../../../agent/cli/commands/demo.js';

describe('greenlight demo', () => {
  it('scripts a fault on the live environment: pending → firing → rollback → safe mode → alert delivered, then exits 0', async () => {
    const out: string[] = [];
    // A machine that runs a real agent: its traffic webhook, cluster database and live environment
    // are in the environment. The demo must touch none of them (regression: it read them all, so its
    // scripted fault switched the real traffic layer, and it would have joined the real cluster).
    const production = await recordingServer();
    // Port 0 everywhere: the demo starts its simulators and agent on whatever ports are free.
    const env = {
      BLUE_URL: 'http://127.0.0.1:0',
      GREEN_URL: 'http://127.0.0.1:0',
      GREENLIGHT_LISTEN: '127.0.0.1:0',
      GREENLIGHT_PROBE_INTERVAL: '250ms',
      GREENLIGHT_ACTIVE: 'green',
      TRAFFIC_WEBHOOK_URL: `${production.url}/traffic`,
      SLACK_WEBHOOK_URL: `${production.url}/slack`,
      GREENLIGHT_DATABASE_URL: `postgres://greenlight@127.0.0.1:${production.port}/greenlight`,
    };
    let code: number;
    try {
      code = await demoCommand({ keepRunning: false, stepMs: 500 }, { out: (text) => out.push(text), err: (text) => out.push(text), env });
    } finally {
      await production.close();
    }
    const text = out.join('\n');
    expect(code).toBe(0);
    expect(production.requests).toEqual([]);
    const agentUrl = /greenlight agent:\s+(http:\/\/127\.0\.0\.1:(\d+))/.exec(text);
    expect(Number(agentUrl?.[2])).toBeGreaterThan(0);
    expect(text).toContain(`curl ${agentUrl![1]}/metrics`);
    expect(text).toMatch(/AlphaStack simulators: blue http:\/\/127\.0\.0\.1:[1-9]\d* \(live\), green http:\/\/127\.0\.0\.1:[1-9]\d*/);
    const at = (pattern: RegExp) => text.search(pattern);
    // The incident's actions run side by side: the page may reach the receiver before or after the
    // switch (which verifies green first). The incident is about blue, so it resolves as soon as
    // green is judged healthy: its resolved page may come before the demo's summary line.
    const order = [
      /probe\.down\s+universe on blue \(live\) is failing: assertion: \$\.universe \(\[\]\) is empty/,
      /rule\.pending\s+live-universe-failing pending/,
      /rule\.firing\s+live-universe-failing firing/,
      /traffic\.switched live traffic switched blue → green/,
      /live is now green; blue's flags are in safe mode \(FORCE_V2_FALLBACK=true, ALPHASTACK_V3_ENABLED=false, ALPHASTACK_PROTECTION=true\)/,
    ].map(at);
    expect(order.every((index) => index >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // The page comes after the group wait (5 s); by then the rollback has usually ended the
    // incident, so it arrives once, as resolved (it is never dropped), else firing then resolved.
    const paged = at(/receiver got a (firing|resolved) alert/);
    const resolved = at(/receiver got a resolved alert/);
    expect(paged).toBeGreaterThan(order[2]!);
    expect(resolved).toBeGreaterThanOrEqual(paged);
    expect(resolved).toBeGreaterThan(order[3]!);
    expect(text).toMatch(/flag\.changed\s+emergency-rollback preset applied to blue/);
    expect(text).not.toMatch(/"level":/);
  });

  it('a port taken: says which, and how to move the demo; exit 1, no stack trace', async () => {
    const taken = await recordingServer();
    const out: string[] = [];
    try {
      const env = { BLUE_URL: taken.url, GREEN_URL: 'http://127.0.0.1:0', GREENLIGHT_LISTEN: '127.0.0.1:0' };
      const code = await demoCommand({ keepRunning: false, stepMs: 500 }, { out: (text) => out.push(text), err: (text) => out.push(text), env });
      expect(code).toBe(1);
    } finally {
      await taken.close();
    }
    expect(out.join('\n')).toContain(
      `greenlight demo: cannot start: port ${taken.port} on 127.0.0.1 is already in use (another simulator or AlphaStack instance may be running there; choose another port, or 0 for a random free one). Give the demo free ports with GREENLIGHT_LISTEN, BLUE_URL and GREEN_URL`,
    );
  });
});

/** A server on a free port that records every request (and every connection) it gets. */
async function recordingServer() {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.writeHead(200).end();
  });
  server.on('connection', () => requests.push('connection'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

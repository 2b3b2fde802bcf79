import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEvent } from '../../../agent/cli/commands/tail.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { createLogger } from '../../../agent/telemetry/logger.js';
import { escapeControls, escapeForTerminal, escapeJsonControls } from '../../../agent/telemetry/terminal-text.js';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { BIN, ROOT } from '../../helpers/cli.js';
import { tempDir, writeTempFile } from '../../helpers/tools.js';

/** What a hostile target or operator puts in a text: clear the screen, bell, carriage return, C1 CSI and NEL. */
const HOSTILE = 'bad\u001b[2J\u0007\rfake line\u009b2J\u0085end\u202e';
/** Control characters a terminal obeys; newlines excepted where a text may span lines. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/;

describe('escaping control characters', () => {
  it('escapeControls writes every control out, on one line', () => {
    expect(escapeControls(HOSTILE)).toBe('bad\\u001b[2J\\u0007\\rfake line\\u009b2J\\u0085end\\u202e');
    expect(escapeControls('a\nb\tc')).toBe('a\\nb\\tc');
    expect(escapeControls('a\nb\tc', true)).toBe('a\nb\tc');
  });

  it("escapeForTerminal keeps only greenlight's own colors", () => {
    expect(escapeForTerminal(`\u001b[31mred\u001b[0m ${HOSTILE}\n\u001b[2J\u001b[31;1m`)).toBe(
      `\u001b[31mred\u001b[0m ${escapeControls(HOSTILE)}\n\\u001b[2J\\u001b[31;1m`,
    );
  });

  it('escapeJsonControls keeps the JSON and its value, and for display makes controls visible after parsing', () => {
    const json = JSON.stringify({ message: HOSTILE, stack: 'Error\n    at x' });
    expect(RAW_CONTROL.test(json)).toBe(true);
    const safe = escapeJsonControls(json);
    expect(RAW_CONTROL.test(safe)).toBe(false);
    expect(JSON.parse(safe)).toEqual(JSON.parse(json));
    const display = JSON.parse(escapeJsonControls(json, true)) as { message: string; stack: string };
    expect(display.message).toBe(escapeControls(HOSTILE));
    expect(display.stack).toBe('Error\n    at x');
    // An escaped backslash before "u001b" is text, not an escape, and stays so.
    expect(JSON.parse(escapeJsonControls(JSON.stringify({ a: '\\u001b' }), true))).toEqual({ a: '\\u001b' });
  });

  it('tail prints one line per event with the controls written out, colored or not', () => {
    const event = {
      id: 7,
      time: '2026-03-14T12:00:00.000Z',
      type: 'flag.changed',
      severity: 'warning',
      env: 'blue\u001b[2J',
      probe: null,
      rule: null,
      message: `reason: ${HOSTILE}\nsecond line`,
      data: {},
    } as unknown as GreenlightEvent;
    for (const color of [false, true]) {
      const line = formatEvent(event, color).replace(/^\u001b\[33m|\u001b\[0m$/g, '');
      expect(line).not.toMatch(RAW_CONTROL);
      expect(line).not.toContain('\n');
      expect(line).toContain('reason: bad\\u001b[2J\\u0007\\rfake line\\u009b2J');
    }
  });

  it('JSON log lines carry no raw C1 or DEL (JSON.stringify leaves them)', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      format: 'json',
      destination: new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }) as never,
    });
    logger.warn({ reason: HOSTILE }, `rollback: ${HOSTILE}`);
    expect(lines[0]).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(lines[0]!)).toMatchObject({ reason: HOSTILE, msg: `rollback: ${HOSTILE}` });
  });
});

describe('control characters from a probe body and a rollback reason', () => {
  let green: Simulator;
  let target: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    green = await startSimulator({ name: 'green' });
    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: HOSTILE, database: { connected: true } })),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    target = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    };
  });
  afterAll(async () => {
    await green.close();
    await target.close();
  });

  it('reach neither greenlight tail nor the pretty log raw (regression: ESC[2J, BEL, CR and C1 went through)', async () => {
    const config = writeTempFile(
      'controls.yaml',
      `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-controls-')}
log: { format: pretty }
environments:
  blue: { url: ${target.url} }
  green: { url: ${green.url} }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
api: { rollbackToken: rollback-token-controls }
probes:
  - name: health
    path: /api/health
    expect: { json: [ { path: $.status, in: [healthy] } ] }
`,
    );
    const agent = spawn(process.execPath, [BIN, 'run', '--config', config], { cwd: ROOT, env: { PATH: process.env.PATH } });
    let log = '';
    agent.stdout.on('data', (chunk) => (log += chunk));
    agent.stderr.on('data', (chunk) => (log += chunk));
    let tail: ReturnType<typeof spawn> | undefined;
    try {
      await waitUntil(() => /listening on 127\.0\.0\.1:\d+/.test(log), 'the agent to listen', 15_000);
      const base = `http://127.0.0.1:${/listening on 127\.0\.0\.1:(\d+)/.exec(log)![1]}`;
      await waitUntil(async () => (await fetch(`${base}/readyz`)).status === 200, 'the first probe round');
      let printed = '';
      tail = spawn(process.execPath, [BIN, 'tail', '--url', base, '--since', '0'], { cwd: ROOT, env: { PATH: process.env.PATH } });
      tail.stdout!.on('data', (chunk) => (printed += chunk));
      const rollback = await fetch(`${base}/api/v1/rollback`, {
        method: 'POST',
        headers: { authorization: 'Bearer rollback-token-controls', 'content-type': 'application/json' },
        body: JSON.stringify({ reason: HOSTILE }),
      });
      expect(rollback.status).toBe(200);
      await waitUntil(() => printed.includes('traffic.switched') && printed.includes('probe.down'), 'tail to print the probe failure and the switch', 15_000);

      for (const [name, text] of [
        ['tail', printed],
        ['the pretty log', log.replace(/\u001b\[[0-9;]*m/g, '')],
      ] as const) {
        const raw = [...text].filter((char) => RAW_CONTROL.test(char)).map((char) => `U+${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
        expect({ name, raw: [...new Set(raw)] }).toEqual({ name, raw: [] });
        expect(text).toContain('bad\\u001b[2J\\u0007\\rfake line\\u009b2J');
      }
    } finally {
      tail?.kill('SIGKILL');
      agent.kill('SIGKILL');
    }
  }, 40_000);
});

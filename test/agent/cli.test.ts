import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { pairConfig, waitUntil } from '../helpers/agent-harness.js';
import { writeTempFile } from '../helpers/tools.js';

/** The built CLI (npm test builds first). */
const BIN = new URL('../../bin/greenlight.js', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

/** Run the CLI without blocking this process: the simulators it probes live here. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, timeout: 20_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

let blue: Simulator;
let green: Simulator;
beforeAll(async () => {
  blue = await startSimulator({ name: 'blue' });
  green = await startSimulator({ name: 'green' });
});
afterAll(async () => {
  await blue.close();
  await green.close();
});

describe('greenlight validate', () => {
  it('accepts the default config and says what it holds', async () => {
    const run = await cli(['validate']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('config/greenlight.yaml is valid: 4 probes on blue and green (blue live');
  });

  it('exits 2 naming the key path and line of every problem', async () => {
    const file = writeTempFile('bad.yaml', pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:2').replace('every: 200ms', 'every: 5x').replace('    path: /api/health', '    path: /api/health\n    evry: 5s'));
    const run = await cli(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid configuration (2 problems)');
    expect(run.stderr).toContain('probeDefaults.every: "5x" is not a duration such as 500ms, 5s or 2m (line 9)');
    expect(run.stderr).toContain('probes[0].evry: unknown key; did you mean every? (line ');
  });

  it('exits 2 for a missing file', async () => {
    const run = await cli(['validate', '/nonexistent/greenlight.yaml']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('cannot read config /nonexistent/greenlight.yaml: file not found');
  });
});

describe('greenlight schema', () => {
  it('prints the committed JSON Schema', async () => {
    const run = await cli(['schema']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(readFileSync(new URL('../../config/greenlight.schema.json', import.meta.url), 'utf8')));
  });
});

describe('greenlight check', () => {
  const configFile = () => writeTempFile('pair.yaml', pairConfig(blue.url, green.url));

  it('exits 0 with a table when every probe passes', async () => {
    const run = await cli(['check', '--env', 'green', '--config', configFile()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^PROBE\s+RESULT\s+STATUS\s+LATENCY\s+DETAIL/);
    expect(run.stdout).toMatch(/health\s+ok\s+200/);
    expect(run.stdout).toContain('✅ green: all 2 probes pass');
  });

  it('exits 1 and names the failing figure, as JSON with --json', async () => {
    green.setFaults({ emptyUniverse: true });
    try {
      const run = await cli(['check', '--env', 'green', '--json', '--config', configFile()]);
      expect(run.code).toBe(1);
      const report = JSON.parse(run.stdout);
      expect(report).toMatchObject({ env: 'green', ok: false });
      const universe = report.results.find((r: { probe: string }) => r.probe === 'universe');
      expect(universe).toMatchObject({ ok: false, reason: 'assertion', status: 200 });
      expect(universe.checks).toContainEqual({ ok: false, text: '$.universe ([]) is empty' });
      expect(report.results.find((r: { probe: string }) => r.probe === 'health').ok).toBe(true);
    } finally {
      green.resetFaults();
    }
  });

  it('exits 1 when the environment refuses connections', async () => {
    const file = writeTempFile('down.yaml', pairConfig(blue.url, 'http://127.0.0.1:1'));
    const run = await cli(['check', '--env', 'green', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('refused');
    expect(run.stdout).toContain('❌ green: 2 of 2 probes fail');
  });

  it.each([
    [['check'], 'check needs --env NAME'],
    [['check', '--env', 'purple'], '--env purple is not an environment of config/greenlight.yaml; choose blue or green'],
    [['check', '--env', 'blue', '--bogus'], "Unknown option '--bogus'"],
    [['frobnicate'], 'unknown command "frobnicate"'],
  ])('exits 2 for %j', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });
});

describe('greenlight run', () => {
  it('exits 2 on a bad config and starts nothing', async () => {
    const port = 19_000 + Math.floor(Math.random() * 1_000);
    const file = writeTempFile('bad.yaml', pairConfig(blue.url, green.url).replace('127.0.0.1:0', `127.0.0.1:${port}`).replace('every: 200ms', 'every: soon'));
    const run = await cli(['run', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('probeDefaults.every: "soon" is not a duration');
    expect(await isListening(port)).toBe(false);
  });

  it('exits 1 with a clear message when the data directory cannot be used', async () => {
    const notADirectory = writeTempFile('plain-file', 'x');
    const file = writeTempFile('run.yaml', pairConfig(blue.url, green.url).replace(/^dataDir: .*$/m, `dataDir: ${notADirectory}/state`));
    const run = await cli(['run', '--config', file]);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toContain(`cannot open the state database ${notADirectory}/state/greenlight.db`);
    expect(run.stdout + run.stderr).toContain('Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops cleanly on %s within a few seconds, even with probes hanging', async (signal) => {
    const port = 20_000 + Math.floor(Math.random() * 1_000);
    const file = writeTempFile('run.yaml', pairConfig(blue.url, 'http://127.0.0.1:1').replace('127.0.0.1:0', `127.0.0.1:${port}`).replace('timeout: 500ms', 'timeout: 30s'));
    blue.setFaults({ hang: true });
    const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env: { PATH: process.env.PATH } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await waitUntil(() => output.includes('agent.started'), 'the agent to start');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const stoppedAt = Date.now();
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(5_000);
      expect(output).toContain(`received ${signal}, stopping`);
      expect(output).toContain('"msg":"stopped"');
      expect(await isListening(port)).toBe(false);
    } finally {
      blue.resetFaults();
      child.kill('SIGKILL');
    }
  });
});

describe('secrets', () => {
  it('never show in logs, events or the state API', async () => {
    const port = 21_000 + Math.floor(Math.random() * 1_000);
    const secretUrl = blue.url.replace('http://', 'http://ops:hunter2-url-secret@');
    const text = pairConfig('${BLUE_URL}', green.url)
      .replace('127.0.0.1:0', `127.0.0.1:${port}`)
      .replace('    path: /api/health\n', '    path: /api/health\n    headers:\n      authorization: Bearer ${API_TOKEN}\n');
    const file = writeTempFile('secret.yaml', text);
    blue.setFaults({ errorRatio: 1 });
    const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env: { PATH: process.env.PATH, BLUE_URL: secretUrl, API_TOKEN: 'tok-hunter2-header-secret' } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await waitUntil(() => output.includes('probe.down'), 'a probe.down on the failing environment');
      const state = await (await fetch(`http://127.0.0.1:${port}/api/v1/state`)).text();
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      for (const secret of ['hunter2-url-secret', 'tok-hunter2-header-secret']) {
        expect(output).not.toContain(secret);
        expect(state).not.toContain(secret);
        expect(metrics).not.toContain(secret);
      }
      expect(state).toContain('redacted@127.0.0.1');
    } finally {
      blue.resetFaults();
      child.kill('SIGKILL');
    }
  });
});

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

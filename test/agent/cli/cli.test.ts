import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startSimulator, type Simulator } from '../../../simulator/alphastack-simulator.js';
import { pairConfig, waitUntil } from '../../helpers/agent-harness.js';
import { tempDir, writeTempFile } from '../../helpers/tools.js';
import { rollbackCommand } from '../../../agent/cli/commands/rollback.js';
import { BIN, cli, listeningPort, ROOT, startAgentProcess } from '../../helpers/cli.js';

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

describe('a reader that goes away', () => {
  it('greenlight schema | head: exits 0 quietly on EPIPE (regression: an unhandled error event and a stack trace)', async () => {
    // A real pipe into head, which closes it after 80 bytes of the 95 KB schema; bash says how greenlight ended.
    const errors = join(tempDir('greenlight-epipe-'), 'stderr');
    const child = spawn('bash', ['-c', '"$0" "$1" schema 2>"$2" | head -c 80 >/dev/null; echo "${PIPESTATUS[0]}"', process.execPath, BIN, errors], {
      cwd: ROOT,
      env: { PATH: process.env.PATH },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(readFileSync(errors, 'utf8')).not.toContain('Unhandled');
    expect(stdout.trim()).toBe('0');
  });

  it('greenlight tail 2>&1 | head -1 while it reconnects: exits 0 on EPIPE of standard error (regression: exit 1)', async () => {
    const child = spawn('bash', ['-c', '"$0" "$1" tail --url http://127.0.0.1:9 2>&1 | head -1 >/dev/null; echo "${PIPESTATUS[0]}"', process.execPath, BIN], {
      cwd: ROOT,
      env: { PATH: process.env.PATH },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    await new Promise((resolve) => child.once('exit', resolve));
    expect(stdout.trim()).toBe('0');
  });
});

describe('greenlight validate', () => {
  it('accepts the default config and says what it holds', async () => {
    const run = await cli(['validate']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('config/greenlight.yaml is valid: 4 probes on blue and green (blue live');
    // No ADMIN_TOKEN or ROLLBACK_TOKEN in this environment: validate says what that switches off.
    expect(run.stdout).toContain('note: controls disabled: api.adminToken and api.rollbackToken are not set');
  });

  it('exits 2 naming the key path and line of every problem', async () => {
    const file = writeTempFile(
      'bad.yaml',
      pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:2')
        .replace('every: 200ms', 'every: 5x')
        .replace('    path: /api/health', '    path: /api/health\n    evry: 5s'),
    );
    const run = await cli(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid configuration (2 problems)');
    expect(run.stderr).toContain('probeDefaults.every: "5x" is not a duration such as 500ms, 5s or 2m (line 9)');
    expect(run.stderr).toContain('probes[0].evry: unknown key; did you mean every? (line ');
  });

  it('exits 2 for a missing file, naming how the path is given', async () => {
    const run = await cli(['validate', '/nonexistent/greenlight.yaml']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'cannot read config /nonexistent/greenlight.yaml: file not found. Give the path of a greenlight YAML file (run and check: --config F; validate F).',
    );
  });

  it('names an empty path as such, and a long one once and cut short (regression: `--config=` said "config : file not found"; a 100 KB path was printed twice)', async () => {
    const empty = await cli(['run', '--config=']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('cannot read config "": file not found.');
    const long = await cli(['validate', 'x'.repeat(5_000)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain(`cannot read config "${'x'.repeat(200)}"…: ENAMETOOLONG: name too long, open '…'.`);
    expect(long.stderr.length).toBeLessThan(1_000);
  });

  it('exits 2 at once for a path that is not a regular file (regression: a named pipe hung validate for ever)', async () => {
    const fifo = join(tempDir('greenlight-fifo-'), 'greenlight.yaml');
    execFileSync('mkfifo', [fifo]);
    for (const [path, kind] of [
      [fifo, 'a named pipe (FIFO)'],
      [tempDir('greenlight-dir-'), 'a directory'],
      ['/dev/zero', 'a device'],
    ]) {
      const run = await cli(['validate', path!], {}, 10_000);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`cannot read config ${path}: it is ${kind}, not a regular file.`);
    }
  });

  it('exits 2 naming the line of text that is not UTF-8 (regression: a Latin-1 é became U+FFFD and the file was valid)', async () => {
    const text = pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:2').replace('path: /api/health', 'path: /api/h\u00e9alth');
    const file = writeTempFile('latin1.yaml', '');
    writeFileSync(file, Buffer.from(text, 'latin1'));
    const line = text.split('\n').findIndex((l) => l.includes('/api/h')) + 1;
    const run = await cli(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`the file is not UTF-8 text (byte 0xE9 on this line): save it as UTF-8 (line ${line})`);
    // A U+FFFD written as UTF-8 is text like any other.
    writeFileSync(file, text.replace('/api/h\u00e9alth', '/api/h\ufffdalth'));
    expect((await cli(['validate', file])).code).toBe(0);
  });

  it('quotes a file that is not a config at all only so far (regression: 100 KB of words printed 163 KB)', async () => {
    // 100 KB of words on one line: YAML takes it as one string, which the problem quoted whole.
    const noise = Array.from({ length: 15_000 }, (_, i) => `word${(i * 7919) % 1_000_003}`).join(' ');
    const run = await cli(['validate', writeTempFile('noise.yaml', `${noise}\n`)]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid configuration');
    expect(run.stderr).toMatch(/… \(\d+ more characters\)/);
    expect(run.stderr.length).toBeLessThan(2_000);
  });
});

describe('greenlight schema', () => {
  it('prints the committed JSON Schema', async () => {
    const run = await cli(['schema']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(JSON.parse(readFileSync(new URL('../../../config/greenlight.schema.json', import.meta.url), 'utf8')));
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

  it('shows the environment URL as /api/v1/state does, without its credentials or query (regression: --json printed ?token=…)', async () => {
    const { port } = new URL(green.url);
    const url = `http://ops:pw-SECRET-4815162342@127.0.0.1:${port}/?token=tok-SECRET-4815162342`;
    const run = await cli(['check', '--env', 'green', '--json', '--config', writeTempFile('query.yaml', pairConfig(blue.url, url))]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).url).toBe(`http://redacted@127.0.0.1:${port}/?redacted`);
    expect(run.stdout + run.stderr).not.toContain('SECRET');
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
    // Regression: the last of the two was taken, and the promotion went to green.
    [['promote', '--to', 'blue', '--to', 'green'], '--to is given twice (blue, then green): give it once'],
    [['rollback', '--reason', 'a', '--reason', 'b'], '--reason is given twice (a, then b): give it once'],
  ])('exits 2 for %j', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it.each([
    [['rollback', '--reason', 'x', '--url', 'http://127.0.0.1:1'], 'ADMIN_TOKEN'],
    [['tail', '--url', 'http://127.0.0.1:1'], 'GREENLIGHT_STREAM_TOKEN'],
  ])('exits 2 for %j with a control character in %s, naming the variable, never the value (regression: tail crashed)', async (args, variable) => {
    const run = await cli(args, { [variable]: 'pasted-token-\u0001-0123456789' }, 15_000);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${variable} holds a character an HTTP header cannot carry`);
    expect(run.stdout + run.stderr).not.toContain('pasted-token');
  });
});

describe('greenlight run', () => {
  it('exits 2 on a bad config and starts nothing', async () => {
    const file = writeTempFile('bad.yaml', pairConfig(blue.url, green.url).replace('every: 200ms', 'every: soon'));
    const run = await cli(['run', '--config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('probeDefaults.every: "soon" is not a duration');
    // Its one listener logs "listening on" when bound: it never was.
    expect(listeningPort(run.stdout + run.stderr)).toBeUndefined();
    expect(run.stdout + run.stderr).not.toContain('agent.started');
  });

  it('a second agent on the same data directory exits 1 before writing anything (regression: it took an event id the first was using, and that event was lost)', async () => {
    const file = writeTempFile('one-dir.yaml', pairConfig(blue.url, green.url));
    const first = await startAgentProcess(file);
    try {
      const before = await first.events();
      const second = await cli(['run', '--config', file]);
      expect(second.code).toBe(1);
      expect(second.stdout + second.stderr).toMatch(/another greenlight agent is using the data directory .* \(it holds greenlight\.lock\): stop it first/);
      expect(listeningPort(second.stdout + second.stderr)).toBeUndefined();
      // Nothing of the second agent is in the first one's history, and the first goes on numbering its own.
      const after = await first.events();
      expect(after.filter((e) => e.type === 'agent.started' || e.type === 'agent.stopping')).toEqual(before.filter((e) => e.type === 'agent.started'));
      const ids = after.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await first.stop();
    }
    // Stopped, the directory is free again.
    const again = await startAgentProcess(file);
    await again.stop();
  });

  it('a port already taken: exits 1, and the journal says why the agent stopped (regression: only "greenlight stopping")', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as AddressInfo).port;
    const dataDir = tempDir('greenlight-data-');
    try {
      const file = writeTempFile('taken.yaml', pairConfig(blue.url, green.url, { dataDir }).replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`));
      const run = await cli(['run', '--config', file], {}, 15_000);
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
    } finally {
      holder.close();
    }
    const db = new Database(join(dataDir, 'greenlight.db'), { readonly: true });
    const events = db.prepare('SELECT type, severity, message, data FROM events ORDER BY id').all() as {
      type: string;
      severity: string;
      message: string;
      data: string;
    }[];
    db.close();
    expect(events.map((e) => e.type)).toEqual(['agent.stopping']);
    expect(events[0]!.severity).toBe('critical');
    expect(events[0]!.message).toBe(
      `greenlight stopping: it could not start: cannot listen on 127.0.0.1:${port}: the port is already in use; stop the other process or set GREENLIGHT_LISTEN`,
    );
    expect(JSON.parse(events[0]!.data)).toMatchObject({ signal: null, reason: expect.stringContaining('could not start') });
  });

  it('a damaged state database: exits 1 naming the file and what to do (regression: "database disk image is malformed", or advice about permissions)', async () => {
    const dataDir = tempDir('greenlight-data-');
    const file = writeTempFile('damaged.yaml', pairConfig(blue.url, green.url, { dataDir }));
    // A real database with one page of its tables overwritten (a torn write), and a file of garbage (a bad restore).
    const first = await startAgentProcess(file);
    await first.stop();
    const db = join(dataDir, 'greenlight.db');
    const pages = readFileSync(db);
    pages.fill(0x5a, 4096, 8192);
    writeFileSync(db, pages);
    for (const content of [undefined, randomBytes(50_000)]) {
      if (content) writeFileSync(db, content);
      const run = await cli(['run', '--config', file], {}, 15_000);
      expect(run.code).toBe(1);
      expect(run.stdout + run.stderr).toMatch(
        new RegExp(`the state database ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged \\(.+\\): restore it from a backup, or move it aside`),
      );
      expect(run.stdout + run.stderr).not.toContain('Set GREENLIGHT_DATA_DIR');
    }
  });

  it('a damaged rollup database (reports only): moved aside, and the agent starts (regression: it refused to start, a crash loop over report figures)', async () => {
    const dataDir = tempDir('greenlight-data-');
    writeFileSync(join(dataDir, 'rollups.db'), randomBytes(50_000));
    const agent = await startAgentProcess(writeTempFile('rollups.yaml', pairConfig(blue.url, green.url, { dataDir })));
    try {
      expect(agent.output.join('')).toMatch(
        /the rollup database .*rollups\.db is damaged \(.+\): moved aside to .*rollups\.db\.damaged-.*, and reports start over from now/,
      );
      expect(readdirSync(dataDir).filter((name) => name.startsWith('rollups.db.damaged-'))).toHaveLength(1);
      expect((await fetch(`${agent.base}/api/v1/report?since=1h`)).status).toBe(200);
    } finally {
      await agent.stop();
    }
  });

  it.each([
    ['under a plain file', () => `${writeTempFile('plain-file', 'x')}/state`, 'it is a file, or under a file, not a directory'],
    // As root, "not writable by this user" was said of a file given as the directory.
    ['a plain file', () => writeTempFile('plain-file', 'x'), 'it is a file, or under a file, not a directory'],
    // Node's recursive mkdir retried /proc's ENOENT for ever: the agent spun at start.
    ['under /proc, where nothing can be made', () => `/proc/greenlight-${process.pid}/state`, ''],
  ])('exits 1 with a clear message when the data directory cannot be used: %s', async (_where, dataDir, why) => {
    const dir = dataDir();
    const file = writeTempFile('run.yaml', pairConfig(blue.url, green.url).replace(/^dataDir: .*$/m, `dataDir: ${dir}`));
    const run = await cli(['run', '--config', file], {}, 15_000);
    expect(run.code).toBe(1);
    // The first thing an agent does with its directory is to take it (one agent each).
    expect(run.stdout + run.stderr).toContain(`cannot lock the data directory ${dir}: ${why}`);
    expect(run.stdout + run.stderr).toContain('Set GREENLIGHT_DATA_DIR (dataDir) to a writable directory');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('greenlight tail ends cleanly (exit 0) on %s, as a supervisor or Ctrl-C stops it', async (signal) => {
    // Nothing listens there: tail keeps reconnecting, and must still stop at once.
    const child = spawn(process.execPath, [BIN, 'tail', '--url', 'http://127.0.0.1:9'], { cwd: ROOT, env: { PATH: process.env.PATH } });
    let output = '';
    child.stderr.on('data', (chunk) => (output += chunk));
    try {
      await waitUntil(() => output.includes('reconnecting in'), 'tail to try once');
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops cleanly on %s within a few seconds, even with probes hanging',
    async (signal) => {
      const file = writeTempFile('run.yaml', pairConfig(blue.url, 'http://127.0.0.1:1', { timeout: '10m' }));
      blue.setFaults({ hang: true });
      const hangingBefore = blue.requestCount();
      const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env: { PATH: process.env.PATH } });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      try {
        await waitUntil(() => output.includes('agent.started'), 'the agent to start');
        const port = listeningPort(output)!;
        // Stop while probes hang on blue (they would only end at their ten-minute timeout, long
        // after this test's own: an agent that waited for them fails here).
        await waitUntil(() => blue.requestCount() > hangingBefore, 'a probe to hang on blue');
        child.kill(signal);
        // 'close', not 'exit': the last log lines may still be in the pipe when it exits.
        const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
        expect(code).toBe(0);
        expect(output).toContain(`received ${signal}, stopping`);
        expect(output).toContain('"msg":"stopped"');
        expect(await isListening(port)).toBe(false);
      } finally {
        blue.resetFaults();
        child.kill('SIGKILL');
      }
    },
    60_000,
  );

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops cleanly (exit 0) on %s while still starting (regression: a signal in its first second killed it, 143 or 130, without a log line)',
    async (signal) => {
      const file = writeTempFile('run.yaml', pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:1'));
      const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env: { PATH: process.env.PATH } });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      try {
        // The first log lines are the config's notices, which the agent writes as it starts.
        await waitUntil(() => output.length > 0, 'the agent to start starting');
        child.kill(signal);
        expect(await closed, output).toBe(0);
        expect(output).toMatch(new RegExp(`received ${signal}( while starting)?, stopping`));
        expect(output).toContain('"msg":"stopped"');
      } finally {
        child.kill('SIGKILL');
      }
    },
  );

  it('a SIGHUP while it starts is a reload once started (regression: it killed the agent, exit 129, which systemd does not restart)', async () => {
    // A preload that sends SIGHUP the moment `run` catches it: before the config and the agent's modules are loaded.
    const preload = writeTempFile(
      'hangup-at-once.cjs',
      `const on = process.on;
      process.on = function (name, listener) {
        const result = on.call(this, name, listener);
        if (name === 'SIGHUP') (process.on = on), process.kill(process.pid, name);
        return result;
      };`,
    );
    const file = writeTempFile('run.yaml', pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:1'));
    const child = spawn(process.execPath, [BIN, 'run', '--config', file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, NODE_OPTIONS: `--require ${preload}` },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const ended = () => child.exitCode !== null || child.signalCode !== null;
    try {
      await waitUntil(() => output.includes('"config.reloaded"') || ended(), 'the reload the SIGHUP asked for');
      expect(child.signalCode).toBeNull();
      expect(output).toContain('a SIGHUP came while starting: reloading the config now');
      // (A SIGHUP while it stops is ignored too, but when it would land cannot be timed from here:
      // after the last log line the process tears down its signal handlers as it exits.)
      child.kill('SIGTERM');
      const code = await closed;
      expect(code, `${child.signalCode}\n${output}`).toBe(0);
      expect(output).toContain('"msg":"stopped"');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops (exit 0) without starting anything on %s before its config is loaded', async (signal) => {
    // A preload that signals the process the moment `run` catches the signal: before the agent's modules and the config are loaded.
    const preload = writeTempFile(
      'signal-at-once.cjs',
      `const on = process.on;
      process.on = function (name, listener) {
        const result = on.call(this, name, listener);
        if (name === ${JSON.stringify(signal)}) (process.on = on), process.kill(process.pid, name);
        return result;
      };`,
    );
    const dataDir = tempDir('greenlight-data-');
    const file = writeTempFile('run.yaml', pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:1', { dataDir }));
    const run = await cli(['run', '--config', file], { NODE_OPTIONS: `--require ${preload}` }, 15_000);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`received ${signal} before starting`);
    expect(run.stdout).not.toContain('agent.started');
    // Nothing was opened: no journal, no state.
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('the CLI against something that is not an agent', () => {
  it('a service answering 200 {} to everything: every command exits 1 saying so, none reports a success (regression: rollback printed ✅ and exited 0)', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const env = { ADMIN_TOKEN: 'admin-token-0123456789', ROLLBACK_TOKEN: 'rollback-token-0123456789' };
      for (const args of [
        ['rollback', '--reason', 'x'],
        ['flags', 'list'],
        ['flags', 'emergency-rollback'],
        ['silence', 'add', 'rule=x', '--comment', 'c', '--author', 'audit'],
        ['promote', '--to', 'green'],
        ['report', '--url', url],
      ]) {
        const run = await cli([...args, ...(args.includes('--url') ? [] : ['--url', url])], env);
        expect([args.join(' '), run.code]).toEqual([args.join(' '), 1]);
        expect(run.stdout).not.toContain('✅');
        expect(run.stderr).toContain('but not as a greenlight agent (no greenlight-version header)');
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('the CLI against an answer of another shape', () => {
  it("an answer that carries the agent's header but not the command's shape: every command exits 1 naming what differs, none reports a success or crashes (regression: rollback printed '✅ rolled back undefined → undefined' and exited 0, the others a TypeError)", async () => {
    const answers: Record<string, string> = {
      // A JSON answer of another shape, with the header every agent sends (an agent of another version, a proxy's rewrite).
      json: '{}',
      // A promotion's NDJSON with a line that only looks like its result.
      ndjson: '{"type":"result","ok":true}\n',
    };
    const server = createServer((req, res) => {
      req.resume();
      const ndjson = (req.headers.accept ?? '').includes('ndjson');
      res
        .writeHead(200, { 'content-type': ndjson ? 'application/x-ndjson' : 'application/json', 'greenlight-version': '0.0.1' })
        .end(ndjson ? answers.ndjson : answers.json);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const env = { ADMIN_TOKEN: 'admin-token-0123456789', ROLLBACK_TOKEN: 'rollback-token-0123456789', USER: 'audit' };
      for (const args of [
        ['rollback', '--reason', 'x'],
        ['rollback', 'validate'],
        ['flags', 'list'],
        ['flags', 'set', 'READ_ONLY_MODE=on'],
        ['flags', 'emergency-rollback'],
        ['silence', 'add', 'rule=x', '--comment', 'c'],
        ['silence', 'list'],
        ['silence', 'expire', 'abc'],
        ['incidents'],
        ['ack', 'live-universe-failing#1'],
        ['maintenance', 'start', '--env', 'blue', '--for', '1h', '--reason', 'x'],
        ['maintenance', 'stop', '--env', 'blue'],
        ['maintenance', 'list'],
        ['report'],
        ['promote', '--to', 'green'],
      ]) {
        const run = await cli([...args, '--url', url], env);
        expect([args.join(' '), run.code]).toEqual([args.join(' '), 1]);
        expect(run.stdout).not.toContain('✅');
        expect(run.stdout).not.toContain('undefined');
        expect(run.stderr).not.toMatch(/TypeError|at .*\.js:\d+/);
        expect(run.stderr).toContain("with JSON that is not greenlight's answer");
        expect(run.stderr).toContain('it says it is version "0.0.1"');
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('greenlight rollback while the agent works', () => {
  it('says it is waiting while the answer takes long, then prints it (regression: minutes of silence)', async () => {
    const server = createServer((req, res) => {
      req.resume();
      setTimeout(
        () =>
          res
            .writeHead(200, { 'content-type': 'application/json', 'greenlight-version': 'test' })
            .end(JSON.stringify({ ok: true, from: 'blue', to: 'green', detail: 'switched blue → green' })),
        450,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const out: string[] = [];
      const err: string[] = [];
      const code = await rollbackCommand(
        { reason: 'checkout errors', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, waitingNoticeMs: 100 },
        { out: (t) => out.push(t), err: (t) => err.push(t), env: { ROLLBACK_TOKEN: 'rollback-token-0123456789' } },
      );
      expect(code).toBe(0);
      expect(err.length).toBeGreaterThanOrEqual(2);
      expect(err[0]).toMatch(/^… waiting for http:\/\/127\.0\.0\.1:\d+ to answer \(\d+ s; .*Ctrl-C stops waiting, not the rollback/);
      expect(out).toEqual(['✅ rolled back blue → green: switched blue → green']);
      // Nothing more once answered.
      const said = err.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(err).toHaveLength(said);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('secrets', () => {
  /**
   * Every secret the agent can hold, as known values. Path and query secrets are as long as real
   * ones (Slack's and Discord's webhook paths, PagerDuty's 32-character key).
   */
  const SECRETS = {
    ADMIN_TOKEN: 'adm-7f3c9e21d4b84a0f9c1e6b2d',
    ROLLBACK_TOKEN: 'rbk-5e8a1c47f02d4b9e8a3c6f10',
    STREAM_TOKEN: 'str-9b2d6f18c3e74a50b1d8e4f7',
    API_TOKEN: 'tok-hunter2-header-secret',
    blueUrlPassword: 'blue-pass-3c7e91f2a6d8',
    greenUrlPassword: 'green-pass-8d1f4b6e2c9a',
    slackPath: 'XsLaCkS3cr3tWebh00kPath7Q',
    discordPath: 'dIsCoRdS3cr3tWebh00kTokenZ9',
    PAGERDUTY_ROUTING_KEY: 'R0UT1NGk3yPagerDutyS3cr3t0123456',
    alertUrlPassword: 'am-pass-6a2f9d3e1b7c',
    alertQueryToken: 'am-query-4e8b2d7f1a9c',
    RENDER_API_KEY: 'rnd_S3cr3tR3nd3rAp1K3y9f8e7d',
    trafficUrlPassword: 'tw-pass-2b9e6c1f8d3a',
    trafficPath: 'TrAfF1cS3cr3tHookPathK4',
  };

  /**
   * Stands in for Slack, Discord, PagerDuty, the Alertmanager webhook, the traffic webhook and
   * Render, and is as unhelpful as a service can be: while `failing`, it answers 500 (Render: 401)
   * with a body that echoes the Authorization header, the URL and the body it got, secrets included.
   */
  async function startEchoServices() {
    const received: string[] = [];
    const state = { failing: true };
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        // Secrets first: error messages keep only the start of a body.
        const echo = JSON.stringify({
          authorization: req.headers.authorization ?? null,
          url: req.url,
          body: Buffer.concat(chunks)
            .toString('utf8')
            .replace(/^.*?"routing_key":/, '"routing_key":'),
          headers: req.headers,
        });
        received.push(req.url ?? '');
        if (req.url?.startsWith('/render'))
          return void res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `unauthorized: ${echo}` }));
        if (state.failing) return void res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error handling ${echo}`);
        if (req.url?.startsWith('/discord')) return void res.writeHead(204).end();
        if (req.url?.startsWith('/pd'))
          return void res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"success","message":"Event processed","dedup_key":"k"}');
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { origin, received, state, close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
  }

  it.each(['webhook', 'render'] as const)(
    'never show in logs, events, the stream, the API, metrics or the database (%s traffic, receivers failing then delivering)',
    async (traffic) => {
      const echo = await startEchoServices();
      const dataDir = tempDir('greenlight-secrets-');
      const env: Record<string, string> = {
        PATH: process.env.PATH!,
        ADMIN_TOKEN: SECRETS.ADMIN_TOKEN,
        ROLLBACK_TOKEN: SECRETS.ROLLBACK_TOKEN,
        STREAM_TOKEN: SECRETS.STREAM_TOKEN,
        API_TOKEN: SECRETS.API_TOKEN,
        BLUE_URL: blue.url.replace('http://', `http://ops:${SECRETS.blueUrlPassword}@`),
        GREEN_URL: green.url.replace('http://', `http://ops:${SECRETS.greenUrlPassword}@`),
        SLACK_WEBHOOK_URL: `http://${echo.origin}/slack/services/T0123ABCD/B0123ABCD/${SECRETS.slackPath}`,
        DISCORD_WEBHOOK_URL: `http://${echo.origin}/discord/api/webhooks/112233445566778899/${SECRETS.discordPath}`,
        PAGERDUTY_ROUTING_KEY: SECRETS.PAGERDUTY_ROUTING_KEY,
        PAGERDUTY_URL: `http://${echo.origin}/pd/v2/enqueue`,
        ALERT_WEBHOOK_URL: `http://alertmanager:${SECRETS.alertUrlPassword}@${echo.origin}/am/hook?token=${SECRETS.alertQueryToken}`,
        TRAFFIC_WEBHOOK_URL: `http://switch:${SECRETS.trafficUrlPassword}@${echo.origin}/traffic/${SECRETS.trafficPath}`,
        RENDER_API_KEY: SECRETS.RENDER_API_KEY,
      };
      const trafficBlock =
        traffic === 'webhook'
          ? 'traffic: { type: webhook, url: "${TRAFFIC_WEBHOOK_URL}", retries: 0 }'
          : `traffic: { type: render, apiKey: "\${RENDER_API_KEY}", services: { blue: srv-blue1, green: srv-green1 }, domain: app.example.com, baseUrl: "http://${echo.origin}/render", retries: 0, verifyTimeout: 0s }`;
      const text = pairConfig('${BLUE_URL}', '${GREEN_URL}', {
        extra: `api: { adminToken: "\${ADMIN_TOKEN}", rollbackToken: "\${ROLLBACK_TOKEN}", streamToken: "\${STREAM_TOKEN}" }
${trafficBlock}
alerts:
  receivers:
    - { type: slack, url: "\${SLACK_WEBHOOK_URL}", retries: 1 }
    - { type: discord, url: "\${DISCORD_WEBHOOK_URL}", retries: 1 }
    - { type: pagerduty, routingKey: "\${PAGERDUTY_ROUTING_KEY}", url: "\${PAGERDUTY_URL}", retries: 1, severities: [warning, critical] }
    - { type: webhook, name: alertmanager, url: "\${ALERT_WEBHOOK_URL}", retries: 1 }
actions:
  rollback: { type: rollback }
  safe-mode: { type: flags }
  page: { type: alert }
rules:
  - name: universe-failing
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    keepFiringFor: 300ms
    actions: [rollback, safe-mode, page]
`,
      })
        .replace(/^dataDir: .*$/m, `dataDir: ${dataDir}`)
        .replace('    path: /api/health\n', '    path: /api/health\n    headers:\n      authorization: Bearer ${API_TOKEN}\n');
      const child = spawn(process.execPath, [BIN, 'run', '--config', writeTempFile('secret.yaml', text)], { cwd: ROOT, env });
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const answers: string[] = [];
      const streamed: string[] = [];
      try {
        await waitUntil(() => output.includes('agent.started'), 'the agent to start', 15_000);
        const port = listeningPort(output)!;
        const base = `http://127.0.0.1:${port}`;
        await waitUntil(async () => (await fetch(`${base}/readyz`)).status === 200, 'the first probe round');
        const stream = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?since=0`, { headers: { authorization: `Bearer ${SECRETS.STREAM_TOKEN}` } });
        stream.on('message', (data) => streamed.push(String(data)));
        await new Promise((resolve, reject) => (stream.once('open', resolve), stream.once('error', reject)));
        const types = () => streamed.map((message) => (JSON.parse(message) as { type: string }).type);

        // The incident: receivers fail (echoing what they got), the rollback fails (render) or not.
        blue.setFaults({ emptyUniverse: true });
        await waitUntil(() => types().filter((t) => t === 'alert.failed').length >= 4, 'every receiver to fail', 20_000);
        await waitUntil(() => types().includes('action.failed'), 'the rollback to fail', 20_000);
        // Then they recover, and the resolved notices are delivered.
        echo.state.failing = false;
        blue.resetFaults();
        await waitUntil(() => types().filter((t) => t === 'alert.sent').length >= 4, 'every receiver to deliver', 20_000);

        // Bad tokens, wrong roles, near misses and the stream without its token.
        const call = async (method: string, path: string, token: string | undefined, body?: unknown) => {
          const response = await fetch(`${base}${path}`, {
            method,
            headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          const answer = await response.text();
          answers.push(answer);
          return response.status;
        };
        expect(await call('POST', '/api/v1/rollback', `${SECRETS.ROLLBACK_TOKEN}x`, { reason: 'x' })).toBe(401);
        expect(await call('POST', '/api/v1/rollback', SECRETS.ROLLBACK_TOKEN.slice(0, -1), { reason: 'x' })).toBe(401);
        expect(await call('PUT', '/api/v1/flags', SECRETS.ROLLBACK_TOKEN, { set: { READ_ONLY_MODE: true }, reason: 'x' })).toBe(403);
        expect(await call('PUT', '/api/v1/flags', SECRETS.STREAM_TOKEN, { set: { READ_ONLY_MODE: true }, reason: 'x' })).toBe(401);
        expect(await call('PUT', '/api/v1/flags', SECRETS.ADMIN_TOKEN, { set: { ALPHASTACK_PROTECTION: false }, reason: `set by ${'someone'}` })).toBe(409);
        expect(await call('PUT', '/api/v1/flags', SECRETS.ADMIN_TOKEN, { set: { NO_SUCH_FLAG: true }, reason: 'x' })).toBe(400);
        expect(await call('POST', '/api/v1/flags/emergency-rollback', SECRETS.ADMIN_TOKEN.toUpperCase(), {})).toBe(401);
        const unauthorized = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?token=${SECRETS.STREAM_TOKEN}x`);
        answers.push(
          await new Promise<string>((resolve) =>
            unauthorized.once('unexpected-response', (_req, res) => {
              let body = '';
              res.on('data', (c) => (body += c));
              res.on('end', () => resolve(`${res.statusCode} ${body}`));
            }),
          ),
        );
        expect(answers.at(-1)).toMatch(/^401 /);

        for (const path of ['/api/v1/state', '/metrics', '/api/v1/flags', '/readyz']) answers.push(await (await fetch(`${base}${path}`)).text());
        for (let since = 0; ;) {
          // api.streamToken covers the history as well as the stream.
          const page = (await (
            await fetch(`${base}/api/v1/events?since=${since}&limit=1000`, { headers: { authorization: `Bearer ${SECRETS.STREAM_TOKEN}` } })
          ).json()) as { events: unknown[]; next: number };
          answers.push(JSON.stringify(page));
          if (page.events.length < 1_000) break;
          since = page.next;
        }
        stream.close();
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('close', resolve)); // the whole log read, not just the exit

        // The services did get the secrets (so they were in play), and the echoes were noticed.
        expect(echo.received.some((url) => url.includes(SECRETS.slackPath))).toBe(true);
        expect(types()).toEqual(expect.arrayContaining(['rule.firing', 'action.failed', 'alert.failed', 'alert.sent', 'flag.changed', 'flag.rejected']));
        const database = ['greenlight.db', 'greenlight.db-wal']
          .map((name) => (existsSync(join(dataDir, name)) ? readFileSync(join(dataDir, name)).toString('latin1') : ''))
          .join('\n');
        expect(database).toContain('universe-failing');
        const places = { 'the log': output, 'the stream': streamed.join('\n'), 'API answers': answers.join('\n'), 'the database': database };
        const basic = { blue: ['ops', SECRETS.blueUrlPassword], green: ['ops', SECRETS.greenUrlPassword] } as const;
        expect(findLeaks(SECRETS, places, Object.values(basic))).toEqual([]);
        expect(answers.join('\n')).toContain('redacted@127.0.0.1');
      } finally {
        blue.resetFaults();
        child.kill('SIGKILL');
        await echo.close();
      }
    },
    60_000,
  );

  /**
   * Probe targets that answer with what they were sent: the Authorization header (URL
   * credentials as Basic, a Bearer token), the x-api-key and x-customer headers and the request
   * target with its query, in JSON values the checks quote, in response headers, and in error
   * pages that are not JSON; the secret sits where an 80-character cut would halve it.
   */
  async function startEchoTarget() {
    const server = createServer((req, res) => {
      const auth = req.headers.authorization ?? '';
      const key = String(req.headers['x-api-key'] ?? '');
      const customer = String(req.headers['x-customer'] ?? '');
      const everything = `${auth} ${key} ${customer} ${req.url}`;
      const path = new URL(req.url ?? '/', 'http://target').pathname;
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      if (path === '/api/health') return void json(200, { status: `${'x'.repeat(64)} ${auth}`, database: { connected: true }, sent: everything });
      if (path === '/api/alphastack/universe')
        return void json(200, { universe: [{ symbol: key }], key: `you sent ${key} and ${customer}` }, { 'x-echo': key, 'x-echo-auth': auth });
      if (path === '/api/discoveries') return void res.writeHead(502, { 'content-type': 'text/html' }).end(`${key} rejected: ${everything}`);
      json(200, { url: req.url, echo: everything });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    };
  }

  it('probe targets that echo headers and URL credentials never put them anywhere, also after a reload', async () => {
    const ECHOED = {
      blueUrlPassword: 'blue-echo-pw-5d1c8e2a9f',
      greenUrlPassword: 'green-echo-pw-7b3e0a6d4c',
      API_KEY: 'apikey-echoed-91c4e7a2b5d8',
      API_TOKEN: 'bearer-echoed-3f6a9d2c8e1b',
      CUSTOMER_CODE: 'cust-echoed-8e2b5f1a7c',
      QUERY_KEY: 'query-echoed-4a7d1e9c3b',
      ADMIN_TOKEN: 'adm-echoed-6c9f2b5e8a1d4',
      ROTATED_KEY: 'rotated-literal-2d5a8c1f4e7b',
      CUSTOMER_CODE_2: 'cust-after-reload-9e3c6a2f5b',
    };
    const target = await startEchoTarget();
    const dataDir = tempDir('greenlight-echo-');
    const env: Record<string, string> = {
      PATH: process.env.PATH!,
      BLUE_URL: target.url.replace('http://', `http://ops:${ECHOED.blueUrlPassword}@`),
      GREEN_URL: target.url.replace('http://', `http://ops:${ECHOED.greenUrlPassword}@`),
      API_KEY: ECHOED.API_KEY,
      API_TOKEN: ECHOED.API_TOKEN,
      CUSTOMER_CODE: ECHOED.CUSTOMER_CODE,
      CUSTOMER_CODE_2: ECHOED.CUSTOMER_CODE_2,
      QUERY_KEY: ECHOED.QUERY_KEY,
      ADMIN_TOKEN: ECHOED.ADMIN_TOKEN,
    };
    const config = (universeHeaders: string) => `listen: 127.0.0.1:0
dataDir: ${dataDir}
log: { level: debug }
environments:
  blue: { url: "\${BLUE_URL}" }
  green: { url: "\${GREEN_URL}", headers: { x-customer: "\${CUSTOMER_CODE}" } }
probeDefaults: { every: 200ms, timeout: 1s, jitter: 0 }
api: { adminToken: "\${ADMIN_TOKEN}" }
probes:
  - name: health
    path: /api/health
    expect: { json: [ { path: $.status, in: [healthy] } ] }
  - name: universe
    path: /api/alphastack/universe
    headers: ${universeHeaders}
    expect:
      headers: [ { name: x-echo, equals: nothing }, { name: x-echo-auth, matches: "^$" } ]
      json: [ { path: $.key, equals: x }, { path: $.universe, length: 0 } ]
  - name: discoveries
    path: /api/discoveries
    headers: { authorization: "Bearer \${API_TOKEN}", x-api-key: "\${API_KEY}" }
    expect: { json: [ { path: $.discoveries, exists: true } ] }
  - name: positions
    path: "/api/portfolio/positions?api_key=\${QUERY_KEY}"
    expect: { json: [ { path: $.url, equals: "/" }, { path: $.echo, equals: "" } ] }
`;
    const file = writeTempFile('echo.yaml', config('{ x-api-key: "${API_KEY}" }'));
    const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: ROOT, env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const answers: string[] = [];
    const streamed: string[] = [];
    try {
      await waitUntil(() => /listening on 127\.0\.0\.1:\d+/.test(output), 'the agent to listen', 15_000);
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(output)![1]);
      const base = `http://127.0.0.1:${port}`;
      const stream = new WebSocket(`ws://127.0.0.1:${port}/api/v1/stream?since=0`);
      stream.on('message', (data) => streamed.push(String(data)));
      await new Promise((resolve, reject) => (stream.once('open', resolve), stream.once('error', reject)));
      const downs = () => streamed.map((m) => JSON.parse(m) as { type: string; probe: string; env: string }).filter((e) => e.type === 'probe.down');
      await waitUntil(() => downs().length >= 8, 'every probe on both environments to go down', 20_000);

      // An operator pastes a secret into a reason: it is redacted as it comes in.
      const put = await fetch(`${base}/api/v1/flags`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ECHOED.ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ set: { READ_ONLY_MODE: true }, reason: `rotating ${ECHOED.API_KEY} today` }),
      });
      answers.push(await put.text());
      expect(put.status).toBe(200);

      // A reload brings a literal key (named like a secret) and a new variable into a header.
      writeFileSync(file, config(`{ x-api-key: ${ECHOED.ROTATED_KEY}, x-customer: "\${CUSTOMER_CODE_2}" }`));
      child.kill('SIGHUP');
      await waitUntil(() => streamed.some((m) => m.includes('"config.reloaded"')), 'the reload', 15_000);
      // The reloaded series start afresh (down before and after: no second probe.down); two failures each, with the new header.
      await waitUntil(
        async () => {
          const { series } = (await (await fetch(`${base}/api/v1/state`)).json()) as { series: { probe: string; consecutiveFailures: number }[] };
          return series.filter((s) => s.probe === 'universe').every((s) => s.consecutiveFailures >= 2);
        },
        'the reloaded universe probes to fail with the new header',
        20_000,
      );

      for (const path of ['/api/v1/state', '/api/v1/overview', '/metrics', '/api/v1/flags']) answers.push(await (await fetch(`${base}${path}`)).text());
      answers.push(await (await fetch(`${base}/api/v1/events?since=0&limit=1000`)).text());
      stream.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve)); // the whole log read, not just the exit

      // The secrets were in play: the checks quoted what the target sent, redacted.
      const state = answers.find((a) => a.includes('"series"'))!;
      expect(state).toContain('[redacted]');
      expect(output).toContain('rotating [redacted] today');
      const database = ['greenlight.db', 'greenlight.db-wal']
        .map((name) => (existsSync(join(dataDir, name)) ? readFileSync(join(dataDir, name)).toString('latin1') : ''))
        .join('\n');
      expect(database).toContain('probe.down');
      const places = { 'the log': output, 'the stream': streamed.join('\n'), 'API answers': answers.join('\n'), 'the database': database };
      expect(
        findLeaks(ECHOED, places, [
          ['ops', ECHOED.blueUrlPassword],
          ['ops', ECHOED.greenUrlPassword],
        ]),
      ).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await target.close();
    }
  }, 60_000);
});

/**
 * Every place a secret shows, whole or in part: any 10 characters of it as is, URL-encoded or
 * JSON-escaped, the start of its base64, and any 10 characters of the password's part of a
 * Basic credential (`basic`: user and password pairs sent from URL credentials).
 */
function findLeaks(
  secrets: Readonly<Record<string, string>>,
  places: Readonly<Record<string, string>>,
  basic: readonly (readonly [string, string])[] = [],
): string[] {
  const leaks = new Set<string>();
  const windows = (text: string, from = 0) => Array.from({ length: Math.max(0, text.length - 9 - from) }, (_, i) => text.slice(from + i, from + i + 10));
  const look = (name: string, form: string) => {
    for (const [place, text] of Object.entries(places)) if (text.includes(form)) leaks.add(`${name} (${form}) in ${place}`);
  };
  for (const [name, secret] of Object.entries(secrets)) {
    for (const form of new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)])) for (const part of windows(form)) look(name, part);
    look(name, Buffer.from(secret).toString('base64').slice(0, 16));
  }
  for (const [user, password] of basic) {
    // From the first base64 group that holds only password bytes on.
    const encoded = Buffer.from(`${user}:${password}`).toString('base64');
    for (const part of windows(encoded, Math.ceil((user.length + 1) / 3) * 4)) look(`Basic ${user}:…`, part);
  }
  return [...leaks];
}

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

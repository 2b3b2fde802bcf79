import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand, tailLines } from '../../../agent/plugins/run-command.js';
import { tempDir } from '../../helpers/tools.js';

/** An executable shell script in a fresh temp dir. */
function script(body: string): { path: string; dir: string } {
  const dir = tempDir('greenlight-run-');
  const path = join(dir, 'script.sh');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, dir };
}

/** Whether `pid` is a live process (a zombie waiting for a reaper counts as gone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

describe('runCommand', () => {
  it('runs argv without a shell and reports exit code, stdout and stderr', async () => {
    const result = await runCommand(['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 5_000 });
    expect(result).toMatchObject({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false, aborted: false });
    const literal = await runCommand(['/bin/echo', '$HOME; rm -rf /'], { timeoutMs: 5_000 });
    expect(literal.stdout).toBe('$HOME; rm -rf /\n');
  });

  it('passes the given variables, and the parent environment only when asked', async () => {
    const inherited = await runCommand(['/usr/bin/env'], { env: { GREENLIGHT_TO: 'green' }, timeoutMs: 5_000 });
    expect(inherited.stdout).toContain('GREENLIGHT_TO=green\n');
    expect(inherited.stdout).toContain('PATH=');
    const isolated = await runCommand(['/usr/bin/env'], { env: { GREENLIGHT_TO: 'green' }, inheritEnv: false, timeoutMs: 5_000 });
    expect(isolated.stdout).toBe('GREENLIGHT_TO=green\n');
  });

  it('kills the whole process group at the deadline, grandchildren included', async () => {
    const { path, dir } = script(`sleep 30 &\necho $! > "${'$'}1/child.pid"\necho $$ > "${'$'}1/shell.pid"\nwait`);
    const result = await runCommand([path, dir], { timeoutMs: 300, killGraceMs: 500 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGTERM');
    const shell = Number(readFileSync(join(dir, 'shell.pid'), 'utf8'));
    const child = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    expect(await waitUntil(() => !isAlive(shell) && !isAlive(child))).toBe(true);
  });

  it('escalates to SIGKILL when the group ignores SIGTERM', async () => {
    const { path, dir } = script(`trap '' TERM\necho $$ > "${'$'}1/shell.pid"\nwhile :; do sleep 0.05; done`);
    const result = await runCommand([path, dir], { timeoutMs: 200, killGraceMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
    expect(await waitUntil(() => !isAlive(Number(readFileSync(join(dir, 'shell.pid'), 'utf8'))))).toBe(true);
  });

  it('ends the run when the signal aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const result = await runCommand(['/bin/sleep', '30'], { timeoutMs: 30_000, signal: controller.signal });
    expect(result).toMatchObject({ aborted: true, timedOut: false, code: null });
    // Ended by the abort, not by sleep's own 30 s (a bound no machine's slowness comes near).
    expect(result.durationMs).toBeLessThan(30_000);
  });

  it('reports a program that cannot be started instead of throwing', async () => {
    const result = await runCommand(['/nonexistent/switch-traffic'], { timeoutMs: 5_000 });
    expect(result.code).toBeNull();
    expect(result.spawnError).toMatch(/ENOENT/);
  });

  it('keeps only the last bytes of a large output', async () => {
    const result = await runCommand(['/bin/sh', '-c', 'seq 1 100000'], { timeoutMs: 5_000, maxOutputBytes: 1_000 });
    expect(result.stdout.length).toBeLessThanOrEqual(1_000);
    expect(result.stdout.endsWith('99999\n100000\n')).toBe(true);
  });

  it('does not wait for a background grandchild that keeps stdout open', async () => {
    const { path, dir } = script(`sleep 600 &\necho $! > "${'$'}1/child.pid"\nexit 0`);
    const result = await runCommand([path, dir], { timeoutMs: 600_000 });
    expect(result.code).toBe(0);
    expect(result.timedOut).toBe(false);
    // It answered while the grandchild (holding stdout) still runs: it did not wait for it.
    expect(isAlive(Number(readFileSync(join(dir, 'child.pid'), 'utf8')))).toBe(true);
    process.kill(Number(readFileSync(join(dir, 'child.pid'), 'utf8')), 'SIGKILL');
  });
});

describe('tailLines', () => {
  it('keeps short text whole and cuts long text at a line start', () => {
    expect(tailLines('one\ntwo\n')).toBe('one\ntwo');
    const long = Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n');
    const tail = tailLines(long, 100);
    expect(tail.startsWith('…line ')).toBe(true);
    expect(tail.endsWith('line 499')).toBe(true);
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(104);
  });
});

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, type PluginDeps } from '../../../agent/plugins/plugin.js';
import { CommandTrafficSchema, commandTraffic } from '../../../agent/traffic/command-traffic.js';
import { TrafficError, type SwitchRequest } from '../../../agent/traffic/traffic-adapter.js';
import { tempDir } from '../../helpers/tools.js';
import { Redactor } from '../../../config/redactor.js';

const dispatcher = new Agent();
afterAll(() => dispatcher.close());
const deps: PluginDeps = { logger: pino({ level: 'silent' }), dispatcher, now: () => Date.parse('2025-03-03T14:30:00Z'), sleep, redactor: new Redactor() };

const request: SwitchRequest = {
  from: 'blue',
  to: 'green',
  reason: 'rule live-error-ratio-critical: error ratio 0.42 > 0.1',
  rule: 'live-error-ratio-critical',
  incident: 'inc-20250303-1430-7f3a',
  fencingToken: 7,
};

/** An executable shell script in a fresh temp dir; `$1` in the body is that dir. */
function script(body: string): { path: string; dir: string } {
  const dir = tempDir('greenlight-command-');
  const path = join(dir, 'switch.sh');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, dir };
}

function adapter(block: Record<string, unknown>) {
  return commandTraffic.create(CommandTrafficSchema.parse({ type: 'command', ...block }), deps);
}

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

describe('command traffic adapter', () => {
  it('runs the program with the switch in GREENLIGHT_* variables; exit 0 is switched', async () => {
    const { path, dir } = script(`env | grep '^GREENLIGHT_' | sort > "$1/env.txt"\necho "upstream now green"`);
    const outcome = await adapter({ command: [path, dir] }).switchTo(request, new AbortController().signal);
    expect(readFileSync(join(dir, 'env.txt'), 'utf8')).toBe(
      [
        'GREENLIGHT_FENCING_TOKEN=7',
        'GREENLIGHT_FROM=blue',
        'GREENLIGHT_INCIDENT=inc-20250303-1430-7f3a',
        'GREENLIGHT_REASON=rule live-error-ratio-critical: error ratio 0.42 > 0.1',
        'GREENLIGHT_RULE=live-error-ratio-critical',
        'GREENLIGHT_TO=green',
        '',
      ].join('\n'),
    );
    expect(outcome.detail).toMatch(/^traffic command switch\.sh exited 0 after \d+(\.\d+)?m?s: upstream now green$/);
    expect(outcome.data).toMatchObject({ exitCode: 0 });
  });

  it("gives an empty GREENLIGHT_RULE for a manual switch, and the parent's PATH only with inheritEnv", async () => {
    const { path, dir } = script(`echo "rule=[$GREENLIGHT_RULE] path=[$PATH]" > "$1/out.txt"`);
    await adapter({ command: ['/bin/sh', path, dir] }).switchTo({ ...request, rule: null }, new AbortController().signal);
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).toBe(`rule=[] path=[${process.env.PATH}]\n`);
    await adapter({ command: ['/bin/sh', path, dir], inheritEnv: false }).switchTo(request, new AbortController().signal);
    // dash sets a default PATH of its own when none is given.
    expect(readFileSync(join(dir, 'out.txt'), 'utf8')).not.toContain(process.env.PATH!);
  });

  it('throws TrafficError with the exit code and the tail of stderr on a non-zero exit', async () => {
    const { path } = script(`i=0\nwhile [ $i -lt 400 ]; do echo "noise line $i" >&2; i=$((i+1)); done\necho "lb api: 403 forbidden" >&2\nexit 7`);
    const error = await adapter({ command: [path] })
      .switchTo(request, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    const message = (error as TrafficError).message;
    expect(message).toMatch(/^traffic command switch\.sh exited with code 7 after /);
    expect(message).toMatch(/lb api: 403 forbidden$/);
    expect(message).not.toContain('noise line 0\n');
    expect(message.length).toBeLessThan(2_300);
  });

  it('kills the program and what it started at the timeout, and says so', async () => {
    const { path, dir } = script(`echo $$ > "$1/script.pid"\nsleep 30 &\necho $! > "$1/sleep.pid"\nwait`);
    const error = await adapter({ command: [path, dir], timeout: '300ms' })
      .switchTo(request, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    expect((error as Error).message).toMatch(/did not finish within 300ms and was killed/);
    for (const file of ['script.pid', 'sleep.pid']) {
      const pid = Number(readFileSync(join(dir, file), 'utf8'));
      await expect.poll(() => isAlive(pid), { timeout: 3_000 }).toBe(false);
      if (file === 'script.pid') expect(() => process.kill(pid, 0)).toThrow();
    }
  });

  it('says when the program cannot be started', async () => {
    const error = await adapter({ command: ['/nonexistent/switch-traffic'] })
      .switchTo(request, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrafficError);
    expect((error as Error).message).toMatch(/could not be started \(ENOENT/);
  });

  it.each([
    [{ command: [] }, 'needs the program to run'],
    [{ command: ['x'], timeout: 'soon' }, 'is not a duration'],
    [{ command: ['x'], shell: true }, 'Unrecognized key'],
  ])('refuses the config %j', (block, message) => {
    const result = CommandTrafficSchema.safeParse({ type: 'command', ...block });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });
});

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent as UndiciAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import type { ActionContext, ActionDeps, Controller } from '../../../agent/actions/action.js';
import { commandAction } from '../../../agent/actions/command-action.js';
import { sleep } from '../../../agent/plugins/plugin.js';
import { tempDir } from '../../helpers/tools.js';
import { Redactor } from '../../../config/redactor.js';

const controller = { activeEnvironment: () => 'green' } as unknown as Controller;

function deps(dryRun = false): ActionDeps {
  return {
    logger: pino({ level: 'silent' }),
    dispatcher: new UndiciAgent(),
    now: Date.now,
    sleep,
    redactor: new Redactor(),
    dryRun,
    controller,
    name: 'db-rollback',
  };
}

const context: ActionContext = {
  rule: { name: 'live-error-ratio-critical' } as ActionContext['rule'],
  incident: 'live-error-ratio-critical#2',
  env: 'blue',
  severity: 'critical',
  message: 'error ratio 42% on blue',
  figures: null,
  actor: 'rule:live-error-ratio-critical',
  startedAt: Date.now(),
};

function script(body: string): { path: string; dir: string } {
  const dir = tempDir();
  const path = join(dir, 'hook.sh');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, dir };
}

describe('the command action', () => {
  it('runs the hook with the incident in its environment', async () => {
    const { path, dir } = script(`env | grep ^GREENLIGHT_ | sort > "${'$'}(dirname "$0")/env.txt"`);
    const action = commandAction.create(commandAction.schema.parse({ type: 'command', command: [path] }), deps());
    const outcome = await action.fire(context, new AbortController().signal);
    expect(outcome).toMatchObject({ outcome: 'succeeded' });
    const lines = readFileSync(join(dir, 'env.txt'), 'utf8').trim().split('\n');
    expect(lines).toEqual([
      'GREENLIGHT_ENV=blue',
      'GREENLIGHT_INCIDENT=live-error-ratio-critical#2',
      'GREENLIGHT_LIVE=green',
      'GREENLIGHT_MESSAGE=error ratio 42% on blue',
      'GREENLIGHT_RULE=live-error-ratio-critical',
      'GREENLIGHT_SEVERITY=critical',
      'GREENLIGHT_STATUS=firing',
    ]);
  });

  it('fails with the exit code and the end of stderr', async () => {
    const { path } = script('echo "cannot reach the database" >&2; exit 3');
    const action = commandAction.create(commandAction.schema.parse({ type: 'command', command: [path] }), deps());
    const outcome = await action.fire(context, new AbortController().signal);
    expect(outcome).toMatchObject({ outcome: 'failed', error: `${path} exited with 3: cannot reach the database` });
  });

  it('kills a hook that outlives its timeout', async () => {
    const { path } = script('sleep 30');
    const action = commandAction.create(commandAction.schema.parse({ type: 'command', command: [path], timeout: '300ms' }), deps());
    const outcome = await action.fire(context, new AbortController().signal);
    // The outcome proves the kill: a hook left to run would end after 30 s with a different one.
    expect(outcome).toMatchObject({ outcome: 'failed', error: `${path} did not finish within 300ms and was killed` });
  });

  it('says a missing program cannot start', async () => {
    const action = commandAction.create(commandAction.schema.parse({ type: 'command', command: ['/nonexistent/hook'] }), deps());
    const outcome = await action.fire(context, new AbortController().signal);
    expect(outcome.outcome).toBe('failed');
    expect((outcome as { error: string }).error).toMatch(/^cannot start \/nonexistent\/hook: .*ENOENT/);
  });

  it('runs nothing in a dry run', async () => {
    const { path, dir } = script(`touch "${'$'}(dirname "$0")/ran"`);
    const action = commandAction.create(commandAction.schema.parse({ type: 'command', command: [path] }), deps(true));
    const outcome = await action.fire(context, new AbortController().signal);
    expect(outcome).toMatchObject({ outcome: 'skipped', data: { wouldFire: true } });
    expect(() => readFileSync(join(dir, 'ran'))).toThrow();
  });
});

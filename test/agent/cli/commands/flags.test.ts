import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FLAGS_OPTIONS } from '../../../../agent/cli/command-usage.js';
import { flagsCommand, parseAssignments } from '../../../../agent/cli/commands/flags.js';
import type { EventInput } from '../../../../agent/events/events.js';
import { flagRoutes } from '../../../../agent/flags/flag-routes.js';
import { FlagStore } from '../../../../agent/flags/flag-store.js';
import { startHttpServer, type HttpServer } from '../../../../agent/http/http-server.js';
import { UsageError } from '../../../../config/errors.js';

const ADMIN = 'admin-token-123';
const ROLLBACK = 'rollback-token-123';

let store: FlagStore;
let events: EventInput[];
let server: HttpServer;
let url: string;

beforeEach(async () => {
  events = [];
  store = new FlagStore({ environments: ['blue', 'green'], readOnlyOnEmergency: false, now: Date.now, publish: (input) => events.push(input) });
  server = await startHttpServer({
    listen: { host: '127.0.0.1', port: 0 },
    routes: flagRoutes(store, { activeEnvironment: () => 'blue' }),
    tokens: () => ({ admin: ADMIN, rollback: ROLLBACK }),
    logger: pino({ level: 'silent' }),
  });
  url = `http://127.0.0.1:${server.address.port}`;
});
afterEach(() => server.close());

/** `greenlight flags …` in process, parsed the way the CLI parses it, against the test's agent. */
async function flags(args: string[], env: Record<string, string> = { ADMIN_TOKEN: ADMIN, USER: 'ops' }) {
  const out: string[] = [];
  const err: string[] = [];
  const parsed = parseArgs({
    args: [...args, ...(args.includes('--url') ? [] : ['--url', url])],
    options: FLAGS_OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const code = await flagsCommand(parsed, { out: (text) => out.push(text), err: (text) => err.push(text), env });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('greenlight flags list', () => {
  it('prints a flag × environment table with the live one and the locks marked', async () => {
    store.set(['green'], { READ_ONLY_MODE: true }, { actor: 'test', reason: 'test' });
    const run = await flags(['list']);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^FLAG\s+BLUE \(live\)\s+GREEN$/);
    expect(lines).toHaveLength(10);
    expect(lines[1]).toMatch(/^ALPHASTACK_PROTECTION 🔒\s+on\s+on$/);
    expect(lines[2]).toMatch(/^READ_ONLY_MODE\s+off\s+on$/);
  });

  it('prints JSON with --json and one column with --env', async () => {
    const json = await flags(['list', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ activeEnvironment: 'blue', locked: ['ALPHASTACK_PROTECTION'] });
    const green = await flags(['list', '--env', 'green']);
    expect(green.stdout.split('\n')[0]).toMatch(/^FLAG\s+GREEN$/);
  });

  it('needs no token', async () => {
    expect((await flags(['list'], {})).code).toBe(0);
  });
});

describe('greenlight flags set', () => {
  it('changes every environment and says what changed', async () => {
    const run = await flags(['set', 'READ_ONLY_MODE=on', 'V3_API_CACHING=0', '--reason', 'maintenance']);
    expect(run).toEqual({
      code: 0,
      stdout: ['blue: READ_ONLY_MODE off → on', 'blue: V3_API_CACHING on → off', 'green: READ_ONLY_MODE off → on', 'green: V3_API_CACHING on → off'].join('\n'),
      stderr: '',
    });
    expect(events).toEqual([expect.objectContaining({ type: 'flag.changed', data: expect.objectContaining({ actor: 'api:admin', reason: 'maintenance' }) })]);
  });

  it('changes one environment with --env, and says when nothing changed', async () => {
    expect((await flags(['set', 'CIRCUIT_BREAKER=true', '--env', 'green', '-r', 'x'])).stdout).toBe('green: CIRCUIT_BREAKER off → on');
    expect(store.get('blue').CIRCUIT_BREAKER).toBe(false);
    expect((await flags(['set', 'CIRCUIT_BREAKER=true', '--env', 'green', '-r', 'x'])).stdout).toBe('flags already had these values on green; nothing changed');
  });

  it('exits 1 with the agent message when the flag is locked', async () => {
    const run = await flags(['set', 'ALPHASTACK_PROTECTION=off', '--reason', 'speed']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'greenlight flags: HTTP 409: ALPHASTACK_PROTECTION is locked and can never be changed (keeps the AlphaStack discovery engine running); nothing was changed',
    );
    expect(store.get('blue').ALPHASTACK_PROTECTION).toBe(true);
    expect(events.map((event) => event.type)).toEqual(['flag.rejected']);
  });

  it('exits 1 naming an unknown flag', async () => {
    const run = await flags(['set', 'NOPE=on', '--reason', 'x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('greenlight flags: HTTP 400: NOPE is not a flag');
  });

  it.each([
    ['no token', {}, 'this needs ADMIN_TOKEN in the environment'],
    ['only the rollback token', { ROLLBACK_TOKEN: ROLLBACK }, 'this needs ADMIN_TOKEN in the environment'],
    ['a wrong token', { ADMIN_TOKEN: 'wrong-secret-token' }, 'HTTP 401: invalid token (check ADMIN_TOKEN)'],
  ])('exits 1 with %s, never printing a token', async (_name, env, message) => {
    const run = await flags(['set', 'READ_ONLY_MODE=on', '--reason', 'x'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('wrong-secret-token');
    expect(run.stderr).not.toContain(ROLLBACK);
    expect(store.version()).toBe(0);
  });
});

describe('greenlight flags emergency-rollback', () => {
  it('applies the preset to the live environment with the rollback token and a default reason', async () => {
    const run = await flags(['emergency-rollback'], { ROLLBACK_TOKEN: ROLLBACK, USER: 'ops' });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('blue: FORCE_V2_FALLBACK off → on');
    expect(store.get('blue')).toMatchObject({ FORCE_V2_FALLBACK: true, ALPHASTACK_V3_ENABLED: false, ALPHASTACK_PROTECTION: true });
    expect(store.get('green').FORCE_V2_FALLBACK).toBe(false);
    expect(events[0]).toMatchObject({ data: { actor: 'api:rollback', reason: 'emergency rollback from the CLI by ops' } });
    expect((await flags(['emergency-rollback'], { ROLLBACK_TOKEN: ROLLBACK })).stdout).toBe('blue already in emergency-rollback state; nothing changed');
  });
});

describe('greenlight flags set as the contract writes it, without --reason (regression: exit 2, nothing changed)', () => {
  it('sets the flags and records who did it from the CLI', async () => {
    const run = await flags(['set', 'READ_ONLY_MODE=on']);
    expect(run.code).toBe(0);
    expect(store.get('blue').READ_ONLY_MODE).toBe(true);
    expect(events[0]).toMatchObject({ data: { actor: 'api:admin', reason: 'set from the CLI by ops' } });
  });

  it('names the account when neither USER nor USERNAME is set (containers, cron, systemd)', async () => {
    const run = await flags(['set', 'READ_ONLY_MODE=on'], { ADMIN_TOKEN: ADMIN });
    expect(run.code).toBe(0);
    expect(events[0]).toMatchObject({ data: { reason: `set from the CLI by ${userInfo().username}` } });
  });
});

describe('usage and connection errors', () => {
  it.each([
    [[], 'say what to do: list, set K=V… or emergency-rollback'],
    [['frobnicate'], 'unknown flags subcommand "frobnicate"'],
    [['set', '--reason', 'x'], 'set needs at least one FLAG=VALUE'],
    [['set', 'READ_ONLY_MODE=maybe', '--reason', 'x'], 'READ_ONLY_MODE=maybe: the value must be true/false, on/off or 1/0'],
    [['set', 'READ_ONLY_MODE', '--reason', 'x'], '"READ_ONLY_MODE" is not FLAG=VALUE'],
    [['set', 'READ_ONLY_MODE=on', '--reason', ' '], '--reason is empty: say why, or leave it out'],
    [['list', 'extra'], 'list takes no arguments'],
    [['list', '--url', 'not a url'], '--url "not a url" is not a URL'],
  ])('%j exits 2 with a usage message and sends nothing', async (args, message) => {
    const run = await flags(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`greenlight flags: ${message}`);
    expect(run.stderr).toContain('usage: greenlight flags list|set K=V…|emergency-rollback');
    expect(store.version()).toBe(0);
  });

  it('exits 1 saying the agent is not running when the connection is refused', async () => {
    const port = await closedPort();
    const run = await flags(['list', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`greenlight flags: agent at http://127.0.0.1:${port} refused the connection: is greenlight running? (--url)`);
  });

  it('sends a prototype name as the flag it names, for the agent to refuse: never "given both on and off"', async () => {
    // Regression: the words went into a plain object, where `__proto__`, `constructor` and
    // `toString` are there already: each was refused as a flag "given both on and off".
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const run = await flags(['set', `${name}=on`, '--reason', 'probe']);
      expect(run.code, name).toBe(1);
      expect(run.stderr, name).toContain(`HTTP 400: ${name} is not a flag`);
    }
    expect(Object.keys(parseAssignments(['__proto__=off', 'hasOwnProperty=1']))).toEqual(['__proto__', 'hasOwnProperty']);
    expect(store.version()).toBe(0);
  });

  it('parses K=V words', () => {
    expect(parseAssignments(['A=on', 'B=OFF', 'C=1', 'D=0', 'E=true', 'F=False', 'A=on'])).toEqual({ A: true, B: false, C: true, D: false, E: true, F: false });
    expect(() => parseAssignments(['A=on', 'A=off'])).toThrow(new UsageError('A is given both on and off'));
  });
});

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

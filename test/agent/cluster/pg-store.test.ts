import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, PgStore } from '../../../agent/cluster/pg-store.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { waitUntil } from '../../helpers/agent-harness.js';
import { ROOT } from '../../helpers/cli.js';
import { startPgBouncer, type TestPgBouncer } from '../../helpers/pgbouncer.js';
import { usePostgres } from '../../helpers/postgres.js';
import pg from 'pg';

const postgres = usePostgres();

function store(url: string): PgStore {
  return PgStore.create(url, { application: 'test', onError: () => undefined, lockHoldMs: 500 });
}

describe('PgStore', () => {
  it('applies every migration exactly once when several agents start at once on an empty database', async () => {
    const url = await postgres.server.database();
    const stores = Array.from({ length: 4 }, () => store(url));
    const versions = await Promise.all(stores.map((s) => s.migrate()));
    expect(versions).toEqual(stores.map(() => MIGRATIONS.length));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query('SELECT version, count(*)::int AS n FROM greenlight_schema GROUP BY version ORDER BY version');
    expect(rows).toEqual(MIGRATIONS.map((_, i) => ({ version: i + 1, n: 1 })));
    await client.end();
    await Promise.all(stores.map((s) => s.close()));
  });
});

describe('the lease', () => {
  it('is renewed in one term, taken only once expired by the database clock, and each new term has a higher epoch', async () => {
    const url = await postgres.server.database();
    const s = store(url);
    await s.migrate();
    const first = await s.elect('a', 'http://a', 60_000);
    expect(first).toMatchObject({ holder: 'a', valid: true });
    expect((await s.elect('a', 'http://a', 60_000)).epoch).toBe(first.epoch);
    expect(await s.elect('b', 'http://b', 60_000)).toMatchObject({ holder: 'a', epoch: first.epoch });
    await s.release({ node: 'a', epoch: first.epoch });
    const second = await s.elect('b', 'http://b', 60_000);
    expect(second).toMatchObject({ holder: 'b', epoch: first.epoch + 1, valid: true });
    await s.close();
  });

  it('refuses an action start, a switch and a state write from a deposed leader, and lets each action start once', async () => {
    const url = await postgres.server.database();
    const s = store(url);
    await s.migrate();
    const a = await s.elect('a', 'http://a', 60_000);
    const record = {
      incident: 'r#1',
      action: 'rollback',
      type: 'rollback',
      state: 'started' as const,
      context: { rule: 'r', incident: 'r#1', env: 'blue', severity: 'critical' as const, message: 'm', actor: 'rule:r', startedAt: 1 },
      startedAt: 1,
    };
    expect(await s.claimAction({ node: 'a', epoch: a.epoch }, record, false)).toBeUndefined();
    expect(await s.claimAction({ node: 'a', epoch: a.epoch }, record, false)).toMatch(/already started/);
    await s.release({ node: 'a', epoch: a.epoch });
    const b = await s.elect('b', 'http://b', 60_000);
    const old = { node: 'a', epoch: a.epoch };
    expect(await s.claimAction(old, { ...record, incident: 'r#2' }, false)).toMatch(/fenced/);
    expect(await s.claimSwitch(old, { from: 'blue', to: 'green', incident: 'r#2', manual: false })).toMatch(/fenced/);
    expect(await s.setState(old, 'activeEnvironment', 'green')).toMatch(/fenced/);
    const term = { node: 'b', epoch: b.epoch };
    expect(await s.claimSwitch(term, { from: 'blue', to: 'green', incident: 'r#2', manual: false })).toBeUndefined();
    // A rollback's switch records when traffic left blue with the live environment, in one write.
    await s.completeSwitch(term, 'green', { blue: 1_234 });
    expect(await s.getState('activeEnvironment')).toBe('green');
    expect(await s.getState('rolledBackFrom')).toEqual({ blue: 1_234 });
    expect(await s.claimSwitch(term, { from: 'blue', to: 'green', incident: 'r#3', manual: false })).toMatch(/no longer live/);
    expect(await s.switchSent('r#2')).toBe(true);
    expect(await s.switchSent('r#3')).toBe(false);
    await s.close();
  });

  it("records the outcome of an action that only changed the leader's own state under its lease, and a switch's or a command's whoever leads (regression: a page's hand-over was recorded done while its alert record was fenced out, and never sent)", async () => {
    const url = await postgres.server.database();
    const s = store(url);
    await s.migrate();
    const a = await s.elect('a', 'http://a', 60_000);
    const context = { rule: 'r', incident: 'r#1', env: 'blue', severity: 'critical' as const, message: 'm', actor: 'rule:r', startedAt: 1 };
    const started = { incident: 'r#1', state: 'started' as const, context, startedAt: 1 };
    const page = { ...started, action: 'page', type: 'alert', effect: 'state' as const };
    const rollback = { ...started, action: 'rollback', type: 'rollback' };
    const termA = { node: 'a', epoch: a.epoch };
    expect(await s.claimAction(termA, page, false)).toBeUndefined();
    expect(await s.claimAction(termA, rollback, false)).toBeUndefined();
    // a's lease ends before it writes the outcomes; b leads.
    await s.release(termA);
    const b = await s.elect('b', 'http://b', 60_000);
    expect(await s.finishAction({ ...page, state: 'succeeded', finishedAt: 2, detail: 'handed over' }, termA)).toMatch(/fenced: a no longer holds the lease/);
    expect(await s.finishAction({ ...rollback, state: 'succeeded', finishedAt: 2, detail: 'switched' })).toBeUndefined();
    const states = async () => Object.fromEntries((await s.snapshot(10)).actions.map((record) => [record.action, record.state]));
    // The page is left for b to settle again (its takeover reconciles what is still "started"); the switch happened.
    expect(await states()).toEqual({ page: 'started', rollback: 'succeeded' });
    expect(await s.finishAction({ ...page, state: 'succeeded', finishedAt: 3, detail: 'handed over again' }, { node: 'b', epoch: b.epoch })).toBeUndefined();
    expect(await states()).toEqual({ page: 'succeeded', rollback: 'succeeded' });
    await s.close();
  });

  it("holds a rule's switch while an earlier term's switch is unconfirmed, until an operator switches", async () => {
    const url = await postgres.server.database();
    const s = store(url);
    await s.migrate();
    const a = await s.elect('a', 'http://a', 60_000);
    const termA = { node: 'a', epoch: a.epoch };
    expect(await s.claimSwitch(termA, { from: 'blue', to: 'green', incident: 'r#1', manual: false })).toBeUndefined();
    // a dies between the adapter and the record of the new live environment.
    await s.release(termA);
    const b = await s.elect('b', 'http://b', 60_000);
    const termB = { node: 'b', epoch: b.epoch };
    expect(await s.claimSwitch(termB, { from: 'blue', to: 'green', incident: 'r#2', manual: false })).toMatch(/never confirmed/);
    expect(await s.claimSwitch(termB, { from: 'blue', to: 'green', incident: 'manual-1', manual: true })).toBeUndefined();
    await s.abandonSwitch(termB, 'manual-1');
    expect(await s.claimSwitch(termB, { from: 'blue', to: 'green', incident: 'r#2', manual: false })).toBeUndefined();
    await s.close();
  });
});

describe('the event history', () => {
  it('numbers the events of several writers once each, in commit order', async () => {
    const url = await postgres.server.database();
    const writers = [store(url), store(url), store(url)];
    await writers[0]!.migrate();
    const event = (n: number) => probeUp(`m${n}`, { n });
    await Promise.all(writers.map((w, i) => Promise.all(Array.from({ length: 20 }, (_, n) => w.appendEvents(`node${i}`, [event(n), event(n + 100)])))));
    const events = await writers[0]!.eventsAfter(0, 1_000);
    expect(events).toHaveLength(120);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(120);
    expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    expect(events[0]!.data).toHaveProperty('node');
    await Promise.all(writers.map((w) => w.close()));
  });
});

const PG_STORE = new URL('../../../dist/agent/cluster/pg-store.js', import.meta.url).href;

/**
 * The child: an agent's store that stops itself (SIGSTOP, as a paused VM or a debugger would)
 * right after the query whose text holds `mark` answered, inside that query's transaction. Once
 * continued it says how the interrupted call ended.
 */
const PAUSING_AGENT = `
import pg from 'pg';
import { PgStore } from ${JSON.stringify(PG_STORE)};
const [url, step] = process.argv.slice(1);
const marks = { lease: 'FOR SHARE', events: 'pg_advisory_xact_lock', migrate: 'greenlight_schema (version' };
let armed = false;
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, ...rest) {
  const result = query.call(this, config, ...rest);
  const text = typeof config === 'string' ? config : config?.text ?? '';
  if (!armed || !text.includes(marks[step]) || !(result instanceof Promise)) return result;
  armed = false;
  return result.then((answer) => {
    process.stdout.write('paused\\n');
    process.kill(process.pid, 'SIGSTOP');
    return answer;
  });
};
const store = PgStore.create(url, { application: 'paused', onError: () => undefined, lockHoldMs: 500 });
const say = (outcome, detail) => process.stdout.write(JSON.stringify({ outcome, detail }) + '\\n');
const event = { id: 0, time: new Date().toISOString(), type: 'probe.up', severity: 'info', env: null, probe: null, rule: null, message: 'from the paused agent', data: {} };
try {
  armed = step === 'migrate';
  await store.migrate();
  const lease = await store.elect('paused', 'http://paused', 1_000);
  armed = step !== 'migrate';
  if (step === 'lease') say('done', await store.setState({ node: 'paused', epoch: lease.epoch }, 'fromPaused', true));
  else if (step === 'events') say('done', await store.appendEvents('paused', [event]));
  else say('done');
} catch (error) {
  say('failed', error.message);
}
await store.close().catch(() => undefined);
`;

describe('an agent paused inside a transaction (SIGSTOP)', () => {
  let child: ChildProcess | undefined;
  let bouncer: TestPgBouncer | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
    bouncer?.close();
    bouncer = undefined;
  });

  /** Start the child at `step`; resolves once it has stopped itself inside the transaction. */
  async function pausedAgent(url: string, step: 'lease' | 'events' | 'migrate'): Promise<{ outcome: () => Promise<{ outcome: string; detail?: unknown }> }> {
    const started = spawn(process.execPath, ['--input-type=module', '-e', PAUSING_AGENT, url, step], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let out = '';
    let err = '';
    started.stdout.on('data', (chunk: Buffer) => (out += String(chunk)));
    started.stderr.on('data', (chunk: Buffer) => (err += String(chunk)));
    // 'close', not 'exit': the child may exit before its last line is read from the pipe.
    const exited = new Promise<string>((resolve) => started.once('close', (code, signal) => resolve(signal ?? `code ${code}`)));
    await waitUntil(() => {
      if (started.exitCode !== null) throw new Error(`the paused agent exited early: ${out}${err}`);
      return out.includes('paused\n') && /^\d+ \(.*\) T /.test(readFileSync(`/proc/${started.pid}/stat`, 'utf8'));
    }, 'the child to stop inside its transaction');
    return {
      outcome: async () => {
        started.kill('SIGCONT');
        const how = await exited;
        const last = out.split('\n').filter(Boolean).at(-1)!;
        if (!last.startsWith('{')) throw new Error(`the paused agent ended (${how}) without saying how its call ended:\n${out}${err}`);
        return JSON.parse(last) as { outcome: string; detail?: unknown };
      },
    };
  }

  // PgBouncer (session mode) refuses session settings sent as startup parameters: the store sets them once connected.
  it.each([
    ['directly', false],
    ['through PgBouncer', true],
  ])('does not keep the others from the lease (%s): the lease lapses, another takes it, and the paused write never lands', async (_, pooled) => {
    const direct = await postgres.server.database();
    bouncer = pooled ? await startPgBouncer(postgres.server.port) : undefined;
    const url = bouncer?.via(direct) ?? direct;
    const paused = await pausedAgent(url, 'lease');
    const other = store(url);
    let lease = await other.lease();
    const epoch = lease.epoch;
    await waitUntil(
      async () => {
        lease = await other.elect('b', 'http://b', 1_000).catch(() => lease);
        return lease.holder === 'b';
      },
      'b to take the lease',
      15_000,
    );
    expect(lease.epoch).toBe(epoch + 1);
    const ended = await paused.outcome();
    // The server ended its session, saying why; the write was rolled back with it.
    expect(ended).toEqual({ outcome: 'failed', detail: expect.stringContaining('idle-in-transaction timeout') });
    expect(await other.getState('fromPaused')).toBeUndefined();
    // The new leader's fenced writes go through.
    expect(await other.setState({ node: 'b', epoch: lease.epoch }, 'fromB', 1)).toBeUndefined();
    expect(await other.getState('fromB')).toBe(1);
    await other.close();
  });

  it("does not hold up the others' events; the paused agent's append never lands", async () => {
    const url = await postgres.server.database();
    const paused = await pausedAgent(url, 'events');
    const other = store(url);
    await within(15_000, other.appendEvents('b', [probeUp('from b')]), "b's append");
    expect((await paused.outcome()).outcome).toBe('failed');
    expect((await other.eventsAfter(0, 10)).map((e) => e.message)).toEqual(['from b']);
    await other.close();
  });

  it('does not hold up the migrations of the agents starting beside it', async () => {
    const url = await postgres.server.database();
    const paused = await pausedAgent(url, 'migrate');
    const other = store(url);
    expect(await within(15_000, other.migrate(), "b's migrations")).toBe(MIGRATIONS.length);
    expect((await paused.outcome()).outcome).toBe('failed');
    await other.close();
  });
});

/** An event for the history (its id is the database's to give). */
function probeUp(message: string, data: Record<string, unknown> = {}): GreenlightEvent {
  return {
    id: 0,
    time: new Date().toISOString(),
    type: 'probe.up',
    severity: 'info',
    env: null,
    probe: null,
    rule: null,
    message,
    data,
  } as unknown as GreenlightEvent;
}

/** `promise`, or a rejection naming `what` once `ms` passed (a hang fails the test with its reason). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still waited after ${ms}ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

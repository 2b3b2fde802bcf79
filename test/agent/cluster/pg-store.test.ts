import { describe, expect, it } from 'vitest';
import { MIGRATIONS, PgStore } from '../../../agent/cluster/pg-store.js';
import { usePostgres } from '../../helpers/postgres.js';
import pg from 'pg';

const postgres = usePostgres();

function store(url: string): PgStore {
  return PgStore.create(url, { application: 'test', onError: () => undefined });
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
    await s.completeSwitch(term, 'green');
    expect(await s.getState('activeEnvironment')).toBe('green');
    expect(await s.claimSwitch(term, { from: 'blue', to: 'green', incident: 'r#3', manual: false })).toMatch(/no longer live/);
    expect(await s.switchSent('r#2')).toBe(true);
    expect(await s.switchSent('r#3')).toBe(false);
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
    const event = (n: number) =>
      ({
        id: 0,
        time: new Date().toISOString(),
        type: 'probe.up',
        severity: 'info',
        env: null,
        probe: null,
        rule: null,
        message: `m${n}`,
        data: { n },
      }) as never;
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

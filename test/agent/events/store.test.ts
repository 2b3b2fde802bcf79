/**
 * The state database's event journal (agent/events/store.ts) on real SQLite files: retention by age and
 * by size deletes the oldest events first, and ids are never reused after pruning, across reopens.
 *
 * And where its fsyncs happen, watched with strace on a real process: an event commit asked to
 * sync later makes no fsync; its syncEvents is one fdatasync of the WAL, made by a thread-pool
 * thread, not the event loop's; and every other write, also right after a deferred append (and one
 * that failed), still fsyncs the WAL on the loop before it returns (synchronous=FULL). That child
 * runs the built store (`npm test` builds first): strace follows a plain node process. Skipped,
 * saying so, where strace is missing or may not trace (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { PAGE_CACHE_KIB, Store } from '../../../agent/events/store.js';
import { RollupStore } from '../../../agent/reports/rollup-store.js';
import { tempDir } from '../../helpers/tools.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-03-14T12:00:00Z');

/** A realistic flag.changed event with id `id` at `time` (ms). */
function event(id: number, time: number): GreenlightEvent {
  return {
    id,
    time: new Date(time).toISOString(),
    type: 'flag.changed',
    severity: 'info',
    env: 'blue',
    probe: null,
    rule: null,
    message: `CIRCUIT_BREAKER on in blue by api:admin: maintenance window ${id}`,
    data: { actor: 'api:admin', reason: `maintenance window ${id}`, changes: [{ flag: 'CIRCUIT_BREAKER', env: 'blue', old: false, new: true }] },
  };
}

function append(store: Store, from: number, count: number, time: (id: number) => number): void {
  const batch: GreenlightEvent[] = [];
  for (let id = from; id < from + count; id++) batch.push(event(id, time(id)));
  store.appendEvents(batch);
}

const ids = (store: Store) => store.events({ since: 0, limit: 1_000_000 }).map((e) => e.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

let open: Store[] = [];
afterEach(() => {
  for (const store of open) store.close();
  open = [];
});
function openStore(dir: string): Store {
  const store = Store.open(dir);
  open.push(store);
  return store;
}

describe('the page cache', () => {
  it("is SQLite's default 2 MB on the connections the agent writes through, not the 16 MB better-sqlite3 builds with", () => {
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    try {
      const dir = tempDir('greenlight-cache-');
      openStore(dir);
      const rollups = RollupStore.open(dir);
      try {
        // Each connection the stores opened, asked for its own setting (a pragma is per connection).
        const connections = new Set(pragma.mock.contexts as Database.Database[]);
        expect(connections.size).toBe(2);
        for (const db of connections) expect(db.pragma('cache_size', { simple: true })).toBe(-PAGE_CACHE_KIB);
        expect(PAGE_CACHE_KIB).toBeLessThanOrEqual(512);
      } finally {
        rollups.close();
      }
    } finally {
      pragma.mockRestore();
    }
  });
});

describe('journal retention by age', () => {
  it('deletes the events older than maxAge, oldest first, and keeps the rest', () => {
    const store = openStore(tempDir('greenlight-store-'));
    // Ten events a day for 40 days: ids 1..400, day d holds ids 10d+1..10d+10.
    append(store, 1, 400, (id) => NOW - 40 * DAY + Math.floor((id - 1) / 10) * DAY);
    const result = store.prune({ maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW });
    expect(result).toMatchObject({ byAge: 100, bySize: 0, firstId: 101, more: false });
    expect(ids(store)).toEqual(range(101, 400));
    expect(store.prune({ maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW })).toMatchObject({ byAge: 0, bySize: 0 });
  });

  it('goes by id, the order events happened in: a clock stepped back never makes a newer event go first', () => {
    const store = openStore(tempDir('greenlight-store-'));
    append(store, 1, 3, () => NOW - 40 * DAY);
    append(store, 4, 1, () => NOW - DAY); // inside the window
    append(store, 5, 1, () => NOW - 40 * DAY); // stamped old after the clock stepped back
    store.prune({ maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW });
    expect(ids(store)).toEqual([4, 5]);
  });

  it('never reuses an id, even when every event was pruned, after a reopen too', () => {
    const dir = tempDir('greenlight-store-');
    const store = openStore(dir);
    append(store, 1, 50, () => NOW - 100 * DAY);
    expect(store.lastEventId()).toBe(50);
    store.prune({ maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW });
    expect(ids(store)).toEqual([]);
    expect(store.lastEventId()).toBe(50);
    store.close();
    const reopened = openStore(dir);
    expect(reopened.lastEventId()).toBe(50);
    append(reopened, 51, 5, () => NOW);
    expect(reopened.lastEventId()).toBe(55);
    // A later prune of older ids never lowers the mark.
    reopened.prune({ maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW + 60 * DAY });
    expect(reopened.lastEventId()).toBe(55);
  });

  it('works in slices when given a row budget', () => {
    const store = openStore(tempDir('greenlight-store-'));
    append(store, 1, 1_000, () => NOW - 40 * DAY);
    append(store, 1_001, 10, () => NOW);
    const options = { maxAgeMs: 30 * DAY, maxBytes: Number.MAX_SAFE_INTEGER, now: NOW, maxRows: 300 };
    const slices = [];
    for (let result = store.prune(options); ; result = store.prune(options)) {
      slices.push(result.byAge);
      if (!result.more) break;
    }
    expect(slices).toEqual([300, 300, 300, 100]);
    expect(ids(store)).toEqual(range(1_001, 1_010));
  });
});

describe('where a reader of the newest events starts (idBeforeNewest)', () => {
  it('counts events, not ids: across the jump a crash leaves and the gaps retention leaves (regression: the status page replayed only events after the jump)', () => {
    const store = openStore(tempDir('greenlight-store-'));
    expect(store.idBeforeNewest(100)).toBe(0);
    append(store, 1, 150, () => NOW);
    append(store, 200_151, 5, () => NOW);
    expect(store.idBeforeNewest(100)).toBe(55);
    expect(store.idBeforeNewest(5)).toBe(150);
    expect(store.idBeforeNewest(0)).toBe(200_155);
    expect(store.idBeforeNewest(155)).toBe(0);
  });
});

describe('journal retention by size', () => {
  it('brings the database under maxSize by deleting the oldest events, and keeps the newest ones', () => {
    const store = openStore(tempDir('greenlight-store-'));
    for (let from = 1; from <= 20_000; from += 1_000) append(store, from, 1_000, () => NOW);
    const before = store.usedBytes();
    expect(before).toBeGreaterThan(4_000_000);
    const maxBytes = 1_000_000;
    const result = store.prune({ maxAgeMs: 30 * DAY, maxBytes, now: NOW });
    expect(result.bySize).toBeGreaterThan(0);
    expect(result.bytes).toBeLessThanOrEqual(maxBytes);
    expect(store.usedBytes()).toBe(result.bytes);
    // What is left is the newest events, without a gap, and not much less than the bound allows.
    const left = ids(store);
    expect(left).toEqual(range(20_000 - left.length + 1, 20_000));
    expect(result.bytes).toBeGreaterThan(maxBytes * 0.8);
    expect(store.lastEventId()).toBe(20_000);
  });

  it('keeps the file at about maxSize as events go on: freed pages are reused', () => {
    const dir = tempDir('greenlight-store-');
    const store = openStore(dir);
    const maxBytes = 1_000_000;
    const fileSize = () => {
      store.checkpoint();
      return statSync(`${dir}/greenlight.db`).size;
    };
    let next = 1;
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      append(store, next, 5_000, () => NOW);
      next += 5_000;
      store.prune({ maxAgeMs: 30 * DAY, maxBytes, now: NOW });
      expect(store.usedBytes()).toBeLessThanOrEqual(maxBytes);
      sizes.push(fileSize());
    }
    // Each round writes about 1.2 MB; without reuse the file would grow by that every round.
    expect(sizes.at(-1)!).toBeLessThanOrEqual(sizes[1]! * 1.05);
    expect(sizes.at(-1)!).toBeLessThan(3 * maxBytes);
  });

  it('deletes every event when the other state alone is over the bound, and stops there', () => {
    const store = openStore(tempDir('greenlight-store-'));
    append(store, 1, 100, () => NOW);
    const result = store.prune({ maxAgeMs: 30 * DAY, maxBytes: 1, now: NOW });
    expect(result).toMatchObject({ bySize: 100, firstId: undefined, more: false });
    expect(store.lastEventId()).toBe(100);
  });
});

describe('the journal as JSON (what replays and GET /api/v1/events send)', () => {
  it('builds each event exactly as JSON.stringify writes the event that was published, whatever its text holds', () => {
    const store = Store.open(tempDir('greenlight-store-'));
    open.push(store);
    const texts = [
      'plain',
      'quote " back \\ slash /',
      'control \u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f',
      'del \u007f \u0080 \u009f',
      'unicode é 漢字 🚀 \u2028 \u2029',
      '<script>&amp;</script>',
      '',
    ];
    const published: GreenlightEvent[] = texts.map(
      (text, i) =>
        ({
          id: i + 1,
          time: new Date(NOW + i).toISOString(),
          type: i % 2 ? 'probe.down' : 'rule.firing',
          severity: i % 2 ? 'warning' : 'critical',
          env: i % 3 ? 'blue' : null,
          probe: i % 2 ? `probe ${text}` : null,
          rule: i % 2 ? null : `rule ${text}`,
          message: text,
          data: { detail: text, nested: { list: [1, 2.5, -3e-7, true, null, text] }, empty: {} },
        }) as unknown as GreenlightEvent,
    );
    store.appendEvents(published);
    const json = store.eventsJson({ since: 0, limit: 100 });
    expect(json.map((row) => row.json)).toEqual(published.map((e) => JSON.stringify(e)));
    expect(json.map(({ id, type, severity, env, probe }) => ({ id, type, severity, env, probe }))).toEqual(
      published.map(({ id, type, severity, env, probe }) => ({ id, type, severity, env, probe })),
    );
    expect(store.eventsJson({ since: 3, limit: 2 }).map((row) => row.id)).toEqual([4, 5]);
  });
});

const STORE = new URL('../../../dist/agent/events/store.js', import.meta.url).href;
const MARK_DIR = '/nonexistent-greenlight-mark';

const traceable = spawnSync('strace', ['-qq', '-o', '/dev/null', 'true']).status === 0;

/** The child: each step between two marks (an open of a path that does not exist, which strace shows). */
const SCRIPT = `
import { openSync } from 'node:fs';
import { Store } from ${JSON.stringify(STORE)};
const mark = (name) => { try { openSync(${JSON.stringify(MARK_DIR)} + '/' + name, 'r'); } catch {} };
const event = (id) => ({ id, time: new Date().toISOString(), type: 'agent.stopping', severity: 'info', env: null, probe: null, rule: null, message: 'event ' + id, data: { signal: null, uptimeSeconds: id } });
const store = Store.open(process.argv[1]);
store.set('warm', 1);
mark('append-later');
store.appendEvents([event(1), event(2)], { syncLater: true });
mark('sync');
await store.syncEvents();
mark('append-now');
store.appendEvents([event(3)]);
mark('later-again');
store.appendEvents([event(4)], { syncLater: true });
mark('state');
store.set('activeEnvironment', 'green');
mark('later-failing');
try { store.appendEvents([event(4)], { syncLater: true }); } catch { mark('refused'); }
mark('state-after-failure');
store.set('activeEnvironment', 'blue');
mark('end');
store.close();
`;

interface Sync {
  thread: number;
  file: string;
}

/** The fsync/fdatasync calls of each step, by the step's mark, and the process's main thread. */
function traceSteps(): { main: number; steps: Map<string, Sync[]> } {
  const dir = tempDir('greenlight-store-sync-');
  const out = join(dir, 'strace.txt');
  const run = spawnSync(
    'strace',
    ['-f', '-y', '-qq', '-e', 'trace=openat,fsync,fdatasync', '-o', out, process.execPath, '--input-type=module', '-e', SCRIPT, dir],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(run.status, run.stderr).toBe(0);
  const lines = readFileSync(out, 'utf8').split('\n');
  const main = Number(lines[0]!.split(/\s+/)[0]);
  const steps = new Map<string, Sync[]>();
  let step: Sync[] | undefined;
  for (const line of lines) {
    const mark = new RegExp(`^\\d+\\s+openat\\(AT_FDCWD[^,]*, "${MARK_DIR}/([a-z-]+)"`).exec(line);
    if (mark) steps.set(mark[1]!, (step = []));
    const sync = /^(\d+)\s+f(?:data)?sync\(\d+<([^>]+)>/.exec(line);
    if (sync && step) step.push({ thread: Number(sync[1]), file: sync[2]! });
  }
  return { main, steps };
}

describe.skipIf(!traceable)('the journal WAL sync left to the thread pool (strace)', () => {
  it('a deferred commit makes no fsync, syncEvents fdatasyncs the WAL off the loop, and every other write still fsyncs on the loop', () => {
    const { main, steps } = traceSteps();
    const wal = (syncs: Sync[] | undefined) => (syncs ?? []).filter((s) => s.file.endsWith('/greenlight.db-wal'));
    expect([...steps.keys()]).toEqual(['append-later', 'sync', 'append-now', 'later-again', 'state', 'later-failing', 'refused', 'state-after-failure', 'end']);

    // Deferred: committed to the WAL, no sync of any file.
    expect(steps.get('append-later')).toEqual([]);
    expect(steps.get('later-again')).toEqual([]);
    // syncEvents: one flush of the WAL, by a thread that is not the loop's.
    const synced = wal(steps.get('sync'));
    expect(synced).toHaveLength(1);
    expect(synced[0]!.thread).not.toBe(main);
    // Every other write, also right after a deferred append or a failed one, syncs on the loop.
    for (const name of ['append-now', 'state', 'state-after-failure']) {
      const syncs = wal(steps.get(name));
      expect(syncs.length, name).toBeGreaterThanOrEqual(1);
      expect(
        syncs.every((s) => s.thread === main),
        name,
      ).toBe(true);
    }
  });
});

if (!traceable) console.warn('store.test.ts: the WAL sync test is skipped, strace is missing or may not trace here (apt-get install strace)');

describe('a stored value that is not JSON (found from outside: the start stopped with a bare SyntaxError)', () => {
  it('names the file, the key and what to do', () => {
    const dir = tempDir('greenlight-store-');
    const store = Store.open(dir);
    store.set('activeEnvironment', 'green');
    const path = store.path;
    store.close();
    const db = new Database(path);
    db.prepare("UPDATE state SET value = 'gre' WHERE key = 'activeEnvironment'").run();
    db.close();
    const reopened = Store.open(dir);
    try {
      expect(() => reopened.get('activeEnvironment')).toThrow(
        new RegExp(
          `^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the stored activeEnvironment is not JSON \\(.*\\); restore the file from a backup, or remove that one entry`,
        ),
      );
    } finally {
      reopened.close();
    }
  });
});

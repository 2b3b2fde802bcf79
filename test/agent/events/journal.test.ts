/**
 * The journal (agent/events/journal.ts): listeners see an event only once it is on disk, and a store
 * that refuses writes loses nothing — events wait in memory, are still served, and are written
 * when the store takes writes again, with journal.failed / journal.recovered around the outage.
 * The disk failure here is a wrapper that throws SQLite's own "disk full" error in front of a
 * real database file; test/agent/crash.test.ts does it to a real process with a file-size limit.
 * The thread pool's fsync is held up for real too: every pool thread blocked opening a FIFO.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventBus, type GreenlightEvent } from '../../../agent/events/events.js';
import { Journal } from '../../../agent/events/journal.js';
import { Store } from '../../../agent/events/store.js';
import { tempDir } from '../../helpers/tools.js';

class FlakyStore {
  full = false;
  commits = 0;
  constructor(readonly real: Store) {}
  get path() {
    return this.real.path;
  }
  #check() {
    if (this.full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  }
  appendEvents(events: readonly GreenlightEvent[], options?: { syncLater?: boolean }) {
    this.#check();
    this.commits++;
    this.real.appendEvents(events, options);
  }
  syncEvents() {
    return this.real.syncEvents();
  }
  syncEventsNow() {
    this.real.syncEventsNow();
  }
  set(key: string, value: unknown, now?: number) {
    this.#check();
    this.real.set(key, value, now);
  }
  events(query: { since: number; limit: number; type?: string }) {
    return this.real.events(query);
  }
  lastEventId() {
    return this.real.lastEventId();
  }
  lastWrittenEventId() {
    return this.real.lastWrittenEventId();
  }
  idBeforeNewest(count: number) {
    return this.real.idBeforeNewest(count);
  }
}

function setup() {
  const real = Store.open(tempDir('greenlight-journal-'));
  const store = new FlakyStore(real);
  const bus = new EventBus({
    now: Date.now,
    onListenerError: (error) => {
      throw error;
    },
  });
  const journal = new Journal({ store: store as unknown as Store, bus, logger: pino({ level: 'silent' }), now: Date.now });
  const delivered: GreenlightEvent[] = [];
  journal.subscribe((event) => {
    // Invariant under test: what a listener gets is already readable from history.
    delivered.push(event);
    if (!store.full) expect(real.events({ since: event.id - 1, limit: 1 })[0]?.id).toBe(event.id);
  });
  const publish = (n: number) => {
    for (let i = 0; i < n; i++) bus.publish({ type: 'agent.stopping', severity: 'info', message: `event ${i}`, data: { signal: null, uptimeSeconds: i } });
  };
  return { real, store, bus, journal, delivered, publish };
}

describe('journal', () => {
  afterEach(() => vi.useRealTimers());

  it('hands events to listeners only after the batch is written and synced, one transaction per tick', async () => {
    const { journal, delivered, publish, real, store } = setup();
    publish(50);
    expect(delivered).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.commits).toBe(1);
    expect(real.lastWrittenEventId()).toBe(50);
    await vi.waitFor(() => expect(delivered).toHaveLength(50));
    expect(delivered.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    journal.close();
    real.close();
  });

  /**
   * A real store whose WAL syncs (Store.syncEvents, in the thread pool) finish when the test says:
   * `syncs` holds one resolver per sync started, and records how each commit was asked to sync.
   */
  function gatedSetup(syncFallbackMs = 60_000) {
    const real = Store.open(tempDir('greenlight-journal-'));
    const syncs: { finish: (error?: Error) => void }[] = [];
    const commits: { ids: number[]; syncLater: boolean }[] = [];
    let syncsNow = 0;
    const store = {
      path: real.path,
      appendEvents(events: readonly GreenlightEvent[], options?: { syncLater?: boolean }) {
        real.appendEvents(events, options);
        commits.push({ ids: events.map((e) => e.id), syncLater: options?.syncLater === true });
      },
      syncEvents: () =>
        new Promise<void>((resolve, reject) => {
          syncs.push({
            finish: (error) => {
              if (error) reject(error);
              else real.syncEvents().then(resolve, reject);
            },
          });
        }),
      syncEventsNow() {
        syncsNow++;
        real.syncEventsNow();
      },
      events: (query: { since: number; limit: number }) => real.events(query),
    };
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const bus = new EventBus({
      now: Date.now,
      onListenerError: (error) => {
        throw error;
      },
    });
    const journal = new Journal({ store: store as unknown as Store, bus, logger, now: Date.now, syncFallbackMs });
    const delivered: number[] = [];
    journal.subscribe((event) => delivered.push(event.id));
    const publish = (n: number) => {
      for (let i = 0; i < n; i++) bus.publish({ type: 'agent.stopping', severity: 'info', message: `event ${i}`, data: { signal: null, uptimeSeconds: i } });
    };
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    return { real, journal, syncs, commits, delivered, publish, tick, ids, lines, syncsNow: () => syncsNow };
  }

  it("writes a cluster's history into the local mirror without any fsync, and delivers it at once", async () => {
    const { real, journal, syncs, commits, delivered, ids, syncsNow } = gatedSetup();
    const history = ids(41, 45).map((id) => ({
      id,
      time: new Date().toISOString(),
      type: 'agent.stopping' as const,
      severity: 'info' as const,
      env: null,
      probe: null,
      rule: null,
      message: `event ${id}`,
      data: { signal: null, uptimeSeconds: id },
    }));
    journal.ingest(history);
    expect(commits).toEqual([{ ids: ids(41, 45), syncLater: true }]);
    expect(delivered).toEqual(ids(41, 45));
    expect(real.lastWrittenEventId()).toBe(45);
    expect({ syncs: syncs.length, syncsNow: syncsNow() }).toEqual({ syncs: 0, syncsNow: 0 });
    journal.close();
    real.close();
  });

  it('commits without waiting for the disk and delivers once the WAL sync that covers the commit is done; one sync at a time', async () => {
    const { real, journal, syncs, commits, delivered, publish, tick, ids } = gatedSetup();
    publish(10);
    await tick();
    expect(commits).toEqual([{ ids: ids(1, 10), syncLater: true }]);
    expect(real.lastWrittenEventId()).toBe(10);
    expect(syncs).toHaveLength(1);
    expect(delivered).toEqual([]);

    // Committed while the first sync runs: that sync does not cover them, and a second waits for it.
    // (A commit may wait for the spacing after the last: see the stream tests below.)
    publish(5);
    await vi.waitFor(() => expect(real.lastWrittenEventId()).toBe(15));
    expect(syncs).toHaveLength(1);
    syncs[0]!.finish();
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 10)));
    expect(syncs).toHaveLength(2);

    // The second covers 11-15, not what is committed after it started.
    publish(3);
    await vi.waitFor(() => expect(real.lastWrittenEventId()).toBe(18));
    syncs[1]!.finish();
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 15)));
    expect(syncs).toHaveLength(3);
    syncs[2]!.finish();
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 18)));
    journal.close();
    real.close();
  });

  it('a reader while a sync runs syncs at once and reads exactly what the listeners were handed; the running sync delivers nothing twice', async () => {
    const { real, journal, syncs, delivered, publish, tick, ids, syncsNow } = gatedSetup();
    publish(10);
    await tick();
    expect(delivered).toEqual([]);
    publish(2); // published, not yet committed
    expect(journal.events({ since: 0, limit: 100 }).map((e) => e.id)).toEqual(ids(1, 12));
    expect(syncsNow()).toBe(1);
    expect(delivered).toEqual(ids(1, 12));
    syncs[0]!.finish();
    await tick();
    await tick();
    expect(delivered).toEqual(ids(1, 12));
    expect(syncs).toHaveLength(1);
    // A stop delivers what is committed and waits for no sync to finish.
    publish(4);
    await vi.waitFor(() => expect(syncs).toHaveLength(2));
    journal.close();
    expect(delivered).toEqual(ids(1, 16));
    expect(syncsNow()).toBe(2);
    real.close();
  });

  it('when the thread pool does not sync in time (its threads held by DNS lookups, say), syncs on the loop, says so once, and delivers nothing twice', async () => {
    // 200 ms here (50 in service), well above vi.waitFor's 50 ms polling: the pool's syncs this test finishes are in time.
    const { real, journal, syncs, delivered, publish, tick, ids, lines, syncsNow } = gatedSetup(200);
    const lines0 = lines.length;
    publish(3);
    await tick();
    expect(syncs).toHaveLength(1);
    expect(delivered).toEqual([]);
    // The pool's sync never finishes here: the loop syncs them itself.
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 3)));
    expect(syncsNow()).toBe(1);
    expect(lines.slice(lines0).join('')).toContain('the thread pool did not flush the event journal within 200 ms');
    // Still stuck: the next events get the same, without another log line in the same minute.
    publish(2);
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 5)));
    expect(syncsNow()).toBe(2);
    expect(lines.slice(lines0).filter((line) => line.includes('thread pool'))).toHaveLength(1);
    // The pool comes back: its late sync delivers nothing again, and the next events go through it.
    syncs[0]!.finish();
    await vi.waitFor(() => expect(syncs).toHaveLength(1));
    publish(1);
    await vi.waitFor(() => expect(syncs).toHaveLength(2));
    syncs[1]!.finish();
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 6)));
    expect(syncsNow()).toBe(2);
    journal.close();
    real.close();
  });

  it('delivers while every thread of the pool is held (opens of FIFOs nobody writes), syncing on the loop after 50 ms', async () => {
    // libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says more; hold up to 8.
    const dir = tempDir('greenlight-pool-');
    const fifos = Array.from({ length: Math.max(8, Number(process.env.UV_THREADPOOL_SIZE ?? 4)) }, (_, i) => join(dir, `fifo-${i}`));
    execFileSync('mkfifo', fifos);
    const opened = fifos.map((path) => open(path, 'r'));
    const { journal, delivered, publish, real } = setup();
    try {
      publish(5);
      await vi.waitFor(() => expect(delivered.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]), { timeout: 2_000 });
    } finally {
      // A writer lets each blocked open finish, which frees its thread for the next open queued.
      for (const path of fifos) await releaseFifo(path);
      for (const handle of await Promise.all(opened)) await handle.close();
    }
    journal.close();
    real.close();
  });

  it('when a WAL sync fails, says so, hands the committed events on, and from then on each commit waits for the disk itself', async () => {
    const { real, journal, syncs, commits, delivered, publish, tick, ids, lines } = gatedSetup();
    publish(3);
    await tick();
    syncs[0]!.finish(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await vi.waitFor(() => expect(delivered).toEqual(ids(1, 3)));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`could not flush the event journal's WAL (${real.path}-wal) to disk: EIO: i/o error, fdatasync`);
    publish(2);
    await vi.waitFor(() => expect(commits).toHaveLength(2));
    expect(commits.at(-1)).toEqual({ ids: [4, 5], syncLater: false });
    expect(delivered).toEqual(ids(1, 5));
    expect(syncs).toHaveLength(1);
    journal.close();
    real.close();
  });

  /**
   * A steady stream of one event a millisecond against a disk whose commits cost `costMs`: the
   * injected clock is the fake timers' time plus what the commits cost so far. Returns, per
   * event, how long it waited to be delivered, and per commit, when it started and ended.
   */
  async function stream(costMs: number, events = 200) {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
    const start = Date.now();
    let spent = 0;
    const clock = () => Date.now() - start + spent;
    const real = Store.open(tempDir('greenlight-journal-'));
    const commits: { start: number; end: number }[] = [];
    const store = {
      path: real.path,
      appendEvents(batch: readonly GreenlightEvent[]) {
        const began = clock();
        real.appendEvents(batch);
        spent += costMs;
        commits.push({ start: began, end: clock() });
      },
      // A disk whose commits cost `costMs` on the loop, fsync included (no WAL to sync later).
      syncEvents: () => Promise.resolve(),
      syncEventsNow() {},
    };
    const bus = new EventBus({
      now: Date.now,
      onListenerError: (error) => {
        throw error;
      },
    });
    const journal = new Journal({ store: store as unknown as Store, bus, logger: pino({ level: 'silent' }), now: Date.now, clock });
    const publishedAt = new Map<number, number>();
    const waits: number[] = [];
    journal.subscribe((event) => waits.push(clock() - publishedAt.get(event.id)!));
    for (let i = 0; i < events; i++) {
      const event = bus.publish({ type: 'agent.stopping', severity: 'info', message: `event ${i}`, data: { signal: null, uptimeSeconds: i } });
      publishedAt.set(event.id, clock());
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(real.lastWrittenEventId()).toBe(events);
    expect(waits).toHaveLength(events);
    const spacing = journal.commitSpacingMs;
    journal.close();
    real.close();
    const elapsed = clock();
    return { commits, waits, spacing, elapsed, busy: commits.reduce((sum, c) => sum + c.end - c.start, 0) / elapsed };
  }

  it('on a fast disk commits each event of a steady stream within about a millisecond, commits taking at most a fifth of the time', async () => {
    const { commits, waits, spacing, busy } = await stream(0.1);
    expect(spacing).toBeCloseTo(0.4, 5);
    expect(Math.max(...waits)).toBeLessThanOrEqual(1.1);
    expect(commits.length).toBeGreaterThan(150);
    expect(busy).toBeLessThanOrEqual(0.2);
  });

  it('on a slow disk spaces commits 5 ms apart, so a busy stretch of one-event ticks shares its fsyncs', async () => {
    const { commits, waits, spacing, elapsed } = await stream(2);
    expect(spacing).toBe(5);
    for (let i = 1; i < commits.length; i++) expect(commits[i]!.start - commits[i - 1]!.end).toBeGreaterThanOrEqual(5);
    expect(commits.length).toBeLessThanOrEqual(Math.ceil(elapsed / (5 + 2)) + 1);
    // An event waits at most the spacing, the commit before it and the tick it was published in.
    expect(Math.max(...waits)).toBeLessThanOrEqual(5 + 2 + 2);
  });

  it('between the two, keeps commits to about a fifth of the time, not the fixed 5 ms', async () => {
    const { spacing, busy, waits } = await stream(0.7);
    expect(spacing).toBeCloseTo(2.8, 5);
    expect(busy).toBeLessThanOrEqual(0.2);
    expect(Math.max(...waits)).toBeLessThan(5);
  });

  it('in a cluster keeps the 5 ms spacing: the writes go to PostgreSQL off the loop, and larger batches cost it fewer round trips', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'] });
    const real = Store.open(tempDir('greenlight-journal-'));
    const batches: number[] = [];
    const replica = { appendEvents: (events: readonly GreenlightEvent[]) => batches.push(events.length), save() {}, saveFlags() {}, recordAction() {} };
    const bus = new EventBus({
      now: Date.now,
      onListenerError: (error) => {
        throw error;
      },
    });
    const journal = new Journal({ store: real, bus, logger: pino({ level: 'silent' }), now: Date.now, clock: () => Date.now(), replica });
    for (let i = 0; i < 50; i++) {
      bus.publish({ type: 'agent.stopping', severity: 'info', message: `event ${i}`, data: { signal: null, uptimeSeconds: i } });
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(journal.commitSpacingMs).toBe(5);
    expect(batches.reduce((sum, n) => sum + n, 0)).toBe(50);
    expect(batches.length).toBeLessThanOrEqual(50 / 5 + 1);
    journal.close();
    real.close();
  });

  it('holds events and state while the disk is full, serves them from history, and writes them on recovery', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { journal, delivered, publish, real, store } = setup();
    publish(3);
    journal.flush();
    store.full = true;
    publish(4);
    journal.save('activeEnvironment', 'green');
    journal.flush();
    journal.flush(); // the journal.failed event itself, published during the failed write
    expect(journal.failing).toBe(true);
    const failed = delivered.find((e) => e.type === 'journal.failed');
    expect(failed?.severity).toBe('critical');
    expect(failed?.message).toContain('database or disk is full');
    // Delivered live, on disk only up to the failure, but the history has all of it.
    expect(delivered.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(real.lastWrittenEventId()).toBe(3);
    expect(journal.events({ since: 0, limit: 100 }).map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(journal.events({ since: 5, limit: 2 }).map((e) => e.id)).toEqual([6, 7]);
    expect(real.get('activeEnvironment')).toBeUndefined();

    // Still full at the first retry: nothing lost, nothing written twice.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(journal.failing).toBe(true);
    store.full = false;
    await vi.advanceTimersByTimeAsync(5_000);
    journal.flush();
    expect(journal.failing).toBe(false);
    const recovered = delivered.find((e) => e.type === 'journal.recovered');
    expect(recovered?.data).toMatchObject({ heldEvents: 5, droppedEvents: 0 });
    expect(real.events({ since: 0, limit: 100 }).map((e) => e.id)).toEqual(Array.from({ length: recovered!.id }, (_, i) => i + 1));
    expect(real.get('activeEnvironment')).toBe('green');
    journal.close();
    real.close();
  });

  it('a restart after ids were handed out while the disk was full never hands them out again (regression: a stream client resuming with since skipped the new events)', () => {
    const { journal, delivered, publish, real, store } = setup();
    publish(3);
    journal.flush();
    store.full = true;
    publish(4);
    journal.flush();
    journal.flush();
    const served = Math.max(...delivered.map((e) => e.id));
    expect(real.lastWrittenEventId()).toBe(3);
    // The agent dies with the disk still full (kill -9, or a stop whose last writes fail): what the next start numbers from.
    expect(real.lastEventId()).toBeGreaterThan(served);
    journal.close();
    real.close();
  });

  it('finds where the newest events start among those on disk and those waiting for it', () => {
    const { journal, publish, real, store } = setup();
    publish(3);
    journal.flush();
    store.full = true;
    publish(4);
    journal.flush();
    // The three written, then the four (and what the journal says of the full disk) held.
    const ids = journal.events({ since: 0, limit: 100 }).map((e) => e.id);
    expect(real.lastWrittenEventId()).toBe(3);
    expect(ids.length).toBeGreaterThanOrEqual(7);
    expect(journal.idBeforeNewest(2)).toBe(ids.at(-3));
    expect(journal.idBeforeNewest(ids.length - 2)).toBe(ids[1]);
    expect(journal.idBeforeNewest(100)).toBe(0);
    journal.close();
    real.close();
  });

  it('a clean stop leaves ids contiguous for the next start; a crash leaves them past the reservation', () => {
    const { journal, publish, real } = setup();
    publish(5);
    journal.flush();
    // Mid-run (a crash now): ids go on past what may have been handed out.
    expect(real.lastEventId()).toBeGreaterThan(5);
    journal.close();
    expect(real.lastEventId()).toBe(5);
    real.close();
  });
});

/**
 * Open `path` (a FIFO) for writing and close it, which lets its reader's open finish. A reader
 * whose open is still queued for a pool thread is not there yet (ENXIO, as a writer that does not
 * wait gets): tried again until it is. (It failed so once: the cleanup opened the fifth
 * FIFO before the thread freed by the first had picked up its open.)
 */
async function releaseFifo(path: string): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

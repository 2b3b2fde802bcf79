/**
 * The journal (agent/events/journal.ts): listeners see an event only once it is on disk, and a store
 * that refuses writes loses nothing — events wait in memory, are still served, and are written
 * when the store takes writes again, with journal.failed / journal.recovered around the outage.
 * The disk failure here is a wrapper that throws SQLite's own "disk full" error in front of a
 * real database file; test/agent/crash.test.ts does it to a real process with a file-size limit.
 */
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
  appendEvents(events: readonly GreenlightEvent[]) {
    this.#check();
    this.commits++;
    this.real.appendEvents(events);
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

  it('hands events to listeners only after the batch is written, one transaction per tick', async () => {
    const { journal, delivered, publish, real } = setup();
    publish(50);
    expect(delivered).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(delivered.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(real.lastEventId()).toBe(50);
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
    expect(real.lastEventId()).toBe(events);
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
    expect(real.lastEventId()).toBe(3);
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
});

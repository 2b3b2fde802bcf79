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

  it('spaces commits at least 5 ms apart, so a busy stretch of one-event ticks shares its fsyncs', async () => {
    const { journal, delivered, publish, real, store } = setup();
    const started = performance.now();
    for (let tick = 0; tick < 200; tick++) {
      publish(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    const elapsed = performance.now() - started;
    expect(delivered.map((e) => e.id)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(store.commits).toBeLessThanOrEqual(Math.floor(elapsed / 5) + 1);
    expect(store.commits).toBeLessThan(200);
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

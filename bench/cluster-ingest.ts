/**
 * Journal ingest, SQLite against PostgreSQL (issue 13), for `npm run bench:failover`: the same
 * realistic events (bench/journal-events.ts) appended through the agent's own SQLite journal
 * (Store.open: WAL, synchronous=FULL; Store.appendEvents, as a single agent writes a tick) and
 * through the cluster's path into PostgreSQL (PgStore.appendEvents: one transaction per batch,
 * the event-id advisory lock, the INSERT from a JSON array, NOTIFY), one batch after the other as
 * the cluster's write queue sends them. SQLite is the baseline, measured in the same run.
 *
 * Caveat on the ratio: the throwaway server (simulator/postgres-server.ts) runs with fsync=off and
 * synchronous_commit=off, so its figures include a round trip per statement but no disk flush,
 * while the SQLite journal fsyncs every commit: PostgreSQL's figure is an upper bound.
 */
import { rmSync } from 'node:fs';
import { PgStore } from '../agent/cluster/pg-store.js';
import type { GreenlightEvent } from '../agent/events/events.js';
import { Store } from '../agent/events/store.js';
import { freshDataDir } from './harness.js';
import { realisticEvent } from './journal-events.js';

export interface IngestFigure {
  batch: number;
  events: number;
  seconds: number;
  perSecond: number;
}

const START = Date.parse('2026-03-14T12:00:00Z');

function batches(count: number, size: number): GreenlightEvent[][] {
  const out: GreenlightEvent[][] = [];
  for (let from = 1; from <= count; from += size) {
    const batch: GreenlightEvent[] = [];
    for (let id = from; id < Math.min(from + size, count + 1); id++) batch.push(realisticEvent(id, START + id));
    out.push(batch);
  }
  return out;
}

/** Appends `count` events in batches of `batch` with `append`, stopping after `maxSeconds`. */
async function measure(count: number, batch: number, maxSeconds: number, append: (events: GreenlightEvent[]) => unknown): Promise<IngestFigure> {
  const work = batches(count, batch);
  let written = 0;
  const t0 = performance.now();
  for (const events of work) {
    await append(events);
    written += events.length;
    if (performance.now() - t0 > maxSeconds * 1_000) break;
  }
  const seconds = (performance.now() - t0) / 1_000;
  return { batch, events: written, seconds, perSecond: written / seconds };
}

/** SQLite and PostgreSQL, batch by batch size: `[sqlite, postgres]` for each of `sizes`. */
export async function runClusterIngest(
  databaseUrl: string,
  options: { events: number; sizes: readonly number[]; maxSeconds: number },
): Promise<Array<{ sqlite: IngestFigure; postgres: IngestFigure }>> {
  const results: Array<{ sqlite: IngestFigure; postgres: IngestFigure }> = [];
  for (const size of options.sizes) {
    const dir = freshDataDir('cluster-ingest');
    const store = Store.open(dir);
    let sqlite: IngestFigure;
    try {
      sqlite = await measure(options.events, size, options.maxSeconds, (events) => store.appendEvents(events));
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const pg = PgStore.create(databaseUrl, { application: 'greenlight-bench', onError: (message) => console.error(`postgres: ${message}`), lockHoldMs: 500 });
    let postgres: IngestFigure;
    try {
      await pg.migrate();
      postgres = await measure(options.events, size, options.maxSeconds, (events) => pg.appendEvents('bench', events));
    } finally {
      await pg.close();
    }
    results.push({ sqlite, postgres });
  }
  return results;
}

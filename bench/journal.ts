/**
 * The event journal (agent/events/store.ts) on a real SQLite file in the OS temp directory, opened
 * exactly as the agent opens it (Store.open: WAL, synchronous=FULL).
 *
 * journal-ingest: events per second written durably through Store.appendEvents, a batch per
 * transaction (the agent writes a tick's events together), beside a baseline measured in the
 * same run: one commit per event. Target >= 20,000/s.
 *
 * Crash safety: in WAL mode with synchronous=FULL every commit fsyncs the WAL before it returns,
 * so a committed batch survives a crash and a power cut alike; a batch is one transaction, so a
 * crash leaves all of it or none. Batching only amortizes the fsync over the batch: nothing is
 * relaxed (NORMAL would be faster and still crash-safe for the process, but a power cut could
 * lose the last commits; greenlight keeps FULL).
 *
 * journal-bytes: the file size per event after a checkpoint, for a measured batch of realistic
 * events (bench/journal-events.ts), extrapolated to a million.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { GreenlightEvent } from '../agent/events/events.js';
import { Store } from '../agent/events/store.js';
import { fmt, freshDataDir, log, section, verdict, type SummaryRow } from './harness.js';
import { realisticEvent } from './journal-events.js';

export interface JournalOptions {
  /** Events written in batches (default 100,000). */
  events?: number;
  /** Longest the one-commit-per-event baseline runs (default 5 s). */
  baselineSeconds?: number;
}

function withStore<T>(run: (store: Store, dir: string) => T): T {
  const dir = freshDataDir('journal');
  const store = Store.open(dir);
  try {
    return run(store, dir);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function settings(dir: string): string {
  const db = new Database(join(dir, 'greenlight.db'), { readonly: true });
  try {
    const mode = db.pragma('journal_mode', { simple: true });
    return `journal_mode=${String(mode)}, synchronous=FULL (Store.open), page_size=${String(db.pragma('page_size', { simple: true }))}`;
  } finally {
    db.close();
  }
}

/** Events per second appending `count` events in batches of `batch`, stopping after `maxSeconds`. */
function ingest(store: Store, count: number, batch: number, maxSeconds: number): { events: number; seconds: number; perSecond: number } {
  const start = Date.parse('2026-03-14T12:00:00Z');
  const events: GreenlightEvent[] = Array.from({ length: Math.min(count, 10_000) }, (_, i) => realisticEvent(i + 1, start + i));
  let written = 0;
  const t0 = performance.now();
  while (written < count && performance.now() - t0 < maxSeconds * 1_000) {
    const size = Math.min(batch, count - written);
    const chunk: GreenlightEvent[] = [];
    for (let i = 0; i < size; i++) {
      const template = events[(written + i) % events.length]!;
      chunk.push({ ...template, id: written + i + 1 } as GreenlightEvent);
    }
    store.appendEvents(chunk);
    written += size;
  }
  const seconds = (performance.now() - t0) / 1_000;
  return { events: written, seconds, perSecond: written / seconds };
}

export function runJournalIngest(options: JournalOptions = {}): { rows: SummaryRow[] } {
  const count = options.events ?? 100_000;
  const baselineSeconds = options.baselineSeconds ?? 5;
  section(`journal-ingest: ${count.toLocaleString('en-US')} realistic events into a real SQLite file`);
  const rows: SummaryRow[] = [];
  const baseline = withStore((store, dir) => {
    log(`settings: ${settings(dir)}`);
    return ingest(store, count, 1, baselineSeconds);
  });
  log(`baseline, one commit per event: ${fmt(baseline.perSecond, 0)} events/s (${baseline.events.toLocaleString('en-US')} in ${fmt(baseline.seconds, 2)} s)`);
  for (const batch of [100, 1_000]) {
    const result = withStore((store) => ingest(store, count, batch, 60));
    log(
      `batches of ${batch.toLocaleString('en-US')} per transaction: ${fmt(result.perSecond, 0)} events/s (${result.events.toLocaleString('en-US')} in ${fmt(result.seconds, 2)} s), ${fmt(result.perSecond / baseline.perSecond, 1)}x the baseline`,
    );
    rows.push({
      bench: 'journal-ingest',
      figure: `events/s, batches of ${batch.toLocaleString('en-US')} (FULL sync, WAL)`,
      target: batch === 1_000 ? '>= 20,000/s' : 'report',
      measured: `${fmt(result.perSecond, 0)}/s: ${fmt(result.perSecond / baseline.perSecond, 1)}x one commit per event`,
      verdict: batch === 1_000 ? verdict(result.perSecond >= 20_000) : 'info',
    });
  }
  rows.push({
    bench: 'journal-ingest',
    figure: 'baseline: one commit per event',
    target: 'report',
    measured: `${fmt(baseline.perSecond, 0)}/s`,
    verdict: 'info',
  });
  return { rows };
}

export function runJournalBytes(options: JournalOptions = {}): { rows: SummaryRow[] } {
  const count = options.events ?? 100_000;
  section(`journal-bytes: ${count.toLocaleString('en-US')} realistic events, file size after a checkpoint`);
  const { bytes, used, json } = withStore((store, dir) => {
    const start = Date.parse('2026-03-14T12:00:00Z');
    let json = 0;
    for (let from = 1; from <= count; from += 1_000) {
      const batch: GreenlightEvent[] = [];
      for (let id = from; id < Math.min(from + 1_000, count + 1); id++) {
        const event = realisticEvent(id, start + id * 100);
        json += JSON.stringify(event).length;
        batch.push(event);
      }
      store.appendEvents(batch);
    }
    store.checkpoint();
    return { bytes: statSync(join(dir, 'greenlight.db')).size, used: store.usedBytes(), json };
  });
  const perEvent = bytes / count;
  log(
    `file ${fmt(bytes / 1_048_576, 1)} MiB for ${count.toLocaleString('en-US')} events: ${fmt(perEvent, 0)} bytes/event (pages in use: ${fmt(used / count, 0)}; the events as JSON: ${fmt(json / count, 0)} bytes each)`,
  );
  log(
    `per million events: ${fmt((perEvent * 1_000_000) / 1_048_576, 0)} MiB; the default maxSize (512 MiB) holds about ${fmt((512 * 1_048_576) / perEvent / 1_000_000, 2)} million`,
  );
  return {
    rows: [
      {
        bench: 'journal-bytes',
        figure: 'journal bytes per million events',
        target: 'report',
        measured: `${fmt((perEvent * 1_000_000) / 1_048_576, 0)} MiB (${fmt(perEvent, 0)} B/event; JSON ${fmt(json / count, 0)} B)`,
        verdict: 'info',
      },
    ],
  };
}

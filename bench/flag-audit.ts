/**
 * flag-audit: flag changes per second, persisted as the agent persists them, on a real SQLite
 * file opened as the agent opens it (Store.open: WAL, synchronous=FULL), with a full trail of
 * 1,000 audit entries (the steady state of a long-running agent).
 *
 * - before: what the agent did up to issue 11, measured in the same run: each change rewrote the
 *   `flags` state row with the whole snapshot, the 1,000 audit entries included (~200 KB).
 * - now: each change saves the values (a few hundred bytes) and appends its audit entries to the
 *   flag_audit table, trimming it to 1,000 rows, in one transaction (Store.saveFlags).
 *
 * Both run FlagStore.set through its real validation and events, one change per request, for the
 * same time; the figure is completed changes per second.
 */
import { rmSync } from 'node:fs';
import { FlagStore } from '../agent/flags/flag-store.js';
import { Store } from '../agent/events/store.js';
import { fmt, freshDataDir, log, section, type SummaryRow } from './harness.js';

const TRAIL = 1_000;

type Persistence = 'snapshot' | 'append';

/** Changes per second over `seconds`, each persisted the `how` way, starting from a full trail. */
function measure(how: Persistence, seconds: number): { changes: number; perSecond: number; bytesPerChange: number } {
  const dir = freshDataDir('flags');
  const store = Store.open(dir);
  let bytes = 0;
  try {
    const flags = new FlagStore({
      environments: ['blue', 'green'],
      readOnlyOnEmergency: false,
      now: Date.now,
      publish: () => undefined,
      auditLimit: TRAIL,
      persist: (state, audit) => {
        if (how === 'append') {
          bytes += JSON.stringify(state).length + JSON.stringify(audit).length;
          store.saveFlags(state, audit, TRAIL);
        }
      },
    });
    const change = (i: number) => flags.set(['blue'], { READ_ONLY_MODE: i % 2 === 0 }, { actor: 'api:admin', reason: `bench change ${i}` });
    const persistSnapshot = () => {
      const snapshot = flags.snapshot();
      bytes += JSON.stringify(snapshot).length;
      store.set('flags', snapshot);
    };
    // A full trail first, as a long-running agent has it (written the same way).
    for (let i = 0; i < TRAIL; i++) {
      change(i);
      if (how === 'snapshot') persistSnapshot();
    }
    bytes = 0;
    let done = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1_000) {
      change(TRAIL + done);
      if (how === 'snapshot') persistSnapshot();
      done++;
    }
    const elapsed = (performance.now() - start) / 1_000;
    return { changes: done, perSecond: done / elapsed, bytesPerChange: bytes / done };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runFlagAudit(options: { seconds?: number } = {}): { rows: SummaryRow[] } {
  const seconds = options.seconds ?? 5;
  section(`flag-audit: flag changes per second with a ${TRAIL.toLocaleString('en-US')}-entry audit trail, SQLite WAL, synchronous=FULL, ${seconds} s each`);
  const before = measure('snapshot', seconds);
  log(
    `before, the whole snapshot rewritten per change: ${fmt(before.perSecond, 0)} changes/s (${before.changes.toLocaleString('en-US')} in ${seconds} s), ${fmt(before.bytesPerChange / 1_024, 1)} KiB written per change`,
  );
  const now = measure('append', seconds);
  log(
    `now, values saved and audit entries appended:   ${fmt(now.perSecond, 0)} changes/s (${now.changes.toLocaleString('en-US')} in ${seconds} s), ${fmt(now.bytesPerChange / 1_024, 2)} KiB written per change: ${fmt(now.perSecond / before.perSecond, 1)}x`,
  );
  return {
    rows: [
      {
        bench: 'flag-audit',
        figure: 'flag changes/s, audit appended (now)',
        target: '> before',
        measured: `${fmt(now.perSecond, 0)}/s: ${fmt(now.perSecond / before.perSecond, 1)}x the full snapshot`,
        verdict: now.perSecond > before.perSecond ? 'ok' : 'MISS',
      },
      {
        bench: 'flag-audit',
        figure: 'flag changes/s, full snapshot per change (before)',
        target: 'report',
        measured: `${fmt(before.perSecond, 0)}/s`,
        verdict: 'info',
      },
    ],
  };
}

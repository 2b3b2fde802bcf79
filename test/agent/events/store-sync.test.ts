/**
 * Where the state database's fsyncs happen (agent/events/store.ts), watched with strace on a real
 * process writing a real SQLite file: an event commit asked to sync later makes no fsync; its
 * syncEvents is one fdatasync of the WAL, made by a thread-pool thread, not the event loop's; and
 * every other write, also right after a deferred append (and one that failed), still fsyncs the WAL
 * on the loop before it returns (synchronous=FULL).
 *
 * The store under test is the built one (`npm test` builds first): strace follows a plain node
 * process. Skipped, saying so, where strace is missing or may not trace (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../helpers/tools.js';

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

if (!traceable) console.warn('store-sync.test.ts: skipped, strace is missing or may not trace here (apt-get install strace)');

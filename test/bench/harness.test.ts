/**
 * The bench harness's state directories. Until issue 18's seventeenth round every bench agent kept
 * its state in one fixed directory that grew with every run, and the memory figures carried what
 * earlier runs had left there. forkWorker runs the built agent-process (dist/), so this test does.
 */
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

type Harness = typeof import('../../bench/harness.js');
const harness = (await import(new URL('../../dist/bench/harness.js', import.meta.url).href)) as Harness;

const agentDirs = () => new Set(readdirSync(tmpdir()).filter((name) => name.startsWith('greenlight-bench-agent-')));

describe('forkWorker', () => {
  it('gives an agent worker an empty state directory of its own and removes it when the worker exits', async () => {
    const before = agentDirs();
    // Closed ports probed once an hour: the agent starts and keeps its state, nothing else.
    const worker = harness.forkWorker(['--mode', 'agent', '--series', '2', '--blue', 'http://127.0.0.1:1', '--green', 'http://127.0.0.1:2', '--every', '1h']);
    try {
      const created = [...agentDirs()].filter((name) => !before.has(name));
      expect(created).toHaveLength(1);
      const dir = join(tmpdir(), created[0]!);
      await worker.call({ cmd: 'start' });
      expect(readdirSync(dir)).toContain('greenlight.db');

      const exited = new Promise((resolve) => worker.child.once('exit', resolve));
      await worker.stop();
      await exited;
      expect(existsSync(dir)).toBe(false);
    } finally {
      await worker.stop();
    }
  }, 30_000);
});

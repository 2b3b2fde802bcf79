/**
 * The agent enforces journal retention (agent/events/journal-retention.ts) from its start: a journal
 * left full of expired events is pruned in slices, and new ids go on after the pruned ones.
 */
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { Store } from '../../../agent/events/store.js';
import { pairConfig, startAgent, useSimulatorPair, waitUntil } from '../../helpers/agent-harness.js';
import { tempDir } from '../../helpers/tools.js';

describe('journal retention in the agent', () => {
  const pair = useSimulatorPair();

  it('prunes expired events at start, in slices, and goes on numbering after them', async () => {
    const dataDir = tempDir('greenlight-data-');
    const old = Store.open(dataDir);
    const time = new Date(Date.now() - 40 * 86_400_000).toISOString();
    const batch: GreenlightEvent[] = [];
    for (let id = 1; id <= 45_000; id++)
      batch.push({
        id,
        time,
        type: 'agent.stopping',
        severity: 'info',
        env: null,
        probe: null,
        rule: null,
        message: 'old',
        data: { signal: null, uptimeSeconds: 1 },
      });
    old.appendEvents(batch);
    old.close();

    const config = parseAgentConfig(
      pairConfig(pair.blue.url, pair.green.url, { extra: 'journal:\n  retention: { maxAge: 30d, every: 1h }\n' }).replace(
        /^dataDir: .*$/m,
        `dataDir: ${dataDir}`,
      ),
    );
    const { agent, events } = await startAgent(config);
    try {
      expect(events[0]).toMatchObject({ type: 'agent.started', id: 45_001 });
      const base = `http://127.0.0.1:${agent.address!.port}`;
      const first = async () => ((await (await fetch(`${base}/api/v1/events?since=0&limit=1`)).json()) as { events: GreenlightEvent[] }).events[0]?.id;
      await waitUntil(async () => (await first()) === 45_001, 'the expired events to be pruned');
    } finally {
      await agent.close();
    }
    const reopened = Store.open(dataDir);
    expect(reopened.lastEventId()).toBe(events.at(-1)!.id);
    reopened.close();
  });
});

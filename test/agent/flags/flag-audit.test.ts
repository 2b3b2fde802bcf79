/**
 * The flag audit trail in the state database: each change appends its entries to a table of its
 * own (flag_audit) instead of rewriting a snapshot that holds the whole trail, the trail stays
 * bounded, and a restart reads it back — refused attempts on a locked flag included.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../agent/reload/agent-config.js';
import { Store } from '../../../agent/events/store.js';
import { startAgent, useSimulatorPair } from '../../helpers/agent-harness.js';
import { tempDir } from '../../helpers/tools.js';

const ADMIN = 'admin-token-audit-0123';

describe('the flag audit trail', () => {
  const pair = useSimulatorPair();

  const boot = (dataDir: string) =>
    startAgent(
      parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 1s, timeout: 500ms, jitter: 0 }
api: { adminToken: ${ADMIN} }
probes:
  - { name: health, path: /api/health }
`),
    );

  const put = (base: string, set: Record<string, unknown>, reason: string) =>
    fetch(`${base}/api/v1/flags`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ set, reason, env: 'blue' }),
    });

  it('appends each change to its own table instead of rewriting the whole trail (regression: a 1,000-entry snapshot per change)', async () => {
    const dataDir = tempDir('greenlight-audit-');
    const { agent } = await boot(dataDir);
    const base = `http://127.0.0.1:${agent.address!.port}`;
    for (let i = 0; i < 30; i++) expect((await put(base, { READ_ONLY_MODE: i % 2 === 0 }, `change ${i}`)).status).toBe(200);
    expect((await put(base, { ALPHASTACK_PROTECTION: false }, 'an attempt')).status).toBe(409);
    await agent.close();

    const db = new Database(join(dataDir, 'greenlight.db'), { readonly: true });
    try {
      const flags = db.prepare("SELECT value FROM state WHERE key = 'flags'").get() as { value: string };
      // The snapshot holds the values and versions only: its size does not grow with the trail.
      expect(JSON.parse(flags.value)).not.toHaveProperty('audit');
      expect(flags.value.length).toBeLessThan(1_000);
      const rows = db.prepare('SELECT * FROM flag_audit ORDER BY id').all() as { reason: string; outcome: string; flag: string }[];
      expect(rows).toHaveLength(31);
      expect(rows.at(-1)).toMatchObject({ reason: 'an attempt', outcome: 'rejected', flag: 'ALPHASTACK_PROTECTION' });
    } finally {
      db.close();
    }
  });

  it('reads the trail back after a restart, a refused attempt with nothing after it included (regression: lost unless a change followed)', async () => {
    const dataDir = tempDir('greenlight-audit-');
    const first = await boot(dataDir);
    const base = `http://127.0.0.1:${first.agent.address!.port}`;
    expect((await put(base, { READ_ONLY_MODE: true }, 'maintenance')).status).toBe(200);
    expect((await put(base, { ALPHASTACK_PROTECTION: false }, 'last word')).status).toBe(409);
    await first.agent.close();

    const second = await boot(dataDir);
    try {
      const answer = (await (await fetch(`http://127.0.0.1:${second.agent.address!.port}/api/v1/flags`)).json()) as {
        audit: { reason: string; outcome: string }[];
        environments: { blue: Record<string, boolean> };
      };
      expect(answer.environments.blue.READ_ONLY_MODE).toBe(true);
      expect(answer.audit.map((entry) => [entry.reason, entry.outcome])).toEqual([
        ['maintenance', 'changed'],
        ['last word', 'rejected'],
      ]);
    } finally {
      await second.agent.close();
    }
  });

  it('takes over the trail of a database written before the table existed', async () => {
    const dataDir = tempDir('greenlight-audit-');
    const legacy = Store.open(dataDir);
    const entry = {
      time: '2026-03-14T12:00:00.000Z',
      actor: 'api:admin',
      reason: 'from before',
      env: 'blue',
      flag: 'READ_ONLY_MODE',
      old: false,
      new: true,
      outcome: 'changed',
    };
    legacy.set('flags', { values: { blue: { READ_ONLY_MODE: true } }, versions: { blue: 1 }, audit: [entry] });
    legacy.close();
    const { agent } = await boot(dataDir);
    try {
      const answer = (await (await fetch(`http://127.0.0.1:${agent.address!.port}/api/v1/flags`)).json()) as {
        audit: unknown[];
        environments: { blue: Record<string, boolean> };
      };
      expect(answer.environments.blue.READ_ONLY_MODE).toBe(true);
      expect(answer.audit).toEqual([entry]);
    } finally {
      await agent.close();
    }
    const reopened = Store.open(dataDir);
    expect(reopened.flagAudit(10)).toEqual([entry]);
    expect(reopened.get('flags')).not.toHaveProperty('audit');
    reopened.close();
  });

  it('keeps the table bounded, the newest entries last', () => {
    const dataDir = tempDir('greenlight-audit-');
    const store = Store.open(dataDir);
    try {
      const entry = (i: number) => ({
        time: new Date(i * 1_000).toISOString(),
        actor: 'api:admin',
        reason: `change ${i}`,
        env: 'blue',
        flag: 'READ_ONLY_MODE',
        old: false,
        new: true,
        outcome: 'changed' as const,
      });
      for (let i = 0; i < 25; i++) store.saveFlags({ values: {}, versions: {} }, [entry(i), entry(i + 1_000)], 10);
      const audit = store.flagAudit(10);
      expect(audit).toHaveLength(10);
      expect(audit.at(-1)!.reason).toBe('change 1024');
      expect(audit.map((e) => e.reason).slice(0, 2)).toEqual(['change 20', 'change 1020']);
    } finally {
      store.close();
    }
  });
});

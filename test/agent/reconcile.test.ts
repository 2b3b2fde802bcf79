/**
 * Actions a crash left in flight (recorded as started in the action journal, never finished) are
 * settled when the agent starts again: re-checked against the world, then completed or reported
 * failed, never repeated blindly. The store is seeded as a SIGKILL mid-action leaves it; the
 * nginx adapter reads its real upstream file (its reload command only counts how often it ran).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../agent/events/events.js';
import { Store, type ActionRecord } from '../../agent/events/store.js';
import { summarize } from '../../agent/cli/commands/promote.js';
import { startAgent, useSimulatorPair, waitUntil } from '../helpers/agent-harness.js';
import { tempDir } from '../helpers/tools.js';

/** A rule that rolls back once blue's universe probe fails three times in a row, and that probe. */
const BLUE_DOWN_ROLLS_BACK = `actions:
  rollback: { type: rollback }
rules:
  - name: blue-down
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback]
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`;

describe('reconciling actions interrupted by a crash', () => {
  const pair = useSimulatorPair();

  /** The head of an agent's config on the file's simulator pair whose switches go to a traffic webhook. */
  function webhookAgent(dataDir: string, webhookUrl: string): string {
    return `listen: 127.0.0.1:0
dataDir: ${dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 100ms, timeout: 2s, jitter: 0 }
traffic: { type: webhook, url: "${webhookUrl}/switch" }
`;
  }

  /** A store as a crash left it: `interrupted` started and unfinished; `sent`, the switches written down as sent to the adapter (none kept: an older greenlight's store). */
  function seed(dataDir: string, interrupted: { action: string; type: string }, sent?: Record<string, number>): void {
    const store = Store.open(dataDir);
    const startedAt = Date.now() - 5_000;
    store.set('activeEnvironment', 'blue');
    if (sent) store.set('switchesSent', sent);
    store.set('incidents', {
      'blue-down': { incident: 'blue-down#1', env: 'blue', severity: 'critical', message: 'blue is down', actor: 'rule:blue-down', startedAt },
    });
    const record: ActionRecord = {
      incident: 'blue-down#1',
      action: interrupted.action,
      type: interrupted.type,
      state: 'started',
      context: { rule: 'blue-down', incident: 'blue-down#1', env: 'blue', severity: 'critical', message: 'blue is down', actor: 'rule:blue-down', startedAt },
      startedAt,
    };
    store.recordAction(record);
    store.close();
  }

  async function boot(dataDir: string, upstream: string, marker: string, extra = ''): Promise<{ agent: Agent; events: GreenlightEvent[] }> {
    const config = parseAgentConfig(`listen: 127.0.0.1:0
dataDir: ${dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 100ms, timeout: 2s, jitter: 0 }
traffic:
  type: nginx
  upstreamFile: ${upstream}
  servers: { blue: "${new URL(pair.blue.url).host}", green: "${new URL(pair.green.url).host}" }
  testCommand: [sh, -c, "true"]
  reloadCommand: [sh, -c, "echo reload >> ${marker}"]
actions:
  rollback: { type: rollback }
  hook: { type: command, command: [sh, -c, "echo hook >> ${marker}"] }
rules:
  - name: blue-down
    severity: critical
    env: blue
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback, hook]
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
${extra}`);
    const { agent, events } = await startAgent(config);
    return { agent, events };
  }

  function upstreamTo(file: string, host: string): void {
    writeFileSync(file, `upstream alphastack {\n    server ${host};\n}\n`);
  }

  function runs(marker: string, what: string): number {
    try {
      return readFileSync(marker, 'utf8')
        .split('\n')
        .filter((line) => line === what).length;
    } catch {
      return 0;
    }
  }

  it('records a switch that had landed in nginx before the crash, without switching again', async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const upstream = join(dataDir, 'upstream.conf');
    const marker = join(dataDir, 'marker');
    seed(dataDir, { action: 'rollback', type: 'rollback' });
    upstreamTo(upstream, new URL(pair.green.url).host);
    const { agent, events } = await boot(dataDir, upstream, marker);
    try {
      await waitUntil(() => events.some((e) => e.type === 'action.succeeded' && e.data.reconciled === true), 'the reconciled rollback');
      await agent.settled();
      expect(agent.activeEnvironment).toBe('green');
      expect(events.find((e) => e.type === 'traffic.switched')?.data).toMatchObject({ from: 'blue', to: 'green', adapter: 'nginx' });
      expect(events.find((e) => e.type === 'action.succeeded' && e.data.action === 'rollback')?.message).toContain('had landed');
      expect(runs(marker, 'reload')).toBe(0);
    } finally {
      await agent.close();
    }
    // And the next start finds nothing left to settle.
    const again = await boot(dataDir, upstream, marker);
    try {
      await waitUntil(() => again.agent.ready, 'readiness');
      await again.agent.settled();
      expect(again.events.filter((e) => e.type.startsWith('action.'))).toEqual([]);
      expect(again.agent.activeEnvironment).toBe('green');
    } finally {
      await again.agent.close();
    }
  });

  it('completes a switch that never reached nginx, judged as usual (once blue shows the fault again), exactly once', async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const upstream = join(dataDir, 'upstream.conf');
    const marker = join(dataDir, 'marker');
    seed(dataDir, { action: 'rollback', type: 'rollback' });
    upstreamTo(upstream, new URL(pair.blue.url).host);
    pair.blue.setFaults({ emptyUniverse: true });
    const { agent, events } = await boot(dataDir, upstream, marker);
    try {
      // Judged from what greenlight sees, never from memory: the windows start empty after the
      // restart, so the rollback is owed until blue fails three in a row again, then goes through.
      await waitUntil(() => events.some((e) => e.type === 'action.succeeded' && e.data.action === 'rollback'), 'the reconciled rollback');
      await agent.settled();
      expect(agent.activeEnvironment).toBe('green');
      const reconciled = events.find(
        (e) => e.type.startsWith('action.') && e.type !== 'action.started' && (e.data as Record<string, unknown>).reconciled === true,
      )!;
      expect(reconciled).toBeDefined();
      const succeeded = events.find((e) => e.type === 'action.succeeded' && e.data.action === 'rollback')!;
      expect(succeeded.message).toMatch(/switched blue → green/);
      if (reconciled.type === 'action.skipped') expect(succeeded.data).toMatchObject({ retryOf: 'blue-down#1' });
      expect(events.filter((e) => e.type === 'traffic.switched')).toHaveLength(1);
      expect(readFileSync(upstream, 'utf8')).toContain(`server ${new URL(pair.green.url).host};`);
      expect(runs(marker, 'reload')).toBe(1);
    } finally {
      await agent.close();
      pair.blue.resetFaults();
    }
  });

  it('reports an interrupted command failed and does not run it again', async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const upstream = join(dataDir, 'upstream.conf');
    const marker = join(dataDir, 'marker');
    seed(dataDir, { action: 'hook', type: 'command' });
    upstreamTo(upstream, new URL(pair.blue.url).host);
    const { agent, events } = await boot(dataDir, upstream, marker);
    try {
      await waitUntil(() => events.some((e) => e.type === 'action.failed'), 'the reconciled command');
      await agent.settled();
      const failed = events.find((e) => e.type === 'action.failed')!;
      expect(failed.data).toMatchObject({ action: 'hook', reconciled: true });
      expect(failed.message).toContain('not repeated');
      expect(runs(marker, 'hook')).toBe(0);
      expect(agent.activeEnvironment).toBe('blue');
    } finally {
      await agent.close();
    }
  });

  it('a stop (SIGTERM) while the switch waits on a slow traffic webhook: the record stays open and the next start settles it (regression: recorded "traffic was not switched", then guarded the wrong environment)', async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    // A traffic webhook that takes 3 s to accept a switch: the stop comes while it is in flight.
    const webhook = await slowWebhook();
    const { switches } = webhook;
    const config = () => parseAgentConfig(`${webhookAgent(dataDir, webhook.url)}${BLUE_DOWN_ROLLS_BACK}`);
    try {
      const first = await startAgent(config());
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => switches.length > 0, 'the switch request to reach the webhook');
      await first.agent.close('SIGTERM');
      const failed = first.events.find((e) => e.type === 'action.failed')!;
      expect(failed.message).toContain('interrupted by the stop');
      expect(failed.message).toContain('whether traffic moved to green is unknown');
      expect(failed.message).not.toContain('was not switched');
      const store = Store.open(dataDir);
      expect(store.unfinishedActions().map((record) => record.action)).toEqual(['rollback']);
      // Written down before the webhook was called: the next start knows the request may have landed.
      expect(Object.keys(store.get<Record<string, number>>('switchesSent')!)).toEqual([failed.data.incident]);
      store.close();

      // The next start settles it as it settles a crash's: this adapter cannot say where traffic goes.
      pair.blue.resetFaults();
      const second = await startAgent(config());
      try {
        await waitUntil(() => second.events.some((e) => e.type === 'action.failed' && e.data.reconciled === true), 'the reconciled rollback');
        expect(second.events.find((e) => e.type === 'action.failed' && e.data.reconciled === true)!.message).toContain('cannot report where traffic goes');
        expect(switches).toHaveLength(1);
      } finally {
        await second.agent.close();
      }
    } finally {
      pair.blue.resetFaults();
      await webhook.close();
    }
  });

  it('a crash before the switch reached the traffic webhook (none written down as sent): the next start judges the rollback again and switches once (regression: "cannot report where traffic goes", left to a person)', async () => {
    const webhook = await slowWebhook();
    pair.blue.setFaults({ emptyUniverse: true });
    try {
      // Killed while it judged (the fresh verification of green): other switches were written down, not this one.
      const notSent = tempDir('greenlight-reconcile-');
      seed(notSent, { action: 'rollback', type: 'rollback' }, { 'blue-down#0': Date.now() - 60_000 });
      const { agent, events } = await startAgent(parseAgentConfig(`${webhookAgent(notSent, webhook.url)}${BLUE_DOWN_ROLLS_BACK}`));
      try {
        await waitUntil(() => events.some((e) => e.type === 'action.succeeded' && e.data.action === 'rollback'), 'the rollback judged again', 20_000);
        await agent.settled();
        expect(agent.activeEnvironment).toBe('green');
        expect(webhook.switches).toHaveLength(1);
        expect(events.some((e) => e.message.includes('cannot report where traffic goes'))).toBe(false);
      } finally {
        await agent.close();
      }

      // Written down as sent: it may have landed, and this adapter cannot tell, so a person is asked, as before.
      const sent = tempDir('greenlight-reconcile-');
      seed(sent, { action: 'rollback', type: 'rollback' }, { 'blue-down#1': Date.now() - 4_000 });
      const again = await startAgent(parseAgentConfig(`${webhookAgent(sent, webhook.url)}${BLUE_DOWN_ROLLS_BACK}`));
      try {
        await waitUntil(() => again.events.some((e) => e.type === 'action.failed' && e.data.reconciled === true), 'the reconciled rollback');
        expect(again.events.find((e) => e.type === 'action.failed' && e.data.reconciled === true)!.message).toContain('cannot report where traffic goes');
        expect(again.agent.activeEnvironment).toBe('blue');
        expect(webhook.switches).toHaveLength(1);
      } finally {
        await again.agent.close();
      }
    } finally {
      pair.blue.resetFaults();
      await webhook.close();
    }
  });

  it('a crash during the first rollback a new data dir ever makes: judged again (its first start wrote the key down, empty)', async () => {
    const webhook = await slowWebhook();
    const dataDir = tempDir('greenlight-reconcile-');
    const config = () => parseAgentConfig(`${webhookAgent(dataDir, webhook.url)}${BLUE_DOWN_ROLLS_BACK}`);
    try {
      const fresh = await startAgent(config());
      await fresh.agent.close();
      seed(dataDir, { action: 'rollback', type: 'rollback' });
      pair.blue.setFaults({ emptyUniverse: true });
      const { agent, events } = await startAgent(config());
      try {
        await waitUntil(() => events.some((e) => e.type === 'action.succeeded' && e.data.action === 'rollback'), 'the rollback judged again', 20_000);
        expect(webhook.switches).toHaveLength(1);
        expect(events.some((e) => e.message.includes('cannot report where traffic goes'))).toBe(false);
      } finally {
        await agent.close();
      }
    } finally {
      pair.blue.resetFaults();
      await webhook.close();
    }
  });

  it("a stop while a promotion's switch waits on a slow traffic webhook: journaled, and the next start says the state is unknown (regression: the promotion switch was in no journal; the agent came back guarding the old environment, silently)", async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const webhook = await slowWebhook();
    const { switches } = webhook;
    const config = () =>
      parseAgentConfig(`${webhookAgent(dataDir, webhook.url)}deployWindows: { enabled: false }
alerts: { receivers: [] }
probes:
  - { name: health, path: /api/health }
`);
    try {
      const first = await startAgent(config(), { ready: true });
      const run = first.agent.promotions.start({ to: 'green', emergency: true, reason: 'hotfix', kind: 'feature', deploy: false, actor: 'test' });
      await waitUntil(() => switches.length > 0, 'the switch request to reach the webhook', 20_000);
      await first.agent.close('SIGTERM');
      const result = await run.done;
      expect(result).toMatchObject({ ok: false, switched: false, interrupted: true, failedStep: 'switch' });
      expect(summarize(result)).toContain('whether green took traffic is unknown');
      expect(result.reason).toContain('the agent stopped during the switch');
      const store = Store.open(dataDir);
      expect(store.unfinishedActions().map((record) => [record.action, record.incident])).toEqual([['promotion-switch', expect.stringMatching(/^promote:/)]]);
      store.close();

      const second = await startAgent(config());
      try {
        await waitUntil(() => second.events.some((e) => e.type === 'action.failed' && e.data.reconciled === true), 'the reconciled switch');
        const settled = second.events.find((e) => e.type === 'action.failed' && e.data.reconciled === true)!;
        expect(settled.data).toMatchObject({ action: 'promotion-switch' });
        expect(settled.message).toContain('cannot report where traffic goes');
        expect(switches).toHaveLength(1);
      } finally {
        await second.agent.close();
      }
    } finally {
      await webhook.close();
    }
  });

  it('runs the steps after a switch it finds landed in nginx (regression: the crash came before them, and the adopted switch never purged the CDN)', async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const upstream = join(dataDir, 'upstream.conf');
    const marker = join(dataDir, 'marker');
    seed(dataDir, { action: 'rollback', type: 'rollback' });
    upstreamTo(upstream, new URL(pair.green.url).host);
    const steps = `switching:
  steps:
    - { step: cdn, purge: { type: command, command: [sh, -c, "echo purge-$GREENLIGHT_TO >> ${marker}"] } }
`;
    const { agent, events } = await boot(dataDir, upstream, marker, steps);
    try {
      await waitUntil(() => events.some((e) => e.type === 'action.succeeded' && e.data.reconciled === true), 'the reconciled rollback');
      await waitUntil(() => events.some((e) => e.type === 'switch.step_succeeded'), 'the purge after the adopted switch');
      await agent.settled();
      expect(agent.activeEnvironment).toBe('green');
      expect(events.find((e) => e.type === 'switch.step_succeeded')?.data).toMatchObject({ step: 'cdn', from: 'blue', to: 'green', incident: 'blue-down#1' });
      expect(runs(marker, 'purge-green')).toBe(1);
      expect(runs(marker, 'reload')).toBe(0);
    } finally {
      await agent.close();
    }
  });

  /** A traffic webhook that accepts every switch at once, and records each one. */
  async function quickWebhook(): Promise<{ url: string; switches: string[]; close(): Promise<void> }> {
    const switches: string[] = [];
    const server = createServer((req, res) => {
      switches.push(req.url ?? '');
      req.resume().on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      switches,
      close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    };
  }

  it("a stop while a promotion verifies the environment it just switched to: the switch stays open in the journal, and the next start pages when that environment fails its probes (regression: recorded as done, the verification's revert gone with the process, a broken release left live without a word)", async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const webhook = await quickWebhook();
    // Slow verification rounds: the stop lands between the switch and the end of the verification.
    const config = () =>
      parseAgentConfig(`${webhookAgent(dataDir, webhook.url)}deployWindows: { enabled: false }
promote: { healthyRounds: 1, roundInterval: 10s, verifyRounds: 3, load: { enabled: false }, requireProtection: false }
alerts: { receivers: [] }
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`);
    try {
      const first = await startAgent(config(), { ready: true });
      const run = first.agent.promotions.start({ to: 'green', emergency: false, reason: null, kind: 'feature', deploy: false, actor: 'test' });
      await waitUntil(() => first.events.some((e) => e.type === 'promote.step' && e.data.step === 'switch' && e.data.ok === true), 'the switch', 20_000);
      await first.agent.close('SIGTERM');
      const result = await run.done;
      expect(result).toMatchObject({ ok: false, switched: true, live: 'green', failedStep: 'verify' });
      const store = Store.open(dataDir);
      expect(store.unfinishedActions().map((record) => [record.action, record.incident])).toEqual([['promotion-switch', `promote:${run.id}`]]);
      store.close();

      // The release turns out broken: the next start pages rather than calling the switch done.
      pair.green.setFaults({ emptyUniverse: true });
      const second = await startAgent(config());
      try {
        await waitUntil(
          () => second.events.some((e) => (e.type === 'action.succeeded' || e.type === 'action.failed') && e.data.reconciled === true),
          'the reconciled switch',
        );
        const settled = second.events.find((e) => (e.type === 'action.succeeded' || e.type === 'action.failed') && e.data.reconciled === true)!;
        expect(settled).toMatchObject({ type: 'action.failed', data: { action: 'promotion-switch' } });
        expect(settled.message).toContain('its verification had not concluded when greenlight stopped, and green fails its probes now (universe failing)');
        const page = second.agent.alerts.firing().find((notice) => notice.rule === 'promote-interrupted');
        expect(page).toMatchObject({ severity: 'critical', env: 'green', labels: { judgement: 'unverified', from: 'blue', to: 'green' } });
        // Nothing switched back by itself.
        expect(second.agent.activeEnvironment).toBe('green');
        expect(webhook.switches).toHaveLength(1);
      } finally {
        await second.agent.close();
      }
      // Settled once: the start after finds nothing left.
      const store2 = Store.open(dataDir);
      expect(store2.unfinishedActions()).toEqual([]);
      store2.close();
    } finally {
      pair.green.resetFaults();
      await webhook.close();
    }
  });

  it("a promotion's switch that a crash left open, onto an environment that passes its probes: settled as done, saying its verification had not concluded, no page", async () => {
    const dataDir = tempDir('greenlight-reconcile-');
    const webhook = await quickWebhook();
    const store = Store.open(dataDir);
    const startedAt = Date.now() - 5_000;
    const context = {
      rule: null,
      incident: 'promote:20261207T000000-1',
      env: 'blue',
      severity: 'info' as const,
      message: 'promotion 20261207T000000-1 by test',
      actor: 'test',
      startedAt,
    };
    store.set('activeEnvironment', 'green');
    store.recordAction({ incident: context.incident, action: 'promotion-switch', type: 'promotion', state: 'started', context, startedAt });
    store.close();
    try {
      const { agent, events } = await startAgent(
        parseAgentConfig(`${webhookAgent(dataDir, webhook.url)}alerts: { receivers: [] }
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`),
      );
      try {
        await waitUntil(
          () => events.some((e) => (e.type === 'action.succeeded' || e.type === 'action.failed') && e.data.reconciled === true),
          'the reconciled switch',
        );
        const settled = events.find((e) => (e.type === 'action.succeeded' || e.type === 'action.failed') && e.data.reconciled === true)!;
        expect(settled.type).toBe('action.succeeded');
        expect(settled.message).toContain('recorded before the restart; its verification had not concluded, and green passes its probes now');
        expect(agent.alerts.firing().filter((notice) => notice.rule === 'promote-interrupted')).toEqual([]);
        expect(webhook.switches).toEqual([]);
      } finally {
        await agent.close();
      }
    } finally {
      await webhook.close();
    }
  });
});

/** A traffic webhook that accepts every switch (200) only after 3 s, and records each one. */
async function slowWebhook(): Promise<{ url: string; switches: string[]; close(): Promise<void> }> {
  const switches: string[] = [];
  const server = createServer((req, res) => {
    switches.push(req.url ?? '');
    setTimeout(() => res.writeHead(200).end(), 3_000);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    switches,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

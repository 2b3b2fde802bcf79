/**
 * Hot reload (Agent.reload, SIGHUP, POST /api/v1/reload): a valid file swaps probes and rules
 * while the series of unchanged probes keep their windows and counts; an invalid one is refused
 * with config.reload_failed naming the problem, and the running config goes on.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../../agent/agent.js';
import { loadAgentConfig } from '../../../agent/reload/agent-config.js';
import type { GreenlightEvent } from '../../../agent/events/events.js';
import { useSimulatorPair, startAgent, waitUntil } from '../../helpers/agent-harness.js';
import { tempDir, writeTempFile } from '../../helpers/tools.js';
import { startAgentProcess, stopProcess } from '../../helpers/cli.js';

const ADMIN = 'admin-token-reload-0001';
const ROLLBACK = 'rollback-token-reload-0001';

describe('hot reload', () => {
  const pair = useSimulatorPair();

  function configText(options: { listen?: string; dataDir: string; probes: string; rules: string }): string {
    return `listen: ${options.listen ?? '127.0.0.1:0'}
dataDir: ${options.dataDir}
environments: { blue: { url: ${pair.blue.url} }, green: { url: ${pair.green.url} } }
probeDefaults: { every: 50ms, timeout: 2s, jitter: 0 }
api: { adminToken: ${ADMIN}, rollbackToken: ${ROLLBACK} }
actions:
  page: { type: alert }
rules:
${options.rules}
probes:
${options.probes}
`;
  }

  const HEALTH = '  - { name: health, path: /api/health }';
  const UNIVERSE = '  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }';
  const POSITIONS = '  - { name: positions, path: /api/portfolio/positions }';
  const rule = (name: string, threshold: number) => `  - name: ${name}
    severity: warning
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: ${threshold} } ] }
    actions: [page]`;

  async function boot(file: string) {
    const config = await loadAgentConfig(file, {});
    return startAgent(config, { reloadConfig: () => loadAgentConfig(file, {}), configSource: file, ready: true });
  }

  const series = (agent: Agent, key: string) => agent.state().series.find((s) => `${s.probe}@${s.env}` === key);

  it('swaps probes and rules, keeping the windows of the probes that did not change', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile(
      'reload.yaml',
      configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: [rule('universe-3', 3), rule('universe-5', 5)].join('\n') }),
    );
    const { agent, events } = await boot(file);
    try {
      const healthBefore = agent.state().series.find((s) => s.probe === 'health' && s.env === 'blue')!;
      await waitUntil(() => series(agent, 'health@blue')!.consecutiveSuccesses >= 5, 'a few health probes');
      const keptCount = series(agent, 'health@blue')!.consecutiveSuccesses;
      expect(healthBefore).toBeDefined();

      // universe changes its expectations, positions is new; universe-3 stays, universe-5 changes, universe-9 is new.
      writeFileSync(
        file,
        configText({
          dataDir,
          probes: [HEALTH, UNIVERSE.replace('/api/alphastack/universe,', '/api/alphastack/universe, timeout: 400ms,'), POSITIONS].join('\n'),
          rules: [rule('universe-3', 3), rule('universe-5', 6), rule('universe-9', 9)].join('\n'),
        }),
      );
      const result = await agent.reload('test');
      expect(result).toMatchObject({
        ok: true,
        probes: {
          kept: ['health@blue', 'health@green'],
          changed: ['universe@blue', 'universe@green'],
          added: ['positions@blue', 'positions@green'],
          removed: [],
        },
        rules: { added: ['universe-9'], changed: ['universe-5'], removed: [] },
      });
      // The kept series goes on counting where it was; the changed one starts afresh.
      expect(series(agent, 'health@blue')!.consecutiveSuccesses).toBeGreaterThanOrEqual(keptCount);
      expect(series(agent, 'universe@blue')!.consecutiveSuccesses).toBeLessThan(keptCount);
      await waitUntil(() => (series(agent, 'positions@green')?.consecutiveSuccesses ?? 0) > 0, 'the new probe to run');
      expect(
        agent
          .state()
          .rules.map((r) => r.rule)
          .sort(),
      ).toEqual(['universe-3', 'universe-5', 'universe-9']);
      const reloaded = events.find((e) => e.type === 'config.reloaded')!;
      expect(reloaded.message).toContain('2 probes added, 2 changed, 0 removed, 2 kept');

      // Dropping a probe stops it and takes its series out of state and metrics.
      writeFileSync(file, configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }));
      const second = await agent.reload('test');
      expect(second).toMatchObject({ ok: true, probes: { removed: ['positions@blue', 'positions@green'] }, rules: { removed: ['universe-5', 'universe-9'] } });
      expect(series(agent, 'positions@blue')).toBeUndefined();
      expect((await agent.metrics.render(false)).body).not.toContain('probe="positions"');
    } finally {
      await agent.close();
    }
  });

  it('a changed series that was down and still is announces nothing new; its recovery is one probe.up over the whole outage (regression: a second probe.down with no probe.up between)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const text = configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) });
    const file = writeTempFile('reload.yaml', text);
    const { agent, events } = await boot(file);
    const changes = () =>
      events.filter((e) => (e.type === 'probe.down' || e.type === 'probe.up') && e.probe === 'universe' && e.env === 'blue').map((e) => e.type);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => changes().length === 1, 'universe on blue to go down');
      const downAt = Date.parse(events.find((e) => e.type === 'probe.down' && e.probe === 'universe' && e.env === 'blue')!.time);
      writeFileSync(file, text.replace(UNIVERSE, UNIVERSE.replace('path: /api/alphastack/universe,', 'path: /api/alphastack/universe, timeout: 1500ms,')));
      expect(await agent.reload('test')).toMatchObject({ ok: true, probes: { changed: expect.arrayContaining(['universe@blue']) } });
      await waitUntil(() => (series(agent, 'universe@blue')?.consecutiveFailures ?? 0) >= 3, 'the changed series to fail a few times');
      expect(changes()).toEqual(['probe.down']);
      pair.blue.resetFaults();
      await waitUntil(() => changes().length === 2, 'universe on blue to recover');
      expect(changes()).toEqual(['probe.down', 'probe.up']);
      const up = events.find((e) => e.type === 'probe.up' && e.probe === 'universe' && e.env === 'blue')!;
      expect((up.data as { downForMs: number }).downForMs).toBeGreaterThanOrEqual(Date.parse(up.time) - downAt - 1_000);
    } finally {
      pair.blue.resetFaults();
      await agent.close();
    }
  });

  it('a reload that retires the stream token closes the streams opened with it; those opened with a token still taken stay (regression: a leaked token could not be revoked by rotating it)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const text = configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) });
    const withStream = (token: string) => text.replace(`api: { adminToken: ${ADMIN}`, `api: { streamToken: ${token}, adminToken: ${ADMIN}`);
    const file = writeTempFile('reload.yaml', withStream('stream-token-old-0123456789'));
    const { agent } = await boot(file);
    try {
      const open = (token: string) =>
        new Promise<{ socket: WebSocket; messages: string[]; closed: Promise<[number, string]> }>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${agent.address!.port}/api/v1/stream?type=config`, { headers: { authorization: `Bearer ${token}` } });
          const messages: string[] = [];
          socket.on('message', (data) => messages.push(String(data)));
          const closed = new Promise<[number, string]>((done) => socket.once('close', (code, reason) => done([code, String(reason)])));
          socket.once('open', () => resolve({ socket, messages, closed }));
          socket.once('error', reject);
        });
      const old = await open('stream-token-old-0123456789');
      const admin = await open(ADMIN);
      writeFileSync(file, withStream('stream-token-new-0123456789'));
      expect(await agent.reload('test')).toMatchObject({ ok: true });
      const [code, reason] = await old.closed;
      expect(code).toBe(1008);
      expect(reason).toContain('no longer accepted');
      // Closed before it was sent the reload's own event.
      expect(old.messages.filter((m) => m.includes('config.reloaded'))).toEqual([]);
      await waitUntil(() => admin.messages.some((m) => m.includes('config.reloaded')), 'the reload event on the stream opened with the admin token');
      expect(admin.socket.readyState).toBe(WebSocket.OPEN);
      admin.socket.close();
    } finally {
      await agent.close();
    }
  });

  it('lists what needs a restart against what the process runs with, and says that activeEnvironment moves no traffic (regression: both were wrong or silent)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const text = configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) });
    const file = writeTempFile('reload.yaml', text);
    const { agent, events } = await boot(file);
    try {
      // Joining a cluster too (regression: it was taken with ok and nothing said, and the agent went on alone).
      const cluster = 'cluster:\n  databaseUrl: postgres://gl:PgPassw0rdSecretVVV@127.0.0.1:1/gl\n  nodeName: node-a\n';
      writeFileSync(
        file,
        text.replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:9').replace('environments:', `activeEnvironment: green\n${cluster}environments:`),
      );
      const first = await agent.reload('test');
      expect(JSON.stringify(first)).not.toContain('PgPassw0rdSecretVVV');
      expect(first).toMatchObject({
        ok: true,
        needsRestart: ['listen', 'cluster'],
        notApplied: [expect.stringContaining('activeEnvironment (green) names the live environment of a first start only')],
      });
      expect(agent.activeEnvironment).toBe('blue');
      expect(events.find((e) => e.type === 'config.reloaded')!.message).toContain('move it with greenlight promote or greenlight rollback');
      // Back to the address it runs on: nothing waits for a restart any more.
      writeFileSync(file, text);
      expect(await agent.reload('test')).toMatchObject({ ok: true, needsRestart: [] });
    } finally {
      await agent.close();
    }
  });

  it('warns when the new file turns off what ran (a typo leaves the traffic webhook variable unset), as a start does (regression: info only; rollbacks then moved nothing)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const env = { TRAFFIC_WEBHOOK_URL: 'http://127.0.0.1:9/switch' };
    const text = configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }).replace(
      'actions:',
      'traffic: { type: webhook, url: "${TRAFFIC_WEBHOOK_URL}" }\nactions:',
    );
    const file = writeTempFile('reload.yaml', text);
    const { agent, events } = await startAgent(await loadAgentConfig(file, env), {
      reloadConfig: () => loadAgentConfig(file, env),
      configSource: file,
      ready: true,
    });
    try {
      expect(agent.state(false).traffic.adapter).toBe('webhook');
      writeFileSync(file, text.replace('${TRAFFIC_WEBHOOK_URL}', '${TRAFIC_WEBHOOK_URL}'));
      const result = await agent.reload('test');
      expect(result).toMatchObject({ ok: true, notices: [expect.stringContaining('is off because TRAFIC_WEBHOOK_URL is not set')] });
      const reloaded = events.find((e) => e.type === 'config.reloaded')!;
      expect(reloaded.severity).toBe('warning');
      expect(reloaded.message).toContain('NOTE: traffic (webhook) is off because TRAFIC_WEBHOOK_URL is not set');
      // The same file again: nothing new is off, nothing to warn of.
      expect(await agent.reload('test')).toMatchObject({ ok: true, notices: [] });
    } finally {
      await agent.close();
    }
  });

  it('refuses an invalid file with config.reload_failed naming the problem, and keeps running the old config', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile('reload.yaml', configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }));
    const { agent, events, base } = await boot(file);
    try {
      writeFileSync(
        file,
        configText({
          dataDir,
          probes: [HEALTH, UNIVERSE.replace('/api/alphastack/universe', '/api/alphastack/universe, every: soon')].join('\n'),
          rules: rule('universe-3', 3),
        }),
      );
      const result = await agent.reload('test');
      expect(result.ok).toBe(false);
      const failed = events.find((e) => e.type === 'config.reload_failed')!;
      expect(failed.severity).toBe('warning');
      expect(JSON.stringify(failed.data)).toMatch(/probes\[1\]\.every.*line \d+/);
      // The problem is in the message (what the log line says), not only in the data.
      expect(failed.message).toMatch(/refused, the running config stays: .* is invalid \(1 problem\): probes\[1\]\.every: .*\(line \d+\)$/);
      const before = series(agent, 'universe@blue')!.consecutiveSuccesses;
      await waitUntil(() => series(agent, 'universe@blue')!.consecutiveSuccesses > before, 'probing to go on');
      expect(agent.config.probes.map((p) => p.name)).toEqual(['health', 'universe']);

      // A rule naming an unknown fact is refused too (checked before anything changes).
      writeFileSync(
        file,
        configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3).replace('consecutiveFailures', 'consecutiveFailurez') }),
      );
      expect((await agent.reload('test')).ok).toBe(false);
      expect(agent.state().rules.map((r) => r.rule)).toEqual(['universe-3']);

      // Over HTTP: admin only; 422 with the problems while the file is bad, 200 once it is fixed.
      const post = (token?: string) => fetch(`${base}/api/v1/reload`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect((await post()).status).toBe(401);
      expect((await post(ROLLBACK)).status).toBe(403);
      const bad = await post(ADMIN);
      expect(bad.status).toBe(422);
      expect(((await bad.json()) as { issues: string[] }).issues.join('\n')).toContain('consecutiveFailurez');
      writeFileSync(file, configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 4) }));
      const good = await post(ADMIN);
      expect(good.status).toBe(200);
      expect(await good.json()).toMatchObject({
        ok: true,
        rules: { changed: ['universe-3'] },
        probes: { kept: ['health@blue', 'health@green', 'universe@blue', 'universe@green'] },
      });
      expect(events.filter((e) => e.type === 'config.reloaded').at(-1)!.data).toMatchObject({ trigger: 'api:admin' });
    } finally {
      await agent.close();
    }
  });

  it('resolves the incident of a firing rule the reload removes, as any resolution', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile(
      'reload.yaml',
      configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: [rule('universe-3', 3), rule('universe-5', 5)].join('\n') }),
    );
    const { agent, events } = await boot(file);
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => events.some((e) => e.type === 'rule.firing' && e.rule === 'universe-3'), 'universe-3 to fire');
      writeFileSync(file, configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-5', 5) }));
      expect(await agent.reload('test')).toMatchObject({ ok: true, rules: { removed: ['universe-3'] } });
      const resolved = events.find((e) => e.type === 'rule.resolved' && e.rule === 'universe-3')!;
      expect(resolved.message).toBe('universe-3 resolved: the rule was removed by a reload');
      expect(resolved.data).toMatchObject({ incident: 'universe-3#1' });
      expect(agent.state().rules.map((r) => r.rule)).toEqual(['universe-5']);
      expect((await agent.metrics.render(false)).body).not.toContain('rule="universe-3"');
    } finally {
      pair.blue.resetFaults();
      await agent.close();
    }
  });

  it('a pending rule the reload changes, whose new line does not hold, shows 0 in greenlight_rule_state (regression: the gauge stayed at 1, pending, for good)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const slow = (threshold: number) => `${rule('universe-slow', threshold)}\n    for: 1h`;
    const file = writeTempFile('reload.yaml', configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: slow(1) }));
    const { agent, events } = await boot(file);
    const gauge = async () => /greenlight_rule_state\{rule="universe-slow"\} (\d)/.exec((await agent.metrics.render(false)).body)?.[1];
    try {
      pair.blue.setFaults({ emptyUniverse: true });
      await waitUntil(() => events.some((e) => e.type === 'rule.pending' && e.rule === 'universe-slow'), 'universe-slow to go pending');
      expect(await gauge()).toBe('1');
      writeFileSync(file, configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: slow(1_000_000) }));
      expect(await agent.reload('test')).toMatchObject({ ok: true, rules: { changed: ['universe-slow'] } });
      // Still pending (its `for` counts on) until the next pass judges the new line.
      await waitUntil(() => events.some((e) => e.type === 'config.reloaded') && agent.state().rules[0]?.state === 'inactive', 'the new line to be judged');
      expect(await gauge()).toBe('0');
    } finally {
      pair.blue.resetFaults();
      await agent.close();
    }
  });

  it('lets the loop turn, timers and I/O, between reading the config and applying it (the two never make one long turn)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile('reload.yaml', configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }));
    const marks: string[] = [];
    const { agent } = await startAgent(await loadAgentConfig(file, {}), {
      configSource: file,
      ready: true,
      reloadConfig: async () => {
        const config = await loadAgentConfig(file, {});
        // Stand for what came in, and what fell due, while the file was read and checked.
        setImmediate(() => marks.push('the next turn'));
        setTimeout(() => marks.push('a timer that fell due'), 0);
        const until = performance.now() + 20;
        while (performance.now() < until);
        return config;
      },
    });
    try {
      agent.bus.subscribe((event) => {
        if (event.type === 'config.reloaded') marks.push('applied');
      });
      writeFileSync(file, configText({ dataDir, probes: [HEALTH, UNIVERSE, POSITIONS].join('\n'), rules: rule('universe-3', 3) }));
      expect(await agent.reload('test')).toMatchObject({ ok: true, probes: { added: ['positions@blue', 'positions@green'] } });
      expect(marks).toEqual(['the next turn', 'a timer that fell due', 'applied']);
    } finally {
      await agent.close();
    }
  });

  it('reloads on SIGHUP in a running greenlight process', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile(
      'reload.yaml',
      configText({ listen: '127.0.0.1:0', dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }),
    );
    const agent = await startAgentProcess(file);
    const { base, child } = agent;
    try {
      writeFileSync(file, configText({ listen: '127.0.0.1:0', dataDir, probes: [HEALTH, UNIVERSE, POSITIONS].join('\n'), rules: rule('universe-3', 3) }));
      child.kill('SIGHUP');
      await waitUntil(async () => {
        const { events } = (await (await fetch(`${base}/api/v1/events?type=config`)).json()) as { events: GreenlightEvent[] };
        return events.some((e) => e.type === 'config.reloaded' && e.data.trigger === 'SIGHUP');
      }, 'config.reloaded after SIGHUP');
      const state = (await (await fetch(`${base}/api/v1/state`)).json()) as { series: { probe: string }[] };
      expect(state.series.some((s) => s.probe === 'positions')).toBe(true);
      expect(child.exitCode).toBeNull();
    } finally {
      await stopProcess(child);
    }
  });

  it('refuses at once a config file replaced by a named pipe (regression: the reload waited for a writer for ever, holding the switch lock, and the process could not even stop)', async () => {
    const dataDir = tempDir('greenlight-reload-');
    const file = writeTempFile('reload.yaml', configText({ dataDir, probes: [HEALTH, UNIVERSE].join('\n'), rules: rule('universe-3', 3) }));
    const agent = await startAgentProcess(file);
    const { child } = agent;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      rmSync(file);
      execFileSync('mkfifo', [file]);
      child.kill('SIGHUP');
      let failed: GreenlightEvent | undefined;
      await waitUntil(async () => {
        failed = (await agent.events()).find((e) => e.type === 'config.reload_failed');
        return failed !== undefined;
      }, 'config.reload_failed for the named pipe');
      expect(failed!.message).toContain('it is a named pipe (FIFO), not a regular file');
      // Nothing waits behind it: the switch lock is free, and probing goes on with the last good config.
      const state = await agent.get<{ traffic: { lock: string | null }; series: { probe: string; env: string; consecutiveSuccesses: number }[] }>(
        '/api/v1/state',
      );
      expect(state.traffic.lock).toBeNull();
      const successes = (s: typeof state) => s.series.find((x) => x.probe === 'health' && x.env === 'blue')!.consecutiveSuccesses;
      await waitUntil(async () => successes(await agent.get('/api/v1/state')) > successes(state), 'probing to go on');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) await stopProcess(child, 'SIGKILL');
    }
  });
});

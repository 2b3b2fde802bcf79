import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/**
 * In a fresh process (the module cache is the process's), with the built agent: whether
 * node-postgres, pino-pretty, undici's index and its dispatcher are loaded after each step of
 * `script`, which calls `loaded(step)`.
 */
type Loaded = { pg: boolean; pretty: boolean; undiciIndex: boolean; undiciDispatcher: boolean };

function loadedAfter(script: string): Record<string, Loaded> {
  const run = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      const steps = {};
      const has = (name) => Object.keys(cache).some((path) => path.includes('/node_modules/' + name + '/'));
      const loaded = (step) => {
        steps[step] = {
          pg: has('pg'),
          pretty: has('pino-pretty'),
          undiciIndex: Object.keys(cache).some((path) => path.endsWith('/node_modules/undici/index.js')),
          undiciDispatcher: Object.keys(cache).some((path) => path.endsWith('/node_modules/undici/lib/dispatcher/agent.js')),
        };
      };
      ${script}
      process.stderr.write('STEPS' + JSON.stringify(steps));
      `,
    ],
    { cwd: DIST, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stderr.slice(run.stderr.indexOf('STEPS') + 5)) as Record<string, Loaded>;
}

describe('modules an agent alone does not need are loaded only when used', () => {
  it('undici: only its dispatcher, for the agent and the CLI, with the request API on it', () => {
    const steps = loadedAfter(`
      const { createServer } = await import('node:http');
      await import('${DIST}agent/cli/cli.js');
      await import('${DIST}agent/agent.js');
      const { Agent } = await import('${DIST}probes/undici-core.js');
      const server = createServer((req, res) => res.end('answered ' + req.url));
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const dispatcher = new Agent();
      const response = await dispatcher.request({ origin: 'http://127.0.0.1:' + server.address().port, path: '/x?y=1', method: 'GET' });
      const text = await response.body.text();
      await dispatcher.close();
      server.close();
      if (text !== 'answered /x?y=1') throw new Error('unexpected answer: ' + text);
      loaded('requested');
    `);
    expect(steps.requested).toEqual({ pg: false, pretty: false, undiciIndex: false, undiciDispatcher: true });
  });

  it('node-postgres: when a store for a cluster is made', () => {
    const steps = loadedAfter(`
      const { Agent } = await import('${DIST}agent/agent.js');
      const { PgStore } = await import('${DIST}agent/cluster/pg-store.js');
      loaded('agent');
      const store = PgStore.create('postgres://greenlight@127.0.0.1:1/greenlight', { application: 'test', onError: () => {}, lockHoldMs: 1000 });
      loaded('store');
      await store.close();
      void Agent;
    `);
    expect(steps.agent?.pg).toBe(false);
    expect(steps.store?.pg).toBe(true);
  });

  it('pino-pretty: when a logger writes for a terminal', () => {
    const steps = loadedAfter(`
      const { createLogger } = await import('${DIST}agent/telemetry/logger.js');
      createLogger({ level: 'info', format: 'json' }).info('a line');
      loaded('json');
      createLogger({ level: 'info', format: 'pretty' }).info('a pretty line');
      loaded('pretty');
    `);
    expect(steps.json?.pretty).toBe(false);
    expect(steps.pretty?.pretty).toBe(true);
  });
});

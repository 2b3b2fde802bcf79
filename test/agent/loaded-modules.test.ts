import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/**
 * In a fresh process (the module cache is the process's), with the built agent: whether
 * node-postgres and pino-pretty are loaded after each step of `script`, which calls `loaded(step)`.
 */
function loadedAfter(script: string): Record<string, { pg: boolean; pretty: boolean }> {
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
      const loaded = (step) => { steps[step] = { pg: has('pg'), pretty: has('pino-pretty') }; };
      ${script}
      process.stderr.write('STEPS' + JSON.stringify(steps));
      `,
    ],
    { cwd: DIST, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stderr.slice(run.stderr.indexOf('STEPS') + 5)) as Record<string, { pg: boolean; pretty: boolean }>;
}

describe('modules an agent alone does not need are loaded only when used', () => {
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

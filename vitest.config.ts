import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Most test files wait on real processes (agents, simulators, nginx, PostgreSQL), not on the
    // CPU. Vitest's default of one worker fewer than the cores ran them one at a time on a
    // 2-core machine such as CI's: 622 s, against 331 s with two workers.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/hostile/figures-setup.ts'],
    // Each test file runs in its own process: SoftHSM reads SOFTHSM2_CONF once per process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machines: integration files each start a server and a Python client.
    maxWorkers: 2,
    minWorkers: 1,
  },
});

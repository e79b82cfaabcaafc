import { defineConfig } from 'vitest/config';

// The Galera tier (`npm run test:galera`): one file at a time — they share the cluster, and some kill its nodes.
export default defineConfig({
  test: {
    include: ['test/galera/**/*.test.ts'],
    globalSetup: ['test/galera/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 200_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});

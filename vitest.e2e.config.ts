import { defineConfig } from 'vitest/config';

/**
 * Browser tests: the portal driven in Debian's headless Chromium through playwright-core. Separate from the main
 * suite because they need /usr/bin/chromium and are slower; run with `npx vitest run --config vitest.e2e.config.ts`
 * (TEST_DB=sqlite|mysql picks the database, like the main suite).
 */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One browser at a time on two cores.
    maxWorkers: 1,
    fileParallelism: false,
  },
});

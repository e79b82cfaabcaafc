import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

if (!fs.existsSync(new URL('./node_modules/@anthropic-ai/claude-code/package.json', import.meta.url))) {
  throw new Error('The client tier\'s packages are not installed: run `npm --prefix test/clients ci` first.');
}

/**
 * The client-compatibility tier (`npm run test:clients`): the clients' own packages come from test/clients/node_modules
 * (`npm --prefix test/clients ci`), which Node finds first from the test files here; vitest itself is the root's.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    fileParallelism: true,
  },
});

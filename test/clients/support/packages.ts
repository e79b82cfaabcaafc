import fs from 'node:fs';
import { expect } from 'vitest';

/**
 * The version of `name` in the tier's own lockfile: the tests must run the tier's clients, not the root's
 * devDependencies of the same name (an SDK exports the VERSION it was built as; compare the two).
 */
export function expectTierVersion(name: string, loadedVersion: string): void {
  const lock = JSON.parse(fs.readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
  expect(loadedVersion, `${name} is loaded from test/clients/node_modules`).toBe(lock.packages[`node_modules/${name}`].version);
}

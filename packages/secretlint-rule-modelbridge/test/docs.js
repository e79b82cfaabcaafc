/** Reads the fenced code blocks of "Finding leaked ModelBridge secrets" in the app's docs/security.md. */
import fs from 'node:fs';

export const SECURITY_DOC = new URL('../../../docs/security.md', import.meta.url);

/** The code blocks of that section with the given info string (`json`, `toml`, `yaml`), in order. */
export function documentedBlocks(/** @type {string} */ language) {
  const doc = fs.readFileSync(SECURITY_DOC, 'utf8');
  const start = doc.indexOf('\n## Finding leaked ModelBridge secrets\n');
  if (start < 0) throw new Error('docs/security.md has no section "Finding leaked ModelBridge secrets"');
  const next = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  return [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === language).map((m) => /** @type {string} */ (m[2]));
}

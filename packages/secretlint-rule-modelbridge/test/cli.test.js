import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSecret, lookAlikes } from './app-secrets.js';
import { documentedBlocks } from './docs.js';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const SECRETLINT = path.join(PACKAGE_DIR, 'node_modules', '.bin', 'secretlint');

/**
 * The secretlint CLI, as a project that installed this rule runs it: the `.secretlintrc.json` of docs/security.md in
 * the project, the rule found by its package name. secretlint resolves rule names from its own install, which here
 * is this package's node_modules, so NODE_PATH points Node's resolver at a folder where the name links to this package.
 */
describe('the secretlint CLI with the documented .secretlintrc.json', () => {
  /** @type {string} */ let project;
  /** @type {string} */ let modules;
  const key = generateSecret('mbk_');
  const token = generateSecret('mbm_');

  before(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'secretlint-modelbridge-'));
    modules = fs.mkdtempSync(path.join(os.tmpdir(), 'secretlint-modelbridge-modules-'));
    fs.mkdirSync(path.join(modules, '@modelbridge'));
    fs.symlinkSync(PACKAGE_DIR, path.join(modules, '@modelbridge', 'secretlint-rule-modelbridge'), 'dir');
    const [rc] = documentedBlocks('json');
    assert.ok(rc, 'docs/security.md has no ```json block');
    fs.writeFileSync(path.join(project, '.secretlintrc.json'), rc);
    fs.writeFileSync(path.join(project, '.env'), `OPENAI_BASE_URL=https://llm.example.com/v1\nOPENAI_API_KEY=${key}\n`);
    fs.mkdirSync(path.join(project, 'scripts'));
    fs.writeFileSync(path.join(project, 'scripts', 'deploy.sh'), `#!/bin/sh\nexport MB_TOKEN="${token}"\n`);
    fs.writeFileSync(path.join(project, 'look-alikes.txt'), Object.values(lookAlikes()).join('\n'));
  });
  after(() => {
    fs.rmSync(project, { recursive: true, force: true });
    fs.rmSync(modules, { recursive: true, force: true });
  });

  function secretlint(/** @type {string[]} */ ...args) {
    const result = spawnSync(SECRETLINT, ['--format', 'json', '--no-color', ...args], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: modules },
    });
    assert.equal(result.error, undefined);
    return result;
  }

  it('reports the key and the token in their files and lines, exits 1, and prints neither secret', () => {
    const result = secretlint('**/*');

    assert.equal(result.status, 1, result.stderr);
    /** @type {{ filePath: string, messages: { ruleId: string, messageId: string, loc: { start: { line: number, column: number } } }[] }[]} */
    const results = JSON.parse(result.stdout);
    const found = results
      .flatMap((r) => r.messages.map((m) => ({ file: path.relative(project, r.filePath), ruleId: m.ruleId, messageId: m.messageId, start: m.loc.start })))
      .sort((a, b) => a.file.localeCompare(b.file));
    assert.deepEqual(found, [
      { file: '.env', ruleId: '@modelbridge/secretlint-rule-modelbridge', messageId: 'MODELBRIDGE_API_KEY', start: { line: 2, column: 'OPENAI_API_KEY='.length } },
      { file: 'scripts/deploy.sh', ruleId: '@modelbridge/secretlint-rule-modelbridge', messageId: 'MODELBRIDGE_MANAGEMENT_TOKEN', start: { line: 2, column: 'export MB_TOKEN="'.length } },
    ]);
    const printed = JSON.stringify(results.map((r) => r.messages));
    assert.ok(!printed.includes(key) && !printed.includes(token));
  });

  it('passes a file of look-alikes, exit 0', () => {
    const result = secretlint('look-alikes.txt');
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});

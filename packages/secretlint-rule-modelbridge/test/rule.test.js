import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lintSource } from '@secretlint/core';
import { creator } from '../src/index.js';
import { generateSecret, lookAlikes } from './app-secrets.js';

const RULE_ID = '@modelbridge/secretlint-rule-modelbridge';

/** Runs secretlint's engine with this rule alone over one file's content. */
async function lint(/** @type {string} */ content, filePath = '/project/.env') {
  const result = await lintSource({
    source: { content, filePath, contentType: 'text' },
    options: { config: { rules: [{ id: RULE_ID, rule: creator }] } },
  });
  return result.messages;
}

describe('secretlint-rule-modelbridge', () => {
  it('reports a generated API key and management token with the rule id, the kind and the position', async () => {
    const key = generateSecret('mbk_');
    const token = generateSecret('mbm_');
    const content = [
      '# ModelBridge',
      `MODELBRIDGE_API_KEY=${key}`,
      `curl -H "Authorization: Bearer ${token}" https://llm.example.com/trpc/keys.list`,
    ].join('\n');

    const messages = await lint(content);

    assert.equal(messages.length, 2);
    const [first, second] = messages;
    assert.ok(first && second);
    assert.equal(first.ruleId, RULE_ID);
    assert.equal(first.messageId, 'MODELBRIDGE_API_KEY');
    assert.deepEqual(first.range, [content.indexOf(key), content.indexOf(key) + key.length]);
    assert.deepEqual(first.loc, {
      start: { line: 2, column: 'MODELBRIDGE_API_KEY='.length },
      end: { line: 2, column: 'MODELBRIDGE_API_KEY='.length + key.length },
    });
    assert.equal(second.ruleId, RULE_ID);
    assert.equal(second.messageId, 'MODELBRIDGE_MANAGEMENT_TOKEN');
    assert.deepEqual(second.range, [content.indexOf(token), content.indexOf(token) + token.length]);
    assert.deepEqual(second.loc.start, { line: 3, column: 'curl -H "Authorization: Bearer '.length });
  });

  it('names the secret by its last four characters, never in full', async () => {
    const key = generateSecret('mbk_');
    const [message] = await lint(`key: ${key}\n`);
    assert.match(message?.message ?? '', new RegExp(`ModelBridge API key mbk_…${key.slice(-4)}`));
    assert.ok(!message?.message.includes(key.slice(4, 30)), message?.message);
  });

  it('finds keys wherever they sit: in JSON, URL-encoded, glued to a prefix, several on one line', async () => {
    const keys = Array.from({ length: 4 }, () => generateSecret('mbk_'));
    const content = [
      JSON.stringify({ apiKey: keys[0] }),
      `https://example.com/?key%3D${keys[1]}&x=1`,
      `OPENAI_API_KEY=sk-mbk_${keys[2]} ${keys[3]}`,
    ].join('\n');

    const messages = await lint(content, '/project/notes.md');

    assert.deepEqual(
      messages.map((m) => content.slice(m.range[0], m.range[1])),
      keys,
    );
  });

  for (const [kind, lookAlike] of Object.entries(lookAlikes())) {
    it(`does not report a look-alike: ${kind}`, async () => {
      assert.deepEqual(await lint(`MODELBRIDGE_API_KEY=${lookAlike}\n"${lookAlike}"`), []);
    });
  }

  it('does not report random strings of the right shape (their checksum does not verify)', async () => {
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    const random = () => Array.from({ length: 34 }, () => alphabet[Math.floor(Math.random() * 62)]).join('');
    const lines = Array.from({ length: 2000 }, (_, i) => `${i % 2 ? 'mbm_' : 'mbk_'}${random()}`);
    assert.deepEqual(await lint(lines.join('\n')), []);
  });

  it('reports nothing in a file without secrets', async () => {
    assert.deepEqual(await lint('MODELBRIDGE_API_KEY=mbk_YOUR_KEY_abcd\nmbk_…wxyz\n'), []);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeCharAt, generateSecret } from './app-secrets.js';
import { documentedBlocks } from './docs.js';

/**
 * @typedef {object} DocumentedPattern
 * @property {string} tool
 * @property {string} name
 * @property {string} regex
 * @property {string[]} keywords
 * @property {number} [entropy]
 * @property {number} [secretGroup]
 */

/** The `[[rules]]` of the gitleaks block: only the keys this block uses, read the way TOML writes them. */
function gitleaksRules() {
  const [toml] = documentedBlocks('toml');
  assert.ok(toml, 'no ```toml block');
  return toml.split(/^\[\[rules\]\]$/m).slice(1).map((block) => {
    const field = (/** @type {string} */ name) => new RegExp(`^${name} = (.*)$`, 'm').exec(block)?.[1];
    const regex = /^regex = '''(.*)'''$/m.exec(block)?.[1];
    assert.ok(regex, `a rule without a '''regex''': ${block}`);
    return /** @type {DocumentedPattern} */ ({
      tool: 'gitleaks',
      name: JSON.parse(field('id') ?? 'null'),
      regex,
      keywords: JSON.parse(field('keywords') ?? '[]'),
      entropy: Number(field('entropy')),
      secretGroup: Number(field('secretGroup')),
    });
  });
}

/** The trufflehog detectors: `- name:`, its `keywords:` list and its `regex:` map of single-quoted patterns. */
function trufflehogDetectors() {
  const [yaml] = documentedBlocks('yaml');
  assert.ok(yaml, 'no ```yaml block');
  assert.match(yaml, /^detectors:$/m);
  return yaml.split(/^  - name: /m).slice(1).flatMap((block) => {
    const name = /** @type {string} */ (block.split('\n')[0]);
    const keywords = [...block.matchAll(/^ {6}- (.+)$/gm)].map((m) => /** @type {string} */ (m[1]));
    const regexes = [...block.matchAll(/^ {6}\w+: '(.*)'$/gm)].map((m) => /** @type {string} */ (m[1]));
    assert.ok(regexes.length > 0, `detector ${name} has no regex`);
    return regexes.map((regex) => /** @type {DocumentedPattern} */ ({ tool: 'trufflehog', name, regex, keywords }));
  });
}

/** Shannon entropy in bits per character, as gitleaks computes it over the secret group. */
function shannonEntropy(/** @type {string} */ text) {
  const counts = new Map();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / text.length) * Math.log2(n / text.length);
  return bits;
}

const patterns = [...gitleaksRules(), ...trufflehogDetectors()];

describe('the gitleaks and trufflehog patterns in docs/security.md', () => {
  it('document both kinds for both tools', () => {
    assert.deepEqual(
      patterns.map((p) => `${p.tool} ${p.keywords.join(',')}`),
      ['gitleaks mbk_', 'gitleaks mbm_', 'trufflehog mbk_', 'trufflehog mbm_'],
    );
    for (const p of gitleaksRules()) {
      assert.match(p.name, /^modelbridge-/);
      assert.equal(p.secretGroup, 1);
      assert.ok(p.entropy && p.entropy > 0, `${p.name}: entropy`);
    }
  });

  for (const p of patterns) {
    const prefix = /** @type {'mbk_' | 'mbm_'} */ (p.keywords[0]);
    const other = prefix === 'mbk_' ? 'mbm_' : 'mbk_';

    describe(`${p.tool} ${p.name}`, () => {
      // Go's RE2 has no lookaround and no backreferences; JavaScript would accept them silently.
      it('uses only syntax RE2 accepts, and means the same in JavaScript', () => {
        assert.doesNotMatch(p.regex, /\(\?<?[=!]|\\[1-9]|\\k</);
        assert.equal(new RegExp(p.regex).source, p.regex);
      });

      it('matches every generated secret of its kind, with the secret in the capture group', () => {
        const regex = new RegExp(p.regex);
        for (let i = 0; i < 300; i++) {
          const secret = generateSecret(prefix);
          for (const text of [secret, `X=${secret}\n`, `"Bearer ${secret}"`, `a%3D${secret}&b`]) {
            assert.equal(regex.exec(text)?.[1], secret, text);
          }
          assert.ok(p.keywords.some((k) => secret.includes(k)), 'the keyword pre-filter would skip it');
          if (p.entropy) assert.ok(shannonEntropy(secret) > p.entropy, `entropy ${shannonEntropy(secret)} of ${secret.slice(0, 4)}`);
          assert.equal(regex.exec(generateSecret(other)), null, `matches ${other}`);
        }
      });

      it('misses truncated and over-long secrets', () => {
        const regex = new RegExp(p.regex);
        const secret = generateSecret(prefix);
        assert.equal(regex.exec(secret.slice(0, -1)), null);
        assert.equal(regex.exec(`${secret}A`), null);
        assert.equal(regex.exec(`${secret}_x`)?.[1], secret, 'a key followed by punctuation is still found');
      });

      it('cannot tell a broken checksum: it reports look-alikes the secretlint rule does not', () => {
        const broken = changeCharAt(generateSecret(prefix), 10);
        assert.equal(new RegExp(p.regex).exec(broken)?.[1], broken);
      });

      if (p.entropy) {
        it('drops low-entropy runs by its entropy floor', () => {
          assert.ok(shannonEntropy(`${prefix}${'x'.repeat(34)}`) < /** @type {number} */ (p.entropy));
        });
      }
    });
  }
});

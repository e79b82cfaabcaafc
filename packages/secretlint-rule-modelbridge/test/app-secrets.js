/**
 * Secrets made by the app's own generator (src/auth/secret-format.ts, loaded through tsx), and the shapes around
 * them a scanner must not take for one. The test files build their fixtures from these at run time rather than
 * committing keys: a key with a valid checksum in the repository would itself be a finding for every scanner
 * that knows our format, this rule first.
 */
import { generateSecret } from '../../../src/auth/secret-format.ts';

export { generateSecret };

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The secret with the character at `index` replaced by a different base62 character. */
export function changeCharAt(/** @type {string} */ secret, /** @type {number} */ index) {
  const old = /** @type {string} */ (secret[index]);
  const next = ALPHABET[(ALPHABET.indexOf(old) + 1) % ALPHABET.length];
  return secret.slice(0, index) + next + secret.slice(index + 1);
}

/** Strings that look like ModelBridge secrets and are not: each would be refused by the app too. */
export function lookAlikes() {
  const key = generateSecret('mbk_');
  const token = generateSecret('mbm_');
  return {
    'body character changed': changeCharAt(key, 10),
    'checksum character changed': changeCharAt(key, key.length - 1),
    'token checksum character changed': changeCharAt(token, token.length - 3),
    truncated: key.slice(0, -1),
    'one character too many': key + 'A',
    'prefix of the other kind': 'mbm_' + key.slice(4),
    'prefix in capitals': 'MBK_' + key.slice(4),
    'unknown prefix': 'mbx_' + key.slice(4),
    'a character outside base62': key.slice(0, 12) + '-' + key.slice(13),
  };
}

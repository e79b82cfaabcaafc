/**
 * The shape and checksum of ModelBridge secrets: `<prefix><body><checksum>`, where the prefix is `mbk_` (API key)
 * or `mbm_` (management token), the body 28 base62 characters and the checksum the CRC32 of prefix + body written
 * as 6 base62 characters.
 *
 * A copy of the check in the app's src/auth/secret-format.ts: a rule package that imported the app would drag the
 * app's dependencies into every project that scans for our keys. test/app-generator.test.js runs this copy
 * against secrets from the app's own generator, so the two cannot drift apart unnoticed.
 */

/** @typedef {'mbk_' | 'mbm_'} SecretPrefix */

const BODY_LENGTH = 28;
const CHECKSUM_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zlib) of the text's UTF-8 bytes. */
export function crc32(/** @type {string} */ text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) crc = /** @type {number} */ (CRC_TABLE[(crc ^ byte) & 0xff]) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The checksum the app appends to `prefix + body`: its CRC32 as 6 base62 digits, most significant first. */
export function checksumOf(/** @type {string} */ head) {
  let value = crc32(head);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/**
 * A prefix with the 34 base62 characters that follow it (lookahead, so a prefix inside a rejected candidate —
 * `mbk_mbk_…` — is still tried), not followed by a 35th: a longer run is some other token.
 * There is deliberately no boundary on the left: a key glued to what precedes it (`key%3Dmbk_…` in a
 * URL-encoded query, `sk-mbk_…`) is still a leaked key, and the checksum, not the context, rules out look-alikes.
 */
const CANDIDATE = new RegExp(`(mbk_|mbm_)(?=([0-9A-Za-z]{${BODY_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})(?![0-9A-Za-z]))`, 'g');

/**
 * @typedef {object} FoundSecret
 * @property {SecretPrefix} prefix
 * @property {string} secret the whole secret, prefix included
 * @property {number} start index of its first character in the text
 * @property {number} end index just past its last character
 */

/**
 * Every ModelBridge secret in the text whose checksum verifies, in order. A random string of the right shape
 * passes by chance once in 62⁶ ≈ 5.7·10¹⁰, so what this finds is, in practice, a key or token we issued.
 * @param {string} text
 * @returns {FoundSecret[]}
 */
export function findModelBridgeSecrets(text) {
  /** @type {FoundSecret[]} */
  const found = [];
  for (const match of text.matchAll(CANDIDATE)) {
    const [, prefix = '', body = '', checksum = ''] = match;
    if (checksumOf(prefix + body) !== checksum) continue;
    const secret = prefix + body + checksum;
    found.push({ prefix: /** @type {SecretPrefix} */ (prefix), secret, start: match.index, end: match.index + secret.length });
  }
  return found;
}

import { createHash, timingSafeEqual } from 'node:crypto';
import { randomBase62 } from '../domain/ids.js';

/**
 * Format of every bearer secret ModelBridge issues: `<prefix><body><checksum>`.
 * - body: 28 base62 chars from a CSPRNG = 28·log2(62) ≈ 166.7 bits (SPEC: at least 160).
 * - checksum: CRC32 of prefix+body, written as 6 base62 chars, so secret scanners can recognise our keys and a
 *   mistyped or truncated key is refused without touching the database.
 * Proxy keys use `mbk_`, management tokens `mbm_`.
 */
export type SecretPrefix = 'mbk_' | 'mbm_';

const BODY_LENGTH = 28;
const CHECKSUM_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_PATTERN = /^(mbk_|mbm_)([0-9A-Za-z]{28})([0-9A-Za-z]{6})$/;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, 'utf8')) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function toBase62(value: number, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

export function generateSecret(prefix: SecretPrefix): string {
  const head = prefix + randomBase62(BODY_LENGTH);
  return head + toBase62(crc32(head), CHECKSUM_LENGTH);
}

/** True when the text has our shape and its checksum matches. Costs no I/O. */
export function isWellFormedSecret(text: string, prefix: SecretPrefix): boolean {
  const match = SECRET_PATTERN.exec(text);
  if (!match || match[1] !== prefix) return false;
  const expected = Buffer.from(toBase62(crc32(prefix + match[2]), CHECKSUM_LENGTH));
  return timingSafeEqual(expected, Buffer.from(match[3]!));
}

/** What the database stores instead of the secret: its SHA-256, hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function lastFour(secret: string): string {
  return secret.slice(-4);
}

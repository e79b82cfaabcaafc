import { describe, expect, it } from 'vitest';
import { crc32, generateSecret, hashSecret, isWellFormedSecret, lastFour } from '../../src/auth/secret-format.js';

describe('secret format', () => {
  it('makes mbk_ keys with ≥160 bits of base62 randomness and a checksum', () => {
    const key = generateSecret('mbk_');
    expect(key).toMatch(/^mbk_[0-9A-Za-z]{34}$/);
    expect(28 * Math.log2(62)).toBeGreaterThanOrEqual(160);
    expect(isWellFormedSecret(key, 'mbk_')).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => generateSecret('mbk_'))).size).toBe(1000);
  });

  it('refuses a key with one character changed, truncated, or of the other kind', () => {
    const key = generateSecret('mbk_');
    const flipped = key.slice(0, 10) + (key[10] === 'a' ? 'b' : 'a') + key.slice(11);
    expect(isWellFormedSecret(flipped, 'mbk_')).toBe(false);
    expect(isWellFormedSecret(key.slice(0, -1), 'mbk_')).toBe(false);
    expect(isWellFormedSecret(key, 'mbm_')).toBe(false);
    expect(isWellFormedSecret(generateSecret('mbm_'), 'mbm_')).toBe(true);
    expect(isWellFormedSecret('sk-' + key, 'mbk_')).toBe(false);
  });

  it('computes the standard CRC32', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
  });

  it('stores only a SHA-256 and the last four characters', () => {
    const key = generateSecret('mbk_');
    expect(hashSecret(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSecret(key)).not.toContain(key.slice(4, 12));
    expect(lastFour(key)).toBe(key.slice(-4));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 as appCrc32, isWellFormedSecret } from '../../../src/auth/secret-format.ts';
import { checksumOf, crc32, findModelBridgeSecrets } from '../src/secret-format.js';
import { changeCharAt, generateSecret, lookAlikes } from './app-secrets.js';

// The rule carries its own copy of the app's checksum; these tests hold the copy to the app's generator and parser.
describe('the checksum copy agrees with the app', () => {
  it('verifies every secret the app generates, of both kinds', () => {
    for (const prefix of /** @type {const} */ (['mbk_', 'mbm_'])) {
      for (let i = 0; i < 500; i++) {
        const secret = generateSecret(prefix);
        assert.equal(checksumOf(secret.slice(0, -6)), secret.slice(-6), secret.slice(0, 4));
        assert.deepEqual(findModelBridgeSecrets(secret), [{ prefix, secret, start: 0, end: secret.length }]);
      }
    }
  });

  it('refuses what the app refuses', () => {
    for (const [kind, lookAlike] of Object.entries(lookAlikes())) {
      assert.equal(isWellFormedSecret(lookAlike, 'mbk_') || isWellFormedSecret(lookAlike, 'mbm_'), false, kind);
      assert.deepEqual(findModelBridgeSecrets(lookAlike), [], kind);
    }
    for (let i = 0; i < 200; i++) {
      const broken = changeCharAt(generateSecret('mbk_'), 4 + (i % 34));
      assert.equal(isWellFormedSecret(broken, 'mbk_'), false);
      assert.deepEqual(findModelBridgeSecrets(broken), []);
    }
  });

  it('computes the same CRC32 as the app, the standard one', () => {
    assert.equal(crc32('123456789'), 0xcbf43926);
    for (const text of ['', 'mbk_', 'mbm_0000000000000000000000000000', 'ünïcode ✓']) {
      assert.equal(crc32(text), appCrc32(text), text);
    }
  });
});

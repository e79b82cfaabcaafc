import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { effectivePolicy, keyPolicyViolations, NO_KEY_POLICY, type KeyPolicy, type RequestedKey } from '../../src/domain/keys/key-policy.js';

const now = new Date('2026-12-02T03:00:00Z');
const timeZone = 'Australia/Sydney';
const policy: fc.Arbitrary<KeyPolicy> = fc.record({
  requireLimit: fc.boolean(),
  maxExpiryDays: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null }),
  uniqueNames: fc.boolean(),
});
const key = fc.record({
  name: fc.constantFrom('cursor', 'ci', 'Cursor '),
  spendLimitMicro: fc.option(fc.integer({ min: 0, max: 10 ** 9 }), { nil: null }),
  expiresAt: fc.option(fc.integer({ min: 1, max: 500 * 86_400_000 }).map((ms) => new Date(now.getTime() + ms)), { nil: null }),
});
const names = fc.subarray(['cursor', 'claude code']);
const rules = (p: ReturnType<typeof effectivePolicy>, k: RequestedKey, existingNames: string[]) =>
  keyPolicyViolations(p, k, { now, timeZone, existingNames }).map((v) => v.rule);

describe('guard-rails on new keys', () => {
  it('a key that meets the effective policy meets the installation’s and the team’s alone', () => {
    fc.assert(fc.property(policy, policy, key, names, (inst, team, k, existing) => {
      if (rules(effectivePolicy(inst, team), k, existing).length > 0) return;
      expect(rules(effectivePolicy(inst, null), k, existing)).toEqual([]);
      expect(rules(effectivePolicy(NO_KEY_POLICY, team), k, existing)).toEqual([]);
    }));
  });

  it('the stricter wins: whatever either policy refuses, the combination refuses', () => {
    fc.assert(fc.property(policy, policy, key, names, (inst, team, k, existing) => {
      const both = new Set(rules(effectivePolicy(inst, team), k, existing).map((r) => (r === 'expiry_too_far' || r === 'expiry_required' ? 'expiry' : r)));
      for (const alone of [effectivePolicy(inst, null), effectivePolicy(NO_KEY_POLICY, team)])
        for (const r of rules(alone, k, existing)) expect(both.has(r === 'expiry_too_far' || r === 'expiry_required' ? 'expiry' : r)).toBe(true);
      const days = [inst.maxExpiryDays, team.maxExpiryDays].filter((d) => d !== null);
      expect(effectivePolicy(inst, team).maxExpiryDays?.days ?? null).toBe(days.length ? Math.min(...days) : null);
    }));
  });

  it('accepts an expiry on the last local day N days ahead, refuses the next day', () => {
    const p = effectivePolicy({ ...NO_KEY_POLICY, maxExpiryDays: 30 }, null);
    // 2026-12-02 14:00 in Sydney; 30 days ahead is 2027-01-01, which ends at 2027-01-01T13:00Z.
    expect(rules(p, { name: 'a', spendLimitMicro: null, expiresAt: new Date('2027-01-01T13:00:00Z') }, [])).toEqual([]);
    expect(rules(p, { name: 'a', spendLimitMicro: null, expiresAt: new Date('2027-01-01T13:00:01Z') }, [])).toEqual(['expiry_too_far']);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describePolicy, effectivePolicy, keyPolicyViolations, NO_KEY_POLICY, rotateByOf, type KeyPolicy, type RequestedKey } from '../../src/domain/keys/key-policy.js';
import { rotationHorizon, scheduledRetryDelayMs } from '../../src/domain/keys/rotation.service.js';

const now = new Date('2026-12-02T03:00:00Z');
const timeZone = 'Australia/Sydney';
const policy: fc.Arbitrary<KeyPolicy> = fc.record({
  requireLimit: fc.boolean(),
  maxExpiryDays: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null }),
  uniqueNames: fc.boolean(),
  maxKeyAgeDays: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null }),
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

  it('the maximum key age: the fewer days win, the installation a tie, and rotate-by is that many days after creation', () => {
    fc.assert(fc.property(policy, fc.option(policy, { nil: null }), fc.integer({ min: 0, max: 10 ** 12 }), (inst, team, createdMs) => {
      const days = [inst.maxKeyAgeDays, team?.maxKeyAgeDays ?? null].filter((d) => d !== null);
      const rule = effectivePolicy(inst, team).maxKeyAgeDays;
      expect(rule?.days ?? null).toBe(days.length ? Math.min(...days) : null);
      if (rule) expect(rule.by).toBe(inst.maxKeyAgeDays === rule.days ? 'installation' : 'team');
      const createdAt = new Date(createdMs);
      const rotateBy = rotateByOf(createdAt, rule?.days ?? null);
      expect(rotateBy === null ? null : rotateBy.getTime() - createdMs).toBe(rule ? rule.days * 86_400_000 : null);
      // The age rule never refuses a key: it does not take part in the violations of new keys.
      expect(rules(effectivePolicy(inst, team), { name: 'x', spendLimitMicro: 1, expiresAt: new Date(now.getTime() + 3600_000) }, []))
        .toEqual(rules(effectivePolicy({ ...inst, maxKeyAgeDays: null }, team && { ...team, maxKeyAgeDays: null }), { name: 'x', spendLimitMicro: 1, expiresAt: new Date(now.getTime() + 3600_000) }, []));
    }));
  });

  it('states the maximum key age with the other rules', () => {
    expect(describePolicy(effectivePolicy({ ...NO_KEY_POLICY, maxKeyAgeDays: 90 }, null))).toBe('Keys are due for rotation 90 days after they are created.');
    expect(describePolicy(effectivePolicy({ ...NO_KEY_POLICY, requireLimit: true, maxKeyAgeDays: 1 }, null)))
      .toBe('This installation requires a spending limit for every new key. Keys are due for rotation 1 day after they are created.');
  });
});

describe('rotation-due horizons', () => {
  it('warns 7 days ahead, then 1 day ahead, then once overdue', () => {
    const day = 86_400_000;
    expect(rotationHorizon(7 * day + 1)).toBeNull();
    expect(rotationHorizon(7 * day)).toBe('7d');
    expect(rotationHorizon(day + 1)).toBe('7d');
    expect(rotationHorizon(day)).toBe('1d');
    expect(rotationHorizon(1)).toBe('1d');
    expect(rotationHorizon(0)).toBe('overdue');
    expect(rotationHorizon(-5 * day)).toBe('overdue');
  });
});

describe('scheduled rotation retries', () => {
  it('tries again at the next run, then doubling, at most an hour apart', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => scheduledRetryDelayMs(n) / 60_000)).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
  });
});

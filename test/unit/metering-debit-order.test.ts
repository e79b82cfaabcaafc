import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { personalAvailable, splitPersonalDebit, type PersonalBuckets } from '../../src/domain/billing/debit-order.js';

const amount = fc.integer({ min: 0, max: 5_000_000 });
const buckets: fc.Arbitrary<PersonalBuckets> = fc
  .record({
    includedMicro: amount,
    includedUsedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    prepaidMicro: fc.integer({ min: -100_000, max: 5_000_000 }),
    overageAllowed: fc.boolean(),
    overageCapMicro: fc.option(amount, { nil: null }),
    overageUsedFraction: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map((r) => ({
    includedMicro: r.includedMicro,
    includedUsedMicro: Math.floor(r.includedMicro * r.includedUsedFraction),
    prepaidMicro: r.prepaidMicro,
    overageAllowed: r.overageAllowed,
    overageCapMicro: r.overageCapMicro,
    overageUsedMicro: r.overageCapMicro === null ? Math.floor(1_000_000 * r.overageUsedFraction) : Math.floor(r.overageCapMicro * r.overageUsedFraction),
  }));

describe('the personal debit order: plan-included → prepaid → overage', () => {
  it('splits the whole cost, never takes from a bucket out of order, and only the crossing request overdraws prepaid', () => {
    fc.assert(
      fc.property(buckets, amount, (b, cost) => {
        const split = splitPersonalDebit(cost, b);
        const includedRoom = Math.max(0, b.includedMicro - b.includedUsedMicro);
        const prepaidRoom = Math.max(0, b.prepaidMicro);
        const overageRoom = !b.overageAllowed ? 0 : b.overageCapMicro === null ? Infinity : Math.max(0, b.overageCapMicro - b.overageUsedMicro);
        expect(split.includedMicro + split.prepaidMicro + split.overageMicro).toBe(cost);
        for (const part of Object.values(split)) expect(part).toBeGreaterThanOrEqual(0);
        // Each bucket within its room…
        expect(split.includedMicro).toBe(Math.min(cost, includedRoom));
        expect(split.overageMicro).toBeLessThanOrEqual(overageRoom);
        // …and in order: a later bucket only once the earlier ones are used up.
        if (split.prepaidMicro > 0) expect(split.includedMicro).toBe(includedRoom);
        if (split.overageMicro > 0) expect(split.prepaidMicro).toBeGreaterThanOrEqual(prepaidRoom);
        // The shortfall: only what no bucket could cover lands on prepaid, beyond its balance.
        const beyondPrepaid = Math.max(0, split.prepaidMicro - prepaidRoom);
        const available = personalAvailable(b);
        expect(beyondPrepaid).toBe(Math.max(0, cost - Math.min(available, includedRoom + prepaidRoom + overageRoom)));
        if (cost <= available) expect(beyondPrepaid).toBe(0);
      }),
      { numRuns: 2_000 },
    );
  });

  it('says what a payer can spend: included left + prepaid (if positive) + overage room', () => {
    expect(personalAvailable({ includedMicro: 100, includedUsedMicro: 30, prepaidMicro: -5, overageAllowed: false, overageCapMicro: null, overageUsedMicro: 0 })).toBe(70);
    expect(personalAvailable({ includedMicro: 100, includedUsedMicro: 100, prepaidMicro: 50, overageAllowed: true, overageCapMicro: 40, overageUsedMicro: 10 })).toBe(80);
    expect(personalAvailable({ includedMicro: 0, includedUsedMicro: 0, prepaidMicro: 0, overageAllowed: true, overageCapMicro: null, overageUsedMicro: 0 })).toBe(Number.MAX_SAFE_INTEGER);
  });
});

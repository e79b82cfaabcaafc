import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { personalAvailable } from '../../src/domain/billing/debit-order.js';
import { ManualClock } from '../../src/domain/clock.js';
import { newId, randomBase62 } from '../../src/domain/ids.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { adminActor, makeKey, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { NO_TOKENS } from '../../src/domain/models/pricing.js';

type Step = { kind: 'topup'; amount: number } | { kind: 'request'; estimate: number; cost: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('topup' as const), amount: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('request' as const), estimate: fc.integer({ min: 1, max: 300 }), cost: fc.integer({ min: 0, max: 300 }) }) },
);
const plan = fc.record({
  includedMicro: fc.integer({ min: 0, max: 500 }),
  overageAllowed: fc.boolean(),
  overageCapMicro: fc.option(fc.integer({ min: 0, max: 500 }), { nil: null, freq: 4 }),
  prepaidMicro: fc.integer({ min: 0, max: 500 }),
});

describe(`debit order over random top-ups and requests, through admission and settlement (${dialect})`, () => {
  let t: TestDb;
  let services: Services;

  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock: new ManualClock(new Date()), timeZone: 'Australia/Sydney' });
  });
  afterAll(async () => t?.destroy());

  it('keeps every bucket within bounds and in order; only the crossing request overdraws prepaid', async () => {
    await fc.assert(
      fc.asyncProperty(plan, fc.array(step, { minLength: 1, maxLength: 12 }), async (p, steps) => {
        const planName = `P ${randomBase62(8)}`;
        await services.plans.create({ name: planName, includedMicro: p.includedMicro, overageAllowed: p.overageAllowed, overageCapMicro: p.overageCapMicro }, adminActor);
        const owner = await makeUser(services, { plan: planName as 'Free', prepaidMicro: p.prepaidMicro });
        const { key } = await makeKey(services, owner);
        const cap = p.overageAllowed ? p.overageCapMicro : 0;
        const read = async () => {
          const b = await t.db('personal_balances').where({ user_id: owner.user.id }).first();
          return { included: toMicro(b.included_used_micro), prepaid: toMicro(b.prepaid_micro), overage: toMicro(b.overage_used_micro) };
        };

        for (const s of steps) {
          const before = await read();
          if (s.kind === 'topup') {
            await services.balances.credit({ userId: owner.user.id }, s.amount, null, adminActor);
            expect((await read()).prepaid).toBe(before.prepaid + s.amount);
            continue;
          }
          const available = personalAvailable({
            includedMicro: p.includedMicro, includedUsedMicro: before.included, prepaidMicro: before.prepaid,
            overageAllowed: p.overageAllowed, overageCapMicro: p.overageCapMicro, overageUsedMicro: before.overage,
          });
          let hold;
          try {
            hold = await services.metering.admit({ requestId: newId(), keyId: key.id, estimateMicro: s.estimate, model: 'm', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false });
          } catch (err) {
            // Nothing else is in flight, so the only refusal is an empty payer.
            expect(err).toBeInstanceOf(MeteringRefusal);
            expect((err as MeteringRefusal).reason).toBe('insufficient_balance');
            expect(available).toBeLessThanOrEqual(0);
            continue;
          }
          expect(available).toBeGreaterThan(0);
          expect(hold.payerHoldMicro).toBe(Math.min(s.estimate, available));
          await services.metering.settle(hold, { ...NO_TOKENS, inputTokens: 1, outputTokens: 1, costMicro: s.cost, outcome: 'ok', estimated: false, httpStatus: 200, latencyMs: 1 });
          const after = await read();
          const event = await t.db('usage_events').where({ request_id: hold.requestId }).first();
          const split = { included: toMicro(event.included_micro), prepaid: toMicro(event.prepaid_micro), overage: toMicro(event.overage_micro) };

          expect(after.included).toBeLessThanOrEqual(p.includedMicro);
          if (cap !== null) expect(after.overage).toBeLessThanOrEqual(cap);
          // In order: prepaid only once included is used up, overage only once prepaid is too.
          if (split.prepaid > 0) expect(after.included).toBe(Math.max(p.includedMicro, before.included));
          if (split.overage > 0) expect(after.prepaid).toBeLessThanOrEqual(0);
          // Prepaid goes (further) below zero only for a request that cost more than the payer had: the crossing one.
          if (after.prepaid < Math.min(0, before.prepaid)) {
            expect(s.cost).toBeGreaterThan(available);
            expect(Math.min(0, before.prepaid) - after.prepaid).toBe(s.cost - available);
          }
        }
        await expectMeteringInvariants(t.db);
      }),
      { numRuns: dialect === 'mysql' ? 25 : 40 },
    );
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { adminActor, makeKey, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { okSettlement as ok } from '../support/metering-rows.js';

// Metering plans each batch from the rows as this instance last wrote them (one round trip) and checks them under
// lock. These tests change those rows behind its back — the portal, an admin, another instance — and check that the
// next request is metered from the rows as they are, not as remembered.

describe(`metering from remembered rows (${dialect})`, () => {
  let t: TestDb;
  let services: Services;
  const clock = new ManualClock(new Date());

  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' });
  });
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t?.destroy());

  const request = (services_: Services, keyId: string, estimateMicro = 1_000) =>
    services_.metering.admit({ requestId: newId(), keyId, estimateMicro, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false });
  async function charge(services_: Services, keyId: string, costMicro: number) {
    const hold = await request(services_, keyId);
    return services_.metering.settle(hold, ok(costMicro));
  }
  const paths = () => ({ ...services.metering.transactions });

  it('plans from what it wrote last when nobody else wrote', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner);
    await charge(services, key.id, 100); // the first batch reads: nothing remembered yet
    const before = paths();
    for (let i = 0; i < 5; i++) await charge(services, key.id, 100);
    const after = paths();
    if (onMysql) {
      expect(after.oneRoundTrip - before.oneRoundTrip).toBe(10);
      expect(after.readThenWrite).toBe(before.readThenWrite);
    }
    expect(toMicro((await t.db('api_keys').where({ id: key.id }).first()).spend_micro)).toBe(600);
  });

  it('refuses at once a key revoked, or whose limit was lowered, after its rows were remembered', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key: revoked } = await makeKey(services, owner);
    const { key: limited } = await makeKey(services, owner, { spendLimitMicro: 10_000 });
    await charge(services, revoked.id, 100);
    await charge(services, limited.id, 500);
    const before = paths();
    await services.keys.revoke(revoked.id, owner.actor);
    await services.keys.update(limited.id, { spendLimitMicro: 500 }, owner.actor);
    await expect(request(services, revoked.id)).rejects.toMatchObject({ reason: 'key_revoked' });
    await expect(request(services, limited.id)).rejects.toMatchObject({ reason: 'spend_limit_reached' });
    if (onMysql) expect(paths().readThenWrite - before.readThenWrite).toBe(2);
  });

  it('debits a top-up that arrived after the balance was remembered in the right order', async () => {
    const owner = await makeUser(services, { plan: 'Free', prepaidMicro: 1_000 });
    const { key } = await makeKey(services, owner);
    const balance = () => t.db('personal_balances').where({ user_id: owner.user.id }).first();
    const included = toMicro((await balance()).included_used_micro);
    await charge(services, key.id, 0);
    await services.balances.credit({ userId: owner.user.id }, 50_000, 'top-up', adminActor);
    const prepaidBefore = toMicro((await balance()).prepaid_micro);
    const plan = await t.db('plans').where({ name: 'Free' }).first();
    const includedLeft = toMicro(plan.included_micro) - included;
    // Charge more than the plan's included usage has left: the rest must come off the topped-up prepaid balance.
    await charge(services, key.id, includedLeft + 2_000);
    const after = await balance();
    expect(toMicro(after.prepaid_micro)).toBe(prepaidBefore - 2_000);
    expect(toMicro(after.included_used_micro)).toBe(toMicro(plan.included_micro));
  });

  it.runIf(onMysql)('keeps two instances exact when both charge the same key and payer', async () => {
    const other = createServices({ db: t.another(), clock, timeZone: 'Australia/Sydney' });
    const owner = await makeUser(services, { prepaidMicro: 10_000_000 });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 5_000_000 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => charge(i % 2 ? services : other, key.id, 1_000 + i)));
    for (let i = 0; i < 10; i++) await charge(i % 2 ? services : other, key.id, 7);
    const expected = Array.from({ length: 40 }, (_, i) => 1_000 + i).reduce((a, b) => a + b, 0) + 70;
    const row = await t.db('api_keys').where({ id: key.id }).first();
    expect(toMicro(row.spend_micro)).toBe(expected);
    expect(toMicro(row.held_micro)).toBe(0);
    expect(Number(row.request_count)).toBe(50);
    // Alternating instances: each one's remembered rows were always stale, and it noticed every time.
    expect(other.metering.transactions.readThenWrite).toBeGreaterThanOrEqual(5);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Hold } from '../../src/domain/billing/metering.service.js';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { toMicro } from '../../src/domain/money.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { okSettlement as ok } from '../support/metering-rows.js';

// Holds that grow, carried out in SQL: the hold rows, the key's and the payer's held amounts move together, the
// rows this instance remembers stay right (the next batch is still one round trip), and concurrent growth on one
// key never holds more than its limit leaves.

describe(`holds that grow (${dialect})`, () => {
  let t: TestDb;
  let services: Services;
  const clock = new ManualClock(new Date());

  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' });
  });
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t?.destroy());

  const stream = (s: Services, keyId: string, estimateMicro: number) =>
    s.metering.admit({ requestId: newId(), keyId, estimateMicro, model: 'claude-sonnet-4-5', provider: 'anthropic', endpoint: '/v1/messages', streamed: true });
  const held = async (keyId: string) => toMicro((await t.db('api_keys').where({ id: keyId }).first()).held_micro);

  it('grows the hold row and both held amounts, and settles against the grown hold', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 100_000 });
    const hold = await stream(services, key.id, 10_000);
    const grown = await services.metering.grow(hold, 20_000);
    expect(grown).toMatchObject({ grantedMicro: 20_000, keyHoldMicro: 30_000, payerHoldMicro: 30_000, refusal: null });
    const row = await t.db('holds').where({ request_id: hold.requestId }).first();
    expect([toMicro(row.amount_micro), toMicro(row.payer_amount_micro)]).toEqual([30_000, 30_000]);
    expect(await held(key.id)).toBe(30_000);
    expect(toMicro((await t.db('personal_balances').where({ user_id: owner.user.id }).first()).held_micro)).toBe(30_000);
    const before = { ...services.metering.transactions };
    await services.metering.settle(hold, ok(25_000));
    if (onMysql) expect(services.metering.transactions.oneRoundTrip).toBe(before.oneRoundTrip + 1);
    expect(await held(key.id)).toBe(0);
    expect(toMicro((await t.db('api_keys').where({ id: key.id }).first()).spend_micro)).toBe(25_000);
  });

  it('grants what the limit leaves and names it, for a personal key and on a team balance', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 15_000 });
    const hold = await stream(services, key.id, 10_000);
    const grown = await services.metering.grow(hold, 20_000);
    expect(grown).toMatchObject({ grantedMicro: 5_000, keyHoldMicro: 15_000 });
    expect(grown.refusal?.reason).toBe('spend_limit_reached');
    await services.metering.settle(hold, ok(14_000));

    const team = await makeTeam(services, owner, { balanceMicro: 12_000 });
    const { key: teamKey } = await makeKey(services, owner, { teamId: team.id });
    const teamHold = await stream(services, teamKey.id, 10_000);
    const teamGrown = await services.metering.grow(teamHold, 20_000);
    expect(teamGrown).toMatchObject({ grantedMicro: 2_000, payerHoldMicro: 12_000 });
    expect(teamGrown.refusal?.reason).toBe('insufficient_balance');
    await services.metering.settle(teamHold, ok(11_000));
  });

  it('never holds more than the limit leaves when many streams grow at once, on two instances', async () => {
    const owner = await makeUser(services, { prepaidMicro: 10_000_000 });
    const limit = 200_000;
    const { key } = await makeKey(services, owner, { spendLimitMicro: limit });
    const other = createServices({ db: t.another(), clock, timeZone: 'Australia/Sydney' });
    const instances = [services, other];
    const holds: Array<{ hold: Hold; on: Services }> = [];
    for (let i = 0; i < 20; i++) {
      const on = instances[i % 2]!;
      holds.push({ hold: await stream(on, key.id, 5_000), on });
    }
    const rounds = 6;
    for (let r = 0; r < rounds; r++) {
      const results = await Promise.all(holds.map(({ hold, on }) => on.metering.grow(hold, 3_000)));
      expect(results.every((g) => g.grantedMicro >= 0 && g.grantedMicro <= 3_000)).toBe(true);
      expect(await held(key.id)).toBeLessThanOrEqual(limit);
    }
    // 20 × 5,000 admitted + 120 × 3,000 asked for = 460,000 > 200,000: exactly the limit is held.
    expect(await held(key.id)).toBe(limit);
    const rows = await t.db('holds').where({ key_id: key.id });
    expect(rows.reduce((s: number, r: Record<string, unknown>) => s + toMicro(r.amount_micro), 0)).toBe(limit);
    await Promise.all(holds.map(({ hold, on }) => on.metering.settle(hold, ok(1_000))));
    expect(await held(key.id)).toBe(0);
  });
});

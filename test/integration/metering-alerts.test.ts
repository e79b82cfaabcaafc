import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, onMysql, type TestDb } from '../support/db.js';
import { adminActor, makeKey, makeTeam, makeUser, type TestUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { okSettlement as ok } from '../support/metering-rows.js';

/**
 * Spend alerts (docs/limits.md, "Alerts") through the MeteringService on a real database: each threshold of a key
 * limit or a member budget fires once per period, in the settlement's transaction, whatever the retries and races.
 */
describe(`spend alerts fire once per period (${dialect})`, () => {
  let t: TestDb;
  let services: Services;
  let owner: TestUser;
  // 11:00 on a Wednesday in Sydney.
  const clock = new ManualClock('2026-12-02T00:00:00.000Z');

  beforeAll(async () => {
    t = await createTestDb();
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' });
    owner = await makeUser(services, { prepaidMicro: 1_000_000_000 });
  });
  beforeEach(() => clock.set('2026-12-02T00:00:00.000Z'));
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t?.destroy());

  const firings = (scopeId: string) => t.db('alert_firings').where({ scope_id: scopeId }).orderBy('id').select('event_type', 'threshold', 'spent_micro', 'limit_micro', 'period_start');
  const spend = async (s: Services, keyId: string, cost: number, teamId: string | null = null, ownerId = owner.user.id) => {
    const hold = await s.metering.admit({
      requestId: newId(), keyId, ownerId, teamId, estimateMicro: cost, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: false,
    });
    return { hold, result: await s.metering.settle(hold, ok(cost)) };
  };

  it('fires 50, 80 and 100 % of a key limit once each, and key.limit_reached when the limit is hit', async () => {
    const { key } = await makeKey(services, owner, { spendLimitMicro: 10_000 });
    for (let i = 0; i < 4; i++) await spend(services, key.id, 1_000);
    expect(await firings(key.id)).toEqual([]);
    await spend(services, key.id, 1_000); // 50 %
    await spend(services, key.id, 2_500); // 75 %
    await spend(services, key.id, 500); // 80 %
    await spend(services, key.id, 1_000);
    await spend(services, key.id, 1_000); // 100 %: limit_reached
    const fired = (await firings(key.id)).map((f) => [f.event_type, f.threshold, Number(f.spent_micro)]);
    expect(fired).toEqual([
      ['key.limit_threshold', 50, 5_000], ['key.limit_threshold', 80, 8_000], ['key.limit_threshold', 100, 10_000], ['key.limit_reached', 100, 10_000],
    ]);
    expect((await t.db('api_keys').where({ id: key.id }).first()).status).toBe('limit_reached');
  });

  it('fires every threshold one charge passes at once, and the configured ones only', async () => {
    const { key } = await makeKey(services, owner, { spendLimitMicro: 10_000 });
    await services.keys.update(key.id, { alertThresholds: [25, 90] }, owner.actor);
    await spend(services, key.id, 9_500);
    expect((await firings(key.id)).map((f) => [f.event_type, f.threshold])).toEqual([['key.limit_threshold', 25], ['key.limit_threshold', 90]]);
    await expect(services.keys.update(key.id, { alertThresholds: [0] }, owner.actor)).rejects.toThrow(/1 to 100/);
  });

  it('fires again in a new period of a daily limit, and a retried settlement does not fire twice', async () => {
    const { key } = await makeKey(services, owner, { spendLimitMicro: 10_000 });
    await services.keys.update(key.id, { limitReset: 'daily' }, owner.actor);
    const { hold } = await spend(services, key.id, 6_000);
    expect(await services.metering.settle(hold, ok(6_000))).toEqual({ applied: false, costMicro: 0 });
    await spend(services, key.id, 1_000);
    expect((await firings(key.id)).map((f) => f.threshold)).toEqual([50]);
    clock.set('2026-12-02T13:30:00.000Z'); // 00:30 the next day in Sydney
    await spend(services, key.id, 5_000);
    const fired = await firings(key.id);
    expect(fired.map((f) => f.threshold)).toEqual([50, 50]);
    expect(new Date(fired[1]!.period_start).getTime()).toBeGreaterThan(new Date(fired[0]!.period_start).getTime());
  });

  it('fires the team’s thresholds on a member budget, once a month', async () => {
    const member = await makeUser(services);
    const team = await makeTeam(services, owner, { members: [[member, 'member']], balanceMicro: 1_000_000_000 });
    await services.teamControls.setMemberBudget(team.id, member.user.id, 4_000, owner.actor);
    await services.teamControls.setControls(team.id, { alertThresholds: [75] }, owner.actor);
    const { key: a } = await makeKey(services, member, { teamId: team.id });
    const { key: b } = await makeKey(services, member, { teamId: team.id });
    await spend(services, a.id, 2_000, team.id, member.user.id);
    await spend(services, b.id, 1_000, team.id, member.user.id); // 75 % over two keys
    await spend(services, b.id, 500, team.id, member.user.id);
    const fired = await firings(`${team.id}:${member.user.id}`);
    expect(fired.map((f) => [f.event_type, f.threshold, Number(f.spent_micro)])).toEqual([['member.budget_threshold', 75, 3_000]]);
    clock.set('2027-01-01T00:00:00.000Z'); // 11:00 on 1 January in Sydney: a new billing month
    await spend(services, a.id, 3_500, team.id, member.user.id);
    expect(await firings(`${team.id}:${member.user.id}`)).toHaveLength(2);
  });

  it('fires a user’s thresholds on the share of the plan’s included usage used this month', async () => {
    const user = await makeUser(services); // Free: A$5.00 included
    await services.balances.setAlertThresholds([40, 90], user.actor);
    expect((await services.balances.personal(user.user.id)).alertThresholds).toEqual([40, 90]);
    const { key } = await makeKey(services, user);
    await spend(services, key.id, 1_500_000, null, user.user.id);
    await spend(services, key.id, 1_000_000, null, user.user.id); // 50 %
    await spend(services, key.id, 500_000, null, user.user.id);
    const fired = await firings(user.user.id);
    expect(fired.map((f) => [f.event_type, f.threshold, Number(f.spent_micro)])).toEqual([['balance.threshold', 40, 2_500_000]]);
    await expect(services.balances.setAlertThresholds([1, 2, 3, 4, 5, 6], user.actor)).rejects.toThrow(/at most 5/);
  });

  it('fires a team’s thresholds on the share of its balance at the last top-up spent, afresh after a top-up', async () => {
    const team = await makeTeam(services, owner, { balanceMicro: 100_000 });
    const { key } = await makeKey(services, owner, { teamId: team.id });
    await spend(services, key.id, 55_000, team.id);
    await spend(services, key.id, 10_000, team.id);
    expect((await firings(team.id)).map((f) => [f.event_type, f.threshold])).toEqual([['team.balance_threshold', 50]]);
    clock.set('2026-12-02T01:00:00.000Z');
    await services.balances.credit({ teamId: team.id }, 65_000, null, adminActor); // back to 100 000
    await spend(services, key.id, 50_000, team.id);
    const fired = await firings(team.id);
    expect(fired.map((f) => [f.threshold, Number(f.limit_micro)])).toEqual([[50, 100_000], [50, 100_000]]);
  });

  it.runIf(onMysql)('two instances on two pools, many concurrent settlements: exactly one firing per threshold', async () => {
    const other = createServices({ db: t.another(), clock, timeZone: 'Australia/Sydney' });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 100_000 });
    const holds = await Promise.all(Array.from({ length: 120 }, (_, i) => (i % 2 ? other : services).metering.admit({
      requestId: newId(), keyId: key.id, ownerId: owner.user.id, teamId: null, estimateMicro: 800, model: 'gpt-4o-mini', provider: 'openai',
      endpoint: '/v1/chat/completions', streamed: false,
    })));
    // Each settled twice, on both instances at once (a retry racing the original): 120 × 800 = 96 %.
    await Promise.all(holds.flatMap((h) => [services.metering.settle(h, ok(800)), other.metering.settle(h, ok(800))]));
    const fired = await firings(key.id);
    expect(fired.map((f) => f.threshold)).toEqual([50, 80]);
    expect(await t.db('usage_events').where({ key_id: key.id })).toHaveLength(120);
    await other.metering.shutdown();
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Hold } from '../../src/domain/billing/metering.service.js';
import { MeteringRefusal } from '../../src/domain/billing/refusal.js';
import { remembered, type MeteringTable } from '../../src/domain/billing/metering/sql.js';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { memberRowId } from '../../src/domain/keys/controls.js';
import { createServices, type Services } from '../../src/domain/services.js';
import { createTestDb, dialect, type TestDb } from '../support/db.js';
import { makeKey, makeTeam, makeUser } from '../support/factories.js';
import { expectMeteringInvariants } from '../support/invariants.js';
import { okSettlement as ok } from '../support/metering-rows.js';

/**
 * The guessed transaction compares only row versions (and what a row reads of others) with what this instance
 * remembers, and trusts the rest (src/db/locked-transaction.ts, `guard`). That is exact only if the database raises
 * a row's version on every write, by any writer, and if what is remembered at a version is what the row holds.
 */
describe(`row versions behind the one-round-trip guess (${dialect})`, () => {
  let t: TestDb;
  let services: Services;
  let clock: ManualClock;

  beforeAll(async () => {
    t = await createTestDb();
    clock = new ManualClock(new Date());
    services = createServices({ db: t.db, clock, timeZone: 'Australia/Sydney' });
  });
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t?.destroy());

  const version = async (table: string, where: Record<string, unknown>) => Number((await t.db(table).where(where).first('row_version')).row_version);
  const admit = async (keyId: string, estimateMicro = 1_000) =>
    services.metering.admit({
      requestId: newId(), keyId, estimateMicro, model: 'gpt-4o-mini', provider: 'openai', endpoint: '/v1/chat/completions', streamed: true,
      catalog: (await services.models.find('gpt-4o-mini'))!,
    });

  it('every UPDATE of a metered row raises its version by one, whoever writes it', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const team = await makeTeam(services, owner, { balanceMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { teamId: team.id });
    const hold = await admit(key.id);
    const plan = (await t.db('users').where({ id: owner.user.id }).first('plan_id')).plan_id as string;
    // A plain write of one column of each table, as the portal, a job or an operator would make it.
    const writes: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['api_keys', { id: key.id }, { name: 'renamed' }],
      ['personal_balances', { user_id: owner.user.id }, { alert_fired_pct: 0 }],
      ['teams', { id: team.id }, { name: 'Renamed team' }],
      ['team_members', { id: memberRowId(team.id, owner.user.id) }, { alert_fired_pct: 0 }],
      ['holds', { request_id: hold.requestId }, { deadline_at: new Date(clock.now().getTime() + 60_000) }],
      ['models', { id: 'gpt-4o-mini' }, { enabled: true }],
      ['users', { id: owner.user.id }, { name: 'Renamed' }],
      ['plans', { id: plan }, { name: (await t.db('plans').where({ id: plan }).first('name')).name }],
    ];
    for (const [table, where, set] of writes) {
      const before = await version(table, where);
      await t.db(table).where(where).update(set);
      // Even a write that changes nothing (the plan's name set to itself) is a new version: no writer can skip it.
      expect([table, await version(table, where)]).toEqual([table, before + 1]);
    }
    await services.metering.settle(hold, ok(10));
  });

  it('a change to what a metered row reads of other rows raises that row\'s version too, and a charge to a team does not', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const team = await makeTeam(services, owner, { balanceMicro: 1_000_000 });
    const { key: personal } = await makeKey(services, owner);
    const { key: teamKey } = await makeKey(services, owner, { teamId: team.id });
    const plan = (await t.db('users').where({ id: owner.user.id }).first('plan_id')).plan_id as string;
    const member = { id: memberRowId(team.id, owner.user.id) };
    const versions = async () => [
      await version('api_keys', { id: personal.id }), await version('api_keys', { id: teamKey.id }),
      await version('personal_balances', { user_id: owner.user.id }), await version('team_members', member),
    ];
    const after = async (write: () => Promise<unknown>, raised: number[]) => {
      const before = await versions();
      await write();
      expect(await versions()).toEqual(before.map((v, i) => v + raised[i]!));
    };
    // [personal key, team key, personal balance, membership]
    await after(() => t.db('users').where({ id: owner.user.id }).update({ disabled: false }), [1, 1, 1, 0]);
    await after(() => t.db('plans').where({ id: plan }).update({ overage_allowed: true }), [0, 0, 1, 0]);
    await after(() => t.db('teams').where({ id: team.id }).update({ default_rpm_limit: 600 }), [0, 1, 0, 0]);
    await after(() => t.db('teams').where({ id: team.id }).update({ allowed_models: JSON.stringify(['gpt-4o-mini']) }), [0, 1, 0, 0]);
    await after(() => t.db('teams').where({ id: team.id }).update({ alert_thresholds: JSON.stringify([50]) }), [0, 0, 0, 1]);
    // A charge writes the team's balance and held amount: its keys and members keep their versions.
    await after(() => t.db('teams').where({ id: team.id }).update({ held_micro: 5, balance_micro: 999_999 }), [0, 0, 0, 0]);
    await t.db('teams').where({ id: team.id }).update({ held_micro: 0, balance_micro: 1_000_000 });
  });

  it('a change any writer makes to a remembered row applies to the next admission (the guess fails its check)', async () => {
    const owner = await makeUser(services, { prepaidMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { spendLimitMicro: 100_000 });
    await services.metering.settle(await admit(key.id), ok(10));
    await services.metering.settle(await admit(key.id), ok(10));
    // Behind the application's back: only the row's version tells this instance its memory is stale.
    await t.db('api_keys').where({ id: key.id }).update({ spend_limit_micro: 20 });
    await expect(admit(key.id)).rejects.toBeInstanceOf(MeteringRefusal);
    await t.db('api_keys').where({ id: key.id }).update({ spend_limit_micro: 100_000 });
    await services.metering.settle(await admit(key.id), ok(10));
    await t.db('users').where({ id: owner.user.id }).update({ disabled: true });
    await expect(admit(key.id)).rejects.toThrow('The account that owns this API key is disabled.');
  });

  it('a team\'s allow-list changed behind the application\'s back applies to its keys\' next admission', async () => {
    const owner = await makeUser(services);
    const team = await makeTeam(services, owner, { balanceMicro: 1_000_000 });
    const { key } = await makeKey(services, owner, { teamId: team.id });
    await services.metering.settle(await admit(key.id), ok(10));
    await services.metering.settle(await admit(key.id), ok(10));
    await t.db('teams').where({ id: team.id }).update({ allowed_models: JSON.stringify(['claude-sonnet-4-5']) });
    await expect(admit(key.id)).rejects.toBeInstanceOf(MeteringRefusal);
  });

  it('what this instance remembers of each row is what the database holds, column by column', async () => {
    const owner = await makeUser(services, { prepaidMicro: 2_000_000 });
    const member = await makeUser(services);
    const team = await makeTeam(services, owner, { members: [[member, 'member']], balanceMicro: 1_000_000 });
    const { key: personal } = await makeKey(services, owner, { spendLimitMicro: 500_000 });
    const { key: teamKey } = await makeKey(services, member, { teamId: team.id });
    const open: Hold[] = [];
    for (let i = 0; i < 3; i++) {
      await services.metering.settle(await admit(personal.id, 2_000), ok(700 + i));
      await services.metering.settle(await admit(teamKey.id, 3_000), ok(900 + i));
    }
    open.push(await admit(personal.id, 5_000), await admit(teamKey.id, 5_000));
    await services.metering.grow(open[0]!, 4_000);
    await services.metering.grow(open[1]!, 4_000);

    const rows: Array<[MeteringTable, string]> = [
      ['keys', personal.id], ['keys', teamKey.id], ['balances', owner.user.id], ['teams', team.id],
      ['members', memberRowId(team.id, member.user.id)], ['holds', open[0]!.requestId], ['holds', open[1]!.requestId], ['models', 'gpt-4o-mini'],
    ];
    for (const [table, id] of rows) {
      const { remembered: mine, stored } = await remembered(t.db, services.metering.rows, table, id);
      expect([table, mine && normalised(mine)]).toEqual([table, stored && normalised(stored)]);
    }
    for (const hold of open) await services.metering.settle(hold, ok(100));
  });
});

/** A row's values as comparable plain data: dates as instants, booleans and numeric strings as numbers. */
function normalised(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v instanceof Date ? v.getTime() : typeof v === 'boolean' ? Number(v) : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v,
    ]),
  );
}

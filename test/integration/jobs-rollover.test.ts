import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toDate } from '../../src/db/rows.js';
import { ManualClock } from '../../src/domain/clock.js';
import { toMicro } from '../../src/domain/money.js';
import { dialect, type TestDb } from '../support/db.js';
import { makeKey, makeUser } from '../support/factories.js';
import { admit, countRows, jobFixture, settle, spend, type JobInstance } from '../support/jobs.js';
import { expectMeteringInvariants } from '../support/invariants.js';

const AUD = 1_000_000;
const iso = (d: unknown) => toDate(d).toISOString();

// Australia/Sydney: AEST (UTC+10) in winter, AEDT (UTC+11) from the first Sunday of October to the first Sunday of
// April. So October starts at 14:00Z, November and December at 13:00Z, April at 13:00Z and May at 14:00Z.
const OCT_1 = '2026-09-30T14:00:00.000Z';
const NOV_1 = '2026-10-31T13:00:00.000Z';
const DEC_1 = '2026-11-30T13:00:00.000Z';
const APR_1 = '2027-03-31T13:00:00.000Z';
const MAY_1 = '2027-04-30T14:00:00.000Z';

describe(`rollover job in Australia/Sydney (${dialect})`, () => {
  let t: TestDb;
  let clock: ManualClock;
  let a: JobInstance;
  beforeAll(async () => ({ t, clock, a } = await jobFixture('2026-10-20T00:00:00.000Z')));
  // Independently of the jobs' own accounting: every cache equals its ledger sum after every test.
  afterEach(async () => expectMeteringInvariants(t.db));
  afterAll(async () => t.destroy());

  const statements = (userId: string) => t.db('period_statements').where({ user_id: userId }).orderBy('period_start');
  const balanceRow = (userId: string) => t.db('personal_balances').where({ user_id: userId }).first();

  it('resets included usage once at local midnight on Nov 1 (DST in effect), charging an in-flight request to one period', async () => {
    const early = await makeUser(a.services, { plan: 'Pro', prepaidMicro: 100 * AUD });
    const lazy = await makeUser(a.services, { plan: 'Pro', prepaidMicro: 100 * AUD });
    const idle = await makeUser(a.services, { plan: 'Pro' });
    const earlyKey = (await makeKey(a.services, early)).key;
    const lazyKey = (await makeKey(a.services, lazy)).key;
    await spend(a.services, earlyKey.id, 3 * AUD);
    await spend(a.services, lazyKey.id, 4 * AUD);

    // A request of each user is admitted in the last millisecond of October...
    clock.set(new Date(new Date(NOV_1).getTime() - 1));
    const earlyHold = await admit(a.services, earlyKey.id, 2 * AUD);
    const lazyHold = await admit(a.services, lazyKey.id, 2 * AUD);
    expect((await a.run('rollover')).summary).toBe(`0 balances rolled into the period starting ${OCT_1}`);
    const october = await a.services.balances.personal(early.user.id);
    expect([october.periodStart.toISOString(), october.periodEnd.toISOString(), october.includedUsedMicro]).toEqual([OCT_1, NOV_1, 3 * AUD]);

    // ...and the month turns before they finish.
    clock.set(NOV_1);
    const november = await a.services.balances.personal(early.user.id);
    expect([november.periodStart.toISOString(), november.periodEnd.toISOString(), november.includedUsedMicro]).toEqual([NOV_1, DEC_1, 0]);

    // The lazy user's request settles before the job runs: settlement rolls the row itself.
    await settle(a.services, lazyHold, 1_500_000);
    expect((await a.run('rollover')).summary).toBe(`2 balances rolled into the period starting ${NOV_1}`);
    await settle(a.services, earlyHold, 1_250_000);

    for (const [user, octoberUse, novemberUse] of [[early, 3 * AUD, 1_250_000], [lazy, 4 * AUD, 1_500_000]] as const) {
      const rows = await statements(user.user.id);
      expect(rows, user.email).toHaveLength(1);
      expect([iso(rows[0].period_start), iso(rows[0].period_end)]).toEqual([OCT_1, NOV_1]);
      expect(toMicro(rows[0].included_used_micro)).toBe(octoberUse);
      expect(toMicro(rows[0].spend_micro)).toBe(octoberUse);
      expect(toMicro(rows[0].included_micro)).toBe(50 * AUD);
      const balance = await balanceRow(user.user.id);
      expect(iso(balance.period_start)).toBe(NOV_1);
      expect(toMicro(balance.included_used_micro)).toBe(novemberUse);
      // The request that straddled midnight is charged to November only.
      const hold = user === early ? earlyHold : lazyHold;
      const entries = await t.db('ledger_entries').where({ request_id: hold.requestId });
      expect(entries.length).toBeGreaterThan(0);
      expect(new Set(entries.map((e: Record<string, unknown>) => iso(e.period_start)))).toEqual(new Set([NOV_1]));
      expect(entries.reduce((sum: number, e: Record<string, unknown>) => sum + toMicro(e.amount_micro), 0)).toBe(-novemberUse);
    }
    const idleStatements = await statements(idle.user.id);
    expect(idleStatements).toHaveLength(1);
    expect(toMicro(idleStatements[0].spend_micro)).toBe(0);

    // Exactly once: later checks in November change nothing.
    clock.advance(3_600_000);
    expect((await a.run('rollover')).summary).toBe(`0 balances rolled into the period starting ${NOV_1}`);
    expect(await countRows(t.db, 'period_statements')).toBe(3);
    expect(toMicro((await balanceRow(early.user.id)).included_used_micro)).toBe(1_250_000);
    expect((await a.run('reconcile')).summary).toMatch(/^0 drifts corrected, 0 need attention/);

    // The next boundary writes November's statement with November's use only.
    clock.set(DEC_1);
    expect((await a.run('rollover')).summary).toBe(`3 balances rolled into the period starting ${DEC_1}`);
    const december = await statements(early.user.id);
    expect(december.map((s: Record<string, unknown>) => [iso(s.period_start), toMicro(s.included_used_micro)])).toEqual([
      [OCT_1, 3 * AUD],
      [NOV_1, 1_250_000],
    ]);
  });

  it('rolls April into May at local midnight after DST has ended (UTC+10), not an hour early', async () => {
    clock.set('2027-04-15T00:00:00.000Z');
    const user = await makeUser(a.services, { plan: 'Pro' });
    const key = (await makeKey(a.services, user)).key;
    await spend(a.services, key.id, 2 * AUD);
    // Every other balance rolls from wherever it was into April first.
    await a.run('rollover');
    expect(iso((await balanceRow(user.user.id)).period_start)).toBe(APR_1);
    const april = await a.services.balances.personal(user.user.id);
    expect([april.periodStart.toISOString(), april.periodEnd.toISOString()]).toEqual([APR_1, MAY_1]);

    // 13:30Z is 23:30 on April 30 in Sydney now; with the summer offset it would already be May.
    clock.set('2027-04-30T13:30:00.000Z');
    expect((await a.run('rollover')).summary).toBe(`0 balances rolled into the period starting ${APR_1}`);
    clock.set(new Date(new Date(MAY_1).getTime() - 1));
    expect((await a.run('rollover')).summary).toMatch(/^0 balances rolled/);

    clock.set(MAY_1);
    const total = await countRows(t.db, 'personal_balances');
    expect((await a.run('rollover')).summary).toBe(`${total} balances rolled into the period starting ${MAY_1}`);
    const rows = await statements(user.user.id);
    expect(rows).toHaveLength(1);
    expect([iso(rows[0].period_start), iso(rows[0].period_end), toMicro(rows[0].included_used_micro)]).toEqual([APR_1, MAY_1, 2 * AUD]);
    expect(toMicro((await balanceRow(user.user.id)).included_used_micro)).toBe(0);
    expect((await a.run('rollover')).summary).toBe(`0 balances rolled into the period starting ${MAY_1}`);
  });

  it('writes one statement for an idle user across several months, covering up to the current period', async () => {
    clock.set('2027-06-10T00:00:00.000Z');
    const user = await makeUser(a.services);
    clock.set('2027-09-10T00:00:00.000Z');
    await a.run('rollover');
    const rows = await statements(user.user.id);
    expect(rows).toHaveLength(1);
    // June 1 and September 1 are both in AEST (UTC+10).
    expect([iso(rows[0].period_start), iso(rows[0].period_end)]).toEqual(['2027-05-31T14:00:00.000Z', '2027-08-31T14:00:00.000Z']);
  });

  it('keeps the last period’s counters for its statement when a request is admitted after midnight, before the roll-over', async () => {
    const OCT_1_2027 = '2027-09-30T14:00:00.000Z'; // AEDT again from the first Sunday of October 2027
    clock.set('2027-09-20T00:00:00.000Z');
    const user = await makeUser(a.services, { plan: 'Pro', prepaidMicro: 100 * AUD });
    const key = (await makeKey(a.services, user)).key;
    await spend(a.services, key.id, 3 * AUD);
    clock.set(new Date(new Date(OCT_1_2027).getTime() + 1_000));
    // Admission sees October's headroom (nothing used yet) but writes only the held amount: September's counters
    // stay as they are until the roll-over writes September's statement from them.
    const hold = await admit(a.services, key.id, 2 * AUD);
    const stored = await balanceRow(user.user.id);
    expect([iso(stored.period_start), toMicro(stored.included_used_micro), toMicro(stored.held_micro)]).toEqual(['2027-08-31T14:00:00.000Z', 3 * AUD, 2 * AUD]);
    await a.run('rollover');
    const rows = await statements(user.user.id);
    expect(rows.map((r: Record<string, unknown>) => [iso(r.period_start), toMicro(r.included_used_micro)])).toEqual([['2027-08-31T14:00:00.000Z', 3 * AUD]]);
    await settle(a.services, hold, 1_500_000);
    const after = await balanceRow(user.user.id);
    expect([iso(after.period_start), toMicro(after.included_used_micro), toMicro(after.held_micro)]).toEqual([OCT_1_2027, 1_500_000, 0]);
  });
});
